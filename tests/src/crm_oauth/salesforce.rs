//! The stand-in Salesforce org: its login server (`POST /services/oauth2/token`, see
//! the parent module) and its REST API (`/services/data/v62.0`, `Authorization:
//! Bearer`).
//!
//! SOQL queries (`GET /query?q=`) of the one shape the plugin sends — `SELECT fields
//! FROM Contact|Lead|Task WHERE Field = 'literal' [AND IsConverted = false] [ORDER BY
//! …] [LIMIT n]`, the literal unescaped as SOQL does; anything else, such as a value
//! that broke out of its quotes, is `MALFORMED_QUERY`, and a field the object does not
//! have is `INVALID_FIELD`. Phone search (`POST /parameterizedSearch/`, `"in":
//! "PHONE"`) matches the digits of every stored phone field whatever its format, as
//! Salesforce's search does. `POST /sobjects/Task/` needs `Subject`, a valid `Status`
//! and the `WhoId` of an existing Contact or Lead; `POST /sobjects/Lead/` and
//! `/sobjects/Contact/` create (Leads need a `Company`; an e-mail held already is
//! `DUPLICATES_DETECTED`). Errors are Salesforce's `[{"message", "errorCode"}]`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Client, Refusal, TokenRequest, Tokens, api_request, query_pairs, random_hex};
use crate::crm::{CrmRequest, calculated};

/// The connected app's consumer key the Salesforce stand-in accepts.
pub const SALESFORCE_CLIENT_ID: &str = "3MVG9e2eSwitchboardConnectedApp.e2e";
/// Its consumer secret.
pub const SALESFORCE_CLIENT_SECRET: &str = "e2e-salesforce-consumer-secret-7c1d";
/// The integration user's refresh token.
pub const SALESFORCE_REFRESH_TOKEN: &str = "5Aep861e2eSalesforceRefreshToken";
/// Where the Salesforce REST API is, under the stand-in's base.
pub const SALESFORCE_API: &str = "/services/data/v62.0";

/// A Contact, Lead or Task the Salesforce stand-in holds. Relationship fields are
/// kept under their dotted names (`Owner.Name`, `Account.Name`).
#[derive(Debug, Clone)]
pub struct SalesforceRecord {
    /// `Contact`, `Lead` or `Task`.
    pub object: String,
    /// Field values by API name, `Id` among them.
    pub fields: Map<String, Value>,
}

impl SalesforceRecord {
    /// The record id.
    pub fn id(&self) -> &str {
        self.text("Id")
    }

