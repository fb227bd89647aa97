"""The db pattern's processes' logs: one JSON line per event (``systems.json_logs``), and errors
in one line."""

from __future__ import annotations

import logging

from systems import json_logs


def configure_logging() -> None:
    """JSON lines on stderr (both processes); asyncpg's own logger silenced: the pool's retries of
    its connection floor would log a traceback each, and ours say it in one line."""
    json_logs.configure()
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)


def describe(exc: BaseException) -> str:
    """An error as one short line for the log."""
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
