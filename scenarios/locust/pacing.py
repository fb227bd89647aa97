"""What every locustfile's closed-loop users share: `--user-rate`, and the wait that paces a user
to it (Locust's `constant_pacing`: the next request starts 1/rate after the previous one did,
or at once when the answer took longer; a rate of 0 sends as fast as answers come)."""

from __future__ import annotations

from typing import Any

from locust.user.wait_time import constant_pacing


def add_user_rate(parser: Any, what: str = "requests", default: float = 10.0) -> None:
    """`--user-rate` on Locust's command line (`init_command_line_parser`'s parser)."""
    parser.add_argument(
        "--user-rate",
        type=float,
        default=default,
        help=f"closed-loop: {what} per second per user; 0 sends as fast as answers come",
    )


def paced(user: Any) -> float:
    """The wait before `user`'s next request, pacing it to `--user-rate`."""
    rate = float(user.environment.parsed_options.user_rate)
    return float(constant_pacing(1.0 / rate)(user)) if rate > 0 else 0.0
