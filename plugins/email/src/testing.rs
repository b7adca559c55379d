//! Test doubles: a scripted mail server for protocol tests (it answers with
//! the bytes it was given, in order, and records everything the client
//! writes), and a key-value store in memory.

use std::collections::HashMap;

use switchboard_sdk::mail::{StreamError, Transport};

use crate::store::Store;

/// The plugin's kv as a map.
#[derive(Debug, Default)]
pub struct Memory(pub HashMap<String, Vec<u8>>);

impl Store for Memory {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }
    fn set(&mut self, key: &str, value: &[u8]) {
        self.0.insert(key.to_owned(), value.to_vec());
    }
    fn delete(&mut self, key: &str) {
        self.0.remove(key);
    }
}

pub struct Script {
    input: Vec<u8>,
    at: usize,
    pub written: Vec<u8>,
    pub tls: bool,
    /// How much the client had written when it upgraded to TLS.
    pub tls_after: Option<usize>,
}

impl Script {
    pub fn new(server: impl AsRef<[u8]>) -> Script {
        Script {
            input: server.as_ref().to_vec(),
            at: 0,
            written: Vec::new(),
            tls: false,
            tls_after: None,
        }
    }

    /// What the client wrote, as text.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.written).into_owned()
    }

    /// Whether the server's script was read to its end.
    pub fn finished(&self) -> bool {
        self.at == self.input.len()
    }
}

fn closed() -> StreamError {
    StreamError::Io("the server closed the connection".into())
}

impl Transport for Script {
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, StreamError> {
        let rest = &self.input[self.at..];
        let end = rest.iter().position(|b| *b == b'\n').ok_or_else(closed)? + 1;
        if end > max {
            return Err(StreamError::Limit("line too long".into()));
        }
        self.at += end;
        Ok(rest[..end].to_vec())
    }

    fn read_exact_into(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), StreamError> {
        let rest = &self.input[self.at..];
        if rest.len() < len {
            return Err(closed());
        }
        out.extend_from_slice(&rest[..len]);
        self.at += len;
        Ok(())
    }

    fn write_all(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.written.extend_from_slice(data);
        Ok(())
    }

    fn start_tls(&mut self) -> Result<(), StreamError> {
        self.tls = true;
        self.tls_after = Some(self.written.len());
        Ok(())
    }

    fn is_tls(&self) -> bool {
        self.tls
    }
}
