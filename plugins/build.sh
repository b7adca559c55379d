#!/usr/bin/env bash
# Builds every plugin for wasm32-wasip2 and assembles installable folders:
#   plugins/dist/<plugin-id>/{plugin.toml, <component>.wasm}
# Usage: plugins/build.sh   (from anywhere; PLUGINS_TARGET_DIR overrides the cargo target dir)
set -euo pipefail

plugins_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$plugins_dir")"
target_dir="${PLUGINS_TARGET_DIR:-$plugins_dir/target}"
dist_dir="$plugins_dir/dist"
target=wasm32-wasip2

# Folders holding a plugin.toml and the crate that builds its component.
plugin_crates=(
    "$plugins_dir/sms-twilio"
    "$plugins_dir/whatsapp-cloud"
    "$plugins_dir/messenger"
    "$plugins_dir/instagram"
    "$plugins_dir/email"
    "$plugins_dir/crm-hubspot"
    "$plugins_dir/crm-salesforce"
    "$plugins_dir/crm-zoho"
    "$plugins_dir/routing-default"
    "$plugins_dir/test-misbehave"
    "$plugins_dir/test-misbehave-routing"
    "$plugins_dir/test-misbehave-crm"
    "$plugins_dir/test-streams"
    "$plugins_dir/test-blobs"
    "$plugins_dir/fixtures/sms-twilio-0.1.0"
    "$plugins_dir/fixtures/crm-book-0.1.0"
    "$repo_dir/examples/telegram-bot"
    "$repo_dir/examples/routing-least-busy"
)

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

cargo build --manifest-path "$plugins_dir/Cargo.toml" --release --target "$target" \
    --target-dir "$target_dir"

# The first `key = "value"` of a top-level key in a TOML file.
toml_string() {
    sed -n "s/^$1[[:space:]]*=[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$2" | head -n 1
}

for crate_dir in "${plugin_crates[@]}"; do
    manifest="$crate_dir/plugin.toml"
    id="$(toml_string id "$manifest")"
    component="$(toml_string component "$manifest")"
    crate="$(toml_string name "$crate_dir/Cargo.toml")"
    if [[ -z "$id" || -z "$component" || -z "$crate" ]]; then
        echo "error: cannot read id/component from $manifest or name from $crate_dir/Cargo.toml" >&2
        exit 1
    fi
    wasm="$target_dir/$target/release/${crate//-/_}.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: $wasm was not built" >&2
        exit 1
    fi
    out="$dist_dir/$id"
    rm -rf "$out"
    mkdir -p "$out"
    cp "$manifest" "$out/plugin.toml"
    cp "$wasm" "$out/$component"
    echo "$out"
done
