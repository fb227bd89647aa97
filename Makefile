# patternbench — every target installs what it needs (idempotently), then runs.
#   make bench      quick profile of every pattern; prints where the report is
#   make bench-gpu  the inference pattern's gpu profile (CUDA when present, else the CPU)
#   make test       lint, type check, Python and Go tests
#   make report     re-render the report of a run (RUN=<run-id>, default: the newest)
#   make gate       the regression gate of BASE (default: the merge base with main) vs HEAD
#   make soak       fault-injection campaign (RUNS=<n>, default 40), then the fuzz tests
#   make proto      regenerate the Python and Go code of the contracts in proto/

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
GO ?= go
GO_BINARIES := go/bin/fanout go/bin/latencysim go/bin/loadgen go/bin/hello go/bin/workerpool go/bin/rpcgrpc go/bin/rpcrest go/bin/edge go/bin/edgetoken go/bin/dbpgx
ACTIONLINT_VERSION := v1.7.7
ACTIONLINT := .tools/actionlint
GO_SOURCES := $(shell find go -name '*.go' -not -path 'go/bin/*' 2>/dev/null) go/go.mod go/go.sum
# The protobuf generators of `make proto`, pinned (protoc itself comes with grpcio-tools).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOC_GEN_GO := .tools/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)/protoc-gen-go
PROTOC_GEN_GO_GRPC := .tools/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)/protoc-gen-go-grpc
PROTO_FILES := $(shell cd proto 2>/dev/null && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
# Each proto folder's Python package (FOLDER:DIR): its code lands in DIR, imported as DIR's dotted
# path; every folder in proto/ needs one.
PROTO_PY_PACKAGES := recommendations/v1:systems/rpc/gen inference/v2:systems/inference/gen
PROTO_PY := $(foreach p,$(PROTO_PY_PACKAGES),$(lastword $(subst :, ,$(p))))
PROTO_GO := go/gen
# ghz, the gRPC benchmark loadgen's gRPC mode is compared with in `make bench-engines`, pinned.
GHZ_VERSION := v0.121.0
GHZ := .tools/ghz-$(GHZ_VERSION)/ghz

.PHONY: help setup redis-server postgresql bench bench-gpu bench-engines test pytest gotest soak lint typecheck report gate proto clean

help:
	@echo "make bench      run the quick profile of every pattern and write a report"
	@echo "make test       lint, type-check and run the Python and Go tests"
	@echo "make bench-gpu  the inference pattern on CUDA (its gpu profile; the CPU without a GPU)"
	@echo "make bench-engines  the load engines' headroom (loadgen vs wrk and ghz, Locust recording cost)"
	@echo "make lint       actionlint, ruff check + format check, gofmt, go vet"
	@echo "make typecheck  mypy --strict"
	@echo "make report     re-render a run's report (RUN=<run-id>, default: the newest run)"
	@echo "make gate       the regression gate: BASE (default: merge base with main) vs HEAD"
	@echo "make soak       fault-injection campaign: RUNS (default 40) faulted runs, then the fuzz tests"
	@echo "make proto      regenerate the code of the contracts in proto/ (lint checks it for drift)"

# The virtual environment, from the lock file; redone only when the lock or pyproject changes.
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (CI images often set it) every
# process would otherwise compile torch's sources again (importing the inference server: 5.5 s, not 2 s).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

$(GO_BINARIES) &: $(GO_SOURCES)
	cd go && $(GO) build -o bin/ ./cmd/...

# Redis, for the edge pattern's shared rate limiter: Debian's redis-server, which the harness and
# the tests start as their own processes on 127.0.0.1 (the package's service is never used).
redis-server:
	@command -v redis-server >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# PostgreSQL, for the db pattern: Debian's server programs, which the harness and the tests run
# as their own processes on 127.0.0.1 (systems/db/postgres.py; the package's service is never used).
postgresql:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

setup: $(STAMP) $(GO_BINARIES) redis-server postgresql

bench: setup
	$(BIN)/patternbench run --all --profile quick

# The inference pattern on one GPU in under 5 minutes: CUDA graphs per batch-size bucket, rates a
# GPU's batches can take (system.toml's [profiles.gpu]); on a machine without CUDA, the CPU.
bench-gpu: setup
	$(BIN)/patternbench run inference --profile gpu

# The load engines' headroom: loadgen vs wrk on a Go hello server, Locust's recording overhead,
# loadgen's gRPC mode vs ghz on the go-grpc server (rpcgrpc).
bench-engines: setup $(GHZ)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	PATTERNBENCH_GHZ=$(abspath $(GHZ)) $(BIN)/patternbench engines --grpc-target rpc/go-grpc

$(GHZ):
	GOBIN=$(abspath $(@D)) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

# The regression gate: both revisions in worktrees, the gate profile interleaved, exit 0/1/2.
BASE ?= $(shell git merge-base HEAD origin/main 2>/dev/null || git merge-base HEAD main 2>/dev/null)
HEAD_REF ?= HEAD
gate: setup
	@test -n "$(BASE)" || { echo "make gate: no merge base with main; give BASE=<ref>"; exit 2; }
	$(BIN)/patternbench gate --base $(BASE) --head $(HEAD_REF) \
		$(if $(PATTERNS),--patterns $(PATTERNS)) $(if $(BUDGET),--budget $(BUDGET))

test: lint typecheck pytest gotest

pytest: setup
	$(BIN)/python -m pytest -q --durations=10

gotest: redis-server
	cd go && $(GO) test -race -count=1 ./...

# The campaign the project runs on itself: RUNS short runs, one fault each (SIGINT, SIGTERM or
# SIGKILL to the harness, SIGKILL to the system or a support), then every count must be zero;
# then the property-based (fuzz) tests with their long profile.
soak: setup
	$(BIN)/patternbench soak --runs $(or $(RUNS),40)
	PATTERNBENCH_HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest -q -m fuzz tests/integration

# actionlint checks .github/workflows; installed with the Go toolchain, pinned, into .tools/.
$(ACTIONLINT):
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

lint: $(STAMP) $(ACTIONLINT) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	$(ACTIONLINT)
	@$(PROTO_GENERATE) $(PROTO_DRIFTED) if [ -n "$$drifted" ]; then \
		echo "proto drift: $$(echo $$drifted) differ from what make proto generates from proto/: run make proto"; \
		exit 1; fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@unformatted=$$(gofmt -l go); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting: $$unformatted"; exit 1; fi
	cd go && $(GO) vet ./...

# The contracts: proto/*.proto, and the code generated from them, committed — Python (with mypy
# stubs) in each folder's package of PROTO_PY_PACKAGES (proto/recommendations/v1 in
# systems/rpc/gen, imported as systems.rpc.gen.*), and Go in go/gen (by go_package).
# The generators are pinned (grpcio-tools' protoc and mypy-protobuf by the lock, the Go plugins
# above), so regenerating an unchanged contract gives byte-identical files and `make proto` is then
# a no-op; `make lint` regenerates into a temporary folder and fails when the committed files differ.
$(PROTOC_GEN_GO):
	GOBIN=$(CURDIR)/$(@D) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(CURDIR)/$(@D) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# Generates every contract into the temporary folder $$out, laid out as the repository. protoc's
# Python imports of a folder's modules (its path, e.g. recommendations.v1) are rewritten to the
# folder's package (systems.rpc.gen); the descriptor keeps its file name,
# recommendations/v1/recommendations.proto, as Go's does.
PROTO_GENERATE = set -euo pipefail; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	for f in $(PROTO_FILES); do case " $(PROTO_PY_PACKAGES) " in *" $${f%/*}:"*) ;; \
		*) echo "make proto: proto/$${f%/*} has no Python package in PROTO_PY_PACKAGES"; exit 1;; \
		esac; done; \
	mkdir -p "$$out/raw" "$$out/$(PROTO_GO)"; \
	$(BIN)/python -m grpc_tools.protoc -Iproto \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--plugin=protoc-gen-go=$(PROTOC_GEN_GO) --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) \
		--python_out="$$out/raw" --grpc_python_out="$$out/raw" \
		--mypy_out=quiet:"$$out/raw" --mypy_grpc_out=quiet:"$$out/raw" \
		--go_out="$$out/$(PROTO_GO)" --go_opt=paths=source_relative \
		--go-grpc_out="$$out/$(PROTO_GO)" --go-grpc_opt=paths=source_relative $(PROTO_FILES); \
	for pair in $(PROTO_PY_PACKAGES); do \
		folder=$${pair%%:*}; pkg=$${pair/*:/}; from=$${folder//\//.}; to=$${pkg//\//.}; \
		esc=$${from//./\\.}; mkdir -p "$$out/$$pkg"; \
		for f in "$$out/raw/$$folder"/*; do \
			sed -e "s/^from $$esc import /from $$to import /" \
				-e "s/'$$esc\.\([A-Za-z0-9_]*_pb2\)'/'$$to.\1'/" \
				"$$f" > "$$out/$$pkg/$$(basename "$$f")"; done; \
		printf '"""Generated by `make proto` from proto/%s: do not edit."""\n' "$$folder" \
			> "$$out/$$pkg/__init__.py"; \
		if grep -n "^from $$esc\|^import $$esc\|$$esc\.[A-Za-z0-9_]*_pb2" "$$out/$$pkg"/*; then \
			echo "make proto: an import was not rewritten"; exit 1; fi; done;

# Sets $$drifted: the generated files that differ from $$out's, or that only one side has.
PROTO_DRIFTED = drifted=$$( { (cd "$$out" && find $(PROTO_PY) $(PROTO_GO) -type f); \
	find $(PROTO_PY) $(PROTO_GO) -type f -not -path '*/__pycache__/*' 2>/dev/null || true; } \
	| LC_ALL=C sort -u | while read -r f; do cmp -s "$$out/$$f" "$$f" || echo "$$f"; done );

proto: $(STAMP) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
	@$(PROTO_GENERATE) $(PROTO_DRIFTED) \
	for f in $$drifted; do \
		if [ -f "$$out/$$f" ]; then mkdir -p "$$(dirname "$$f")"; cp "$$out/$$f" "$$f"; \
			echo "make proto: wrote $$f"; \
		else rm -f "$$f"; echo "make proto: removed $$f"; fi; done; \
	[ -n "$$drifted" ] || echo "make proto: the generated code is up to date"

typecheck: $(STAMP)
	$(BIN)/mypy

report: $(STAMP)
	@run="$(RUN)"; if [ -z "$$run" ]; then \
		run=$$(ls -1d results/runs/*/ 2>/dev/null | sort | tail -n 1); fi; \
	if [ -z "$$run" ]; then echo "no stored run: make bench first"; exit 2; fi; \
	$(BIN)/patternbench report "$$run"

clean:
	rm -rf go/bin .mypy_cache .ruff_cache .pytest_cache
