# Kestrel: `make run` serves the API locally, `make test` runs every check. Both set up .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests keep compiled bytecode (and pytest's assert-rewritten test modules) in .venv/pycache,
# even where PYTHONDONTWRITEBYTECODE is set: otherwise each xdist worker and every process a test
# starts (training jobs, `kestrel serve`, the CLI, gateway workers) compiles it all again, about
# 18 s of CPU per pytest process on the 2-core dev machine.
PYTEST := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache $(BIN)/pytest

.PHONY: run test test-fast test-random lint bench soak audit backbone clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Kestrel needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Converts the pretrained backbone to ONNX once; later runs only check the cache.
backbone: $(STAMP)
	$(BIN)/python -m kestrel.vision.backbone

run: $(STAMP) backbone
	$(BIN)/kestrel serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000} --data-dir $${KESTREL_DATA_DIR:-./data}

# ruff (incl. McCabe complexity <= 15), formatting, types, and the package layers (import-linter
# contracts in pyproject.toml; docs/architecture.md explains every allowed edge).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Every test, in parallel on every core (pytest-xdist). worksteal: a worker that runs out of tests
# takes pending ones from the other, so one slow module (crash, e2e, moto faults) no longer leaves a
# core idle at the end.
test: lint backbone
	$(PYTEST) -n auto --dist worksteal

# The inner loop: the local runtime's tests without training, moto, browser, crash, fuzz or CDK synth.
test-fast: $(STAMP) backbone
	$(PYTEST) -n auto --dist worksteal -m "not slow and not aws" --ignore=tests/e2e --ignore=tests/crash --ignore=tests/fuzz --ignore=tests/infra

# The suite in a random order (the seed is printed; SEED=n repeats an order), to find tests that
# depend on what ran before them.
test-random: $(STAMP) backbone
	$(PYTEST) -n auto --dist worksteal --random-order $${SEED:+--random-order-seed=$$SEED}

# The fuzz, security and crash suites at full length (make test runs their short profile); their
# figures go into docs/benchmarks.md even when a test fails.
soak: $(STAMP) backbone
	rm -rf build/soak
	KESTREL_SOAK=1 $(BIN)/pytest tests/fuzz tests/security tests/crash; status=$$?; \
	$(BIN)/python -m bench.soak_report; exit $$status

bench: $(STAMP) backbone
	$(BIN)/python -m bench.run

# Every package installed in the venv (runtime + dev, the exact versions that run) against PyPI's
# vulnerability records. Strict: a package that cannot be checked fails the audit, never passes it.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off --desc

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
