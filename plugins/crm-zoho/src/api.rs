//! Zoho CRM's REST API as this plugin uses it: record search in Contacts
//! and Leads, Calls and Notes creation, and Leads or Contacts creation, with
//! the OAuth 2.0 refresh-token flow of the org's data centre in front
//! ([`crm_common::oauth`]).
//!
//! Every API request carries `Authorization: Zoho-oauthtoken {token}` and
//! goes to `{api_base}/crm/{api_version}/…`. Building requests and reading
//! answers are plain functions; [`Zoho`] sends them through a [`Transport`]
//! and keeps its token and bookkeeping in a [`Store`], so the whole flow
//! runs in native tests.

use crm_common::activity::{self, ActivityKind, Ledger};
use crm_common::error::{self, snippet};
use crm_common::oauth::{OAuth, Token};
use crm_common::phone::{self, Region};
use crm_common::profile::{self, ProfileBuilder};
use crm_common::store::{Slots, Store, Transport};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::crm::{CrmProfile, Direction, TimelineEntry};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{ContactSummary, Identity, PluginError};

/// This plugin's id, as in `plugin.toml`.
pub const PLUGIN_ID: &str = "crm-zoho";
/// `accounts_base` when the operator sets none.
pub const DEFAULT_ACCOUNTS_BASE: &str = "https://accounts.zoho.com";
/// The API domain when neither `api_base` nor the token answer names one.
pub const DEFAULT_API_BASE: &str = "https://www.zohoapis.com";
/// `api_version` when the operator sets none.
pub const DEFAULT_API_VERSION: &str = "v2";

/// Zoho's limits on text fields.
const SUBJECT_MAX: usize = 255;
const NOTE_MAX: usize = 32_000;

/// The modules a person can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// Contacts.
    Contacts,
    /// Leads.
    Leads,
}

impl Module {
    /// The module's API name.
    pub fn name(self) -> &'static str {
        match self {
            Module::Contacts => "Contacts",
            Module::Leads => "Leads",
        }
    }

    /// `Contact` or `Lead`, for the `record-type` attribute.
    pub fn record_type(self) -> &'static str {
        match self {
            Module::Contacts => "Contact",
            Module::Leads => "Lead",
        }
    }
}

/// What the plugin was configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The id the plugin was installed under (`{id}.external-id` names the
    /// contact attribute holding its record id).
    pub plugin_id: String,
    /// The token endpoint and credentials.
    pub oauth: OAuth,
    /// `api_base`: overrides the token answer's `api_domain`.
    pub api_base: Option<String>,
    /// `v2`.
    pub api_version: String,
    /// `web_base`: overrides the link base derived from the API domain.
    pub web_base: Option<String>,
    /// How numbers without `+` are read.
    pub region: Region,
    /// A Contacts field read as `vip`.
    pub vip_field: Option<String>,
    /// A Contacts field read as `lifetime-value`.
    pub lifetime_value_field: Option<String>,
    /// What create-contact creates.
    pub create_as: Module,
    /// Whether a write-back for an unknown person creates the record.
    pub create_unknown_contacts: bool,
}

impl Settings {
    /// Settings for these credentials at `accounts_base`, with every default.
    pub fn new(
        accounts_base: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Self {
        Settings {
            plugin_id: PLUGIN_ID.to_owned(),
            oauth: OAuth {
                token_url: format!("{}/oauth/v2/token", accounts_base.trim_end_matches('/')),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                refresh_token: refresh_token.to_owned(),
            },
            api_base: None,
            api_version: DEFAULT_API_VERSION.to_owned(),
            web_base: None,
            region: Region::us(),
            vip_field: None,
            lifetime_value_field: None,
            create_as: Module::Leads,
            create_unknown_contacts: false,
        }
    }

    /// The fields read of each module.
    pub fn fields(&self, module: Module) -> Vec<String> {
        let mut fields: Vec<String> = [
            "id",
            "Full_Name",
            "First_Name",
            "Last_Name",
            "Email",
            "Secondary_Email",
            "Phone",
            "Mobile",
            "Owner",
        ]
        .map(String::from)
        .to_vec();
        match module {
            Module::Contacts => {
                fields.extend(["Home_Phone", "Other_Phone", "Account_Name"].map(String::from));
                for custom in [&self.vip_field, &self.lifetime_value_field]
                    .into_iter()
                    .flatten()
                {
                    if !fields.contains(custom) {
                        fields.push(custom.clone());
                    }
                }
            }
            Module::Leads => fields.push("Company".to_owned()),
        }
        fields
    }
}

/// The web app of the data centre an API domain belongs to:
/// `https://www.zohoapis.eu` → `https://crm.zoho.eu`; Canada's
/// `www.zohoapis.ca` → `https://crm.zohocloud.ca`. Anything else (a
/// stand-in) is used as it is.
pub fn web_base_of(api_base: &str) -> String {
    match api_base.split_once("://www.zohoapis.") {
        Some((scheme, "ca")) => format!("{scheme}://crm.zohocloud.ca"),
        Some((scheme, domain)) => format!("{scheme}://crm.zoho.{domain}"),
        None => api_base.to_owned(),
    }
}

/// Where the API is and which token to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `https://www.zohoapis.eu` (or `api_base`).
    pub api_base: String,
    /// `https://crm.zoho.eu`, for links.
    pub web_base: String,
    /// The access token.
    pub access_token: String,
}

