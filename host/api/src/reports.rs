//! Report routes (supervisors and admins): `GET /api/v1/reports/{report}` for the four
//! reports (`operations`, `agents`, `journeys`, `experience`) as JSON, or CSV with
//! `Accept: text/csv` or the `.csv` name;
//! `GET /api/v1/reports/drill` (the conversations behind a number); and the streamed
//! one-row-per-conversation export `GET /api/v1/reports/conversations.csv`. The use
//! case is `switchboard_app::reports`; the definitions are in `REPORTS.md`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_app::reports::{ReportKind, ReportRequest, ReportTable};
use switchboard_app::supervisor::require_supervisor;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// What a report covers and how it is cut.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First date, `YYYY-MM-DD`, in the operator's time zone (`SWITCHBOARD_TIMEZONE`).
    from: String,
    /// Last date, included.
    to: String,
    /// Rows per `day` (default), ISO `week` (Monday to Sunday), `month`, or one row
    /// for the `total`.
    group_by: Option<String>,
    /// Rows per `channel`, `queue` or `agent` as well (the agents report: `agent` only).
    by: Option<String>,
    /// Only this channel (`sms`, `voice`, `webchat`…).
    channel: Option<String>,
    /// Only this queue.
    queue: Option<String>,
    /// Only this agent (id).
    agent: Option<String>,
    /// Abandons sooner than this many seconds are short abandons (default 5).
    short_abandon_secs: Option<u64>,
    /// The service level's threshold in seconds (default 20).
    service_level_secs: Option<u64>,
    /// First contact resolution's window in days, 1–90 (default 7).
    fcr_days: Option<u64>,
}

impl From<ReportQuery> for ReportRequest {
    fn from(q: ReportQuery) -> ReportRequest {
        ReportRequest {
            from: q.from,
            to: q.to,
            group_by: q.group_by,
            by: q.by,
            channel: q.channel,
            queue: q.queue,
            agent: q.agent,
            short_abandon_secs: q.short_abandon_secs,
            service_level_secs: q.service_level_secs,
            fcr_days: q.fcr_days,
        }
    }
}

/// `GET /api/v1/reports/drill`: which conversations make a number.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DrillQuery {
    /// The counted metric: `arrived`, `handled`, `abandoned`, `short_abandoned`,
    /// `abandoned_counted`, `replaced`, `waiting`, `answered_in_sl`, `answered_late`,
    /// `responded`, `handled_ended`, `transferred`, `handoffs`,
    /// `handoffs_without_context`, `missed_offers`, `legs`, `legs_ended`,
    /// `transferred_out`, `journeys`, `resolved`, `unresolved`, `fcr_yes`, `fcr_no`,
    /// `fcr_pending`, `multi_channel`, `switched`, `reopened`, `journey_handoffs`,
    /// `arrivals`, `repeat_contacts`, `csat_sent`, `csat_responses`,
    /// `csat_satisfied`, `ces_sent`, `ces_responses`, `ces_easy`, `nps_sent`,
    /// `nps_responses`, `nps_promoters`, `nps_detractors`.
    metric: String,
    /// First date of the cell, `YYYY-MM-DD`.
    from: String,
    /// Last date of the cell, included.
    to: String,
    /// The cell's grouping: `channel`, `queue` or `agent`.
    by: Option<String>,
    /// The cell's group (with `by`).
    key: Option<String>,
    /// Only this channel.
    channel: Option<String>,
    /// Only this queue.
    queue: Option<String>,
    /// Only this agent (id).
    agent: Option<String>,
    /// As in the report (default 5).
    short_abandon_secs: Option<u64>,
    /// As in the report (default 20).
    service_level_secs: Option<u64>,
    /// As in the report (default 7).
    fcr_days: Option<u64>,
    /// At most this many conversations (default 500, at most 10000).
    limit: Option<u32>,
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with("text/csv")))
}

