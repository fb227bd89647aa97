"""Hypothesis-generated requests against every implementation of each pattern's contract.

Both implementations of fan-out (with the Go backend simulator behind them) and of the worker
pool run as real processes on 127.0.0.1. Per endpoint, hypothesis writes requests byte by byte
(methods, targets, query strings, HTTP versions, header fields, bodies, and bytes that are not
HTTP at all) and sends each on a fresh connection. Whatever the request, the answer must be a
valid HTTP/1.x answer; a 4xx or 5xx must be the contract's envelope with
``Content-Type: application/json``; the only 5xx are the contract's own (501, 505 for what the
scaffold refuses; 503 and 504 under load); and after the run ``/healthz`` still answers 200.

How many requests: the hypothesis profile (tests/integration/conftest.py): "ci" by default (a
few hundred per endpoint and implementation, the same every run), "soak" with
``PATTERNBENCH_HYPOTHESIS_PROFILE=soak``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from bench.launch.http_raw import RawHttpError, RawResponse, exchange
from tests.integration.service_process import Proc

pytestmark = [pytest.mark.integration, pytest.mark.fuzz, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
GO_BIN = ROOT / "go" / "bin"
#: The header time-out of the services under test: a head the generator left incomplete is
#: closed this soon instead of after 5 s.
HEADER_TIMEOUT_S = "2"

#: The 5xx each contract names (systems/*/README.md): the scaffold's 501 and 505, the
#: pattern's answers to load.
CONTRACT_5XX = {"fanout": {501, 503, 505}, "workerpool": {501, 503, 504, 505}}


@dataclass(frozen=True)
class Generated:
    """A request as bytes; ``head``: its method is HEAD (the answer has no body)."""

    data: bytes
    head: bool = False


# --- the requests -------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
#: What a query may hold unescaped (RFC 3986 unreserved and sub-delims, ":@/?"), and escapes.
QUERY_CHARS = st.one_of(
    st.sampled_from("abcxyz0189-._~!$'()*+,;=:@/?"),
    st.sampled_from(["%20", "%41", "%2F", "%e9"]),
)
#: Anything visible, and what a target may not hold (space, controls, bytes above 0x7F).
ODD_TARGET_CHARS = st.one_of(
    st.sampled_from(VISIBLE), st.sampled_from(" \t\x00\x7f\x80\xc3\xa9\xff%/?#")
)

#: The parts of a request the generator may get wrong; most requests get none or one wrong.
PARTS = ("method", "target", "version", "host", "fields", "framing", "size")
wrong_parts = st.one_of(
    st.just(frozenset[str]()),
    st.just(frozenset[str]()),
    st.sets(st.sampled_from(PARTS), min_size=1, max_size=1),
    st.sets(st.sampled_from(PARTS), min_size=2, max_size=3),
)

GOOD_METHODS = {"catalog": ["GET", "HEAD"], "work": ["GET", "POST"]}
odd_methods = st.one_of(
    st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"]),
    st.sampled_from(["get", "FOO", "G\x00T", "", "GET GET"]),
    st.text(TCHAR, min_size=1, max_size=12),
)
odd_versions = st.sampled_from(
    ["HTTP/2.0", "HTTP/0.9", "HTTP/1.5", "HTTP/9.9", "http/1.1", "HTTP/x.y", "HTTP/1.10", ""]
)


def text(pieces: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    """Up to ``max_size`` pieces (characters, or escapes such as ``%2F``) joined."""
    return st.lists(pieces, max_size=max_size).map("".join)


#: Query values the services parse (and their edge cases), each small enough to run at once.
query_values = st.one_of(
    st.integers(-5, 2000).map(str),
    st.integers(10**7, 10**30).map(str),
    st.sampled_from(["spin", "hash", "", "1.5", "0x10", "%31", "1e3", "-0", "+1"]),
    text(QUERY_CHARS, 8),
)
query_keys = st.one_of(st.sampled_from(["kernel", "seed", "rounds", "size"]), text(QUERY_CHARS, 6))
queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(query_keys, query_values), max_size=5).map(
        lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs)
    ),
)
good_work_queries = st.tuples(
    st.sampled_from(["spin", "hash"]), st.integers(0, 2000), st.integers(0, 2**64 - 1)
).map(lambda t: f"?kernel={t[0]}&rounds={t[1]}&seed={t[2]}&size=64")


def paths(endpoint: str, *, odd: bool) -> st.SearchStrategy[str]:
    chars = ODD_TARGET_CHARS if odd else QUERY_CHARS
    if endpoint == "catalog":
        ids = st.text("abcXYZ019_-", min_size=1, max_size=64) if not odd else text(chars, 70)
        return ids.map(lambda i: "/catalog/" + i)
    if endpoint == "work":
        return st.sampled_from(["/work"] * 8 + ["/work/", "/WORK"])
    if endpoint == "health":
        return st.sampled_from(["/healthz", "/metrics"])
    return st.lists(text(chars, 16), min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))


good_field_names = st.one_of(
    st.sampled_from(["Accept", "User-Agent", "X-Request-Id", "Cookie", "Connection"]),
    st.text(TCHAR, min_size=1, max_size=20),
)
odd_field_names = st.one_of(
    st.sampled_from(["Expect", "Host", "Transfer-Encoding"]),  # Content-Length: see framing
    st.text(TCHAR + " :\x00\x80", min_size=0, max_size=10),
)
good_field_values = text(st.sampled_from(VISIBLE + " \t\x80\xff"), 60)
odd_field_values = text(st.sampled_from(VISIBLE + " \t\x00\x01\x7f\r\n"), 60)
hosts: st.SearchStrategy[list[str]] = st.sampled_from([[], ["x", "y"], ["a b"], ["x/y"]])
#: Sizes within the limits (8 KiB targets, 100 fields, 16 KiB of fields), then past them.
good_sizes = st.sampled_from(["", "", "", "pad:8000", "fields:98", "big:16000"])
odd_sizes = st.sampled_from(
    ["pad:8200", "pad:20000", "pad:1100000", "fields:100", "fields:1000", "big:16400", "big:70000"]
)
work_bodies = st.one_of(
    st.fixed_dictionaries(
        {"kernel": st.sampled_from(["spin", "hash"]), "rounds": st.integers(0, 2000)},
        optional={"seed": st.integers(0, 2**64 - 1), "size": st.sampled_from([8, 64, 4096])},
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(
        st.sampled_from(["kernel", "seed", "rounds", "size", "x"]),
        st.one_of(
            st.sampled_from(["spin", "hash"]),
            st.integers(-5, 2000),
            st.integers(2**63, 2**70),
            st.floats(allow_nan=False),
            st.booleans(),
            st.none(),
            st.text(max_size=10),
        ),
    ).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"[]", b"{", b'"x"', b"null", b"{}" + b" " * 70000]),
)


@st.composite
def requests(draw: st.DrawFn, endpoint: str) -> Generated:
    """A request as a client might write it at ``endpoint``: right, or wrong in a part or two."""
    wrong = draw(wrong_parts)
    good_methods = GOOD_METHODS.get(endpoint, ["GET"])
    method = draw(odd_methods if "method" in wrong else st.sampled_from(good_methods))
    target = draw(paths(endpoint, odd="target" in wrong))
    good_query = good_work_queries if endpoint == "work" and method == "GET" else queries
    target += draw(text(ODD_TARGET_CHARS, 20) if "target" in wrong else good_query)
    size = draw(odd_sizes if "size" in wrong else good_sizes)
    kind, _, n = size.partition(":")
    if kind == "pad":
        target += ("&" if "?" in target else "?") + "p=" + "x" * (int(n) - len(target) - 3)
    version = draw(
        odd_versions if "version" in wrong else st.sampled_from(["HTTP/1.1"] * 3 + ["HTTP/1.0"])
    )
    lines = [f"{method} {target} {version}".rstrip(" ")]
    lines += [f"Host: {h}" for h in (draw(hosts) if "host" in wrong else ["x"])]
    names, values = (
        (odd_field_names, odd_field_values)
        if "fields" in wrong
        else (good_field_names, good_field_values)
    )
    lines += [f"{k}: {v}" for k, v in draw(st.lists(st.tuples(names, values), max_size=6))]
    if kind == "fields":
        lines += ["X-Bulk: v"] * int(n)
    elif kind == "big":
        lines.append("X-Big: " + "b" * int(n))
    body = draw(work_bodies) if method in ("POST", "PUT", "PATCH") else b""
    framing = draw(st.sampled_from(["chunked", "both", "bad"])) if "framing" in wrong else "length"
    if framing in ("length", "both") and (body or draw(st.booleans())):
        lines.append(f"Content-Length: {len(body)}")
    if framing in ("chunked", "both"):
        lines.append("Transfer-Encoding: " + draw(st.sampled_from(["chunked", "gzip"])))
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    if framing == "bad":
        lines.append("Content-Length: " + draw(st.sampled_from(["-1", "abc", "1 2", "", "0x10"])))
    head = "\r\n".join(lines) + "\r\n\r\n"
    return Generated(head.encode("latin-1") + body, head=method == "HEAD")


@st.composite
def garbage(draw: st.DrawFn) -> Generated:
    """Bytes that are not HTTP, or a request with bytes flipped, inserted or dropped."""
    if draw(st.booleans()):
        data = bytearray(draw(st.binary(min_size=1, max_size=300)))
    else:
        data = bytearray(b"GET /healthz?a=b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n")
        for _ in range(draw(st.integers(1, 6))):
            at = draw(st.integers(0, len(data) - 1))
            edit = draw(st.sampled_from(["flip", "insert", "drop"]))
            byte = draw(st.integers(0, 255))
            if edit == "flip":
                data[at] = byte
            elif edit == "insert":
                data.insert(at, byte)
            elif len(data) > 1:
                del data[at]
    return Generated(bytes(data) + b"\r\n\r\n")  # a head that ends, so that it is answered


ENDPOINTS = {
    "fanout": {"catalog": requests("catalog"), "health": requests("health")},
    "workerpool": {"work": requests("work"), "health": requests("health")},
}
for _pattern in ENDPOINTS:
    ENDPOINTS[_pattern]["other"] = requests("other")
    ENDPOINTS[_pattern]["garbage"] = garbage()


# --- the services -------------------------------------------------------------------------------

Services = dict[tuple[str, str], tuple[Proc, str]]


@pytest.fixture(scope="module")
def services(go_binaries: None) -> Iterator[Services]:
    """Both implementations of both patterns, and fan-out's backends (1 ms, never failing)."""
    env = {"PATTERNBENCH_HEADER_TIMEOUT_S": HEADER_TIMEOUT_S}
    started: list[Proc] = []
    out: Services = {}

    def start(key: tuple[str, str] | None, argv: list[str], count: int = 1) -> list[str]:
        proc = Proc(argv, env=env)
        started.append(proc)
        addrs = proc.wait_listening(count, timeout=20.0)
        if key is not None:
            out[key] = (proc, addrs[0])
        return addrs

    try:
        sim = [str(GO_BIN / "latencysim"), "--listen", "127.0.0.1:0,127.0.0.1:0"]
        replicas = ",".join(f"http://{a}" for a in start(None, [*sim, "--seed", "1"], count=2))
        fanout = ["--listen", "127.0.0.1:0", "--replicas", replicas, "--fanout", "4"]
        start(("fanout", "python"), [sys.executable, "-m", "systems.fanout.service", *fanout])
        start(("fanout", "go"), [str(GO_BIN / "fanout"), *fanout])
        work = ["--listen", "127.0.0.1:0", "--workers", "2"]
        python_work = [sys.executable, "-m", "systems.workerpool.service", "--pool", "threads"]
        start(("workerpool", "python"), [*python_work, *work])
        start(("workerpool", "go"), [str(GO_BIN / "workerpool"), *work])
        yield out
    finally:
        for proc in reversed(started):
            proc.stop()


