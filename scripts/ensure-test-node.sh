#!/usr/bin/env bash
# The JavaScript the tests run, installed from npm into .node-test, pinned: the Vercel AI
# SDK's `ai` package (interop), and the page checkers the dashboard's tests run, axe-core
# (accessibility) and Lighthouse (with Debian's Chromium).
set -euo pipefail
dir="${FRONTDESK_TEST_NODE_DIR:-.node-test}"
want="ai@6.0.326 axe-core@4.10.3 lighthouse@12.2.3"
stamp="$dir/.frontdesk-packages"
if [ -d "$dir/node_modules/ai" ] && [ -d "$dir/node_modules/lighthouse" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
echo "setting up $dir for interop tests ($want)"
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name": "frontdesk-interop", "private": true, "type": "module"}' > "$dir/package.json"
# shellcheck disable=SC2086
(cd "$dir" && npm install --silent --no-audit --no-fund $want)
echo "$want" > "$stamp"
