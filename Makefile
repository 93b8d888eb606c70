# The two commands: `make run` and `make test`. Both bring up a private PostgreSQL and
# NATS (JetStream) under .data/ unless DATABASE_URL and NATS_URL point at reachable ones.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help run test services services-down lint bench sandbox-engine sandbox-engine-down

help:
	@echo "make run    - start the control plane on http://localhost:8000 (PostgreSQL + NATS included)"
	@echo "make test   - lints and the whole test suite against real PostgreSQL and NATS"
	@echo "make bench  - benchmarks (figures written to docs/benchmarks.md)"
	@echo "make services / services-down - only start / stop the private PostgreSQL and NATS"
	@echo "make sandbox-engine / sandbox-engine-down - start / stop the podman engine the sandbox uses"

services:
	@scripts/services.sh up >/dev/null

services-down:
	@scripts/services.sh down

run: services
	@scripts/run.sh

test: services
	@scripts/test.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

bench: services
	@bench/run.sh

sandbox-engine:
	@scripts/sandbox-engine.sh up

sandbox-engine-down:
	@scripts/sandbox-engine.sh down
