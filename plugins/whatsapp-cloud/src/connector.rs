//! The connector's calls over any kv [`Store`] and HTTP [`Transport`]: the
//! `Channel` impl in `lib.rs` passes the host's, the tests pass fakes.

use meta_common::graph::{self, Graph};
use meta_common::parts;
use meta_common::signature::AppSecret;
use meta_common::store::{Store, Transport};
use meta_common::webhook::{self, Verified};
use switchboard_sdk::{
    Attachment, AttachmentDownload, DownloadRequest, HttpRequest, OutboundMessage, PluginError,
    SendReceipt, TemplateInfo, WebhookOutcome, config,
};

use crate::{inbound, media, outbound, templates};

/// The operator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Checks `X-Hub-Signature-256` (the host does, with config `app_secret`).
    pub app_secret: AppSecret,
    /// Answers the subscription handshake.
    pub verify_token: String,
    /// The business number messages are sent from.
    pub phone_number_id: String,
    /// The WhatsApp Business Account, for listing templates.
    pub business_account_id: Option<String>,
    /// The Graph API client.
    pub graph: Graph,
}

impl Settings {
    /// Reads the plugin's config.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] naming a missing key.
    pub fn from_config() -> Result<Settings, PluginError> {
        Ok(Settings {
            app_secret: AppSecret::CONFIG,
            verify_token: config::require("verify_token")?,
            phone_number_id: config::require("phone_number_id")?,
            business_account_id: config::get("business_account_id")
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty()),
            graph: Graph::from_config()?,
        })
    }
}

/// What a webhook call needs of the settings. Every webhook runs on a fresh
/// instance and each config value is a call into the host, so it reads these
/// two and not the Graph client's (a webhook never calls the Graph API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Checks `X-Hub-Signature-256` (the host does, with config `app_secret`).
    pub app_secret: AppSecret,
    /// Answers the subscription handshake.
    pub verify_token: String,
    /// Events for other numbers are ignored.
    pub phone_number_id: String,
}

impl WebhookSettings {
    /// Reads `verify_token` and `phone_number_id`.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] naming a missing key.
    pub fn from_config() -> Result<WebhookSettings, PluginError> {
        Ok(WebhookSettings {
            app_secret: AppSecret::CONFIG,
            verify_token: config::require("verify_token")?,
            phone_number_id: config::require("phone_number_id")?,
        })
    }
}

impl Settings {
    /// The part of the settings a webhook call reads.
    pub fn webhook(&self) -> WebhookSettings {
        WebhookSettings {
            app_secret: self.app_secret.clone(),
            verify_token: self.verify_token.clone(),
            phone_number_id: self.phone_number_id.clone(),
        }
    }
}

/// Verifies one webhook call and turns it into events.
///
/// # Errors
///
/// [`PluginError::Unauthorized`] for a bad signature or verify token,
/// [`PluginError::InvalidRequest`] for a body that is not JSON.
pub fn handle_webhook(
    settings: &WebhookSettings,
    request: &HttpRequest,
) -> Result<WebhookOutcome, PluginError> {
    match webhook::verify(request, &settings.app_secret, &settings.verify_token)? {
        Verified::Handshake(response) => Ok(WebhookOutcome::respond(response)),
        Verified::Notification(body) => Ok(WebhookOutcome {
            response: webhook::acknowledgement(),
            events: inbound::events(body, Some(&settings.phone_number_id))?,
        }),
    }
}

/// Sends `message` (one Cloud API call per part, resumed on retry) and
/// returns the first part's id.
///
/// # Errors
///
/// See [`outbound::bodies`] and [`meta_common::error::classify`].
pub fn send(
    settings: &Settings,
    store: &mut impl Store,
    transport: &mut impl Transport,
    message: &OutboundMessage,
) -> Result<SendReceipt, PluginError> {
    let bodies = outbound::bodies(message)?;
    let path = format!("{}/messages", graph::encode(&settings.phone_number_id));
    let ids = parts::send_all(store, &message.message_id, bodies.len(), |i| {
        let response = transport.send(settings.graph.post_json(&path, &bodies[i]))?;
        graph::parse::<outbound::Sent>(&response)?.message_id()
    })?;
    let first = ids
        .into_iter()
        .next()
        .ok_or_else(|| PluginError::Internal("WhatsApp returned no message id".into()))?;
    Ok(SendReceipt::sent(first))
}

/// Resolves a media id to the authenticated download the host makes.
///
/// # Errors
///
/// The Graph error for the lookup (5xx is transient, so the host retries).
pub fn fetch_attachment(
    settings: &Settings,
    transport: &mut impl Transport,
    attachment: &Attachment,
) -> Result<AttachmentDownload, PluginError> {
    let reference = attachment.url.trim();
    if media::is_url(reference) {
        return Ok(AttachmentDownload::Request(DownloadRequest {
            url: reference.to_owned(),
            headers: vec![settings.graph.authorization()],
        }));
    }
    if reference.is_empty() {
        return Err(PluginError::InvalidRequest(
            "the attachment has no media id".into(),
        ));
    }
    let response = transport.send(settings.graph.get(&media::path(reference)))?;
    let resolved = graph::parse::<media::MediaUrl>(&response)?;
    Ok(AttachmentDownload::Request(media::download(
        &settings.graph,
        resolved,
    )?))
}

