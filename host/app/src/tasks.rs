//! Routing use cases on behalf of people: queues, presence, agent profiles, offers,
//! reservations, the task lifecycle and transfers with their hand-off context.
//!
//! Who may do what is decided here (an agent acts for themselves and on the tasks
//! they hold; supervisors for anyone); the mechanics are the routing service's.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_core::{EventKind, HandoffContext};
use switchboard_routing::{CapacityProfile, Engine, Queue, ReservationId, Task, TaskId};
use switchboard_store::{Agent, NewEvent, Store};

use crate::accounts::is_supervisor;
use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::notify::Notifier;
use crate::relay::{Relay, RoutingQuery, Runner, TaskCommand};
use crate::routing::{
    HANDOFF_ATTRIBUTE, RoutingRole, RoutingService, parse_presence, running, valid_queue_name,
};

/// `me` or an id; only supervisors may act for someone else.
fn agent_id(actor: &Agent, id: &str) -> AppResult<String> {
    if id == "me" || id == actor.id {
        Ok(actor.id.clone())
    } else if is_supervisor(actor) {
        Ok(id.to_string())
    } else {
        Err(AppError::forbidden("agents may only change themselves"))
    }
}

/// Where a transfer goes and what travels with it.
#[derive(Debug, Clone, Default)]
pub struct TransferRequest {
    /// To this queue…
    pub queue: Option<String>,
    /// …or to this agent.
    pub agent_id: Option<String>,
    /// The warm hand-off: what the receiver needs to know.
    pub context: Option<HandoffContext>,
}

impl Runner for Tasks {
    fn leads(&self) -> bool {
        Tasks::leads(self)
    }

    fn run<'a>(
        &'a self,
        actor: Option<&'a Agent>,
        command: TaskCommand,
    ) -> futures::future::BoxFuture<'a, AppResult<Value>> {
        Box::pin(self.run_here(actor, command))
    }

    fn query(&self, query: RoutingQuery) -> futures::future::BoxFuture<'_, AppResult<Value>> {
        Box::pin(async move {
            let routing = self.routing()?;
            let value = match query {
                RoutingQuery::HeldBy { agent } => json!(routing.tasks_held_by(&agent).await),
                RoutingQuery::TaskOfConversation { conversation } => {
                    json!(routing.task_of_conversation(&conversation).await)
                }
                RoutingQuery::Board => json!(routing.board().await),
                RoutingQuery::Queues => json!(routing.queues().await),
                RoutingQuery::CompleteTask { task } => {
                    routing.complete_task(&task).await?;
                    Value::Null
                }
                RoutingQuery::SetOffline { agent } => {
                    routing.set_offline(&agent).await?;
                    Value::Null
                }
            };
            Ok(value)
        })
    }
}

/// Refuses unless the caller holds the task (supervisors may act on any).
/// Checked inside the engine step, so a task reassigned a moment ago cannot be
/// completed or transferred by its former holder.
fn own_task(engine: &Engine, actor: &Agent, task: &TaskId) -> AppResult<()> {
    match engine.holder(task) {
        Some(agent) if agent.as_str() == actor.id => Ok(()),
        _ if is_supervisor(actor) => Ok(()),
        Some(_) => Err(AppError::forbidden("another agent holds this task")),
        None => Err(AppError::not_found(
            "no live task held by an agent with that id",
        )),
    }
}

/// The routing use cases.
pub struct Tasks {
    store: Store,
    routing: Option<Arc<RoutingService>>,
    notifier: Notifier,
    clock: Clock,
    /// Hands commands to the routing leader when this node follows (several nodes).
    relay: std::sync::OnceLock<Arc<Relay>>,
}

impl Tasks {
    /// Tasks over the store and routing, stamping hand-offs with `clock`.
    pub fn new(
        store: Store,
        routing: Option<Arc<RoutingService>>,
        notifier: Notifier,
        clock: Clock,
    ) -> Tasks {
        Tasks {
            store,
            routing,
            notifier,
            clock,
            relay: std::sync::OnceLock::new(),
        }
    }

    fn routing(&self) -> AppResult<&Arc<RoutingService>> {
        running(&self.routing)
    }

    /// Hands this node's commands (and routing's reads) to the routing leader
    /// while it follows.
    pub fn set_relay(&self, relay: Arc<Relay>) {
        if let Some(routing) = &self.routing {
            routing.set_relay(relay.clone());
        }
        let _ = self.relay.set(relay);
    }

    /// Whether this node drives routing.
    pub fn leads(&self) -> bool {
        self.routing
            .as_ref()
            .is_some_and(|r| r.role() == RoutingRole::Leader)
    }

    /// The leader's answer to `command`, when this node follows and can relay;
    /// `None`: run it here.
    async fn relayed(
        &self,
        actor: Option<&Agent>,
        command: impl FnOnce() -> TaskCommand,
    ) -> Option<AppResult<Value>> {
        let relay = self.relay.get()?;
        if self.routing.is_none() || self.leads() {
            return None;
        }
        Some(relay.ask(actor, command()).await)
    }

