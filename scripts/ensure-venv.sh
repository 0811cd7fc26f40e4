#!/usr/bin/env bash
# ensure-venv.sh VENV PACKAGE...: a Python venv at VENV holding exactly these pinned PyPI
# packages; set up (installing python3-venv from Debian where missing) only when the pins
# differ from the last setup.
set -euo pipefail
venv="$1"
shift
want="$*"
stamp="$venv/.frontdesk-packages"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up $venv ($want)"
if ! python3 -m venv "$venv" 2>/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
echo "$want" > "$stamp"