    /// A field as text (empty when absent or not text).
    pub fn text(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A Contact or Lead from field pairs; `Name` is made of `FirstName` and `LastName`
/// as Salesforce makes it, and Leads are not converted.
pub fn salesforce_record(object: &str, id: &str, fields: &[(&str, &str)]) -> SalesforceRecord {
    let mut map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    map.insert("Id".into(), json!(id));
    complete(object, &mut map);
    SalesforceRecord {
        object: object.to_string(),
        fields: map,
    }
}

/// The fields Salesforce fills itself.
fn complete(object: &str, fields: &mut Map<String, Value>) {
    if object == "Task" {
        return;
    }
    if !fields.contains_key("Name") {
        let name: Vec<&str> = ["FirstName", "LastName"]
            .iter()
            .filter_map(|f| fields.get(*f).and_then(Value::as_str))
            .collect();
        fields.insert("Name".into(), json!(name.join(" ")));
    }
    if object == "Lead" && !fields.contains_key("IsConverted") {
        fields.insert("IsConverted".into(), json!(false));
    }
}

/// The fields each object has (custom `__c` fields are taken as defined).
fn salesforce_field(object: &str, field: &str) -> bool {
    const PERSON: &[&str] = &[
        "Id",
        "Name",
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "MobilePhone",
        "OwnerId",
        "Owner.Name",
        "LastModifiedDate",
        "CreatedDate",
    ];
    const CONTACT: &[&str] = &[
        "HomePhone",
        "OtherPhone",
        "AccountId",
        "Account.Name",
        "Title",
    ];
    const LEAD: &[&str] = &["Company", "IsConverted", "Status"];
    const TASK: &[&str] = &[
        "Id",
        "Subject",
        "Status",
        "Priority",
        "WhoId",
        "WhatId",
        "OwnerId",
        "ActivityDate",
        "Description",
        "CallObject",
        "TaskSubtype",
        "CallType",
        "CallDurationInSeconds",
        "CallDisposition",
        "LastModifiedDate",
        "CreatedDate",
    ];
    match object {
        "Contact" => PERSON.contains(&field) || CONTACT.contains(&field) || field.ends_with("__c"),
        "Lead" => PERSON.contains(&field) || LEAD.contains(&field) || field.ends_with("__c"),
        "Task" => TASK.contains(&field),
        _ => false,
    }
}

fn salesforce_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

/// Salesforce's `error` and `error_description` for a refused grant.
fn refusal_words(refusal: &Refusal) -> (&'static str, &'static str) {
    match refusal {
        Refusal::Grant => ("unsupported_grant_type", "grant type not supported"),
        Refusal::ClientId => ("invalid_client_id", "client identifier invalid"),
        Refusal::ClientSecret => ("invalid_client", "invalid client credentials"),
        Refusal::RefreshToken => ("invalid_grant", "expired access/refresh token"),
    }
}

fn salesforce_oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A query of the one shape the stand-in reads.
#[derive(Debug, PartialEq)]
struct Soql {
    fields: Vec<String>,
    object: String,
    field: String,
    value: String,
    unconverted: bool,
    limit: Option<usize>,
}

/// Reads `SELECT f, … FROM Object WHERE Field = 'literal' [AND IsConverted = false]
/// [ORDER BY f [ASC|DESC]] [LIMIT n]`, the literal's escapes undone as SOQL does.
fn parse_soql(q: &str) -> Result<Soql, String> {
    // The text outside string literals, `?` where each literal was.
    let mut outside = String::new();
    let mut literals = Vec::new();
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        if c != '\'' {
            outside.push(c);
            continue;
        }
        let mut literal = String::new();
        loop {
            match chars.next() {
                None => return Err("unterminated string literal".into()),
                Some('\'') => break,
                Some('\\') => literal.push(match chars.next() {
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some(c @ ('\\' | '\'' | '"')) => c,
                    other => return Err(format!("invalid escape sequence \\{other:?}")),
                }),
                Some(c) => literal.push(c),
            }
        }
        literals.push(literal);
        outside.push_str(" ? ");
    }
    let (select, rest) = outside
        .trim()
        .split_once(" FROM ")
        .ok_or("expecting FROM")?;
    let fields = select
        .strip_prefix("SELECT ")
        .ok_or("expecting SELECT")?
        .split(',')
        .map(|f| f.trim().to_string())
        .collect::<Vec<_>>();
    if fields.iter().any(String::is_empty) {
        return Err("empty field in SELECT".into());
    }
    if literals.len() != 1 {
        return Err(format!("{} string literals, expecting 1", literals.len()));
    }
    let mut words = rest.split_whitespace().peekable();
    let object = words.next().ok_or("expecting an object")?.to_string();
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("WHERE"))
    {
        return Err("expecting WHERE".into());
    }
    let field = words.next().ok_or("expecting a field")?.to_string();
    if words.next() != Some("=") || words.next() != Some("?") {
        return Err(format!(
            "unexpected token after {field}, expecting = 'value'"
        ));
    }
    let mut soql = Soql {
        fields,
        object,
        field,
        value: literals.remove(0),
        unconverted: false,
        limit: None,
    };
    while let Some(word) = words.next() {
        match word.to_ascii_uppercase().as_str() {
            "AND" => {
                let clause: Vec<&str> = words.by_ref().take(3).collect();
                if clause != ["IsConverted", "=", "false"] {
                    return Err(format!("unexpected condition: {clause:?}"));
                }
                soql.unconverted = true;
            }
            "ORDER" => {
                if words.next().map(str::to_ascii_uppercase).as_deref() != Some("BY") {
                    return Err("expecting BY".into());
                }
                words.next().ok_or("expecting a field to order by")?;
                if words.peek().is_some_and(|w| {
                    w.eq_ignore_ascii_case("ASC") || w.eq_ignore_ascii_case("DESC")
                }) {
                    words.next();
                }
            }
            "LIMIT" => {
                let n = words.next().and_then(|n| n.parse().ok());
                soql.limit = Some(n.ok_or("expecting a number after LIMIT")?);
            }
            other => return Err(format!("unexpected token: '{other}'")),
        }
    }
    Ok(soql)
}

