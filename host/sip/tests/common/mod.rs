//! Shared helpers for the scenario tests: fixtures and an endpoint on virtual time.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_sip::message::{Message, Transport};
use switchboard_sip::transaction::{Input, Output, Received, TransactionLayer};

/// The raw bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every fixture, by name.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

/// A fixture, parsed.
pub fn message(name: &str) -> Message {
    Message::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The desk phone's address in the fixtures.
pub fn phone() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}

/// The trunk's address.
pub fn trunk() -> SocketAddr {
    "203.0.113.9:5060".parse().unwrap()
}

/// A transaction layer with a virtual clock and a log of everything it produced.
pub struct Endpoint {
    pub layer: TransactionLayer,
    pub start: Instant,
    pub now: Instant,
    /// (time since start, output), in order.
    pub log: Vec<(Duration, Output)>,
}

impl Endpoint {
    pub fn new() -> Self {
        let start = Instant::now();
        Endpoint {
            layer: TransactionLayer::new(),
            start,
            now: start,
            log: Vec::new(),
        }
    }

    /// A message arrives from `from` over `transport`.
    pub fn receive(&mut self, message: Message, from: SocketAddr, transport: Transport) {
        self.layer
            .handle_input(
                self.now,
                Input::Received(Received {
                    message,
                    source: from,
                    transport,
                }),
            )
            .unwrap();
        self.drain();
    }

    /// A new request arrives over UDP from `from`; returns the server transaction the
    /// layer delivered it on (and forgets the log up to here).
    pub fn receive_request(
        &mut self,
        request: Message,
        from: SocketAddr,
    ) -> switchboard_sip::transaction::TransactionId {
        self.receive(request, from, Transport::Udp);
        self.take()
            .into_iter()
            .find_map(|(_, o)| match o {
                Output::Request { id, .. } => Some(id),
                _ => None,
            })
            .expect("the request is delivered to the TU")
    }

    /// The TU sends a request in a new client transaction.
    pub fn send(
        &mut self,
        request: Message,
        to: SocketAddr,
        transport: Transport,
    ) -> switchboard_sip::transaction::TransactionId {
        let id = self
            .layer
            .send_request(self.now, request, to, transport)
            .unwrap();
        self.drain();
        id
    }

    /// The TU answers.
    pub fn respond(&mut self, id: switchboard_sip::transaction::TransactionId, response: Message) {
        self.layer
            .handle_input(self.now, Input::Respond { id, response })
            .unwrap();
        self.drain();
    }

    /// Lets virtual time pass, firing every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.layer.poll_timeout().filter(|at| *at <= until) {
            self.now = at.max(self.now);
            self.layer.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    pub fn drain(&mut self) {
        while let Some(out) = self.layer.poll_output() {
            self.log.push((self.now - self.start, out));
        }
    }

    /// Takes the log.
    pub fn take(&mut self) -> Vec<(Duration, Output)> {
        std::mem::take(&mut self.log)
    }

    /// Takes the messages sent, with the time (ms) they went out.
    pub fn take_sent(&mut self) -> Vec<(u128, Message)> {
        self.take()
            .into_iter()
            .filter_map(|(at, o)| match o {
                Output::Transmit(t) => Some((at.as_millis(), t.message)),
                _ => None,
            })
            .collect()
    }
}

/// A one-line summary of a message: "INVITE" or "180".
pub fn label(m: &Message) -> String {
    match m.status() {
        Some(s) => s.to_string(),
        None => m.method().unwrap().to_string(),
    }
}
