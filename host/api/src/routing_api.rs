//! `/api/v1` routing routes: queues, presence, agent profiles, offers,
//! reservations and task lifecycle. The use cases are `switchboard_app::tasks`'s.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_app::tasks::TransferRequest;
use switchboard_core::HandoffContext;
use switchboard_routing::{CapacityProfile, Queue, QueueId, RoutingStep};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `GET /api/v1/queues`.
pub async fn list_queues(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "queues": state.tasks.queues().await? })))
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
    let queue = state.tasks.save_queue(queue).await?;
    Ok((StatusCode::CREATED, Json(json!(queue))))
}

/// `GET /api/v1/queues/{id}/stats`.
pub async fn queue_stats(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.tasks.queue_stats(&id).await?))
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
    Ok(Json(
        state
            .tasks
            .set_presence(&auth.agent, &id, &body.status, body.reason)
            .await?,
    ))
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
    Ok(Json(
        state
            .tasks
            .set_profile(&id, body.skills, body.capacity)
            .await?,
    ))
}

/// `GET /api/v1/agents/{id}/offers` (`me` works).
pub async fn offers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.tasks.offers(&auth.agent, &id).await?))
}

/// `POST /api/v1/reservations/{id}/accept` and `/reject`.
pub async fn reservation_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    match action.as_str() {
        "accept" => state.tasks.accept(&auth.agent, &id).await?,
        "reject" => state.tasks.reject(&auth.agent, &id).await?,
        _ => return Err(ApiError::not_found("no such route")),
    }
    Ok(Json(json!({ "reservation": id, "done": action })))
}

/// `POST /api/v1/tasks/{id}/wrapup` and `/complete`.
pub async fn task_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let wrap = match action.as_str() {
        "wrapup" => true,
        "complete" => false,
        _ => return Err(ApiError::not_found("no such route")),
    };
    state.tasks.finish(&auth.agent, &id, wrap).await?;
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

impl From<TransferBody> for TransferRequest {
    fn from(b: TransferBody) -> TransferRequest {
        TransferRequest {
            queue: b.queue,
            agent_id: b.agent_id,
            context: b.context,
        }
    }
}

/// `POST /api/v1/tasks/{id}/transfer`: to a queue or an agent, with the context
/// summary recorded on the timeline and pinned to the task for the receiver.
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<TransferBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        state.tasks.transfer(&auth.agent, &id, body.into()).await?,
    ))
}
