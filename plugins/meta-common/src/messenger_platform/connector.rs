//! The whole Messenger Platform connector, for the `messenger` and
//! `instagram` plugins: webhooks in (with names and receipts resolved
//! against kv), Send API out.
//!
//! [`handle_webhook`] and [`send`] read the config and use the host's kv,
//! HTTP and clock; [`Connector`] is the same logic over any [`Store`] and
//! [`Transport`], which is how it is unit-tested.

use std::collections::BTreeSet;

use switchboard_sdk::{
    ChannelEvent, DeliveryReceipt, DeliveryStatus, HttpRequest, OutboundMessage, PluginError,
    SendReceipt, WebhookOutcome, clock, config,
};

use super::inbound::{self, Inbound};
use super::outbound::{self, Sent};
use super::receipts::{self, SentLog};
use super::{Platform, profiles};
use crate::graph::{self, Graph};
use crate::parts;
use crate::signature::AppSecret;
use crate::store::{HostHttp, HostKv, Store, Transport};
use crate::webhook::{self, Verified};

/// New customers whose names one webhook call looks up; the rest get theirs
/// with their next message (the webhook has a deadline). After a lookup that
/// fails on the way (timeout, 5xx) none is tried for the rest of the call.
pub const MAX_LOOKUPS_PER_WEBHOOK: usize = 3;

/// The profile lookups of one webhook call.
#[derive(Default)]
struct Lookups {
    tried: BTreeSet<String>,
    failed: bool,
}

/// The operator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Checks `X-Hub-Signature-256` (the host does, with config `app_secret`).
    pub app_secret: AppSecret,
    /// Answers the subscription handshake.
    pub verify_token: String,
    /// The page messages are sent from (`/{page_id}/messages`).
    pub page_id: String,
    /// The Graph API client.
    pub graph: Graph,
}

impl Settings {
    /// Reads `app_secret`, `verify_token`, `page_id`, `access_token`,
    /// `api_base` and `graph_version`.
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] naming a missing key.
    pub fn from_config() -> Result<Settings, PluginError> {
        Ok(Settings {
            app_secret: AppSecret::CONFIG,
            verify_token: config::require("verify_token")?,
            page_id: config::require("page_id")?,
            graph: Graph::from_config()?,
        })
    }
}

/// One platform's connector over a store and a transport.
pub struct Connector<'a, S, T> {
    /// Messenger or Instagram.
    pub platform: Platform,
    /// The operator's settings.
    pub settings: &'a Settings,
    /// The plugin's kv.
    pub store: &'a mut S,
    /// Outbound HTTP.
    pub transport: &'a mut T,
    /// The current time, ms since the Unix epoch.
    pub now_ms: u64,
}

/// `handle-webhook` with the host's config, kv, HTTP and clock.
///
/// # Errors
///
/// See [`Connector::handle_webhook`].
pub fn handle_webhook(
    platform: Platform,
    request: &HttpRequest,
) -> Result<WebhookOutcome, PluginError> {
    let settings = Settings::from_config()?;
    Connector {
        platform,
        settings: &settings,
        store: &mut HostKv,
        transport: &mut HostHttp,
        now_ms: clock::now_ms(),
    }
    .handle_webhook(request)
}

/// `send` with the host's config, kv, HTTP and clock.
///
/// # Errors
///
/// See [`Connector::send`].
pub fn send(platform: Platform, message: &OutboundMessage) -> Result<SendReceipt, PluginError> {
    let settings = Settings::from_config()?;
    Connector {
        platform,
        settings: &settings,
        store: &mut HostKv,
        transport: &mut HostHttp,
        now_ms: clock::now_ms(),
    }
    .send(message)
}

