"""The loadgen engine: `go/bin/loadgen`, the Go open-loop generator, for rates Locust cannot reach.

loadgen sends requests at the target rate whatever the answers, measures each latency from its
intended send time (and from its actual send time beside it), and writes a JSON result whose
fields are documented in `go/internal/loadgen`. Its measured window starts `warmup_s` after it
starts, so the caller's window is opened then.

What it sends is the pattern's `[scenario.loadgen]` table (`LoadgenTable`): an HTTP request
(`path`, `method`, `body`, `headers`; `{rand:N}` in the path is a fresh integer in [0, N) per
request; `body_command`: a command of the pattern's whose output is the body, for bodies too
large to write in a table, run once per table; `header_commands`: headers whose value a command
prints, such as a signed token) or a unary gRPC call (`grpc_method` with its
`grpc_request` in protobuf's JSON mapping, encoded once with the descriptors of
`proto_modules`; `grpc_request_command`: a command of the pattern's whose output is that JSON,
for requests too large to write in a table, such as a tensor's bytes, run once per table).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.engines.spec import LoadError, LoadSpec, Window, follow, load_stats, start_generator
from bench.launch.outputs import OutputError, header_values
from bench.launch.outputs import command_output as _command_output
from bench.launch.protobuf import ProtoError, method, request_message, varied_fields
from bench.launch.supervisor import Supervisor
from bench.models import LoadStats, StreamStats
from bench.stats.percentiles import decode, percentiles

#: Time after the window for in-flight requests to finish and the JSON to be written.
SLACK_S = 12.0
BUILD = ["go", "build", "-o", "bin/loadgen", "./cmd/loadgen"]


class LoadgenTable(BaseModel):
    """`[scenario.loadgen]`: one HTTP request, or one unary gRPC call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=None, pattern=r"^/", description="HTTP path and query")
    method: str = Field(default="GET", description="HTTP method")
    body: str = Field(default="", description="may hold {rand:N}, drawn per request")
    json_body: dict[str, Any] | None = Field(
        default=None,
        description="the body as a table, sent as compact JSON with Content-Type: "
        "application/json (strings may hold {rand:N})",
    )
    body_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="a command (run from the pattern's root) whose standard output is the body",
    )
    headers: list[str] = Field(default=[], description="'Key: Value' each")
    header_commands: dict[str, list[str]] = Field(
        default={},
        description="headers whose value a command of the pattern's prints (run from its root, "
        'once), e.g. a signed token: `{ Authorization = ["go/bin/edgetoken", "mint", …] }`',
    )
    grpc_method: str | None = Field(default=None, description="/package.Service/Method")
    grpc_request: dict[str, Any] = Field(
        default={},
        description="the request, as JSON; a top-level string or integer field may be "
        "'{rand:N}' (or a string holding it), drawn per call",
    )
    grpc_request_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="a command (run from the pattern's root) whose standard output is the "
        "request as a JSON object, in place of grpc_request",
    )
    grpc_stream: bool = Field(default=False, description="grpc_method is server-streaming")
    proto_modules: list[str] = Field(default=[], description="modules defining grpc_method")
    grpc_conns: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _one_protocol(self) -> LoadgenTable:
        if (self.path is None) == (self.grpc_method is None):
            raise ValueError("give either path (HTTP) or grpc_method (gRPC)")
        if sum((bool(self.body), self.json_body is not None, self.body_command is not None)) > 1:
            raise ValueError("give one of body, json_body and body_command")
        if self.header_commands and self.grpc_method is not None:
            raise ValueError("header_commands are HTTP headers: give them with path")
        if self.grpc_stream and self.grpc_method is None:
            raise ValueError("grpc_stream needs grpc_method")
        if self.grpc_request_command is not None:
            if self.grpc_method is None:
                raise ValueError("grpc_request_command needs grpc_method")
            if self.grpc_request:
                raise ValueError("give one of grpc_request and grpc_request_command")
        return self

    def request_json(self, root: Path = Path(".")) -> dict[str, Any]:
        """The gRPC request in protobuf's JSON mapping: `grpc_request`, or what
        `grpc_request_command` prints (run from `root`, once)."""
        if self.grpc_request_command is None:
            return self.grpc_request
        what = "grpc_request_command"
        text = command_output(tuple(self.grpc_request_command), root, what)
        try:
            data = json.loads(text)
        except ValueError as e:
            raise LoadError(f"{what}: the output is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise LoadError(f"{what}: the output is not a JSON object")
        return data

    def encoded_request(self, root: Path = Path(".")) -> tuple[str, list[str]]:
        """The gRPC request less its varied fields, protobuf-encoded, base64; and each varied
        field as loadgen's `--grpc-vary FIELD:KIND:TEMPLATE`."""
        assert self.grpc_method is not None
        request = self.request_json(root)
        try:
            found = method(self.grpc_method, self.proto_modules)
            fixed, varied = varied_fields(found, request)
            raw = request_message(found, fixed).SerializeToString()
        except ProtoError as e:
            raise LoadError(f"loadgen: {e}") from None
        return base64.b64encode(raw).decode("ascii"), varied

    def extra_headers(self, root: Path = Path(".")) -> list[str]:
        """The `header_commands` headers, each command run once."""
        try:
            found = header_values(self.header_commands, root, "header_commands")
            return [f"{name}: {value}" for name, value in found.items()]
        except OutputError as e:
            raise LoadError(str(e)) from None

    def http_body(self, root: Path = Path(".")) -> tuple[str, list[str]]:
        """The body and the headers it brings; `body_command` runs from `root`, once."""
        if self.body_command is not None:
            return command_output(tuple(self.body_command), root), []
        if self.json_body is None:
            return self.body, []
        text = json.dumps(self.json_body, separators=(",", ":"), ensure_ascii=False)
        return text, ["Content-Type: application/json"]


def command(binary: Path, table: LoadgenTable, spec: LoadSpec, output: Path) -> list[str]:
    if spec.rate is None:
        raise LoadError("loadgen needs an open-loop rate")
    if table.grpc_method is not None:
        request, varied = table.encoded_request(spec.root)
        what = [
            "--url", f"grpc://{spec.host}:{spec.port}",
            "--grpc-method", table.grpc_method,
            "--grpc-request-base64", request,
            "--grpc-conns", str(table.grpc_conns),
        ]  # fmt: skip
        what += [x for v in varied for x in ("--grpc-vary", v)]
        what += ["--grpc-stream"] if table.grpc_stream else []
    else:
        body, headers = table.http_body(spec.root)
        headers += table.extra_headers(spec.root)
        what = ["--url", spec.base_url + str(table.path), "--method", table.method]
        what += ["--body", body] if body else []
        what += [x for h in [*headers, *table.headers] for x in ("--header", h)]
    return [
        str(binary),
        *what,
        "--rate", f"{spec.rate:g}",
        "--duration", f"{spec.duration_s:g}s",
        "--warmup", f"{spec.warmup_s:g}s",
        "--arrival", spec.arrival,
        "--seed", str(spec.seed),
        "--max-in-flight", str(spec.max_in_flight),
        "--json", str(output),
        "--quiet",
    ]  # fmt: skip


class Loadgen:
    """The engine object the composition root names `loadgen`."""

    table_model: type[BaseModel] = LoadgenTable
    closed_loop = False

    def build(self, tools_root: Path, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            done = subprocess.run(
                BUILD, cwd=tools_root / "go", stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            raise LoadError(f"loadgen: `{' '.join(BUILD)}` exited with {done.returncode}")

    def run(
        self,
        table: BaseModel,
        spec: LoadSpec,
        supervisor: Supervisor,
        window: Window,
        on_progress: Callable[[float], None] | None = None,
    ) -> LoadStats:
        assert isinstance(table, LoadgenTable)
        binary = spec.tools_root / "go" / "bin" / "loadgen"
        return run(binary, table, spec, supervisor, window, on_progress)


def run(
    binary: Path,
    table: LoadgenTable,
    spec: LoadSpec,
    supervisor: Supervisor,
    window: Window,
    on_progress: Callable[[float], None] | None = None,
) -> LoadStats:
    if spec.load_model != "open-loop":
        raise LoadError("loadgen is open-loop only: use the locust engine for closed-loop users")
    output = spec.workdir / "loadgen.json"
    output.unlink(missing_ok=True)
    proc = start_generator(supervisor, spec, "loadgen", command(binary, table, spec, output))
    opens_at = time.time() + spec.warmup_s
    try:
        follow(proc, spec, window, lambda: opens_at, on_progress, SLACK_S)
    except LoadError as e:
        raise LoadError(f"loadgen: {e}: {proc.stderr_tail()}") from None
    finally:
        supervisor.stop(proc)
    try:
        data: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        histograms = data["histograms"]
        duration = float(data["window"]["duration_s"])
        return load_stats(
            engine="loadgen",
            spec=spec,
            histogram=histograms["corrected"],
            uncorrected_histogram=histograms["uncorrected"],
            slip_histogram=histograms["slip"],
            requests=int(data["requests"]),
            sent=round(float(data["rate"]["achieved"]) * duration),
            errors=int(data["errors"]),
            error_kinds={str(k): int(v) for k, v in data["error_kinds"].items()},
            duration_s=duration,
            generator_cpu_percent=float(data["generator"]["cpu_percent"]),
            in_flight_cap_hit=bool(data["generator"]["in_flight_cap_hit"]),
        ).model_copy(
            update={
                "wire_sent_bytes": int(data["wire_sent_bytes"]),
                "wire_received_bytes": int(data["wire_received_bytes"]),
                "stream": stream_stats(data["stream"]) if "stream" in data else None,
            }
        )
    except OSError:
        raise LoadError(
            f"loadgen wrote no result (exit {proc.exit_code()}): {proc.stderr_tail()}"
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise LoadError(f"{output}: unreadable loadgen result: {e!r}") from None


def stream_stats(data: dict[str, Any]) -> StreamStats:
    """loadgen's `stream` object: messages, and the first-message and gap histograms."""
    first, gap = data["histograms"]["first_message"], data["histograms"]["gap"]
    return StreamStats(
        messages=int(data["messages"]),
        messages_per_s=round(float(data["messages_per_s"]), 2),
        first_message_ms=percentiles(decode(first)),
        gap_ms=percentiles(decode(gap)),
        first_message_histogram=first,
        gap_histogram=gap,
    )


def command_output(command: tuple[str, ...], root: Path, what: str = "body_command") -> str:
    """`bench.launch.outputs.command_output`, its failure a LoadError."""
    try:
        return _command_output(command, root, what)
    except OutputError as e:
        raise LoadError(str(e)) from None
