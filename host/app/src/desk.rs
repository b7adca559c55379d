//! The agent desk's use cases beyond the raw resources: my conversations with unread
//! counts and waiting times, read markers, internal notes, the channels a reply may go
//! out on, dispositions and resolving, the drafted hand-off context, the customer
//! panel's profile and contact edits.
//!
//! They shape what the store and the routing service know; the hand-off draft's rules
//! live in `switchboard_core::handoff`.

use std::collections::HashMap;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::handoff;
use switchboard_core::{ConsentState, ConversationStatus, Direction, EventKind};
use switchboard_plugin_host::BoxFuture;
use switchboard_store::{Agent, ContactView, ConversationRow, NewEvent, Store, TimelineEvent};

use crate::accounts::is_supervisor;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::notify::Notifier;
use crate::routing::{RoutingService, worked_by};
use crate::text::text_field;

/// An outcome an agent records when resolving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disposition {
    /// Machine code, e.g. `resolved`.
    pub code: String,
    /// What agents see, e.g. `Resolved`.
    pub label: String,
}

/// The codes a fresh installation offers.
pub fn default_dispositions() -> Vec<Disposition> {
    [
        ("resolved", "Resolved"),
        ("follow_up", "Follow-up needed"),
        ("escalated", "Escalated"),
        ("billing_adjusted", "Billing adjusted"),
        ("no_response", "No response from customer"),
        ("wrong_contact", "Wrong contact"),
        ("spam", "Spam"),
    ]
    .into_iter()
    .map(|(code, label)| Disposition {
        code: code.into(),
        label: label.into(),
    })
    .collect()
}

/// Told when a conversation with a call is resolved, so the call's record carries
/// the disposition (voice implements it).
pub trait CallObserver: Send + Sync {
    /// `conversation_id` was resolved with disposition `code`.
    fn disposition<'a>(&'a self, conversation_id: &'a str, code: &'a str) -> BoxFuture<'a, ()>;
}

/// Told after a conversation is resolved, with the queue it was in and the agent
/// who resolved it (surveys implement it: the customer is asked then).
pub trait ResolveObserver: Send + Sync {
    /// `conversation_id` was resolved by `agent_id`; its task was in `queue_id`.
    fn resolved<'a>(
        &'a self,
        conversation_id: &'a str,
        queue_id: Option<&'a str>,
        agent_id: &'a str,
    ) -> BoxFuture<'a, ()>;
}

/// The desk's use cases.
pub struct Desk {
    store: Store,
    channels: Arc<Channels>,
    notifier: Notifier,
    routing: Option<Arc<RoutingService>>,
    dispositions: Vec<Disposition>,
    calls: OnceLock<Arc<dyn CallObserver>>,
    resolves: OnceLock<Arc<dyn ResolveObserver>>,
    clock: Clock,
}

impl Desk {
    /// The desk over these parts, offering `dispositions` when resolving and stamping
    /// what it records with `clock`.
    pub fn new(
        store: Store,
        channels: Arc<Channels>,
        notifier: Notifier,
        routing: Option<Arc<RoutingService>>,
        dispositions: Vec<Disposition>,
        clock: Clock,
    ) -> Desk {
        Desk {
            store,
            channels,
            notifier,
            routing,
            dispositions,
            calls: OnceLock::new(),
            resolves: OnceLock::new(),
            clock,
        }
    }

    /// Registers who records dispositions on calls (voice, when it runs).
    pub fn observe_calls(&self, observer: Arc<dyn CallObserver>) {
        let _ = self.calls.set(observer);
    }

    /// Registers who is told of resolves (surveys).
    pub fn observe_resolves(&self, observer: Arc<dyn ResolveObserver>) {
        let _ = self.resolves.set(observer);
    }

    /// The outcomes agents choose from when resolving.
    pub fn dispositions(&self) -> &[Disposition] {
        &self.dispositions
    }

