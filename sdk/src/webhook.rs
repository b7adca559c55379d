//! Helpers for the provider side of a webhook: reading what the provider sent
//! ([`HttpRequest`] methods and the free functions below) and answering it
//! ([`HttpResponse`] constructors). Pure functions: they work the same in unit
//! tests on the build machine.

use crate::{HttpRequest, HttpResponse, PluginError};

/// The value of header `name`, compared case-insensitively; the first one when
/// the header repeats.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Decodes an `application/x-www-form-urlencoded` body into name/value pairs,
/// in the order they were sent (`+` is a space, `%XX` escapes are decoded,
/// invalid UTF-8 is replaced).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of field `name` in decoded form or query pairs.
pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The path of a URL, without query or fragment: `/hooks/sms-twilio/status` for
/// `https://sb.example.com/hooks/sms-twilio/status?x=1`. Accepts relative URLs.
pub fn url_path(url: &str) -> &str {
    let path_and_query = crate::url::path_and_query(url);
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if path.is_empty() { "/" } else { path }
}

/// The decoded query parameters of a URL, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    crate::url::path_and_query(url)
        .split_once('?')
        .map(|(_, query)| parse_form(query.as_bytes()))
        .unwrap_or_default()
}

/// Compares a secret the provider sent with the expected one in time that does
/// not depend on where they differ, so the secret cannot be guessed byte by byte.
pub fn secrets_match(provided: &str, expected: &str) -> bool {
    let (provided, expected) = (provided.as_bytes(), expected.as_bytes());
    let difference = provided
        .iter()
        .zip(expected)
        .fold(provided.len() ^ expected.len(), |acc, (a, b)| {
            acc | usize::from(a ^ b)
        });
    core::hint::black_box(difference) == 0
}

impl HttpRequest {
    /// The value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body decoded as a form (see [`parse_form`]).
    pub fn form(&self) -> Vec<(String, String)> {
        parse_form(&self.body)
    }

    /// The path of the request URL (see [`url_path`]).
    pub fn path(&self) -> &str {
        url_path(&self.url)
    }

    /// The decoded query parameters of the request URL.
    pub fn query(&self) -> Vec<(String, String)> {
        query_pairs(&self.url)
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`PluginError::InvalidRequest`] when the body is not UTF-8.
    pub fn body_text(&self) -> Result<&str, PluginError> {
        core::str::from_utf8(&self.body)
            .map_err(|_| PluginError::InvalidRequest("request body is not UTF-8".into()))
    }
}

impl HttpResponse {
    /// A response with a `content-type` header and a body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A response without headers or body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A `text/xml` response (TwiML and other XML acknowledgements).
    pub fn xml(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/xml", body.into())
    }

    /// An `application/json` response; `body` is JSON text.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn headers_are_case_insensitive() {
        let req = request("https://x.test/", &[("X-Twilio-Signature", "abc")], "");
        assert_eq!(req.header("x-twilio-signature"), Some("abc"));
        assert_eq!(req.header("X-TWILIO-SIGNATURE"), Some("abc"));
        assert_eq!(req.header("missing"), None);
    }

    #[test]
    fn form_bodies_keep_order_and_decode() {
        let req = request(
            "https://x.test/",
            &[],
            "To=%2B1555&Body=Hello+world&Body=again",
        );
        assert_eq!(
            req.form(),
            vec![
                ("To".to_owned(), "+1555".to_owned()),
                ("Body".to_owned(), "Hello world".to_owned()),
                ("Body".to_owned(), "again".to_owned()),
            ]
        );
        assert_eq!(form_value(&req.form(), "Body"), Some("Hello world"));
    }

    #[test]
    fn paths_and_queries() {
        let req = request("https://sb.test/hooks/p/status?id=7&x=a%20b#f", &[], "");
        assert_eq!(req.path(), "/hooks/p/status");
        assert_eq!(
            req.query(),
            vec![("id".into(), "7".into()), ("x".into(), "a b".into())]
        );
        assert_eq!(url_path("https://sb.test"), "/");
        assert_eq!(url_path("/hooks/p/ok?x"), "/hooks/p/ok");
        assert!(query_pairs("https://sb.test/hooks").is_empty());
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cret", "s3creT"));
        assert!(!secrets_match("s3cret", "s3cret-longer"));
        assert!(!secrets_match("", "s3cret"));
        assert!(secrets_match("", ""));
    }

    #[test]
    fn response_constructors() {
        let xml = HttpResponse::xml(200, "<Response/>");
        assert_eq!(xml.status, 200);
        assert_eq!(
            xml.headers,
            vec![("content-type".to_owned(), "text/xml".to_owned())]
        );
        assert_eq!(xml.body, b"<Response/>");
        assert_eq!(
            HttpResponse::json(201, "{}").headers[0].1,
            "application/json"
        );
        assert!(HttpResponse::empty(204).headers.is_empty());
    }
}
