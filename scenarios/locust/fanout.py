"""Fan-out catalog load: each user asks for random catalog items at a paced rate.

Runs on its own with Locust's web UI:

    locust -f scenarios/locust/fanout.py --host http://127.0.0.1:8082

and headless under the harness (`patternbench run fanout`), which records every request's
latency into an HDR histogram through `bench.recording`. Users are closed-loop: a user sends its
next request only after the previous answer, at most `--user-rate` requests per second.

A degraded answer (`"degraded": true`, some backends missing) is a success: it is what the
pattern promises under a slow tail. Any status other than 200 is a failure.
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, events, task
from locust.user.wait_time import constant_pacing

from bench import recording

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--user-rate",
        type=float,
        default=25.0,
        help="requests per second per user; 0 sends as fast as answers come",
    )
    parser.add_argument("--items", type=int, default=1000, help="distinct catalog items")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


class CatalogUser(FastHttpUser):
    """A client browsing the catalog."""

    def wait_time(self) -> float:
        rate = float(self.environment.parsed_options.user_rate)
        return constant_pacing(1.0 / rate)(self) if rate > 0 else 0.0

    @task
    def catalog(self) -> None:
        item = random.randrange(int(self.environment.parsed_options.items))
        with self.client.get(
            f"/catalog/sku-{item}", name="/catalog/[item]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} {(response.text or '')[:80]}")