#[derive(Default)]
struct SalesforceState {
    tokens: Tokens,
    requests: Vec<CrmRequest>,
    records: Vec<SalesforceRecord>,
    next_id: u64,
}

impl SalesforceState {
    /// A new 18-character id with the object's key prefix.
    fn new_id(&mut self, object: &str) -> String {
        self.next_id += 1;
        let prefix = match object {
            "Contact" => "003",
            "Lead" => "00Q",
            _ => "00T",
        };
        format!("{prefix}E2{:010}AAA", self.next_id)
    }

    fn person(&self, id: &str) -> Option<&SalesforceRecord> {
        self.records
            .iter()
            .find(|r| r.id() == id && (r.object == "Contact" || r.object == "Lead"))
    }
}

/// A record as a query or search answers it: its `attributes` and the fields asked
/// for, relationships as nested objects.
fn salesforce_json(record: &SalesforceRecord, fields: &[String]) -> Value {
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({
            "type": record.object,
            "url": format!("{SALESFORCE_API}/sobjects/{}/{}", record.object, record.id()),
        }),
    );
    for field in fields {
        let value = record.fields.get(field).cloned().unwrap_or(Value::Null);
        match field.split_once('.') {
            Some((relation, name)) => {
                let entry = out.entry(relation.to_string()).or_insert(Value::Null);
                if !value.is_null() {
                    if entry.is_null() {
                        let kind = if relation == "Owner" {
                            "User"
                        } else {
                            relation
                        };
                        *entry = json!({"attributes": {"type": kind}});
                    }
                    entry[name] = value;
                }
            }
            None => {
                out.insert(field.clone(), value);
            }
        }
    }
    Value::Object(out)
}

/// The stand-in Salesforce org: its login server and its REST API.
#[derive(Clone)]
pub struct FakeSalesforce {
    /// `http://127.0.0.1:PORT`: the login base and the instance URL.
    pub base: String,
    state: Arc<Mutex<SalesforceState>>,
}

async fn salesforce(
    State(this): State<FakeSalesforce>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == "/services/oauth2/token" && method == Method::POST {
        return this.token(&headers, &body);
    }
    let request = api_request(&method, &uri, &headers, &body);
    let mut s = this.state.lock().unwrap();
    s.requests.push(request.clone());
    let Some(path) = request.path.strip_prefix(SALESFORCE_API) else {
        return salesforce_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    if !s.tokens.accepts(request.authorization.as_deref(), "Bearer") {
        return salesforce_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        );
    }
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/query") => {
            let q = query_pairs(&uri).remove("q").unwrap_or_default();
            query(&s, &q)
        }
        ("POST", "/parameterizedSearch") => search(&s, &request.json),
        ("POST", "/sobjects/Task") => create_task(&mut s, request.json),
        ("POST", "/sobjects/Lead") => create_person(&mut s, "Lead", request.json),
        ("POST", "/sobjects/Contact") => create_person(&mut s, "Contact", request.json),
        _ => salesforce_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ),
    }
}

fn query(s: &SalesforceState, q: &str) -> Response {
    let soql = match parse_soql(q) {
        Ok(soql) => soql,
        Err(e) => return salesforce_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &e),
    };
    if !["Contact", "Lead", "Task"].contains(&soql.object.as_str()) {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{}' is not supported.", soql.object),
        );
    }
    if let Some(unknown) = soql
        .fields
        .iter()
        .chain([&soql.field])
        .find(|f| !salesforce_field(&soql.object, f))
    {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            &format!("No such column '{unknown}' on entity '{}'.", soql.object),
        );
    }
    let records: Vec<Value> = s
        .records
        .iter()
        .filter(|r| r.object == soql.object)
        .filter(|r| r.text(&soql.field).eq_ignore_ascii_case(&soql.value))
        .filter(|r| !soql.unconverted || r.fields.get("IsConverted") != Some(&json!(true)))
        .take(soql.limit.unwrap_or(usize::MAX))
        .map(|r| salesforce_json(r, &soql.fields))
        .collect();
    axum::Json(json!({"totalSize": records.len(), "done": true, "records": records}))
        .into_response()
}

