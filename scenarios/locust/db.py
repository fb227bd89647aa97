"""The db pattern's mixed load: reads of one item and orders, `--write-share` of them orders.

Runs on its own with Locust's web UI:

    locust -f scenarios/locust/db.py --host http://127.0.0.1:8150 --write-share 0.1

and headless under the harness (`patternbench run db --profile mixed`), which records every
request's latency into HDR histograms through `bench.engines.recording`, closed-loop (`ShopUser`)
or open-loop (`OpenLoopShop`: requests at a target rate whatever the answers; each one a read or
an order by a seeded draw).

A read is `GET /items/{id}` (ids uniform over `--items`); an order is `POST /orders` of one line
of an item below 1,000 (never out of stock). A read other than 200, or an order other than 201,
is a failure, 503 (the database unreachable, the pool's wait too long) included.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, events, task

from bench.engines import recording
from scenarios.locust.pacing import add_user_rate, paced

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    add_user_rate(parser)
    parser.add_argument("--items", type=int, default=100_000, help="seeded items")
    parser.add_argument("--write-share", type=float, default=0.1, help="share of orders, 0 to 1")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


def _read(user: Any, context: dict[str, Any]) -> None:
    item = random.randint(1, int(user.environment.parsed_options.items))
    with user.client.get(
        f"/items/{item}", name="/items/{id}", catch_response=True, context=context
    ) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


def _order(user: Any, context: dict[str, Any]) -> None:
    body = {
        "customer_id": f"c-{random.randint(1, 10_000)}",
        "lines": [{"item_id": random.randint(1, 999), "quantity": 1}],
    }
    with user.client.post(
        "/orders", json=body, name="/orders", catch_response=True, context=context
    ) as response:
        if response.status_code != 201:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


def send_one(user: Any, context: dict[str, Any]) -> None:
    """A read, or with probability `--write-share` an order."""
    if random.random() < float(user.environment.parsed_options.write_share):
        _order(user, context)
    else:
        _read(user, context)


class ShopUser(FastHttpUser):
    """A shopper, closed-loop: reads and orders in the given share."""

    def wait_time(self) -> float:
        return paced(self)

    @task
    def shop(self) -> None:
        send_one(self, {})


OpenLoopShop = recording.open_loop_user(FastHttpUser, send_one, name="OpenLoopShop")
