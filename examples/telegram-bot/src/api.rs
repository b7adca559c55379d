//! The Bot API's `sendMessage`: what `send` posts and what the answer means;
//! and how any Bot API answer reads ([`result`]).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_sdk::http::Response;
use switchboard_sdk::{OutboundMessage, PluginError, SendReceipt};

use crate::update::{TELEGRAM, provider_id};

/// `POST` target of `sendMessage`. Contains the bot token: never log it.
pub fn send_message_url(api_base: &str, bot_token: &str) -> String {
    format!(
        "{}/bot{bot_token}/sendMessage",
        api_base.trim_end_matches('/')
    )
}

/// The JSON body of `sendMessage`. Numeric chat ids go as numbers, `@channel`
/// names as strings. The Bot API sends files through other methods, so
/// attachments go as links under the text.
///
/// # Errors
///
/// [`PluginError::Permanent`] when the recipient is not a Telegram chat.
pub fn send_message_body(message: &OutboundMessage) -> Result<String, PluginError> {
    if message.to.kind != TELEGRAM {
        return Err(PluginError::Permanent(format!(
            "Telegram sends to `telegram` identities, not `{}`",
            message.to.kind
        )));
    }
    let chat_id = match message.to.value.parse::<i64>() {
        Ok(id) => json!(id),
        Err(_) => json!(message.to.value),
    };
    let mut text = message.body.clone();
    for attachment in &message.attachments {
        text.push('\n');
        text.push_str(&attachment.url);
    }
    Ok(json!({ "chat_id": chat_id, "text": text }).to_string())
}

#[derive(Deserialize)]
struct Answer<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Sent {
    message_id: i64,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u32>,
}

/// What the Bot API's answer to `sendMessage` to `chat_id` means.
///
/// # Errors
///
/// As [`result`].
pub fn receipt(chat_id: &str, response: &Response) -> Result<SendReceipt, PluginError> {
    let sent: Sent = result(response)?;
    Ok(SendReceipt::sent(provider_id(chat_id, sent.message_id)))
}

/// The `result` of a Bot API answer (`{"ok": true, "result": …}`).
///
/// # Errors
///
/// 429 → [`PluginError::RateLimited`] (with `parameters.retry_after`), 5xx →
/// [`PluginError::Transient`], other failures → [`PluginError::Permanent`] with
/// Telegram's description.
pub fn result<T: DeserializeOwned>(response: &Response) -> Result<T, PluginError> {
    let answer: Option<Answer<T>> = serde_json::from_slice(&response.body).ok();
    match answer {
        Some(Answer {
            ok: true,
            result: Some(result),
            ..
        }) if response.is_success() => Ok(result),
        Some(answer) => {
            if response.status == 429 || answer.error_code == Some(429) {
                let retry_after = answer
                    .parameters
                    .and_then(|p| p.retry_after)
                    .or_else(|| response.retry_after_secs());
                return Err(PluginError::RateLimited(retry_after));
            }
            let detail = format!(
                "Telegram error {}: {}",
                answer.error_code.unwrap_or(response.status),
                answer.description.as_deref().unwrap_or("no description")
            );
            if response.is_success() {
                // `ok: false` under a 2xx, or `ok: true` without a result.
                Err(PluginError::Permanent(detail))
            } else {
                Err(response.failure(detail))
            }
        }
        None => Err(response.failure(format!(
            "unreadable answer: {}",
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::{Attachment, DeliveryStatus, Identity};

    fn message(kind: &str, chat: &str) -> OutboundMessage {
        OutboundMessage::text(
            "m-1",
            "c-1",
            Identity::new(kind, chat),
            "Your ticket is solved",
        )
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn url_and_body() {
        assert_eq!(
            send_message_url("http://127.0.0.1:9000/", "123:ABC"),
            "http://127.0.0.1:9000/bot123:ABC/sendMessage"
        );
        assert_eq!(
            send_message_body(&message("telegram", "4242")).unwrap(),
            r#"{"chat_id":4242,"text":"Your ticket is solved"}"#
        );
        let mut to_channel = message("telegram", "@news");
        to_channel
            .attachments
            .push(Attachment::new("https://cdn.test/a.png"));
        assert_eq!(
            send_message_body(&to_channel).unwrap(),
            r#"{"chat_id":"@news","text":"Your ticket is solved\nhttps://cdn.test/a.png"}"#
        );
        assert!(matches!(
            send_message_body(&message("phone", "+1555")),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn sent_message_is_a_receipt() {
        let ok = response(
            200,
            r#"{"ok":true,"result":{"message_id":77,"chat":{"id":4242},"date":1}}"#,
        );
        assert_eq!(
            receipt("4242", &ok).unwrap(),
            SendReceipt {
                provider_id: "4242:77".into(),
                status: DeliveryStatus::Sent
            }
        );
    }

    #[test]
    fn errors_follow_the_bot_api() {
        let throttled = response(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
        );
        assert_eq!(
            receipt("1", &throttled),
            Err(PluginError::RateLimited(Some(5)))
        );
        let blocked = response(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert_eq!(
            receipt("1", &blocked),
            Err(PluginError::Permanent(
                "HTTP 403: Telegram error 403: Forbidden: bot was blocked by the user".into()
            ))
        );
        assert!(matches!(
            receipt("1", &response(502, "Bad Gateway")),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            receipt(
                "1",
                &response(200, r#"{"ok":false,"error_code":400,"description":"x"}"#)
            ),
            Err(PluginError::Permanent(_))
        ));
    }
}