/// `parameterizedSearch` in the phone fields: every record one of whose numbers has
/// the searched digits, whatever its format.
fn search(s: &SalesforceState, body: &Value) -> Response {
    let term: String = body["q"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if term.chars().count() < 2 {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_SEARCH",
            "search term must be longer than one character",
        );
    }
    if body["in"].as_str() != Some("PHONE") {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_SEARCH",
            "the stand-in searches phone fields only (\"in\": \"PHONE\")",
        );
    }
    let Some(sobjects) = body["sobjects"].as_array() else {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_SEARCH",
            "sobjects is required",
        );
    };
    let overall = body["overallLimit"].as_u64().unwrap_or(2000) as usize;
    let wanted = calculated(&term);
    let mut found = Vec::new();
    for sobject in sobjects {
        let object = sobject["name"].as_str().unwrap_or_default();
        if object != "Contact" && object != "Lead" {
            return salesforce_error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                &format!("sObject type '{object}' is not supported."),
            );
        }
        let fields: Vec<String> = sobject["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_else(|| vec!["Id".into()]);
        if let Some(unknown) = fields.iter().find(|f| !salesforce_field(object, f)) {
            return salesforce_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{unknown}' on entity '{object}'."),
            );
        }
        let unconverted = match sobject["where"].as_str() {
            None => false,
            Some("IsConverted = false") => true,
            Some(other) => {
                return salesforce_error(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_SEARCH",
                    &format!("unexpected where clause: {other}"),
                );
            }
        };
        let limit = sobject["limit"].as_u64().unwrap_or(2000) as usize;
        found.extend(
            s.records
                .iter()
                .filter(|r| r.object == object)
                .filter(|r| !unconverted || r.fields.get("IsConverted") != Some(&json!(true)))
                .filter(|r| {
                    ["Phone", "MobilePhone", "HomePhone", "OtherPhone"]
                        .iter()
                        .map(|f| r.text(f))
                        .any(|stored| !stored.is_empty() && calculated(stored) == wanted)
                })
                .take(limit)
                .map(|r| salesforce_json(r, &fields)),
        );
    }
    found.truncate(overall);
    axum::Json(json!({"searchRecords": found})).into_response()
}

/// Refuses fields the object does not have.
fn unknown_fields(object: &str, body: &Map<String, Value>) -> Option<Response> {
    let unknown = body.keys().find(|k| !salesforce_field(object, k))?;
    Some(salesforce_error(
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
        &format!("No such column '{unknown}' on sobject of type {object}"),
    ))
}

fn created(id: &str) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response()
}

/// `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    text.len() == 10
        && text.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn create_task(s: &mut SalesforceState, body: Value) -> Response {
    let Value::Object(mut task) = body else {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "expecting a JSON object",
        );
    };
    if let Some(refused) = unknown_fields("Task", &task) {
        return refused;
    }
    let text = |field: &str| task.get(field).and_then(Value::as_str).unwrap_or_default();
    let missing: Vec<&str> = ["Subject", "Status", "WhoId"]
        .into_iter()
        .filter(|f| text(f).is_empty())
        .collect();
    if !missing.is_empty() {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_FIELD_MISSING",
            &format!("Required fields are missing: [{}]", missing.join(", ")),
        );
    }
    let statuses = [
        "Not Started",
        "In Progress",
        "Completed",
        "Waiting on someone else",
        "Deferred",
    ];
    if !statuses.contains(&text("Status")) {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            &format!(
                "Status: bad value for restricted picklist field: {}",
                text("Status")
            ),
        );
    }
    let date = text("ActivityDate");
    if !date.is_empty() && !is_date(date) {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Cannot deserialize instance of date from VALUE_STRING value {date}"),
        );
    }
    if s.person(text("WhoId")).is_none() {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
        );
    }
    let id = s.new_id("Task");
    task.insert("Id".into(), json!(id));
    s.records.push(SalesforceRecord {
        object: "Task".into(),
        fields: task,
    });
    created(&id)
}

fn create_person(s: &mut SalesforceState, object: &str, body: Value) -> Response {
    let Value::Object(mut fields) = body else {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "expecting a JSON object",
        );
    };
    if let Some(refused) = unknown_fields(object, &fields) {
        return refused;
    }
    let required: &[&str] = if object == "Lead" {
        &["LastName", "Company"]
    } else {
        &["LastName"]
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| {
            fields
                .get(*f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
        })
        .collect();
    if !missing.is_empty() {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_FIELD_MISSING",
            &format!("Required fields are missing: [{}]", missing.join(", ")),
        );
    }
    if let Some(email) = fields.get("Email").and_then(Value::as_str)
        && s.records
            .iter()
            .any(|r| r.object == object && r.text("Email").eq_ignore_ascii_case(email))
    {
        return salesforce_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATES_DETECTED",
            "Use one of these records?",
        );
    }
    let id = s.new_id(object);
    fields.insert("Id".into(), json!(id));
    complete(object, &mut fields);
    s.records.push(SalesforceRecord {
        object: object.to_string(),
        fields,
    });
    created(&id)
}

