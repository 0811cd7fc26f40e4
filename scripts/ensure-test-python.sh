#!/usr/bin/env bash
# The Python packages interop tests talk to: the official MCP SDK (a real MCP server), the
# OpenAI Agents SDK (behaviour parity; it brings the `openai` SDK) and the ChatKit protocol
# types. Installed into .venv-test from PyPI, pinned.
set -euo pipefail
exec "$(dirname "$0")/ensure-venv.sh" "${FRONTDESK_TEST_VENV:-.venv-test}" \
  mcp==2.3.0 openai-agents==0.24.0 openai-chatkit==1.6.5 twilio==9.13.0
