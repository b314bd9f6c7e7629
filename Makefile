# Power Exchange Hub. `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
VENV := .venv
DEMO_HOME := var/demo

.PHONY: setup demo test lint ui bench clean

setup:
	@scripts/bootstrap.sh

demo: setup
	@$(VENV)/bin/hub demo --home $(DEMO_HOME)

test: setup
	@scripts/postgres-test-db.sh
	@$(VENV)/bin/ruff check schemas rules ferry connectors quality hub dags tests
	@$(VENV)/bin/mypy
	@$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# make ui [RUN=1]: the Airflow UI on the demo's data; DAGs paused unless RUN=1
ui: setup
	@DEMO_HOME=$(DEMO_HOME) RUN=$(RUN) scripts/ui.sh

# make bench [SIZE=1000000] [SCALING=100000,1000000]
bench: setup
	@$(VENV)/bin/python -m bench $(if $(SIZE),--records $(SIZE)) $(if $(SCALING),--scaling $(SCALING))

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
