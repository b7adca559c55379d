//! The front door of a Meta webhook: the `GET` verification handshake and the
//! signed `POST`.
//!
//! Meta verifies a callback URL with
//! `GET …?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` and expects
//! the challenge back as plain text; every notification after that is a
//! `POST` signed with the app secret ([`crate::signature`]). This module
//! decides which of the two a request is and lets only a verified one
//! through. It never logs the query string: it carries the verify token.

use switchboard_sdk::{HttpRequest, HttpResponse, PluginError, webhook};

use crate::signature::{self, AppSecret};

/// A request that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified<'a> {
    /// A subscription handshake: answer with this response, store nothing.
    Handshake(HttpResponse),
    /// A signed notification: its raw JSON body.
    Notification(&'a [u8]),
}

/// Checks `request` against the app secret (POST) or the verify token (GET).
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for a wrong or missing signature or verify
/// token (the host answers 403 and stores nothing);
/// [`PluginError::InvalidRequest`] for any other method.
pub fn verify<'a>(
    request: &'a HttpRequest,
    app_secret: &AppSecret,
    verify_token: &str,
) -> Result<Verified<'a>, PluginError> {
    if request.method.eq_ignore_ascii_case("GET") {
        handshake(&request.query(), verify_token).map(Verified::Handshake)
    } else if request.method.eq_ignore_ascii_case("POST") {
        signature::verify(
            app_secret,
            &request.body,
            request.header(signature::SIGNATURE_HEADER),
        )?;
        Ok(Verified::Notification(&request.body))
    } else {
        Err(PluginError::InvalidRequest(format!(
            "Meta webhooks are GET (verification) or POST (events), not {}",
            request.method
        )))
    }
}

/// Answers Meta's subscription handshake: `hub.mode=subscribe` with the
/// configured `hub.verify_token` gets `200 text/plain` with `hub.challenge`.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for anything else.
pub fn handshake(
    query: &[(String, String)],
    verify_token: &str,
) -> Result<HttpResponse, PluginError> {
    let mode = webhook::form_value(query, "hub.mode");
    let token = webhook::form_value(query, "hub.verify_token");
    let challenge = webhook::form_value(query, "hub.challenge");
    if mode != Some("subscribe") {
        return Err(PluginError::Unauthorized(
            "webhook verification needs hub.mode=subscribe".into(),
        ));
    }
    let token_ok = token.is_some_and(|token| webhook::secrets_match(token, verify_token));
    if !token_ok || verify_token.is_empty() {
        return Err(PluginError::Unauthorized(
            "hub.verify_token does not match the configured verify_token".into(),
        ));
    }
    let challenge = challenge.ok_or_else(|| {
        PluginError::Unauthorized("webhook verification without hub.challenge".into())
    })?;
    Ok(HttpResponse::text(200, challenge))
}

/// What a verified notification is answered with: Meta only needs a 200.
pub fn acknowledgement() -> HttpResponse {
    HttpResponse::text(200, "EVENT_RECEIVED")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> AppSecret {
        AppSecret::Value(value.into())
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn handshake_with_the_token_echoes_the_challenge() {
        let response = handshake(
            &query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", "vt-123"),
                ("hub.challenge", "1158201444"),
            ]),
            "vt-123",
        )
        .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"1158201444");
        assert!(response.headers[0].1.starts_with("text/plain"));
    }

    #[test]
    fn handshake_refuses_wrong_token_mode_or_missing_parts() {
        let cases: [&[(&str, &str)]; 5] = [
            &[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", "wrong"),
                ("hub.challenge", "1"),
            ],
            &[
                ("hub.mode", "unsubscribe"),
                ("hub.verify_token", "vt-123"),
                ("hub.challenge", "1"),
            ],
            &[("hub.mode", "subscribe"), ("hub.challenge", "1")],
            &[("hub.mode", "subscribe"), ("hub.verify_token", "vt-123")],
            &[],
        ];
        for pairs in cases {
            let error = handshake(&query(pairs), "vt-123").unwrap_err();
            assert!(matches!(error, PluginError::Unauthorized(_)), "{pairs:?}");
        }
        // An unset verify token never matches an empty one.
        let empty = query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", ""),
            ("hub.challenge", "1"),
        ]);
        assert!(handshake(&empty, "").is_err());
    }

    #[test]
    fn get_is_the_handshake_and_post_needs_the_signature() {
        let get = request(
            "GET",
            "https://sb.test/hooks/messenger?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=42",
            &[],
            b"",
        );
        assert!(matches!(
            verify(&get, &secret("secret"), "vt"),
            Ok(Verified::Handshake(r)) if r.body == b"42"
        ));

        let body = br#"{"object":"page"}"#;
        let signature = signature::sign("secret", body);
        let post = request(
            "POST",
            "https://sb.test/hooks/messenger",
            &[("x-hub-signature-256", &signature)],
            body,
        );
        assert_eq!(
            verify(&post, &secret("secret"), "vt"),
            Ok(Verified::Notification(&body[..]))
        );
        assert!(matches!(
            verify(&post, &secret("other"), "vt"),
            Err(PluginError::Unauthorized(_))
        ));
        let unsigned = request("POST", "https://sb.test/hooks/messenger", &[], body);
        assert!(matches!(
            verify(&unsigned, &secret("secret"), "vt"),
            Err(PluginError::Unauthorized(_))
        ));
        let put = request("PUT", "https://sb.test/hooks/messenger", &[], body);
        assert!(matches!(
            verify(&put, &secret("secret"), "vt"),
            Err(PluginError::InvalidRequest(_))
        ));
    }
}
