"""The db pattern's processes' logs: one JSON line per event (structlog), and errors in one line."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging() -> None:
    """structlog as one JSON line per event on stderr, at INFO and above (both processes)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # The pool's own retries of its connection floor would log a traceback each; ours suffice.
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)


def describe(exc: BaseException) -> str:
    """An error as one short line for the log."""
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
