//! `test-misbehave`: a channel connector that misbehaves on purpose, so the host's
//! tests can prove that a trap, a runaway loop, a memory bomb, a forbidden
//! outbound request or an oversized answer fails one call and nothing else.
//!
//! `handle-webhook` dispatches on the last path segment of the request URL:
//!
//! | segment     | behaviour |
//! |-------------|-----------|
//! | `ok`        | 200 `ok` and one inbound message from `+15550000001`; provider id from the `id` query parameter, else the body |
//! | `loop`      | spins forever (the host's deadline must end it) |
//! | `bomb`      | allocates 1 MiB chunks and keeps them until memory runs out |
//! | `panic`     | panics (a trap) |
//! | `forbidden` | GETs `http://127.0.0.1:9/forbidden`, which is not on its allow-list, and returns the refusal as `internal` |
//! | `fetch`     | GETs `http://127.0.0.1:1/fetch` (allowed) and answers with the response's status and body, or returns the failure as `internal` |
//! | `huge`      | answers 200 with an 8 MiB body |
//! | `kv`        | stores the body under `last` and answers with the previous value |
//!
//! Any other segment is an `invalid-request`. `send` always succeeds with
//! provider id `misbehave-{message-id}`.
//!
//! With the config `poll = "empty-more"` it also asks to be polled (every
//! 60 s) and every `poll` answers `more` with no events, the cursor counting
//! the polls: the host must not believe such a `more` and poll it again at once.

use core::hint::black_box;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::{
    Capabilities, Channel, ChannelEvent, ChannelInfo, HttpRequest, HttpResponse, Identity,
    InboundMessage, OutboundMessage, PluginError, PollOutcome, SendReceipt, WebhookOutcome, config,
    kv, webhook,
};

const SENDER: &str = "+15550000001";
const MIB: usize = 1 << 20;
const HUGE_BODY: usize = 8 * MIB;
const PAGE: usize = 4096;

struct Misbehave;

impl Channel for Misbehave {
    fn describe() -> ChannelInfo {
        let info = ChannelInfo::new("test", "phone", "Test misbehave");
        if config::get("poll").as_deref() == Some("empty-more") {
            info.with(Capabilities {
                poll_interval_ms: Some(60_000),
                ..Capabilities::default()
            })
        } else {
            info
        }
    }

    fn poll(cursor: Option<String>) -> Result<PollOutcome, PluginError> {
        let polls = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0) + 1;
        Ok(PollOutcome {
            events: Vec::new(),
            cursor: Some(polls.to_string()),
            more: true,
        })
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let segment = request.path().rsplit('/').next().unwrap_or_default();
        match segment {
            "ok" => ok(&request),
            "loop" => spin(),
            "bomb" => bomb(),
            "panic" => panic!("deliberate panic"),
            "forbidden" => forbidden(),
            "fetch" => fetch(),
            "huge" => Ok(WebhookOutcome::respond(HttpResponse::new(
                200,
                "application/octet-stream",
                vec![b'x'; HUGE_BODY],
            ))),
            "kv" => remember(&request),
            other => Err(PluginError::InvalidRequest(format!(
                "unknown misbehaviour `{other}`"
            ))),
        }
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        Ok(SendReceipt::sent(format!(
            "misbehave-{}",
            message.message_id
        )))
    }
}

switchboard_sdk::export_channel!(Misbehave);

fn ok(request: &HttpRequest) -> Result<WebhookOutcome, PluginError> {
    let body = String::from_utf8_lossy(&request.body).into_owned();
    let provider_id = webhook::form_value(&request.query(), "id")
        .map(str::to_owned)
        .unwrap_or_else(|| body.clone());
    let message = InboundMessage::new(provider_id, Identity::new("phone", SENDER), body);
    Ok(WebhookOutcome {
        response: HttpResponse::text(200, "ok"),
        events: vec![ChannelEvent::Message(message)],
    })
}

/// Never returns; `black_box` keeps the optimizer from proving the loop idle.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns: grows until the host's memory cap (or the allocator) stops it.
fn bomb() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIB];
        // Write every page so the memory is really committed.
        for byte in chunk.iter_mut().step_by(PAGE) {
            *byte = 1;
        }
        chunks.push(black_box(chunk));
        black_box(&chunks);
    }
}

fn forbidden() -> Result<WebhookOutcome, PluginError> {
    match http::send(Request::get("http://127.0.0.1:9/forbidden")) {
        Ok(response) => Ok(WebhookOutcome::respond(HttpResponse::text(
            200,
            format!(
                "forbidden request was let through: HTTP {}",
                response.status
            ),
        ))),
        Err(error) => Err(PluginError::Internal(error.to_string())),
    }
}

fn fetch() -> Result<WebhookOutcome, PluginError> {
    match http::send(Request::get("http://127.0.0.1:1/fetch")) {
        Ok(response) => Ok(WebhookOutcome::respond(HttpResponse::new(
            response.status,
            "application/octet-stream",
            response.body,
        ))),
        Err(error) => Err(PluginError::Internal(error.to_string())),
    }
}

fn remember(request: &HttpRequest) -> Result<WebhookOutcome, PluginError> {
    let previous = kv::get("last").unwrap_or_default();
    kv::set("last", &request.body)?;
    Ok(WebhookOutcome::respond(HttpResponse::new(
        200,
        "application/octet-stream",
        previous,
    )))
}
