# The README's two commands: `make up` runs the stack, `make test` runs every test.
SHELL := /bin/bash
VENV := build/venvs/test
PY := $(VENV)/bin/python
COMPOSE ?= docker compose

.PHONY: help up down logs load gateway splunk-check report dashboards dashboards-delete stack-info \
	test setup lint format bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Folders bind-mounted into the stack, created first so that they belong to you (a one-shot
# container of the stack then opens them to the services' non-root users).
STACK_DIRS := $${TELEMETRY_DIR:-telemetry} $${REPORTS_DIR:-reports}
COMPOSE_ALL := $(COMPOSE) --profile gateway --profile workers

up: ## run the stack (mock LLM, assistant, collector, load generator); prints where to look
	@mkdir -p $(STACK_DIRS)
	$(COMPOSE) up -d --build --wait
	@python3 scripts/stack_info.py $(COMPOSE)

gateway: ## run the stack with a gateway collector between the agent and the backend
	@mkdir -p $(STACK_DIRS)
	SPLUNK_GATEWAY_URL=gateway $(COMPOSE) --profile gateway up -d --build --wait
	@python3 scripts/stack_info.py $(COMPOSE) --profile gateway

down: ## stop the stack and remove its containers (the telemetry and reports folders stay)
	$(COMPOSE_ALL) down --remove-orphans

logs: ## follow the stack's logs
	$(COMPOSE) logs -f --tail=100

load: ## another bounded load run with the current LOADGEN_* settings; prints its summary
	$(COMPOSE) run --rm --no-deps -e LOADGEN_HEADLESS=true loadgen
	@cat $${REPORTS_DIR:-reports}/loadgen/llm-summary.md 2>/dev/null || true

stack-info: ## print where to look (chat UI, Locust UI, telemetry archive, reports)
	@python3 scripts/stack_info.py $(COMPOSE)

splunk-check: ## check SPLUNK_ACCESS_TOKEN / SPLUNK_REALM with a cheap authenticated call
	@python3 scripts/splunk_check.py

report: ## model scorecard from the telemetry archive (reports/scorecard.html)
	@summary=$${REPORTS_DIR:-reports}/loadgen/llm-summary.json; \
	PYTHONPATH=scorecard/src python3 -m scorecard --archive $${TELEMETRY_DIR:-telemetry}/archive \
	  --out $${REPORTS_DIR:-reports} $$([ -f "$$summary" ] && echo --loadgen-summary "$$summary") \
	  $(SCORECARD_ARGS)

dashboards: ## create or update the LLM dashboards in Splunk Observability Cloud (needs token + realm)
	PYTHONPATH=dashboards python3 -m llm_dashboards apply

dashboards-delete: ## delete the dashboards `make dashboards` created
	PYTHONPATH=dashboards python3 -m llm_dashboards delete

# The collector build (CPU: Go) runs alongside the other steps (network: pip, apt).
setup: ## virtualenvs, test collector, Chromium, container engine (done by `make test`)
	@scripts/build-collector.sh & collector=$$!; \
	scripts/setup-venvs.sh && scripts/setup-chromium.sh && scripts/container-engine.sh setup \
	  && bench/setup.sh; status=$$?; \
	wait $$collector || status=1; exit $$status

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two lanes side by side (pytest-xdist; tests/conftest.py says what may be split between them).
TEST_LANES ?= 2
test: setup lint ## run every test (sets everything up on a fresh machine)
	$(VENV)/bin/pytest -n $(TEST_LANES) $(PYTEST_ARGS)

bench: setup ## run the benchmarks; results go to docs/performance.md (BENCH_ARGS=--quick for a smoke run)
	$(PY) bench/run_all.py $(BENCH_ARGS)