fn csv_response(filename: String, body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// A filename part from a date the use case already validated.
fn date_part(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .take(10)
        .collect()
}

fn answer(table: ReportTable, csv: bool, q_from: &str, q_to: &str) -> Response {
    if csv {
        let name = format!(
            "{}-{}-{}.csv",
            table.kind.as_str(),
            date_part(q_from),
            date_part(q_to)
        );
        csv_response(name, Body::from(table.to_csv()))
    } else {
        Json(table.to_json()).into_response()
    }
}

/// A report's name in its route: `operations`, `agents`, `journeys` or `experience`,
/// with `.csv` for the CSV form.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // documents the path parameter; the handler parses the segment
enum ReportName {
    #[serde(rename = "operations")]
    Operations,
    #[serde(rename = "operations.csv")]
    OperationsCsv,
    #[serde(rename = "agents")]
    Agents,
    #[serde(rename = "agents.csv")]
    AgentsCsv,
    #[serde(rename = "journeys")]
    Journeys,
    #[serde(rename = "journeys.csv")]
    JourneysCsv,
    #[serde(rename = "experience")]
    Experience,
    #[serde(rename = "experience.csv")]
    ExperienceCsv,
}

/// The report a route segment names, and whether it asks for CSV.
fn parse_report_name(name: &str) -> Option<(ReportKind, bool)> {
    let (base, csv) = match name.strip_suffix(".csv") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let kind = [
        ReportKind::Operations,
        ReportKind::Agents,
        ReportKind::Journeys,
        ReportKind::Experience,
    ]
    .into_iter()
    .find(|k| k.as_str() == base)?;
    Some((kind, csv))
}

/// `GET /api/v1/reports/{report}`: one of the four reports, as JSON or CSV.
#[utoipa::path(get, path = "/reports/{report}", tag = "supervision",
    params(
        ("report" = inline(ReportName), Path, description = "`operations`, `agents`, `journeys` or \
            `experience`; with `.csv` (or `Accept: text/csv`) the same table as CSV, header \
            line first"),
        ReportQuery,
    ),
    responses(
        (status = 200, description = "`{report, from, to, zone, group_by, by, filters, \
            short_abandon_secs, service_level_secs, fcr_days, at, columns, rows}`; each row \
            has `period`, `from`, `to`, the group, then the report's columns \
            (REPORTS.md). **operations**: `arrived`, `handled`, `abandoned`, \
            `short_abandoned`, `abandon_rate`, `replaced`, `waiting`, `answered_in_sl`, \
            `service_level`, `avg_queue_ms`, `p90_queue_ms`, `max_queue_ms`, \
            `avg_abandon_ms`, `responded`, `avg_first_response_ms`, \
            `p90_first_response_ms`, `avg_handle_ms`, `avg_talk_ms`, `avg_hold_ms`, \
            `avg_wrap_ms`, `transferred`, `transfers`, `transfer_rate`, `handoffs`, \
            `handoffs_with_context`, `context_transfer_rate`, `missed_offers`. \
            **agents** (with `by=agent`, `agent_name`): `staffed_ms`, `busy_ms`, `idle_ms`, \
            `occupancy`, `avg_concurrency`, `utilization`, `utilization_by_channel` \
            (channel → share of capacity), `handled`, `avg_handle_ms`, `transferred_out`. \
            **journeys**: `journeys`, `resolved`, `fcr_yes`, `fcr_no`, `fcr_pending`, \
            `fcr_rate`, `arrivals`, `repeat_contacts`, `repeat_contact_rate`, \
            `multi_channel`, `multi_channel_share`, `channel_switches`, \
            `switches_per_journey`, `reopened`, `avg_resolution_ms`, `p90_resolution_ms`, \
            `handoffs`, `handoffs_with_context`, `context_transfer_rate`. **experience**: \
            `csat_sent`, `csat_responses`, `csat_response_rate`, `csat_avg`, \
            `csat_satisfied_share`, `ces_sent`, `ces_responses`, `ces_response_rate`, \
            `ces_avg`, `ces_easy_share`, `nps_sent`, `nps_responses`, `nps_response_rate`, \
            `nps`. As CSV (`text/csv`), the same table", body = Object),
        (status = 400, description = "A date, grouping or threshold is not valid", body = ErrorBody),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    require_supervisor(&auth.agent)?;
    let (kind, csv_route) =
        parse_report_name(&name).ok_or_else(|| ApiError::not_found("no such report"))?;
    let (from, to) = (q.from.clone(), q.to.clone());
    let table = state.reports.report(kind, &q.into()).await?;
    Ok(answer(table, csv_route || wants_csv(&headers), &from, &to))
}

/// `GET /api/v1/reports/drill`.
#[utoipa::path(get, path = "/reports/drill", tag = "supervision",
    params(DrillQuery),
    responses(
        (status = 200, description = "`{metric, key, from, to, zone, …, count, \
            conversations}`: the conversations behind the number, oldest first, each with \
            `conversation_id`, `display_id`, `contact_id`, `task_id` (task metrics), \
            `channel`, `queue`, `agent` and `at` (the instant that put it in the cell, ms \
            since the epoch)", body = Object),
        (status = 400, description = "An unknown metric, or a date, grouping or threshold \
            that is not valid", body = ErrorBody),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
    ))]
