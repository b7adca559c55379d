//! `/api/v1` routing routes: queues, presence, agent profiles, offers,
//! reservations and task lifecycle. The use cases are `switchboard_app::tasks`'s.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_app::tasks::TransferRequest;
use switchboard_core::HandoffContext;
use switchboard_routing::{CapacityProfile, Queue, QueueId, RoutingStep};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/queues` answer.
#[derive(Serialize, ToSchema)]
pub struct QueueList {
    /// One `{queue, stats}` per queue: the queue as `POST /queues` answers it, and its
    /// live statistics (`waiting`, `longest_wait_ms`, `offered`, `assigned`,
    /// `completed_within_sla`, `completed`, `abandoned`).
    #[schema(value_type = Vec<Object>)]
    queues: Vec<Value>,
}

/// `GET /api/v1/queues`.
#[utoipa::path(get, path = "/queues", tag = "routing",
    responses(
        (status = 200, description = "Every queue with its live statistics", body = QueueList),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn list_queues(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<QueueList>> {
    Ok(Json(QueueList {
        queues: state.tasks.queues().await?,
    }))
}

/// A routing step in the API: seconds, and queue names.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// Seconds after a task entered the queue at which this step applies (at most
    /// a week).
    #[schema(maximum = 604800)]
    after_secs: u64,
    /// From then on every required skill needs at most this proficiency.
    #[serde(default)]
    min_proficiency: Option<u8>,
    /// From then on the task waits in this queue instead.
    #[serde(default)]
    overflow_queue: Option<String>,
}

/// `POST /api/v1/queues` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// The queue's name, also its id: 1-64 letters, digits, `-`, `_` or `.`.
    name: String,
    /// The channels it serves (informational).
    #[serde(default)]
    channels: Vec<String>,
    /// Skills every task in the queue needs, as `[name, minimum proficiency 1-5]` pairs.
    #[serde(default)]
    required_skills: Vec<(String, u8)>,
    /// Service level target: seconds within which a task should be assigned (20 if
    /// not given; at most a week).
    #[serde(default)]
    #[schema(maximum = 604800)]
    sla_target_secs: Option<u64>,
    /// Base priority added to every task's own priority.
    #[serde(default)]
    priority: i32,
    /// Escalation steps.
    #[serde(default)]
    steps: Vec<StepBody>,
}

/// `POST /api/v1/queues` (admin): create or replace a queue; its id is its name.
#[utoipa::path(post, path = "/queues", tag = "routing", request_body = QueueBody,
    responses(
        (status = 201, description = "The queue as saved: `{id, name, channels, \
            required_skills, sla_target_ms, priority, steps}` (skills as `[name, proficiency]` \
            pairs, steps as `{after_ms, min_proficiency, overflow_queue}`)", body = Object),
        (status = 400, description = "Invalid queue name", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 409, description = "The queue definition is unusable", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
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
        queue.sla_target_ms = within_a_week("sla_target_secs", s)?;
    }
    queue.priority = body.priority;
    queue.steps = body
        .steps
        .into_iter()
        .map(|s| {
            Ok(RoutingStep {
                after_ms: within_a_week("steps[].after_secs", s.after_secs)?,
                min_proficiency: s.min_proficiency,
                overflow_queue: s.overflow_queue.map(|q| QueueId::from(q.as_str())),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    let queue = state.tasks.save_queue(queue).await?;
    Ok((StatusCode::CREATED, Json(json!(queue))))
}

/// The longest queue timer: a week.
const WEEK_SECS: u64 = 7 * 24 * 3600;

/// `secs` in milliseconds, if it is at most a week.
fn within_a_week(field: &str, secs: u64) -> Result<u64, ApiError> {
    if secs > WEEK_SECS {
        return Err(ApiError::bad_request(format!(
            "{field}: at most {WEEK_SECS} seconds (a week)"
        )));
    }
    Ok(secs * 1000)
}

/// `GET /api/v1/queues/{id}/stats`.
#[utoipa::path(get, path = "/queues/{id}/stats", tag = "routing",
    params(("id" = String, Path, description = "Queue id (its name)")),
    responses(
        (status = 200, description = "`{queue_id, stats}`; `stats` has `waiting`, \
            `longest_wait_ms`, `offered`, `assigned`, `completed_within_sla`, `completed` and \
            `abandoned`", body = Object),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn queue_stats(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.tasks.queue_stats(&id).await?))
}

/// `PUT /api/v1/agents/{id}/presence` body.
#[derive(Deserialize, ToSchema)]
pub struct PresenceBody {
    /// `available`, `away` or `offline`.
    #[schema(value_type = PresenceStatus)]
    status: String,
    /// Why the agent is away (`away` only; "away" if not given).
    reason: Option<String>,
}

/// An agent's presence.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PresenceStatus {
    /// Takes new work.
    Available,
    /// Takes no new work for now.
    Away,
    /// Logged out.
    Offline,
}

/// `PUT /api/v1/agents/{id}/presence` (`me` works).
#[utoipa::path(put, path = "/agents/{id}/presence", tag = "routing",
    params(("id" = String, Path, description = "Agent id, or `me`")),
    request_body = PresenceBody,
    responses(
        (status = 200, description = "The agent's routing state: `{agent_id, presence, \
            presence_reason, capacity}`", body = Object),
        (status = 400, description = "Unknown presence", body = ErrorBody),
        (status = 403, description = "Agents may only change themselves", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// Replaces the agent's routing skills, as `[name, proficiency 1-5]` pairs.
    skills: Option<Vec<(String, u8)>>,
    /// Replaces the agent's capacity profile.
    #[schema(value_type = Option<CapacityProfileSchema>)]
    capacity: Option<CapacityProfile>,
}

/// How much work an agent can hold at once, as cost across channels
/// (`switchboard_routing::CapacityProfile`); a missing field takes its default.
#[derive(ToSchema)]
#[schema(as = CapacityProfile)]
#[allow(dead_code)]
pub struct CapacityProfileSchema {
    /// Total capacity (default 100).
    #[serde(default)]
    total: u32,
    /// Cost of one task per channel (default: voice 100, chat, sms, whatsapp and
    /// telegram 25, email 20).
    #[serde(default)]
    costs: std::collections::BTreeMap<String, u32>,
    /// Cost of a task on a channel missing from `costs` (default 25).
    #[serde(default)]
    default_cost: u32,
}

/// `PUT /api/v1/agents/{id}/routing`: skills and capacity profile.
#[utoipa::path(put, path = "/agents/{id}/routing", tag = "routing",
    params(("id" = String, Path, description = "Agent id")),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The agent as routing sees it: `{id, skills, presence, \
            capacity}`", body = Object),
        (status = 400, description = "A proficiency outside 1-5", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The agent would hold more work than the new capacity",
            body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/agents/{id}/offers", tag = "routing",
    params(("id" = String, Path, description = "Agent id, or `me`")),
    responses(
        (status = 200, description = "`{offers}`: the agent's pending offers, each \
            `{reservation, task, conversation_id, conversation, contact, handoff}`", body = Object),
        (status = 403, description = "Agents may only see their own offers", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn offers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.tasks.offers(&auth.agent, &id).await?))
}

/// What `POST /reservations/{id}/{action}` does to an offer.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReservationAction {
    /// Takes the offered task.
    Accept,
    /// Declines it; the task is offered to the next agent.
    Reject,
}

/// `POST /api/v1/reservations/{id}/{action}` answer.
#[derive(Serialize, ToSchema)]
pub struct ReservationDone {
    /// The action done.
    #[schema(value_type = ReservationAction)]
    done: String,
    /// The reservation (offer) id.
    reservation: String,
}

/// `POST /api/v1/reservations/{id}/accept` and `/reject`.
#[utoipa::path(post, path = "/reservations/{id}/{action}", tag = "routing",
    params(
        ("id" = String, Path, description = "Reservation (offer) id"),
        ("action" = inline(ReservationAction), Path, description = "`accept` or `reject`"),
    ),
    responses(
        (status = 200, description = "Done", body = ReservationDone),
        (status = 403, description = "The offer is for another agent", body = ErrorBody),
        (status = 404, description = "No such pending offer, or no such action",
            body = ErrorBody),
        (status = 409, description = "The engine refused it (e.g. over capacity)",
            body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn reservation_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<ReservationDone>> {
    match action.as_str() {
        "accept" => state.tasks.accept(&auth.agent, &id).await?,
        "reject" => state.tasks.reject(&auth.agent, &id).await?,
        _ => return Err(ApiError::not_found("no such route")),
    }
    Ok(Json(ReservationDone {
        done: action,
        reservation: id,
    }))
}

/// What `POST /tasks/{id}/{action}` does to a held task.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TaskAction {
    /// The conversation is over; the agent writes notes and keeps the capacity.
    Wrapup,
    /// The task is done; the agent's capacity is freed.
    Complete,
}

/// `POST /api/v1/tasks/{id}/{action}` answer.
#[derive(Serialize, ToSchema)]
pub struct TaskDone {
    /// The action done.
    #[schema(value_type = TaskAction)]
    done: String,
    /// The task id.
    task: String,
}

/// `POST /api/v1/tasks/{id}/wrapup` and `/complete`.
#[utoipa::path(post, path = "/tasks/{id}/{action}", tag = "routing",
    params(
        ("id" = String, Path, description = "Task id"),
        ("action" = inline(TaskAction), Path, description = "`wrapup` or `complete`"),
    ),
    responses(
        (status = 200, description = "Done", body = TaskDone),
        (status = 403, description = "Another agent holds the task", body = ErrorBody),
        (status = 404, description = "No live task with that id, or no such action",
            body = ErrorBody),
        (status = 409, description = "The task's state does not allow it", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
pub async fn task_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<TaskDone>> {
    let wrap = match action.as_str() {
        "wrapup" => true,
        "complete" => false,
        _ => return Err(ApiError::not_found("no such route")),
    };
    state.tasks.finish(&auth.agent, &id, wrap).await?;
    Ok(Json(TaskDone {
        done: action,
        task: id,
    }))
}

/// `POST /api/v1/tasks/{id}/transfer` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// To this queue (exactly one of `queue` and `agent_id`).
    queue: Option<String>,
    /// To this agent.
    agent_id: Option<String>,
    /// The warm hand-off: what the receiver needs to know.
    #[serde(default)]
    #[schema(value_type = Option<HandoffContextSchema>)]
    context: Option<HandoffContext>,
}

/// The context that travels with a transfer (`switchboard_core::HandoffContext`).
#[derive(ToSchema)]
#[schema(as = HandoffContext)]
#[allow(dead_code)]
pub struct HandoffContextSchema {
    /// Why the customer got in touch.
    reason: String,
    /// What was already done.
    #[serde(default)]
    steps: Vec<String>,
    /// What we promised.
    #[serde(default)]
    commitments: Vec<String>,
    /// How the customer feels.
    sentiment: SentimentSchema,
    /// One paragraph for the receiver.
    #[serde(default)]
    summary: String,
}

/// How the customer feels, as far as their words tell (`switchboard_core::Sentiment`).
#[derive(ToSchema)]
#[schema(as = Sentiment)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SentimentSchema {
    /// Annoyed, angry, disappointed.
    Negative,
    /// Nothing either way.
    Neutral,
    /// Pleased, thankful.
    Positive,
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
#[utoipa::path(post, path = "/tasks/{id}/transfer", tag = "routing",
    params(("id" = String, Path, description = "Task id")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "`{transferred, handoff_event}`: the task id, and the \
            timeline event holding the context (null when the task has no conversation)",
            body = Object),
        (status = 400, description = "Not exactly one of `queue` or `agent_id`",
            body = ErrorBody),
        (status = 403, description = "Another agent holds the task", body = ErrorBody),
        (status = 404, description = "No live task, queue or agent with that id",
            body = ErrorBody),
        (status = 409, description = "The task's state does not allow it", body = ErrorBody),
        (status = 503, description = "Routing is not running", body = ErrorBody),
    ))]
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
