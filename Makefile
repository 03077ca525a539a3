# Two commands do everything: `make run` (the gateway, in demo mode) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck pytest bench clean lock

# Installs exactly what requirements.lock pins (every transitive version, with hashes), then
# the project itself. `make lock` refreshes the lock from pyproject.toml (after a dependency
# changes); it runs pip-tools, pinned, from a venv of its own.
LOCK := requirements.lock
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS)
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --unsafe-package grok-api --strip-extras \
		--no-emit-index-url --no-emit-find-links --all-extras \
		--output-file $(LOCK) pyproject.toml

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
	rm -rf $(VENV) $(LOCK_VENV) .mypy_cache .pytest_cache .ruff_cache

# Containers and docs (see docs/deployment.md, docs/configuration.md)
.PHONY: container-test docs docs-check

container-test: $(STAMP)
	bash tests/container/prepare.sh
	GROK_API_CONTAINER_TEST=1 $(BIN)/pytest tests/test_container.py

docs: $(STAMP)
	$(BIN)/python -m grok_api.config_docs

docs-check: $(STAMP)
	$(BIN)/python -m grok_api.config_docs --check

# Mutation testing (not part of `make test`): mutmut (the `mutation` extra, in the lock) over the
# modules named in pyproject.toml's [tool.mutmut], driven by the fast direct tests only; the
# report is killed/survived/equivalent per module (equivalent mutants are listed in
# tests/MUTATION.md). About five to ten minutes on 2 cores.
.PHONY: mutation

mutation: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 >mutants.log 2>&1 || (tail -c 2000 mutants.log; exit 1)
	$(BIN)/python tests/mutation_report.py
