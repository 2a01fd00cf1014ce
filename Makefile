# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/tailored

.PHONY: demo test test-under-load test-postgres lint system-packages schema bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	touch $@ $(VENV)/.runtime

# The demo uses REDIS_URL, else a Redis answering on localhost (database 15), else the in-process
# memory store (then trained personas and scores cannot reach the web process, and no worker runs).
DEMO_REDIS_URL := $(or $(REDIS_URL),$(shell $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 0.3); print('redis://127.0.0.1:6379/15')" 2>/dev/null))

## demo: install, migrate, load the demo shop, train on synthetic visitors, serve http://127.0.0.1:8000
demo: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	REDIS_URL=$(DEMO_REDIS_URL) $(PY) manage.py tailored_train --synthetic 2000
	@echo ""
	@echo "  Site:   http://127.0.0.1:8000/"
	@echo "  Admin:  http://127.0.0.1:8000/admin/   (login: editor / tailored-demo)"
	@echo "  Store:  $(or $(DEMO_REDIS_URL),in-process memory store (start Redis or set REDIS_URL for personas and the worker))"
	@echo ""
	@if [ -n "$(DEMO_REDIS_URL)" ]; then \
	  REDIS_URL=$(DEMO_REDIS_URL) $(PY) manage.py tailored_worker & worker=$$!; trap "kill $$worker 2>/dev/null" EXIT INT TERM; \
	  REDIS_URL=$(DEMO_REDIS_URL) $(PY) manage.py runserver 127.0.0.1:8000; \
	else $(PY) manage.py runserver 127.0.0.1:8000; fi

## system-packages: redis-server, chromium, nginx-light and varnish (Debian packages; installed when run as root)
system-packages:
	@bash .ci/system-packages

## lint: ruff, Django checks, migrations up to date, import-linter contracts
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	DJANGO_SETTINGS_MODULE=cms.settings.test $(PY) manage.py check --fail-level WARNING
	DJANGO_SETTINGS_MODULE=cms.settings.test $(PY) manage.py makemigrations --check --dry-run
	@# import-linter walks folders, so it reads the installed layout (one `tailored` tree), not the repo's.
	rm -rf build && $(PY) -m pip install --quiet --no-deps --target build/lint .
	PYTHONPATH=build/lint $(VENV)/bin/lint-imports && rm -rf build

## test: everything, including the Playwright journeys in tests/e2e/
test: $(VENV)/.dev system-packages lint test-js
	$(VENV)/bin/pytest

## test-js: the JavaScript SDK in sdk/js (@tailored/edge, @tailored/client): npm ci from the lockfile
## when node_modules is missing or older than it, then tsc and Node's test runner (fixtures/spec/ included)
JS := sdk/js
.PHONY: test-js
$(JS)/node_modules/.installed: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $@

test-js: $(JS)/node_modules/.installed
	cd $(JS) && npm run --silent build && node --test packages/*/test/*.test.js

## test-under-load: make test three times in a row with every core busy (the suite must not flake)
test-under-load:
	RUNS=3 .ci/under-load $(MAKE) test

## test-postgres: the database tests again on the local PostgreSQL server
test-postgres: $(VENV)/.dev system-packages
	DATABASE_URL=$(POSTGRES_URL) $(VENV)/bin/pytest -m "not e2e and not integration"

## schema: rewrite graphql/schema.graphql from the code's schema
schema: $(VENV)/.dev
	DJANGO_SETTINGS_MODULE=cms.settings.test $(PY) manage.py graphql_schema --schema grapple.schema.schema --out graphql/schema.graphql

## bench: run every benchmark script
bench: $(VENV)/.dev system-packages
	for script in bench/[!_]*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) var db.sqlite3
