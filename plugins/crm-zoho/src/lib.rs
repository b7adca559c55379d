//! `crm-zoho`: Switchboard's CRM integration for Zoho CRM, on plugin API
//! `switchboard:plugin/crm@0.2.0`, in whichever data centre the org lives.
//!
//! - Authentication: the OAuth 2.0 refresh-token flow against
//!   `{accounts_base}/oauth/v2/token` (the org's data centre:
//!   `accounts.zoho.com`, `.eu`, `.in`, `.com.au`, `.jp`…); the access token
//!   is cached in kv and refreshed once when the API answers 401
//!   ([`crm_common::oauth`]). Requests carry
//!   `Authorization: Zoho-oauthtoken {token}` and go to `api_base`, else the
//!   token answer's `api_domain`, else `https://www.zohoapis.com`.
//! - `lookup-contact`: `GET /crm/{version}/Contacts/search?email=…` (or
//!   `?phone=` with the digits without the country code), then the same in
//!   Leads; every number confirmed against the caller's whatever its
//!   format ([`crm_common::phone`]). The profile links to
//!   `{web_base}/crm/tab/{Contacts|Leads}/{id}`.
//! - `record-activity`: calls as Calls records (`Who_Id`, or `What_Id` and
//!   `$se_module` for Leads), everything else as a note on the person;
//!   written once per timeline entry (kv ledger).
//! - `create-contact`: a Leads (or Contacts) record; when Zoho refuses a
//!   duplicate, the existing record.
//!
//! The Zoho logic is in [`api`], which compiles natively for unit tests;
//! this file only reads config and talks to the host.

pub mod api;

use crm_common::store::{HostHttp, HostKv};
use switchboard_sdk::crm::{CrmProfile, TimelineEntry};
use switchboard_sdk::{ContactSummary, Crm, Identity, PluginError, clock, config};

use crate::api::{DEFAULT_ACCOUNTS_BASE, DEFAULT_API_VERSION, Module, Settings, Zoho};

fn settings() -> Result<Settings, PluginError> {
    let mut settings = Settings::new(
        &crm_common::base_from_config("accounts_base", DEFAULT_ACCOUNTS_BASE),
        &config::require("client_id")?,
        &config::require("client_secret")?,
        &config::require("refresh_token")?,
    );
    let optional = |key: &str| {
        config::get(key)
            .map(|v| v.trim().trim_end_matches('/').to_owned())
            .filter(|v| !v.is_empty())
    };
    settings.api_base = optional("api_base");
    settings.web_base = optional("web_base");
    settings.api_version = config::get_or("api_version", DEFAULT_API_VERSION)
        .trim()
        .trim_matches('/')
        .to_owned();
    settings.plugin_id = crm_common::plugin_id_from_config(api::PLUGIN_ID);
    settings.region = crm_common::region_from_config()?;
    settings.vip_field = optional("vip_field");
    settings.lifetime_value_field = optional("lifetime_value_field");
    settings.create_as = match optional("create_as")
        .as_deref()
        .map(str::to_ascii_lowercase)
    {
        None => Module::Leads,
        Some(kind) if kind == "leads" || kind == "lead" => Module::Leads,
        Some(kind) if kind == "contacts" || kind == "contact" => Module::Contacts,
        Some(other) => {
            return Err(PluginError::Config(format!(
                "config `create_as`: expected Leads or Contacts, got {other:?}"
            )));
        }
    };
    settings.create_unknown_contacts =
        crm_common::flag_from_config("create_unknown_contacts", false)?;
    Ok(settings)
}

fn client() -> Result<Zoho<HostKv, HostHttp>, PluginError> {
    Ok(Zoho {
        settings: settings()?,
        store: HostKv,
        http: HostHttp,
        now_ms: clock::now_ms(),
    })
}

struct ZohoCrm;

impl Crm for ZohoCrm {
    fn lookup_contact(identity: Identity) -> Result<Option<CrmProfile>, PluginError> {
        client()?.lookup(&identity)
    }

    fn record_activity(entry: TimelineEntry) -> Result<(), PluginError> {
        client()?.record(&entry)
    }

    fn create_contact(contact: ContactSummary) -> Result<CrmProfile, PluginError> {
        client()?.create(&contact)
    }
}

switchboard_sdk::export_crm!(ZohoCrm);
