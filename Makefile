# The two commands a newcomer needs: `make up` (then the curl in README.md) and `make test`.
SHELL := /bin/bash
DATABASE_URL ?= $(or $(APP__DATABASE__URL),postgres://postgres:postgres@localhost:5432/analytics)

.PHONY: up down test migrate bench status logs demo

up: ## Start broker, PostgreSQL, migrations, producer, consumer and dashboard; print how to use them
	@bash scripts/up.sh

down: ## Stop what `make up` started (by pid); data is kept in .data/
	@bash scripts/down.sh

test: ## fmt check, clippy -D warnings, and every test against a real broker and PostgreSQL
	@bash scripts/test.sh

migrate: ## Apply migrations (same as `sea-orm-cli migrate up -d migration`)
	@echo "== applying migrations to $(DATABASE_URL)"
	@DATABASE_URL='$(DATABASE_URL)' cargo run --quiet -p migration -- up

bench: ## Every scenario against the machine's ceilings and peers, one run (about 25 minutes)
	@bash scripts/bench.sh $(BENCH_ARGS)

demo: ## Send a burst of realistic traffic (3 sites, ~400 visitors, a few bots) through the producer
	@python3 scripts/demo.py --producer http://localhost:$${APP__SERVER__PORT:-8080} \
		--dashboard http://localhost:$${APP__DASHBOARD__PORT:-8081} \
		--admin-token "$${APP__DASHBOARD__ADMIN_TOKENS:-$$(cat .data/admin-token 2>/dev/null)}"
	@echo "demo: open http://localhost:$${APP__DASHBOARD__PORT:-8081}/ (token: $$(cat .data/dashboard-token 2>/dev/null || echo '$$APP__DASHBOARD__API_TOKENS'))"

status: ## What `make up` is running
	@bash scripts/up.sh --status

logs: ## Follow the producer and consumer logs
	@tail -n 50 -F .data/logs/producer.log .data/logs/consumer.log