    /// Runs a command a follower relayed, here (this node leads).
    pub(crate) async fn run_here(
        &self,
        actor: Option<&Agent>,
        command: TaskCommand,
    ) -> AppResult<Value> {
        let actor = || actor.ok_or_else(|| AppError::bad_request("this command needs an agent"));
        let value = |v: AppResult<()>| v.map(|()| Value::Null);
        match command {
            TaskCommand::Queues => Ok(Value::Array(self.queues().await?)),
            TaskCommand::SaveQueue { queue } => {
                let saved = self.save_queue(queue).await?;
                serde_json::to_value(saved).map_err(AppError::internal)
            }
            TaskCommand::QueueStats { id } => self.queue_stats(&id).await,
            TaskCommand::SetPresence { id, status, reason } => {
                self.set_presence(actor()?, &id, &status, reason).await
            }
            TaskCommand::SetProfile {
                id,
                skills,
                capacity,
            } => self.set_profile(&id, skills, capacity).await,
            TaskCommand::Offers { id } => self.offers(actor()?, &id).await,
            TaskCommand::Accept { reservation } => value(self.accept(actor()?, &reservation).await),
            TaskCommand::Reject { reservation } => value(self.reject(actor()?, &reservation).await),
            TaskCommand::Finish { id, wrap } => value(self.finish(actor()?, &id, wrap).await),
            TaskCommand::Transfer {
                id,
                queue,
                agent_id,
                context,
            } => {
                let body = TransferRequest {
                    queue,
                    agent_id,
                    context,
                };
                self.transfer(actor()?, &id, body).await
            }
        }
    }

    /// Every queue with its live statistics.
    pub async fn queues(&self) -> AppResult<Vec<Value>> {
        if let Some(answer) = self.relayed(None, || TaskCommand::Queues).await {
            return answer.and_then(|v| serde_json::from_value(v).map_err(AppError::internal));
        }
        Ok(self.routing()?.queues().await)
    }

    /// Creates or replaces a queue; its id is its name.
    pub async fn save_queue(&self, queue: Queue) -> AppResult<Queue> {
        if let Some(answer) = self
            .relayed(None, || TaskCommand::SaveQueue {
                queue: queue.clone(),
            })
            .await
        {
            return answer.and_then(|v| serde_json::from_value(v).map_err(AppError::internal));
        }
        if !valid_queue_name(&queue.name) {
            return Err(AppError::bad_request(
                "queue name: 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        self.routing()?.upsert_queue(queue.clone()).await?;
        Ok(queue)
    }

    /// A queue's statistics.
    pub async fn queue_stats(&self, id: &str) -> AppResult<Value> {
        if let Some(answer) = self
            .relayed(None, || TaskCommand::QueueStats { id: id.to_string() })
            .await
        {
            return answer;
        }
        self.routing()?.queue_stats(id).await
    }

    /// Sets the presence of agent `id` (`me` works) on behalf of `actor`.
    pub async fn set_presence(
        &self,
        actor: &Agent,
        id: &str,
        status: &str,
        reason: Option<String>,
    ) -> AppResult<Value> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::SetPresence {
                id: id.to_string(),
                status: status.to_string(),
                reason: reason.clone(),
            })
            .await
        {
            return answer;
        }
        let id = agent_id(actor, id)?;
        let presence = parse_presence(status, reason)?;
        self.routing()?.set_presence(&id, presence).await
    }

    /// Sets an agent's skills and capacity profile.
    pub async fn set_profile(
        &self,
        id: &str,
        skills: Option<Vec<(String, u8)>>,
        capacity: Option<CapacityProfile>,
    ) -> AppResult<Value> {
        if let Some(answer) = self
            .relayed(None, || TaskCommand::SetProfile {
                id: id.to_string(),
                skills: skills.clone(),
                capacity: capacity.clone(),
            })
            .await
        {
            return answer;
        }
        if let Some(skills) = &skills
            && skills.iter().any(|(_, p)| !(1..=5).contains(p))
        {
            return Err(AppError::bad_request("proficiency must be 1-5"));
        }
        self.routing()?
            .set_agent_profile(id, skills, capacity)
            .await
    }

    /// The pending offers of agent `id` (`me` works).
    pub async fn offers(&self, actor: &Agent, id: &str) -> AppResult<Value> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::Offers { id: id.to_string() })
            .await
        {
            return answer;
        }
        let id = agent_id(actor, id)?;
        Ok(self.routing()?.offers(&id).await)
    }

    async fn own_reservation(&self, actor: &Agent, id: &str) -> AppResult<()> {
        match self.routing()?.reservation_agent(id).await {
            Some(agent) if agent == actor.id || is_supervisor(actor) => Ok(()),
            Some(_) => Err(AppError::forbidden("this offer is for another agent")),
            None => Err(AppError::not_found("no such pending offer")),
        }
    }

    /// Accepts an offer; a transferred task's receipt of context is recorded.
    pub async fn accept(&self, actor: &Agent, reservation: &str) -> AppResult<()> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::Accept {
                reservation: reservation.to_string(),
            })
            .await
        {
            return answer.map(drop);
        }
        self.own_reservation(actor, reservation).await?;
        let r = ReservationId::from(reservation);
        let service = self.routing()?;
        let task = service.reservation_task(reservation).await;
        service.apply(|e, now| Ok(e.accept(now, &r)?)).await?;
        if let Some(task) = task {
            self.handoff_received(actor, &task).await;
        }
        Ok(())
    }

    /// Rejects an offer; the task is offered to the next agent.
    pub async fn reject(&self, actor: &Agent, reservation: &str) -> AppResult<()> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::Reject {
                reservation: reservation.to_string(),
            })
            .await
        {
            return answer.map(drop);
        }
        self.own_reservation(actor, reservation).await?;
        let r = ReservationId::from(reservation);
        self.routing()?.apply(|e, now| Ok(e.reject(now, &r)?)).await
    }

    /// After an agent accepted a transferred task: records on the timeline whether the
    /// hand-off reached them with context (the offer showed it), for the context
    /// transfer rate.
    async fn handoff_received(&self, actor: &Agent, task: &Task) {
        let (Some(event_id), Some(conversation)) = (
            task.attributes.get(HANDOFF_ATTRIBUTE),
            task.attributes.get("conversation_id"),
        ) else {
            return;
        };
        let with_context = match self.store.event(event_id).await {
            Ok(e) => e
                .data
                .get("context")
                .and_then(|c| serde_json::from_value::<HandoffContext>(c.clone()).ok())
                .is_some_and(|c| !c.is_empty()),
            Err(_) => false,
        };
        let body = if with_context {
            format!("{} took over with the hand-off context", actor.name)
        } else {
            format!("{} took over without context", actor.name)
        };
        let recorded = self
            .store
            .append_event(NewEvent::internal(
                conversation,
                EventKind::Transfer,
                body,
                Some(&actor.id),
                json!({"handoff": "received", "context_received": with_context,
                    "handoff_event": event_id, "task_id": task.id}),
                self.clock.now_ms(),
            ))
            .await;
        match recorded {
            Ok(e) => self.notifier.timeline_event(&e),
            Err(e) => {
                tracing::warn!(task = %task.id.as_str(), "hand-off receipt not recorded: {e}")
            }
        }
    }

    /// Puts a held task in wrap-up (`wrap`) or completes it.
    pub async fn finish(&self, actor: &Agent, id: &str, wrap: bool) -> AppResult<()> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::Finish {
                id: id.to_string(),
                wrap,
            })
            .await
        {
            return answer.map(drop);
        }
        let t = TaskId::from(id);
        self.routing()?
            .apply(|e, now| {
                own_task(e, actor, &t)?;
                Ok(if wrap {
                    e.wrap_up(now, &t)
                } else {
                    e.complete(now, &t)
                }?)
            })
            .await
    }

    /// A transfer of task `id` by `actor`: to a queue or an agent, with the context
    /// summary recorded on the timeline and pinned to the task for the receiver.
    pub async fn transfer(
        &self,
        actor: &Agent,
        id: &str,
        body: TransferRequest,
    ) -> AppResult<Value> {
        if let Some(answer) = self
            .relayed(Some(actor), || TaskCommand::Transfer {
                id: id.to_string(),
                queue: body.queue.clone(),
                agent_id: body.agent_id.clone(),
                context: body.context.clone(),
            })
            .await
        {
            return answer;
        }
        let id = id.to_string();
        let (to_queue, to_agent) = (body.queue.clone(), body.agent_id.clone());
        let target = RoutingService::target(body.queue, body.agent_id)?;
        let t = TaskId::from(id.as_str());
        let service = self.routing()?;
        let task = service
            .task(&id)
            .await
            .ok_or_else(|| AppError::not_found("no live task with that id"))?;
        // Checked here so nothing is recorded for a transfer that cannot happen, and
        // again inside the engine step against a concurrent change.
        if let Some(q) = &to_queue
            && service.task_queue_exists(q).await.is_none()
        {
            return Err(AppError::not_found(format!("no queue {q:?}")));
        }
        let to_agent_name = match &to_agent {
            Some(a) => Some(self.store.agent(a).await?.name),
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
                        actor.name,
                        c.timeline_text()
                    ),
                    _ => format!(
                        "{} transferred to {target_text} without context",
                        actor.name
                    ),
                };
                Some(
                    self.store
                        .append_event(NewEvent::internal(
                            conversation,
                            EventKind::Transfer,
                            text,
                            Some(&actor.id),
                            json!({"context": context, "to_queue": to_queue, "to_agent": to_agent,
                                "from_agent": actor.id, "task_id": id}),
                            self.clock.now_ms(),
                        ))
                        .await?,
                )
            }
            None => None,
        };
        let handoff_id = handoff.as_ref().map(|e| e.id.clone());
        service
            .apply(|e, now| {
                own_task(e, actor, &t)?;
                if let Some(h) = &handoff_id {
                    e.set_attribute(&t, HANDOFF_ATTRIBUTE, h)?;
                }
                Ok(e.transfer(now, &t, target)?)
            })
            .await?;
        if let Some(e) = &handoff {
            self.notifier.timeline_event(e);
        }
        Ok(json!({"transferred": id, "handoff_event": handoff_id}))
    }
}
