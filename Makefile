# Newsdesk: `make up` runs the stack, `make test` proves it.
# Both install what a fresh Debian host lacks (Docker engine, Compose v2, a Python venv)
# and start the Docker daemon if it is not running.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# WEB and WORKERS come from .env (deploy.replicas in docker-compose.yml); set them here only
# to scale once: `make up WEB=5`.
SCALE := $(if $(WEB),--scale web=$(WEB)) $(if $(WORKERS),--scale worker=$(WORKERS))
COMPOSE := docker compose
# `make dev`: the same stack with the development override on top (docker-compose.dev.yml).
COMPOSE_DEV := $(COMPOSE) -f docker-compose.yml -f docker-compose.dev.yml
WAIT_TIMEOUT ?= 300
VENV := .venv/bin

.PHONY: help prepare build up dev deploy down clean logs ps seed dump load-dump backup backups restore restore-drill monitoring monitoring-down screenshot test test-unit test-integration test-e2e test-api test-rules test-clean lint

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

prepare: ## Install what is missing, create .env, make sure base images exist
	@scripts/ensure-docker.sh
	@scripts/ensure-env.sh
	@scripts/ensure-tls.sh
	@scripts/offline-images.sh

build: prepare ## Build the app image and the database image (PostgreSQL + pgBackRest)
	$(COMPOSE) build web db

up: build ## Start the stack (WEB web replicas, WORKERS workers: 3 and 2 from .env) and wait until healthy; on a running stack, new code rolls out as with make deploy
	@scripts/deploy.sh --if-changed
	$(COMPOSE) up -d --wait --wait-timeout $(WAIT_TIMEOUT) --remove-orphans $(SCALE)
	@$(COMPOSE) exec -T web flask seed --if-empty
	@scripts/after-up.sh

dev: build ## Development mode on the same stack: source bind-mounted, auto-reload, APP_ENV=development, debug toolbar, no page cache, mail in the log (docker-compose.dev.yml); make up switches back
	$(COMPOSE_DEV) build web
	$(COMPOSE_DEV) up -d --wait --wait-timeout $(WAIT_TIMEOUT) --remove-orphans $(SCALE)
	@$(COMPOSE_DEV) exec -T web flask seed --if-empty
	@scripts/after-up.sh
	@echo "==> development mode: edits to app/ and worker/ are served without a rebuild; 'make up' switches back to production"

deploy: build ## Roll out new code without a failed request: migrate, then replace web, worker and beat (scripts/deploy.sh)
	@scripts/deploy.sh

down: ## Stop the stack and its monitoring (data volumes are kept)
	$(COMPOSE) --profile test --profile monitoring down --remove-orphans

clean: ## Stop the stack and delete its data volumes (Prometheus's too)
	$(COMPOSE) --profile test --profile monitoring down --remove-orphans --volumes

monitoring: prepare ## On the running stack: Prometheus (127.0.0.1:9090), Alertmanager, exporters, Flower (127.0.0.1:5555); graphs on /ops
	@scripts/monitoring.sh up

monitoring-down: ## Stop the monitoring profile (Prometheus keeps its data)
	@scripts/monitoring.sh down

screenshot: ## PNG of /ops as a new admin sees it (Debian's headless Chromium): reports/monitoring/ops.png; SCREENSHOT_PATH=/ picks another page
	@scripts/venv.sh
	@command -v chromium >/dev/null || { . scripts/lib.sh && apt_install chromium fonts-dejavu-core; }
	$(VENV)/python -m tools.screenshot --create-admin --path $(or $(SCREENSHOT_PATH),/ops)

seed: ## More demo data: make seed USERS=50 ARTICLES=10000
	$(COMPOSE) exec -T web flask seed --users $(or $(USERS),20) --articles $(or $(ARTICLES),1000)

dump: ## Logical dump of the database (pg_dump -Fc on the primary): backups/newsdesk-<UTC time>.dump
	@scripts/dump.sh dump

load-dump: ## Replace the data with a dump, e.g. on a fresh stack: make load-dump FILE=backups/x.dump FORCE=1 (replace articles) YES=1 (do not ask); migrates, empties caches and sessions
	@FORCE=$(FORCE) YES=$(YES) scripts/dump.sh load "$(FILE)"

backup: ## A backup now (pgBackRest, in the backup service): TYPE=incr (default; full when none exists), diff or full
	@scripts/backup.sh backup $(or $(TYPE),incr)

backups: ## List the backups, the repository's size and the time range a restore can reach
	@scripts/backup.sh list

