# Every target that needs Python code depends on $(STAMP), so a fresh clone
# creates .venv and installs the project before doing anything else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The machine's real services, used by `make test-real` and CI. Database
# numbers / names are ones the plugin creates and owns; see docs/configuration.md.
REAL_REDIS_URL ?= redis://127.0.0.1:6379/10
REAL_DB_URL    ?= postgresql+psycopg://postgres@127.0.0.1:5432/cachesync

HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test test-real lint wheel-check wheel-check-real bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flask --app sample_app init-db
	$(BIN)/flask --app sample_app seed-demo
	$(BIN)/flask --app sample_app run --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

test-real: $(STAMP)
	CACHESYNC_REDIS_URL=$(REAL_REDIS_URL) CACHESYNC_DB_URL=$(REAL_DB_URL) \
		$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The built wheel in a fresh venv, running examples/prices through the public API only;
# wheel-check-real also runs it on the machine's Redis and PostgreSQL (names of its own).
WHEEL_CHECK_REDIS_URL ?= redis://127.0.0.1:6379/4
WHEEL_CHECK_DB_URL    ?= postgresql+psycopg://postgres@127.0.0.1:5432/cachesync_example

wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

wheel-check-real:
	PYTHON=$(PYTHON) WHEEL_CHECK_REDIS_URL=$(WHEEL_CHECK_REDIS_URL) \
		WHEEL_CHECK_DB_URL=$(WHEEL_CHECK_DB_URL) .ci/wheel-check

# The benchmarks compare against pytest-redis and pytest-postgresql; they live in their own
# venv so their plugins never load in the project's own test runs.
BENCH_VENV  ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[dev]' pytest-redis pytest-postgresql
	touch $(BENCH_STAMP)

# Real-server rows of bench.isolation use their own db number and database name.
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/15
BENCH_DB_URL    ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_isolation

bench: $(BENCH_STAMP)
	CACHESYNC_REDIS_URL=$(BENCH_REDIS_URL) CACHESYNC_DB_URL=$(BENCH_DB_URL) \
		$(BENCH_VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(BENCH_VENV) instance .pytest_cache .mypy_cache .ruff_cache
