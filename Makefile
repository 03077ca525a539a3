# Two commands do everything: `make run` (the gateway, in demo mode) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck pytest bench clean lock

# Installs exactly what requirements.lock pins (every transitive version, with hashes), then
# the project itself. `make lock` refreshes the lock from pyproject.toml (after a dependency
# changes); it runs pip-tools, pinned, from a venv of its own. It also writes the image's lock,
# requirements-server.lock: the client and the `server` extra only, at the versions of
# requirements.lock (what the tests ran), which the Dockerfile installs with --require-hashes.
# redis needs async-timeout on Pythons before 3.11.3 (Debian bookworm's is 3.11.2), which
# pip-compile cannot see from a newer one: that pin is added to the image's lock with its marker.
LOCK := requirements.lock
SERVER_LOCK := requirements-server.lock
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
OLD_PYTHON_PINS := async-timeout==5.0.1
OLD_PYTHON := python_full_version < "3.11.3"
COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS)
	$(COMPILE) --unsafe-package grok-api --all-extras --output-file $(LOCK) pyproject.toml
	$(COMPILE) --extra server --constraint $(LOCK) --output-file $(SERVER_LOCK) pyproject.toml
	printf '%s\n' $(OLD_PYTHON_PINS) >$(LOCK_VENV)/old-python.in
	$(COMPILE) --no-header --no-annotate --output-file $(LOCK_VENV)/old-python.txt $(LOCK_VENV)/old-python.in
	sed -E 's/^([A-Za-z0-9_.-]+==[^ ]+)/\1 ; $(OLD_PYTHON)/' $(LOCK_VENV)/old-python.txt >>$(SERVER_LOCK)

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
	if command -v valgrind >/dev/null; then $(BIN)/python bench/cost.py && $(BIN)/python bench/cost_line.py; \
	else echo "bench/cost.py, cost_line.py skipped: no valgrind (apt-get install valgrind)"; fi

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
