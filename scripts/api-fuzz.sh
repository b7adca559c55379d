#!/usr/bin/env bash
# Property-based fuzzing of /api/v1 against the real server, driven by the OpenAPI
# document the server generates from its handlers (GET /api/v1/openapi.json).
#
# schemathesis (from PyPI, in a virtualenv kept in the CI cache) generates valid
# and invalid requests for every operation and checks each answer:
#   - no 500 and no hang (each request must be answered within 10 s);
#   - the status, content type and body are the ones the document declares, which
#     for every failure is the one JSON error shape {"error": {"code", "message"}};
#   - ignored_auth: every operation that declares the bearer token refuses a
#     request without it, or with a wrong one, so nothing unauthenticated gets data.
# It runs twice: signed in as an admin (the widest access) and then with no token
# at all, where anything but 401 (or login's own answers) fails the run.
#
# Usage: scripts/api-fuzz.sh   (SWITCHBOARD_BIN: the server binary, default the
# debug build; SWITCHBOARD_API_FUZZ_SECS: the time budget of each run, default 120)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${SWITCHBOARD_BIN:-$target_dir/debug/switchboard}"
secs="${SWITCHBOARD_API_FUZZ_SECS:-120}"
venv="${SWITCHBOARD_FUZZ_VENV:-${SWITCHBOARD_CI_CACHE:-/var/tmp/switchboard-ci}/schemathesis-4.32.5}"
if [ ! -x "$venv/bin/st" ]; then
    echo "== installing schemathesis 4.32.5 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
# The demo set-up (SQLite, the demo plugins, an admin), voice on loopback ports of
# its own.
SWITCHBOARD_DATA_DIR="$work/data" SWITCHBOARD_HTTP_ADDR="127.0.0.1:$port" \
SWITCHBOARD_SIP_ADDR=127.0.0.1:0 SWITCHBOARD_WEBRTC_ADDR=127.0.0.1:0 \
SWITCHBOARD_LOG=warn \
    "$bin" serve --demo --plugins-dir plugins/dist >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 600); do
    if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.err"; echo "the server did not start"; exit 1; fi
    sleep 0.1
done
password="$(sed -n 's/.*password: \([^ ]*\).*/\1/p' "$work/server.out" | head -n1)"
token="$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"admin@switchboard.local\",\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
curl -fsS -H "Authorization: Bearer $token" "$base/api/v1/openapi.json" >"$work/openapi.json"
# Without a token the document itself is refused like the rest of the API.
status="$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1/openapi.json")"
[ "$status" = 401 ] || { echo "GET /api/v1/openapi.json without a token answered $status"; exit 1; }

# One worker: with two, hypothesis parses lambda sources from two threads at once,
# which CPython 3.11 before 3.11.8 can fail with "AST constructor recursion depth
# mismatch" (an error of the tool, not a finding; seen once in CI).
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,ignored_auth"
common=(
    "$work/openapi.json" --url "$base/api/v1"
    --checks "$checks" --max-response-time 10 --request-timeout 15
    --max-time "$secs" --workers 1 --seed 20261206 --suppress-health-check all
    --warnings off
)

# schemathesis keeps a cache in the folder it runs in: the scratch folder, not the
# repository.
cd "$work"
echo "== API fuzz, signed in as an admin (${secs}s)"
# Signing out would end the fuzzer's own session mid-run.
"$venv/bin/st" run "${common[@]}" -H "Authorization: Bearer $token" \
    --exclude-path /auth/logout --exclude-path /auth/logout-all

echo "== API fuzz, without a token (${secs}s)"
"$venv/bin/st" run "${common[@]}"

if grep -q "panicked" "$work/server.err"; then
    grep -B2 -A8 "panicked" "$work/server.err"
    echo "the server panicked while fuzzed"
    exit 1
fi
kill -0 "$server_pid" || { echo "the server died while fuzzed"; exit 1; }
echo "== API fuzz: no findings"