def send(addr: str, request: Generated) -> RawResponse:
    host, port = addr.rsplit(":", 1)
    return exchange(host, int(port), request.data, timeout=20, head=request.head)


def problems(answer: RawResponse, pattern: str, head: bool) -> list[str]:
    """Where an answer breaks the contract's rules for any request."""
    found = []
    status = answer.status
    if 300 <= status < 400 and answer.header("Location") is None:
        found.append(f"{status} without a Location")
    if status >= 500 and status not in CONTRACT_5XX[pattern]:
        found.append(f"{status} is not a 5xx of the contract")
    if status >= 400:
        if answer.header("Content-Type") != "application/json":
            found.append(f"{status} with Content-Type {answer.header('Content-Type')!r}")
        if not head:
            try:
                body = json.loads(answer.body)
                error = body["error"]
                ok = set(body) == {"error"} and set(error) == {"code", "message"}
                ok = ok and all(isinstance(error[k], str) and error[k] for k in error)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                found.append(f"{status} body is not the envelope: {answer.body[:200]!r}")
    return found


CASES = [(p, lang, e) for p in ENDPOINTS for lang in ("python", "go") for e in ENDPOINTS[p]]


@pytest.mark.parametrize(("pattern", "language", "endpoint"), CASES)
def test_every_answer_keeps_the_contract(
    services: Services, pattern: str, language: str, endpoint: str
) -> None:
    proc, addr = services[pattern, language]

    @given(request=ENDPOINTS[pattern][endpoint])
    def check(request: Generated) -> None:
        try:
            answer = send(addr, request)
        except RawHttpError as e:
            if set(request.data) <= {0x0D, 0x0A} and "without an answer" in str(e):
                return  # no request line at all: aiohttp waits for one (header time-out)
            pytest.fail(f"not a valid answer: {e}")
        note(f"answer: {answer.status} {answer.fields} {answer.body[:200]!r}")
        assert problems(answer, pattern, request.head) == []

    check()
    assert proc.popen.poll() is None, "".join(proc.log)[-2000:]
    health = send(addr, Generated(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (health.status, json.loads(health.body)) == (200, {"status": "ok"})
    assert not any("Traceback" in line for line in proc.log), "".join(proc.log)[-2000:]
