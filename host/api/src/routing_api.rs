//! `/api/v1` routing routes: queues, presence, agent profiles, offers,
//! reservations and task lifecycle.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{EventKind, HandoffContext, Role};
use switchboard_routing::{
    CapacityProfile, Engine, Queue, QueueId, ReservationId, RoutingStep, Task, TaskId,
};
use switchboard_store::NewEvent;

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::routing::{HANDOFF_ATTRIBUTE, RoutingService, parse_presence, valid_queue_name};

pub(crate) fn routing(state: &AppState) -> ApiResult<&std::sync::Arc<RoutingService>> {
    state.routing.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "routing_off",
            "routing is not running",
        )
    })
}

fn is_supervisor(auth: &Auth) -> bool {
    matches!(auth.agent.role, Role::Supervisor | Role::Admin)
}

/// `me` or an id; only supervisors may act for someone else.
fn agent_id(auth: &Auth, id: &str) -> ApiResult<String> {
    if id == "me" || id == auth.agent.id {
        Ok(auth.agent.id.clone())
    } else if is_supervisor(auth) {
        Ok(id.to_string())
    } else {
        Err(ApiError::forbidden("agents may only change themselves"))
    }
}

/// `GET /api/v1/queues`.
pub async fn list_queues(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "queues": routing(&state)?.queues().await })))
}

/// A routing step in the API: seconds, and queue names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    after_secs: u64,
    #[serde(default)]
    min_proficiency: Option<u8>,
    #[serde(default)]
    overflow_queue: Option<String>,
}

/// `POST /api/v1/queues` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    name: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    required_skills: Vec<(String, u8)>,
    #[serde(default)]
    sla_target_secs: Option<u64>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    steps: Vec<StepBody>,
}

/// `POST /api/v1/queues` (admin): create or replace a queue; its id is its name.
pub async fn create_queue(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<QueueBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_admin()?;
    if !valid_queue_name(&body.name) {
        return Err(ApiError::bad_request(
            "queue name: 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    let mut queue = Queue::new(QueueId::from(body.name.as_str()), body.name.clone());
    queue.channels = body.channels;
    queue.required_skills = body.required_skills;
    if let Some(s) = body.sla_target_secs {
        queue.sla_target_ms = s * 1000;
    }
    queue.priority = body.priority;
    queue.steps = body
        .steps
        .into_iter()
        .map(|s| RoutingStep {
            after_ms: s.after_secs * 1000,
            min_proficiency: s.min_proficiency,
            overflow_queue: s.overflow_queue.map(|q| QueueId::from(q.as_str())),
        })
        .collect();
    routing(&state)?.upsert_queue(queue.clone()).await?;
    Ok((StatusCode::CREATED, Json(json!(queue))))
}

/// `GET /api/v1/queues/{id}/stats`.
pub async fn queue_stats(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(routing(&state)?.queue_stats(&id).await?))
}

/// `PUT /api/v1/agents/{id}/presence` body.
#[derive(Deserialize)]
pub struct PresenceBody {
    status: String,
    reason: Option<String>,
}

/// `PUT /api/v1/agents/{id}/presence` (`me` works).
pub async fn set_presence(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<PresenceBody>,
) -> ApiResult<Json<Value>> {
    let id = agent_id(&auth, &id)?;
    let presence = parse_presence(&body.status, body.reason)?;
    Ok(Json(routing(&state)?.set_presence(&id, presence).await?))
}

/// `PUT /api/v1/agents/{id}/routing` body (admin).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    skills: Option<Vec<(String, u8)>>,
    capacity: Option<CapacityProfile>,
}

/// `PUT /api/v1/agents/{id}/routing`: skills and capacity profile.
pub async fn set_profile(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ProfileBody>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    if let Some(skills) = &body.skills
        && skills.iter().any(|(_, p)| !(1..=5).contains(p))
    {
        return Err(ApiError::bad_request("proficiency must be 1-5"));
    }
    Ok(Json(
        routing(&state)?
            .set_agent_profile(&id, body.skills, body.capacity)
            .await?,
    ))
}

/// `GET /api/v1/agents/{id}/offers` (`me` works).
pub async fn offers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = agent_id(&auth, &id)?;
    Ok(Json(routing(&state)?.offers(&id).await))
}

async fn own_reservation(state: &AppState, auth: &Auth, id: &str) -> ApiResult<()> {
    match routing(state)?.reservation_agent(id).await {
        Some(agent) if agent == auth.agent.id || is_supervisor(auth) => Ok(()),
        Some(_) => Err(ApiError::forbidden("this offer is for another agent")),
        None => Err(ApiError::not_found("no such pending offer")),
    }
}

/// `POST /api/v1/reservations/{id}/accept` and `/reject`.
pub async fn reservation_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    own_reservation(&state, &auth, &id).await?;
    let r = ReservationId::from(id.as_str());
    let service = routing(&state)?;
    match action.as_str() {
        "accept" => {
            let task = service.reservation_task(&id).await;
            service.apply(|e, now| Ok(e.accept(now, &r)?)).await?;
            if let Some(task) = task {
                handoff_received(&state, &auth, &task).await;
            }
        }
        "reject" => service.apply(|e, now| Ok(e.reject(now, &r)?)).await?,
        _ => return Err(ApiError::not_found("no such route")),
    }
    Ok(Json(json!({ "reservation": id, "done": action })))
}

