//! `/api/v1` routes the agent desk needs beyond the raw resources: my conversations
//! with unread counts and waiting times, read markers, internal notes, the channels a
//! reply may go out on, dispositions and resolving, the drafted hand-off context, and
//! the customer panel's profile.
//!
//! Handlers shape what the store and the routing service know; the hand-off draft's
//! rules live in `switchboard_core::handoff`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::handoff::{self, Utterance};
use switchboard_core::{ConsentState, ConversationStatus, Direction, EventKind, Role};
use switchboard_store::{NewEvent, TimelineEvent};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};

/// The longest note, reply or chat message accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

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

pub(crate) fn text_field(name: &str, value: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{name} must not be empty")));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::bad_request(format!(
            "{name} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(value.to_string())
}

fn is_supervisor(auth: &Auth) -> bool {
    matches!(auth.agent.role, Role::Supervisor | Role::Admin)
}

/// `GET /api/v1/agents/me/conversations`: what I am working on.
pub async fn my_conversations(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let Some(routing) = &state.routing else {
        return Ok(Json(json!({"conversations": []})));
    };
    let mut items = Vec::new();
    for task in routing.tasks_held_by(&auth.agent.id).await {
        let Some(conversation_id) = task.attributes.get("conversation_id") else {
            continue;
        };
        let conversation = state.store.conversation(conversation_id).await?;
        let contact = state.store.contact(&conversation.contact_id).await?;
        let summary = state
            .store
            .desk_summary(&auth.agent.id, conversation_id)
            .await?;
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
    Ok(Json(json!({ "conversations": items })))
}

/// `POST /api/v1/conversations/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .store
        .mark_read(&auth.agent.id, &id, crate::now_ms())
        .await?;
    Ok(Json(json!({"unread": 0})))
}

/// `POST /api/v1/conversations/{id}/notes` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    body: String,
}

/// `POST /api/v1/conversations/{id}/notes`: an internal note.
pub async fn add_note(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let text = text_field("body", &body.body)?;
    let event = state
        .store
        .append_event(NewEvent::internal(
            &id,
            EventKind::Note,
            text,
            Some(&auth.agent.id),
            json!({}),
            crate::now_ms(),
        ))
        .await?;
    publish_event(&state, &event);
    Ok((StatusCode::CREATED, Json(json!({ "event": event }))))
}

/// Tells the conversation's audience that an event was added.
pub(crate) fn publish_event(state: &AppState, event: &TimelineEvent) {
    if let Some(conversation) = &event.conversation_id {
        state.realtime.publish(
            "timeline.created",
            state.conversation_audience(conversation),
            json!({"conversation_id": conversation, "contact_id": event.contact_id,
                "event_id": event.id, "kind": event.kind}),
        );
    }
}

