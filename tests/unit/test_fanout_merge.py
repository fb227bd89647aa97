"""Pure logic of the Python fan-out service: the merged answer, part parsing, flags."""

from __future__ import annotations

import json

import pytest
from yarl import URL

from systems.fanout.gather import BACKENDS, BodyBuilder, Failure, Outcome, backend_paths, parse_part
from systems.fanout.service import parse_args


def _part(name: str, item: str, value: int) -> str:
    return json.dumps({"backend": name, "item_id": item, "value": value})


def test_body_with_every_part_is_not_degraded() -> None:
    names = BACKENDS[:3]
    outcomes: list[Outcome] = [_part(n, "sku-1", i) for i, n in enumerate(names)]
    body = json.loads(BodyBuilder(names).build("sku-1", outcomes))
    assert body == {
        "item_id": "sku-1",
        "parts": {n: {"backend": n, "item_id": "sku-1", "value": i} for i, n in enumerate(names)},
        "missing": [],
        "degraded": False,
    }


def test_missing_parts_are_sorted_by_backend_name_with_their_reason() -> None:
    names = BACKENDS[:6]  # pricing inventory reviews shipping recommendations promotions
    outcomes: list[Outcome] = [
        Failure.TIMEOUT,  # pricing
        _part("inventory", "A", 1),
        Failure.ERROR,  # reviews
        Failure.ERROR,  # shipping
        Failure.TIMEOUT,  # recommendations
        _part("promotions", "A", 2),
    ]
    body = json.loads(BodyBuilder(names).build("A", outcomes))
    assert body["missing"] == [
        {"backend": "pricing", "reason": "timeout"},
        {"backend": "recommendations", "reason": "timeout"},
        {"backend": "reviews", "reason": "error"},
        {"backend": "shipping", "reason": "error"},
    ]
    assert set(body["parts"]) == {"inventory", "promotions"}
    assert body["degraded"] is True


def test_nothing_back_is_an_empty_parts_object() -> None:
    body = json.loads(BodyBuilder(BACKENDS[:2]).build("x", [Failure.TIMEOUT, Failure.TIMEOUT]))
    assert body["parts"] == {}
    assert [m["backend"] for m in body["missing"]] == ["inventory", "pricing"]


def test_parts_are_the_backend_object_verbatim() -> None:
    text = '{"value": 1.50, "extra": {"nested": [1, "two", null]}, "z": "\\u00e9"}'
    part = parse_part(200, text.encode())
    assert part == text
    body = BodyBuilder(["pricing"]).build("sku-1", [part])
    assert (
        body.decode()
        == f'{{"item_id":"sku-1","parts":{{"pricing":{text}}},"missing":[],"degraded":false}}'
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"a": 1}', '{"a": 1}'),
        (200, b'  {"a": 1}\n', '{"a": 1}'),
        (200, b"[1, 2]", None),
        (200, b'"text"', None),
        (200, b"42", None),
        (200, b"null", None),
        (200, b"{not json", None),
        (200, b"", None),
        (200, b'{"a": NaN}', None),
        (200, b'{"a": "\xff"}', None),
        (500, b'{"error": {"code": "internal", "message": "x"}}', None),
        (404, b'{"a": 1}', None),
        (201, b'{"a": 1}', None),
    ],
)
def test_parse_part(status: int, body: bytes, expected: str | None) -> None:
    assert parse_part(status, body) == expected


def test_backend_paths_keep_a_replica_path_prefix() -> None:
    assert backend_paths(URL("http://h:1"), ["pricing"]) == ["/backend/pricing/"]
    assert backend_paths(URL("http://h:1/"), ["pricing"]) == ["/backend/pricing/"]
    assert backend_paths(URL("http://h:1/sim/"), ["a", "b"]) == [
        "/sim/backend/a/",
        "/sim/backend/b/",
    ]


def test_flag_defaults() -> None:
    c = parse_args(["--replicas", "http://127.0.0.1:9101"])
    assert (c.host, c.port) == ("127.0.0.1", 8080)
    assert [str(r) for r in c.replicas] == ["http://127.0.0.1:9101"]
    assert (c.fanout, c.call_timeout_ms, c.deadline_ms) == (4, 100, 250)
    assert (c.hedge_delay_ms, c.max_in_flight, c.max_lag_ms) == (0, 128, 10)


def test_flags_in_full() -> None:
    c = parse_args(
        [
            "--listen=[::1]:0",
            "--replicas=http://127.0.0.1:9101, http://127.0.0.1:9102/",
            "--fanout=8",
            "--call-timeout-ms=0",
            "--deadline-ms=1",
            "--hedge-delay-ms=20",
            "--max-in-flight=1",
        ]
    )
    assert (c.host, c.port) == ("::1", 0)
    assert [r.port for r in c.replicas] == [9101, 9102]
    assert (c.fanout, c.call_timeout_ms, c.deadline_ms, c.hedge_delay_ms) == (8, 0, 1, 20)
    assert c.max_in_flight == 1


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--fanout", "0"], "--fanout"),
        (["--fanout", "9"], "--fanout"),
        (["--fanout", "four"], "--fanout"),
        (["--call-timeout-ms", "-1"], "--call-timeout-ms"),
        (["--deadline-ms", "-5"], "--deadline-ms"),
        (["--deadline-ms", "1.5"], "--deadline-ms"),
        (["--hedge-delay-ms", "-1"], "--hedge-delay-ms"),
        (["--max-in-flight", "0"], "--max-in-flight"),
        (["--max-lag-ms", "-1"], "--max-lag-ms"),
        (["--listen", "nohost"], "--listen"),
        (["--listen", "127.0.0.1:70000"], "--listen"),
        (["--replicas", "ftp://127.0.0.1:1"], "--replicas"),
        (["--replicas", "http://127.0.0.1:1,"], "--replicas"),
        (["--replicas", "http://127.0.0.1:1/?q=1"], "--replicas"),
        (["--replicas", "127.0.0.1:9101"], "--replicas"),
        (["--hedge-delay-ms", "10"], "--hedge-delay-ms"),  # one replica cannot hedge
    ],
)
def test_bad_flag_exits_2_with_one_line_naming_it(
    args: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--replicas", "http://127.0.0.1:9101", *args]
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert flag in err


def test_missing_replicas_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args([])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--replicas" in err
