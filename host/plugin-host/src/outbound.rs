//! Outbound HTTP from plugins, both ways a request can leave the sandbox:
//! `switchboard:http/client.send` (what the SDK uses: the whole request in
//! one host call) and `wasi:http/outgoing-handler@0.2` (third-party
//! components and those built on SDKs before `switchboard:http`).
//!
//! Both pass the same checks, in this one place: the origin must be on the
//! plugin's allow-list ([`Origin::allows`], which attachment downloads use
//! too); headers go through `wasi:http`'s own validation with the same
//! forbidden-header predicate (no `host`, no hop-by-hop headers, one
//! `content-length`, a size bound); the request body is capped at
//! [`crate::Limits::max_http_body_bytes`]. Then the request goes to
//! [`HostServices::send_http`], which in the server is [`send_direct`]: the
//! host resolves the name, verifies the certificate against the public roots,
//! bounds the wait ([`crate::Limits::send_timeout`]) and the response body.
//! `switchboard:http` checks the response size again before it copies the body
//! into the sandbox, so a [`HostServices`] that does not cap cannot make it.
//! The call's own deadline bounds everything, and its outcome counts towards
//! the plugin's health like any other.
//!
//! This module never logs a request's path, query, headers or body: paths
//! carry secrets (Telegram's bot token), headers credentials.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error as HttpError, FieldMap, WasiBody, WasiHttpHooks};

use crate::bindings::http_client::switchboard::http::client::{self, HttpError as ClientError};
use crate::manifest::Origin;
use crate::services::{HostServices, HttpFailure, OutboundRequest, OutboundResponse};

mod host;

/// The bytes of headers one request may carry, counted the way `wasi:http`
/// counts them: its default, which the plugins' `wasi:http` context keeps.
const FIELD_SIZE_LIMIT: usize = 128 * 1024;

/// What one call's outbound requests are checked against and sent through;
/// also the `wasi:http` hooks of the call's store.
pub(crate) struct Outbound {
    pub(crate) plugin: Arc<str>,
    pub(crate) allowed: Arc<[Origin]>,
    pub(crate) services: Arc<dyn HostServices>,
    pub(crate) max_body: usize,
    /// When the current call must be over (set as each call is armed): a request
    /// still waiting for its answer then ends as a `timeout` a little before it, so
    /// the plugin can answer `transient` for a provider that hangs instead of being
    /// cut off (which counts towards quarantine).
    pub(crate) deadline: Option<std::time::Instant>,
}

/// How long before the call's deadline a request's wait ends.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

impl Outbound {
    /// The longest this request may wait: the plugin's own timeout, and the time
    /// left before the call's deadline (less [`DEADLINE_GRACE`]).
    fn wait_bound(&self, timeout_ms: Option<u64>) -> Option<Duration> {
        let asked = timeout_ms.map(Duration::from_millis);
        let left = self.deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .saturating_sub(DEADLINE_GRACE)
        });
        match (asked, left) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        }
    }

    /// Whether the plugin may send to `uri`; a refusal is logged with the
    /// origin only.
    fn permits(&self, uri: &hyper::Uri) -> bool {
        if Origin::allows(&self.allowed, uri) {
            return true;
        }
        tracing::warn!(
            plugin = &*self.plugin,
            origin = %origin(uri),
            "outbound HTTP denied: origin not on the plugin's allow-list"
        );
        false
    }
}

/// `scheme://authority` of `uri`, the way allow-lists and errors spell it.
fn origin(uri: &hyper::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map_or("", |a| a.as_str())
    )
}

/// Header names and values in the order a `HeaderMap` keeps them (by name,
/// in the order names first appeared), as [`OutboundRequest`] carries them.
fn header_list(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect()
}

