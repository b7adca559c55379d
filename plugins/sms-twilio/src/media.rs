//! Inbound media: how the host downloads what Twilio's `MediaUrl{n}` points at.
//!
//! Twilio serves media under its API (`/2010-04-01/Accounts/{sid}/Messages/{sid}/Media/{sid}`)
//! and, when the account enforces HTTP authentication for media, answers 401 to
//! anyone without the account's credentials. The credentials go only to Twilio:
//! a URL that is not under the configured `api_base` or Twilio's own API gets a
//! plain `GET`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use switchboard_sdk::DownloadRequest;

/// Twilio's API, where media lives whatever `api_base` is set to.
pub const TWILIO_API: &str = "https://api.twilio.com";

/// The request that downloads the media at `url`: with HTTP Basic auth
/// (`account_sid:auth_token`) when `url` is under `api_base` or
/// [`TWILIO_API`], without it anywhere else.
pub fn download_request(
    url: &str,
    api_base: &str,
    account_sid: &str,
    auth_token: &str,
) -> DownloadRequest {
    let headers = if is_under(url, api_base) || is_under(url, TWILIO_API) {
        let credentials = STANDARD.encode(format!("{account_sid}:{auth_token}"));
        vec![("authorization".to_owned(), format!("Basic {credentials}"))]
    } else {
        Vec::new()
    };
    DownloadRequest {
        url: url.to_owned(),
        headers,
    }
}

/// Whether `url` is `base` or below it. The match ends at a path, query or
/// fragment boundary, so `https://api.twilio.com.example.net` is not under
/// `https://api.twilio.com`. Scheme and host compare case-insensitively.
pub fn is_under(url: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return false;
    }
    match (url.get(..base.len()), url.get(base.len()..)) {
        (Some(head), Some(rest)) => {
            head.eq_ignore_ascii_case(base)
                && (rest.is_empty() || rest.starts_with(['/', '?', '#']))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC123";
    const TOKEN: &str = "secret";
    /// base64("AC123:secret")
    const BASIC: &str = "Basic QUMxMjM6c2VjcmV0";
    const MEDIA: &str = "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";

    fn authorization(request: &DownloadRequest) -> Option<&str> {
        request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn twilio_media_gets_basic_auth_whatever_the_api_base() {
        for api_base in [TWILIO_API, "https://api.twilio.com/", "http://127.0.0.1:9"] {
            let request = download_request(MEDIA, api_base, SID, TOKEN);
            assert_eq!(request.url, MEDIA);
            assert_eq!(authorization(&request), Some(BASIC), "{api_base}");
            assert_eq!(request.headers.len(), 1);
        }
    }

    #[test]
    fn media_under_the_configured_api_base_gets_basic_auth() {
        let url = "http://127.0.0.1:9/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";
        for api_base in ["http://127.0.0.1:9", "http://127.0.0.1:9/"] {
            let request = download_request(url, api_base, SID, TOKEN);
            assert_eq!(authorization(&request), Some(BASIC), "{api_base}");
        }
    }

    #[test]
    fn credentials_never_go_anywhere_else() {
        for url in [
            "https://cdn.example.com/ME1.jpg",
            "https://api.twilio.com.example.net/2010-04-01/Media/ME1",
            "https://api.twilio.company/x",
            "http://api.twilio.com/2010-04-01/Media/ME1",
            "http://127.0.0.1:90/2010-04-01/Media/ME1",
            "telegram-file:abc",
        ] {
            let request = download_request(url, "http://127.0.0.1:9", SID, TOKEN);
            assert_eq!(request.url, url);
            assert!(request.headers.is_empty(), "{url}: {:?}", request.headers);
        }
    }

    #[test]
    fn under_means_at_a_boundary() {
        assert!(is_under("https://api.twilio.com", TWILIO_API));
        assert!(is_under("https://API.Twilio.com/x", TWILIO_API));
        assert!(is_under("https://api.twilio.com?x=1", TWILIO_API));
        assert!(is_under("https://h/base/x", "https://h/base"));
        assert!(!is_under("https://h/basement", "https://h/base"));
        assert!(!is_under("https://api.twilio.co", TWILIO_API));
        assert!(!is_under("https://api.twilio.com:8443/x", TWILIO_API));
        assert!(!is_under("https://any.host/x", ""));
        assert!(!is_under("https://any.host/x", "/"));
        // A multi-byte character where the base ends is no boundary either.
        assert!(!is_under("https://api.twilio.c✓m/x", TWILIO_API));
    }
}
