//! The two host capabilities the connectors' logic touches — the plugin's
//! key-value store and outbound HTTP — behind small traits, so that logic
//! runs in native unit tests against [`MemoryStore`] and a scripted transport.
//!
//! [`HostKv`] and [`HostHttp`] are the real ones; they only work inside the
//! component.

use std::collections::BTreeMap;

use switchboard_sdk::http::{self, Request, Response};
use switchboard_sdk::{PluginError, kv};

/// A small key-value store (the plugin's kv).
pub trait Store {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// The store refused the write (quota, outage).
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError>;
    /// Removes `key`.
    fn delete(&mut self, key: &str);
}

/// Sends HTTP requests and returns whatever status comes back.
pub trait Transport {
    /// Sends one request.
    ///
    /// # Errors
    ///
    /// No response at all (denied origin, timeout, connection failure).
    fn send(&mut self, request: Request) -> Result<Response, PluginError>;
}

/// The host's key-value store.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostKv;

impl Store for HostKv {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        kv::set(key, value).map_err(PluginError::from)
    }

    fn delete(&mut self, key: &str) {
        kv::delete(key);
    }
}

/// The host's outbound HTTP.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostHttp;

impl Transport for HostHttp {
    fn send(&mut self, request: Request) -> Result<Response, PluginError> {
        Ok(http::send(request)?)
    }
}

/// An in-memory [`Store`] for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryStore(pub BTreeMap<String, Vec<u8>>);

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), PluginError> {
        self.0.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// A [`Transport`] for tests: answers from a script, records every request.
#[derive(Debug, Default, Clone)]
pub struct ScriptedTransport {
    /// Answers still to give, in order.
    pub script: std::collections::VecDeque<Result<Response, PluginError>>,
    /// Every request sent, in order.
    pub requests: Vec<Request>,
}

impl ScriptedTransport {
    /// Queues an answer with this status and JSON body.
    pub fn respond(&mut self, status: u16, body: &str) -> &mut Self {
        self.script.push_back(Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }));
        self
    }

    /// Queues a failure without a response.
    pub fn fail(&mut self, error: PluginError) -> &mut Self {
        self.script.push_back(Err(error));
        self
    }
}

impl Transport for ScriptedTransport {
    fn send(&mut self, request: Request) -> Result<Response, PluginError> {
        self.requests.push(request);
        self.script.pop_front().unwrap_or_else(|| {
            Err(PluginError::Transient(
                "the scripted transport has no answer left".into(),
            ))
        })
    }
}
