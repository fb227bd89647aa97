"""Structured logs for the Python services, written once: structlog as one JSON line per event."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(file: TextIO | None = None) -> None:
    """structlog as JSON lines on ``file`` (stderr), at INFO and above."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=file or sys.stderr),
        cache_logger_on_first_use=True,
    )
