"""The rpc pattern's test vectors (vectors.json): each case over REST and over gRPC.

The harness checks every implementation against these before timing it: the REST servers get
each case's `probes.http` form (`POST /v1/recommend` with the request in protojson's mapping),
the gRPC servers its `probes.grpc` form (`Recommend` with the same request). The answers are
computed here by the reference ranking (`ranking.py`) and written as each transport writes them:
the whole RecommendResponse with unpopulated fields over REST (as `rest_service.encode` does),
protobuf's JSON mapping with the proto's field names over gRPC (as the harness's probe reads the
answer). An invalid request gets INVALID_ARGUMENT / 400 with the message of `ranking.validate`.

    python -m systems.rpc.vectors --write     # rewrite vectors.json
    python -m systems.rpc.vectors --check     # exit 1 when it differs from the reference
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format

from systems.rpc import ranking
from systems.rpc.gen import recommendations_pb2 as pb
from systems.rpc.recommender import Recommender
from systems.rpc.rest_service import EMIT_UNPOPULATED

FILE: Final = Path(__file__).with_name("vectors.json")
METHOD: Final = "/recommendations.v1.Recommendations/Recommend"
PATH: Final = "/v1/recommend"

#: (name, request in protojson's mapping): the table is the system's (items 1000, seed 1).
CASES: Final[list[tuple[str, dict[str, Any]]]] = [
    ("top 10", {"userId": "alice", "limit": 10}),
    ("one item with its features", {"userId": "bob", "limit": 1, "features": 4}),
    ("music only", {"userId": "dave", "limit": 5, "filters": {"categories": ["CATEGORY_MUSIC"]}}),
    (
        "categories repeated, by name and number",
        {"userId": "erin", "limit": 8, "filters": {"categories": ["CATEGORY_GAMES", 1, 3]}},
    ),
    ("UTF-8 user id", {"userId": "zoë-🙂", "limit": 3}),
    ("page size ignored by the unary call", {"userId": "frank", "limit": 2, "pageSize": 1}),
    ("user id empty", {"userId": "", "limit": 1}),
    ("limit 0", {"userId": "a", "limit": 0}),
    ("limit 1001", {"userId": "a", "limit": 1001}),
    ("category unknown", {"userId": "a", "limit": 1, "filters": {"categories": [5]}}),
    ("category unspecified", {"userId": "a", "limit": 1, "filters": {"categories": [0]}}),
    ("features 4097", {"userId": "a", "limit": 1, "features": 4097}),
    ("page size negative", {"userId": "a", "limit": 1, "pageSize": -1}),
]


def _case(recommender: Recommender, name: str, request: dict[str, Any]) -> dict[str, Any]:
    req = json_format.ParseDict(request, pb.RecommendRequest())
    error = Recommender.check(req)
    http: dict[str, Any] = {"request": {"method": "POST", "path": PATH, "body": request}}
    grpc: dict[str, Any] = {"request": {"method": METHOD, "message": request}}
    if error is not None:
        http["expect"] = {
            "status": 400,
            "body": {"error": {"code": "invalid_argument", "message": error}},
        }
        grpc["expect"] = {"code": "INVALID_ARGUMENT", "details": error}
    else:
        items = recommender.items(recommender.rank(req), req.features)
        assert items is not None  # no deadline
        answer = pb.RecommendResponse(user_id=req.user_id, items=items)
        http["expect"] = {
            "status": 200,
            "body": json_format.MessageToDict(
                answer, always_print_fields_with_no_presence=EMIT_UNPOPULATED
            ),
        }
        grpc["expect"] = {
            "code": "OK",
            "message": json_format.MessageToDict(answer, preserving_proto_field_name=True),
        }
    return {"name": name, "probes": {"http": http, "grpc": grpc}}


def vectors() -> dict[str, Any]:
    recommender = Recommender(ranking.DEFAULT_ITEMS, ranking.DEFAULT_SEED)
    cases: list[dict[str, Any]] = [_case(recommender, n, r) for n, r in CASES]
    cases.append(
        {
            "name": "REST body not JSON",
            "probes": {
                "http": {
                    "request": {"method": "POST", "path": PATH, "body": "not json"},
                    "expect": {
                        "status": 400,
                        "body": {"error": {"code": "invalid_argument", "message": "<any-string>"}},
                    },
                }
            },
        }
    )
    return {
        "description": "rpc conformance, the same cases over REST (probes.http) and gRPC "
        "(probes.grpc); answers by the reference ranking: python -m systems.rpc.vectors --write "
        "writes this file. '<any-string>' matches any non-empty string.",
        "params": {"items": ranking.DEFAULT_ITEMS, "seed": ranking.DEFAULT_SEED},
        "cases": cases,
    }


def text() -> str:
    return json.dumps(vectors(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m systems.rpc.vectors", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help=f"write {FILE.name}")
    what.add_argument("--check", action="store_true", help=f"exit 1 if {FILE.name} differs")
    args = parser.parse_args(argv)
    if args.write:
        FILE.write_text(text(), encoding="utf-8")
        print(f"wrote {FILE}")
        return 0
    same = FILE.exists() and FILE.read_text(encoding="utf-8") == text()
    print(f"{FILE.name}: {'up to date' if same else 'differs from the reference'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
