//! Webchat: the host's native customer channel, behind the widget at `/widget.js`.
//!
//! A visitor starts a chat with a name (and optionally an e-mail, which joins them to
//! the contact that owns it) and gets a bearer token; they are the identity
//! `webchat:<visitor id>`. Their messages go through the same ingest as any connector
//! (plugin id and channel `webchat`, idempotent on the client's message id), so they
//! land on the contact's one timeline, open or continue the contact's conversation on
//! any channel, and create routing tasks. Agents' replies on `webchat` go through the
//! outbox like every reply; the outbox worker hands them to [`Webchat::deliver`]
//! instead of a plugin, which publishes them on the event bus for the visitor's open
//! sockets ([`Webchat::connect`]).
//!
//! A visitor only ever reads their own webchat messages: typing a customer's e-mail
//! links the chat to that customer for the agent's benefit but shows the visitor
//! nothing from other channels.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, DeliveryStatus, Direction, EventKind};
use switchboard_store::{
    InboundMessage, IngestEvent, IngestOutcome, NewEvent, OutboxRow, Store, TimelineEvent, WEBCHAT,
    WebchatVisitor,
};

use crate::accounts::{new_token, token_hash};
use crate::channels::WEBCHAT_PLUGIN_ID;
use crate::clock::{Clock, now_ms, start_of_day};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::events::{Audience, Delivery, Subscription};
use crate::ingest::Ingest;
use crate::notify::Notifier;
use crate::rate::Buckets;
use crate::routing::RoutingService;
use crate::text::text_field;

/// The plugin id and channel name webchat events carry.
pub const PLUGIN_ID: &str = WEBCHAT_PLUGIN_ID;

/// How many messages a transcript returns at most.
const TRANSCRIPT_LIMIT: u32 = 500;

/// Limits on what webchat visitors, who have no account, may do.
#[derive(Debug, Clone)]
pub struct WebchatLimits {
    /// New chats one client address may start per minute: enough for a family
    /// behind one router, too few to fill the contact table from a script.
    pub starts_per_minute: u32,
    /// Messages one visitor may send per minute, on average…
    pub messages_per_minute: u32,
    /// …with bursts of this many (a pasted list, quick short lines).
    pub message_burst: u32,
}

impl Default for WebchatLimits {
    fn default() -> Self {
        WebchatLimits {
            starts_per_minute: 20,
            messages_per_minute: 30,
            message_burst: 10,
        }
    }
}

/// The webchat channel's use cases.
pub struct Webchat {
    store: Store,
    ingest: Arc<Ingest>,
    notifier: Notifier,
    routing: Option<Arc<RoutingService>>,
    clock: Clock,
    /// New chats per client address.
    starts: Buckets<Option<IpAddr>>,
    /// Messages per visitor.
    messages: Buckets<String>,
    /// Open sockets per visitor on this host.
    connected: Arc<Mutex<HashMap<String, usize>>>,
}

/// A visitor's open socket: the bus events addressed to them.
pub struct VisitorFeed {
    visitor: String,
    subscription: Subscription,
    connected: Arc<Mutex<HashMap<String, usize>>>,
}

impl VisitorFeed {
    /// The next message for the visitor's socket; `None` when the socket should
    /// close (the bus lost events for it: the page reloads the transcript).
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.subscription.next().await {
                Delivery::Event(e) if e.for_visitor(&self.visitor) => return Some(e.data.clone()),
                Delivery::Event(_) => {}
                Delivery::Resync { .. } | Delivery::Closed => return None,
            }
        }
    }
}

impl Drop for VisitorFeed {
    fn drop(&mut self) {
        let mut connected = self.connected.lock().expect("webchat sockets");
        if let Some(n) = connected.get_mut(&self.visitor) {
            *n -= 1;
            if *n == 0 {
                connected.remove(&self.visitor);
            }
        }
    }
}

fn message_view(e: &TimelineEvent, names: &HashMap<String, String>) -> Value {
    json!({
        "id": e.id,
        "direction": if e.direction == Direction::In { "in" } else { "out" },
        "body": e.body,
        "at": e.occurred_at,
        "author": e.author_agent_id.as_ref().and_then(|a| names.get(a)),
        "auto": e.data.get("auto").is_some_and(|v| v == true),
        "delivery_status": e.delivery_status,
    })
}

