//! A scripted mail server for protocol tests: it answers with the bytes it
//! was given, in order, and records everything the client writes.

use switchboard_sdk::mail::{StreamError, Transport};

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