impl Session {
    /// The session a token gives: `api_base`, else the token's
    /// `api_domain`, else the US domain.
    pub fn of(token: &Token, settings: &Settings) -> Session {
        let api_base = settings
            .api_base
            .clone()
            .or_else(|| token.api_base.clone())
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let web_base = settings
            .web_base
            .clone()
            .unwrap_or_else(|| web_base_of(token.api_base.as_deref().unwrap_or(api_base.as_str())));
        Session {
            api_base,
            web_base,
            access_token: token.access_token.clone(),
        }
    }

    /// The link to a record.
    pub fn record_url(&self, module: Module, id: &str) -> String {
        format!("{}/crm/tab/{}/{id}", self.web_base, module.name())
    }
}

/// One record of a search answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// Every field, as Zoho wrote it.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Record {
    /// A field as text; a lookup field (`Owner`, `Account_Name`) gives its
    /// `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let value = self.fields.get(name)?;
        match value {
            Value::Object(lookup) => profile::text(lookup.get("name")),
            other => profile::text(Some(other)),
        }
    }

    fn phones(&self) -> Vec<String> {
        ["Phone", "Mobile", "Home_Phone", "Other_Phone"]
            .iter()
            .filter_map(|f| self.field(f))
            .collect()
    }

    fn emails(&self) -> Vec<String> {
        ["Email", "Secondary_Email"]
            .iter()
            .filter_map(|f| self.field(f))
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
struct DataAnswer {
    #[serde(default)]
    data: Vec<Record>,
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
    /// The needle for an identity; `None` for kinds Zoho does not store and
    /// numbers that do not read as numbers.
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

    /// The search's query string: `email=…`, or `phone=` and the digits
    /// without the country code (Zoho's phone search looks in every phone
    /// field).
    pub fn query(&self) -> String {
        let (name, value) = match self {
            Needle::Email(email) => ("email", email.clone()),
            Needle::Phone(e164) => (
                "phone",
                phone::national_number(e164).unwrap_or(e164).to_owned(),
            ),
        };
        format!("{name}={}", percent(&value))
    }

    fn held_by(&self, record: &Record, region: &Region) -> bool {
        match self {
            Needle::Email(email) => record
                .emails()
                .iter()
                .any(|e| e.eq_ignore_ascii_case(email)),
            Needle::Phone(e164) => record
                .phones()
                .iter()
                .any(|stored| phone::matches(stored, e164, region)),
        }
    }
}

/// The profile of a Contacts or Leads record.
pub fn profile_of(
    record: &Record,
    module: Module,
    session: &Session,
    settings: &Settings,
) -> CrmProfile {
    let id = record.field("id").unwrap_or_default();
    let mut builder = ProfileBuilder::new(&id, settings.region);
    builder.name(record.field("Full_Name").or_else(|| {
        profile::full_name(
            record.field("First_Name").as_deref(),
            record.field("Last_Name").as_deref(),
        )
    }));
    for email in record.emails() {
        builder.email(Some(&email));
    }
    for number in record.phones() {
        builder.phone(Some(&number));
    }
    if module == Module::Contacts {
        if let Some(field) = &settings.vip_field {
            builder.vip(record.field(field));
        }
        if let Some(field) = &settings.lifetime_value_field {
            builder.attribute(profile::LIFETIME_VALUE, record.field(field));
        }
    }
    builder
        .attribute(profile::OWNER, record.field("Owner"))
        .attribute(
            profile::COMPANY,
            record
                .field("Account_Name")
                .or_else(|| record.field("Company")),
        )
        .attribute(profile::RECORD_TYPE, Some(module.record_type().to_owned()))
        .url(Some(session.record_url(module, &id)));
    builder.build()
}

/// Zoho's error answer: `{"code", "message", "status": "error"}`, or per
/// record `{"data": [{"code", "message", "details"}]}`.
pub fn failure(response: &Response) -> PluginError {
    #[derive(Deserialize)]
    struct Problem {
        code: Option<String>,
        message: Option<String>,
        #[serde(default)]
        data: Vec<Problem>,
    }
    let detail = match serde_json::from_slice::<Problem>(&response.body) {
        Ok(problem) => {
            let problem = match problem.code {
                Some(_) => problem,
                None => problem.data.into_iter().next().unwrap_or(Problem {
                    code: None,
                    message: None,
                    data: Vec::new(),
                }),
            };
            match problem.code {
                Some(code) => format!("{code}: {}", problem.message.unwrap_or_default()),
                None => snippet(&response.body),
            }
        }
        Err(_) => snippet(&response.body),
    };
    error::classify(response.status, response.retry_after_secs(), &detail)
}

/// The id of the record an insert created, or why it was refused
/// (`{"data":[{"code":"SUCCESS","details":{"id":…},"status":"success"}]}`).
///
/// # Errors
///
/// [`PluginError::Permanent`] with Zoho's code and message for a refused
/// record (`MANDATORY_NOT_FOUND`, `INVALID_DATA`, `DUPLICATE_DATA`…).
pub fn inserted_id(response: &Response) -> Result<String, PluginError> {
    #[derive(Deserialize)]
    struct Item {
        code: Option<String>,
        status: Option<String>,
        message: Option<String>,
        #[serde(default)]
        details: Map<String, Value>,
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Vec<Item>,
    }
    let answer: Answer = error::parse_json(response, "the record insert")?;
    let item = answer
        .data
        .into_iter()
        .next()
        .ok_or_else(|| PluginError::Internal("the record insert answered no data".into()))?;
    match (
        item.status.as_deref(),
        profile::text(item.details.get("id")),
    ) {
        (Some("success"), Some(id)) => Ok(id),
        _ => Err(PluginError::Permanent(format!(
            "{}: {} {}",
            item.code.as_deref().unwrap_or("ERROR"),
            item.message.as_deref().unwrap_or("refused"),
            Value::Object(item.details)
        ))),
    }
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// The body of `POST …/Calls` for a call with the person `id` of `module`:
/// a Contact is the call's `Who_Id`, a Lead its `What_Id` with
/// `$se_module`.
pub fn call_body(entry: &TimelineEntry, module: Module, id: &str) -> Value {
    let secs = activity::duration_secs(entry).unwrap_or(0);
    let call_type = if activity::call_missed(entry) {
        "Missed"
    } else if entry.direction == Direction::Inbound {
        "Inbound"
    } else {
        "Outbound"
    };
    let mut call = json!({
        "Subject": cut(&activity::subject(entry), SUBJECT_MAX),
        "Call_Type": call_type,
        "Call_Start_Time": activity::iso_utc_offset(entry.occurred_at_ms),
        "Call_Duration": format!("{:02}:{:02}", secs / 60, secs % 60),
        "Description": cut(&activity::description(entry), NOTE_MAX),
    });
    match module {
        Module::Contacts => call["Who_Id"] = json!({"id": id}),
        Module::Leads => {
            call["$se_module"] = json!("Leads");
            call["What_Id"] = json!({"id": id});
        }
    }
    json!({"data": [call]})
}

/// The body of `POST …/{module}/{id}/Notes` for anything but a call.
pub fn note_body(entry: &TimelineEntry) -> Value {
    json!({"data": [{
        "Note_Title": cut(&activity::subject(entry), SUBJECT_MAX),
        "Note_Content": cut(&activity::description(entry), NOTE_MAX),
    }]})
}

/// The body creating a Leads or Contacts record from a host contact.
pub fn create_body(contact: &ContactSummary, settings: &Settings) -> Value {
    let name = contact
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let mut record = Map::new();
    match name.map(|n| n.rsplit_once(' ')) {
        Some(Some((first, last))) => {
            record.insert("First_Name".into(), json!(first.trim()));
            record.insert("Last_Name".into(), json!(last.trim()));
        }
        Some(None) => {
            record.insert("Last_Name".into(), json!(name.unwrap_or_default()));
        }
        None => {
            record.insert("Last_Name".into(), json!("Unknown"));
        }
    }
    for identity in &contact.identities {
        match Needle::of(identity, &settings.region) {
            Some(Needle::Email(email)) if !record.contains_key("Email") => {
                record.insert("Email".into(), json!(email));
            }
            Some(Needle::Phone(e164)) if !record.contains_key("Phone") => {
                record.insert("Phone".into(), json!(e164));
            }
            _ => {}
        }
    }
    json!({"data": [record]})
}

/// Percent-encodes a query value.
pub fn percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A person's record: which module, which id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Contacts or Leads.
    pub module: Module,
    /// The record id.
    pub id: String,
}

/// Which module each record id seen lately is in (bounded, [`Slots`]).
const MODULES: Slots = Slots("module");

/// The plugin's calls over one transport and store.
pub struct Zoho<S, T> {
    /// Configuration.
    pub settings: Settings,
    /// The plugin's kv (token cache and bookkeeping).
    pub store: S,
    /// Outbound HTTP.
    pub http: T,
    /// The time of this call, for the token's expiry.
    pub now_ms: u64,
}

impl<S: Store, T: Transport> Zoho<S, T> {
    /// Sends the request `build` makes (with a path under the versioned API
    /// root) for the current session, refreshing the token once on 401.
    /// Answers 204 (no records) as a success.
    fn call(&mut self, build: impl Fn() -> Request) -> Result<(Session, Response), PluginError> {
        let settings = self.settings.clone();
        let mut session = None;
        let response =
            self.settings
                .oauth
                .send(&mut self.store, &mut self.http, self.now_ms, |token| {
                    let current = Session::of(token, &settings);
                    let request = build();
                    let request = Request {
                        url: format!(
                            "{}/crm/{}{}",
                            current.api_base, settings.api_version, request.url
                        ),
                        ..request
                    }
                    .header(
                        "authorization",
                        format!("Zoho-oauthtoken {}", current.access_token),
                    )
                    .header("accept", "application/json");
                    session = Some(current);
                    Ok(request)
                })?;
        if !response.is_success() {
            return Err(failure(&response));
        }
        let session = session.ok_or_else(|| PluginError::Internal("no API session".into()))?;
        Ok((session, response))
    }

    fn search(
        &mut self,
        module: Module,
        needle: &Needle,
    ) -> Result<Option<(Session, Record)>, PluginError> {
        let mut path = format!("/{}/search?{}", module.name(), needle.query());
        // Since v3 the fields to answer are named; v2 answers them all.
        if self.settings.api_version != "v2" {
            path.push_str("&fields=");
            path.push_str(&percent(&self.settings.fields(module).join(",")));
        }
        let (session, response) = self.call(|| Request::get(path.clone()))?;
        if response.status == 204 || response.body.is_empty() {
            return Ok(None);
        }
        let answer: DataAnswer = error::parse_json(&response, "the record search")?;
        Ok(answer
            .data
            .into_iter()
            .find(|r| needle.held_by(r, &self.settings.region))
            .map(|r| (session, r)))
    }

    fn find(&mut self, needle: &Needle) -> Result<Option<CrmProfile>, PluginError> {
        for module in [Module::Contacts, Module::Leads] {
            if let Some((session, record)) = self.search(module, needle)? {
                let profile = profile_of(&record, module, &session, &self.settings);
                MODULES.set(&mut self.store, &profile.external_id, module.name());
                return Ok(Some(profile));
            }
        }
        Ok(None)
    }

    /// Finds the Contact (else the Lead) holding `identity`.
    ///
    /// # Errors
    ///
    /// The token endpoint's or the API's refusal, or no answer.
    pub fn lookup(&mut self, identity: &Identity) -> Result<Option<CrmProfile>, PluginError> {
        match Needle::of(identity, &self.settings.region) {
            Some(needle) => self.find(&needle),
            None => Ok(None),
        }
    }

    /// Creates a Leads (or Contacts, per `create_as`) record from what the
    /// host knows; when Zoho refuses it as a duplicate, answers the
    /// existing record.
    ///
    /// # Errors
    ///
    /// The API's refusal.
    pub fn create(&mut self, contact: &ContactSummary) -> Result<CrmProfile, PluginError> {
        let body = create_body(contact, &self.settings);
        let module = self.settings.create_as;
        let answer = self
            .call(|| Request::post(format!("/{}", module.name())).json(body.to_string()))
            .and_then(|(session, response)| Ok((session, inserted_id(&response)?)));
        let (session, id) = match answer {
            Ok(created) => created,
            Err(PluginError::Permanent(m)) if m.contains("DUPLICATE_DATA") => {
                for identity in activity::identities_to_try(contact) {
                    if let Some(existing) = self.lookup(&identity)? {
                        return Ok(existing);
                    }
                }
                return Err(PluginError::Permanent(m));
            }
            Err(e) => return Err(e),
        };
        MODULES.set(&mut self.store, &id, module.name());
        let mut fields = body["data"][0].as_object().cloned().unwrap_or_default();
        fields.insert("id".into(), json!(id));
        Ok(profile_of(
            &Record { fields },
            module,
            &session,
            &self.settings,
        ))
    }

    /// The person with record id `id`: its module as a lookup or create
    /// saw it, else asked of Zoho (`GET …/Contacts/{id}`: a Contact if it
    /// answers the record, a Lead otherwise).
    fn person(&mut self, id: String) -> Result<Person, PluginError> {
        let module = match MODULES.get(&self.store, &id).as_deref() {
            Some("Leads") => Module::Leads,
            Some("Contacts") => Module::Contacts,
            _ => {
                let mut path = format!("/Contacts/{}", percent(&id));
                if self.settings.api_version != "v2" {
                    path.push_str("?fields=id");
                }
                let module = match self.call(|| Request::get(path.clone())) {
                    Ok((_, response)) if response.status != 204 && !response.body.is_empty() => {
                        let answer: DataAnswer = error::parse_json(&response, "the record read")?;
                        if answer.data.is_empty() {
                            Module::Leads
                        } else {
                            Module::Contacts
                        }
                    }
                    Ok(_) | Err(PluginError::Permanent(_)) => Module::Leads,
                    Err(e) => return Err(e),
                };
                MODULES.set(&mut self.store, &id, module.name());
                module
            }
        };
        Ok(Person { module, id })
    }

    /// The record of a host contact; see [`activity`] for the order.
    /// `known` allows the ids the host and the cache give; without it the
    /// person is looked up (or created) afresh.
    fn person_of(
        &mut self,
        contact: &ContactSummary,
        known: bool,
    ) -> Result<Option<Person>, PluginError> {
        if known {
            if let Some(id) = activity::known_external_id(contact, &self.settings.plugin_id) {
                return self.person(id).map(Some);
            }
            if let Some(id) = activity::cached_link(&self.store, &contact.id) {
                return self.person(id).map(Some);
            }
        }
        for identity in activity::identities_to_try(contact) {
            if let Some(found) = self.lookup(&identity)? {
                activity::cache_link(&mut self.store, &contact.id, &found.external_id);
                return self.person(found.external_id).map(Some);
            }
        }
        if self.settings.create_unknown_contacts {
            let created = self.create(contact)?;
            activity::cache_link(&mut self.store, &contact.id, &created.external_id);
            return self.person(created.external_id).map(Some);
        }
        Ok(None)
    }

    /// Creates the call or note for `entry` on `person`; answers its id.
    fn write(&mut self, entry: &TimelineEntry, person: &Person) -> Result<String, PluginError> {
        let (path, body) = match activity::kind_of(entry) {
            ActivityKind::Call => (
                "/Calls".to_owned(),
                call_body(entry, person.module, &person.id),
            ),
            ActivityKind::Message | ActivityKind::Note => (
                format!("/{}/{}/Notes", person.module.name(), percent(&person.id)),
                note_body(entry),
            ),
        };
        let (_, response) = self.call(|| Request::post(path.clone()).json(body.to_string()))?;
        inserted_id(&response)
    }

    /// Writes one timeline entry, once: a call as a Calls record, anything
    /// else as a note on the person.
    ///
    /// # Errors
    ///
    /// The API's refusal; [`PluginError::Permanent`] when the person is not
    /// in Zoho CRM and `create_unknown_contacts` is off.
    pub fn record(&mut self, entry: &TimelineEntry) -> Result<(), PluginError> {
        if Ledger::recorded(&self.store, &entry.id).is_some() {
            return Ok(());
        }
        let Some(person) = self.person_of(&entry.contact, true)? else {
            return Err(activity::unknown_person(&entry.contact));
        };
        let id = match self.write(entry, &person) {
            // The record the host or the cache named may be gone (deleted,
            // merged, a Lead converted): find the person again, once.
            Err(PluginError::Permanent(reason)) => match self.person_of(&entry.contact, false)? {
                Some(found) if found != person => self.write(entry, &found)?,
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
