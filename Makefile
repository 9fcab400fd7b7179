# Newsdesk: `make up` runs the stack, `make test` proves it.
# Both install what a fresh Debian host lacks (Docker engine, Compose v2, a Python venv)
# and start the Docker daemon if it is not running.

SHELL := /bin/bash
.DEFAULT_GOAL := help

WEB ?= 3
WORKERS ?= 2
COMPOSE := docker compose
WAIT_TIMEOUT ?= 300
VENV := .venv/bin

.PHONY: help prepare build up down clean logs ps seed test test-unit test-integration test-e2e lint

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

prepare: ## Install what is missing, create .env, make sure base images exist
	@scripts/ensure-docker.sh
	@scripts/ensure-env.sh
	@scripts/offline-images.sh

build: prepare ## Build the app image
	$(COMPOSE) build web

up: build ## Start the stack (WEB=3 web replicas, WORKERS=2 workers) and wait until healthy
	$(COMPOSE) up -d --wait --wait-timeout $(WAIT_TIMEOUT) --remove-orphans --scale web=$(WEB) --scale worker=$(WORKERS)
	@$(COMPOSE) exec -T web flask seed --if-empty
	@scripts/after-up.sh

down: ## Stop the stack (data volumes are kept)
	$(COMPOSE) --profile test down --remove-orphans

clean: ## Stop the stack and delete its data volumes
	$(COMPOSE) --profile test down --remove-orphans --volumes

seed: ## More demo data: make seed USERS=50 ARTICLES=10000
	$(COMPOSE) exec -T web flask seed --users $(or $(USERS),20) --articles $(or $(ARTICLES),1000)

logs: ## Follow the logs of every service
	$(COMPOSE) logs -f --tail 100

ps: ## Show the services and their health
	$(COMPOSE) ps

test: up ## Unit, integration and end-to-end tests against the running stack
	$(MAKE) --no-print-directory test-unit test-integration test-e2e

test-unit: build ## Unit tests (no services), in the app image
	$(COMPOSE) --profile test build test
	$(COMPOSE) --profile test run --rm --no-deps test pytest -q -p no:cacheprovider tests/unit

test-integration: build ## Integration tests against the real PostgreSQL primary + replica and Redis
	$(COMPOSE) --profile test build test
	$(COMPOSE) up -d --wait --wait-timeout $(WAIT_TIMEOUT) db db-replica redis cache
	$(COMPOSE) --profile test run --rm test pytest -q -p no:cacheprovider tests/integration

test-e2e: ## End-to-end tests through nginx against the running stack (make up first)
	@scripts/venv.sh
	$(VENV)/pytest -q tests/e2e

lint: ## Ruff
	@scripts/venv.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

.PHONY: loadtest bench

loadtest: ## Locust, headless, against the running stack: USERS=50 SPAWN_RATE=10 DURATION=60s [LOCUST_WORKERS=2] [MAX_P95_MS=500]
	@scripts/venv.sh
	@USERS=$(or $(USERS),50) SPAWN_RATE=$(or $(SPAWN_RATE),10) DURATION=$(or $(DURATION),60s) \
	  LOCUST_WORKERS=$(or $(LOCUST_WORKERS),0) MAX_P95_MS=$(or $(MAX_P95_MS),500) \
	  MAX_FAILURE_RATIO=$(or $(MAX_FAILURE_RATIO),0.01) scripts/loadtest.sh

bench: build ## Scaling benchmark (1, 2, 4 replicas at 0.25 CPU) in its own compose project: reports/bench/, README
	@scripts/venv.sh
	$(VENV)/python scripts/bench.py --command "make bench"
