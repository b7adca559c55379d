//! The routing service: drives the sans-IO engine (`switchboard-routing`) with
//! the wall clock, asks the routing policy plugin to classify and rank, writes
//! every step to the store and pushes offers and task changes to agents.
//!
//! One engine per host, behind one lock: every input (an inbound message, a
//! presence change, an accept…) is applied, then waiting work is matched, then
//! the step's changes are written in one transaction and published. A policy
//! plugin that fails or is slow is reported and replaced by the built-in order
//! for that decision, so routing never stops because a plugin broke.
//!
//! On start the engine is restored from the store; offers that expired while
//! the host was down are re-offered.
//!
//! **Several nodes.** Only the node that leads routing (see
//! `switchboard_store::Leadership`: a PostgreSQL advisory lock, and an epoch that
//! fences every routing write) drives an engine. Every node runs this service; a
//! follower's engine is empty, its commands answer `routing_follower` (503), and it
//! hands the new conversations it takes in to the leader through the database
//! (`routing_inbox`), which the leader reads every quarter of
//! [`NodeConfig::leader_poll`]. A follower tries to lead every `leader_poll`; when
//! it wins, it restores the engine from the database, routes open conversations
//! left without a task, and goes on. A leader whose session is lost, or whose write
//! is fenced, steps down: it empties its engine and stops writing. On SQLite the
//! one node always leads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_plugin_host::{CandidateRef, CandidateSet, PluginHost, PluginKind, bindings};
use switchboard_routing::{
    Agent, AgentId, CapacityProfile, Engine, EngineConfig, MatchRequest, NewTask, Output, Presence,
    Queue, QueueId, Reservation, ReservationId, SkillLevel, Target, Task, TaskId, TaskState,
    default_rank,
};
use switchboard_store::{
    AgentRoutingRow, ContactView, HandedInbound, Leadership, QueueRow, ReservationRow,
    RoutingChanges, RoutingLogEntry, Store, StoreError, TaskRow,
};
use tokio::sync::{Mutex, MutexGuard, Notify};

use crate::clock::Clock;
use crate::error::{AppError, ErrorKind};
use crate::events::{Audience, EventBus};

/// The task attribute naming the transfer event whose context travels with the task.
pub const HANDOFF_ATTRIBUTE: &str = "handoff_event";

/// Channel → queue and priority when no policy plugin answers.
const FALLBACK_QUEUES: &[(&str, &str, i32)] = &[
    ("voice", "voice", 15),
    ("chat", "chat", 10),
    ("webchat", "chat", 10),
    ("sms", "messaging", 10),
    ("whatsapp", "messaging", 10),
    ("telegram", "messaging", 10),
    ("email", "email", 5),
];

/// Routing, or the answer that it is not running.
pub fn running(routing: &Option<Arc<RoutingService>>) -> Result<&Arc<RoutingService>, AppError> {
    routing.as_ref().ok_or_else(|| {
        AppError::new(
            ErrorKind::Unavailable,
            "routing_off",
            "routing is not running",
        )
    })
}

/// The routing service. Cheap to share behind an `Arc`.
pub struct RoutingService {
    engine: Mutex<Engine>,
    store: Store,
    plugins: PluginHost,
    hub: Arc<dyn EventBus>,
    timer: Notify,
    /// conversation id → agent holding its task, for realtime audiences.
    holders: StdMutex<HashMap<String, String>>,
    /// conversation id → live task id.
    live: StdMutex<HashMap<String, TaskId>>,
    /// Arrivals and presence changes for the offline replay, when asked for.
    trace: TraceRecorder,
    /// The time routing runs on.
    clock: Clock,
    /// Why the host is canceling a task, for the routing history (`replaced` when a
    /// call takes a chat's place); a cancel without one is the customer leaving.
    cancel_reasons: StdMutex<HashMap<TaskId, &'static str>>,
    /// CRM enrichment, asked before a new task is classified (set once at start).
    crm: std::sync::OnceLock<Arc<crate::crm::Crm>>,
    /// Where a follower reads the leader's engine (several nodes).
    relay: std::sync::OnceLock<Arc<crate::relay::Relay>>,
    /// The engine's settings (a new leader restores with them).
    config: EngineConfig,
    /// This node and how it takes part in leadership.
    node: NodeConfig,
    /// Whether this node leads routing, and the epoch its writes carry.
    lead: StdMutex<Lead>,
}

/// This node's name and leadership timing.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's name (`SWITCHBOARD_NODE_ID`).
    pub id: String,
    /// How often a follower tries to lead, and the leader looks for conversations
    /// a follower took in without a task.
    pub leader_poll: Duration,
    /// How often the leader checks the session that holds its lock.
    pub leader_check: Duration,
    /// NATS, through which a follower hands people's routing commands to the
    /// leader (`crate::relay`); `None`: one node, nothing to relay.
    pub nats_url: Option<String>,
    /// The first token of the relay's NATS subjects (the cluster's stream name).
    pub nats_prefix: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: "local".into(),
            leader_poll: Duration::from_millis(1000),
            leader_check: Duration::from_millis(1000),
            nats_url: None,
            nats_prefix: "switchboard".into(),
        }
    }
}

/// Whether this node drives routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingRole {
    /// It drives the engine.
    Leader,
    /// Another node does.
    Follower,
}

impl RoutingRole {
    /// `leader` or `follower`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingRole::Leader => "leader",
            RoutingRole::Follower => "follower",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Lead {
    leading: bool,
    epoch: Option<i64>,
}

fn task_row(task: &Task, holder: Option<&AgentId>) -> TaskRow {
    TaskRow {
        id: task.id.as_str().to_string(),
        conversation_id: task.attributes.get("conversation_id").cloned(),
        contact_id: task.contact_id.as_ref().map(|c| c.as_str().to_string()),
        channel: task.channel.clone(),
        queue_id: task.queue.as_str().to_string(),
        state: task.state.name().to_string(),
        agent_id: holder.map(|a| a.as_str().to_string()),
        definition: serde_json::to_value(task).unwrap_or(Value::Null),
        arrived_at: task.arrived_at as i64,
    }
}

fn reservation_row(r: &Reservation, state: &str, decided_at: Option<u64>) -> ReservationRow {
    ReservationRow {
        id: r.id.as_str().to_string(),
        task_id: r.task.as_str().to_string(),
        agent_id: r.agent.as_str().to_string(),
        state: state.to_string(),
        offered_at: r.offered_at as i64,
        expires_at: r.expires_at as i64,
        decided_at: decided_at.map(|t| t as i64),
    }
}

/// A presence as its API name and away reason.
fn presence_parts(presence: &Presence) -> (&'static str, Option<String>) {
    let reason = match presence {
        Presence::Away { reason } => Some(reason.clone()),
        _ => None,
    };
    (status(presence), reason)
}

/// The routing history entry of an agent's presence and capacity now.
fn presence_entry(agent: &Agent) -> RoutingLogEntry {
    RoutingLogEntry::Presence {
        agent_id: agent.id.as_str().to_string(),
        status: status(&agent.presence).to_string(),
        capacity: i64::from(agent.capacity.total),
    }
}

fn presence_row(agent: &Agent) -> AgentRoutingRow {
    let (presence, reason) = presence_parts(&agent.presence);
    AgentRoutingRow {
        agent_id: agent.id.as_str().to_string(),
        presence: presence.to_string(),
        presence_reason: reason,
        capacity: serde_json::to_value(&agent.capacity).unwrap_or(Value::Null),
    }
}

/// Parses `available`, `away` (with a reason) or `offline`.
pub fn parse_presence(status: &str, reason: Option<String>) -> Result<Presence, AppError> {
    match status {
        "available" => Ok(Presence::Available),
        "away" => Ok(Presence::Away {
            reason: reason.unwrap_or_else(|| "away".into()),
        }),
        "offline" => Ok(Presence::Offline),
        other => Err(AppError::bad_request(format!(
            "presence must be available, away or offline, not {other:?}"
        ))),
    }
}

impl RoutingService {
    /// Restores routing from the store and starts its timer, on the wall clock.
    pub async fn start(
        store: Store,
        plugins: PluginHost,
        hub: Arc<dyn EventBus>,
        config: EngineConfig,
    ) -> Result<Arc<RoutingService>, AppError> {
        RoutingService::start_with_clock(store, plugins, hub, config, Clock::system()).await
    }

