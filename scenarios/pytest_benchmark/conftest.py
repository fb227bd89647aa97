"""The options of the pytest-benchmark suites here (pytest reads options from a conftest only)."""

from __future__ import annotations

import pytest

#: The protobuf sizes bm_codec.py times by default: 100 B, 1 KiB, 64 KiB, 1 MiB.
DEFAULT_SIZES = "100,1024,65536,1048576"
#: The request bm_codec.py's handler benchmarks answer by default: LIMIT,FEATURES (the service's
#: default load: 10 items of 16 features).
DEFAULT_HANDLER = "10,16"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--codec-sizes",
        default=DEFAULT_SIZES,
        help=f"bm_codec.py: protobuf sizes of the messages in bytes, comma-separated "
        f"(default {DEFAULT_SIZES})",
    )
    parser.addoption(
        "--codec-handler",
        default=DEFAULT_HANDLER,
        help=f"bm_codec.py: LIMIT,FEATURES of the request each handler benchmark answers, or "
        f'"" for none (default {DEFAULT_HANDLER})',
    )
