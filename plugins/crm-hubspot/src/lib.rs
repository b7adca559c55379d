//! `crm-hubspot`: Switchboard's CRM integration for HubSpot, on plugin API
//! `switchboard:plugin/crm@0.2.0`.
//!
//! - `lookup-contact`: `POST {api_base}/crm/v3/objects/contacts/search` by
//!   e-mail (`email`, `hs_additional_emails`) or phone (`phone`,
//!   `mobilephone` as stored, and HubSpot's digits-only copies without the
//!   country code); every number a contact holds is confirmed against the
//!   caller's whatever its format, with `default_region`
//!   ([`crm_common::phone`]). The profile carries the contact's e-mail
//!   addresses and numbers, `vip`, `owner`, `lifetime-value` and `company`,
//!   and the link `{app_base}/contacts/{portal_id}/record/0-1/{id}`.
//! - `record-activity`: calls (`/crm/v3/objects/calls`), SMS and WhatsApp
//!   messages (`/crm/v3/objects/communications`) and everything else as
//!   notes (`/crm/v3/objects/notes`), each associated to the contact in the
//!   create request; written once per timeline entry (kv ledger,
//!   [`crm_common::activity`]).
//! - `create-contact`: `POST {api_base}/crm/v3/objects/contacts`; when the
//!   e-mail address is taken (409), the existing contact.
//!
//! Every request carries `Authorization: Bearer {access_token}`. The HubSpot
//! logic is in [`api`], which compiles natively for unit tests; this file
//! only reads config and talks to the host.

pub mod api;

use crm_common::store::{HostHttp, HostKv};
use switchboard_sdk::crm::{CrmProfile, TimelineEntry};
use switchboard_sdk::{ContactSummary, Crm, Identity, PluginError, config};

use crate::api::{DEFAULT_API_BASE, DEFAULT_APP_BASE, HubSpot, Settings};

fn settings() -> Result<Settings, PluginError> {
    let mut settings = Settings::new(
        &crm_common::base_from_config("api_base", DEFAULT_API_BASE),
        &config::require("access_token")?,
    );
    settings.portal_id = config::get("portal_id")
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    settings.app_base = crm_common::base_from_config("app_base", DEFAULT_APP_BASE);
    settings.plugin_id = crm_common::plugin_id_from_config(api::PLUGIN_ID);
    settings.region = crm_common::region_from_config()?;
    settings.vip_property = config::get_or("vip_property", "vip");
    settings.lifetime_value_property = config::get_or("lifetime_value_property", "total_revenue");
    settings.create_unknown_contacts =
        crm_common::flag_from_config("create_unknown_contacts", false)?;
    Ok(settings)
}

fn client() -> Result<HubSpot<HostKv, HostHttp>, PluginError> {
    Ok(HubSpot {
        settings: settings()?,
        store: HostKv,
        http: HostHttp,
    })
}

struct HubSpotCrm;

impl Crm for HubSpotCrm {
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

switchboard_sdk::export_crm!(HubSpotCrm);
