//! What Switchboard's CRM plugins share: `crm-hubspot`, `crm-salesforce` and
//! `crm-zoho` all look people up by e-mail and phone, build the same kind of
//! profile, and write the timeline back as activities.
//!
//! - [`phone`]: numbers in whatever format a CRM stores them, matched
//!   against the host's E.164 numbers with the operator's `default_region`.
//! - [`profile`]: the [`switchboard_sdk::crm::CrmProfile`] a lookup answers,
//!   with attribute names that are the same for every CRM (`vip`, `owner`,
//!   `lifetime-value`, `company`).
//! - [`activity`]: what a timeline entry becomes (call, message, note), its
//!   text and times, which CRM record it belongs to, and the kv ledger that
//!   keeps retries from writing it twice.
//! - [`oauth`]: the refresh-token flow with the access token cached in kv,
//!   refreshed once when the API answers 401.
//! - [`error`]: HTTP answers mapped to [`switchboard_sdk::PluginError`].
//! - [`store`]: kv and HTTP behind traits, so all of the above runs in native
//!   unit tests.
//!
//! This crate never exports a component; each plugin crate does, with a thin
//! `Crm` impl over its own API module.

pub mod activity;
pub mod error;
pub mod oauth;
pub mod phone;
pub mod profile;
pub mod store;

use switchboard_sdk::{PluginError, config};

/// The config key naming the region of numbers written without `+`.
pub const DEFAULT_REGION_KEY: &str = "default_region";

/// [`phone::Region`] from config `default_region` (`US` when unset).
///
/// # Errors
///
/// [`PluginError::Config`] for a region [`phone`] does not know.
pub fn region_from_config() -> Result<phone::Region, PluginError> {
    phone::Region::parse(&config::get_or(DEFAULT_REGION_KEY, "US"))
}

/// A yes/no config value (`true`, `yes`, `1`…); `default` when unset.
///
/// # Errors
///
/// [`PluginError::Config`] naming the key for anything else.
pub fn flag_from_config(key: &str, default: bool) -> Result<bool, PluginError> {
    match config::get(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => profile::flag(&value).ok_or_else(|| {
            PluginError::Config(format!(
                "config `{key}`: expected true or false, got {value:?}"
            ))
        }),
    }
}

/// The id this plugin was installed under: the last segment of
/// [`config::WEBHOOK_BASE`] (`{public_url}/hooks/{plugin_id}`), which differs
/// from the manifest's id when one component is installed twice; `manifest_id`
/// when the host did not set it.
pub fn plugin_id_from_config(manifest_id: &str) -> String {
    config::webhook_base()
        .and_then(|base| plugin_id_of(&base))
        .unwrap_or_else(|| manifest_id.to_owned())
}

/// The plugin id at the end of a webhook base URL.
pub fn plugin_id_of(webhook_base: &str) -> Option<String> {
    let (_, id) = webhook_base.trim_end_matches('/').rsplit_once("/hooks/")?;
    Some(id.to_owned()).filter(|id| !id.is_empty() && !id.contains('/'))
}

/// A base URL from config, without its trailing slash; `default` when unset.
pub fn base_from_config(key: &str, default: &str) -> String {
    config::get_or(key, default)
        .trim()
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_ids_come_from_the_webhook_base() {
        assert_eq!(
            super::plugin_id_of("https://cc.example/hooks/crm-hubspot-eu/").as_deref(),
            Some("crm-hubspot-eu")
        );
        assert_eq!(super::plugin_id_of("https://cc.example/"), None);
    }
}