    /// [`RoutingService::start`] on another clock.
    pub async fn start_with_clock(
        store: Store,
        plugins: PluginHost,
        hub: Arc<dyn EventBus>,
        config: EngineConfig,
        clock: Clock,
    ) -> Result<Arc<RoutingService>, AppError> {
        let parts = RoutingParts {
            store,
            plugins,
            hub,
            clock,
        };
        RoutingService::start_on_node(parts, config, NodeConfig::default()).await
    }

    /// Starts routing on a node: leads at once when no other node does (always on
    /// SQLite), else follows and tries to lead every `node.leader_poll`.
    pub async fn start_on_node(
        parts: RoutingParts,
        config: EngineConfig,
        node: NodeConfig,
    ) -> Result<Arc<RoutingService>, AppError> {
        let RoutingParts {
            store,
            plugins,
            hub,
            clock,
        } = parts;
        let engine = Engine::new(config.clone());
        let trace = TraceRecorder::from_env(&engine);
        let service = Arc::new(RoutingService {
            engine: Mutex::new(engine),
            store,
            plugins,
            hub,
            timer: Notify::new(),
            holders: StdMutex::default(),
            live: StdMutex::default(),
            trace,
            clock,
            cancel_reasons: StdMutex::default(),
            crm: std::sync::OnceLock::new(),
            relay: std::sync::OnceLock::new(),
            config,
            node,
            lead: StdMutex::default(),
        });
        let won = service
            .store
            .try_lead(&service.node.id, service.node.leader_check)
            .await?;
        if let Some(lead) = &won {
            service.take_over(lead.epoch()).await?;
        } else {
            tracing::info!(node = %service.node.id, "another node leads routing; following");
        }
        tokio::spawn(timer_loop(Arc::downgrade(&service)));
        tokio::spawn(leadership_loop(Arc::downgrade(&service), won));
        Ok(service)
    }

    /// Whether this node leads routing.
    pub fn role(&self) -> RoutingRole {
        if self.lead.lock().expect("lead").leading {
            RoutingRole::Leader
        } else {
            RoutingRole::Follower
        }
    }

    /// The epoch this node's routing writes carry.
    fn epoch(&self) -> Option<i64> {
        self.lead.lock().expect("lead").epoch
    }

    /// Refuses a command on a follower: the leader's engine is the one that counts.
    fn leading(&self) -> Result<(), AppError> {
        match self.role() {
            RoutingRole::Leader => Ok(()),
            RoutingRole::Follower => Err(AppError::new(
                ErrorKind::Unavailable,
                "routing_follower",
                "another node leads routing; retry, or send this to the leader",
            )),
        }
    }

    /// Becomes the leader under `epoch`: restores the engine from the database,
    /// matches waiting work, and routes conversations left without a task.
    async fn take_over(&self, epoch: Option<i64>) -> Result<(), AppError> {
        {
            let mut engine = self.engine.lock().await;
            *engine = restore_engine(&self.store, &self.config, self.now()).await?;
            *self.lead.lock().expect("lead") = Lead {
                leading: true,
                epoch,
            };
            self.index(&engine);
            self.settle(&mut engine).await;
        }
        tracing::info!(node = %self.node.id, epoch, "leading routing");
        self.route_orphans().await;
        self.timer.notify_one();
        Ok(())
    }

    /// Stops leading: forgets the engine (another node restores it from the
    /// database) and writes nothing more.
    async fn step_down(&self, why: &str) {
        let mut engine = self.engine.lock().await;
        if !self.lead.lock().expect("lead").leading {
            return;
        }
        *self.lead.lock().expect("lead") = Lead::default();
        *engine = Engine::new(self.config.clone());
        self.index(&engine);
        tracing::warn!(node = %self.node.id, "stepped down from routing: {why}");
    }

