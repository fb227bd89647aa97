"""Worker-pool load: CPU-bound tasks of one kernel and cost, each with a fresh seed.

Runs on its own with Locust's web UI:

    locust -f scenarios/locust/workerpool.py --host http://127.0.0.1:8094 --rounds 5000

and headless under the harness (`patternbench run workerpool --engine locust`), which records
every request's latency into HDR histograms through `bench.engines.recording`, closed-loop
(`WorkUser`: each user sends its next task after the previous answer, at most `--user-rate` per
second) or open-loop (`OpenLoopWork`: tasks at a target rate whatever the answers).

Any status other than 200 is a failure, 503 (the bounded queue full) included: the report
counts it in the error rate, which the SLO bounds.
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
    parser.add_argument("--kernel", default="spin", help="spin | hash")
    parser.add_argument("--rounds", type=int, default=5000, help="kernel rounds per task")
    parser.add_argument("--size", type=int, default=0, help="hash block size in bytes")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


def send_work(user: Any, context: dict[str, Any]) -> None:
    """One task with a random seed."""
    options = user.environment.parsed_options
    query = f"kernel={options.kernel}&rounds={options.rounds}&seed={random.randrange(2**32)}"
    if options.kernel == "hash":
        query += f"&size={options.size}"
    with user.client.get(
        f"/work?{query}", name="/work", catch_response=True, context=context
    ) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


class WorkUser(FastHttpUser):
    """A client submitting tasks, closed-loop."""

    def wait_time(self) -> float:
        return paced(self)

    @task
    def work(self) -> None:
        send_work(self, {})


OpenLoopWork = recording.open_loop_user(FastHttpUser, send_work, name="OpenLoopWork")
