# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-live faults lint migrate demo worker beat log-follower clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Serve the portal with demo data and live usage at http://127.0.0.1:8000
# The local demo asks for DEBUG (and so a fresh key per start); nothing else here does.
run: export DJANGO_DEBUG ?= true
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py rundemo

## Run the whole suite (PostgreSQL/Redis parts run when DATABASE_URL/REDIS_URL are set)
# Its checks load the settings as production does, which refuse to start without a key.
test bench bench-live faults: export DJANGO_SECRET_KEY ?= $(shell python3 -c 'import secrets; print(secrets.token_urlsafe(64))')
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) manage.py charging_bench

## Live pushes to 1,000 open screens from 2 server processes (needs DATABASE_URL and REDIS_URL)
bench-live: $(STAMP)
	$(PY) manage.py live_bench

## Crash a worker, Redis, PostgreSQL and the log follower mid-run, on servers of its own
faults: $(STAMP)
	$(PY) manage.py fault_drills

lint: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

## A real Celery worker (needs REDIS_URL)
worker: $(STAMP)
	$(VENV)/bin/celery -A portal worker --loglevel=info

## Celery beat: expiry, recurring charges, the quota store's log (needs REDIS_URL)
beat: $(STAMP)
	$(VENV)/bin/celery -A portal beat --loglevel=info

## The quota store's log applied as it grows, at a lower CPU priority than sessions (needs REDIS_URL)
log-follower: $(STAMP)
	$(PY) manage.py quota_store follow

clean:
	rm -rf $(VENV) db.sqlite3 .test-*.sqlite3* staticfiles

## schemathesis against the running API, once per role, FUZZ_EXAMPLES cases per operation
FUZZ_EXAMPLES ?= 25
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.api --examples $(FUZZ_EXAMPLES)
