"""The options of the pytest-benchmark suites here (pytest reads options from a conftest only)."""

from __future__ import annotations

import pytest

#: The protobuf sizes bm_codec.py times by default: 100 B, 1 KiB, 64 KiB, 1 MiB.
DEFAULT_SIZES = "100,1024,65536,1048576"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--codec-sizes",
        default=DEFAULT_SIZES,
        help=f"bm_codec.py: protobuf sizes of the messages in bytes, comma-separated "
        f"(default {DEFAULT_SIZES})",
    )
