//! Supervisor and admin routes: the live wallboard, the context-transfer report,
//! the agent roster (list and create) and plugin configuration.
//!
//! "Today" is the UTC day: the wallboard's SLA and answer figures are computed from the
//! task and reservation tables since midnight UTC, so they survive restarts.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{EventKind, Role, Skill};
use switchboard_store::{ConfigEntry, NewAgent, TaskDayRow};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};

const DAY_MS: i64 = 24 * 3600 * 1000;

pub(crate) fn require_supervisor(auth: &Auth) -> ApiResult<()> {
    if matches!(auth.agent.role, Role::Supervisor | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs the supervisor or admin role",
        ))
    }
}

/// Midnight UTC before `now_ms`.
pub fn start_of_day(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS)
}

/// Today's figures of one queue.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct DayFigures {
    /// Tasks that arrived today.
    pub arrived: u64,
    /// Of those, answered by an agent.
    pub answered: u64,
    /// Answered within the queue's SLA target.
    pub answered_in_sla: u64,
    /// Canceled before anyone answered (the customer gave up).
    pub abandoned: u64,
    /// Answered in SLA over answered plus abandoned, in percent.
    pub sla_pct: Option<f64>,
}

/// SLA attainment the way contact centers count it: answered within the target over
/// everything that was answered or abandoned (abandons count against the SLA).
pub fn day_figures<'a>(rows: impl Iterator<Item = &'a TaskDayRow>, sla_ms: i64) -> DayFigures {
    let mut f = DayFigures::default();
    for r in rows {
        f.arrived += 1;
        match r.answered_at {
            Some(at) => {
                f.answered += 1;
                if at - r.arrived_at <= sla_ms {
                    f.answered_in_sla += 1;
                }
            }
            None if r.state == "canceled" => f.abandoned += 1,
            None => {}
        }
    }
    let counted = f.answered + f.abandoned;
    if counted > 0 {
        f.sla_pct = Some((f.answered_in_sla as f64 * 1000.0 / counted as f64).round() / 10.0);
    }
    f
}

/// `GET /api/v1/wallboard`.
pub async fn wallboard(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth)?;
    let routing = crate::routing_api::routing(&state)?;
    let now = crate::now_ms();
    let today = state.store.tasks_since(start_of_day(now)).await?;
    let board = routing.board().await;
    let mut by_queue: HashMap<&str, Vec<&TaskDayRow>> = HashMap::new();
    for r in &today {
        by_queue.entry(r.queue_id.as_str()).or_default().push(r);
    }
    let queues: Vec<Value> = routing
        .queues()
        .await
        .into_iter()
        .map(|q| {
            let id = q["queue"]["id"].as_str().unwrap_or_default().to_string();
            let sla = q["queue"]["sla_target_ms"].as_i64().unwrap_or(0);
            let rows = by_queue.get(id.as_str()).cloned().unwrap_or_default();
            json!({
                "id": id,
                "name": q["queue"]["name"],
                "channels": q["queue"]["channels"],
                "waiting": q["stats"]["waiting"],
                "longest_wait_ms": q["stats"]["longest_wait_ms"],
                "sla_target_ms": sla,
                "today": day_figures(rows.into_iter(), sla),
            })
        })
        .collect();
    #[derive(Default)]
    struct ChannelFigures {
        waiting: u64,
        longest: u64,
        answered: u64,
        total_wait: i64,
        max_wait: i64,
    }
    let mut channels: BTreeMap<String, ChannelFigures> = BTreeMap::new();
    for w in &board.waiting {
        let c = channels.entry(w.channel.clone()).or_default();
        c.waiting += 1;
        c.longest = c.longest.max(w.waiting_ms);
    }
    for r in &today {
        let c = channels.entry(r.channel.clone()).or_default();
        if let Some(at) = r.answered_at {
            let wait = (at - r.arrived_at).max(0);
            c.answered += 1;
            c.total_wait += wait;
            c.max_wait = c.max_wait.max(wait);
        }
    }
    let channels: Vec<Value> = channels
        .into_iter()
        .map(|(channel, c)| {
            json!({
                "channel": channel,
                "waiting": c.waiting,
                "longest_wait_ms": c.longest,
                "answered_today": c.answered,
                "avg_wait_ms": (c.answered > 0).then(|| c.total_wait / c.answered as i64),
                "max_wait_ms": (c.answered > 0).then_some(c.max_wait),
            })
        })
        .collect();
    let people: HashMap<String, (String, Role)> = state
        .store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, (a.name, a.role)))
        .collect();
    let agents: Vec<Value> = board
        .agents
        .iter()
        .map(|a| {
            let (name, role) = people
                .get(&a.id)
                .map(|(n, r)| (n.clone(), r.as_str()))
                .unwrap_or_else(|| (a.id.clone(), "agent"));
            json!({
                "id": a.id, "name": name, "role": role, "presence": a.presence,
                "reason": a.reason, "load": a.load, "used": a.used, "total": a.total,
            })
        })
        .collect();
    Ok(Json(json!({
        "at": now,
        "day_starts_at": start_of_day(now),
        "queues": queues,
        "channels": channels,
        "agents": agents,
    })))
}

/// `GET /api/v1/reports/context-transfer`: of the hand-offs received since midnight
/// UTC, how many arrived with context.
pub async fn context_transfer(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    require_supervisor(&auth)?;
    let since = start_of_day(crate::now_ms());
    let events = state
        .store
        .events_of_kind_since(EventKind::Transfer, since, 100_000)
        .await?;
    let received: Vec<_> = events
        .iter()
        .filter(|e| e.data.get("handoff").and_then(Value::as_str) == Some("received"))
        .collect();
    let with_context = received
        .iter()
        .filter(|e| e.data.get("context_received") == Some(&Value::Bool(true)))
        .count();
    let rate = (!received.is_empty()).then(|| with_context as f64 / received.len() as f64);
    Ok(Json(json!({
        "since": since,
        "transfers": received.len(),
        "with_context": with_context,
        "rate": rate,
    })))
}

