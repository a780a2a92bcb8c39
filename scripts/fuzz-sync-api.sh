#!/usr/bin/env bash
# Fuzzes a running xeroml-server's sync API from docs/sync-openapi.json with schemathesis (PyPI):
# generated requests, valid and invalid, must never get a 5xx and must match the document.
# Not run in CI. Usage:
#
#   XEROML_KEY=xrml_... scripts/fuzz-sync-api.sh [http://127.0.0.1:8788] [max examples per operation]
#
# Needs Python 3 and network access to PyPI the first time (schemathesis goes into a virtualenv
# under .build/fuzz-venv). Start the server first (docs/server.md) with a project and key of its own:
# the fuzzer creates runs in that project.
set -euo pipefail

base="${1:-http://127.0.0.1:8788}"
examples="${2:-50}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.build/fuzz-venv"

if [ -z "${XEROML_KEY:-}" ]; then
    echo "error: set XEROML_KEY to a project key (xeroml-server keys create --project NAME)" >&2
    exit 2
fi
if ! curl -fsS -o /dev/null -H "Authorization: Bearer $XEROML_KEY" "$base/v1/project"; then
    echo "error: $base/v1/project does not answer 200 with that key; is xeroml-server running?" >&2
    exit 2
fi
if [ ! -x "$venv/bin/schemathesis" ] && [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis>=4,<5"
fi
st="$venv/bin/st"
[ -x "$st" ] || st="$venv/bin/schemathesis"

# not_a_server_error: no 5xx. The other checks compare answers with the document (status codes,
# content types, bodies against their schemas). One is left out: a body's runID and index must equal
# the path's (400 otherwise), which OpenAPI cannot express, so "schema-valid request rejected" would
# flag every generated mismatch.
# schemathesis keeps its cache in the current folder: keep it under .build.
cd "$root/.build"
exec "$st" run "$root/docs/sync-openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $XEROML_KEY" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$examples" \
    --request-timeout 30
