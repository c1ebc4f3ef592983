# Set-up and everyday commands. `make demo` and `make test` install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job end to end on the embedded DuckDB default (./warehouse.duckdb).
demo: $(STAMP)
	$(BIN)/warehouse init
	$(BIN)/warehouse demo

## Debian packages the tests need (as root on Debian; elsewhere says what it skipped).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  need=""; \
	  [ -x /usr/lib/postgresql/15/bin/initdb ] || need="$$need postgresql-15"; \
	  dpkg -s postgresql-15-cron >/dev/null 2>&1 || need="$$need postgresql-15-cron"; \
	  [ -x /usr/bin/chromium ] || need="$$need chromium"; \
	  if [ -n "$$need" ]; then \
	    echo "installing:$$need"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	  fi; \
	else \
	  echo "not root on Debian: using the PostgreSQL found on this machine (if any), installing nothing"; \
	fi

## The whole test suite (DuckDB and a real PostgreSQL started by the tests).
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

## TSBS-style benchmark at small scale (100 hosts, 1 day; both engines, < 5 min), then ingest.
bench: $(STAMP) system-deps
	$(BIN)/python bench/tsbs/run.py --scale 100 --days 1
	$(BIN)/python bench/ingest.py --points 1000000

lint: $(STAMP)
	$(BIN)/ruff check warehouse tests bench migrations

clean:
	rm -rf $(VENV) .pytest_cache warehouse.duckdb warehouse.duckdb.wal
