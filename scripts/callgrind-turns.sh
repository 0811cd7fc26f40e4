#!/usr/bin/env bash
# Instructions per streamed turn, counted by callgrind (repeatable whatever else the machine
# does): frontdesk serve (a release binary) under valgrind on SQLite, with stream-bench's
# scripted upstream; 20 conversations, 40 warm-up turns, then the counters are zeroed and
# 100 turns measured, 20 at a time. Prints the total for the measured turns.
#
#   scripts/callgrind-turns.sh [FRONTDESK_BINARY] [STREAM_BENCH_BINARY]
set -euo pipefail
FRONTDESK=${1:-target/release/frontdesk}
BENCH=${2:-target/release/stream-bench}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
FRONTDESK=$(realpath "$FRONTDESK")
BENCH=$(realpath "$BENCH")

"$BENCH" upstream --port 0 >"$WORK/upstream.log" 2>&1 &
for _ in $(seq 100); do grep -q "listening on" "$WORK/upstream.log" && break; sleep 0.1; done
UPSTREAM=$(sed -n 's/^listening on //p' "$WORK/upstream.log")

cd "$WORK"
printf '[providers.openai]\nkind = "openai"\nhttp = "http2"\n' >frontdesk.toml
run() {
  env -i PATH="$PATH" OPENAI_BASE_URL="http://$UPSTREAM/v1" OPENAI_API_KEY=sk-bench \
    FRONTDESK_RATE_LIMIT_PER_MINUTE=1000000 FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS=0 FRONTDESK_BOOTSTRAP_DEMO=false "$@"
}
TENANT=$(run "$FRONTDESK" --data-dir "$WORK" --json tenant create --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["id"])')
run "$FRONTDESK" --data-dir "$WORK" --json agent create --tenant "$TENANT" --slug bench --model openai/bench-model >/dev/null
KEY=$(run "$FRONTDESK" --data-dir "$WORK" --json key create --tenant "$TENANT" --kind secret --name bench --rate-limit-per-minute 1000000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Started directly (not through `run`), so that $! is valgrind's own process id.
env -i PATH="$PATH" OPENAI_BASE_URL="http://$UPSTREAM/v1" OPENAI_API_KEY=sk-bench \
  FRONTDESK_RATE_LIMIT_PER_MINUTE=1000000 FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS=0 FRONTDESK_BOOTSTRAP_DEMO=false \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
  "$FRONTDESK" --data-dir "$WORK" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

python3 - "$PORT" "$KEY" "$SERVER" <<'PY'
import http.client, json, subprocess, sys, threading
port, key, server = int(sys.argv[1]), sys.argv[2], sys.argv[3]
headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

def call(method, path, body, accept="application/json"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, json.dumps(body), {**headers, "accept": accept})
    response = conn.getresponse()
    data = response.read()
    assert response.status in (200, 201), (response.status, data)
    return data

conversations = [json.loads(call("POST", "/api/v1/conversations", {"agent": "bench"}))["id"] for _ in range(20)]

def turns(rounds):
    def one(conversation):
        for _ in range(rounds):
            body = call("POST", f"/api/v1/conversations/{conversation}/messages", {"content": "Hello"}, "text/event-stream")
            assert b"run.completed" in body and b'"status":"completed"' in body, body[-300:]
    threads = [threading.Thread(target=one, args=(c,)) for c in conversations]
    for t in threads: t.start()
    for t in threads: t.join()

turns(2)
subprocess.run(["callgrind_control", "--zero", server], check=True, capture_output=True)
turns(5)
subprocess.run(["callgrind_control", "--dump=measured", server], check=True, capture_output=True)
PY
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
TOTAL=0
for file in "$WORK"/callgrind.out.*; do
  grep -q "^desc: Trigger: .*measured" "$file" || continue
  N=$(sed -n 's/^summary: //p' "$file" | awk '{print $1}')
  TOTAL=$((TOTAL + N))
done
echo "instructions for 100 measured turns: $TOTAL ($((TOTAL / 100)) per turn)"
