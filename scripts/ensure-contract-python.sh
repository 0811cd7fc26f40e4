#!/usr/bin/env bash
# The tools that hold the API to its OpenAPI documents: schemathesis (a property-based fuzzer
# of a document, run against a live server) and openapi-python-client (generates a client a
# test then uses). Their own venv, .venv-contract, so their pins never meet the interop SDKs'.
set -euo pipefail
exec "$(dirname "$0")/ensure-venv.sh" "${FRONTDESK_CONTRACT_VENV:-.venv-contract}" \
  schemathesis==4.32.5 openapi-python-client==0.29.1
