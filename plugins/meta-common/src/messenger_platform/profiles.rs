//! Customer names, best effort: `GET /{scoped id}?fields=…` once per
//! customer, cached in kv under `profile:{id}`.
//!
//! A name found is kept for good. A lookup Meta refuses (no permission, user
//! gone) is remembered for [`RETRY_REFUSED_AFTER_MS`] so the webhook does not
//! ask again for every message; a lookup that failed on the way (timeout,
//! 5xx, throttling) is not remembered. Failures never fail the webhook.

use serde::{Deserialize, Serialize};
use switchboard_sdk::PluginError;

use super::Platform;
use crate::graph::{self, Graph};
use crate::store::{Store, Transport};

/// How long a refused lookup is remembered.
pub const RETRY_REFUSED_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

/// Longest wait for a profile lookup: the whole webhook call has a deadline
/// of a few seconds.
pub const LOOKUP_TIMEOUT_MS: u64 = 1_000;

/// The kv key of a customer's cached profile.
pub fn key(customer: &str) -> String {
    format!("profile:{customer}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    name: Option<String>,
    at_ms: u64,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Profile {
    fn display_name(self) -> Option<String> {
        let joined = [self.first_name, self.last_name]
            .into_iter()
            .flatten()
            .map(|part| part.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        [Some(joined), self.name, self.username]
            .into_iter()
            .flatten()
            .map(|name| name.trim().to_owned())
            .find(|name| !name.is_empty())
    }
}

/// What the cache says about `customer`: `Some(name)` when it answers
/// (`Some(None)`: looked up recently, no name), `None` when Meta must be asked.
pub fn cached(store: &impl Store, customer: &str, now_ms: u64) -> Option<Option<String>> {
    let entry: Cached = serde_json::from_slice(&store.get(&key(customer))?).ok()?;
    match entry.name {
        Some(name) => Some(Some(name)),
        None if now_ms.saturating_sub(entry.at_ms) < RETRY_REFUSED_AFTER_MS => Some(None),
        None => None,
    }
}

/// The request for `customer`'s profile.
pub fn request(
    graph: &Graph,
    platform: Platform,
    customer: &str,
) -> switchboard_sdk::http::Request {
    graph
        .get(&format!(
            "{}?fields={}",
            graph::encode(customer),
            platform.profile_fields()
        ))
        .timeout_ms(LOOKUP_TIMEOUT_MS)
}

/// `customer`'s name from the cache, else from the Graph API (then cached).
/// `None` when unknown or when the lookup failed.
pub fn name(
    store: &mut impl Store,
    transport: &mut impl Transport,
    graph: &Graph,
    platform: Platform,
    customer: &str,
    now_ms: u64,
) -> Option<String> {
    match cached(store, customer, now_ms) {
        Some(answer) => answer,
        None => lookup(store, transport, graph, platform, customer, now_ms).unwrap_or(None),
    }
}

/// Asks the Graph API for `customer`'s name and caches the answer (see the
/// module doc for what is cached); `Ok(None)` when Meta has no name to give.
///
/// # Errors
///
/// The lookup failed on the way (timeout, 5xx, throttling): nothing is
/// cached, and further lookups now are likely to fail too.
pub fn lookup(
    store: &mut impl Store,
    transport: &mut impl Transport,
    graph: &Graph,
    platform: Platform,
    customer: &str,
    now_ms: u64,
) -> Result<Option<String>, PluginError> {
    let looked_up = transport
        .send(request(graph, platform, customer))
        .and_then(|response| graph::parse::<Profile>(&response));
    let name = match looked_up {
        Ok(profile) => profile.display_name(),
        Err(error @ (PluginError::Transient(_) | PluginError::RateLimited(_))) => {
            return Err(error);
        }
        Err(_) => None,
    };
    let entry = Cached {
        name: name.clone(),
        at_ms: now_ms,
    };
    // The cache only saves calls; a full kv must not lose the message.
    let _ = store.set(
        &key(customer),
        &serde_json::to_vec(&entry).unwrap_or_default(),
    );
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, ScriptedTransport};

    fn graph() -> Graph {
        Graph::new("https://graph.test", "v21.0", "PAGE-TOKEN")
    }

    #[test]
    fn a_found_name_is_cached_and_never_asked_again() {
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.respond(
            200,
            r#"{"first_name":"Ada","last_name":"Lovelace","id":"PSID-1"}"#,
        );

        let first = name(
            &mut store,
            &mut http,
            &graph(),
            Platform::Messenger,
            "PSID-1",
            0,
        );
        assert_eq!(first.as_deref(), Some("Ada Lovelace"));
        assert_eq!(http.requests.len(), 1);
        let request = &http.requests[0];
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.url,
            "https://graph.test/v21.0/PSID-1?fields=first_name,last_name"
        );
        assert!(
            request
                .headers
                .contains(&("authorization".into(), "Bearer PAGE-TOKEN".into()))
        );

        let later = name(
            &mut store,
            &mut http,
            &graph(),
            Platform::Messenger,
            "PSID-1",
            u64::MAX,
        );
        assert_eq!(later.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            http.requests.len(),
            1,
            "a cached sender is not looked up again"
        );
    }

    #[test]
    fn instagram_names_fall_back_to_the_username() {
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.respond(200, r#"{"username":"ada.codes","id":"IGSID"}"#);
        let found = name(
            &mut store,
            &mut http,
            &graph(),
            Platform::Instagram,
            "IGSID",
            0,
        );
        assert_eq!(found.as_deref(), Some("ada.codes"));
        assert!(
            http.requests[0]
                .url
                .ends_with("/IGSID?fields=name,username")
        );
    }

    #[test]
    fn refused_lookups_are_remembered_for_a_day() {
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.respond(
            400,
            r#"{"error":{"message":"Unsupported get request","type":"GraphMethodException","code":100,"error_subcode":33}}"#,
        );
        assert_eq!(
            name(
                &mut store,
                &mut http,
                &graph(),
                Platform::Messenger,
                "P",
                1_000
            ),
            None
        );
        assert_eq!(
            name(
                &mut store,
                &mut http,
                &graph(),
                Platform::Messenger,
                "P",
                2_000
            ),
            None
        );
        assert_eq!(http.requests.len(), 1);

        http.respond(200, r#"{"first_name":"Ada"}"#);
        let next_day = 1_000 + RETRY_REFUSED_AFTER_MS;
        assert_eq!(
            name(
                &mut store,
                &mut http,
                &graph(),
                Platform::Messenger,
                "P",
                next_day
            )
            .as_deref(),
            Some("Ada")
        );
        assert_eq!(http.requests.len(), 2);
    }

    #[test]
    fn failures_on_the_way_are_not_cached() {
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.fail(PluginError::Transient("timeout".into()));
        http.respond(500, r#"{"error":{"message":"oops","code":2}}"#);
        assert_eq!(
            name(&mut store, &mut http, &graph(), Platform::Messenger, "P", 0),
            None
        );
        assert_eq!(
            name(&mut store, &mut http, &graph(), Platform::Messenger, "P", 0),
            None
        );
        assert!(store.0.is_empty());
        assert_eq!(http.requests.len(), 2);
    }
}