impl FakeSalesforce {
    /// Starts on a free loopback port holding `records` (Contacts and Leads).
    pub async fn start(records: Vec<SalesforceRecord>) -> FakeSalesforce {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let this = FakeSalesforce {
            base: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(SalesforceState {
                records,
                ..SalesforceState::default()
            })),
        };
        let app = axum::Router::new()
            .fallback(salesforce)
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        this
    }

    fn token(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let client = Client {
            id: SALESFORCE_CLIENT_ID,
            secret: SALESFORCE_CLIENT_SECRET,
            refresh_token: SALESFORCE_REFRESH_TOKEN,
        };
        let mut s = self.state.lock().unwrap();
        let issue = || format!("00DE2000000001!AR{}", random_hex(40));
        match s
            .tokens
            .grant(&client, headers, body, issue, |r| refusal_words(r).0)
        {
            Ok(token) => axum::Json(json!({
                "access_token": token,
                "signature": random_hex(32),
                "scope": "refresh_token api",
                "instance_url": self.base,
                "id": format!("{}/id/00DE2000000001AAA/005E2000000001AAA", self.base),
                "token_type": "Bearer",
                "issued_at": jiff::Timestamp::now().as_millisecond().to_string(),
            }))
            .into_response(),
            Err(refusal) => {
                let (error, description) = refusal_words(&refusal);
                salesforce_oauth_error(error, description)
            }
        }
    }

    /// Every API request so far (token requests are in [`Self::token_requests`]).
    pub fn requests(&self) -> Vec<CrmRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every token request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().tokens.requests.clone()
    }

    /// The Tasks written so far.
    pub fn tasks(&self) -> Vec<SalesforceRecord> {
        self.records("Task")
    }

    /// The records of one object it holds now.
    pub fn records(&self, object: &str) -> Vec<SalesforceRecord> {
        let s = self.state.lock().unwrap();
        s.records
            .iter()
            .filter(|r| r.object == object)
            .cloned()
            .collect()
    }

    /// Ends every access token issued so far: the API answers 401
    /// `INVALID_SESSION_ID` until the plugin refreshes.
    pub fn expire_token(&self) {
        self.state.lock().unwrap().tokens.valid.clear();
    }

    /// Revokes the refresh token, and with it every access token: the token endpoint
    /// answers `invalid_grant` from now on.
    pub fn revoke(&self) {
        let mut s = self.state.lock().unwrap();
        s.tokens.revoked = true;
        s.tokens.valid.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_of_the_plugins_shape_is_read_and_injection_is_refused() {
        let soql = parse_soql(
            "SELECT Id, Name, Owner.Name FROM Lead WHERE Email = 'pat.o\\'brien@example.com' \
             AND IsConverted = false ORDER BY LastModifiedDate DESC LIMIT 10",
        )
        .unwrap();
        assert_eq!(
            soql,
            Soql {
                fields: vec!["Id".into(), "Name".into(), "Owner.Name".into()],
                object: "Lead".into(),
                field: "Email".into(),
                value: "pat.o'brien@example.com".into(),
                unconverted: true,
                limit: Some(10),
            }
        );
        let task = parse_soql("SELECT Id FROM Task WHERE CallObject = 'crm_1' LIMIT 1").unwrap();
        assert_eq!(
            (task.object.as_str(), task.value.as_str()),
            ("Task", "crm_1")
        );
        for bad in [
            "SELECT Id FROM Contact WHERE Email = 'x' OR Name != '' LIMIT 10",
            "SELECT Id FROM Contact WHERE Email = 'pat.o'brien@example.com'",
            "SELECT Id FROM Contact WHERE Email = 'unterminated",
            "SELECT Id FROM Contact",
            "SELECT Id FROM Contact WHERE Email = 'a' AND IsConverted = true",
        ] {
            assert!(parse_soql(bad).is_err(), "{bad}");
        }
    }
}