/// `GET /api/v1/conversations/{id}/reply-channels`.
pub async fn reply_channels(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let conversation = state.store.conversation(&id).await?;
    let contact = state.store.contact(&conversation.contact_id).await?;
    let mut channels = Vec::new();
    for plugin_id in state.channel_plugins().await {
        let Ok(info) = state.channel_info(&plugin_id).await else {
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
    Ok(Json(json!({ "channels": channels, "default": default })))
}

/// `GET /api/v1/dispositions`.
pub async fn dispositions(State(state): State<AppState>, _auth: Auth) -> Json<Value> {
    Json(json!({ "dispositions": state.config.dispositions }))
}

/// `POST /api/v1/conversations/{id}/resolve` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    disposition: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/conversations/{id}/resolve`: record the outcome, resolve the
/// conversation and complete its task.
pub async fn resolve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ResolveBody>,
) -> ApiResult<Json<Value>> {
    let Some(disposition) = state
        .config
        .dispositions
        .iter()
        .find(|d| d.code == body.disposition)
        .cloned()
    else {
        return Err(ApiError::bad_request(format!(
            "unknown disposition {:?}; GET /api/v1/dispositions lists them",
            body.disposition
        )));
    };
    let note = match body.note.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => Some(text_field("note", n)?),
        _ => None,
    };
    let task = match &state.routing {
        Some(r) => r.task_of_conversation(&id).await,
        None => None,
    };
    if let Some(task) = &task {
        let holder_is_me =
            crate::routing::worked_by(&task.state).is_some_and(|a| a.as_str() == auth.agent.id);
        if !holder_is_me && !is_supervisor(&auth) {
            return Err(ApiError::forbidden("another agent holds this conversation"));
        }
    }
    let body_text = match &note {
        Some(n) => format!("{} — {n}", disposition.label),
        None => disposition.label.clone(),
    };
    let (conversation, event) = state
        .store
        .resolve_with_disposition(NewEvent::internal(
            &id,
            EventKind::Disposition,
            body_text,
            Some(&auth.agent.id),
            json!({"code": disposition.code, "label": disposition.label, "note": note}),
            crate::now_ms(),
        ))
        .await?;
    publish_event(&state, &event);
    if let Some(voice) = &state.voice {
        voice.note_disposition(&id, &disposition.code).await;
    }
    if let (Some(routing), Some(task)) = (&state.routing, task) {
        let t = task.id.clone();
        routing
            .apply(|e, now| {
                // Already gone (completed by someone else a moment ago) is fine.
                if e.task(&t).is_some() {
                    e.complete(now, &t)?;
                }
                Ok(())
            })
            .await?;
    }
    state.realtime.publish(
        "conversation.updated",
        state.conversation_audience(&id),
        json!({"conversation_id": id, "status": conversation.status}),
    );
    Ok(Json(
        json!({ "conversation": conversation, "event": event }),
    ))
}

/// `GET /api/v1/conversations/{id}/handoff-draft`.
pub async fn handoff_draft(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let conversation = state.store.conversation(&id).await?;
    let contact = state.store.contact(&conversation.contact_id).await?;
    let timeline = state.store.conversation_timeline(&id).await?;
    let draft = handoff::draft(&utterances(&timeline), contact.display_name.as_deref());
    Ok(Json(json!(draft)))
}

fn utterances(timeline: &[TimelineEvent]) -> Vec<Utterance<'_>> {
    timeline
        .iter()
        .map(|e| Utterance {
            direction: e.direction,
            kind: e.kind,
            body: &e.body,
            channel: e.channel.as_deref(),
            automatic: e.data.get("auto").is_some_and(|v| v == true),
        })
        .collect()
}

/// `GET /api/v1/contacts/{id}/profile`: the customer panel.
pub async fn profile(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let contact = state.store.contact(&id).await?;
    let conversations = state.store.contact_conversations(&id).await?;
    let events = state.store.contact_timeline(&id, 1000, None).await?;
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
    for a in state.store.list_agents().await? {
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
    Ok(Json(json!({
        "contact": contact,
        "preferred_channel": preferred,
        "language": attribute("language"),
        "conversations": listed,
        "last_interaction": last_interaction,
    })))
}

/// `PATCH /api/v1/contacts/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default, with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default)]
    attributes: Option<serde_json::Map<String, Value>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/v1/contacts/{id}`: name and attributes (language, preferred channel…).
pub async fn update_contact(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ContactPatch>,
) -> ApiResult<Json<Value>> {
    if let Some(Some(name)) = &body.display_name
        && name.chars().count() > 200
    {
        return Err(ApiError::bad_request(
            "display_name is longer than 200 characters",
        ));
    }
    let contact = state
        .store
        .update_contact(&id, body.display_name, body.attributes, crate::now_ms())
        .await?;
    state
        .store
        .audit(&auth.agent.id, "contact.update", Some(&id), json!(null))
        .await?;
    Ok(Json(json!(contact)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(text_field("body", "  hi ").unwrap(), "hi");
        assert!(text_field("body", "   ").is_err());
        assert!(text_field("body", &"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(text_field("body", &"é".repeat(MAX_TEXT_CHARS)).is_ok());
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
