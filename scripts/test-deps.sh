#!/usr/bin/env bash
# Installs and starts what the test suite needs, when it is missing, so that
# `bash scripts/test.sh` passes on a fresh Debian machine by itself:
#   - the wasm32-wasip2 Rust target (the plugins);
#   - PostgreSQL listening on 127.0.0.1:5432 with trust auth for user postgres;
#   - headless Chromium, Node and npm (the browser tests);
#   - sipp and baresip (the voice tests' SIP peers);
#   - python3 with venv (the module import-cycle check; the API fuzzer's virtualenv)
#     and curl (the API fuzzer's sign-in).
# Debian packages need root (apt-get); anything already present is left alone.
# SWITCHBOARD_SKIP_DEPS=1 skips this step (for machines set up another way).
set -euo pipefail

if [ "${SWITCHBOARD_SKIP_DEPS:-0}" = 1 ]; then
    exit 0
fi

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 \
    || pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing the test suite's dependencies: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test-deps.sh: ${missing[*]} missing; run as root (apt-get) or install them" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# PostgreSQL for the repository and end-to-end tests.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    cluster="$(ls /etc/postgresql 2>/dev/null | head -n 1)"
    if [ -n "$cluster" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1; then
    # A fresh Debian cluster: let the tests in as postgres over loopback without a password.
    hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)"
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\)\S\+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main reload
    for _ in $(seq 1 10); do psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 1; done
fi
