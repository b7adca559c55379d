//! Operator-set configuration: the values and secrets for the keys a plugin
//! declares in `plugin.toml`, plus the keys the host sets itself
//! (`switchboard.*`). Read-only; never log a secret.

use crate::PluginError;
use crate::bindings::channel::switchboard::plugin::host;

/// Read-only key the host sets to the public base URL of this plugin's
/// webhooks, `{public_url}/hooks/{plugin_id}`, without a trailing slash.
pub const WEBHOOK_BASE: &str = "switchboard.webhook-base";

/// The value of `key`: what the operator set, else the `default` declared in
/// `plugin.toml` (the host fills it in); `None` when neither exists.
pub fn get(key: &str) -> Option<String> {
    host::get_config(key)
}

/// The value of `key`, or `default` when it is unset or empty.
pub fn get_or(key: &str, default: &str) -> String {
    get(key)
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The value of a key the plugin cannot work without.
///
/// # Errors
///
/// [`PluginError::Config`] naming the key when it is unset or empty, so the
/// operator sees which setting to fix.
pub fn require(key: &str) -> Result<String, PluginError> {
    get(key)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| PluginError::Config(format!("config `{key}` is required but not set")))
}

/// [`WEBHOOK_BASE`]: where the provider reaches this plugin, if the host knows
/// its public URL.
pub fn webhook_base() -> Option<String> {
    get(WEBHOOK_BASE)
        .filter(|value| !value.is_empty())
        .map(|value| value.trim_end_matches('/').to_owned())
}
