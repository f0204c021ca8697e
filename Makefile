# The two set-up commands of the README: `make demo` and `make test`.
# Each creates the virtualenv it needs (.venv) from pyproject.toml.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck docker-env unit bench conformance clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The core in a few seconds, then the etl pipeline triggered over REST on an embedded Airflow
# (SQLite, LocalExecutor; about a minute; Airflow's own logs go to .demo-airflow.log).
demo: $(STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/demo_rest.py --airflow-log .demo-airflow.log

lint: $(STAMP)
	$(BIN)/ruff check airflow_ci_vars tests bench examples example_dags scripts
	$(BIN)/ruff format --check airflow_ci_vars tests bench examples example_dags scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# The Docker daemon (private socket) and locally built images of tests/containers: root the first
# time (Debian packages, dockerd, debootstrap); a no-op in well under a second once all is there.
CI_VARS_TEST_DOCKER_HOST ?= unix:///tmp/airflow-ci-vars-docker/docker.sock
export CI_VARS_TEST_DOCKER_HOST

docker-env:
	scripts/docker-env

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck docker-env unit

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# gitlab-ci-local's cases through `airflow-ci-vars run` (tests/conformance; about 1.5 minutes on 2 cores).
# Its own AIRFLOW_HOME: the runner gives each worker a copy with an embedded SQLite metadata DB.
conformance: $(STAMP)
	AIRFLOW_HOME=$$(mktemp -d /tmp/airflow-ci-vars-conformance.XXXXXX) \
		$(BIN)/python tests/conformance/run-gitlab-ci-local --cli $(abspath $(BIN))/airflow-ci-vars --jobs 2 --timeout 180

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
