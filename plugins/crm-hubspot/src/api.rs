//! HubSpot's CRM v3 API as this plugin uses it: contact search, contact
//! creation, and calls, notes and communications associated to a contact.
//!
//! Every request carries `Authorization: Bearer {access_token}` (a private
//! app's token) and goes to `{api_base}`. Building requests and reading
//! answers are plain functions; [`HubSpot`] sends them through a
//! [`Transport`] and keeps its bookkeeping in a [`Store`], so the whole flow
//! runs in native tests.

use crm_common::activity::{self, ActivityKind, Ledger};
use crm_common::error::{self, snippet};
use crm_common::phone::{self, Region};
use crm_common::profile::{self, ProfileBuilder};
use crm_common::store::{Store, Transport};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::crm::{CrmProfile, Direction, TimelineEntry};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{ContactSummary, Identity, PluginError};

/// This plugin's id, as in `plugin.toml`.
pub const PLUGIN_ID: &str = "crm-hubspot";
/// `api_base` when the operator sets none.
pub const DEFAULT_API_BASE: &str = "https://api.hubapi.com";
/// `app_base` when the operator sets none.
pub const DEFAULT_APP_BASE: &str = "https://app.hubspot.com";

/// HubSpot-defined association types, from the engagement to the contact.
const CALL_TO_CONTACT: u32 = 194;
const NOTE_TO_CONTACT: u32 = 202;
const COMMUNICATION_TO_CONTACT: u32 = 81;

/// How many contacts one search returns; more than one is rare (duplicates).
const SEARCH_LIMIT: u32 = 10;

/// What the plugin was configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The id the plugin was installed under (`{id}.external-id` names the
    /// contact attribute holding its record id).
    pub plugin_id: String,
    /// `https://api.hubapi.com`, no trailing slash.
    pub api_base: String,
    /// The private app's token.
    pub access_token: String,
    /// The account id, for links.
    pub portal_id: Option<String>,
    /// `https://app.hubspot.com`, no trailing slash.
    pub app_base: String,
    /// How numbers without `+` are read.
    pub region: Region,
    /// The property read as `vip`.
    pub vip_property: String,
    /// The property read as `lifetime-value`.
    pub lifetime_value_property: String,
    /// Whether a write-back for an unknown person creates the contact.
    pub create_unknown_contacts: bool,
}

impl Settings {
    /// Settings for a token, with every default.
    pub fn new(api_base: &str, access_token: &str) -> Settings {
        Settings {
            plugin_id: PLUGIN_ID.to_owned(),
            api_base: api_base.trim_end_matches('/').to_owned(),
            access_token: access_token.to_owned(),
            portal_id: None,
            app_base: DEFAULT_APP_BASE.to_owned(),
            region: Region::us(),
            vip_property: "vip".to_owned(),
            lifetime_value_property: "total_revenue".to_owned(),
            create_unknown_contacts: false,
        }
    }

    /// The contact properties a search or a create asks back.
    pub fn properties(&self) -> Vec<String> {
        let mut list: Vec<String> = [
            "firstname",
            "lastname",
            "email",
            "hs_additional_emails",
            "phone",
            "mobilephone",
            "company",
            "hubspot_owner_id",
            "lastmodifieddate",
        ]
        .map(String::from)
        .to_vec();
        for custom in [&self.vip_property, &self.lifetime_value_property] {
            if !custom.is_empty() && !list.contains(custom) {
                list.push(custom.clone());
            }
        }
        list
    }

    /// The link to a contact record, when `portal_id` is set.
    pub fn record_url(&self, id: &str) -> Option<String> {
        self.portal_id
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|portal| format!("{}/contacts/{portal}/record/0-1/{id}", self.app_base))
    }

    fn post(&self, path: &str, body: &Value) -> Request {
        Request::post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.access_token)
            .header("accept", "application/json")
            .json(body.to_string())
    }
}

/// One HubSpot object in an answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Object {
    /// The record id.
    pub id: String,
    /// Property values, as HubSpot writes them (strings, or null).
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl Object {
    fn prop(&self, name: &str) -> Option<String> {
        profile::text(self.properties.get(name))
    }
}

#[derive(Debug, Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    results: Vec<Object>,
}

/// What a lookup searches by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needle {
    /// An e-mail address, lower-cased.
    Email(String),
    /// A phone number in E.164.
    Phone(String),
}

