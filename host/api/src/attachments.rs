//! Files: agents' uploads, the authenticated download of any timeline file, the
//! signed links providers fetch outbound files from, and what a conversation's
//! channel allows (its messaging window and templates).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_app::attachments::ServedFile;
use switchboard_app::blobs::safe_inline;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `POST /api/v1/attachments` query.
#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file's name as the agent picked it.
    filename: Option<String>,
}

/// `POST /api/v1/attachments`: upload a file to attach to a reply. The body is
/// the file itself; `Content-Type` says what it is (the host sniffs the bytes
/// too and trusts them over the label).
#[utoipa::path(post, path = "/attachments", tag = "conversations",
    params(UploadQuery),
    request_body(content = Vec<u8>, description = "The file's bytes", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "`{attachment}`: its `id` (give it in a reply's \
            `attachments`), `content_type` as sniffed, `filename` and `size`", body = Object),
        (status = 400, description = "Empty file", body = ErrorBody),
        (status = 413, description = "Larger than the attachment limit", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let max = usize::try_from(state.attachments.config().max_bytes).unwrap_or(usize::MAX);
    let bytes = Limited::new(body, max)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("files may be at most {max} bytes"),
            )
        })?
        .to_bytes();
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let row = state
        .attachments
        .upload(&auth.agent.id, &bytes, declared, query.filename.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "attachment": row.as_timeline() })),
    ))
}

/// The answer for a file: raster images, audio and video inline, everything
/// else as a download, never something a browser would run.
fn serve(file: ServedFile) -> Response {
    let inline = safe_inline(&file.content_type);
    let content_type = if inline {
        file.content_type.clone()
    } else {
        "application/octet-stream".to_string()
    };
    let name: String = file
        .filename
        .as_deref()
        .unwrap_or("attachment")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{name}\"",
        if inline { "inline" } else { "attachment" }
    );
    let mut response = (StatusCode::OK, file.bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    headers.insert(
        header::HeaderName::from_static("x-original-content-type"),
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    response
}

/// `GET /api/v1/attachments/{id}`: a timeline file, for a signed-in agent.
#[utoipa::path(get, path = "/attachments/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Attachment id")),
    responses(
        (status = 200, description = "The file. Raster images, audio and video are served \
            inline, anything else as a download (`application/octet-stream`, \
            `Content-Disposition: attachment`); the sniffed type is in \
            `X-Original-Content-Type`", content_type = "application/octet-stream"),
        (status = 404, description = "No such file, or `attachment_failed`: it could not be \
            copied from the provider (the reason is in the message)", body = ErrorBody),
        (status = 409, description = "`attachment_pending`: still being copied from the \
            provider", body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(serve(state.attachments.open(&id).await?))
}

/// `GET /media/{id}?expires=…&sig=…`: an outbound file for the provider that
/// sends it (Twilio MMS, WhatsApp media by link). Needs no account: the link is
/// signed and expires.
pub async fn media(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let expires = query.get("expires").and_then(|e| e.parse::<i64>().ok());
    let (Some(expires), Some(sig)) = (expires, query.get("sig")) else {
        return Err(ApiError::forbidden("the media link is not valid"));
    };
    Ok(serve(
        state.attachments.open_signed(&id, expires, sig).await?,
    ))
}

/// `GET /api/v1/conversations/{id}/window` query.
#[derive(Deserialize, IntoParams, ToSchema)]
pub struct WindowQuery {
    /// A channel plugin id or channel name; default the conversation's current one.
    channel: Option<String>,
}

/// `GET /api/v1/conversations/{id}/window`: the messaging window of the
/// conversation on a channel.
#[utoipa::path(get, path = "/conversations/{id}/window", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id"), WindowQuery),
    responses(
        (status = 200, description = "`{plugin_id, channel, has_window, open, human_agent, \
            last_inbound_at, closes_at, human_closes_at, closed_at, seconds_left, templates}`: \
            `open` when a free-form reply goes out normally, `human_agent` when it goes out \
            only as a person's reply under the channel's longer window; times are RFC 3339",
            body = Object),
        (status = 400, description = "The conversation has no channel yet", body = ErrorBody),
        (status = 404, description = "No such conversation or channel", body = ErrorBody),
    ))]
pub async fn window(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
    Query(query): Query<WindowQuery>,
) -> ApiResult<Json<Value>> {
    let plugin_id = match query.channel {
        Some(c) => state
            .channels
            .plugin_named(&c)
            .await
            .ok_or_else(|| ApiError::not_found(format!("no enabled channel plugin `{c}`")))?,
        None => state
            .store
            .conversation(&id)
            .await?
            .last_plugin_id
            .ok_or_else(|| ApiError::bad_request("the conversation has no channel yet"))?,
    };
    Ok(Json(state.outbox.window_status(&id, &plugin_id).await?))
}

/// `GET /api/v1/channels/{plugin_id}/templates`: the templates the channel's
/// provider approved.
#[utoipa::path(get, path = "/channels/{plugin_id}/templates", tag = "conversations",
    params(("plugin_id" = String, Path, description = "Channel plugin id")),
    responses(
        (status = 200, description = "`{templates}`: each with `name`, `language`, \
            `category`, `body` (with `{{1}}`-style placeholders) and `parameters` (the \
            placeholders' names in order); empty for channels without templates",
            body = Object),
        (status = 404, description = "No such channel plugin", body = ErrorBody),
        (status = 503, description = "The provider could not be asked and nothing is cached",
            body = ErrorBody),
    ))]
pub async fn templates(
    State(state): State<AppState>,
    _auth: Auth,
    Path(plugin_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = state.channels.templates(&plugin_id).await?;
    let templates: Vec<Value> = list
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "language": t.language,
                "category": t.category,
                "body": t.body,
                "parameters": t.parameters,
            })
        })
        .collect();
    Ok(Json(json!({ "templates": templates })))
}
