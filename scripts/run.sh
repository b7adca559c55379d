#!/usr/bin/env bash
# Builds everything and starts Switchboard on its embedded default:
# SQLite in ./data, the first-party plugins installed with demo settings, and an
# admin account whose credentials are printed on first start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash plugins/build.sh
cargo build --release -p switchboard
exec ./target/release/switchboard serve --demo --plugins-dir plugins/dist "$@"