    /// Routes the new conversations followers handed over: every one waiting, a
    /// batch at a time (a full batch is followed by the next at once, so a busy
    /// follower's hand-overs never queue up behind the poll).
    async fn route_handed(&self) {
        loop {
            let handed = match self.store.take_handed().await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("reading conversations handed over by followers: {e}");
                    return;
                }
            };
            let full = handed.len() >= switchboard_store::HANDED_BATCH;
            for h in handed {
                self.on_inbound_with(&h.conversation_id, &h.contact_id, &h.channel, h.attributes)
                    .await;
            }
            if !full || self.role() != RoutingRole::Leader {
                return;
            }
        }
    }

    /// Creates the routing tasks of open conversations that have none (a crash
    /// between an ingest commit and routing, or a message a follower took in).
    async fn route_orphans(&self) {
        let orphans = match self.store.conversations_without_task().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("looking for conversations without a task: {e}");
                return;
            }
        };
        for (conversation, contact, channel) in orphans {
            if self.role() != RoutingRole::Leader {
                return;
            }
            tracing::info!(
                conversation,
                "creating the routing task of a conversation without one"
            );
            // A follower's hand-over of this conversation, left by a leader that died
            // before reading it, is answered by this task: read after the task ended,
            // it would make a second one.
            if let Err(e) = self.store.forget_handed(&conversation).await {
                tracing::warn!(
                    conversation,
                    "hand-overs of a conversation not cleared: {e}"
                );
            }
            self.on_inbound(&conversation, &contact, &channel).await;
        }
    }

    /// Reads the leader's engine through `relay` while this node follows.
    pub fn set_relay(&self, relay: Arc<crate::relay::Relay>) {
        let _ = self.relay.set(relay);
    }

    /// The relay to the leader, when this node follows and can relay (`None`: this
    /// node's engine answers).
    fn to_leader(&self) -> Option<&Arc<crate::relay::Relay>> {
        self.relay
            .get()
            .filter(|_| self.role() == RoutingRole::Follower)
    }

    /// The leader's answer to `query` when this node follows and can relay
    /// (`None`: answer from this node's engine). A relay failure is logged and
    /// read as an empty answer, like a follower's own engine.
    async fn relayed<T: serde::de::DeserializeOwned + Default>(
        &self,
        query: impl FnOnce() -> crate::relay::RoutingQuery,
    ) -> Option<T> {
        let relay = self.to_leader()?;
        let answer = relay.query(query()).await.and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| AppError::internal(format!("relayed answer: {e}")))
        });
        Some(answer.unwrap_or_else(|e| {
            tracing::warn!("routing read relayed to the leader failed: {e}");
            T::default()
        }))
    }

    /// Sets `agent_id` offline (they were disabled); relayed to the leader when this
    /// node follows.
    pub async fn set_offline(&self, agent_id: &str) -> Result<(), AppError> {
        if let Some(relay) = self.to_leader() {
            let agent = agent_id.to_string();
            return relay
                .query(crate::relay::RoutingQuery::SetOffline { agent })
                .await
                .map(drop);
        }
        self.set_presence(agent_id, Presence::Offline)
            .await
            .map(drop)
    }

    /// Completes task `id` if it is still live (a resolve); relayed to the leader
    /// when this node follows.
    pub async fn complete_task(&self, id: &str) -> Result<(), AppError> {
        if let Some(relay) = self.to_leader() {
            let task = id.to_string();
            return relay
                .query(crate::relay::RoutingQuery::CompleteTask { task })
                .await
                .map(drop);
        }
        let t = TaskId::from(id);
        self.apply(|e, now| {
            // Already gone (completed by someone else a moment ago) is fine.
            if e.task(&t).is_some() {
                e.complete(now, &t)?;
            }
            Ok(())
        })
        .await
    }

    /// Has new tasks wait (up to the CRM's routing budget) for the contact's CRM
    /// enrichment before they are classified, so CRM attributes (`vip`) route them.
    pub fn set_crm(&self, crm: Arc<crate::crm::Crm>) {
        let _ = self.crm.set(crm);
    }

    /// The contact as routing sees it: read once and, when `enrich`, enriched from
    /// the CRMs within their routing budget first (read again only when that
    /// changed it).
    async fn routed_contact(&self, contact_id: &str, enrich: bool) -> Option<ContactView> {
        let contact = self.store.contact(contact_id).await.ok()?;
        if enrich
            && let Some(crm) = self.crm.get()
            && crm.enrich_within(&contact).await
        {
            return self.store.contact(contact_id).await.ok();
        }
        Some(contact)
    }

    /// Now, on routing's clock.
    fn now(&self) -> u64 {
        self.clock.now_ms().max(0) as u64
    }

    /// Handles the timers that are due now (the timer task does this on its own; a
    /// test on a manual clock calls it after moving the clock).
    pub async fn handle_timeouts(&self) {
        if self.leading().is_err() {
            return;
        }
        let mut engine = self.engine.lock().await;
        engine.handle_timeout(self.now());
        self.settle(&mut engine).await;
    }

    fn index(&self, engine: &Engine) {
        let mut holders = self.holders.lock().expect("holders");
        let mut live = self.live.lock().expect("live");
        holders.clear();
        live.clear();
        for task in engine.tasks() {
            if let Some(conversation) = task.attributes.get("conversation_id") {
                live.insert(conversation.clone(), task.id.clone());
                if let Some(agent) = engine.holder(&task.id) {
                    holders.insert(conversation.clone(), agent.as_str().to_string());
                }
            }
        }
    }

    /// Who sees changes to a conversation: supervisors and the agent holding it.
    pub fn audience(&self, conversation_id: &str) -> Audience {
        match self.holders.lock().expect("holders").get(conversation_id) {
            Some(agent) => Audience::Agents(vec![agent.clone()]),
            None => Audience::Supervisors,
        }
    }

    fn policy(&self) -> Option<String> {
        self.plugins
            .list()
            .into_iter()
            .find(|p| p.kind == PluginKind::Routing && p.enabled && p.quarantined.is_none())
            .map(|p| p.id)
    }

    /// Matches waiting work, writes the step and publishes it. Returns the store's
    /// refusal when the step was not written (then none of it happened).
    async fn settle(&self, engine: &mut MutexGuard<'_, Engine>) -> Option<StoreError> {
        let now = self.now();
        let policy = self.policy();
        while let Some(request) = engine.next_match(now) {
            let ranking = match &policy {
                Some(id) => self.rank(engine, id, &request).await,
                None => default_rank(&request),
            };
            if let Err(e) = engine.offer(now, &request.task_id, &ranking) {
                tracing::error!(task = %request.task_id.as_str(), "offer failed: {e}");
                break;
            }
        }
        let mut changes = RoutingChanges {
            at: now as i64,
            epoch: self.epoch(),
            ..RoutingChanges::default()
        };
        let mut events = Vec::new();
        while let Some(output) = engine.poll_output() {
            if let Some(entry) = self.history(engine, &output) {
                changes.log.push(entry);
            }
            self.record(engine, &output, now, &mut changes, &mut events);
        }
        if let Err(e) = self.store.save_routing(&changes).await {
            // Nothing of the step is published: what the database refused did not
            // happen. A fenced node stops leading; otherwise the engine goes back
            // to what the database holds.
            tracing::error!("routing step not persisted: {e}");
            self.undo_step(engine, &e).await;
            return Some(e);
        }
        self.index(engine);
        for (kind, audience, mut data) in events {
            if kind == "offer.created" {
                self.enrich_offer(&mut data).await;
            }
            self.hub.publish(kind, audience, data);
        }
        self.timer.notify_one();
        None
    }

    /// After a refused write: a fenced node empties its engine and follows; else
    /// the engine is restored from the database.
    async fn undo_step(&self, engine: &mut MutexGuard<'_, Engine>, refused: &StoreError) {
        let fenced = matches!(refused, StoreError::Fenced { .. });
        let restored = if fenced {
            None
        } else {
            restore_engine(&self.store, &self.config, self.now())
                .await
                .inspect_err(|e| {
                    tracing::error!("routing cannot reload after a refused write: {e}")
                })
                .ok()
        };
        match restored {
            Some(restored) => **engine = restored,
            None => {
                *self.lead.lock().expect("lead") = Lead::default();
                **engine = Engine::new(self.config.clone());
                tracing::warn!(node = %self.node.id, "stepped down from routing: {refused}");
            }
        }
        self.index(engine);
    }

    fn record(
        &self,
        engine: &Engine,
        output: &Output,
        now: u64,
        changes: &mut RoutingChanges,
        events: &mut Vec<(&'static str, Audience, Value)>,
    ) {
        let decided = |r: &Reservation, state: &str| reservation_row(r, state, Some(now));
        match output {
            Output::Offered { reservation } => {
                changes
                    .reservations
                    .push(reservation_row(reservation, "pending", None));
                let task = engine.task(&reservation.task);
                events.push((
                    "offer.created",
                    Audience::Agents(vec![reservation.agent.as_str().to_string()]),
                    json!({
                        "reservation": reservation,
                        "task": task,
                        "conversation_id": task.and_then(|t| t.attributes.get("conversation_id")),
                    }),
                ));
            }
            Output::ReservationAccepted { reservation } => {
                changes.reservations.push(decided(reservation, "accepted"))
            }
            Output::ReservationRejected { reservation } => {
                changes.reservations.push(decided(reservation, "rejected"))
            }
            Output::ReservationExpired { reservation } => {
                changes.reservations.push(decided(reservation, "expired"));
                events.push((
                    "offer.expired",
                    Audience::Agents(vec![reservation.agent.as_str().to_string()]),
                    json!({"reservation": reservation}),
                ));
            }
            Output::ReservationCanceled { reservation } => {
                changes.reservations.push(decided(reservation, "canceled"));
                events.push((
                    "offer.canceled",
                    Audience::Agents(vec![reservation.agent.as_str().to_string()]),
                    json!({"reservation": reservation}),
                ));
            }
            // The engine forgot the task already, so the generic `task.updated`
            // below cannot describe it: say here that it ended, and who held it.
            Output::TaskCompleted { task, agent } => {
                changes
                    .finished
                    .push((task.as_str().to_string(), "completed".into()));
                let holder = agent.as_ref().map(|a| a.as_str().to_string());
                events.push(finished_event(task, "completed", holder, output));
            }
            Output::TaskCanceled { task } => {
                changes
                    .finished
                    .push((task.as_str().to_string(), "canceled".into()));
                let holder = self.former_holder(task);
                events.push(finished_event(task, "canceled", holder, output));
            }
            Output::AgentSetAway { agent, reason } => {
                if let Some(a) = engine.agent(agent) {
                    changes.agents.push(presence_row(a));
                }
                events.push((
                    "agent.presence",
                    Audience::Agents(vec![agent.as_str().to_string()]),
                    json!({"agent_id": agent, "status": "away", "reason": reason}),
                ));
            }
            _ => {}
        }
        if let Some(id) = output.task()
            && let Some(task) = engine.task(id)
        {
            let holder = engine.holder(id);
            let row = task_row(task, holder);
            let mut agents = Vec::new();
            if let Some(h) = holder {
                agents.push(h.as_str().to_string());
            }
            events.push((
                "task.updated",
                Audience::Agents(agents),
                json!({"task": task, "agent_id": holder, "output": output}),
            ));
            changes.tasks.retain(|t| t.id != row.id);
            changes.tasks.push(row);
        }
    }

    /// The routing history entry of an output, for the reports.
    fn history(&self, engine: &Engine, output: &Output) -> Option<RoutingLogEntry> {
        let offer_ended = |r: &Reservation, how: &str| RoutingLogEntry::OfferEnded {
            task_id: r.task.as_str().to_string(),
            agent_id: r.agent.as_str().to_string(),
            how: how.to_string(),
        };
        Some(match output {
            Output::TaskQueued { task, queue } => {
                let t = engine.task(task)?;
                RoutingLogEntry::Queued {
                    task_id: task.as_str().to_string(),
                    conversation_id: t.attributes.get("conversation_id").cloned(),
                    contact_id: t.contact_id.as_ref().map(|c| c.as_str().to_string()),
                    channel: t.channel.clone(),
                    queue_id: queue.as_str().to_string(),
                    arrived_at: t.arrived_at as i64,
                }
            }
            Output::Offered { reservation } => RoutingLogEntry::Offered {
                task_id: reservation.task.as_str().to_string(),
                agent_id: reservation.agent.as_str().to_string(),
            },
            Output::ReservationRejected { reservation } => offer_ended(reservation, "rejected"),
            Output::ReservationExpired { reservation } => offer_ended(reservation, "expired"),
            Output::ReservationCanceled { reservation } => offer_ended(reservation, "canceled"),
            Output::ReservationAccepted { .. } => return None,
            Output::TaskAssigned { task, agent } => {
                let channel = engine.task(task).map(|t| t.channel.clone())?;
                let capacity = engine.agent(agent).map(|a| a.capacity.clone())?;
                RoutingLogEntry::Assigned {
                    task_id: task.as_str().to_string(),
                    agent_id: agent.as_str().to_string(),
                    cost: i64::from(capacity.cost(&channel)),
                    capacity: i64::from(capacity.total),
                }
            }
            Output::TaskWrapping { task, agent } => RoutingLogEntry::Wrapping {
                task_id: task.as_str().to_string(),
                agent_id: agent.as_str().to_string(),
            },
            Output::TaskCompleted { task, .. } => RoutingLogEntry::Completed {
                task_id: task.as_str().to_string(),
            },
            Output::TaskCanceled { task } => {
                let reason = self
                    .cancel_reasons
                    .lock()
                    .expect("cancel reasons")
                    .remove(task)
                    .unwrap_or("abandoned");
                RoutingLogEntry::Canceled {
                    task_id: task.as_str().to_string(),
                    reason: reason.to_string(),
                }
            }
            Output::TaskOverflowed { task, to, .. } => RoutingLogEntry::Overflowed {
                task_id: task.as_str().to_string(),
                to_queue: to.as_str().to_string(),
            },
            Output::TaskTransferred { task, target } => {
                let (to_queue, to_agent) = match target {
                    Target::Queue(q) => (Some(q.as_str().to_string()), None),
                    Target::Agent(a) => (None, Some(a.as_str().to_string())),
                };
                RoutingLogEntry::Transferred {
                    task_id: task.as_str().to_string(),
                    to_queue,
                    to_agent,
                }
            }
            Output::AgentSetAway { agent, .. } => presence_entry(engine.agent(agent)?),
        })
    }

    /// Who held a task the engine has just forgotten, as of the previous step.
    fn former_holder(&self, task: &TaskId) -> Option<String> {
        let holders = self.holders.lock().expect("holders");
        let live = self.live.lock().expect("live");
        let (conversation, _) = live.iter().find(|(_, t)| *t == task)?;
        holders.get(conversation).cloned()
    }

    async fn rank(&self, engine: &Engine, policy: &str, request: &MatchRequest) -> Vec<AgentId> {
        let Some(task) = engine.task(&request.task_id) else {
            return default_rank(request);
        };
        match plugin_rank(&self.plugins, policy, task, request, self.now()).await {
            Ok(order) => order,
            Err(e) => {
                tracing::warn!(plugin = policy, "rank failed, using the default order: {e}");
                default_rank(request)
            }
        }
    }

    async fn classify(&self, task: &bindings::TaskInfo) -> Classified {
        if let Some(policy) = self.policy() {
            match plugin_classify(&self.plugins, &policy, task).await {
                Ok(c) => return c,
                Err(e) => tracing::warn!(plugin = %policy, "classify failed, using defaults: {e}"),
            }
        }
        fallback_classify(&task.channel)
    }

    async fn ensure_queue(&self, engine: &mut Engine, name: &str) -> QueueId {
        let id = QueueId::from(name);
        if engine.queue(&id).is_none() {
            tracing::warn!(
                queue = name,
                "routing to a queue nobody created; creating it with defaults"
            );
            let queue = Queue::new(id.clone(), name);
            if let Err(e) = self.save_queue(engine, queue).await {
                tracing::error!(queue = name, "could not create queue: {e:?}");
            }
        }
        id
    }

    async fn save_queue(&self, engine: &mut Engine, queue: Queue) -> Result<(), AppError> {
        engine.upsert_queue(self.now(), queue.clone())?;
        self.store
            .upsert_queue(&QueueRow {
                id: queue.id.as_str().to_string(),
                name: queue.name.clone(),
                definition: serde_json::to_value(&queue).map_err(AppError::internal)?,
            })
            .await?;
        Ok(())
    }

    /// A message arrived on a conversation: make sure a task routes it.
    pub async fn on_inbound(&self, conversation_id: &str, contact_id: &str, channel: &str) {
        self.on_inbound_with(conversation_id, contact_id, channel, BTreeMap::new())
            .await;
    }

    /// The policy's view of a task on `conversation_id` with `attributes` so far.
    async fn task_info_for(
        &self,
        id: &TaskId,
        conversation_id: &str,
        contact_id: &str,
        channel: &str,
        attributes: &BTreeMap<String, String>,
        enrich: bool,
    ) -> (bindings::TaskInfo, Option<String>) {
        let contact = self.routed_contact(contact_id, enrich).await;
        let last_agent = self
            .store
            .last_agent_for_contact(contact_id)
            .await
            .ok()
            .flatten();
        let mut attrs = vec![("conversation_id".to_string(), conversation_id.to_string())];
        attrs.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let info = bindings::TaskInfo {
            id: id.as_str().to_string(),
            channel: channel.to_string(),
            conversation_id: Some(conversation_id.to_string()),
            contact: contact.as_ref().map(crate::crm::contact_summary),
            attributes: attrs,
            waiting_ms: 0,
            last_agent: last_agent.clone(),
        };
        (info, last_agent)
    }

    /// The IVR steps the routing policy wants a call on `conversation_id` to run
    /// before it is queued, given the `attributes` gathered so far (empty once the
    /// IVR is done, or when no policy answers).
    pub async fn call_ivr(
        &self,
        conversation_id: &str,
        contact_id: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Vec<bindings::IvrStep> {
        let Some(policy) = self.policy() else {
            return Vec::new();
        };
        let id = TaskId::from(uuid::Uuid::now_v7().to_string().as_str());
        let (info, _) = self
            .task_info_for(
                &id,
                conversation_id,
                contact_id,
                "voice",
                attributes,
                attributes.is_empty(),
            )
            .await;
        match self.plugins.classify(&policy, &info).await {
            Ok(Ok(c)) => c.ivr,
            Ok(Err(e)) => {
                tracing::warn!(plugin = %policy, "classify for the IVR failed, skipping it: {e:?}");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(plugin = %policy, "classify for the IVR failed, skipping it: {e}");
                Vec::new()
            }
        }
    }

    /// Like [`RoutingService::on_inbound`], with task attributes (a call's IVR
    /// answers). A call on a conversation whose chat or message task is still live
    /// takes its place: the conversation has moved to the phone, so the old task is
    /// canceled (waiting) or completed (held by an agent, who is then preferred for
    /// the call as its last agent).
    pub async fn on_inbound_with(
        &self,
        conversation_id: &str,
        contact_id: &str,
        channel: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let handed = HandedInbound {
            conversation_id: conversation_id.to_string(),
            contact_id: contact_id.to_string(),
            channel: channel.to_string(),
            attributes: attributes.clone(),
        };
        if self.leading().is_err() {
            self.hand_to_leader(&handed).await;
            return;
        }
        if channel == "voice" {
            self.make_way_for_call(conversation_id).await;
        }
        if self
            .live
            .lock()
            .expect("live")
            .contains_key(conversation_id)
        {
            return;
        }
        let id = TaskId::from(uuid::Uuid::now_v7().to_string().as_str());
        let (info, last_agent) = self
            .task_info_for(&id, conversation_id, contact_id, channel, &attributes, true)
            .await;
        let (queue, priority, skills) = self.classify(&info).await;
        let mut engine = self.engine.lock().await;
        if self
            .live
            .lock()
            .expect("live")
            .contains_key(conversation_id)
        {
            return;
        }
        let queue = self.ensure_queue(&mut engine, &queue).await;
        let mut new = NewTask::new(id, channel, queue);
        new.priority = priority;
        new.required_skills = skills;
        new.attributes = attributes;
        new.attributes
            .insert("conversation_id".to_string(), conversation_id.to_string());
        new.contact_id = Some(contact_id.into());
        new.last_agent = last_agent.map(|a| AgentId::from(a.as_str()));
        let at = self.now();
        let line = self.trace.arrival(at, &new, info.contact.as_ref());
        if let Err(e) = engine.enqueue(at, new) {
            tracing::error!(conversation = conversation_id, "task not created: {e}");
            return;
        }
        self.trace.write(line);
        if self.settle(&mut engine).await.is_some() {
            // The task was not written (this node was deposed without knowing, or the
            // database failed) and nothing will look for it before the next takeover:
            // hand it to whoever leads now, maybe this node with its engine reloaded.
            drop(engine);
            self.hand_to_leader(&handed).await;
        }
    }

    /// Hands a new conversation to the routing leader through the database.
    async fn hand_to_leader(&self, handed: &HandedInbound) {
        if let Err(e) = self.store.hand_to_leader(handed).await {
            // The next leader's search for conversations without a task finds it.
            tracing::warn!(
                conversation = handed.conversation_id.as_str(),
                "not handed to the routing leader: {e}"
            );
        }
    }

    async fn make_way_for_call(&self, conversation_id: &str) {
        let Some(id) = self.live_task_id(conversation_id) else {
            return;
        };
        let mut engine = self.engine.lock().await;
        let Some(task) = engine.task(&id) else {
            return;
        };
        if task.channel == "voice" {
            return;
        }
        let result = if worked_by(&task.state).is_some() {
            engine.complete(self.now(), &id)
        } else {
            self.cancel_reasons
                .lock()
                .expect("cancel reasons")
                .insert(id.clone(), "replaced");
            engine.cancel(self.now(), &id)
        };
        if let Err(e) = result {
            tracing::warn!(
                conversation = conversation_id,
                "could not end the task a call replaces: {e}"
            );
        }
        self.settle(&mut engine).await;
    }

    /// A call's task after the caller is gone: waiting or offered, it is canceled
    /// (an abandon); held by an agent, it moves to wrap-up. Returns whether it
    /// changed.
    pub async fn cancel_conversation_task(&self, conversation_id: &str) -> bool {
        let Some(id) = self.live_task_id(conversation_id) else {
            return false;
        };
        let mut engine = self.engine.lock().await;
        let ended = match engine.task(&id).map(|t| &t.state) {
            Some(TaskState::Assigned { .. }) => engine.wrap_up(self.now(), &id),
            Some(TaskState::Wrapping { .. }) | None => return false,
            Some(_) => engine.cancel(self.now(), &id),
        };
        if let Err(e) = &ended {
            tracing::warn!(
                conversation = conversation_id,
                "could not end the task: {e}"
            );
        }
        self.settle(&mut engine).await;
        ended.is_ok()
    }

    /// Records that the agent put the customer of `conversation_id`'s live task on hold
    /// (`held`) or took them off it, for the reports' hold time.
    pub async fn record_hold(&self, conversation_id: &str, held: bool) {
        let Some(id) = self.live_task_id(conversation_id) else {
            return;
        };
        let _engine = self.engine.lock().await;
        let changes = RoutingChanges {
            at: self.now() as i64,
            log: vec![RoutingLogEntry::Hold {
                task_id: id.as_str().to_string(),
                held,
            }],
            epoch: self.epoch(),
            ..RoutingChanges::default()
        };
        if let Err(e) = self.store.save_routing(&changes).await {
            tracing::warn!(conversation = conversation_id, "hold not recorded: {e}");
        }
    }

    /// Runs one engine input and settles.
    pub async fn apply<T>(
        &self,
        input: impl FnOnce(&mut Engine, u64) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        self.leading()?;
        let mut engine = self.engine.lock().await;
        let result = input(&mut engine, self.now());
        // A command the database refused did not happen: never answer it as done.
        if let Some(refused) = self.settle(&mut engine).await {
            return Err(refused.into());
        }
        result
    }

    /// Creates or replaces a queue.
    pub async fn upsert_queue(&self, queue: Queue) -> Result<(), AppError> {
        self.leading()?;
        let mut engine = self.engine.lock().await;
        self.save_queue(&mut engine, queue).await?;
        self.settle(&mut engine).await;
        Ok(())
    }

    /// Sets an agent's presence, loading the agent from the store if new.
    pub async fn set_presence(
        &self,
        agent_id: &str,
        presence: Presence,
    ) -> Result<Value, AppError> {
        self.leading()?;
        let mut engine = self.engine.lock().await;
        let id = AgentId::from(agent_id);
        if engine.agent(&id).is_none() {
            let stored = self.store.agent(agent_id).await?;
            let mut agent = Agent::new(id.clone());
            agent.skills = stored
                .skills
                .iter()
                .map(|s| (s.name().to_string(), s.proficiency()))
                .collect();
            engine.upsert_agent(self.now(), agent)?;
        }
        let at = self.now();
        engine.set_presence(at, &id, presence)?;
        if let Some(agent) = engine.agent(&id) {
            self.trace.write(self.trace.presence(at, agent));
        }
        let row = engine.agent(&id).map(presence_row);
        if let (Some(row), Some(agent)) = (&row, engine.agent(&id)) {
            let saved = self
                .store
                .save_routing(&RoutingChanges {
                    agents: vec![row.clone()],
                    at: at as i64,
                    log: vec![presence_entry(agent)],
                    epoch: self.epoch(),
                    ..Default::default()
                })
                .await;
            if let Err(e) = saved {
                self.undo_step(&mut engine, &e).await;
                return Err(e.into());
            }
        }
        self.settle(&mut engine).await;
        Ok(json!(row))
    }

    /// Replaces an agent's skills and capacity profile.
    pub async fn set_agent_profile(
        &self,
        agent_id: &str,
        skills: Option<Vec<(String, u8)>>,
        capacity: Option<CapacityProfile>,
    ) -> Result<Value, AppError> {
        // A host service's change (a new agent's skills) on a follower goes to the
        // leader; people's commands were relayed before they got here (`Tasks`).
        if let Some(relay) = self.to_leader() {
            let command = crate::relay::TaskCommand::SetProfile {
                id: agent_id.to_string(),
                skills,
                capacity,
            };
            return relay.ask(None, command).await;
        }
        self.leading()?;
        let mut engine = self.engine.lock().await;
        let id = AgentId::from(agent_id);
        let mut agent = match engine.agent(&id) {
            Some(a) => a.clone(),
            None => {
                self.store.agent(agent_id).await?;
                Agent::new(id.clone())
            }
        };
        if let Some(s) = skills {
            agent.skills = s;
        }
        if let Some(c) = capacity {
            agent.capacity = c;
        }
        let at = self.now();
        engine.upsert_agent(at, agent.clone())?;
        let saved = self
            .store
            .save_routing(&RoutingChanges {
                agents: vec![presence_row(&agent)],
                at: at as i64,
                log: vec![presence_entry(&agent)],
                epoch: self.epoch(),
                ..Default::default()
            })
            .await;
        if let Err(e) = saved {
            self.undo_step(&mut engine, &e).await;
            return Err(e.into());
        }
        self.settle(&mut engine).await;
        Ok(json!(agent))
    }

    /// Adds to an offer what the agent decides on: the conversation, the customer and
    /// the hand-off context of a transfer (attribute [`HANDOFF_ATTRIBUTE`]).
    pub async fn enrich_offer(&self, offer: &mut Value) {
        let conversation = match offer["conversation_id"].as_str() {
            Some(id) => self.store.conversation(id).await.ok(),
            None => None,
        };
        let contact = match &conversation {
            Some(c) => self.store.contact(&c.contact_id).await.ok(),
            None => None,
        };
        offer["conversation"] = json!(conversation.as_ref().map(|c| json!({
            "id": c.id, "display_id": c.display_id, "display": c.display(),
            "last_channel": c.last_channel,
        })));
        offer["contact"] = json!(
            contact
                .as_ref()
                .map(|c| json!({"id": c.id, "display_name": c.display_name}))
        );
        let handoff = match offer["task"]["attributes"][HANDOFF_ATTRIBUTE].as_str() {
            Some(event_id) => self.handoff(event_id).await,
            None => None,
        };
        offer["handoff"] = json!(handoff);
    }

    /// The hand-off recorded by a transfer event, as offers show it.
    pub async fn handoff(&self, event_id: &str) -> Option<Value> {
        let event = self.store.event(event_id).await.ok()?;
        let from = match &event.author_agent_id {
            Some(id) => self.store.agent(id).await.ok(),
            None => None,
        };
        Some(json!({
            "event_id": event.id,
            "from_agent": from.map(|a| json!({"id": a.id, "name": a.name})),
            "context": event.data.get("context"),
            "at": event.occurred_at,
        }))
    }

    /// The agent's pending offers with their tasks.
    pub async fn offers(&self, agent_id: &str) -> Value {
        let mut offers = self.raw_offers(agent_id).await;
        for offer in &mut offers {
            self.enrich_offer(offer).await;
        }
        json!({ "offers": offers })
    }

    async fn raw_offers(&self, agent_id: &str) -> Vec<Value> {
        let engine = self.engine.lock().await;
        engine
            .reservations_of(&AgentId::from(agent_id))
            .into_iter()
            .map(|r| {
                let task = engine.task(&r.task);
                json!({
                    "reservation": r,
                    "task": task,
                    "conversation_id": task.and_then(|t| t.attributes.get("conversation_id")),
                })
            })
            .collect()
    }

    /// Checks that `agent_id` holds the offer.
    pub async fn reservation_agent(&self, reservation: &str) -> Option<String> {
        let engine = self.engine.lock().await;
        engine
            .reservation(&ReservationId::from(reservation))
            .map(|r| r.agent.as_str().to_string())
    }

    /// Every queue with its statistics.
    pub async fn queues(&self) -> Vec<Value> {
        if let Some(queues) = self.relayed(|| crate::relay::RoutingQuery::Queues).await {
            return queues;
        }
        let engine = self.engine.lock().await;
        let now = self.now();
        engine
            .queues()
            .map(|q| json!({"queue": q, "stats": engine.queue_stats(now, &q.id).ok()}))
            .collect()
    }

    /// One queue's statistics.
    pub async fn queue_stats(&self, id: &str) -> Result<Value, AppError> {
        let engine = self.engine.lock().await;
        let stats = engine.queue_stats(self.now(), &QueueId::from(id))?;
        Ok(json!({"queue_id": id, "stats": stats}))
    }

    /// `Some(())` if a queue with this id exists.
    pub async fn task_queue_exists(&self, queue: &str) -> Option<()> {
        self.engine
            .lock()
            .await
            .queue(&QueueId::from(queue))
            .map(|_| ())
    }

    /// The live tasks `agent_id` is working on (assigned or wrapping up).
    pub async fn tasks_held_by(&self, agent_id: &str) -> Vec<Task> {
        let agent = agent_id.to_string();
        if let Some(held) = self
            .relayed(|| crate::relay::RoutingQuery::HeldBy { agent })
            .await
        {
            return held;
        }
        let engine = self.engine.lock().await;
        engine
            .tasks()
            .filter(|t| worked_by(&t.state).is_some_and(|a| a.as_str() == agent_id))
            .cloned()
            .collect()
    }

    /// The live task of a conversation, if it has one.
    pub async fn task_of_conversation(&self, conversation_id: &str) -> Option<Task> {
        let conversation = conversation_id.to_string();
        if let Some(task) = self
            .relayed(|| crate::relay::RoutingQuery::TaskOfConversation { conversation })
            .await
        {
            return task;
        }
        let id = self.live_task_id(conversation_id)?;
        self.engine.lock().await.task(&id).cloned()
    }

    fn live_task_id(&self, conversation_id: &str) -> Option<TaskId> {
        self.live
            .lock()
            .expect("live")
            .get(conversation_id)
            .cloned()
    }

    /// A live task by id.
    pub async fn task(&self, id: &str) -> Option<Task> {
        self.engine.lock().await.task(&TaskId::from(id)).cloned()
    }

    /// The task a pending offer is for.
    pub async fn reservation_task(&self, reservation: &str) -> Option<Task> {
        let engine = self.engine.lock().await;
        let r = engine.reservation(&ReservationId::from(reservation))?;
        engine.task(&r.task).cloned()
    }

    /// What the wallboard shows live: every agent's presence and load per channel,
    /// and every waiting task's channel, queue and wait.
    pub async fn board(&self) -> Board {
        if let Some(board) = self.relayed(|| crate::relay::RoutingQuery::Board).await {
            return board;
        }
        let engine = self.engine.lock().await;
        let now = self.now();
        let mut agents: BTreeMap<String, AgentBoard> = engine
            .agents()
            .map(|a| {
                let (presence, reason) = presence_parts(&a.presence);
                (
                    a.id.as_str().to_string(),
                    AgentBoard {
                        id: a.id.as_str().to_string(),
                        presence: presence.to_string(),
                        reason,
                        load: BTreeMap::new(),
                        used: engine.agent_load(&a.id).unwrap_or(0),
                        total: a.capacity.total,
                        capacity: a.capacity.clone(),
                        skills: a.skills.clone(),
                    },
                )
            })
            .collect();
        let mut waiting = Vec::new();
        for task in engine.tasks() {
            match engine.holder(&task.id) {
                Some(agent) if !matches!(task.state, TaskState::Reserved { .. }) => {
                    if let Some(a) = agents.get_mut(agent.as_str()) {
                        *a.load.entry(task.channel.clone()).or_default() += 1;
                    }
                }
                _ => waiting.push(WaitingTask {
                    channel: task.channel.clone(),
                    queue: task.queue.as_str().to_string(),
                    waiting_ms: now.saturating_sub(task.queued_at),
                }),
            }
        }
        Board {
            agents: agents.into_values().collect(),
            waiting,
        }
    }

    /// A rough wait for the customer of `conversation_id`: the median answer time of
    /// the queue's tasks `answered_waits` (today's), times the tasks ahead per
    /// available agent. `Some(0)` when an agent already has it or someone is free.
    pub async fn estimate_wait(
        &self,
        conversation_id: &str,
        answered_waits: impl Fn(&str) -> Vec<u64>,
    ) -> Option<u64> {
        let id = self.live_task_id(conversation_id)?;
        let engine = self.engine.lock().await;
        let task = engine.task(&id)?;
        if !matches!(task.state, TaskState::Pending) {
            return Some(0);
        }
        let ahead = engine
            .tasks()
            .filter(|t| {
                t.queue == task.queue
                    && matches!(t.state, TaskState::Pending)
                    && (t.priority, std::cmp::Reverse(t.arrived_at))
                        > (task.priority, std::cmp::Reverse(task.arrived_at))
            })
            .count() as u64;
        let available = engine
            .agents()
            .filter(|a| a.presence == Presence::Available)
            .count() as u64;
        let mut waits = answered_waits(task.queue.as_str());
        waits.sort_unstable();
        let typical = waits
            .get(waits.len() / 2)
            .copied()
            .unwrap_or(120_000)
            .max(30_000);
        Some(typical * (1 + ahead / available.max(1)))
    }

    /// Turns a transfer body into a target.
    pub fn target(queue: Option<String>, agent: Option<String>) -> Result<Target, AppError> {
        match (queue, agent) {
            (Some(q), None) => Ok(Target::Queue(QueueId::from(q.as_str()))),
            (None, Some(a)) => Ok(Target::Agent(AgentId::from(a.as_str()))),
            _ => Err(AppError::bad_request(
                "give exactly one of `queue` or `agent_id`",
            )),
        }
    }
}

/// The agent working on a task (assigned or wrapping up; an offer is not work yet).
pub fn worked_by(state: &TaskState) -> Option<&AgentId> {
    match state {
        TaskState::Assigned { agent } | TaskState::Wrapping { agent } => Some(agent),
        _ => None,
    }
}

/// Live routing state for the wallboard.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Board {
    /// Every agent the engine knows.
    pub agents: Vec<AgentBoard>,
    /// Tasks not yet held by an agent (pending or being offered).
    pub waiting: Vec<WaitingTask>,
}