/// The approved templates of the business account; none without one.
///
/// # Errors
///
/// The Graph error of a page.
pub fn list_templates(
    settings: &Settings,
    transport: &mut impl Transport,
) -> Result<Vec<TemplateInfo>, PluginError> {
    let Some(account) = settings.business_account_id.as_deref() else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..templates::MAX_PAGES {
        let request = settings
            .graph
            .get(&templates::path(account, after.as_deref()));
        let page = graph::parse::<templates::Page>(&transport.send(request)?)?;
        found.extend(page.approved());
        after = page.next_cursor();
        if after.is_none() {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta_common::signature;
    use meta_common::store::{MemoryStore, ScriptedTransport};
    use switchboard_sdk::{ChannelEvent, Identity};

    fn settings() -> Settings {
        Settings {
            app_secret: AppSecret::Value("app-secret".into()),
            verify_token: "verify-me".into(),
            phone_number_id: "106540352242922".into(),
            business_account_id: Some("102290129340398".into()),
            graph: Graph::new("https://graph.test", "v21.0", "EAAG"),
        }
    }

    #[test]
    fn signed_webhooks_become_events_and_forged_ones_are_refused() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
            "messages":[{"from":"16505551234","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let mut request = HttpRequest {
            method: "POST".into(),
            url: "https://sb.test/hooks/whatsapp-cloud".into(),
            headers: vec![(
                "X-Hub-Signature-256".into(),
                signature::sign("app-secret", body.as_bytes()),
            )],
            body: body.as_bytes().to_vec(),
        };
        let outcome = handle_webhook(&settings().webhook(), &request).unwrap();
        assert_eq!(outcome.response.status, 200);
        assert!(matches!(outcome.events.as_slice(), [ChannelEvent::Message(m)] if m.body == "hi"));

        request.headers[0].1 = signature::sign("other", body.as_bytes());
        assert!(matches!(
            handle_webhook(&settings().webhook(), &request),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn send_posts_each_part_and_returns_the_first_id() {
        let mut store = MemoryStore::default();
        let mut http = ScriptedTransport::default();
        http.respond(200, r#"{"messages":[{"id":"wamid.A"}]}"#)
            .respond(200, r#"{"messages":[{"id":"wamid.B"}]}"#);
        let mut message = OutboundMessage::text(
            "m1",
            "c1",
            Identity::new("whatsapp", "+16505551234"),
            "Listen",
        );
        message.attachments = vec![Attachment {
            content_type: Some("audio/ogg".into()),
            ..Attachment::new("https://sb.test/f/1")
        }];
        let receipt = send(&settings(), &mut store, &mut http, &message).unwrap();
        assert_eq!(receipt, SendReceipt::sent("wamid.A"));
        assert_eq!(http.requests.len(), 2);
        assert_eq!(
            http.requests[0].url,
            "https://graph.test/v21.0/106540352242922/messages"
        );
        assert!(store.0.is_empty());
    }

    #[test]
    fn send_errors_map_by_code() {
        let mut http = ScriptedTransport::default();
        http.respond(
            400,
            r#"{"error":{"message":"(#131047) Re-engagement message","code":131047,"error_data":{"details":"24 hours have passed"}}}"#,
        );
        let message =
            OutboundMessage::text("m2", "c1", Identity::new("whatsapp", "+16505551234"), "hi");
        assert!(matches!(
            send(
                &settings(),
                &mut MemoryStore::default(),
                &mut http,
                &message
            ),
            Err(PluginError::WindowClosed(_))
        ));
    }

    #[test]
    fn media_ids_resolve_to_bearer_downloads() {
        let mut http = ScriptedTransport::default();
        http.respond(200, r#"{"url":"https://lookaside.fbsbx.com/wa/?mid=9","mime_type":"image/jpeg","file_size":10,"id":"9"}"#);
        let download = fetch_attachment(&settings(), &mut http, &Attachment::new("9")).unwrap();
        assert_eq!(
            download,
            AttachmentDownload::Request(DownloadRequest {
                url: "https://lookaside.fbsbx.com/wa/?mid=9".into(),
                headers: vec![("Authorization".into(), "Bearer EAAG".into())],
            })
        );
        assert_eq!(http.requests[0].url, "https://graph.test/v21.0/9");
        assert_eq!(http.requests[0].method, "GET");

        http.respond(503, "");
        assert!(matches!(
            fetch_attachment(&settings(), &mut http, &Attachment::new("9")),
            Err(PluginError::Transient(_))
        ));
        http.respond(
            400,
            r#"{"error":{"message":"Unsupported get request","code":100,"error_subcode":33}}"#,
        );
        assert!(matches!(
            fetch_attachment(&settings(), &mut http, &Attachment::new("9")),
            Err(PluginError::Permanent(_))
        ));
    }

    #[test]
    fn templates_are_paged_and_optional() {
        let mut http = ScriptedTransport::default();
        http.respond(
            200,
            r#"{"data":[{"name":"a","language":"en","status":"APPROVED","components":[{"type":"BODY","text":"A {{1}}"}]}],
                "paging":{"cursors":{"after":"CUR"},"next":"https://graph.facebook.com/next"}}"#,
        )
        .respond(
            200,
            r#"{"data":[{"name":"b","language":"en","status":"APPROVED","components":[{"type":"BODY","text":"B"}]}],"paging":{"cursors":{"after":"END"}}}"#,
        );
        let found = list_templates(&settings(), &mut http).unwrap();
        assert_eq!(
            found.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(http.requests.len(), 2);
        assert!(http.requests[1].url.ends_with("&after=CUR"));

        let without = Settings {
            business_account_id: None,
            ..settings()
        };
        let mut silent = ScriptedTransport::default();
        assert!(list_templates(&without, &mut silent).unwrap().is_empty());
        assert!(silent.requests.is_empty());
    }
}
