"""The rpc pattern: a recommendations service over gRPC and REST/JSON (proto/recommendations/v1)."""