    /// What `agent_id` is working on: each conversation with its contact, task, channels
    /// used, unread count and since when the customer waits; longest-waiting first.
    pub async fn my_conversations(&self, agent_id: &str) -> AppResult<Vec<Value>> {
        let Some(routing) = &self.routing else {
            return Ok(Vec::new());
        };
        let mut items = Vec::new();
        for task in routing.tasks_held_by(agent_id).await {
            let Some(conversation_id) = task.attributes.get("conversation_id") else {
                continue;
            };
            let conversation = self.store.conversation(conversation_id).await?;
            let contact = self.store.contact(&conversation.contact_id).await?;
            let summary = self.store.desk_summary(agent_id, conversation_id).await?;
            items.push(json!({
                "display": conversation.display(),
                "conversation": conversation,
                "contact": {"id": contact.id, "display_name": contact.display_name},
                "task": {
                    "id": task.id, "state": task.state.name(), "channel": task.channel,
                    "queue": task.queue, "assigned_at": task.assigned_at,
                },
                "channels": summary.channels,
                "unread": summary.unread,
                "waiting_since": summary.waiting_since,
                "last_event": summary.last_event,
            }));
        }
        // Longest-waiting customers first, then the most recently active.
        items.sort_by_key(|i| {
            (
                i["waiting_since"].as_i64().unwrap_or(i64::MAX),
                -i["conversation"]["updated_at"].as_i64().unwrap_or(0),
            )
        });
        Ok(items)
    }

    /// `agent_id` has read the conversation up to now.
    pub async fn mark_read(&self, agent_id: &str, conversation_id: &str) -> AppResult<()> {
        self.store
            .mark_read(agent_id, conversation_id, self.clock.now_ms())
            .await?;
        Ok(())
    }

    /// An internal note on the conversation's timeline.
    pub async fn add_note(
        &self,
        agent_id: &str,
        conversation_id: &str,
        body: &str,
    ) -> AppResult<TimelineEvent> {
        let text = text_field("body", body)?;
        let event = self
            .store
            .append_event(NewEvent::internal(
                conversation_id,
                EventKind::Note,
                text,
                Some(agent_id),
                json!({}),
                self.clock.now_ms(),
            ))
            .await?;
        self.notifier.timeline_event(&event);
        Ok(event)
    }

    /// The channels a reply may go out on, each with the identity it would reach and
    /// whether consent allows it, and the default (the conversation's current one).
    pub async fn reply_channels(&self, conversation_id: &str) -> AppResult<Value> {
        let conversation = self.store.conversation(conversation_id).await?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let mut channels = Vec::new();
        for plugin_id in self.channels.plugin_ids() {
            let Ok(info) = self.channels.info(&plugin_id).await else {
                continue;
            };
            // The identity a reply would go to: the most recently linked of the kind.
            let Some(identity) = contact.latest_identity(&info.identity_kind) else {
                continue;
            };
            let opted_out = contact.consents.iter().any(|c| {
                c.identity.kind() == identity.kind
                    && c.identity.value() == identity.value
                    && c.channel == info.channel
                    && c.state == ConsentState::OptedOut
            });
            channels.push(json!({
                "plugin_id": plugin_id,
                "channel": info.channel,
                "display_name": info.display_name,
                "identity": format!("{}:{}", identity.kind, identity.value),
                "allowed": !opted_out,
                "reason": opted_out.then_some("opted_out"),
            }));
        }
        let default = conversation.last_plugin_id.filter(|p| {
            channels
                .iter()
                .any(|c| c["plugin_id"] == p.as_str() && c["allowed"] == true)
        });
        Ok(json!({ "channels": channels, "default": default }))
    }

