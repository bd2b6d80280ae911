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

.PHONY: mutate pytest-yaml-oldest demo test lint typecheck typecheck-steps pytest pytest-steps update-goldens docs bench fuzz scan clean

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
	@echo "Rendered manifests (one folder per step, Flux wiring in flux/):"
	@cd $(DEMO_OUT) && find rendered -type f | sort | sed 's/^/  /'
	@echo
	@echo "The training step of the production run:"
	@cat $(DEMO_OUT)/rendered/granite-20261124/02-train-phase-1/manifests.yaml
	@echo
	@echo "Everything is in $(DEMO_OUT)/rendered/"

lint: $(VENV)/.dev
	$(BIN)/ruff check compiler tests bench
	$(BIN)/ruff format --check compiler tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev
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

# The step modules type-checked where their heavy dependencies (and their types) are installed.
typecheck-steps: $(STEPS_VENV)/.steps
	$(SBIN)/mypy -p ilab_gitops.steps

test: lint typecheck pytest pytest-yaml-oldest pytest-steps typecheck-steps

# Regenerate golden files, JSON Schemas and the spec reference on purpose.
update-goldens: $(VENV)/.dev
	$(BIN)/pytest -q --update-goldens tests/unit

docs: update-goldens

# checkov's Kubernetes checks on the golden trees, in its own venv (it pins many packages).
# `make test` runs the same scan when ILAB_REQUIRE_SCAN=1 (CI sets it).
scan:
	PYTHON=$(PYTHON) SCAN_VENV=$(SCAN_VENV) tests/security/run_checkov.sh

# Benchmarks (not tests): compile/render/validate at scale; see README "Performance".
bench: $(VENV)/.dev
	$(PY) bench/compile.py --runs $(RUNS)

# A long fuzzing campaign; exit 1 and the minimal input on a failure.
fuzz: $(VENV)/.dev
	$(PY) bench/fuzz.py --minutes $(MINUTES)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache

# Mutation test of the compiler core, the classifier and the escaping (not run in CI; the
# score is in the README). MUTANTS = mutants per module, an evenly spaced subset.
MUTANTS ?= 4
mutate: $(VENV)/.dev
	$(PY) -m tests.support.mutation --max $(MUTANTS)
