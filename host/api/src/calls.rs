//! `/api/v1/calls…`: the softphone's controls, outbound calls, recordings.
//!
//! An agent controls the calls they are on; supervisors and admins any call. Those
//! rules live in `switchboard-voice` (`VoiceService::check_control`, `dial_for`,
//! `transfer_for`, `recording_for`); the handlers parse and shape.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_voice::{CallTransfer, VoiceService};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::routing_api::HandoffContextSchema;
use crate::state::AppState;

fn voice(state: &AppState) -> ApiResult<Arc<VoiceService>> {
    state.voice.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "voice_disabled",
            "voice is not running on this host",
        )
    })
}

/// `GET /api/v1/calls` and `GET /api/v1/calls/me` answer.
#[derive(Serialize, ToSchema)]
pub struct CallList {
    /// Live calls as the softphone shows them: `id`, `direction` (`inbound` or
    /// `outbound`), `state`, `state_since`, `from`, `to`, `contact_id`,
    /// `conversation_id`, `task_id`, `agent_id`, `consult_agent_id`, `started_at`,
    /// `answered_at`, `ended_at`, `ivr_path`, `queue`, `recording_url`, `muted`, and
    /// `node`, the node carrying the call (every live node's calls are listed,
    /// whichever node is asked).
    #[schema(value_type = Vec<Object>)]
    calls: Vec<Value>,
}

/// `GET /api/v1/calls/me`: live calls I am on, offered, or consulted about.
#[utoipa::path(get, path = "/calls/me", tag = "calls",
    responses(
        (status = 200, description = "The caller's live calls (none when voice is not running)",
            body = CallList),
    ))]
pub async fn my_calls(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<CallList>> {
    let calls = match &state.voice {
        Some(v) => on_node(v, v.calls_of_agent(&auth.agent.id)),
        None => Vec::new(),
    };
    Ok(Json(with_other_nodes(&state, calls, &headers, &uri).await))
}

/// `calls` of this node, each naming it (`node`).
fn on_node(voice: &VoiceService, mut calls: Vec<Value>) -> Vec<Value> {
    for call in &mut calls {
        call["node"] = Value::from(voice.node());
    }
    calls
}

/// This node's `calls` and the other live nodes' answers to the same list request,
/// oldest call first.
async fn with_other_nodes(
    state: &AppState,
    mut calls: Vec<Value>,
    headers: &HeaderMap,
    uri: &Uri,
) -> CallList {
    calls.extend(crate::forward::calls_on_other_nodes(state, headers, uri).await);
    calls.sort_by_key(|c| c["started_at"].as_i64().unwrap_or(i64::MAX));
    CallList { calls }
}

/// `GET /api/v1/calls`: every live call (supervisors).
#[utoipa::path(get, path = "/calls", tag = "calls",
    responses(
        (status = 200, description = "Every live call (none when voice is not running)",
            body = CallList),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
    ))]
pub async fn all_calls(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Json<CallList>> {
    switchboard_app::supervisor::require_supervisor(&auth.agent)?;
    let calls = match &state.voice {
        Some(v) => on_node(v, v.all_calls()),
        None => Vec::new(),
    };
    Ok(Json(with_other_nodes(&state, calls, &headers, &uri).await))
}

/// `POST /api/v1/softphone/offer` body and answer: an SDP.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftphoneSdp {
    /// The browser's offer (ICE gathered in full), or the host's answer; at most
    /// 64 KiB.
    pub sdp: String,
}

/// `POST /api/v1/softphone/offer`: connects my softphone's audio to this node (the
/// same as `webrtc.offer` on the realtime socket, which another node of a cluster
/// hands here when a call this node carries is offered to me: `softphone.move`).
#[utoipa::path(post, path = "/softphone/offer", tag = "calls", request_body = SoftphoneSdp,
    responses(
        (status = 200, description = "The host's answer", body = SoftphoneSdp),
        (status = 400, description = "Not a usable offer", body = ErrorBody),
        (status = 503, description = "Voice is not running on this host", body = ErrorBody),
    ))]
pub async fn softphone_offer(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<SoftphoneSdp>,
) -> ApiResult<Json<SoftphoneSdp>> {
    let voice = voice(&state)?;
    if body.sdp.len() > 64 * 1024 {
        return Err(ApiError::bad_request("sdp: at most 64 KiB"));
    }
    let sdp = voice
        .accept_offer(&auth.agent.id, &body.sdp)
        .await
        .map_err(ApiError::bad_request)?;
    Ok(Json(SoftphoneSdp { sdp }))
}

/// `POST /api/v1/calls` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    /// The phone number to call (E.164, or national in the host's default region).
    to: String,
    /// The contact being called: `to` must then be one of their numbers, and the call
    /// lands on their timeline.
    #[serde(default)]
    contact_id: Option<String>,
}

