#!/usr/bin/env bash
# espeak-ng (speech synthesis) and sox (audio conversion) from Debian's packages: the voice
# tests make the callers' speech with them (8 kHz μ-law for Twilio, 24 kHz PCM for browsers).
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing espeak-ng and sox for the voice tests"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null
