#!/usr/bin/env bash
# Supply-chain checks, run by CI after the lints:
#   - cargo-deny over both cargo workspaces (the root one and plugins/) with deny.toml:
#     licences against its allow-list, bans (duplicate versions warn only) and sources
#     (crates.io only). These work offline and always fail on a violation.
#   - cargo-deny's advisories check (RustSec), only when its database can be fetched:
#     it is a git repository on GitHub, which this project's machines cannot reach.
#   - npm ci (the lockfile's integrity hashes) and npm audit for the browser tests'
#     tools, failing on high or critical advisories; skipped, said so, when the
#     registry's audit endpoint does not answer.
# Installs cargo-deny (pinned below) when it is missing. Every network step is bounded
# by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The version deny.toml was written for; a newer cargo-deny may read it differently.
deny_version=0.20.2
export GIT_TERMINAL_PROMPT=0

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $deny_version"; then
    echo "== installing cargo-deny $deny_version"
    # Its own target directory, so that a shared CARGO_TARGET_DIR (CI's) is left alone.
    CARGO_TARGET_DIR="$log_dir/cargo-deny-build" \
        timeout 1200 cargo install cargo-deny --version "$deny_version" --locked --quiet
fi

# deny SECONDS MANIFEST ARGS...: cargo-deny over one workspace, bounded in time.
deny() {
    local secs=$1 manifest=$2
    shift 2
    timeout "$secs" cargo deny --color never --manifest-path "$manifest" --config deny.toml --locked "$@"
}

status=0
for manifest in Cargo.toml plugins/Cargo.toml; do
    echo "== supply chain: cargo deny check licenses bans sources ($manifest)"
    log="$log_dir/deny.log"
    # The one deny.toml serves both workspaces, so a licence that only the other one
    # uses is expected (-A license-not-encountered).
    if deny 600 "$manifest" check --hide-inclusion-graph -A license-not-encountered \
        licenses bans sources >"$log" 2>&1; then
        # On success, one line per warning (duplicate versions) and the verdict.
        grep -E '^warning\[' "$log" || true
        tail -n 1 "$log"
    else
        cat "$log"
        status=1
    fi
done

echo "== supply chain: cargo deny check advisories"
if timeout 120 cargo deny --color never --config deny.toml fetch db >"$log_dir/fetch.log" 2>&1; then
    for manifest in Cargo.toml plugins/Cargo.toml; do
        echo "-- $manifest"
        deny 300 "$manifest" check --hide-inclusion-graph advisories || status=1
    done
else
    echo "advisories: skipped, the RustSec database cannot be fetched from this machine"
    grep -m 1 -E 'fatal|error' "$log_dir/fetch.log" | sed 's/^/  /' || true
fi

echo "== supply chain: npm ci and npm audit (tests/browser)"
if ! command -v npm >/dev/null 2>&1; then
    echo "npm audit: skipped, npm is not installed (scripts/test-deps.sh installs it)"
else
    (cd tests/browser && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || status=1
    # The browser tests' tools are all devDependencies, so --omit=dev would audit
    # nothing: the whole lockfile is audited.
    audit_rc=0
    (cd tests/browser && timeout 120 npm audit --audit-level=high --json) \
        >"$log_dir/audit.json" 2>"$log_dir/audit.err" || audit_rc=$?
    # A report (with metadata) means the endpoint answered; anything else is an error
    # of the endpoint or the network, not a finding. On this project's machines the
    # registry answers the audit request with 405 Method Not Allowed.
    if ! verdict="$(node -e '
        const fs = require("fs");
        let r;
        try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { r = {}; }
        if (!r.metadata || !r.metadata.vulnerabilities) {
            const why = r.message || (r.error && r.error.summary) || "no report";
            console.log(`unanswered ${why}`);
        } else {
            const v = r.metadata.vulnerabilities;
            const found = Object.values(r.vulnerabilities || {})
                .filter((x) => x.severity === "high" || x.severity === "critical")
                .map((x) => `${x.name} (${x.severity})`);
            console.log(`report high=${v.high} critical=${v.critical} total=${v.total} ${found.join(", ")}`);
        }' "$log_dir/audit.json")"; then
        verdict="unanswered could not read npm audit's output"
    fi
    case "$verdict" in
    report*)
        if [ "$audit_rc" = 0 ]; then
            echo "npm audit: no high or critical advisories (${verdict#report })"
        else
            echo "npm audit: FAILED, ${verdict#report }"
            status=1
        fi
        ;;
    *)
        [ "$audit_rc" = 124 ] && verdict="unanswered timed out after 120 s"
        echo "npm audit: skipped, the npm registry's audit endpoint gave no report here (${verdict#unanswered })"
        ;;
    esac
fi

if [ "$status" != 0 ]; then
    echo "supply chain: FAILED" >&2
fi
exit "$status"
