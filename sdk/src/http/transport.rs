//! [`super::send`] on `switchboard:http/client@0.1.0`: the whole request
//! goes to the host in one call and the whole response comes back.
//!
//! `wasi:http/outgoing-handler` (what this used before) needs a dozen
//! resources and the `wasi:io` streams for one request, and every fresh
//! instance pays for linking all of them, whether the call sends or not.
//! Bodies here are whole anyway (the host caps them), so nothing streams.

use crate::bindings::http_client::switchboard::http::client::{self, HttpError as HostError};

use super::message::{HttpError, Request, Response};

pub(super) fn send(request: Request) -> Result<Response, HttpError> {
    // Errors name the origin only: a path may carry a secret (Telegram puts
    // the bot token there).
    let origin = origin(&request.url);
    let invalid = |what: &str| HttpError::InvalidRequest(format!("{what} (request to {origin})"));
    let parts = crate::url::split(&request.url).ok_or_else(|| invalid("not an absolute URL"))?;
    let path_and_query = if parts.path_and_query.starts_with('/') {
        parts.path_and_query.to_owned()
    } else {
        format!("/{}", parts.path_and_query)
    };
    let url = format!(
        "{}://{}{path_and_query}",
        parts.scheme.to_ascii_lowercase(),
        parts.authority
    );

    let mut headers = request.headers;
    let has_length = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if !has_length && (!request.body.is_empty() || sends_body(&request.method)) {
        headers.push(("content-length".into(), request.body.len().to_string()));
    }

    let response = client::send(&client::Request {
        method: request.method,
        url,
        headers,
        body: request.body,
        timeout_ms: request.timeout_ms,
    })
    .map_err(|error| map_error(error, &origin))?;
    Ok(Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    })
}

/// `scheme://authority` of an absolute URL, the way allow-lists spell it.
fn origin(url: &str) -> String {
    crate::url::split(url).map_or_else(
        || "a relative URL".to_owned(),
        |parts| format!("{}://{}", parts.scheme, parts.authority),
    )
}

fn sends_body(method: &str) -> bool {
    ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

fn map_error(error: HostError, origin: &str) -> HttpError {
    match error {
        HostError::NotAllowed(_) => HttpError::Denied(format!(
            "{origin} is not on the plugin's allow-list of outbound hosts"
        )),
        HostError::InvalidRequest(detail) => HttpError::InvalidRequest(detail),
        HostError::RequestTooLarge(limit) => HttpError::Protocol(format!(
            "the request body to {origin} is over the host's {limit} byte limit"
        )),
        HostError::ResponseTooLarge(limit) => HttpError::Protocol(format!(
            "the response body from {origin} is over the host's {limit} byte limit"
        )),
        HostError::Timeout(detail) => HttpError::Timeout(detail),
        HostError::Connection(detail) => HttpError::Transport(detail),
        HostError::Protocol(detail) => HttpError::Protocol(detail),
    }
}