pub async fn drill(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<DrillQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    require_supervisor(&auth.agent)?;
    let request = ReportRequest {
        from: q.from,
        to: q.to,
        group_by: Some("total".into()),
        by: q.by,
        channel: q.channel,
        queue: q.queue,
        agent: q.agent,
        short_abandon_secs: q.short_abandon_secs,
        service_level_secs: q.service_level_secs,
        fcr_days: q.fcr_days,
    };
    let answer = state
        .reports
        .drill(
            &request,
            &q.metric,
            q.key.as_deref(),
            q.limit.unwrap_or(500),
        )
        .await?;
    Ok(Json(answer))
}

/// `GET /api/v1/reports/conversations.csv`.
#[utoipa::path(get, path = "/reports/conversations.csv", tag = "supervision",
    params(ReportQuery),
    responses(
        (status = 200, description = "One row per conversation opened in the range (filters \
            as the journeys report), streamed: `conversation_id`, `display_id`, `status`, \
            `contact_id`, `contact_name`, `channels`, `channel_switches`, `queue`, `agents`, \
            `tasks`, `opened_at`, `first_response_at`, `first_resolved_at`, `resolved_at` \
            (local time with offset), `resolution_ms`, `handle_ms`, `reopens`, `fcr`, \
            `disposition`, `handoffs`, `handoffs_with_context`, `csat`, `ces`, `nps`",
            content_type = "text/csv", body = String),
        (status = 400, description = "A date, grouping or threshold is not valid", body = ErrorBody),
        (status = 403, description = "Needs the supervisor or admin role", body = ErrorBody),
    ))]
pub async fn conversations_csv(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    require_supervisor(&auth.agent)?;
    let name = format!(
        "conversations-{}-{}.csv",
        date_part(&q.from),
        date_part(&q.to)
    );
    let lines = state.reports.conversations_csv(&q.into())?;
    let stream = futures::stream::unfold(lines, |mut lines| async move {
        let item = lines.next().await?;
        let item = item.map(Bytes::from).map_err(|e| {
            tracing::error!("conversation export stopped: {e}");
            std::io::Error::other("export stopped")
        });
        Some((item, lines))
    });
    Ok(csv_response(name, Body::from_stream(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_are_the_four_reports_with_or_without_csv() {
        assert!(matches!(
            parse_report_name("operations"),
            Some((ReportKind::Operations, false))
        ));
        assert!(matches!(
            parse_report_name("experience.csv"),
            Some((ReportKind::Experience, true))
        ));
        assert!(matches!(
            parse_report_name("journeys"),
            Some((ReportKind::Journeys, false))
        ));
        assert!(matches!(
            parse_report_name("agents.csv"),
            Some((ReportKind::Agents, true))
        ));
        for bad in [
            "",
            ".csv",
            "drill",
            "operations.json",
            "Operations",
            "agents.csv.csv",
        ] {
            assert!(parse_report_name(bad).is_none(), "{bad}");
        }
    }
}