/// One agent on the wallboard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AgentBoard {
    /// Agent id.
    pub id: String,
    /// `available`, `away`, `offline`.
    pub presence: String,
    /// Why away.
    pub reason: Option<String>,
    /// Tasks held (assigned or wrapping) per channel.
    pub load: BTreeMap<String, u32>,
    /// Capacity in use (offers included).
    pub used: u32,
    /// Total capacity.
    pub total: u32,
    /// The capacity profile.
    pub capacity: CapacityProfile,
    /// Skills with proficiency.
    pub skills: Vec<SkillLevel>,
}

/// A task waiting for an agent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WaitingTask {
    /// Its channel.
    pub channel: String,
    /// Its queue.
    pub queue: String,
    /// How long it has been in that queue (ms).
    pub waiting_ms: u64,
}

/// `task.updated` for a task that ended (`completed` or `canceled`), for
/// supervisors and the agent who held it.
fn finished_event(
    task: &TaskId,
    state: &str,
    holder: Option<String>,
    output: &Output,
) -> (&'static str, Audience, Value) {
    (
        "task.updated",
        Audience::Agents(holder.iter().cloned().collect()),
        json!({"task": null, "task_id": task, "state": state, "agent_id": holder, "output": output}),
    )
}

/// What classification decided: queue name, priority, required skills.
pub type Classified = (String, i32, Vec<(String, u8)>);

