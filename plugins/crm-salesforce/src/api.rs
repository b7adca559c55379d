//! Salesforce's REST API as this plugin uses it: SOQL queries and
//! parameterized search over Contact and Lead, Task creation, and Lead or
//! Contact creation, with the OAuth 2.0 refresh-token flow in front
//! ([`crm_common::oauth`]).
//!
//! Building requests and reading answers are plain functions; [`Salesforce`]
//! sends them through a [`Transport`] and keeps its token and bookkeeping
//! in a [`Store`], so the whole flow runs in native tests.

use crm_common::activity::{self, ActivityKind, Ledger};
use crm_common::error::{self, snippet};
use crm_common::oauth::{OAuth, Token};
use crm_common::phone::{self, Region};
use crm_common::profile::{self, ProfileBuilder};
use crm_common::store::{Store, Transport};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_sdk::crm::{CrmProfile, Direction, TimelineEntry};
use switchboard_sdk::http::{Request, Response};
use switchboard_sdk::{ContactSummary, Identity, PluginError};

/// This plugin's id, as in `plugin.toml`.
pub const PLUGIN_ID: &str = "crm-salesforce";
/// `login_base` when the operator sets none.
pub const DEFAULT_LOGIN_BASE: &str = "https://login.salesforce.com";
/// `api_version` when the operator sets none.
pub const DEFAULT_API_VERSION: &str = "v62.0";

/// How many records of each object one query or search returns.
const LIMIT: u32 = 10;
/// Salesforce's limits on a Task's text fields.
const SUBJECT_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 32_000;

/// The kinds of record a person can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A Contact (of an Account).
    Contact,
    /// A Lead not yet converted.
    Lead,
}

impl Object {
    /// The sObject name.
    pub fn name(self) -> &'static str {
        match self {
            Object::Contact => "Contact",
            Object::Lead => "Lead",
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
    /// `api_base`: overrides the token answer's `instance_url`.
    pub api_base: Option<String>,
    /// `v62.0`.
    pub api_version: String,
    /// How numbers without `+` are read.
    pub region: Region,
    /// A Contact field read as `vip`.
    pub vip_field: Option<String>,
    /// A Contact field read as `lifetime-value`.
    pub lifetime_value_field: Option<String>,
    /// What create-contact creates.
    pub create_as: Object,
    /// The Company of created Leads.
    pub lead_company: String,
    /// Whether a write-back for an unknown person creates the record.
    pub create_unknown_contacts: bool,
}

impl Settings {
    /// Settings for these credentials at `login_base`, with every default.
    pub fn new(
        login_base: &str,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Self {
        Settings {
            plugin_id: PLUGIN_ID.to_owned(),
            oauth: OAuth {
                token_url: format!("{}/services/oauth2/token", login_base.trim_end_matches('/')),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                refresh_token: refresh_token.to_owned(),
            },
            api_base: None,
            api_version: DEFAULT_API_VERSION.to_owned(),
            region: Region::us(),
            vip_field: None,
            lifetime_value_field: None,
            create_as: Object::Lead,
            lead_company: "Unknown".to_owned(),
            create_unknown_contacts: false,
        }
    }

    /// The fields read of each object.
    pub fn fields(&self, object: Object) -> Vec<String> {
        let mut fields: Vec<String> = [
            "Id",
            "Name",
            "FirstName",
            "LastName",
            "Email",
            "Phone",
            "MobilePhone",
            "OwnerId",
            "Owner.Name",
        ]
        .map(String::from)
        .to_vec();
        match object {
            Object::Contact => {
                fields.extend(["HomePhone", "OtherPhone", "Account.Name"].map(String::from));
                for custom in [&self.vip_field, &self.lifetime_value_field]
                    .into_iter()
                    .flatten()
                {
                    if !fields.contains(custom) {
                        fields.push(custom.clone());
                    }
                }
            }
            Object::Lead => fields.push("Company".to_owned()),
        }
        fields
    }
}

/// Where the API is and which token to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `https://acme.my.salesforce.com` (or `api_base`).
    pub api_base: String,
    /// The org's own address, for links (`instance_url`, else `api_base`).
    pub instance_url: String,
    /// The access token.
    pub access_token: String,
}

impl Session {
    /// The session a token gives, with the operator's `api_base` first.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] when neither says where the API is.
    pub fn of(token: &Token, api_base: Option<&str>) -> Result<Session, PluginError> {
        let instance = token.api_base.clone();
        let api_base = api_base
            .map(str::to_owned)
            .or_else(|| instance.clone())
            .ok_or_else(|| {
                PluginError::Config(
                    "the token answer had no instance_url and config `api_base` is not set".into(),
                )
            })?;
        Ok(Session {
            instance_url: instance.unwrap_or_else(|| api_base.clone()),
            api_base,
            access_token: token.access_token.clone(),
        })
    }