/// "About 3 minutes" for the greeting.
pub fn describe_wait(ms: u64) -> String {
    match ms {
        0 => "An agent is joining you now.".into(),
        ms if ms < 60_000 => "The estimated wait is under a minute.".into(),
        ms => {
            let minutes = ms.div_ceil(60_000);
            format!(
                "The estimated wait is about {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )
        }
    }
}

impl Webchat {
    /// Webchat over these parts.
    pub fn new(
        store: Store,
        ingest: Arc<Ingest>,
        notifier: Notifier,
        routing: Option<Arc<RoutingService>>,
        limits: &WebchatLimits,
        clock: Clock,
    ) -> Webchat {
        Webchat {
            store,
            ingest,
            notifier,
            routing,
            clock,
            starts: Buckets::per_minute(limits.starts_per_minute, limits.starts_per_minute),
            messages: Buckets::per_minute(limits.messages_per_minute, limits.message_burst),
            connected: Arc::default(),
        }
    }

    /// Starts a chat for a visitor at `addr`: their record and the bearer token
    /// (shown once) their page keeps.
    pub async fn start(
        &self,
        addr: Option<IpAddr>,
        name: &str,
        email: Option<&str>,
    ) -> AppResult<(WebchatVisitor, String)> {
        if let Err(wait) = self.starts.take(addr, Instant::now()) {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "rate_limited",
                "too many new chats from this address; try again in a minute",
            )
            .with_retry_after(wait));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(AppError::bad_request("name: 1 to 80 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(AppError::bad_request(
                "name must not contain control characters",
            ));
        }
        let email = match email.map(str::trim) {
            Some(e) if !e.is_empty() => {
                Some(switchboard_core::normalize_identity("email", e, None)?)
            }
            _ => None,
        };
        let token = new_token();
        let visitor = self
            .store
            .create_webchat_visitor(
                name,
                email.as_ref(),
                &token_hash(&token),
                self.clock.now_ms(),
            )
            .await?;
        Ok((visitor, token))
    }

    /// The visitor a token belongs to.
    pub async fn visitor(&self, token: &str) -> AppResult<WebchatVisitor> {
        self.store
            .webchat_visitor(&token_hash(token))
            .await?
            .ok_or_else(|| AppError::unauthorized("unknown webchat session; start a new chat"))
    }

    async fn agent_names(&self, events: &[TimelineEvent]) -> HashMap<String, String> {
        let mut names = HashMap::new();
        for id in events.iter().filter_map(|e| e.author_agent_id.as_ref()) {
            if !names.contains_key(id)
                && let Ok(a) = self.store.agent(id).await
            {
                names.insert(id.clone(), a.name);
            }
        }
        names
    }

    /// The visitor's webchat messages, oldest first, as their page shows them.
    pub async fn transcript(&self, visitor: &WebchatVisitor) -> AppResult<Vec<Value>> {
        let events = self
            .store
            .identity_messages(&visitor.identity(), TRANSCRIPT_LIMIT)
            .await?;
        let names = self.agent_names(&events).await;
        Ok(events.iter().map(|e| message_view(e, &names)).collect())
    }

    /// The customer wrote: ingest the message (idempotent on `client_id`), greet a
    /// new conversation, and return the message as the page shows it.
    pub async fn post_message(
        self: &Arc<Self>,
        visitor: &WebchatVisitor,
        client_id: &str,
        body: &str,
    ) -> AppResult<Value> {
        let client_id = client_id.trim();
        if client_id.is_empty()
            || client_id.len() > 64
            || !client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AppError::bad_request(
                "client_id: 1-64 letters, digits, '-' or '_'",
            ));
        }
        let text = text_field("body", body)?;
        if let Err(wait) = self.messages.take(visitor.id.clone(), Instant::now()) {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "rate_limited",
                "too many messages; wait a moment before sending more",
            )
            .with_retry_after(wait));
        }
        let events = vec![IngestEvent::InboundMessage(InboundMessage {
            // Namespaced by visitor: one visitor cannot collide with another's ids.
            provider_id: format!("{}:{client_id}", visitor.id),
            sender: visitor.identity(),
            sender_name: Some(visitor.name.clone()),
            body: text,
            attachments: Vec::new(),
            sent_at_ms: None,
            metadata: serde_json::Value::Null,
        })];
        let outcomes = self
            .ingest
            .commit(PLUGIN_ID, PLUGIN_ID, events)
            .await
            .map_err(|e| {
                tracing::error!("webchat message not stored: {e}");
                AppError::new(
                    ErrorKind::Unavailable,
                    "ingest_failed",
                    "the message could not be stored; send it again",
                )
            })?;
        let event_id = match outcomes.first() {
            Some(
                IngestOutcome::Created { event_id, .. } | IngestOutcome::Duplicate { event_id },
            ) => event_id.clone(),
            _ => return Err(AppError::internal("webchat ingest returned no message")),
        };
        if let Some(IngestOutcome::Created {
            conversation_id,
            new_conversation: true,
            ..
        }) = outcomes.first()
        {
            let (this, conversation, visitor) =
                (self.clone(), conversation_id.clone(), visitor.clone());
            tokio::spawn(async move { this.greet(&conversation, &visitor).await });
        }
        let event = self.store.event(&event_id).await?;
        Ok(message_view(&event, &HashMap::new()))
    }

    /// The automatic greeting of a new webchat conversation, with the estimated wait.
    /// It waits briefly for routing to create the task, so the estimate knows the queue.
    async fn greet(&self, conversation_id: &str, visitor: &WebchatVisitor) {
        let mut estimate = None;
        if let Some(routing) = &self.routing {
            let day = self
                .store
                .tasks_since(start_of_day(now_ms()))
                .await
                .unwrap_or_default();
            for _ in 0..20 {
                estimate = routing
                    .estimate_wait(conversation_id, |queue| {
                        day.iter()
                            .filter(|t| t.queue_id == queue)
                            .filter_map(|t| t.answered_at.map(|a| (a - t.arrived_at).max(0) as u64))
                            .collect()
                    })
                    .await;
                if estimate.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let wait = estimate
            .map(describe_wait)
            .unwrap_or_else(|| "An agent will be with you as soon as possible.".to_string());
        let body = format!("Hi {}, thanks for getting in touch! {wait}", visitor.name);
        let event = self
            .store
            .append_event(NewEvent {
                channel: Some((PLUGIN_ID.into(), PLUGIN_ID.into())),
                identity: Some(visitor.identity()),
                delivery_status: Some(DeliveryStatus::Sent),
                direction: Direction::Out,
                ..NewEvent::internal(
                    conversation_id,
                    EventKind::Message,
                    body,
                    None,
                    json!({"auto": true, "estimated_wait_ms": estimate}),
                    self.clock.now_ms(),
                )
            })
            .await;
        match event {
            Ok(event) => {
                self.push(
                    &visitor.id,
                    json!({"type": "message", "message": message_view(&event, &HashMap::new())}),
                );
                self.notifier.timeline_event(&event);
            }
            Err(e) => tracing::warn!(
                conversation = conversation_id,
                "webchat greeting not stored: {e}"
            ),
        }
    }

    /// Publishes a message for the visitor's sockets; true when one is open here.
    fn push(&self, visitor: &str, message: Value) -> bool {
        self.notifier.publish(
            "webchat.visitor",
            Audience::Visitor(visitor.to_string()),
            message,
        );
        self.connected
            .lock()
            .expect("webchat sockets")
            .contains_key(visitor)
    }

    /// Delivers an agent's reply from the outbox: pushes it to the visitor's sockets. A
    /// visitor who is not connected reads it from the transcript when they come back, so
    /// either way the message is sent; `delivered` means a socket of theirs was open.
    pub async fn deliver(&self, row: &OutboxRow) -> Result<(), String> {
        let event = self
            .store
            .event(&row.event_id)
            .await
            .map_err(|e| e.to_string())?;
        let names = self.agent_names(std::slice::from_ref(&event)).await;
        let pushed = self.push(
            row.to.value(),
            json!({"type": "message", "message": message_view(&event, &names)}),
        );
        let status = if pushed {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Sent
        };
        self.store
            .outbox_sent(&row.id, &row.event_id, status, now_ms(), None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// An agent is typing in a conversation: tells its contact's webchat visitors
    /// (other channels have no typing indicator).
    pub async fn agent_typing(&self, conversation_id: &str) -> AppResult<()> {
        let conversation = self.store.conversation(conversation_id).await?;
        if conversation.last_channel.as_deref() != Some(PLUGIN_ID) {
            return Ok(());
        }
        let contact = self.store.contact(&conversation.contact_id).await?;
        for i in contact.identities.iter().filter(|i| i.kind == WEBCHAT) {
            self.push(&i.value, json!({"type": "typing"}));
        }
        Ok(())
    }

    /// The visitor is typing: tells the agents of their open conversation.
    pub async fn visitor_typing(&self, visitor: &WebchatVisitor) {
        let Ok(conversations) = self.store.contact_conversations(&visitor.contact_id).await else {
            return;
        };
        if let Some(c) = conversations
            .iter()
            .filter(|c| c.status != ConversationStatus::Resolved)
            .max_by_key(|c| c.updated_at)
        {
            self.notifier.conversation(
                "webchat.typing",
                &c.id,
                json!({"conversation_id": c.id, "visitor_id": visitor.id}),
            );
        }
    }

    /// Opens a socket's feed for the visitor: every message for them from now on.
    pub fn connect(&self, visitor: &WebchatVisitor) -> VisitorFeed {
        let subscription = self.notifier.bus().subscribe(None);
        *self
            .connected
            .lock()
            .expect("webchat sockets")
            .entry(visitor.id.clone())
            .or_default() += 1;
        VisitorFeed {
            visitor: visitor.id.clone(),
            subscription,
            connected: self.connected.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_like_a_person_would_say_them() {
        assert_eq!(describe_wait(0), "An agent is joining you now.");
        assert_eq!(
            describe_wait(45_000),
            "The estimated wait is under a minute."
        );
        assert_eq!(
            describe_wait(60_000),
            "The estimated wait is about 1 minute."
        );
        assert_eq!(
            describe_wait(61_000),
            "The estimated wait is about 2 minutes."
        );
    }

    #[test]
    fn new_chats_are_limited_per_address() {
        let limits = WebchatLimits::default();
        let starts = Buckets::per_minute(limits.starts_per_minute, limits.starts_per_minute);
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        for _ in 0..limits.starts_per_minute {
            assert!(starts.allow(a, t0));
        }
        assert!(!starts.allow(a, t0), "over the limit");
        assert!(starts.allow(b, t0), "another address is not affected");
        assert!(
            starts.allow(a, t0 + std::time::Duration::from_secs(3)),
            "one more every three seconds"
        );
    }

    fn feed(bus: &crate::events::LocalBus, visitor: &str) -> VisitorFeed {
        use crate::events::EventBus;
        let connected: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        *connected.lock().unwrap().entry(visitor.into()).or_default() += 1;
        VisitorFeed {
            visitor: visitor.into(),
            subscription: bus.subscribe(None),
            connected,
        }
    }

    #[tokio::test]
    async fn pushes_reach_every_socket_of_the_visitor_and_only_theirs() {
        use crate::events::EventBus;
        let bus = crate::events::LocalBus::default();
        let (mut a1, mut a2, mut b) = (feed(&bus, "a"), feed(&bus, "a"), feed(&bus, "b"));
        bus.publish("webchat.visitor", Audience::Visitor("a".into()), json!(1));
        bus.publish("timeline.created", Audience::Everyone, json!("agents only"));
        bus.publish("webchat.visitor", Audience::Visitor("b".into()), json!(2));
        assert_eq!(a1.next().await, Some(json!(1)));
        assert_eq!(a2.next().await, Some(json!(1)));
        assert_eq!(
            b.next().await,
            Some(json!(2)),
            "b skips a's and agents' events"
        );
        let connected = b.connected.clone();
        drop(b);
        assert!(
            connected.lock().unwrap().is_empty(),
            "closed sockets are forgotten"
        );
    }
}
