# One command to run, one to test. Everything they need is installed here, nothing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HSQBO_RABBITMQ_PORT ?= 5673
export HSQBO_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:$(HSQBO_RABBITMQ_PORT)/
export HSQBO_POSTGRES_PORT ?= 5433
export HSQBO_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:$(HSQBO_POSTGRES_PORT)/postgres
test soak: export HSQBO_REQUIRE_BROKER := 1
test: export HSQBO_REQUIRE_PROMTOOL := 1
test: export HSQBO_REQUIRE_POSTGRES := 1
NODE := deploy/rabbitmq/node
PG_NODE := deploy/postgres/node
PYTEST_ARGS ?=
SOAK_RUNS ?= 10

.PHONY: help venv rabbitmq chromium postgres promtool test soak lint run bench clean

help:
	@echo "make run    the whole stack on this machine (RabbitMQ node, sandboxes, receiver, worker, poller, status page, demo traffic)"
	@echo "make test   install what is missing (venv, rabbitmq-server, chromium, postgresql, promtool), start a private RabbitMQ node"
	@echo "            and a private Postgres server, run the suite"
	@echo "make lint   ruff + mypy --strict"
	@echo "make bench  benchmarks; figures go to benchmarks/results/"
	@echo "make soak   the fault tests SOAK_RUNS (10) times in a row, to catch a rare failure"

$(BIN)/hsqbo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,otel]'
	@touch $@

venv: $(BIN)/hsqbo

APT_INSTALL = SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq

# Debian's rabbitmq-server, installed once; the node itself is private (deploy/rabbitmq/node).
rabbitmq:
	@command -v rabbitmq-server >/dev/null || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { \
	  echo "installing rabbitmq-server with apt-get"; $(APT_INSTALL) rabbitmq-server >/dev/null; }

# Debian's Chromium and its driver: the status page is tested in a real headless browser.
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
	  echo "installing chromium and chromium-driver with apt-get"; $(APT_INSTALL) chromium chromium-driver >/dev/null; }

# Debian's PostgreSQL server, installed once (its own cluster on 5432 is left alone); the server the tests use is
# private (deploy/postgres/node).
postgres:
	@compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { \
	  echo "installing postgresql with apt-get"; $(APT_INSTALL) postgresql >/dev/null; }

# Debian's Prometheus package, for its promtool: the alert rules' unit tests (deploy/prometheus/*-tests.yml).
promtool:
	@command -v promtool >/dev/null || { \
	  echo "installing prometheus (promtool) with apt-get"; $(APT_INSTALL) prometheus >/dev/null; }

test: venv rabbitmq chromium postgres promtool
	@$(PG_NODE) start
	@$(NODE) start || { $(PG_NODE) stop; exit 1; }
	@set +e; $(BIN)/pytest $(PYTEST_ARGS); status=$$?; $(NODE) stop; $(PG_NODE) stop; exit $$status

# A failure that shows once in many runs (a race under SIGKILL) needs many runs to be seen: stop at the first one.
soak: venv rabbitmq
	@$(NODE) start
	@set +e; for run in $$(seq $(SOAK_RUNS)); do echo "soak run $$run of $(SOAK_RUNS)"; \
	  $(BIN)/pytest -q -x tests/integration/test_faults.py || { status=$$?; break; }; done; \
	  $(NODE) stop; exit $${status:-0}

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

run: venv rabbitmq
	@$(NODE) start
	@trap '$(NODE) stop' EXIT; $(BIN)/hsqbo run

bench: venv rabbitmq postgres
	@$(PG_NODE) start
	@$(NODE) start || { $(PG_NODE) stop; exit 1; }
	@set +e; $(BIN)/python -m benchmarks; status=$$?; $(NODE) stop; $(PG_NODE) stop; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