/// After an agent accepted a transferred task: records on the timeline whether the
/// hand-off reached them with context (the offer showed it), for the context
/// transfer rate.
async fn handoff_received(state: &AppState, auth: &Auth, task: &Task) {
    let (Some(event_id), Some(conversation)) = (
        task.attributes.get(HANDOFF_ATTRIBUTE),
        task.attributes.get("conversation_id"),
    ) else {
        return;
    };
    let with_context = match state.store.event(event_id).await {
        Ok(e) => e
            .data
            .get("context")
            .and_then(|c| serde_json::from_value::<HandoffContext>(c.clone()).ok())
            .is_some_and(|c| !c.is_empty()),
        Err(_) => false,
    };
    let body = if with_context {
        format!("{} took over with the hand-off context", auth.agent.name)
    } else {
        format!("{} took over without context", auth.agent.name)
    };
    let recorded = state
        .store
        .append_event(NewEvent::internal(
            conversation,
            EventKind::Transfer,
            body,
            Some(&auth.agent.id),
            json!({"handoff": "received", "context_received": with_context,
                "handoff_event": event_id, "task_id": task.id}),
            crate::now_ms(),
        ))
        .await;
    match recorded {
        Ok(e) => crate::desk::publish_event(state, &e),
        Err(e) => tracing::warn!(task = %task.id.as_str(), "hand-off receipt not recorded: {e}"),
    }
}

/// Refuses unless the caller holds the task (supervisors may act on any).
/// Checked inside the engine step, so a task reassigned a moment ago cannot be
/// completed or transferred by its former holder.
fn own_task(engine: &Engine, auth: &Auth, task: &TaskId) -> ApiResult<()> {
    match engine.holder(task) {
        Some(agent) if agent.as_str() == auth.agent.id => Ok(()),
        _ if is_supervisor(auth) => Ok(()),
        Some(_) => Err(ApiError::forbidden("another agent holds this task")),
        None => Err(ApiError::not_found(
            "no live task held by an agent with that id",
        )),
    }
}

/// `POST /api/v1/tasks/{id}/wrapup` and `/complete`.
pub async fn task_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let t = TaskId::from(id.as_str());
    let service = routing(&state)?;
    let wrap = match action.as_str() {
        "wrapup" => true,
        "complete" => false,
        _ => return Err(ApiError::not_found("no such route")),
    };
    service
        .apply(|e, now| {
            own_task(e, &auth, &t)?;
            Ok(if wrap {
                e.wrap_up(now, &t)
            } else {
                e.complete(now, &t)
            }?)
        })
        .await?;
    Ok(Json(json!({ "task": id, "done": action })))
}

/// `POST /api/v1/tasks/{id}/transfer` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    queue: Option<String>,
    agent_id: Option<String>,
    /// The warm hand-off: what the receiver needs to know.
    #[serde(default)]
    context: Option<HandoffContext>,
}

/// `POST /api/v1/tasks/{id}/transfer`: to a queue or an agent, with the context
/// summary recorded on the timeline and pinned to the task for the receiver.
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<TransferBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(transfer_task(&state, &auth, &id, body).await?))
}

/// A transfer of task `id` by `auth`'s agent (the route above, and call transfers).
pub async fn transfer_task(
    state: &AppState,
    auth: &Auth,
    id: &str,
    body: TransferBody,
) -> ApiResult<Value> {
    let id = id.to_string();
    let (to_queue, to_agent) = (body.queue.clone(), body.agent_id.clone());
    let target = RoutingService::target(body.queue, body.agent_id)?;
    let t = TaskId::from(id.as_str());
    let service = routing(state)?;
    let task = service
        .task(&id)
        .await
        .ok_or_else(|| ApiError::not_found("no live task with that id"))?;
    // Checked here so nothing is recorded for a transfer that cannot happen, and
    // again inside the engine step against a concurrent change.
    if let Some(q) = &to_queue
        && service.task_queue_exists(q).await.is_none()
    {
        return Err(ApiError::not_found(format!("no queue {q:?}")));
    }
    let to_agent_name = match &to_agent {
        Some(a) => Some(state.store.agent(a).await?.name),
        None => None,
    };
    let context = body.context.map(HandoffContext::cleaned);
    let handoff = match task.attributes.get("conversation_id") {
        Some(conversation) => {
            let target_text = match (&to_queue, &to_agent_name) {
                (Some(q), _) => format!("queue {q}"),
                (_, Some(name)) => name.clone(),
                _ => "?".into(),
            };
            let text = match &context {
                Some(c) if !c.is_empty() => format!(
                    "{} transferred to {target_text} · {}",
                    auth.agent.name,
                    c.timeline_text()
                ),
                _ => format!(
                    "{} transferred to {target_text} without context",
                    auth.agent.name
                ),
            };
            Some(
                state
                    .store
                    .append_event(NewEvent::internal(
                        conversation,
                        EventKind::Transfer,
                        text,
                        Some(&auth.agent.id),
                        json!({"context": context, "to_queue": to_queue, "to_agent": to_agent,
                            "from_agent": auth.agent.id, "task_id": id}),
                        crate::now_ms(),
                    ))
                    .await?,
            )
        }
        None => None,
    };
    let handoff_id = handoff.as_ref().map(|e| e.id.clone());
    service
        .apply(|e, now| {
            own_task(e, auth, &t)?;
            if let Some(h) = &handoff_id {
                e.set_attribute(&t, HANDOFF_ATTRIBUTE, h)?;
            }
            Ok(e.transfer(now, &t, target)?)
        })
        .await?;
    if let Some(e) = &handoff {
        crate::desk::publish_event(state, e);
    }
    Ok(json!({"transferred": id, "handoff_event": handoff_id}))
}