    /// Records the outcome, resolves the conversation and completes its task. Only the
    /// agent holding the task (or a supervisor) may.
    pub async fn resolve(
        &self,
        agent: &Agent,
        conversation_id: &str,
        disposition: &str,
        note: Option<&str>,
    ) -> AppResult<(ConversationRow, TimelineEvent)> {
        let Some(disposition) = self
            .dispositions
            .iter()
            .find(|d| d.code == disposition)
            .cloned()
        else {
            return Err(AppError::bad_request(format!(
                "unknown disposition {disposition:?}; GET /api/v1/dispositions lists them"
            )));
        };
        let note = match note.map(str::trim) {
            Some(n) if !n.is_empty() => Some(text_field("note", n)?),
            _ => None,
        };
        let task = match &self.routing {
            Some(r) => r.task_of_conversation(conversation_id).await,
            None => None,
        };
        if let Some(task) = &task {
            let holder_is_me = worked_by(&task.state).is_some_and(|a| a.as_str() == agent.id);
            if !holder_is_me && !is_supervisor(agent) {
                return Err(AppError::forbidden("another agent holds this conversation"));
            }
        }
        let body_text = match &note {
            Some(n) => format!("{} — {n}", disposition.label),
            None => disposition.label.clone(),
        };
        let (conversation, event) = self
            .store
            .resolve_with_disposition(NewEvent::internal(
                conversation_id,
                EventKind::Disposition,
                body_text,
                Some(&agent.id),
                json!({"code": disposition.code, "label": disposition.label, "note": note}),
                self.clock.now_ms(),
            ))
            .await?;
        self.notifier.timeline_event(&event);
        if let Some(calls) = self.calls.get() {
            calls.disposition(conversation_id, &disposition.code).await;
        }
        let queue = task.as_ref().map(|t| t.queue.as_str().to_string());
        if let (Some(routing), Some(task)) = (&self.routing, task) {
            routing.complete_task(task.id.as_str()).await?;
        }
        self.notifier.conversation(
            "conversation.updated",
            conversation_id,
            json!({"conversation_id": conversation_id, "status": conversation.status}),
        );
        if let Some(observer) = self.resolves.get() {
            observer
                .resolved(conversation_id, queue.as_deref(), &agent.id)
                .await;
        }
        Ok((conversation, event))
    }

    /// The hand-off context drafted from the conversation so far.
    pub async fn handoff_draft(&self, conversation_id: &str) -> AppResult<Value> {
        let conversation = self.store.conversation(conversation_id).await?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let timeline = self.store.conversation_timeline(conversation_id).await?;
        let draft = handoff::draft(
            &crate::text::utterances(&timeline),
            contact.display_name.as_deref(),
        );
        Ok(json!(draft))
    }

    /// Changes a contact's name and attributes (language, preferred channel…), on
    /// behalf of `agent_id`.
    pub async fn update_contact(
        &self,
        agent_id: &str,
        contact_id: &str,
        display_name: Option<Option<String>>,
        attributes: Option<serde_json::Map<String, Value>>,
    ) -> AppResult<ContactView> {
        if let Some(Some(name)) = &display_name
            && name.chars().count() > 200
        {
            return Err(AppError::bad_request(
                "display_name is longer than 200 characters",
            ));
        }
        let contact = self
            .store
            .update_contact(contact_id, display_name, attributes, self.clock.now_ms())
            .await?;
        self.store
            .audit(agent_id, "contact.update", Some(contact_id), json!(null))
            .await?;
        Ok(contact)
    }

