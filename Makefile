# stackctl: every install step lives here, so that a fresh machine needs only
#   make demo   (sets everything up and runs the whole flow against the local sandbox)
#   make test   (sets everything up and runs every test tier)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
# make test's pytest-xdist workers, each with a sandbox of its own; how the suite is shared
# between them: tests/scheduling.py. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist loadscope --no-loadscope-reorder)

.PHONY: all venv sandbox kustomize kustomize-pins sops actionlint test test-fast test-integration lint demo demo-kubeflow bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and kustomize
# from Go modules into ~/.cache/stackctl/sandbox/<versions>/bin; a no-op when cached.
sandbox:
	sandbox/build.sh all

kustomize:
	sandbox/build.sh kustomize

# Other kustomize releases a stack may pin (stack.yaml `kustomize:`); the tests of the pin
# render with v5.5.0 beside the sandbox's own. A no-op when cached.
KUSTOMIZE_PINS ?= v5.5.0
kustomize-pins:
	for v in $(KUSTOMIZE_PINS); do sandbox/build.sh kustomize $$v; done

# The sops program, for SOPS files whose keys are not age (PGP, KMS, Vault) and for the
# tests that encrypt files with it; cached on its own under tools/sops/.
sops:
	sandbox/build.sh sops

# The GitHub Actions linter the pipeline tests run; optional (they skip without it), so a
# failed build does not stop `make test`.
actionlint:
	sandbox/build.sh actionlint

test: venv sandbox kustomize-pins sops
	-@sandbox/build.sh actionlint >/dev/null
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-fast: venv kustomize sops
	$(BIN)/pytest -m "not integration and not slow" $(PYTEST_ARGS)

test-integration: venv sandbox
	$(BIN)/pytest -m integration $(XDIST) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check gitops tests bench
	$(BIN)/mypy

demo: venv sandbox
	$(BIN)/python -m gitops.demo

# Real Kubeflow, live: v1.8.1 installed on the sandbox, upgraded hop by hop to v1.11.0
# (docs/kubeflow-live.md); needs ../shared/upstream. DEMO_ARGS=--to v1.9.1 stops earlier.
demo-kubeflow: venv sandbox
	$(BIN)/python -m gitops.demo --kubeflow $(DEMO_ARGS)

bench: venv sandbox
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
