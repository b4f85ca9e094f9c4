# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Only python3 (3.11+) is assumed; uv is bootstrapped into .tools/ and installs the locked
# dependencies into .venv/.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Bytecode: uv compiles the dependencies once at install, and every process (the suite's xdist
# workers, the Celery workers and servers its tests start, manage.py) keeps the .pyc of the
# project's own modules and pytest's rewritten tests. A machine that sets
# PYTHONDONTWRITEBYTECODE (this one does) would otherwise have each new process compile Django
# and the app from source: ~1.9 s of CPU per Django start-up instead of ~0.6 s.
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE

# The suite runs on the real services of DESIGN.md; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/invoice_returns
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=
# pytest-xdist workers; each gets its own test database. Two suit a 2-core machine, and the
# fault tests' waves of connections share PostgreSQL's 100 (raise it with more cores).
TEST_WORKERS ?= 3

.PHONY: help install run prod test check bench lint format messages compilemessages worker clean audit

help:
	@echo "make run    - set up, migrate, load demo data and serve on http://127.0.0.1:8000"
	@echo "make prod   - the production topology (gunicorn, worker, beat, relay; DJANGO_DEBUG=false) on"
	@echo "              PostgreSQL + Redis, as docker-compose.yml runs it; needs DATABASE_URL,"
	@echo "              CELERY_BROKER_URL, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS (README)"
	@echo "make test   - the whole suite on PostgreSQL + Redis (127.0.0.1)"
	@echo "make bench  - benchmarks on PostgreSQL; print figures"
	@echo "make check  - the CI gates: ruff, mypy, migrations, deploy check, import contracts"
	@echo "make lint   - ruff check + format check"
	@echo "make worker - a Celery worker (needs CELERY_BROKER_URL)"
	@echo "make audit  - pip-audit over the locked dependencies (says when it could not check)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced compilemessages

# Catalogs are compiled from the committed .po files by Babel (pure Python: no gettext needed).
compilemessages: $(VENV)/.synced
	$(VENV)/bin/pybabel compile --domain django --directory locale --statistics

# Extract new strings into the .po files (a developer step; needs GNU gettext).
messages: install
	DJANGO_DEBUG=true $(PY) manage.py makemessages --locale zh_Hans --ignore '.venv/*' --ignore '.tools/*' --ignore 'tests/*' --no-obsolete

tests/twilio_mock/node_modules/.installed: tests/twilio_mock/package.json tests/twilio_mock/package-lock.json
	npm ci --prefix tests/twilio_mock --no-audit --no-fund --loglevel=error
	@touch $@

# The settings default to production (DJANGO_DEBUG false): make run is the development set-up.
run: export DJANGO_DEBUG ?= true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	$(PY) manage.py runserver 127.0.0.1:8000

# The production topology without containers: the Procfile's web, worker, beat and relay (the commands
# of docker-compose.yml, word for word) under honcho, with production settings, after what
# compose does first: refuse a missing setting, migrate (its one-shot service), collect static
# files (its image build). PROD_PROCESSES picks some of them (e.g. "web beat"); WEB_PORT
# (default 8000) is gunicorn's port; PROD_ENV_FILE (default .env) is read by the check and by
# honcho. honcho stops them all when one exits (Ctrl-C too). The catalogs are compiled only
# when out of date: a running suite's processes may be reading them.
PROD_PROCESSES ?=
PROD_ENV_FILE ?= .env
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
$(MO_FILES): %.mo: %.po $(VENV)/.synced
	$(VENV)/bin/pybabel compile --domain django --directory locale --statistics

prod: export DJANGO_DEBUG := false
prod: export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
prod: $(VENV)/.synced $(MO_FILES)
	@$(PY) -m config.prod_env $(PROD_ENV_FILE)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	exec $(VENV)/bin/honcho --procfile Procfile --env $(PROD_ENV_FILE) start $(PROD_PROCESSES)

test: install tests/twilio_mock/node_modules/.installed
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  CELERY_BROKER_URL= SMS_BACKEND=memory DJANGO_DEBUG=true \
	  $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

# The CI gates (.ci/run runs them before make test); each one fails the run. The deploy check
# runs under the production settings of the README, with a throwaway random secret key.
PROD_CHECK_ENV := DJANGO_DEBUG=false DATABASE_URL=sqlite:///:memory: CELERY_BROKER_URL= \
  DJANGO_SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  DJANGO_ALLOWED_HOSTS=billing.example.com DJANGO_SSL_REDIRECT=true DJANGO_HSTS_SECONDS=31536000
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=true $(VENV)/bin/mypy
	DJANGO_DEBUG=true DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	$(PROD_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	$(VENV)/bin/lint-imports --no-logo

# Benchmarks of issue 16's goals print figures and ratios (see bench/run.py): PostgreSQL,
# redis-server, Prism (installed here as for make test) and wrk if installed (apt-get install
# wrk), else a Python load generator. Never run in make test. BENCH_SCALE=0.1 for a quick run.
bench: install tests/twilio_mock/node_modules/.installed
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

worker: export DJANGO_DEBUG ?= true
worker: install
	$(VENV)/bin/celery -A config worker -Q default,returns,sms --loglevel=INFO

# pip-audit over the locked dependencies (uv.lock). It fails (exit 2) and says so plainly when
# the vulnerability database could not be reached for some packages, instead of reporting
# "No known vulnerabilities found"; exit 1 on a known vulnerability.
AUDIT_SERVICE ?= pypi
audit: install
	$(PY) .ci/audit.py $(AUDIT_SERVICE)

clean:
	rm -rf $(VENV) $(TOOLS) tests/twilio_mock/node_modules
