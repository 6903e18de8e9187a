# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo console test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/ti-workflow --db sqlite:///demo.db demo

# The web console on demo.db (made by `make demo` if missing), with one account per role and
# a local SMTP sink that prints the login links: open http://127.0.0.1:8000/
console: $(STAMP)
	test -f demo.db || $(MAKE) demo
	$(BIN)/python -m ti_workflow.console.dev --db sqlite:///demo.db

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/fire_throughput.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm
