"""GET one URL path, for `patternbench load URL --engine locust` (any HTTP endpoint).

Runs on its own too: `locust -f scenarios/locust/url.py --host http://127.0.0.1:8090 --path /`.
Closed-loop (`UrlUser`, as fast as answers come) or open-loop (`OpenLoopUrl`, at the harness's
target rate); any status other than 2xx is a failure.
"""

from __future__ import annotations

from typing import Any

from locust import FastHttpUser, events, task

from bench.engines import recording

recording.install()


def _add_arguments(parser: Any, **_: Any) -> None:
    parser.add_argument("--path", default="/", help="the path to GET, with its query")


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]


def send_get(user: Any, context: dict[str, Any]) -> None:
    path = str(user.environment.parsed_options.path)
    with user.client.get(path, catch_response=True, context=context) as response:
        if not 200 <= response.status_code < 300:
            response.failure(f"{response.status_code}")


class UrlUser(FastHttpUser):
    """Closed-loop: the next request as soon as the answer comes."""

    @task
    def get(self) -> None:
        send_get(self, {})


OpenLoopUrl = recording.open_loop_user(FastHttpUser, send_get, name="OpenLoopUrl")
