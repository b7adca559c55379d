#!/usr/bin/env bash
# Installs and starts what the test suite needs, when it is missing, so that
# `bash scripts/test.sh` passes on a fresh Debian machine by itself:
#   - the wasm32-wasip2 Rust target (the plugins);
#   - PostgreSQL listening on 127.0.0.1:5432 with trust auth for user postgres;
#   - headless Chromium, Node and npm (the browser tests);
#   - sipp and baresip (the voice tests' SIP peers);
#   - Postfix and Dovecot (IMAP, LMTP) for the e-mail tests, which start their own
#     instances (tests/src/mail.rs); the system-wide services the packages install are
#     stopped and disabled so that nothing else listens on ports 25/143/993;
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
# The e-mail tests' real mail system (tests/src/mail.rs runs these binaries directly).
[ -x /usr/lib/postfix/sbin/master ] || missing+=(postfix)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing the test suite's dependencies: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test-deps.sh: ${missing[*]} missing; run as root (apt-get) or install them" >&2
        exit 1
    fi
    apt-get update
    # Postfix asks which kind of mail system this is: none (the tests bring their own
    # main.cf and master.cf).
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# The mail packages' own services are not used (each test starts private instances on
# free loopback ports): keep them from starting at boot once installed, and stop them
# when they run.
mail_service_off() { # $1: postfix or dovecot; $2: stop (also stop it now) or disable
    if [ -d /run/systemd/system ]; then
        if [ "$2" = stop ]; then systemctl disable --now "$1"; else systemctl disable "$1"; fi
    else
        if [ "$2" = stop ] && [ -x "/etc/init.d/$1" ]; then "/etc/init.d/$1" stop; fi
        command -v systemctl >/dev/null 2>&1 && systemctl disable "$1" # the unit's symlink
        update-rc.d "$1" disable
    fi
}
for svc in postfix dovecot; do
    if [[ " ${missing[*]} " == *" $svc"* ]]; then
        mail_service_off "$svc" disable >/dev/null 2>&1 || true
    fi
    pidfile=/run/dovecot/master.pid
    [ "$svc" = postfix ] && pidfile=/var/spool/postfix/pid/master.pid
    if [ -s "$pidfile" ] && kill -0 "$(tr -dc 0-9 <"$pidfile")" 2>/dev/null; then
        echo "== stopping the system-wide $svc (the e-mail tests run their own)"
        mail_service_off "$svc" stop >/dev/null 2>&1 || true
    fi
done

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