impl Outbound {
    /// `switchboard:http/client.send`: the checks above, then the host's
    /// HTTP service, in one host call.
    pub(crate) async fn send(
        &mut self,
        request: client::Request,
    ) -> Result<client::Response, ClientError> {
        let uri: hyper::Uri = request
            .url
            .parse()
            .map_err(|_| ClientError::InvalidRequest("not a valid absolute URL".into()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(ClientError::InvalidRequest(
                "not an absolute URL (scheme://host/path)".into(),
            ));
        };
        let origin = origin(&uri);
        if scheme != "http" && scheme != "https" {
            return Err(ClientError::InvalidRequest(format!(
                "{origin}: only http and https are supported"
            )));
        }
        if authority.as_str().contains('@') {
            return Err(ClientError::InvalidRequest(format!(
                "{}://…@{}: a URL may not carry a user name or password",
                scheme,
                authority.host()
            )));
        }
        if !self.permits(&uri) {
            return Err(ClientError::NotAllowed(format!(
                "{origin} is not on the plugin's allow-list of outbound hosts"
            )));
        }
        let invalid = |what: String| ClientError::InvalidRequest(format!("{what} ({origin})"));
        let method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("invalid method `{}`", request.method)))?;
        // The wasi:http path's own header checks, with the same predicate of
        // forbidden names.
        let mut fields = FieldMap::new_mutable(FIELD_SIZE_LIMIT);
        for (name, value) in request.headers {
            fields
                .append(self, name.clone(), value.into_bytes())
                .map_err(|e| invalid(format!("header `{name}`: {e}")))?;
        }
        if let Some(length) = fields.get(hyper::header::CONTENT_LENGTH) {
            let declared = length
                .to_str()
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            if declared != Some(request.body.len() as u64) {
                return Err(invalid(format!(
                    "content-length {length:?} is not the body's {} bytes",
                    request.body.len()
                )));
            }
        }
        let max_body = self.max_body;
        if request.body.len() > max_body {
            return Err(ClientError::RequestTooLarge(max_body as u64));
        }
        let mut headers = vec![("host".to_owned(), authority.as_str().to_owned())];
        headers.extend(header_list(&fields));
        let send = self.services.send_http(OutboundRequest {
            plugin: self.plugin.to_string(),
            method: method.to_string(),
            uri: uri.to_string(),
            headers,
            body: request.body.into(),
        });
        let answer = match self.wait_bound(request.timeout_ms) {
            Some(wait) => tokio::time::timeout(wait, send)
                .await
                .unwrap_or(Err(HttpFailure::Timeout)),
            None => send.await,
        };
        let response = answer.map_err(|e| match e {
            HttpFailure::ConnectionRefused => {
                ClientError::Connection(format!("{origin} refused the connection"))
            }
            HttpFailure::Timeout => {
                ClientError::Timeout(format!("no answer from {origin} in time"))
            }
            HttpFailure::DnsError(m) => {
                ClientError::Connection(format!("{origin} does not resolve: {m}"))
            }
            HttpFailure::ResponseTooLarge => ClientError::ResponseTooLarge(max_body as u64),
            HttpFailure::Other(m) => ClientError::Protocol(format!("{origin}: {m}")),
        })?;
        if response.body.len() > max_body {
            return Err(ClientError::ResponseTooLarge(max_body as u64));
        }
        Ok(client::Response {
            status: response.status,
            headers: response_headers(self, &response.headers)
                .ok_or_else(|| ClientError::Protocol(format!("{origin}: invalid header")))?,
            body: response.body.into(),
        })
    }
}

/// The response's headers as a guest sees them through `wasi:http`: names
/// lower case, forbidden ones (hop-by-hop) left out; `None` when one is not
/// a valid header.
fn response_headers(
    hooks: &mut Outbound,
    headers: &[(String, String)],
) -> Option<Vec<(String, String)>> {
    let mut kept = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
        hyper::header::HeaderValue::from_str(value).ok()?;
        if !hooks.is_forbidden_header(&name) {
            kept.push((name.as_str().to_owned(), value.clone()));
        }
    }
    Some(kept)
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    hyper::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// `wasi:http`: the allow-list check, then the host's HTTP service.
impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.permits(request.uri()) {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let plugin = self.plugin.clone();
        let services = self.services.clone();
        let max_body = self.max_body;
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|_| HttpError::HttpRequestBodySize(None))?
                .to_bytes();
            let outbound = OutboundRequest {
                plugin: plugin.to_string(),
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: header_list(&parts.headers),
                body,
            };
            let response = services.send_http(outbound).await.map_err(|e| match e {
                HttpFailure::ConnectionRefused => HttpError::ConnectionRefused,
                HttpFailure::Timeout => HttpError::ConnectionTimeout,
                HttpFailure::DnsError(m) => HttpError::DnsError {
                    rcode: Some(m),
                    info_code: None,
                },
                HttpFailure::ResponseTooLarge => HttpError::HttpResponseBodySize(None),
                HttpFailure::Other(m) => HttpError::InternalError(Some(m)),
            })?;
            let mut builder = hyper::Response::builder().status(response.status);
            for (k, v) in &response.headers {
                builder = builder.header(k, v);
            }
            let body: WasiBody = Full::new(response.body)
                .map_err(|never: std::convert::Infallible| -> HttpError { match never {} })
                .boxed_unsync();
            let response = builder
                .body(body)
                .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            let done: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// Sends a request over the network for real, with the host's body cap.
