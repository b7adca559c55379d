//! `crm-salesforce`: Switchboard's CRM integration for Salesforce, on plugin
//! API `switchboard:plugin/crm@0.2.0`.
//!
//! - Authentication: the OAuth 2.0 refresh-token flow against
//!   `{login_base}/services/oauth2/token` with the connected app's
//!   `client_id` and `client_secret` and the integration user's
//!   `refresh_token`; the access token is cached in kv and refreshed once
//!   when the API answers 401 ([`crm_common::oauth`]). Requests go to the
//!   token answer's `instance_url`, or to `api_base` when it is set.
//! - `lookup-contact`: e-mail addresses by SOQL (`WHERE Email = '…'`,
//!   Contacts first, then unconverted Leads); phone numbers by parameterized
//!   search in the phone fields of both, every number confirmed against the
//!   caller's whatever its format ([`crm_common::phone`]). The profile links
//!   to `{instance_url}/lightning/r/{Contact|Lead}/{id}/view`.
//! - `record-activity`: a completed Task on the person (`WhoId`); calls with
//!   `TaskSubtype = Call`, `CallType`, `CallDurationInSeconds` and
//!   `CallDisposition`. Written once per timeline entry: a kv ledger, and the
//!   entry id in the Task's `CallObject`, which a retry after an unconfirmed
//!   attempt queries before writing again.
//! - `create-contact`: a Lead (or a Contact, per `create_as`); when
//!   duplicate rules refuse it, the existing record.
//!
//! The Salesforce logic is in [`api`], which compiles natively for unit
//! tests; this file only reads config and talks to the host.

pub mod api;

use crm_common::store::{HostHttp, HostKv};
use switchboard_sdk::crm::{CrmProfile, TimelineEntry};
use switchboard_sdk::{ContactSummary, Crm, Identity, PluginError, clock, config};

use crate::api::{DEFAULT_API_VERSION, DEFAULT_LOGIN_BASE, Object, Salesforce, Settings};

fn settings() -> Result<Settings, PluginError> {
    let mut settings = Settings::new(
        &crm_common::base_from_config("login_base", DEFAULT_LOGIN_BASE),
        &config::require("client_id")?,
        &config::require("client_secret")?,
        &config::require("refresh_token")?,
    );
    let optional = |key: &str| {
        config::get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    settings.api_base = optional("api_base").map(|b| b.trim_end_matches('/').to_owned());
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
        None => Object::Lead,
        Some(kind) if kind == "lead" => Object::Lead,
        Some(kind) if kind == "contact" => Object::Contact,
        Some(other) => {
            return Err(PluginError::Config(format!(
                "config `create_as`: expected Lead or Contact, got {other:?}"
            )));
        }
    };
    settings.lead_company = config::get_or("lead_company", "Unknown");
    settings.create_unknown_contacts =
        crm_common::flag_from_config("create_unknown_contacts", false)?;
    Ok(settings)
}

fn client() -> Result<Salesforce<HostKv, HostHttp>, PluginError> {
    Ok(Salesforce {
        settings: settings()?,
        store: HostKv,
        http: HostHttp,
        now_ms: clock::now_ms(),
    })
}

struct SalesforceCrm;

impl Crm for SalesforceCrm {
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

switchboard_sdk::export_crm!(SalesforceCrm);
