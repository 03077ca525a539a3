# Two commands do everything: `make run` (the gateway, in demo mode) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/grok-api serve --demo

serve: $(STAMP)
	$(BIN)/grok-api serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/limits.py
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/observability.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Containers and docs (see docs/deployment.md, docs/configuration.md)
.PHONY: container-test docs docs-check

container-test: $(STAMP)
	bash tests/container/prepare.sh
	GROK_API_CONTAINER_TEST=1 $(BIN)/pytest tests/test_container.py

docs: $(STAMP)
	$(BIN)/python -m grok_api.config_docs

docs-check: $(STAMP)
	$(BIN)/python -m grok_api.config_docs --check
