"""Test server: answers GET / at once, except that every EVERY_MS it stalls for STALL_MS — a
request arriving during a stall waits until the stall ends (as behind a GC pause or a lock).

Usage: stall_server.py PORT STALL_MS EVERY_MS. /healthz never stalls (it is the readiness probe).
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web


def main() -> None:
    port, stall_s, every_s = int(sys.argv[1]), float(sys.argv[2]) / 1000, float(sys.argv[3]) / 1000
    start = time.monotonic()

    async def root(_: web.Request) -> web.Response:
        phase = (time.monotonic() - start) % every_s
        if phase < stall_s:
            await asyncio.sleep(stall_s - phase)
        return web.Response(text="ok")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.get("/", root), web.get("/healthz", healthz)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
