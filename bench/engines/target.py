"""Where `patternbench load` sends its load: an http:// or grpc:// URL, checked before anything
starts. Cheap to import, so the command line refuses a bad URL at once."""

from __future__ import annotations

import socket
from typing import NamedTuple
from urllib.parse import urlsplit

SCHEMES = ("http", "grpc")
#: How long the reachability check waits for a TCP connection.
CONNECT_TIMEOUT_S = 3.0


class Target(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str
    """The path with its query: what an HTTP request asks for."""


class Unreachable(Exception):
    """Nothing accepts a connection at the target: a failed load, not bad input (one line)."""


def split(url: str) -> Target:
    """The scheme, host, port and path-with-query of an http:// or grpc:// URL; ValueError (one
    line) for anything else, https:// included."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        raise ValueError(f"{url}: https:// is not supported: give an http:// or grpc:// URL")
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(
            f"{url}: expected an http://host:port/path (or, with loadgen, grpc://host:port) URL"
        )
    try:
        port = parts.port if parts.port is not None else (80 if parts.scheme == "http" else 50051)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"{url}: the port is not a number from 1 to 65535")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path)


def check_reachable(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connection to the target, opened and closed, or Unreachable saying why."""
    target = split(url)
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout_s):
            pass
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise Unreachable(f"{url}: cannot connect to {target.host}:{target.port}: {why}") from None
