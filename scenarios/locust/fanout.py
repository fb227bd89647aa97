"""Fan-out catalog load: requests for random catalog items.

Runs on its own with Locust's web UI:

    locust -f scenarios/locust/fanout.py --host http://127.0.0.1:8082

and headless under the harness (`patternbench run fanout --engine locust`), which records every
request's latency into HDR histograms through `bench.engines.recording`, either closed-loop
(`CatalogUser`: a user sends its next request after the previous answer, at most `--user-rate`
per second) or open-loop (`OpenLoopCatalog`: requests at a target rate whatever the answers).

A degraded answer (`"degraded": true`, some backends missing) is a success: it is what the
pattern promises under a slow tail. Any status other than 200 is a failure.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, events, task

from bench.engines import recording
from scenarios.locust.pacing import add_user_rate, paced

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    add_user_rate(parser, default=25.0)
    parser.add_argument("--items", type=int, default=1000, help="distinct catalog items")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


def send_catalog(user: Any, context: dict[str, Any]) -> None:
    """One catalog request for a random item."""
    item = random.randrange(int(user.environment.parsed_options.items))
    with user.client.get(
        f"/catalog/sku-{item}", name="/catalog/[item]", catch_response=True, context=context
    ) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


class CatalogUser(FastHttpUser):
    """A client browsing the catalog, closed-loop."""

    def wait_time(self) -> float:
        return paced(self)

    @task
    def catalog(self) -> None:
        send_catalog(self, {})


OpenLoopCatalog = recording.open_loop_user(FastHttpUser, send_catalog, name="OpenLoopCatalog")
