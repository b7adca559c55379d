//! `telegram-bot`: an example channel connector for a Telegram bot, written the
//! way a third party would, against `switchboard-sdk` alone (plugin API
//! `switchboard:plugin@0.2.0`). See `README.md`.
//!
//! - Inbound: Telegram posts each `Update` as JSON to the webhook registered
//!   with `setWebhook` (`{public_url}/hooks/telegram-bot`), with the
//!   `secret_token` given there in `X-Telegram-Bot-Api-Secret-Token`
//!   ([`update`]).
//! - Files: messages carry photos and documents as `telegram-file:{file_id}`;
//!   `fetch-attachment` resolves one with `getFile` into the download link the
//!   host fetches ([`file`]).
//! - Or, with `updates = "poll"`, no webhook at all: the host calls `poll`
//!   every two seconds and the connector asks `getUpdates` for what is new
//!   ([`poll`]) — for bots behind a firewall, and an example of a pull channel.
//! - Outbound: `POST {api_base}/bot{bot_token}/sendMessage` ([`api`]).

pub mod api;
pub mod file;
pub mod poll;
pub mod update;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::{
    Attachment, AttachmentDownload, Capabilities, Channel, ChannelInfo, DownloadRequest,
    HttpRequest, HttpResponse, OutboundMessage, PluginError, PollOutcome, SendReceipt,
    WebhookOutcome, config, webhook,
};

const DEFAULT_API_BASE: &str = "https://api.telegram.org";
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// What this connector carries: no messaging window (a bot may answer any
/// time after the customer wrote first), text of up to 4096 characters
/// (`sendMessage`'s limit), and no outbound files: `send` posts text only, so
/// agents are not offered attachments. Bots get no delivery or read receipts.
pub fn capabilities() -> Capabilities {
    Capabilities {
        max_body_chars: Some(4096),
        ..Capabilities::default()
    }
}

struct TelegramBot;

impl Channel for TelegramBot {
    fn describe() -> ChannelInfo {
        let mut capabilities = capabilities();
        if config::get_or("updates", "webhook") == "poll" {
            capabilities.poll_interval_ms = Some(poll::INTERVAL_MS);
        }
        ChannelInfo::new("telegram", update::TELEGRAM, "Telegram").with(capabilities)
    }

    fn poll(cursor: Option<String>) -> Result<PollOutcome, PluginError> {
        if config::get_or("updates", "webhook") != "poll" {
            return Err(PluginError::Unsupported(
                "updates arrive by webhook (set updates = \"poll\" to poll)".into(),
            ));
        }
        let bot_token = config::require("bot_token")?;
        let api_base = config::get_or("api_base", DEFAULT_API_BASE);
        let offset = poll::offset(cursor.as_deref())?;
        let response = http::send(Request::get(poll::get_updates_url(
            &api_base, &bot_token, offset,
        )))?;
        poll::outcome(&response)
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let secret = config::get("webhook_secret")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PluginError::Unauthorized("no webhook_secret is set; webhooks are refused".into())
            })?;
        let provided = request
            .header(SECRET_HEADER)
            .ok_or_else(|| PluginError::Unauthorized(format!("missing {SECRET_HEADER} header")))?;
        if !webhook::secrets_match(provided, &secret) {
            return Err(PluginError::Unauthorized(format!(
                "{SECRET_HEADER} does not match"
            )));
        }
        Ok(WebhookOutcome {
            response: HttpResponse::json(200, "{}"),
            events: update::events(&request.body)?,
        })
    }

    fn send(message: OutboundMessage) -> Result<SendReceipt, PluginError> {
        let bot_token = config::require("bot_token")?;
        let api_base = config::get_or("api_base", DEFAULT_API_BASE);

        let body = api::send_message_body(&message)?;
        let response =
            http::send(Request::post(api::send_message_url(&api_base, &bot_token)).json(body))?;
        api::receipt(&message.to.value, &response)
    }

    fn fetch_attachment(attachment: Attachment) -> Result<AttachmentDownload, PluginError> {
        let file_id = file::file_id(&attachment.url)?;
        let bot_token = config::require("bot_token")?;
        let api_base = config::get_or("api_base", DEFAULT_API_BASE);

        let response = http::send(Request::get(file::get_file_url(
            &api_base, &bot_token, file_id,
        )))?;
        Ok(AttachmentDownload::Request(DownloadRequest {
            url: file::download_url(&api_base, &bot_token, &response)?,
            headers: Vec::new(),
        }))
    }
}

switchboard_sdk::export_channel!(TelegramBot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_text_up_to_4096_characters() {
        let c = capabilities();
        assert_eq!(c.window_secs, None);
        assert_eq!(c.max_body_chars, Some(4096));
        assert_eq!(c.attachments.max_count, 0);
        assert!(!c.templates && !c.interactive);
        assert!(!c.delivery_receipts && !c.read_receipts);
        assert_eq!(c.poll_interval_ms, None);
    }
}