/// `GET /api/v1/agents`: the roster with live presence and capacity. Every agent may
/// read it (a warm transfer picks a colleague); e-mail addresses and capacity profiles
/// are for supervisors and admins.
pub async fn list_agents(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let full = require_supervisor(&auth).is_ok();
    let live: HashMap<String, crate::routing::AgentBoard> = match &state.routing {
        Some(r) => r
            .board()
            .await
            .agents
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect(),
        None => HashMap::new(),
    };
    let agents: Vec<Value> = state
        .store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| {
            let l = live.get(&a.id);
            let mut v = json!({
                "id": a.id, "name": a.name, "role": a.role.as_str(),
                "skills": a.skills,
                "presence": l.map_or("offline", |l| l.presence.as_str()),
                "reason": l.and_then(|l| l.reason.clone()),
            });
            if full {
                v["email"] = json!(a.email);
                v["capacity"] = json!(l.map(|l| json!(l.capacity)));
            }
            v
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `POST /api/v1/agents` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgentBody {
    email: String,
    password: String,
    name: Option<String>,
    role: String,
    #[serde(default)]
    skills: Vec<(String, u8)>,
}

/// Creates a user from the CLI or the API: the password needs 8 characters.
pub async fn create_user(
    store: &switchboard_store::Store,
    email: &str,
    password: &str,
    role: Role,
    name: Option<String>,
    skills: Vec<Skill>,
) -> ApiResult<switchboard_store::Agent> {
    if password.chars().count() < 8 {
        return Err(ApiError::bad_request(
            "the password must have at least 8 characters",
        ));
    }
    if !email.contains('@') {
        return Err(ApiError::bad_request("email must be an e-mail address"));
    }
    let hash = crate::auth::hash_password(password)?;
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
    Ok(store
        .create_agent(NewAgent {
            email: email.to_string(),
            name,
            role,
            password_hash: hash,
            skills,
        })
        .await?)
}

/// `POST /api/v1/agents` (admin).
pub async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<NewAgentBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_admin()?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: switchboard_core::ParseEnumError| ApiError::bad_request(e.to_string()))?;
    let skills = body
        .skills
        .iter()
        .map(|(n, p)| Skill::new(n, *p).map_err(|e| ApiError::bad_request(e.to_string())))
        .collect::<ApiResult<Vec<_>>>()?;
    let agent = create_user(
        &state.store,
        &body.email,
        &body.password,
        role,
        body.name,
        skills,
    )
    .await?;
    state
        .store
        .audit(
            &auth.agent.id,
            "agent.create",
            Some(&agent.id),
            json!({"role": role.as_str()}),
        )
        .await?;
    if let Some(routing) = &state.routing {
        let pairs: Vec<(String, u8)> = agent
            .skills
            .iter()
            .map(|s| (s.name().to_string(), s.proficiency()))
            .collect();
        routing
            .set_agent_profile(&agent.id, Some(pairs), None)
            .await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "agent": crate::auth::AgentView::from(&agent) })),
    ))
}

/// `PUT /api/v1/plugins/{id}/config` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    config: HashMap<String, String>,
}

/// `PUT /api/v1/plugins/{id}/config` (admin): set config values (secrets are
/// encrypted and never shown again) and reload the plugin.
pub async fn set_plugin_config(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<ConfigBody>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let declared = state
        .plugins
        .manifest(&id)
        .map(|m| m.config)
        .ok_or_else(|| ApiError::not_found(format!("plugin {id} is not loaded")))?;
    let mut entries = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in body.config {
        match declared.iter().find(|c| c.key == key) {
            Some(c) if c.secret => entries.push(ConfigEntry::secret(key, value)),
            Some(_) => entries.push(ConfigEntry::plain(key, value)),
            None => unknown.push(key),
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        return Err(ApiError::bad_request(format!(
            "the plugin declares no config key {}",
            unknown.join(", ")
        )));
    }
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    state.store.set_plugin_config(&id, entries).await?;
    state.reload_plugin(&id).await?;
    state
        .store
        .audit(
            &auth.agent.id,
            "plugin.config",
            Some(&id),
            json!({"keys": keys}),
        )
        .await?;
    Ok(Json(crate::plugins_api::describe(&state, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, arrived: i64, answered: Option<i64>) -> TaskDayRow {
        TaskDayRow {
            queue_id: "chat".into(),
            channel: "webchat".into(),
            state: state.into(),
            arrived_at: arrived,
            answered_at: answered,
        }
    }

    #[test]
    fn abandons_count_against_the_sla_and_waiting_tasks_do_not() {
        let rows = [
            row("completed", 0, Some(10_000)),
            row("assigned", 0, Some(50_000)),
            row("canceled", 0, None),
            row("pending", 0, None),
        ];
        let f = day_figures(rows.iter(), 20_000);
        assert_eq!(
            (f.arrived, f.answered, f.answered_in_sla, f.abandoned),
            (4, 2, 1, 1)
        );
        assert_eq!(f.sla_pct, Some(33.3));
        assert_eq!(day_figures([].iter(), 20_000).sla_pct, None);
    }

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let t = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        assert_eq!(start_of_day(t + 5 * 3600 * 1000), t);
        assert_eq!(start_of_day(t), t);
    }
}
