"""Test server for the topology and probe tests: says which environment it was started with.

Usage: topology_server.py PORT [grpc]. HTTP: GET /healthz → ok, GET /env → {"cuda": the
CUDA_VISIBLE_DEVICES it got, "pid": its pid}. With `grpc`, it serves the standard gRPC health
service instead (SERVING for "" and for "demo").
"""

from __future__ import annotations

import json
import os
import sys
from concurrent import futures

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def serve_grpc(port: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    for name in ("", "demo"):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve_http(port: int) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def env(_: web.Request) -> web.Response:
        body = {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/env", env)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    if sys.argv[2:] == ["grpc"]:
        serve_grpc(int(sys.argv[1]))
    else:
        serve_http(int(sys.argv[1]))