impl<S: Store, T: Transport> Connector<'_, S, T> {
    /// Verifies one webhook call and turns it into events.
    ///
    /// # Errors
    ///
    /// [`PluginError::Unauthorized`] for a bad signature or verify token,
    /// [`PluginError::InvalidRequest`] for a body that is not JSON.
    pub fn handle_webhook(&mut self, request: &HttpRequest) -> Result<WebhookOutcome, PluginError> {
        let body = match webhook::verify(
            request,
            &self.settings.app_secret,
            &self.settings.verify_token,
        )? {
            Verified::Handshake(response) => return Ok(WebhookOutcome::respond(response)),
            Verified::Notification(body) => body,
        };
        // Instagram notifications name the Instagram account, not the page.
        let account =
            (self.platform == Platform::Messenger).then_some(self.settings.page_id.as_str());
        let parsed = inbound::parse(self.platform, body, account)?;
        let mut events = Vec::with_capacity(parsed.len());
        let mut lookups = Lookups::default();
        for item in parsed {
            match item {
                Inbound::Message(message) => {
                    let mut message = *message;
                    message.sender_name = self.sender_name(&message.sender.value, &mut lookups);
                    events.push(ChannelEvent::Message(message));
                }
                Inbound::Delivered {
                    customer,
                    mids,
                    watermark,
                    at_ms,
                } => {
                    let receipts = if mids.is_empty() {
                        watermark.map_or_else(Vec::new, |watermark| {
                            self.sent_log(&customer).delivered(watermark, at_ms)
                        })
                    } else {
                        mids.into_iter()
                            .map(|mid| DeliveryReceipt {
                                at_ms,
                                ..DeliveryReceipt::new(mid, DeliveryStatus::Delivered)
                            })
                            .collect()
                    };
                    events.extend(receipts.into_iter().map(ChannelEvent::Receipt));
                }
                Inbound::Read {
                    customer,
                    mid,
                    watermark,
                    at_ms,
                } => {
                    let receipts = self.read(&customer, mid, watermark, at_ms);
                    events.extend(receipts.into_iter().map(ChannelEvent::Receipt));
                }
            }
        }
        Ok(WebhookOutcome {
            response: webhook::acknowledgement(),
            events,
        })
    }

    /// Sends `message`: one Send API call per attachment, then the text.
    ///
    /// # Errors
    ///
    /// See [`outbound::bodies`] and [`crate::error::classify`].
    pub fn send(&mut self, message: &OutboundMessage) -> Result<SendReceipt, PluginError> {
        let bodies = outbound::bodies(self.platform, message)?;
        let path = format!("{}/messages", graph::encode(&self.settings.page_id));
        let graph = &self.settings.graph;
        let transport = &mut *self.transport;
        let ids = parts::send_all(self.store, &message.message_id, bodies.len(), |i| {
            let response = transport.send(graph.post_json(&path, &bodies[i]))?;
            Ok(graph::parse::<Sent>(&response)?.message_id)
        })?;
        let first = ids
            .into_iter()
            .next()
            .ok_or_else(|| PluginError::Internal("the Send API returned no message id".into()))?;
        let mut log = self.sent_log(&message.to.value);
        log.record(&first, self.now_ms);
        // Losing the log only loses read receipts, not the message.
        let _ = self
            .store
            .set(&receipts::key(&message.to.value), &log.to_bytes());
        Ok(SendReceipt::sent(first))
    }

    fn sender_name(&mut self, customer: &str, lookups: &mut Lookups) -> Option<String> {
        if let Some(answer) = profiles::cached(self.store, customer, self.now_ms) {
            return answer;
        }
        if lookups.failed
            || lookups.tried.contains(customer)
            || lookups.tried.len() >= MAX_LOOKUPS_PER_WEBHOOK
        {
            return None;
        }
        lookups.tried.insert(customer.to_owned());
        let found = profiles::lookup(
            self.store,
            self.transport,
            &self.settings.graph,
            self.platform,
            customer,
            self.now_ms,
        );
        lookups.failed |= found.is_err();
        found.unwrap_or(None)
    }

    fn sent_log(&self, customer: &str) -> SentLog {
        SentLog::from_bytes(self.store.get(&receipts::key(customer)).as_deref())
    }

    fn read(
        &mut self,
        customer: &str,
        mid: Option<String>,
        watermark: Option<u64>,
        at_ms: Option<u64>,
    ) -> Vec<DeliveryReceipt> {
        let mut log = self.sent_log(customer);
        // Instagram names the message read; everything sent before it was
        // read too.
        let watermark = watermark.or_else(|| {
            let mid = mid.as_deref()?;
            log.0
                .iter()
                .find(|(known, _)| known == mid)
                .map(|(_, at)| *at)
        });
        let mut read = watermark.map_or_else(Vec::new, |w| log.take_read(w, at_ms));
        if let Some(mid) = mid
            && !read.iter().any(|r| r.provider_id == mid)
        {
            read.push(DeliveryReceipt {
                at_ms,
                ..DeliveryReceipt::new(mid, DeliveryStatus::Read)
            });
        }
        if watermark.is_some() {
            let key = receipts::key(customer);
            if log.0.is_empty() {
                self.store.delete(&key);
            } else {
                let _ = self.store.set(&key, &log.to_bytes());
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature;
    use crate::store::{MemoryStore, ScriptedTransport};
    use switchboard_sdk::{Identity, WindowUse};

    const PAGE: &str = "1122334455";

    fn settings() -> Settings {
        Settings {
            app_secret: AppSecret::Value("app-secret".into()),
            verify_token: "verify-me".into(),
            page_id: PAGE.into(),
            graph: Graph::new("https://graph.test", "v21.0", "PAGE-TOKEN"),
        }
    }

    fn signed(body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://sb.test/hooks/messenger".into(),
            headers: vec![(
                "X-Hub-Signature-256".into(),
                signature::sign("app-secret", body.as_bytes()),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    fn page(items: &str) -> String {
        format!(r#"{{"object":"page","entry":[{{"id":"{PAGE}","time":1,"messaging":[{items}]}}]}}"#)
    }

    struct World {
        settings: Settings,
        store: MemoryStore,
        http: ScriptedTransport,
        now_ms: u64,
    }

    impl World {
        fn new() -> World {
            World {
                settings: settings(),
                store: MemoryStore::default(),
                http: ScriptedTransport::default(),
                now_ms: 1_700_000_000_000,
            }
        }

        fn connector(
            &mut self,
            platform: Platform,
        ) -> Connector<'_, MemoryStore, ScriptedTransport> {
            Connector {
                platform,
                settings: &self.settings,
                store: &mut self.store,
                transport: &mut self.http,
                now_ms: self.now_ms,
            }
        }

        fn webhook(&mut self, body: &str) -> Vec<ChannelEvent> {
            self.connector(Platform::Messenger)
                .handle_webhook(&signed(body))
                .unwrap()
                .events
        }

        fn send_text(&mut self, id: &str, mid: &str) {
            self.http.respond(
                200,
                &format!(r#"{{"recipient_id":"PSID-1","message_id":"{mid}"}}"#),
            );
            let message =
                OutboundMessage::text(id, "c1", Identity::new("messenger", "PSID-1"), "hello");
            let receipt = self.connector(Platform::Messenger).send(&message).unwrap();
            assert_eq!(receipt.provider_id, mid);
        }
    }

    fn receipts(events: &[ChannelEvent]) -> Vec<(String, DeliveryStatus)> {
        events
            .iter()
            .map(|event| match event {
                ChannelEvent::Receipt(r) => (r.provider_id.clone(), r.status),
                other => panic!("expected receipts only, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn messages_get_the_sender_name_once() {
        let mut world = World::new();
        world.http.respond(
            200,
            r#"{"first_name":"Ada","last_name":"Lovelace","id":"PSID-1"}"#,
        );
        let body = page(
            r#"{"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":1,"message":{"mid":"m_1","text":"hi"}},
               {"sender":{"id":"PSID-1"},"recipient":{"id":"1122334455"},"timestamp":2,"message":{"mid":"m_2","text":"again"}}"#,
        );
        let events = world.webhook(&body);
        let names: Vec<_> = events
            .iter()
            .map(|e| match e {
                ChannelEvent::Message(m) => m.sender_name.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [Some("Ada Lovelace".into()), Some("Ada Lovelace".into())]
        );
        assert_eq!(world.http.requests.len(), 1);

        world.webhook(&body);
        assert_eq!(
            world.http.requests.len(),
            1,
            "cached senders are not looked up"
        );
    }

    #[test]
    fn a_failed_lookup_still_delivers_the_message() {
        let mut world = World::new();
        world.http.fail(PluginError::Transient("timeout".into()));
        let events = world.webhook(&page(
            r#"{"sender":{"id":"PSID-2"},"recipient":{"id":"1122334455"},"timestamp":1,"message":{"mid":"m_9","text":"hi"}}"#,
        ));
        assert!(matches!(
            events.as_slice(),
            [ChannelEvent::Message(m)] if m.sender_name.is_none() && m.body == "hi"
        ));
    }

    #[test]
    fn a_failing_lookup_stops_the_others_of_the_call() {
        let mut world = World::new();
        world.http.fail(PluginError::Transient("timeout".into()));
        let items: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    r#"{{"sender":{{"id":"P{i}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1,"message":{{"mid":"m_{i}","text":"hi"}}}}"#
                )
            })
            .collect();
        let events = world.webhook(&page(&items.join(",")));
        assert_eq!(events.len(), 3);
        assert_eq!(world.http.requests.len(), 1);
        assert!(
            world.store.0.is_empty(),
            "a failure on the way is not cached"
        );
    }

    #[test]
    fn lookups_per_webhook_are_bounded() {
        let mut world = World::new();
        let items: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    r#"{{"sender":{{"id":"P{i}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1,"message":{{"mid":"m_{i}","text":"hi"}}}}"#
                )
            })
            .collect();
        for i in 0..MAX_LOOKUPS_PER_WEBHOOK {
            world
                .http
                .respond(200, &format!(r#"{{"first_name":"N{i}"}}"#));
        }
        let events = world.webhook(&page(&items.join(",")));
        assert_eq!(events.len(), 8);
        assert_eq!(world.http.requests.len(), MAX_LOOKUPS_PER_WEBHOOK);
    }

    #[test]
    fn sends_are_logged_and_read_watermarks_become_read_receipts() {
        let mut world = World::new();
        world.send_text("msg-1", "m_out_1");
        world.now_ms += 1_000;
        world.send_text("msg-2", "m_out_2");
        world.now_ms += 1_000;
        world.send_text("msg-3", "m_out_3");

        let request = &world.http.requests[0];
        assert_eq!(
            request.url,
            format!("https://graph.test/v21.0/{PAGE}/messages")
        );

        // Read up to the second message.
        let watermark = 1_700_000_001_000u64;
        let events = world.webhook(&page(&format!(
            r#"{{"sender":{{"id":"PSID-1"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{},"read":{{"watermark":{watermark}}}}}"#,
            watermark + 5
        )));
        assert_eq!(
            receipts(&events),
            [
                ("m_out_1".to_owned(), DeliveryStatus::Read),
                ("m_out_2".to_owned(), DeliveryStatus::Read)
            ]
        );
        let ChannelEvent::Receipt(first) = &events[0] else {
            unreachable!()
        };
        assert_eq!(first.at_ms, Some(watermark + 5));

        // Delivery without ids uses the watermark too; read ones are gone.
        let events = world.webhook(&page(&format!(
            r#"{{"sender":{{"id":"PSID-1"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1,"delivery":{{"watermark":{}}}}}"#,
            watermark + 10_000
        )));
        assert_eq!(
            receipts(&events),
            [("m_out_3".to_owned(), DeliveryStatus::Delivered)]
        );

        // Delivery with ids names them.
        let events = world.webhook(&page(&format!(
            r#"{{"sender":{{"id":"PSID-1"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1,"delivery":{{"mids":["m_x","m_y"],"watermark":1}}}}"#
        )));
        assert_eq!(
            receipts(&events),
            [
                ("m_x".to_owned(), DeliveryStatus::Delivered),
                ("m_y".to_owned(), DeliveryStatus::Delivered)
            ]
        );
    }

    #[test]
    fn an_instagram_read_covers_the_earlier_messages() {
        let mut world = World::new();
        let mut log = SentLog::default();
        log.record("ig_1", 10);
        log.record("ig_2", 20);
        log.record("ig_3", 30);
        world
            .store
            .set(&receipts::key("IGSID"), &log.to_bytes())
            .unwrap();
        let body = r#"{"object":"instagram","entry":[{"id":"17841400000","time":1,"messaging":[
            {"sender":{"id":"IGSID"},"recipient":{"id":"17841400000"},"timestamp":99,"read":{"mid":"ig_2"}},
            {"sender":{"id":"IGSID"},"recipient":{"id":"17841400000"},"timestamp":99,"read":{"mid":"ig_unknown"}}]}]}"#;
        let events = world
            .connector(Platform::Instagram)
            .handle_webhook(&signed(body))
            .unwrap()
            .events;
        assert_eq!(
            receipts(&events),
            [
                ("ig_1".to_owned(), DeliveryStatus::Read),
                ("ig_2".to_owned(), DeliveryStatus::Read),
                ("ig_unknown".to_owned(), DeliveryStatus::Read)
            ]
        );
    }

    #[test]
    fn handshake_and_bad_signatures() {
        let mut world = World::new();
        let handshake = HttpRequest {
            method: "GET".into(),
            url: "https://sb.test/hooks/messenger?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=777".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let outcome = world
            .connector(Platform::Messenger)
            .handle_webhook(&handshake)
            .unwrap();
        assert_eq!(outcome.response.body, b"777");
        assert!(outcome.events.is_empty());

        let mut forged = signed(&page(""));
        forged.body =
            page(r#"{"sender":{"id":"x"},"message":{"mid":"m","text":"pay me"}}"#).into_bytes();
        assert!(matches!(
            world.connector(Platform::Messenger).handle_webhook(&forged),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn multi_part_sends_resume_and_errors_map() {
        let mut world = World::new();
        let mut message = OutboundMessage::text(
            "msg-9",
            "c1",
            Identity::new("messenger", "PSID-1"),
            "see attached",
        );
        message.attachments = vec![switchboard_sdk::Attachment::new("https://sb.test/f/1")];
        message.window = WindowUse::HumanAgent;
        world
            .http
            .respond(200, r#"{"recipient_id":"PSID-1","message_id":"m_file"}"#);
        world
            .http
            .respond(500, r#"{"error":{"message":"An unknown error","code":1}}"#);
        assert!(matches!(
            world.connector(Platform::Messenger).send(&message),
            Err(PluginError::Transient(_))
        ));
        world
            .http
            .respond(200, r#"{"recipient_id":"PSID-1","message_id":"m_text"}"#);
        let receipt = world.connector(Platform::Messenger).send(&message).unwrap();
        assert_eq!(receipt.provider_id, "m_file");
        assert_eq!(world.http.requests.len(), 3, "the file is not sent twice");
        let last: serde_json::Value = serde_json::from_slice(&world.http.requests[2].body).unwrap();
        assert_eq!(last["message"]["text"], "see attached");
        assert_eq!(last["tag"], "HUMAN_AGENT");

        world.http.respond(
            400,
            r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278}}"#,
        );
        let plain =
            OutboundMessage::text("msg-10", "c1", Identity::new("messenger", "PSID-1"), "hi");
        assert!(matches!(
            world.connector(Platform::Messenger).send(&plain),
            Err(PluginError::WindowClosed(_))
        ));
    }
}
