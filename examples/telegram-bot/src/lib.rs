//! `telegram-bot`: an example channel connector for a Telegram bot, written the
//! way a third party would, against `switchboard-sdk` alone. See `README.md`.
//!
//! - Inbound: Telegram posts each `Update` as JSON to the webhook registered
//!   with `setWebhook` (`{public_url}/hooks/telegram-bot`), with the
//!   `secret_token` given there in `X-Telegram-Bot-Api-Secret-Token`.
//! - Outbound: `POST {api_base}/bot{bot_token}/sendMessage`.

pub mod api;
pub mod update;

use switchboard_sdk::http::{self, Request};
use switchboard_sdk::{
    Channel, ChannelInfo, HttpRequest, HttpResponse, OutboundMessage, PluginError, SendReceipt,
    WebhookOutcome, config, webhook,
};

const DEFAULT_API_BASE: &str = "https://api.telegram.org";
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

struct TelegramBot;

impl Channel for TelegramBot {
    fn describe() -> ChannelInfo {
        // Inbound photos and documents arrive as attachments, but `send` posts
        // text only, so agents are not offered media.
        ChannelInfo::new("telegram", update::TELEGRAM, "Telegram")
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let secret = config::require("webhook_secret")?;
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
}

switchboard_sdk::export_channel!(TelegramBot);
