"""Inference load: one Open Inference Protocol (KServe v2) call after another, the same inputs.

Runs on its own with Locust's web UI:

    locust -f scenarios/locust/inference.py --host http://127.0.0.1:8122 --model mlp

and headless under the harness (`patternbench run inference --param engine=locust`), which
records every request's latency into HDR histograms through `bench.engines.recording`,
closed-loop (`InferUser`: each user sends its next request after the previous answer, at most
`--user-rate` per second) or open-loop (`OpenLoopInfer`: requests at a target rate whatever the
answers).

The body is built once, as the loadgen engine's (`systems.inference.vectors.request_body`).
Any status other than 200 is a failure, 503 (the batcher's queue full) included.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from locust import FastHttpUser, events, task

from bench.engines import recording
from scenarios.locust.pacing import add_user_rate, paced
from systems.inference.vectors import request_body

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    add_user_rate(parser)
    parser.add_argument("--model", default="mlp", help="mlp | transformer")
    parser.add_argument("--seq-len", type=int, default=64, help="transformer: vectors a sample")
    parser.add_argument("--samples", type=int, default=1, help="samples per request")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


@cache
def _body(model: str, seq_len: int, samples: int) -> bytes:
    return json.dumps(request_body(model, seq_len, samples), separators=(",", ":")).encode()


def send_infer(user: Any, context: dict[str, Any]) -> None:
    """One inference call."""
    options = user.environment.parsed_options
    path = f"/v2/models/{options.model}/infer"
    with user.client.post(
        path,
        data=_body(options.model, options.seq_len, options.samples),
        headers={"Content-Type": "application/json"},
        name=path,
        catch_response=True,
        context=context,
    ) as response:
        if response.status_code != 200:
            response.failure(f"{response.status_code} {(response.text or '')[:80]}")


class InferUser(FastHttpUser):
    """A client asking for inferences, closed-loop."""

    def wait_time(self) -> float:
        return paced(self)

    @task
    def infer(self) -> None:
        send_infer(self, {})


OpenLoopInfer = recording.open_loop_user(FastHttpUser, send_infer, name="OpenLoopInfer")
