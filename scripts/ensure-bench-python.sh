#!/usr/bin/env bash
# llama.cpp's own Python binding (llama-cpp-python, built here from PyPI's source release),
# the reference the local chat bench compares frontdesk against. Installed into .venv-bench.
set -euo pipefail
venv="${FRONTDESK_BENCH_VENV:-.venv-bench}"
want="llama-cpp-python==0.3.36"
stamp="$venv/.frontdesk-packages"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
./scripts/ensure-build-deps.sh
echo "building $want into $venv (compiles llama.cpp: several minutes)"
python3 -m venv "$venv"
# Native CPU code, like frontdesk's own llama.cpp build.
CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-binary llama-cpp-python $want
echo "$want" > "$stamp"
