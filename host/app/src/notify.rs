//! Publishing what changed to the people concerned.
//!
//! Who sees a change to a conversation depends on routing: supervisors always, and
//! the agents holding its task once it is assigned. [`Notifier`] pairs the event bus
//! with that knowledge so use cases publish without asking routing themselves.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_store::TimelineEvent;

use crate::events::{Audience, EventBus};
use crate::routing::RoutingService;

/// The event bus plus routing's view of who works on what. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    bus: Arc<dyn EventBus>,
    routing: Option<Arc<RoutingService>>,
}

impl Notifier {
    /// A notifier over `bus`; without routing, conversation changes go to supervisors.
    pub fn new(bus: Arc<dyn EventBus>, routing: Option<Arc<RoutingService>>) -> Notifier {
        Notifier { bus, routing }
    }

    /// The bus itself, for subscribers.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Publishes an event.
    pub fn publish(&self, kind: &str, audience: Audience, data: Value) {
        self.bus.publish(kind, audience, data)
    }

    /// Who sees changes to a conversation: supervisors, and (once routing assigns it)
    /// the agents holding its task.
    pub fn conversation_audience(&self, conversation_id: &str) -> Audience {
        match &self.routing {
            Some(r) => r.audience(conversation_id),
            None => Audience::Supervisors,
        }
    }

    /// Publishes `kind` to the audience of `conversation_id`.
    pub fn conversation(&self, kind: &str, conversation_id: &str, data: Value) {
        self.publish(kind, self.conversation_audience(conversation_id), data)
    }

    /// Tells the conversation's audience that an event was added to its timeline.
    pub fn timeline_event(&self, event: &TimelineEvent) {
        if let Some(conversation) = &event.conversation_id {
            self.conversation(
                "timeline.created",
                conversation,
                json!({"conversation_id": conversation, "contact_id": event.contact_id,
                    "event_id": event.id, "kind": event.kind}),
            );
        }
    }
}
