//! [`super::send`] on `wasi:http/outgoing-handler@0.2`, blocking on pollables.
//!
//! Resource order matters to the host: a stream is dropped before its body, a
//! body before its request or response. The request is handed to the host
//! before its body is written, so a large body streams instead of filling the
//! host's buffer with nobody reading it.

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

use super::message::{HttpError, Request, Response};

/// `blocking-write-and-flush` takes at most this many bytes per call.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;
const NANOS_PER_MILLI: u64 = 1_000_000;

pub(super) fn send(request: Request) -> Result<Response, HttpError> {
    let outgoing = build(&request)?;
    let body = outgoing
        .body()
        .map_err(|()| HttpError::InvalidRequest("request body already taken".into()))?;
    // Errors name the origin only: a path may carry a secret (Telegram puts
    // the bot token there).
    let origin = origin(&request.url);
    let future = outgoing_handler::handle(outgoing, options(request.timeout_ms))
        .map_err(|code| map_error(code, &origin))?;

    // When the host refuses the request or the peer answers early, writing the
    // body fails with a bare "closed"; the response future says why, so it
    // decides the outcome and a write error only stands in for a missing one.
    let written = write_body(body, &request.body);

    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(map_error(code, &origin)),
        Some(Err(())) | None => {
            let error = written.err().unwrap_or(ErrorCode::InternalError(Some(
                "response future polled twice".into(),
            )));
            return Err(map_error(error, &origin));
        }
    };

    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = incoming
        .consume()
        .map_err(|()| HttpError::Protocol("response body already taken".into()))?;
    let body = read_body(body).map_err(|code| map_error(code, &origin))?;
    drop(incoming);

    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `scheme://authority` of an absolute URL, the way allow-lists spell it.
fn origin(url: &str) -> String {
    crate::url::split(url).map_or_else(
        || "a relative URL".to_owned(),
        |parts| format!("{}://{}", parts.scheme, parts.authority),
    )
}

fn build(request: &Request) -> Result<OutgoingRequest, HttpError> {
    let origin = origin(&request.url);
    let invalid = |what: &str| HttpError::InvalidRequest(format!("{what} (request to {origin})"));
    let parts = crate::url::split(&request.url).ok_or_else(|| invalid("not an absolute URL"))?;
    let scheme = match parts.scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let path_and_query = if parts.path_and_query.starts_with('/') {
        parts.path_and_query.to_owned()
    } else {
        format!("/{}", parts.path_and_query)
    };

    let mut fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    let has_length = fields
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
    if !has_length && (!request.body.is_empty() || sends_body(&request.method)) {
        fields.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers = Fields::from_list(&fields).map_err(|error| {
        HttpError::InvalidRequest(format!("headers refused by the host: {error:?}"))
    })?;

    let outgoing = OutgoingRequest::new(headers);
    outgoing
        .set_method(&method(&request.method))
        .map_err(|()| invalid(&format!("invalid method `{}`", request.method)))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("invalid scheme"))?;
    outgoing
        .set_authority(Some(parts.authority))
        .map_err(|()| invalid("invalid host"))?;
    outgoing
        .set_path_with_query(Some(&path_and_query))
        .map_err(|()| invalid("invalid path"))?;
    Ok(outgoing)
}

fn sends_body(method: &str) -> bool {
    ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

fn method(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(method.to_owned()),
    }
}

fn options(timeout_ms: Option<u64>) -> Option<RequestOptions> {
    let timeout = timeout_ms?.saturating_mul(NANOS_PER_MILLI);
    let options = RequestOptions::new();
    // A host that cannot honour a timeout still bounds the call itself.
    let _ = options.set_connect_timeout(Some(timeout));
    let _ = options.set_first_byte_timeout(Some(timeout));
    Some(options)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        let stream = body
            .write()
            .map_err(|()| ErrorCode::InternalError(Some("request body stream taken".into())))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
    }
    OutgoingBody::finish(body, None)
}

fn read_body(body: IncomingBody) -> Result<Vec<u8>, ErrorCode> {
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| ErrorCode::InternalError(Some("response body stream taken".into())))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => return Err(stream_error(error)),
            }
        }
    }
    // A body cut short by the peer shows as an error on the trailers.
    let trailers = IncomingBody::finish(body);
    trailers.subscribe().block();
    match trailers.get() {
        Some(Ok(Err(code))) => Err(code),
        _ => Ok(bytes),
    }
}

fn stream_error(error: StreamError) -> ErrorCode {
    match error {
        StreamError::LastOperationFailed(error) => wasi::http::types::http_error_code(&error)
            .unwrap_or_else(|| ErrorCode::InternalError(Some(error.to_debug_string()))),
        StreamError::Closed => ErrorCode::HttpProtocolError,
    }
}

fn map_error(code: ErrorCode, origin: &str) -> HttpError {
    use ErrorCode as E;
    match code {
        E::HttpRequestDenied => HttpError::Denied(format!(
            "{origin} is not on the plugin's allow-list of outbound hosts"
        )),
        E::HttpRequestMethodInvalid | E::HttpRequestUriInvalid | E::HttpRequestUriTooLong => {
            HttpError::InvalidRequest(format!("{code:?} from {origin}"))
        }
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => HttpError::Timeout(format!("{code:?} from {origin}")),
        E::DnsError(_)
        | E::DestinationNotFound
        | E::DestinationUnavailable
        | E::DestinationIpProhibited
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTerminated
        | E::ConnectionLimitReached
        | E::TlsProtocolError
        | E::TlsCertificateError
        | E::TlsAlertReceived(_) => HttpError::Transport(format!("{code:?} from {origin}")),
        other => HttpError::Protocol(format!("{other:?} from {origin}")),
    }
}