pub async fn send_direct(
    request: OutboundRequest,
    max_body: usize,
    timeout: Duration,
) -> Result<OutboundResponse, HttpFailure> {
    let uri: hyper::Uri = request
        .uri
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| HttpFailure::Other(e.to_string()))?;
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(uri.clone());
    for (k, v) in &request.headers {
        builder = builder.header(k, v);
    }
    // HTTP/1.1 requires `Host`, and servers and CDNs refuse requests without
    // it; the client connection does not add one from the URI.
    if !request
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        && let Some(authority) = uri.authority()
    {
        builder = builder.header(hyper::header::HOST, authority.as_str());
    }
    let req = builder
        .body(
            Full::new(request.body)
                .map_err(|never: std::convert::Infallible| -> HttpError { match never {} }),
        )
        .map_err(|e| HttpFailure::Other(e.to_string()))?;
    let options = wasmtime_wasi_http::RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let work = async {
        let (response, io) = wasmtime_wasi_http::default_send_request(req, Some(options))
            .await
            .map_err(|e| match e {
                HttpError::ConnectionRefused => HttpFailure::ConnectionRefused,
                HttpError::ConnectionTimeout | HttpError::HttpResponseTimeout => {
                    HttpFailure::Timeout
                }
                HttpError::DnsError { rcode, .. } => {
                    HttpFailure::DnsError(rcode.unwrap_or_default())
                }
                other => HttpFailure::Other(format!("{other:?}")),
            })?;
        let driver = tokio::spawn(io);
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|_| HttpFailure::ResponseTooLarge)?
            .to_bytes();
        driver.abort();
        Ok::<_, HttpFailure>(OutboundResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpFailure::Timeout)?
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::Limits;
    use crate::services::{BoxFuture, KvFailure};
    use crate::state::PluginState;

    /// Outbound HTTP that records what reaches it and answers with
    /// `answer`; everything else is out of these tests.
    struct Recording {
        seen: Mutex<Vec<OutboundRequest>>,
        answer: Answer,
    }

    impl HostServices for Recording {
        fn kv_get(&self, _: String, _: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
            Box::pin(async { Err("no kv in this test".to_owned()) })
        }
        fn kv_set(
            &self,
            _: String,
            _: String,
            _: Vec<u8>,
            _: u64,
        ) -> BoxFuture<'_, Result<(), KvFailure>> {
            Box::pin(async { Err(KvFailure::Unavailable("no kv in this test".to_owned())) })
        }
        fn kv_delete(&self, _: String, _: String) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Err("no kv in this test".to_owned()) })
        }
        fn now_ms(&self) -> u64 {
            0
        }
        fn send_http(
            &self,
            request: OutboundRequest,
        ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
            self.seen.lock().unwrap().push(request);
            match (self.answer)() {
                Some(answer) => Box::pin(async move { answer }),
                // A provider that never answers.
                None => Box::pin(std::future::pending::<Result<OutboundResponse, HttpFailure>>()),
            }
        }
        fn plugin_quarantined(&self, _: String, _: String) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    /// What the fake service answers: `None` never answers.
    type Answer = fn() -> Option<Result<OutboundResponse, HttpFailure>>;

    fn ok() -> Option<Result<OutboundResponse, HttpFailure>> {
        Some(Ok(OutboundResponse {
            status: 201,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("connection".into(), "keep-alive".into()),
                ("x-request-id".into(), "r1".into()),
            ],
            body: Bytes::from_static(b"{\"sid\":\"SM1\"}"),
        }))
    }

    /// A plugin allowed `https://api.test` only, with 16-byte bodies.
    fn plugin(answer: Answer) -> (PluginState, Arc<Recording>) {
        let services = Arc::new(Recording {
            seen: Mutex::default(),
            answer,
        });
        let state = PluginState::new(
            Arc::from("p"),
            Arc::new(HashMap::new()),
            Arc::from([]),
            Arc::from([Origin::parse("https://api.test").unwrap()]),
            false,
            services.clone(),
            Limits {
                max_http_body_bytes: 16,
                ..Limits::default()
            },
        );
        (state, services)
    }

    fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> client::Request {
        client::Request {
            method: "POST".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            timeout_ms: None,
        }
    }

    async fn send(
        state: &mut PluginState,
        request: client::Request,
    ) -> Result<client::Response, ClientError> {
        client::Host::send(state, request).await
    }

    #[tokio::test]
    async fn an_origin_off_the_allow_list_is_refused_before_anything_leaves() {
        let (mut state, services) = plugin(ok);
        for (url, origin) in [
            (
                "https://elsewhere.test/x?token=secret",
                "https://elsewhere.test",
            ),
            ("http://api.test/x", "http://api.test"),
            ("https://api.test:8443/x", "https://api.test:8443"),
            ("https://sub.api.test/x", "https://sub.api.test"),
        ] {
            let error = send(&mut state, post(url, &[], b"")).await.unwrap_err();
            let ClientError::NotAllowed(message) = error else {
                panic!("{url}: expected not-allowed, got {error:?}");
            };
            assert!(message.contains(origin), "{message}");
            assert!(message.contains("allow-list"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        assert!(
            services.seen.lock().unwrap().is_empty(),
            "nothing may leave"
        );
    }

    #[tokio::test]
    async fn an_allowed_request_goes_out_as_wasi_http_would_send_it() {
        let (mut state, services) = plugin(ok);
        let response = send(
            &mut state,
            post(
                "https://API.test/2010-04-01/Messages.json?x=1",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("authorization", "Basic QUM6cw=="),
                    ("content-length", "5"),
                ],
                b"To=%2",
            ),
        )
        .await
        .unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, b"{\"sid\":\"SM1\"}");
        // Lower-case names; hop-by-hop headers never reach the plugin.
        assert_eq!(
            response.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-request-id".to_owned(), "r1".to_owned()),
            ]
        );
        let seen = services.seen.lock().unwrap();
        let [request] = seen.as_slice() else {
            panic!("one request, got {seen:?}");
        };
        assert_eq!(request.plugin, "p");
        assert_eq!(request.method, "POST");
        assert_eq!(request.uri, "https://API.test/2010-04-01/Messages.json?x=1");
        assert_eq!(
            request.headers,
            vec![
                ("host".to_owned(), "API.test".to_owned()),
                (
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned()
                ),
                ("authorization".to_owned(), "Basic QUM6cw==".to_owned()),
                ("content-length".to_owned(), "5".to_owned()),
            ]
        );
        assert_eq!(request.body, Bytes::from_static(b"To=%2"));
    }

    #[tokio::test]
    async fn requests_wasi_http_would_refuse_are_refused() {
        let (mut state, services) = plugin(ok);
        let url = "https://api.test/x";
        let cases: [(client::Request, &str); 9] = [
            (post(url, &[("Host", "elsewhere.test")], b""), "Host"),
            (
                post(url, &[("transfer-encoding", "chunked")], b""),
                "transfer-encoding",
            ),
            (post(url, &[("connection", "close")], b""), "connection"),
            (post(url, &[("bad name", "x")], b""), "bad name"),
            (post(url, &[("x-a", "line\nbreak")], b""), "x-a"),
            (
                post(url, &[("content-length", "4")], b"abc"),
                "content-length",
            ),
            (
                post(url, &[("content-length", "+3")], b"abc"),
                "content-length",
            ),
            (
                client::Request {
                    method: "PO ST".into(),
                    ..post(url, &[], b"")
                },
                "method",
            ),
            (post("ftp://api.test/x", &[], b""), "http and https"),
        ];
        for (request, what) in cases {
            let error = send(&mut state, request).await.unwrap_err();
            let ClientError::InvalidRequest(message) = &error else {
                panic!("{what}: expected invalid-request, got {error:?}");
            };
            assert!(message.contains(what), "{what}: {message}");
        }
        for url in ["/relative", "https://user:hunter2@api.test/x", "not a url"] {
            let error = send(&mut state, post(url, &[], b"")).await.unwrap_err();
            let ClientError::InvalidRequest(message) = &error else {
                panic!("{url}: expected invalid-request, got {error:?}");
            };
            assert!(!message.contains("hunter2"), "{message}");
        }
        assert!(
            services.seen.lock().unwrap().is_empty(),
            "nothing may leave"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_host_limit_are_refused_both_ways() {
        let (mut state, services) = plugin(ok);
        let error = send(&mut state, post("https://api.test/x", &[], &[b'x'; 17]))
            .await
            .unwrap_err();
        assert_eq!(error, ClientError::RequestTooLarge(16));
        assert!(
            services.seen.lock().unwrap().is_empty(),
            "nothing may leave"
        );

        // A service that does not cap cannot hand the plugin more than the
        // host accepts.
        fn big() -> Option<Result<OutboundResponse, HttpFailure>> {
            Some(Ok(OutboundResponse {
                status: 200,
                headers: Vec::new(),
                body: Bytes::from(vec![b'x'; 17]),
            }))
        }
        let (mut state, _) = plugin(big);
        let error = send(&mut state, post("https://api.test/x", &[], b""))
            .await
            .unwrap_err();
        assert_eq!(error, ClientError::ResponseTooLarge(16));

        // The server's service caps while reading and says so.
        fn capped() -> Option<Result<OutboundResponse, HttpFailure>> {
            Some(Err(HttpFailure::ResponseTooLarge))
        }
        let (mut state, _) = plugin(capped);
        let error = send(&mut state, post("https://api.test/x", &[], b""))
            .await
            .unwrap_err();
        assert_eq!(error, ClientError::ResponseTooLarge(16));
    }

    #[tokio::test]
    async fn failures_name_the_origin_and_never_the_path() {
        fn refused() -> Option<Result<OutboundResponse, HttpFailure>> {
            Some(Err(HttpFailure::ConnectionRefused))
        }
        fn unresolved() -> Option<Result<OutboundResponse, HttpFailure>> {
            Some(Err(HttpFailure::DnsError("NXDOMAIN".into())))
        }
        fn late() -> Option<Result<OutboundResponse, HttpFailure>> {
            Some(Err(HttpFailure::Timeout))
        }
        let url = "https://api.test/bot123:secret/sendMessage";
        let answers: [Answer; 3] = [refused, unresolved, late];
        for answer in answers {
            let (mut state, _) = plugin(answer);
            let error = send(&mut state, post(url, &[], b"")).await.unwrap_err();
            let (ClientError::Connection(message) | ClientError::Timeout(message)) = &error else {
                panic!("expected connection or timeout, got {error:?}");
            };
            assert!(message.contains("https://api.test"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[tokio::test]
    async fn the_plugins_timeout_bounds_the_wait() {
        fn never() -> Option<Result<OutboundResponse, HttpFailure>> {
            None
        }
        let (mut state, services) = plugin(never);
        let request = client::Request {
            timeout_ms: Some(20),
            ..post("https://api.test/x", &[], b"")
        };
        let error = send(&mut state, request).await.unwrap_err();
        assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
        assert_eq!(services.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_provider_that_hangs_is_a_timeout_by_the_calls_deadline() {
        // No timeout of its own: only the call's deadline ends the wait (without it
        // this test never finishes).
        fn never() -> Option<Result<OutboundResponse, HttpFailure>> {
            None
        }
        let (mut state, _services) = plugin(never);
        let deadline = std::time::Instant::now() + Duration::from_millis(120);
        state.hooks.deadline = Some(deadline);
        let error = send(&mut state, post("https://api.test/x", &[], b""))
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Timeout(_)), "{error:?}");
    }
}
