# Kestrel: `make run` serves the API locally, `make test` runs every check. Both set up .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak backbone clean

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint backbone
	$(BIN)/pytest

# The fuzz and security suites at full length (make test runs their short profile).
soak: $(STAMP) backbone
	KESTREL_SOAK=1 $(BIN)/pytest tests/fuzz tests/security

bench: $(STAMP) backbone
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