    /// The customer panel: the contact, preferred channel and language, their
    /// conversations with channels and outcomes, and the last interaction.
    pub async fn profile(&self, id: &str) -> AppResult<Value> {
        let id = id.to_string();
        let contact = self.store.contact(&id).await?;
        let conversations = self.store.contact_conversations(&id).await?;
        let events = self.store.contact_timeline(&id, 1000, None).await?;
        let mut channels: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut inbound_by_channel: HashMap<&str, u32> = HashMap::new();
        let mut dispositions: HashMap<&str, &TimelineEvent> = HashMap::new();
        let mut last_author: HashMap<&str, &str> = HashMap::new();
        for e in &events {
            let Some(conv) = e.conversation_id.as_deref() else {
                continue;
            };
            if e.kind == EventKind::Message
                && let Some(c) = e.channel.as_deref()
            {
                let list = channels.entry(conv).or_default();
                if !list.contains(&c) {
                    list.push(c);
                }
                if e.direction == Direction::In {
                    *inbound_by_channel.entry(c).or_default() += 1;
                }
            }
            if e.kind == EventKind::Disposition {
                dispositions.insert(conv, e);
            }
            if e.direction == Direction::Out
                && let Some(a) = e.author_agent_id.as_deref()
            {
                last_author.insert(conv, a);
            }
        }
        let attribute = |key: &str| contact.attributes.get(key).and_then(Value::as_str);
        let preferred = attribute("preferred_channel")
            .map(str::to_string)
            .or_else(|| {
                inbound_by_channel
                    .iter()
                    .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
                    .map(|(c, _)| c.to_string())
            });
        let mut agent_names: HashMap<String, String> = HashMap::new();
        for a in self.store.list_agents().await? {
            agent_names.insert(a.id, a.name);
        }
        let outcome = |conv: &str| {
            dispositions.get(conv).map(|e| {
                json!({"code": e.data.get("code"), "label": e.data.get("label"),
                "note": e.data.get("note"), "at": e.occurred_at})
            })
        };
        let listed: Vec<Value> = conversations
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "display_id": c.display_id, "display": c.display(),
                    "status": c.status, "opened_at": c.opened_at, "resolved_at": c.resolved_at,
                    "channels": channels.get(c.id.as_str()).cloned().unwrap_or_default(),
                    "disposition": outcome(&c.id),
                })
            })
            .collect();
        let last = conversations
            .iter()
            .filter(|c| c.status == ConversationStatus::Resolved)
            .max_by_key(|c| c.resolved_at.unwrap_or(c.updated_at));
        let last_interaction = last.map(|c| {
            let agent = last_author
                .get(c.id.as_str())
                .map(|a| json!({"id": a, "name": agent_names.get(*a)}));
            let disposition = dispositions.get(c.id.as_str());
            let summary = disposition
                .and_then(|e| e.data.get("note").and_then(Value::as_str))
                .map(str::to_string)
                .or_else(|| {
                    events
                        .iter()
                        .filter(|e| {
                            e.conversation_id.as_deref() == Some(c.id.as_str())
                                && e.kind == EventKind::Message
                                && e.direction == Direction::In
                        })
                        .map(|e| e.body.clone())
                        .next()
                });
            json!({
                "conversation_id": c.id, "display": c.display(),
                "channel": c.last_channel, "at": c.resolved_at.unwrap_or(c.updated_at),
                "agent": agent, "disposition": outcome(&c.id), "summary": summary,
            })
        });
        Ok(json!({
            "contact": contact,
            "preferred_channel": preferred,
            "language": attribute("language"),
            "conversations": listed,
            "last_interaction": last_interaction,
        }))
    }

    /// The agent's e-mail signature, `None` when they have none.
    pub async fn signature(&self, agent_id: &str) -> AppResult<Option<String>> {
        Ok(self.store.agent_signature(agent_id).await?)
    }

    /// Sets the agent's e-mail signature (see [`signature_text`]); an empty one
    /// removes it. Returns what is kept.
    pub async fn set_signature(&self, agent_id: &str, value: &str) -> AppResult<Option<String>> {
        let text = signature_text(value)?;
        self.store
            .set_agent_signature(agent_id, text.as_deref())
            .await?;
        Ok(text)
    }
}

/// The longest e-mail signature, in characters.
pub const MAX_SIGNATURE_CHARS: usize = 2000;

/// An e-mail signature as it is kept: plain text with `\n` line ends, trailing
/// spaces and surrounding blank lines removed, at most [`MAX_SIGNATURE_CHARS`];
/// `None` when nothing is left. Control characters other than line ends and tabs
/// are refused (a signature is text, not a place for terminal escapes).
pub fn signature_text(value: &str) -> AppResult<Option<String>> {
    let unified = value.replace("\r\n", "\n").replace('\r', "\n");
    if unified
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::bad_request(
            "the signature may not contain control characters",
        ));
    }
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    let text = lines.join("\n").trim_matches('\n').to_string();
    if text.chars().count() > MAX_SIGNATURE_CHARS {
        return Err(AppError::bad_request(format!(
            "the signature is longer than {MAX_SIGNATURE_CHARS} characters"
        )));
    }
    Ok((!text.trim().is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_plain_bounded_text() {
        assert_eq!(
            signature_text("\r\n  Sam Agent  \r\nSupport\t\n\n").unwrap(),
            Some("  Sam Agent\nSupport".to_string())
        );
        assert_eq!(signature_text(" \n \n").unwrap(), None);
        assert_eq!(signature_text("").unwrap(), None);
        assert!(signature_text("bell\u{7}").is_err());
        assert!(signature_text(&"é".repeat(MAX_SIGNATURE_CHARS)).is_ok());
        assert!(signature_text(&"x".repeat(MAX_SIGNATURE_CHARS + 1)).is_err());
        assert_eq!(
            signature_text("<b>not markup</b>").unwrap().as_deref(),
            Some("<b>not markup</b>"),
            "kept as text; it is never read as HTML"
        );
    }

    #[test]
    fn default_dispositions_have_unique_codes() {
        let d = default_dispositions();
        let mut codes: Vec<_> = d.iter().map(|d| &d.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), d.len());
    }
}
