# Every habit has a target; `make` (or `make help`) lists them with their one-line description.
.DEFAULT_GOAL := help
.PHONY: help setup run test test-file lint format css check-static mail migrate migration bench bench-jobs bench-ui bench-photos clean

VENV := .venv/bin

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Create .venv and install the pinned dependencies (only when the lock changed)
	@sh scripts/setup.sh

run: ## Serve the app with reload on http://localhost:8000 and a job worker beside it (SQLite db.sqlite3, migrated first)
	@sh scripts/run.sh

test: ## Run the test suite (PostgreSQL too with TEST_DATABASE_URL; browser tests need Chromium)
	@sh scripts/test.sh $(PYTEST_ARGS)

test-file: setup ## Run one test file fast on SQLite only: make test-file f=tests/test_entries_api.py [k=name]
	@[ -n "$(f)" ] || (echo 'usage: make test-file f=tests/test_x.py [k=expression]' >&2; exit 1)
	TEST_DATABASE_URL= REQUIRE_BROWSER= $(VENV)/pytest -x -q $(f) $(if $(k),-k "$(k)")

lint: setup ## Lint, format check and type check (ruff, mypy)
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

format: setup ## Format the code and apply safe lint fixes
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

css: ## Rebuild static/ (Tailwind CSS, vendored htmx, Chart.js, Swagger UI, ReDoc); needs Node
	@[ -d node_modules ] || npm ci --no-audit --no-fund
	npm run build

check-static: ## Fail when the committed static/ build is older than its sources
	@sh scripts/check-static.sh

mail: ## Start MailDev: SMTP on localhost:1025, inbox on http://localhost:1080; needs Node
	@[ -d node_modules ] || npm ci --no-audit --no-fund
	npm run mail

migrate: setup ## Apply the database migrations (DATABASE_URL, default SQLite db.sqlite3)
	$(VENV)/alembic upgrade head

migration: setup ## Autogenerate a migration from the models: make migration m="what changed"
	@[ -n "$(m)" ] || (echo 'usage: make migration m="what changed"' >&2; exit 1)
	$(VENV)/alembic revision --autogenerate -m "$(m)"

bench: setup ## Load benchmarks (not tests) with wrk on SQLite (+ PostgreSQL with BENCH_DATABASE_URL); prints tables and targets
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || (apt-get update -qq && apt-get install -y -qq wrk)
	@command -v wrk >/dev/null || (echo 'wrk is missing: sudo apt-get install wrk' >&2; exit 1)
	$(VENV)/python -m bench

bench-jobs: setup ## Job queue burst: jobs/s for one consumer and due->sent delay for 10,000 reminders due in one minute (not a test)
	$(VENV)/python -m bench.jobs

bench-ui: setup ## Lighthouse 12 (mobile) on six pages of a seeded app; prints scores and targets (not a test)
	@[ -d node_modules ] || npm ci --no-audit --no-fund
	@[ -x /usr/bin/chromium ] || [ -n "$$CHROME_PATH" ] || (echo 'Chromium is missing: sudo apt-get install chromium' >&2; exit 1)
	$(VENV)/python -m bench.ui

bench-photos: setup ## Time one 12-megapixel photo upload's processing and its peak memory (not a test)
	$(VENV)/python -m bench.photos

clean: ## Remove caches and test output (keeps .venv, node_modules and the database)
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-results
	find . -name __pycache__ -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +
