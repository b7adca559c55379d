//! Supervisor and admin use cases: the live wallboard, the context-transfer report and
//! the agent roster (list and create).
//!
//! "Today" is the UTC day: the wallboard's SLA and answer figures are computed from the
//! task and reservation tables since midnight UTC, so they survive restarts.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_core::{EventKind, Role, Skill};
use switchboard_store::{Agent, Store, TaskDayRow};

use crate::accounts::Passwords;
use crate::accounts::{create_user, is_supervisor};
use crate::clock::{now_ms, start_of_day};
use crate::error::{AppError, AppResult};
use crate::events::EventBus;
use crate::login::publish_revoked;
use crate::routing::{AgentBoard, RoutingService, running};

/// Refuses unless the agent is a supervisor or an admin.
pub fn require_supervisor(agent: &Agent) -> AppResult<()> {
    if is_supervisor(agent) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "this needs the supervisor or admin role",
        ))
    }
}

/// The supervisors' view and the roster.
pub struct Supervision {
    store: Store,
    routing: Option<Arc<RoutingService>>,
    passwords: Passwords,
    events: Arc<dyn EventBus>,
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

impl Supervision {
    /// Supervision over the store and routing.
    pub fn new(
        store: Store,
        routing: Option<Arc<RoutingService>>,
        passwords: Passwords,
        events: Arc<dyn EventBus>,
    ) -> Supervision {
        Supervision {
            store,
            routing,
            passwords,
            events,
        }
    }

    /// Disables an agent on behalf of `admin_id` — every session and socket of theirs
    /// ends at once and routing sets them offline — or enables them again.
    pub async fn set_disabled(
        &self,
        admin_id: &str,
        agent_id: &str,
        disabled: bool,
    ) -> AppResult<Agent> {
        if disabled && admin_id == agent_id {
            return Err(AppError::bad_request("you cannot disable yourself"));
        }
        let agent = self.store.set_agent_disabled(agent_id, disabled).await?;
        if disabled {
            publish_revoked(self.events.as_ref(), agent_id, None);
            if let Some(routing) = &self.routing
                && let Err(e) = routing.set_offline(agent_id).await
            {
                tracing::warn!(agent = agent_id, "disabled agent not set offline: {e}");
            }
        }
        let action = if disabled {
            "agent.disable"
        } else {
            "agent.enable"
        };
        self.store
            .audit(admin_id, action, Some(agent_id), json!(null))
            .await?;
        Ok(agent)
    }

    /// The live wallboard: per queue waiting, longest wait and today's SLA figures;
    /// per channel queue times; per agent presence and load.
    pub async fn wallboard(&self) -> AppResult<Value> {
        let routing = running(&self.routing)?;
        let now = now_ms();
        let today = self.store.tasks_since(start_of_day(now)).await?;
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
        let people: HashMap<String, (String, Role)> = self
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
        Ok(json!({
            "at": now,
            "day_starts_at": start_of_day(now),
            "queues": queues,
            "channels": channels,
            "agents": agents,
        }))
    }

    /// Of the hand-offs received since midnight UTC, how many arrived with context.
    pub async fn context_transfer(&self) -> AppResult<Value> {
        let since = start_of_day(now_ms());
        let events = self
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
        Ok(json!({
            "since": since,
            "transfers": received.len(),
            "with_context": with_context,
            "rate": rate,
        }))
    }

    /// The roster with live presence and capacity, as `viewer` may see it: every agent
    /// may read it (a warm transfer picks a colleague); e-mail addresses and capacity
    /// profiles are for supervisors and admins.
    pub async fn agents(&self, viewer: &Agent) -> AppResult<Vec<Value>> {
        let full = is_supervisor(viewer);
        let live: HashMap<String, AgentBoard> = match &self.routing {
            Some(r) => r
                .board()
                .await
                .agents
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
            None => HashMap::new(),
        };
        let agents: Vec<Value> = self
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
                    v["disabled"] = json!(a.disabled);
                    v["email"] = json!(a.email);
                    v["capacity"] = json!(l.map(|l| json!(l.capacity)));
                }
                v
            })
            .collect();
        Ok(agents)
    }

    /// Creates an agent, supervisor or admin on behalf of `admin_id`, and gives routing
    /// their skills.
    pub async fn create_agent(
        &self,
        admin_id: &str,
        email: &str,
        password: &str,
        name: Option<String>,
        role: &str,
        skills: &[(String, u8)],
    ) -> AppResult<Agent> {
        let role: Role = role
            .parse()
            .map_err(|e: switchboard_core::ParseEnumError| AppError::bad_request(e.to_string()))?;
        let skills = skills
            .iter()
            .map(|(n, p)| Skill::new(n, *p).map_err(|e| AppError::bad_request(e.to_string())))
            .collect::<AppResult<Vec<_>>>()?;
        let agent = create_user(
            &self.store,
            &self.passwords,
            email,
            password,
            role,
            name,
            skills,
        )
        .await?;
        self.store
            .audit(
                admin_id,
                "agent.create",
                Some(&agent.id),
                json!({"role": role.as_str()}),
            )
            .await?;
        if let Some(routing) = &self.routing {
            let pairs: Vec<(String, u8)> = agent
                .skills
                .iter()
                .map(|s| (s.name().to_string(), s.proficiency()))
                .collect();
            routing
                .set_agent_profile(&agent.id, Some(pairs), None)
                .await?;
        }
        Ok(agent)
    }
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
}
