//! Inbound files: the Bot API's `getFile`, which turns the file id a message
//! carries into a download link.
//!
//! Telegram's download links contain the bot token, so events carry
//! `telegram-file:{file_id}` instead ([`file_url`]), and the link is made only
//! when the host downloads the file (`fetch-attachment`): `GET
//! {api_base}/bot{token}/getFile?file_id=…` answers `result.file_path`, and
//! the file is at `{api_base}/file/bot{token}/{file_path}`. The link is handed
//! to the host for that one download and never put on an event. Bots can
//! download files of up to 20 MB.

use serde::Deserialize;
use switchboard_sdk::PluginError;
use switchboard_sdk::http::Response;

use crate::api;

/// Scheme of the attachment URLs this connector reports.
pub const SCHEME: &str = "telegram-file:";

/// The attachment URL for a Telegram file id.
pub fn file_url(file_id: &str) -> String {
    format!("{SCHEME}{file_id}")
}

/// The file id in an attachment URL this connector reported.
///
/// # Errors
///
/// [`PluginError::Permanent`] for any other URL: this connector never
/// reported it, and asking again will not help.
pub fn file_id(url: &str) -> Result<&str, PluginError> {
    url.strip_prefix(SCHEME)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            PluginError::Permanent(format!(
                "`{url}` is not a Telegram file reference ({SCHEME}…)"
            ))
        })
}

/// `GET` target of `getFile` for `file_id`. Contains the bot token: never log it.
pub fn get_file_url(api_base: &str, bot_token: &str, file_id: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("file_id", file_id)
        .finish();
    format!(
        "{}/bot{bot_token}/getFile?{query}",
        api_base.trim_end_matches('/')
    )
}

#[derive(Deserialize)]
struct File {
    file_path: Option<String>,
}

/// The download link in the Bot API's answer to `getFile`. Contains the bot
/// token: never log it.
///
/// # Errors
///
/// As [`api::result`]; [`PluginError::Permanent`] when Telegram gives no
/// `file_path`.
pub fn download_url(
    api_base: &str,
    bot_token: &str,
    response: &Response,
) -> Result<String, PluginError> {
    let file: File = api::result(response)?;
    let path = file.file_path.filter(|p| !p.is_empty()).ok_or_else(|| {
        PluginError::Permanent("Telegram gave no file_path: the file cannot be downloaded".into())
    })?;
    Ok(format!(
        "{}/file/bot{bot_token}/{path}",
        api_base.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123:ABC";

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn file_urls_round_trip_and_nothing_else_is_a_file() {
        let url = file_url("AgACAgQAAxkBAAIB");
        assert_eq!(url, "telegram-file:AgACAgQAAxkBAAIB");
        assert_eq!(file_id(&url).unwrap(), "AgACAgQAAxkBAAIB");
        for other in ["https://cdn.test/a.png", "telegram-file:", "file:abc"] {
            assert!(
                matches!(file_id(other), Err(PluginError::Permanent(m)) if m.contains(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn get_file_url_encodes_the_file_id() {
        assert_eq!(
            get_file_url("https://api.telegram.org/", TOKEN, "AgAC-_x"),
            "https://api.telegram.org/bot123:ABC/getFile?file_id=AgAC-_x"
        );
        assert_eq!(
            get_file_url("http://127.0.0.1:9", TOKEN, "a b&c=d"),
            "http://127.0.0.1:9/bot123:ABC/getFile?file_id=a+b%26c%3Dd"
        );
    }

    #[test]
    fn file_path_becomes_the_download_link() {
        let ok = response(
            200,
            r#"{"ok":true,"result":{"file_id":"big","file_unique_id":"b","file_size":51234,"file_path":"photos/file_7.jpg"}}"#,
        );
        assert_eq!(
            download_url("https://api.telegram.org", TOKEN, &ok).unwrap(),
            "https://api.telegram.org/file/bot123:ABC/photos/file_7.jpg"
        );
        let no_path = response(
            200,
            r#"{"ok":true,"result":{"file_id":"big","file_unique_id":"b"}}"#,
        );
        assert!(matches!(
            download_url("https://api.telegram.org", TOKEN, &no_path),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn get_file_errors_follow_the_bot_api() {
        let too_big = response(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#,
        );
        assert!(matches!(
            download_url("https://api.telegram.org", TOKEN, &too_big),
            Err(PluginError::Permanent(m)) if m.contains("file is too big")
        ));
        let throttled = response(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":4}}"#,
        );
        assert_eq!(
            download_url("https://api.telegram.org", TOKEN, &throttled),
            Err(PluginError::RateLimited(Some(4)))
        );
        assert!(matches!(
            download_url(
                "https://api.telegram.org",
                TOKEN,
                &response(502, "Bad Gateway")
            ),
            Err(PluginError::Transient(_))
        ));
    }
}
