#!/usr/bin/env bash
# The Python packages interop tests talk to: the official MCP SDK (a real MCP server), the
# OpenAI Agents SDK (behaviour parity; it brings the `openai` SDK) and the ChatKit protocol
# types. Installed into .venv-test from PyPI, pinned.
set -euo pipefail
venv="${FRONTDESK_TEST_VENV:-.venv-test}"
want="mcp==2.3.0 openai-agents==0.24.0 openai-chatkit==1.6.5"
stamp="$venv/.frontdesk-packages"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up $venv for interop tests ($want)"
if ! python3 -m venv "$venv" 2>/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$venv"
fi
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want
echo "$want" > "$stamp"