impl Needle {
    /// The needle for an identity; `None` for kinds HubSpot does not store
    /// (Telegram handles…) and phone numbers that do not read as numbers.
    pub fn of(identity: &Identity, region: &Region) -> Option<Needle> {
        let value = identity.value.trim();
        if identity.kind == "email" {
            return value
                .contains('@')
                .then(|| Needle::Email(value.to_lowercase()));
        }
        if activity::is_phone_kind(&identity.kind) {
            return phone::normalize(value, region).map(Needle::Phone);
        }
        None
    }
}

fn filter(property: &str, operator: &str, value: &str) -> Value {
    json!({"filters": [{"propertyName": property, "operator": operator, "value": value}]})
}

/// The body of `POST /crm/v3/objects/contacts/search` for a needle. Filter
/// groups are ORed: the e-mail and the additional e-mails; or the phone and
/// mobile fields as stored (E.164) and HubSpot's calculated digits-only
/// copies of them without the country code.
pub fn search_body(needle: &Needle, settings: &Settings) -> Value {
    let groups = match needle {
        Needle::Email(email) => vec![
            filter("email", "EQ", email),
            filter("hs_additional_emails", "CONTAINS_TOKEN", email),
        ],
        Needle::Phone(e164) => {
            let national = phone::national_number(e164).unwrap_or(e164);
            vec![
                filter("phone", "EQ", e164),
                filter("mobilephone", "EQ", e164),
                filter("hs_searchable_calculated_phone_number", "EQ", national),
                filter("hs_searchable_calculated_mobile_number", "EQ", national),
            ]
        }
    };
    json!({
        "filterGroups": groups,
        "properties": settings.properties(),
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        "limit": SEARCH_LIMIT,
    })
}

/// Whether a contact the search returned really holds the needle: HubSpot
/// matched digits, the plugin confirms the number whatever its format.
pub fn holds(contact: &Object, needle: &Needle, region: &Region) -> bool {
    match needle {
        Needle::Email(email) => {
            contact
                .prop("email")
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
                || contact.prop("hs_additional_emails").is_some_and(|list| {
                    list.split([';', ',', ' '])
                        .any(|e| e.trim().eq_ignore_ascii_case(email))
                })
        }
        Needle::Phone(e164) => ["phone", "mobilephone"]
            .iter()
            .filter_map(|p| contact.prop(p))
            .any(|stored| phone::matches(&stored, e164, region)),
    }
}

/// The profile of a HubSpot contact.
pub fn profile_of(contact: &Object, settings: &Settings) -> CrmProfile {
    let mut builder = ProfileBuilder::new(&contact.id, settings.region);
    builder
        .name(profile::full_name(
            contact.prop("firstname").as_deref(),
            contact.prop("lastname").as_deref(),
        ))
        .email(contact.prop("email").as_deref())
        .emails(contact.prop("hs_additional_emails").as_deref())
        .phone(contact.prop("phone").as_deref())
        .phone(contact.prop("mobilephone").as_deref())
        .vip(contact.prop(&settings.vip_property))
        .attribute(profile::OWNER, contact.prop("hubspot_owner_id"))
        .attribute(
            profile::LIFETIME_VALUE,
            contact.prop(&settings.lifetime_value_property),
        )
        .attribute(profile::COMPANY, contact.prop("company"))
        .url(settings.record_url(&contact.id));
    builder.build()
}

/// HubSpot's error answer: `{"status":"error","message","category",…}`.
pub fn failure(response: &Response) -> PluginError {
    #[derive(Deserialize)]
    struct Answer {
        message: Option<String>,
        category: Option<String>,
    }
    let detail = match serde_json::from_slice::<Answer>(&response.body) {
        Ok(Answer {
            message: Some(message),
            category,
        }) => match category {
            Some(category) => format!("{category}: {message}"),
            None => message,
        },
        _ => snippet(&response.body),
    };
    error::classify(response.status, response.retry_after_secs(), &detail)
}

/// Text for HubSpot's HTML bodies: escaped, lines kept.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

fn association(contact_id: &str, type_id: u32) -> Value {
    json!([{
        "to": {"id": contact_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }])
}

/// `SMS` and `WHATS_APP`, the message channels HubSpot's communications
/// take (besides LinkedIn); other channels' messages are logged as notes.
pub fn communication_channel(channel: &str) -> Option<&'static str> {
    match channel.to_ascii_lowercase().as_str() {
        "sms" | "mms" => Some("SMS"),
        "whatsapp" => Some("WHATS_APP"),
        _ => None,
    }
}

