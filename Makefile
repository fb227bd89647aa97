# patternbench — every target installs what it needs (idempotently), then runs.
#   make bench      quick profile of every pattern; prints where the report is
#   make test       lint, type check, Python and Go tests
#   make report     re-render the report of a run (RUN=<run-id>, default: the newest)
#   make gate       the regression gate of BASE (default: the merge base with main) vs HEAD
#   make soak       fault-injection campaign (RUNS=<n>, default 40), then the fuzz tests

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
GO ?= go
GO_BINARIES := go/bin/fanout go/bin/latencysim go/bin/loadgen go/bin/hello go/bin/workerpool
ACTIONLINT_VERSION := v1.7.7
ACTIONLINT := .tools/actionlint
GO_SOURCES := $(shell find go -name '*.go' -not -path 'go/bin/*' 2>/dev/null) go/go.mod go/go.sum

.PHONY: help setup bench bench-engines test pytest gotest soak lint typecheck report gate clean

help:
	@echo "make bench      run the quick profile of every pattern and write a report"
	@echo "make test       lint, type-check and run the Python and Go tests"
	@echo "make bench-engines  the load engines' headroom (loadgen vs wrk, Locust recording cost)"
	@echo "make lint       actionlint, ruff check + format check, gofmt, go vet"
	@echo "make typecheck  mypy --strict"
	@echo "make report     re-render a run's report (RUN=<run-id>, default: the newest run)"
	@echo "make gate       the regression gate: BASE (default: merge base with main) vs HEAD"
	@echo "make soak       fault-injection campaign: RUNS (default 40) faulted runs, then the fuzz tests"

# The virtual environment, from the lock file; redone only when the lock or pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

$(GO_BINARIES) &: $(GO_SOURCES)
	cd go && $(GO) build -o bin/ ./cmd/...

setup: $(STAMP) $(GO_BINARIES)

bench: setup
	$(BIN)/patternbench run --all --profile quick

# The load engines' headroom: loadgen vs wrk on a Go hello server, Locust's recording overhead.
bench-engines: setup
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/patternbench engines

# The regression gate: both revisions in worktrees, the gate profile interleaved, exit 0/1/2.
BASE ?= $(shell git merge-base HEAD origin/main 2>/dev/null || git merge-base HEAD main 2>/dev/null)
HEAD_REF ?= HEAD
gate: setup
	@test -n "$(BASE)" || { echo "make gate: no merge base with main; give BASE=<ref>"; exit 2; }
	$(BIN)/patternbench gate --base $(BASE) --head $(HEAD_REF) \
		$(if $(PATTERNS),--patterns $(PATTERNS)) $(if $(BUDGET),--budget $(BUDGET))

test: lint typecheck pytest gotest

pytest: setup
	$(BIN)/python -m pytest -q

gotest:
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

lint: $(STAMP) $(ACTIONLINT)
	$(ACTIONLINT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@unformatted=$$(gofmt -l go); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting: $$unformatted"; exit 1; fi
	cd go && $(GO) vet ./...

typecheck: $(STAMP)
	$(BIN)/mypy

report: $(STAMP)
	@run="$(RUN)"; if [ -z "$$run" ]; then \
		run=$$(ls -1d results/runs/*/ 2>/dev/null | sort | tail -n 1); fi; \
	if [ -z "$$run" ]; then echo "no stored run: make bench first"; exit 2; fi; \
	$(BIN)/patternbench report "$$run"

clean:
	rm -rf go/bin .mypy_cache .ruff_cache .pytest_cache