/// `POST /api/v1/calls` answer.
#[derive(Serialize, ToSchema)]
pub struct DialAnswer {
    /// The new call as the softphone shows it (see `GET /calls/me`), or null if it
    /// already ended.
    #[schema(value_type = Option<Object>)]
    call: Option<Value>,
}

/// `POST /api/v1/calls`: an outbound call through the trunk.
#[utoipa::path(post, path = "/calls", tag = "calls", request_body = DialBody,
    responses(
        (status = 201, description = "Dialing", body = DialAnswer),
        (status = 400, description = "`to` is not a phone number, or not one of the contact's",
            body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "The caller is already on a call", body = ErrorBody),
        (status = 503, description = "Voice is not running on this host", body = ErrorBody),
    ))]
pub async fn dial(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<DialBody>,
) -> ApiResult<(StatusCode, Json<DialAnswer>)> {
    let voice = voice(&state)?;
    let call = voice
        .dial_for(&auth.agent, &body.to, body.contact_id.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(DialAnswer { call })))
}

/// The body of a softphone control.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// `hold`: true to hold, false to resume.
    #[serde(default)]
    held: Option<bool>,
    /// `mute`: true to mute, false to unmute.
    #[serde(default)]
    muted: Option<bool>,
    /// `dtmf`: 1 to 32 of `0-9`, `*`, `#`, `A-D`.
    #[serde(default)]
    digits: Option<String>,
}

/// The softphone controls of `POST /calls/{id}/{action}`.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CallAction {
    /// Ends the call; no body.
    Hangup,
    /// Holds or resumes: `{"held": bool}`.
    Hold,
    /// Mutes or unmutes the agent: `{"muted": bool}`.
    Mute,
    /// Sends keypad tones: `{"digits": "…"}`.
    Dtmf,
}

/// `POST /api/v1/calls/{id}/hangup`, `/hold` `{held}`, `/mute` `{muted}`,
/// `/dtmf` `{digits}`: the softphone's controls.
#[utoipa::path(post, path = "/calls/{id}/{action}", tag = "calls",
    params(
        ("id" = String, Path, description = "Call id"),
        ("action" = inline(CallAction), Path,
            description = "`hangup` (no body), `hold` `{held}`, `mute` `{muted}` or `dtmf` `{digits}`"),
    ),
    request_body(content = Option<ControlBody>,
        description = "The field the action needs; none for `hangup`"),
    responses(
        (status = 200, description = "Done. `hangup`: `{\"ended\": call id}`; `hold` and `mute`: \
            `{\"call\": the call as the softphone shows it (see GET /calls/me), or null}`; \
            `dtmf`: `{\"sent\": digits}`", body = Object),
        (status = 400, description = "The action's field is missing, or `digits` is invalid",
            body = ErrorBody),
        (status = 403, description = "Not the caller's call (supervisors may control any)",
            body = ErrorBody),
        (status = 404, description = "No live call with that id, or no such action",
            body = ErrorBody),
        (status = 409, description = "`hold`: the call is not connected to an agent",
            body = ErrorBody),
        (status = 503, description = "Voice is not running on this host", body = ErrorBody),
    ))]
pub async fn control(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ControlBody>>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    voice.check_control(&auth.agent, &id)?;
    let body = body.map(|Json(b)| b).unwrap_or(ControlBody {
        held: None,
        muted: None,
        digits: None,
    });
    let missing = |field: &str| ApiError::bad_request(format!("{action}: `{field}` is required"));
    match action.as_str() {
        "hangup" => {
            voice.agent_hang_up(&id).await;
            Ok(Json(json!({"ended": id})))
        }
        "hold" => Ok(Json(
            voice
                .hold(&id, body.held.ok_or_else(|| missing("held"))?)
                .await?,
        )),
        "mute" => Ok(Json(
            voice.mute(&id, body.muted.ok_or_else(|| missing("muted"))?)?,
        )),
        "dtmf" => {
            let digits = body.digits.ok_or_else(|| missing("digits"))?;
            voice.dtmf(&id, &digits).await?;
            Ok(Json(json!({"sent": digits})))
        }
        _ => Err(ApiError::not_found("hangup, hold, mute, dtmf or transfer")),
    }
}

/// `POST /api/v1/calls/{id}/transfer`: `{queue}` blind, or `{agent_id, mode:"warm"}`
/// (consult first). Either carries `context` like a digital transfer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallTransferBody {
    /// Blind: to this queue (not with `mode: warm`).
    #[serde(default)]
    queue: Option<String>,
    /// To this agent; with `mode: warm`, consult them first.
    #[serde(default)]
    agent_id: Option<String>,
    /// `blind` (the default) or `warm`.
    #[serde(default)]
    #[schema(value_type = Option<TransferMode>)]
    mode: Option<String>,
    /// The warm hand-off: what the receiver needs to know. A warm transfer keeps it
    /// until it is completed.
    #[serde(default)]
    #[schema(value_type = Option<HandoffContextSchema>)]
    context: Option<Value>,
}