/// The built-in classification: queue and priority by channel.
pub fn fallback_classify(channel: &str) -> Classified {
    let (queue, priority) = FALLBACK_QUEUES
        .iter()
        .find(|(c, _, _)| *c == channel)
        .map(|(_, q, p)| (q.to_string(), *p))
        .unwrap_or(("general".to_string(), 5));
    (queue, priority, Vec::new())
}

/// Whether `name` may name a queue: 1-64 ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Asks a routing policy plugin to classify a task. A queue name that no
/// queue may have is an error, so the caller falls back to the defaults
/// instead of creating that queue.
pub async fn plugin_classify(
    plugins: &PluginHost,
    policy: &str,
    task: &bindings::TaskInfo,
) -> Result<Classified, String> {
    match plugins.classify(policy, task).await {
        Ok(Ok(c)) if !valid_queue_name(&c.queue) => Err(format!(
            "queue {:?} is not a queue name (1-64 letters, digits, '-', '_' or '.')",
            c.queue
        )),
        Ok(Ok(c)) => Ok((
            c.queue,
            c.priority,
            c.required_skills
                .into_iter()
                .map(|s| (s.skill, s.min_proficiency))
                .collect(),
        )),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Asks a routing policy plugin to rank the candidates of a match; agents it
/// leaves out are not offered this round.
pub async fn plugin_rank(
    plugins: &PluginHost,
    policy: &str,
    task: &Task,
    request: &MatchRequest,
    now: u64,
) -> Result<Vec<AgentId>, String> {
    let info = task_info(task, now);
    // Copied by column, not candidate by candidate (see `CandidateSet`).
    let candidates = CandidateSet::from_refs(request.candidates.iter().map(|c| CandidateRef {
        id: c.agent_id.as_str(),
        skills: &c.skills,
        idle_ms: c.idle_ms,
        load: c.load,
        capacity: c.capacity,
        served_contact_last: c.served_contact_last,
        attributes: &[],
    }));
    match plugins.rank(policy, &info, &candidates).await {
        Ok(Ok(order)) => Ok(order
            .into_iter()
            .filter_map(|i| request.candidates.get(i as usize))
            .map(|c| c.agent_id.clone())
            .collect()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The WIT view of an engine task.
pub fn task_info(task: &Task, now: u64) -> bindings::TaskInfo {
    bindings::TaskInfo {
        id: task.id.as_str().to_string(),
        channel: task.channel.clone(),
        conversation_id: task.attributes.get("conversation_id").cloned(),
        contact: None,
        attributes: task
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        waiting_ms: now.saturating_sub(task.arrived_at),
        last_agent: task.last_agent.as_ref().map(|a| a.as_str().to_string()),
    }
}

/// Records live routing inputs as a trace for `switchboard routing replay` (format in
/// ROUTING.md) when `SWITCHBOARD_ROUTING_TRACE` names a file: a `setup` line (queues,
/// agents, engine settings) when the file is new, then one JSON line per task created
/// (`arrival`) and per presence change (`presence`, with the agent's skills and
/// capacity). Handle times and customers' patience are not known live and are left
/// out; the replay defaults them. Lines are appended under the engine lock, so they
/// are in time order. A write that fails is logged and routing goes on.
struct TraceRecorder {
    file: Option<StdMutex<std::fs::File>>,
}

impl TraceRecorder {
    const ENV: &'static str = "SWITCHBOARD_ROUTING_TRACE";

    fn from_env(engine: &Engine) -> TraceRecorder {
        let off = TraceRecorder { file: None };
        let Some(path) = std::env::var_os(Self::ENV).filter(|p| !p.is_empty()) else {
            return off;
        };
        let path = std::path::PathBuf::from(path);
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|f| Ok((f.metadata()?.len() == 0, f)));
        let (new, file) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(path = %path.display(), "routing trace not recorded: {e}");
                return off;
            }
        };
        tracing::info!(path = %path.display(), "recording the routing trace");
        let recorder = TraceRecorder {
            file: Some(StdMutex::new(file)),
        };
        if new {
            let queues: Vec<Value> = engine
                .queues()
                .map(|q| {
                    json!({"name": q.id, "sla_target_ms": q.sla_target_ms, "priority": q.priority,
                        "required_skills": q.required_skills, "steps": q.steps, "channels": q.channels})
                })
                .collect();
            let agents: Vec<Value> = engine
                .agents()
                .map(|a| json!({"id": a.id, "skills": a.skills, "capacity": a.capacity, "status": status(&a.presence)}))
                .collect();
            recorder.write(Some(
                json!({"type": "setup", "queues": queues, "agents": agents,
                "engine": engine.config()}),
            ));
        }
        recorder
    }

    /// The line for a task about to be created (`None` when not recording).
    fn arrival(
        &self,
        at_ms: u64,
        task: &NewTask,
        contact: Option<&bindings::ContactSummary>,
    ) -> Option<Value> {
        self.file.as_ref()?;
        let contact_attributes: BTreeMap<&str, &str> = contact
            .map(|c| {
                c.attributes
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        Some(
            json!({"type": "arrival", "at_ms": at_ms, "task": task.id, "channel": task.channel,
            "attributes": task.attributes, "contact": task.contact_id,
            "contact_attributes": contact_attributes, "last_agent": task.last_agent}),
        )
    }

    /// The line for an agent whose presence just changed (`None` when not recording).
    fn presence(&self, at_ms: u64, agent: &Agent) -> Option<Value> {
        self.file.as_ref()?;
        let reason = match &agent.presence {
            Presence::Away { reason } => Some(reason.as_str()),
            _ => None,
        };
        Some(
            json!({"type": "presence", "at_ms": at_ms, "agent": agent.id,
            "status": status(&agent.presence), "reason": reason, "skills": agent.skills,
            "capacity": agent.capacity}),
        )
    }

    fn write(&self, line: Option<Value>) {
        let (Some(file), Some(line)) = (&self.file, line) else {
            return;
        };
        let mut text = line.to_string();
        text.push('\n');
        let mut file = file.lock().expect("trace file");
        if let Err(e) = std::io::Write::write_all(&mut *file, text.as_bytes()) {
            tracing::warn!("routing trace line not written: {e}");
        }
    }
}

fn status(presence: &Presence) -> &'static str {
    match presence {
        Presence::Available => "available",
        Presence::Away { .. } => "away",
        Presence::Offline => "offline",
    }
}

/// What [`RoutingService::start_on_node`] builds on.
pub struct RoutingParts {
    /// The database.
    pub store: Store,
    /// The plugin sandbox (routing policies).
    pub plugins: PluginHost,
    /// Where offers and task changes are published.
    pub hub: Arc<dyn EventBus>,
    /// The time routing runs on.
    pub clock: Clock,
}

/// The engine as the database has it.
async fn restore_engine(
    store: &Store,
    config: &EngineConfig,
    now: u64,
) -> Result<Engine, AppError> {
    let snapshot = store.load_routing().await?;
    let queues: Vec<Queue> = snapshot
        .queues
        .iter()
        .filter_map(|q| serde_json::from_value(q.definition.clone()).ok())
        .collect();
    let routing: HashMap<String, AgentRoutingRow> = snapshot
        .agents
        .into_iter()
        .map(|a| (a.agent_id.clone(), a))
        .collect();
    let agents: Vec<Agent> = store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| {
            let row = routing.get(&a.id);
            let presence = match row {
                Some(r) => parse_presence(&r.presence, r.presence_reason.clone())
                    .unwrap_or(Presence::Offline),
                None => Presence::Offline,
            };
            Agent {
                id: AgentId::from(a.id.as_str()),
                skills: a
                    .skills
                    .iter()
                    .map(|s| (s.name().to_string(), s.proficiency()))
                    .collect(),
                presence,
                capacity: row
                    .and_then(|r| serde_json::from_value(r.capacity.clone()).ok())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let tasks: Vec<Task> = snapshot
        .tasks
        .iter()
        .filter_map(|t| serde_json::from_value(t.definition.clone()).ok())
        .collect();
    let reservations: Vec<Reservation> = snapshot
        .reservations
        .iter()
        .map(|r| Reservation {
            id: ReservationId::from(r.id.as_str()),
            task: TaskId::from(r.task_id.as_str()),
            agent: AgentId::from(r.agent_id.as_str()),
            offered_at: r.offered_at as u64,
            expires_at: r.expires_at as u64,
        })
        .collect();
    Engine::restore(config.clone(), queues, agents, tasks, reservations, now)
        .map_err(|e| AppError::internal(format!("routing state cannot be restored: {e}")))
}

/// Follows leadership for the life of the service: a follower tries to lead every
/// `leader_poll`; the leader routes what followers handed over four times as often
/// and steps down when its session is lost.
async fn leadership_loop(service: std::sync::Weak<RoutingService>, mut held: Option<Leadership>) {
    let Some(node) = service.upgrade().map(|s| s.node.clone()) else {
        return;
    };
    let mut beat = 0u32;
    loop {
        // A sign of life every poll interval, for the leader's view of dead nodes.
        if beat.is_multiple_of(4)
            && let Some(s) = service.upgrade()
            && let Err(e) = s.store.node_seen(&node.id).await
        {
            tracing::warn!(node = %node.id, "could not record this node as alive: {e}");
        }
        beat = beat.wrapping_add(if held.is_some() { 1 } else { 4 });
        match &held {
            Some(lead) => {
                tokio::select! {
                    () = lead.lost() => {
                        let Some(s) = service.upgrade() else { return };
                        s.step_down("its database session was lost").await;
                        held = None;
                    }
                    () = tokio::time::sleep(node.leader_poll / 4) => {
                        let Some(s) = service.upgrade() else { return };
                        if s.role() == RoutingRole::Follower {
                            // Stepped down after a fenced write: let the lock go.
                            held = None;
                        } else {
                            s.route_handed().await;
                        }
                    }
                }
            }
            None => {
                tokio::time::sleep(node.leader_poll).await;
                let Some(s) = service.upgrade() else { return };
                match s.store.try_lead(&node.id, node.leader_check).await {
                    Ok(Some(lead)) => match s.take_over(lead.epoch()).await {
                        Ok(()) => held = Some(lead),
                        Err(e) => {
                            tracing::error!(node = %node.id, "could not take over routing: {e}")
                        }
                    },
                    Ok(None) => {}
                    Err(e) => tracing::warn!(node = %node.id, "trying to lead routing: {e}"),
                }
            }
        }
    }
}

async fn timer_loop(service: std::sync::Weak<RoutingService>) {
    loop {
        let Some(s) = service.upgrade() else { return };
        let next = s.engine.lock().await.poll_timeout();
        let wait = match next {
            Some(at) => Duration::from_millis(at.saturating_sub(s.now()).min(60_000)),
            None => Duration::from_secs(60),
        };
        {
            let timer = s.timer.notified();
            tokio::pin!(timer);
            tokio::select! {
                _ = tokio::time::sleep(wait) => s.handle_timeouts().await,
                _ = &mut timer => {}
            }
        }
        drop(s);
    }
}
