#!/usr/bin/env bash
# Runs the whole test suite: plugin unit tests, the plugins built for
# wasm32-wasip2, then every test of the host workspace (unit, repository tests
# on SQLite and PostgreSQL, harness tests of the real .wasm files, end-to-end
# tests of the real binary), then the browser tests (headless Chromium driven by
# playwright-core: the agent desk, the wallboard and the webchat widget against the
# real binary), then a bounded property-based fuzz of the API against the real
# server (scripts/api-fuzz.sh). scripts/test-deps.sh first installs and starts what is missing:
# the wasm32-wasip2 target, PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth),
# Chromium, Node with npm, sipp and baresip (Debian packages; needs root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/test-deps.sh
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== module import cycles (every crate under host/ and sdk/)"
python3 scripts/check-module-cycles.py

echo "== plugins: unit tests (native)"
(cd plugins && cargo test --workspace --target-dir "${PLUGINS_TARGET_DIR:-$PWD/target}")

echo "== plugins: build for wasm32-wasip2"
bash plugins/build.sh

echo "== host: build the binary the end-to-end tests run"
cargo build -p switchboard
export SWITCHBOARD_BIN="$target_dir/debug/switchboard"

echo "== host: all tests"
cargo test --workspace

echo "== browser: agent desk, wallboard and webchat in headless Chromium"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)

echo "== API fuzz: schemathesis over /api/v1's OpenAPI document against the real server"
SWITCHBOARD_API_FUZZ_SECS="${SWITCHBOARD_API_FUZZ_SECS:-90}" bash scripts/api-fuzz.sh