restore: ## Restore the database to the latest state, or TARGET_TIME='2026-11-22 10:15:00+00'; re-seeds the replica; asks first unless YES=1
	@TARGET_TIME="$(TARGET_TIME)" scripts/backup.sh restore

restore-drill: ## Restore the latest state into a scratch container and compare its row counts with the primary's (non-zero on a difference)
	@scripts/backup.sh drill

logs: ## Follow the logs of every service
	$(COMPOSE) logs -f --tail 100

ps: ## Show the services and their health
	$(COMPOSE) ps

# The tests run in a compose project of their own (scripts/test.sh): newsdesk-test, nginx on
# 127.0.0.1:8180 (TEST_PROJECT, TEST_HTTP_PORT), removed afterwards unless KEEP=1. The user's
# stack and its data are never touched.
test: ## Unit tests, alert rules, integration, e2e, schemathesis on the API, the short chaos suite, a point-in-time restore drill and the monitoring profile's tests in their own stack (project newsdesk-test, :8180); KEEP=1 keeps it
	@scripts/test.sh unit rules integration e2e api chaos backup monitoring

test-unit: ## Unit tests (no services), in the app image, in the test project
	@scripts/test.sh unit

test-rules: ## promtool: Prometheus's config and the alert rules' unit tests (monitoring/tests)
	@scripts/test.sh rules

test-integration: ## Integration tests against the test project's PostgreSQL primary + replica and Redis
	@scripts/test.sh integration

test-e2e: ## End-to-end tests through the test project's nginx (starts it; KEEP=1 keeps it)
	@scripts/test.sh e2e

test-api: ## schemathesis: the API against its OpenAPI document through the test project's nginx (every check, fixed seed)
	@scripts/test.sh api

test-clean: ## Remove the test project (containers, network, volumes) that KEEP=1 left running
	@scripts/test.sh clean

lint: build ## Ruff (checks and format), and mypy on app/ and worker/ in the test image (with their dependencies)
	@scripts/venv.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(COMPOSE) --profile test build test
	@# In a compose project of its own, removed afterwards (a run in the default project left its network behind).
	@status=0; $(COMPOSE) -p newsdesk-lint --profile test run --rm --no-deps test mypy --cache-dir /tmp/mypy-cache || status=$$?; \
	  $(COMPOSE) -p newsdesk-lint --profile test down --remove-orphans >/dev/null 2>&1; exit $$status

.PHONY: loadtest bench chaos swarm-deploy swarm-test

swarm-deploy: ## Deploy deploy/swarm/stack.yml to the swarm the Docker CLI points at: secrets from .env, the migration job, then the stack (README, "Beyond one machine"); STACK=newsdesk
	@scripts/venv.sh
	$(VENV)/python -m tools.swarm deploy --stack $(or $(STACK),newsdesk)

swarm-test: build ## The stack on a simulated 3-node swarm (ndswarm-*, Docker-in-Docker): scale, rolling update, read-your-writes, node loss; prints the figures and removes everything (not part of make test)
	@scripts/venv.sh
	$(VENV)/python -m tools.swarm test

loadtest: ## Locust, headless, against the running stack: USERS=50 SPAWN_RATE=10 DURATION=60s [LOCUST_WORKERS=2] [MAX_P95_MS=500]
	@scripts/venv.sh
	@USERS=$(or $(USERS),50) SPAWN_RATE=$(or $(SPAWN_RATE),10) DURATION=$(or $(DURATION),60s) \
	  LOCUST_WORKERS=$(or $(LOCUST_WORKERS),0) MAX_P95_MS=$(or $(MAX_P95_MS),500) \
	  MAX_FAILURE_RATIO=$(or $(MAX_FAILURE_RATIO),0.01) scripts/loadtest.sh

bench: build ## Benchmark in its own project (~40 min): 1, 2, 4 replicas at 0.25 CPU (10 ms CFS period), mix and cached-only, 1 write/s, 1k vs 1M articles, 5 interleaved rounds: reports/bench/, README; BENCH_REPETITIONS, BENCH_LARGE_ARTICLES, BENCH_CPU_PERIOD... (python -m tools.bench --help)
	@scripts/venv.sh
	$(VENV)/python -m tools.bench --command "make bench"

chaos: build ## Faults one at a time under load (deploy, kills, restarts, outages), data checked after each, in its own project (newsdesk-chaos, :8280): reports/chaos/summary.md; FAULTS=deploy,redis-restart picks some
	@scripts/venv.sh
	$(VENV)/python -m tools.chaos --faults $(or $(FAULTS),all)