    /// The Lightning link to a record.
    pub fn record_url(&self, object: &str, id: &str) -> String {
        format!("{}/lightning/r/{object}/{id}/view", self.instance_url)
    }
}

/// A SOQL string literal's contents: quotes and backslashes escaped, line
/// breaks written as escapes, so a value can never end the literal.
pub fn soql_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
    out
}

/// `SELECT … FROM {object} WHERE Email = '…'` (Leads: not converted), newest
/// first.
pub fn email_query(object: Object, email: &str, settings: &Settings) -> String {
    let converted = match object {
        Object::Contact => "",
        Object::Lead => " AND IsConverted = false",
    };
    format!(
        "SELECT {} FROM {} WHERE Email = '{}'{converted} ORDER BY LastModifiedDate DESC LIMIT {LIMIT}",
        settings.fields(object).join(", "),
        object.name(),
        soql_escape(email),
    )
}

/// The body of `POST …/parameterizedSearch/` for a phone number: its digits
/// without the country code in the phone fields of Contacts and unconverted
/// Leads (Salesforce's search ignores how the numbers are formatted).
pub fn phone_search_body(e164: &str, settings: &Settings) -> Value {
    let national = phone::national_number(e164).unwrap_or(e164);
    json!({
        "q": phone::digits(national),
        "in": "PHONE",
        "fetchMetadata": false,
        "overallLimit": 2 * LIMIT,
        "sobjects": [
            {"name": "Contact", "fields": settings.fields(Object::Contact), "limit": LIMIT},
            {"name": "Lead", "fields": settings.fields(Object::Lead), "where": "IsConverted = false", "limit": LIMIT},
        ],
    })
}

/// One record of a query or search answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// `{"type": "Contact", "url": …}`.
    #[serde(default)]
    pub attributes: Option<Attributes>,
    /// Every field, as Salesforce wrote it.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A record's `attributes`.
#[derive(Debug, Clone, Deserialize)]
pub struct Attributes {
    /// The sObject name.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Record {
    /// A field's value as text; `Owner.Name` follows the relationship.
    pub fn field(&self, path: &str) -> Option<String> {
        let mut parts = path.split('.');
        let mut value = self.fields.get(parts.next()?)?;
        for part in parts {
            value = value.get(part)?;
        }
        profile::text(Some(value))
    }

    /// The record id.
    pub fn id(&self) -> Option<String> {
        self.field("Id")
    }

    /// `Contact` or `Lead`.
    pub fn kind(&self) -> &str {
        self.attributes.as_ref().map_or("", |a| a.kind.as_str())
    }