/// The request that writes `entry` as an engagement on contact `contact_id`.
pub fn activity_request(entry: &TimelineEntry, contact_id: &str, settings: &Settings) -> Request {
    let timestamp = activity::iso_utc(entry.occurred_at_ms);
    let text = activity::description(entry);
    match activity::kind_of(entry) {
        ActivityKind::Call => {
            let mut properties = json!({
                "hs_timestamp": timestamp,
                "hs_call_title": activity::subject(entry),
                "hs_call_body": html(&text),
                "hs_call_status": if activity::call_missed(entry) { "NO_ANSWER" } else { "COMPLETED" },
            });
            if let Some(direction) = match entry.direction {
                Direction::Inbound => Some("INBOUND"),
                Direction::Outbound => Some("OUTBOUND"),
                Direction::Internal => None,
            } {
                properties["hs_call_direction"] = json!(direction);
            }
            if let Some(ms) = entry.duration_ms {
                properties["hs_call_duration"] = json!(ms.to_string());
            }
            settings.post(
                "/crm/v3/objects/calls",
                &json!({"properties": properties, "associations": association(contact_id, CALL_TO_CONTACT)}),
            )
        }
        ActivityKind::Message => match communication_channel(&entry.channel) {
            Some(channel) => settings.post(
                "/crm/v3/objects/communications",
                &json!({
                    "properties": {
                        "hs_communication_channel_type": channel,
                        "hs_communication_logged_from": "CRM",
                        "hs_communication_body": format!("{}\n\n{text}", activity::subject(entry)),
                        "hs_timestamp": timestamp,
                    },
                    "associations": association(contact_id, COMMUNICATION_TO_CONTACT),
                }),
            ),
            None => note_request(entry, &timestamp, &text, contact_id, settings),
        },
        ActivityKind::Note => note_request(entry, &timestamp, &text, contact_id, settings),
    }
}

fn note_request(
    entry: &TimelineEntry,
    timestamp: &str,
    text: &str,
    contact_id: &str,
    settings: &Settings,
) -> Request {
    let body = format!(
        "<strong>{}</strong><br>{}",
        html(&activity::subject(entry)),
        html(text)
    );
    settings.post(
        "/crm/v3/objects/notes",
        &json!({
            "properties": {"hs_timestamp": timestamp, "hs_note_body": body},
            "associations": association(contact_id, NOTE_TO_CONTACT),
        }),
    )
}

/// The body of `POST /crm/v3/objects/contacts` for a host contact: its name
/// split at the last space, its first e-mail address and phone number.
pub fn create_body(contact: &ContactSummary, settings: &Settings) -> Value {
    let mut properties = Map::new();
    if let Some(name) = contact
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        match name.rsplit_once(' ') {
            Some((first, last)) => {
                properties.insert("firstname".into(), json!(first.trim()));
                properties.insert("lastname".into(), json!(last.trim()));
            }
            None => {
                properties.insert("firstname".into(), json!(name));
            }
        }
    }
    for identity in &contact.identities {
        match Needle::of(identity, &settings.region) {
            Some(Needle::Email(email)) if !properties.contains_key("email") => {
                properties.insert("email".into(), json!(email));
            }
            Some(Needle::Phone(e164)) if !properties.contains_key("phone") => {
                properties.insert("phone".into(), json!(e164));
            }
            _ => {}
        }
    }
    json!({"properties": properties})
}

/// The plugin's calls over one transport and store.
pub struct HubSpot<S, T> {
    /// Configuration.
    pub settings: Settings,
    /// The plugin's kv.
    pub store: S,
    /// Outbound HTTP.
    pub http: T,
}

impl<S: Store, T: Transport> HubSpot<S, T> {
    fn send(&mut self, request: Request) -> Result<Response, PluginError> {
        self.http.send(request)
    }

    /// Finds the contact holding `identity`.
    ///
    /// # Errors
    ///
    /// HubSpot's refusal ([`failure`]) or no answer.
    pub fn lookup(&mut self, identity: &Identity) -> Result<Option<CrmProfile>, PluginError> {
        let Some(needle) = Needle::of(identity, &self.settings.region) else {
            return Ok(None);
        };
        Ok(self
            .search(&needle)?
            .map(|contact| profile_of(&contact, &self.settings)))
    }

