"""The rpc pattern's vectors file is the reference's, and each case is given for both transports."""

from __future__ import annotations

from bench.launch.verify import load_vectors
from systems.rpc import vectors


def test_the_vectors_file_is_what_the_reference_writes() -> None:
    assert vectors.main(["--check"]) == 0


def test_every_case_but_the_rest_only_one_is_given_over_both_transports() -> None:
    loaded = load_vectors(vectors.FILE)
    both = [c.name for c in loaded.cases if set(c.probes) == {"http", "grpc"}]
    assert len(both) == len(vectors.CASES)
    errors = [
        c for c in loaded.cases if "grpc" in c.probes and c.probes["grpc"].expect["code"] != "OK"
    ]
    for case in errors:  # the same message over both
        assert (
            case.probes["grpc"].expect["details"]
            == case.probes["http"].expect["body"]["error"]["message"]
        )