    /// Every phone number the record holds.
    fn phones(&self) -> Vec<String> {
        ["Phone", "MobilePhone", "HomePhone", "OtherPhone"]
            .iter()
            .filter_map(|f| self.field(f))
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct QueryAnswer {
    #[serde(default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct SearchAnswer {
    #[serde(default, rename = "searchRecords")]
    search_records: Vec<Record>,
}

/// The profile of a Contact or Lead.
pub fn profile_of(record: &Record, session: &Session, settings: &Settings) -> CrmProfile {
    let id = record.id().unwrap_or_default();
    let kind = record.kind().to_owned();
    let mut builder = ProfileBuilder::new(&id, settings.region);
    builder
        .name(record.field("Name").or_else(|| {
            profile::full_name(
                record.field("FirstName").as_deref(),
                record.field("LastName").as_deref(),
            )
        }))
        .email(record.field("Email").as_deref());
    for number in record.phones() {
        builder.phone(Some(&number));
    }
    if kind == "Contact" {
        if let Some(field) = &settings.vip_field {
            builder.vip(record.field(field));
        }
        if let Some(field) = &settings.lifetime_value_field {
            builder.attribute(profile::LIFETIME_VALUE, record.field(field));
        }
    }
    builder
        .attribute(
            profile::OWNER,
            record
                .field("Owner.Name")
                .or_else(|| record.field("OwnerId")),
        )
        .attribute(
            profile::COMPANY,
            record
                .field("Account.Name")
                .or_else(|| record.field("Company")),
        )
        .attribute(profile::RECORD_TYPE, Some(kind.clone()))
        .url(Some(session.record_url(
            if kind.is_empty() { "Contact" } else { &kind },
            &id,
        )));
    builder.build()
}

/// Salesforce's error answer: `[{"message", "errorCode", "fields"}]`.
/// `REQUEST_LIMIT_EXCEEDED` (HTTP 403) is the org's API limit: rate-limited.
pub fn failure(response: &Response) -> PluginError {
    #[derive(Deserialize)]
    struct Problem {
        message: Option<String>,
        #[serde(rename = "errorCode")]
        error_code: Option<String>,
    }
    let problems: Vec<Problem> = serde_json::from_slice(&response.body).unwrap_or_default();
    if problems
        .iter()
        .any(|p| p.error_code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED"))
    {
        return PluginError::RateLimited(response.retry_after_secs());
    }
    let detail = if problems.is_empty() {
        snippet(&response.body)
    } else {
        problems
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.error_code.as_deref().unwrap_or("ERROR"),
                    p.message.as_deref().unwrap_or("no message")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    error::classify(response.status, response.retry_after_secs(), &detail)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// The Task a timeline entry becomes on the person `who_id`: completed,
/// dated, with the entry id in `CallObject` (filterable, so a retry can ask
/// whether an earlier attempt landed). Calls are `TaskSubtype = Call` with
/// their type, duration and disposition.
pub fn task_body(entry: &TimelineEntry, who_id: &str) -> Value {
    let mut task = json!({
        "Subject": cut(&activity::subject(entry), SUBJECT_MAX),
        "Status": "Completed",
        "Priority": "Normal",
        "WhoId": who_id,
        "ActivityDate": activity::date_utc(entry.occurred_at_ms),
        "Description": cut(&activity::description(entry), DESCRIPTION_MAX),
        "CallObject": cut(&entry.id, SUBJECT_MAX),
    });
    if activity::kind_of(entry) == ActivityKind::Call {
        task["TaskSubtype"] = json!("Call");
        task["CallType"] = json!(match entry.direction {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
            Direction::Internal => "Internal",
        });
        if let Some(secs) = activity::duration_secs(entry) {
            task["CallDurationInSeconds"] = json!(secs);
        }
        if let Some(code) = entry.disposition.as_deref().filter(|d| !d.is_empty()) {
            task["CallDisposition"] = json!(cut(code, SUBJECT_MAX));
        } else if activity::call_missed(entry) {
            task["CallDisposition"] = json!("Not answered");
        }
    } else {
        task["TaskSubtype"] = json!("Task");
    }
    task
}

/// The body creating a Lead or Contact from a host contact.
pub fn create_body(contact: &ContactSummary, settings: &Settings) -> Value {
    let name = contact
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let (first, last) = match name.map(|n| n.rsplit_once(' ')) {
        Some(Some((first, last))) => (Some(first.trim()), last.trim()),
        Some(None) => (None, name.unwrap_or_default()),
        None => (None, "Unknown"),
    };
    let mut body = Map::new();
    if let Some(first) = first {
        body.insert("FirstName".into(), json!(first));
    }
    body.insert("LastName".into(), json!(last));
    for identity in &contact.identities {
        let value = identity.value.trim();
        if identity.kind == "email" && value.contains('@') && !body.contains_key("Email") {
            body.insert("Email".into(), json!(value.to_lowercase()));
        } else if activity::is_phone_kind(&identity.kind)
            && !body.contains_key("Phone")
            && let Some(e164) = phone::normalize(value, &settings.region)
        {
            body.insert("Phone".into(), json!(e164));
        }
    }
    if settings.create_as == Object::Lead {
        body.insert("Company".into(), json!(settings.lead_company));
    }
    Value::Object(body)
}

/// The plugin's calls over one transport and store.
pub struct Salesforce<S, T> {
    /// Configuration.
    pub settings: Settings,
    /// The plugin's kv (token cache and bookkeeping).
    pub store: S,
    /// Outbound HTTP.
    pub http: T,
    /// The time of this call, for the token's expiry.
    pub now_ms: u64,
}

impl<S: Store, T: Transport> Salesforce<S, T> {
    /// Sends the request `build` makes for the current session, refreshing
    /// the token once on 401.
    fn call(
        &mut self,
        build: impl Fn(&Session) -> Request,
    ) -> Result<(Session, Response), PluginError> {
        let api_base = self.settings.api_base.clone();
        let version = self.settings.api_version.clone();
        let mut session = None;
        let response =
            self.settings
                .oauth
                .send(&mut self.store, &mut self.http, self.now_ms, |token| {
                    let current = Session::of(token, api_base.as_deref())?;
                    // `build` writes paths relative to the versioned API root.
                    let request = build(&current);
                    let request = Request {
                        url: format!(
                            "{}/services/data/{version}{}",
                            current.api_base, request.url
                        ),
                        ..request
                    }
                    .bearer_auth(&current.access_token)
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

    /// Finds the Contact (else the unconverted Lead) holding `identity`.
    ///
    /// # Errors
    ///
    /// The token endpoint's or the API's refusal, or no answer.
    pub fn lookup(&mut self, identity: &Identity) -> Result<Option<CrmProfile>, PluginError> {
        let value = identity.value.trim();
        if identity.kind == "email" && value.contains('@') {
            let email = value.to_lowercase();
            for object in [Object::Contact, Object::Lead] {
                let query = email_query(object, &email, &self.settings);
                let (session, response) = self.call(|_| {
                    let mut url = String::from("/query?");
                    url.push_str(&form_encode(&[("q", &query)]));
                    Request::get(url)
                })?;
                let answer: QueryAnswer = error::parse_json(&response, "the SOQL query")?;
                if let Some(record) = answer.records.iter().find(|r| {
                    r.field("Email")
                        .is_some_and(|e| e.eq_ignore_ascii_case(&email))
                }) {
                    return Ok(Some(profile_of(record, &session, &self.settings)));
                }
            }
            return Ok(None);
        }
        if !activity::is_phone_kind(&identity.kind) {
            return Ok(None);
        }
        let Some(e164) = phone::normalize(value, &self.settings.region) else {
            return Ok(None);
        };
        let body = phone_search_body(&e164, &self.settings);
        let (session, response) =
            self.call(|_| Request::post("/parameterizedSearch/").json(body.to_string()))?;
        let answer: SearchAnswer = error::parse_json(&response, "the phone search")?;
        let holds = |r: &&Record| {
            r.phones()
                .iter()
                .any(|stored| phone::matches(stored, &e164, &self.settings.region))
        };
        let found = answer
            .search_records
            .iter()
            .filter(|r| r.kind() == "Contact")
            .find(holds)
            .or_else(|| answer.search_records.iter().find(holds));
        Ok(found.map(|record| profile_of(record, &session, &self.settings)))
    }

    /// Creates a Lead (or Contact, per `create_as`) from what the host
    /// knows; when Salesforce's duplicate rules refuse it, answers the
    /// existing record.
    ///
    /// # Errors
    ///
    /// The API's refusal.
    pub fn create(&mut self, contact: &ContactSummary) -> Result<CrmProfile, PluginError> {
        let body = create_body(contact, &self.settings);
        let object = self.settings.create_as;
        let result = self.call(|_| {
            Request::post(format!("/sobjects/{}/", object.name())).json(body.to_string())
        });
        let (session, response) = match result {
            Err(PluginError::Permanent(m)) if m.contains("DUPLICATES_DETECTED") => {
                for identity in activity::identities_to_try(contact) {
                    if let Some(existing) = self.lookup(&identity)? {
                        return Ok(existing);
                    }
                }
                return Err(PluginError::Permanent(m));
            }
            other => other?,
        };
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = error::parse_json(&response, "the record creation")?;
        let mut record_fields = body.as_object().cloned().unwrap_or_default();
        record_fields.insert("Id".into(), json!(created.id));
        let record = Record {
            attributes: Some(Attributes {
                kind: object.name().to_owned(),
            }),
            fields: record_fields,
        };
        Ok(profile_of(&record, &session, &self.settings))
    }

    /// The Salesforce record (WhoId) of a host contact; see [`activity`] for
    /// the order. `known` allows the ids the host and the cache give;
    /// without it the person is looked up (or created) afresh.
    fn who_id(
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

    /// The Task an earlier, unconfirmed attempt at `entry_id` created.
    fn earlier_task(&mut self, entry_id: &str) -> Result<Option<String>, PluginError> {
        let query = format!(
            "SELECT Id FROM Task WHERE CallObject = '{}' LIMIT 1",
            soql_escape(entry_id)
        );
        let (_, response) =
            self.call(|_| Request::get(format!("/query?{}", form_encode(&[("q", &query)]))))?;
        let answer: QueryAnswer = error::parse_json(&response, "the Task query")?;
        Ok(answer.records.first().and_then(Record::id))
    }

    /// Writes one timeline entry as a completed Task, once.
    ///
    /// # Errors
    ///
    /// The API's refusal; [`PluginError::Permanent`] when the person is not
    /// in Salesforce and `create_unknown_contacts` is off.
    pub fn record(&mut self, entry: &TimelineEntry) -> Result<(), PluginError> {
        if Ledger::recorded(&self.store, &entry.id).is_some() {
            return Ok(());
        }
        if Ledger::attempted(&self.store, &entry.id)
            && let Some(task) = self.earlier_task(&entry.id)?
        {
            Ledger::remember(&mut self.store, &entry.id, &task);
            return Ok(());
        }
        let Some(who_id) = self.who_id(&entry.contact, true)? else {
            return Err(activity::unknown_person(&entry.contact));
        };
        Ledger::begin(&mut self.store, &entry.id);
        let id = match self.write(entry, &who_id) {
            // The record the host or the cache named may be gone (deleted,
            // merged, a Lead converted): find the person again, once.
            Err(PluginError::Permanent(reason)) => match self.who_id(&entry.contact, false)? {
                Some(found) if found != who_id => self.write(entry, &found)?,
                _ => return Err(PluginError::Permanent(reason)),
            },
            other => other?,
        };
        Ledger::remember(&mut self.store, &entry.id, &id);
        Ok(())
    }

    /// Creates the Task for `entry` on `who_id`; answers its id.
    fn write(&mut self, entry: &TimelineEntry, who_id: &str) -> Result<String, PluginError> {
        let body = task_body(entry, who_id);
        let (_, response) =
            self.call(|_| Request::post("/sobjects/Task/").json(body.to_string()))?;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let created: Created = error::parse_json(&response, "the Task creation")?;
        Ok(created.id)
    }
}

/// `application/x-www-form-urlencoded` pairs, for query strings.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&percent(name));
        out.push('=');
        out.push_str(&percent(value));
    }
    out
}

fn percent(value: &str) -> String {
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

#[cfg(test)]
mod tests;