    fn search(&mut self, needle: &Needle) -> Result<Option<Object>, PluginError> {
        let request = self.settings.post(
            "/crm/v3/objects/contacts/search",
            &search_body(needle, &self.settings),
        );
        let response = self.send(request)?;
        if !response.is_success() {
            return Err(failure(&response));
        }
        let answer: SearchAnswer = error::parse_json(&response, "the contact search")?;
        Ok(answer
            .results
            .into_iter()
            .find(|contact| holds(contact, needle, &self.settings.region)))
    }

    /// Creates a contact from what the host knows; when HubSpot already has
    /// one with that e-mail address (409), answers that one.
    ///
    /// # Errors
    ///
    /// HubSpot's refusal, or [`PluginError::InvalidRequest`] for a contact
    /// with neither an e-mail address nor a phone number.
    pub fn create(&mut self, contact: &ContactSummary) -> Result<CrmProfile, PluginError> {
        let body = create_body(contact, &self.settings);
        if !["email", "phone"]
            .iter()
            .any(|k| body["properties"].get(k).is_some())
        {
            return Err(PluginError::InvalidRequest(
                "the contact has neither an e-mail address nor a phone number to create it by"
                    .into(),
            ));
        }
        let response = self.send(self.settings.post("/crm/v3/objects/contacts", &body))?;
        if response.status == 409
            && let Some(email) = body["properties"]["email"].as_str()
            && let Some(existing) = self.search(&Needle::Email(email.to_owned()))?
        {
            return Ok(profile_of(&existing, &self.settings));
        }
        if !response.is_success() {
            return Err(failure(&response));
        }
        let created: Object = error::parse_json(&response, "the contact creation")?;
        Ok(profile_of(&created, &self.settings))
    }

    /// The HubSpot contact of a host contact; see [`activity`] for the
    /// order. `known` allows the ids the host and the cache give; without
    /// it the person is looked up (or created) afresh.
    fn contact_id(
        &mut self,
        contact: &ContactSummary,
        known: bool,
    ) -> Result<Option<String>, PluginError> {
        if known {
            if let Some(id) = activity::known_external_id(contact, &self.settings.plugin_id) {
                return Ok(Some(id));
            }
            if let Some(id) = activity::cached_link(&self.store, &contact.id) {
                return Ok(Some(id));
            }
        }
        for identity in activity::identities_to_try(contact) {
            if let Some(found) = self.lookup(&identity)? {
                activity::cache_link(&mut self.store, &contact.id, &found.external_id);
                return Ok(Some(found.external_id));
            }
        }
        if self.settings.create_unknown_contacts {
            let created = self.create(contact)?;
            activity::cache_link(&mut self.store, &contact.id, &created.external_id);
            return Ok(Some(created.external_id));
        }
        Ok(None)
    }

    /// Creates the engagement for `entry` on `contact_id`; answers its id.
    fn write(&mut self, entry: &TimelineEntry, contact_id: &str) -> Result<String, PluginError> {
        let response = self.send(activity_request(entry, contact_id, &self.settings))?;
        if !response.is_success() {
            return Err(failure(&response));
        }
        let created: Object = error::parse_json(&response, "the engagement creation")?;
        Ok(created.id)
    }

    /// Writes one timeline entry as an engagement, once.
    ///
    /// # Errors
    ///
    /// HubSpot's refusal; [`PluginError::Permanent`] when the person is not
    /// in HubSpot and `create_unknown_contacts` is off.
    pub fn record(&mut self, entry: &TimelineEntry) -> Result<(), PluginError> {
        if Ledger::recorded(&self.store, &entry.id).is_some() {
            return Ok(());
        }
        let Some(contact_id) = self.contact_id(&entry.contact, true)? else {
            return Err(activity::unknown_person(&entry.contact));
        };
        let id = match self.write(entry, &contact_id) {
            // The contact the host or the cache named may be gone (deleted,
            // or merged into another): find the person again, once.
            Err(PluginError::Permanent(reason)) => match self.contact_id(&entry.contact, false)? {
                Some(found) if found != contact_id => self.write(entry, &found)?,
                _ => return Err(PluginError::Permanent(reason)),
            },
            other => other?,
        };
        Ledger::remember(&mut self.store, &entry.id, &id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
