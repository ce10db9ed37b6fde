# The README's two commands: `make up` runs the stack, `make test` runs every test.
SHELL := /bin/bash
VENV := build/venvs/test
PY := $(VENV)/bin/python
COMPOSE ?= docker compose

.PHONY: help up down logs test setup lint format

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

up: ## run the stack (mock LLM, assistant, collector, load generator)
	$(COMPOSE) up -d --build

down: ## stop the stack and remove its containers
	$(COMPOSE) down --remove-orphans

logs: ## follow the stack's logs
	$(COMPOSE) logs -f --tail=100

setup: ## virtualenvs with pinned deps and the test collector (done by `make test`)
	scripts/setup-venvs.sh
	scripts/build-collector.sh

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint ## run every test (sets everything up on a fresh machine)
	$(VENV)/bin/pytest $(PYTEST_ARGS)