/// How a call is transferred.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TransferMode {
    /// At once, to a queue or an agent; the caller waits with music.
    Blind,
    /// Consult the agent first while the caller holds, then complete or cancel.
    Warm,
}

/// `POST /api/v1/calls/{id}/transfer`.
#[utoipa::path(post, path = "/calls/{id}/transfer", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    request_body = CallTransferBody,
    responses(
        (status = 200, description = "Blind: `{transferred, handoff_event, call}` (the task id, \
            the timeline event holding the context or null, and the call as the softphone shows \
            it); warm: `{call}`, the call now consulting", body = Object),
        (status = 400, description = "Not exactly one of `queue` or `agent_id`, a warm transfer \
            without `agent_id` or to oneself, an unknown `mode`, or an invalid `context`",
            body = ErrorBody),
        (status = 403, description = "Not the caller's call (supervisors may transfer any)",
            body = ErrorBody),
        (status = 404, description = "No live call, task, queue or agent with that id",
            body = ErrorBody),
        (status = 409, description = "The call has no task, is not connected, or the other \
            agent's softphone is not connected to the node carrying the call (on a cluster it \
            is then asked over, `softphone.move`: try again in a moment)", body = ErrorBody),
        (status = 503, description = "Voice is not running on this host", body = ErrorBody),
    ))]
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<CallTransferBody>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    let warm = match body.mode.as_deref() {
        Some("warm") => true,
        None | Some("blind") => false,
        Some(_) => {
            voice.check_control(&auth.agent, &id)?;
            return Err(ApiError::bad_request("mode: blind or warm"));
        }
    };
    let transfer = CallTransfer {
        queue: body.queue,
        agent_id: body.agent_id,
        warm,
        context: body.context,
    };
    Ok(Json(voice.transfer_for(&auth.agent, &id, transfer).await?))
}

/// What `POST /calls/{id}/transfer/{action}` does to a warm transfer.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TransferAction {
    /// Hands the call to the consulted agent, with the context.
    Complete,
    /// Gives the caller back to the first agent.
    Cancel,
}

/// `POST /api/v1/calls/{id}/transfer/complete` and `/transfer/cancel`.
#[utoipa::path(post, path = "/calls/{id}/transfer/{action}", tag = "calls",
    params(
        ("id" = String, Path, description = "Call id"),
        ("action" = inline(TransferAction), Path,
            description = "`complete` or `cancel` the warm transfer in progress"),
    ),
    responses(
        (status = 200, description = "`complete`: `{transferred, handoff_event, call}` (the task \
            id, the timeline event holding the context or null, and the call as the softphone \
            shows it); `cancel`: `{call}`", body = Object),
        (status = 400, description = "The context kept for the transfer is invalid",
            body = ErrorBody),
        (status = 403, description = "Not the caller's call (supervisors may act on any)",
            body = ErrorBody),
        (status = 404, description = "No live call with that id, or no such action",
            body = ErrorBody),
        (status = 409, description = "No consult in progress, or the call has no task",
            body = ErrorBody),
        (status = 503, description = "Voice is not running on this host", body = ErrorBody),
    ))]
pub async fn transfer_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let voice = voice(&state)?;
    match action.as_str() {
        "complete" => Ok(Json(voice.complete_transfer_for(&auth.agent, &id).await?)),
        "cancel" => Ok(Json(voice.cancel_transfer_for(&auth.agent, &id).await?)),
        _ => {
            voice.check_control(&auth.agent, &id)?;
            Err(ApiError::not_found("complete or cancel"))
        }
    }
}

/// A call recording: a WAV file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "audio/wav")]
#[allow(dead_code)]
pub struct Wav(Vec<u8>);

/// `GET /api/v1/calls/{id}/recording`: the WAV, to the agents who were on the call
/// and to supervisors.
#[utoipa::path(get, path = "/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path, description = "Call id (live or ended)")),
    responses(
        (status = 200, description = "The recording (`Cache-Control: private, no-store`)",
            content_type = "audio/wav", body = Wav),
        (status = 403, description = "The caller was not on the call and is not a supervisor",
            body = ErrorBody),
        (status = 404, description = "No such call, or it has no recording", body = ErrorBody),
    ))]
pub async fn recording(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let bytes = switchboard_voice::recording(&state.app, &auth.agent, &id).await?;
    Response::builder()
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(bytes))
        .map_err(ApiError::internal)
}
