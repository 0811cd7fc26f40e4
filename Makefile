# frontdesk: `make run` builds and starts the platform; `make test` sets up what the tests
# need (PostgreSQL) and runs the whole suite with the house rules (fmt, clippy).

CARGO ?= cargo

.PHONY: run build test check services bench clean

run:
	$(CARGO) run --release --bin frontdesk -- serve

build:
	$(CARGO) build --release --bin frontdesk

services:
	./scripts/ensure-postgres.sh

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: services check
	$(CARGO) test --workspace

bench: services
	$(CARGO) bench -p frontdesk-store --bench store

clean:
	$(CARGO) clean
