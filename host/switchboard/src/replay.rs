//! `switchboard routing replay`: a recorded arrival trace through routing policies on
//! virtual time, with the real engine, and their outcomes side by side.
//!
//! The trace (JSON Lines, see ROUTING.md) holds a `setup` line (queues, agents, how long
//! agents take to accept) and then `arrival` and `presence` events ordered by `at_ms`.
//! For each policy the replay builds a fresh [`Engine`], plays the events at their
//! instants and plays the agents: every offer is accepted `accept_delay_ms` later, the
//! task is held for its `handle_ms` and then completed; a customer whose
//! `abandon_after_ms` passes while still waiting gives up (the task is canceled). Between
//! events the clock jumps to the next event or engine timer, so hours replay in moments.
//!
//! A policy is either a routing plugin folder, loaded into its own [`PluginHost`] whose
//! clock is the virtual time, and asked through the same adapters the live service uses
//! ([`plugin_classify`], [`plugin_rank`]); or the host's built-in policy
//! ([`fallback_classify`] and [`default_rank`]). A failing plugin call falls back to the
//! built-in answer for that decision, as live, and is counted.
//!
//! Everything is deterministic: ties in time are broken by the order events were
//! scheduled, maps are ordered, and plugins see a fixed clock.

use crate::offline::OfflineServices;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use switchboard_app::routing::{fallback_classify, plugin_classify, plugin_rank};
use switchboard_plugin_host::{Limits, LoadSpec, PluginHost, PluginKind, bindings};
use switchboard_routing::{
    Agent, AgentId, CapacityProfile, Engine, EngineConfig, MatchRequest, NewTask, Output, Presence,
    Queue, QueueId, ReservationId, RoutingStep, SkillLevel, TaskId, TaskState, default_rank,
};

/// How long an agent takes to accept an offer when the trace does not say.
pub const DEFAULT_ACCEPT_DELAY_MS: u64 = 2_000;
/// How long a task is handled when its arrival does not say (live traces never do).
pub const DEFAULT_HANDLE_MS: u64 = 300_000;

/// `switchboard routing replay` options.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The trace: JSON Lines, a `setup` line then `arrival` and `presence` events.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// A routing policy plugin folder (plugin.toml + .wasm); give it twice to compare
    /// two policies.
    #[arg(long = "policy", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// Add the host's built-in policy (fallback classification + default ranking) as
    /// a column.
    #[arg(long)]
    pub native: bool,
    /// Print the reports as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if args.policies.is_empty() && !args.native {
        bail!("give at least one --policy DIR, or --native");
    }
    if args.policies.len() > 2 {
        bail!("at most two --policy folders are compared side by side");
    }
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("reading {}", args.trace.display()))?;
    let trace = Trace::parse(&text).with_context(|| format!("in {}", args.trace.display()))?;
    let mut policies = Vec::new();
    for dir in &args.policies {
        policies.push(Policy::load(dir)?);
    }
    if args.native {
        policies.push(Policy::Native);
    }
    let mut reports = Vec::new();
    for policy in &policies {
        reports.push(replay(&trace, policy).await?);
    }
    label_duplicates(&mut reports);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!(
            "{}",
            render(&args.trace.display().to_string(), &trace, &reports)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The trace format
// ---------------------------------------------------------------------------

/// One line of a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line: who and what exists when the trace starts.
    Setup(Setup),
    /// A conversation or call that needs a person.
    Arrival(Arrival),
    /// An agent's presence changes.
    Presence(PresenceChange),
}

/// The trace's first line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Queues with their SLA targets, skills and steps. A queue a policy names that is
    /// missing here is created with defaults (SLA 20 s), as the live host does.
    #[serde(default)]
    pub queues: Vec<TraceQueue>,
    /// Agents with their skills and capacity.
    #[serde(default)]
    pub agents: Vec<TraceAgent>,
    /// How long after an offer every agent accepts it.
    #[serde(default = "default_accept_delay")]
    pub accept_delay_ms: u64,
    /// Engine settings (accept timeout, sticky wait, missed offers, aging); defaults
    /// when absent.
    #[serde(default)]
    pub engine: Option<EngineConfig>,
}

fn default_accept_delay() -> u64 {
    DEFAULT_ACCEPT_DELAY_MS
}

fn default_sla() -> u64 {
    20_000
}

/// A queue in the setup line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQueue {
    /// The queue's id, as policies name it (`voice`, `general`…).
    pub name: String,
    /// A task should be assigned within this many ms of entering the queue.
    #[serde(default = "default_sla")]
    pub sla_target_ms: u64,
    /// Base priority added to every task's own.
    #[serde(default)]
    pub priority: i32,
    /// Skills every task in the queue needs: `[["billing", 2]]`.
    #[serde(default)]
    pub required_skills: Vec<SkillLevel>,
    /// Widening and overflow steps.
    #[serde(default)]
    pub steps: Vec<RoutingStep>,
    /// Channels served (informational).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// An agent in the setup line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceAgent {
    /// The agent's id.
    pub id: String,
    /// Skills with proficiency 1–5: `[["billing", 4], ["lang-es", 5]]`.
    #[serde(default)]
    pub skills: Vec<SkillLevel>,
    /// Capacity profile; the default (one call or four chats) when absent.
    #[serde(default)]
    pub capacity: Option<CapacityProfile>,
    /// Presence when the trace starts; offline when absent.
    #[serde(default)]
    pub status: Option<Status>,
}

/// Presence as the trace spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Taking work.
    Available,
    /// Logged in, not taking work.
    Away,
    /// Logged out.
    Offline,
}

impl Status {
    fn presence(self, reason: Option<&str>) -> Presence {
        match self {
            Status::Available => Presence::Available,
            Status::Away => Presence::Away {
                reason: reason.unwrap_or("away").to_owned(),
            },
            Status::Offline => Presence::Offline,
        }
    }
}

/// An `arrival` line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// When it arrived (ms, any monotonic scale; live recordings use epoch ms).
    pub at_ms: u64,
    /// The task id (unique in the trace).
    pub task: String,
    /// `voice`, `chat`, `sms`, `email`…
    pub channel: String,
    /// Task attributes the policy sees (`skills`, `queue`, `priority`…).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The customer: repeated ids are returning customers.
    #[serde(default)]
    pub contact: Option<String>,
    /// The customer's attributes the policy sees at classification (`vip`, `language`).
    #[serde(default)]
    pub contact_attributes: BTreeMap<String, String>,
    /// The agent who served this customer before the trace started; the replay's own
    /// history takes precedence once it has served the customer.
    #[serde(default)]
    pub last_agent: Option<String>,
    /// How long the agent holds the task once accepted; 300 s when absent.
    #[serde(default)]
    pub handle_ms: Option<u64>,
    /// The customer gives up if still waiting this long after arrival; never if absent.
    #[serde(default)]
    pub abandon_after_ms: Option<u64>,
}

/// A `presence` line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceChange {
    /// When (ms).
    pub at_ms: u64,
    /// The agent.
    pub agent: String,
    /// The new presence.
    pub status: Status,
    /// Why, for `away`.
    #[serde(default)]
    pub reason: Option<String>,
    /// The agent's skills from now on (live recordings carry them, so an agent missing
    /// from the setup line still replays with the right skills).
    #[serde(default)]
    pub skills: Option<Vec<SkillLevel>>,
    /// The agent's capacity from now on.
    #[serde(default)]
    pub capacity: Option<CapacityProfile>,
}

/// A parsed trace: the setup and the events in time order.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The setup line.
    pub setup: Setup,
    /// Arrivals and presence changes, ordered by `at_ms` (stable: ties keep file order).
    pub events: Vec<Line>,
}

impl Line {
    fn at(&self) -> u64 {
        match self {
            Line::Setup(_) => 0,
            Line::Arrival(a) => a.at_ms,
            Line::Presence(p) => p.at_ms,
        }
    }
}

impl Trace {
    /// Parses JSON Lines; blank lines are skipped. The first line must be the setup.
    pub fn parse(text: &str) -> anyhow::Result<Trace> {
        let mut setup = None;
        let mut events = Vec::new();
        let mut tasks = std::collections::HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let line: Line =
                serde_json::from_str(raw).with_context(|| format!("line {}", n + 1))?;
            match line {
                Line::Setup(s) => {
                    if setup.is_some() || !events.is_empty() {
                        bail!("line {}: the setup line must come first, once", n + 1);
                    }
                    setup = Some(s);
                }
                Line::Arrival(ref a) => {
                    if setup.is_none() {
                        bail!("line {}: the first line must be the setup", n + 1);
                    }
                    if !tasks.insert(a.task.clone()) {
                        bail!("line {}: task {:?} arrives twice", n + 1, a.task);
                    }
                    events.push(line);
                }
                Line::Presence(_) => {
                    if setup.is_none() {
                        bail!("line {}: the first line must be the setup", n + 1);
                    }
                    events.push(line);
                }
            }
        }
        let setup = setup.context("the trace is empty: it needs a setup line")?;
        // Live recordings can be a millisecond out of order across threads.
        events.sort_by_key(Line::at);
        Ok(Trace { setup, events })
    }

    fn arrivals(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Line::Arrival(_)))
            .count()
    }

    fn start(&self) -> u64 {
        self.events.first().map_or(0, Line::at)
    }

    fn span(&self) -> u64 {
        self.events
            .last()
            .map_or(0, Line::at)
            .saturating_sub(self.start())
    }
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// A routing policy plugin loaded into its own host with default limits.
pub struct WasmPolicy {
    /// The host holding only this plugin.
    pub host: PluginHost,
    /// The plugin's id.
    pub id: String,
    /// The services behind the host (their clock is set before every call).
    pub services: Arc<OfflineServices>,
}

impl WasmPolicy {
    /// Loads the plugin folder `dir` (plugin.toml + component) with its default config.
    pub fn load(dir: &Path) -> anyhow::Result<WasmPolicy> {
        let spec = LoadSpec::from_dir(dir)
            .with_context(|| format!("{} is not a plugin folder", dir.display()))?;
        if spec.manifest.kind != PluginKind::Routing {
            bail!(
                "{} is a {} plugin, not a routing policy",
                dir.display(),
                spec.manifest.kind
            );
        }
        let id = spec.manifest.id.clone();
        let services = Arc::new(OfflineServices::virtual_clock());
        let host = PluginHost::new(Limits::default(), services.clone())
            .map_err(|e| anyhow::anyhow!("starting the plugin host: {e}"))?;
        host.load(spec)
            .with_context(|| format!("loading {}", dir.display()))?;
        Ok(WasmPolicy { host, id, services })
    }

    fn set_clock(&self, now: u64) {
        self.services.set_now(now);
    }
}

/// Who classifies and ranks in a replay.
pub enum Policy {
    /// A Wasm routing policy.
    Wasm(WasmPolicy),
    /// The host's built-in policy: classification by channel, [`default_rank`].
    Native,
}

impl Policy {
    /// Loads a plugin folder.
    pub fn load(dir: &Path) -> anyhow::Result<Policy> {
        WasmPolicy::load(dir).map(Policy::Wasm)
    }

    fn label(&self) -> String {
        match self {
            Policy::Wasm(w) => w.id.clone(),
            Policy::Native => "built-in (native)".into(),
        }
    }
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// One queue's service level in a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueReport {
    /// The queue's target (ms).
    pub sla_target_ms: u64,
    /// Tasks assigned from this queue.
    pub assigned: u64,
    /// Of those, assigned within the target of entering the queue.
    pub within_sla: u64,
    /// Tasks whose customer gave up while waiting in this queue.
    pub abandoned: u64,
    /// Tasks still waiting in this queue when the replay ended.
    pub unserved: u64,
}

impl QueueReport {
    /// Every task that ended its wait in this queue.
    pub fn total(&self) -> u64 {
        self.assigned + self.abandoned + self.unserved
    }
}

/// One agent's time in a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentReport {
    /// Time holding at least one accepted task (ms).
    pub busy_ms: u64,
    /// Time logged in (available or away) or holding work (ms).
    pub logged_in_ms: u64,
    /// Tasks completed.
    pub handled: u64,
}

impl AgentReport {
    /// Busy time over logged-in time, in percent.
    pub fn occupancy(&self) -> Option<f64> {
        (self.logged_in_ms > 0).then(|| 100.0 * self.busy_ms as f64 / self.logged_in_ms as f64)
    }
}

/// What one policy did with a trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The column title: the plugin id, or `built-in (native)`.
    pub policy: String,
    /// Tasks that arrived.
    pub arrivals: u64,
    /// Waits from arrival to accepted (ms) of every accepted task, sorted.
    pub waits_ms: Vec<u64>,
    /// The same per channel.
    pub waits_by_channel: BTreeMap<String, Vec<u64>>,
    /// Customers who gave up, per channel.
    pub abandoned_by_channel: BTreeMap<String, u64>,
    /// Tasks still waiting when nothing else could happen (nobody able to take them).
    pub unserved: u64,
    /// Service level per queue (only queues some task ended its wait in).
    pub queues: BTreeMap<String, QueueReport>,
    /// Time per agent.
    pub agents: BTreeMap<String, AgentReport>,
    /// Tasks of returning customers (a known last agent) that were assigned.
    pub returning_assigned: u64,
    /// Of those, assigned to the agent who served the customer last.
    pub returning_to_last_agent: u64,
    /// Assigned tasks whose customer has a `language` contact attribute.
    pub language_asked: u64,
    /// Of those, assigned to an agent with the skill `lang-<language>`.
    pub language_met: u64,
    /// Assigned tasks with a `skills` task attribute (`billing:4,tech:2`).
    pub skills_asked: u64,
    /// Of those, assigned to an agent with every skill at the level asked (routing
    /// steps may have widened the requirement on purpose).
    pub skills_met: u64,
    /// Offers made (each is one routing decision).
    pub offers: u64,
    /// Offers that timed out or were withdrawn before the agent accepted.
    pub offers_lost: u64,
    /// Classification calls, and how many failed (built-in answer used).
    pub classify_calls: u64,
    /// Failed classification calls.
    pub classify_failures: u64,
    /// Ranking calls.
    pub rank_calls: u64,
    /// Failed ranking calls (default order used).
    pub rank_failures: u64,
    /// When the last thing happened, from the trace's first event (ms).
    pub ended_after_ms: u64,
}

impl Report {
    /// Customers who gave up.
    pub fn abandoned(&self) -> u64 {
        self.abandoned_by_channel.values().sum()
    }
}

fn label_duplicates(reports: &mut [Report]) {
    for i in 1..reports.len() {
        if reports[..i].iter().any(|r| r.policy == reports[i].policy) {
            reports[i].policy = format!("{} #{}", reports[i].policy, i + 1);
        }
    }
}

// ---------------------------------------------------------------------------
// The simulation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// Index into `Trace::events`.
    Trace(usize),
    Accept(ReservationId),
    Complete(TaskId),
    Abandon(TaskId),
}

/// What the replay remembers about a task the engine may already have forgotten.
struct TaskTrack {
    channel: String,
    contact: Option<String>,
    handle_ms: u64,
    last_agent: Option<AgentId>,
    /// `lang-<code>` for a customer with a language.
    language: Option<String>,
    /// The `skills` task attribute, parsed leniently.
    skills: Vec<SkillLevel>,
}

/// `billing:4, tech` as routing-default reads it; malformed entries are skipped (this
/// only feeds the report).
fn asked_skills(attributes: &BTreeMap<String, String>) -> Vec<SkillLevel> {
    let Some(text) = attributes.get("skills") else {
        return Vec::new();
    };
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|entry| match entry.split_once(':') {
            Some((name, level)) => Some((name.trim().to_owned(), level.trim().parse().ok()?)),
            None => Some((entry.to_owned(), 1)),
        })
        .collect()
}

#[derive(Default)]
struct AgentTrack {
    online: bool,
    busy: u32,
    since: u64,
    report: AgentReport,
}

impl AgentTrack {
    fn advance(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.since);
        if self.busy > 0 {
            self.report.busy_ms += elapsed;
        }
        if self.online || self.busy > 0 {
            self.report.logged_in_ms += elapsed;
        }
        self.since = self.since.max(now);
    }
}

struct Run {
    engine: Engine,
    accept_delay_ms: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Due)>>,
    seq: u64,
    tasks: HashMap<TaskId, TaskTrack>,
    agents: BTreeMap<AgentId, AgentTrack>,
    last_agent: HashMap<String, AgentId>,
    report: Report,
}

impl Run {
    fn schedule(&mut self, at: u64, what: Due) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, what)));
    }

    fn agent(&mut self, id: &AgentId, now: u64) -> &mut AgentTrack {
        let track = self.agents.entry(id.clone()).or_insert_with(|| AgentTrack {
            since: now,
            ..AgentTrack::default()
        });
        track.advance(now);
        track
    }

    fn ensure_queue(&mut self, now: u64, name: &str) -> anyhow::Result<QueueId> {
        let id = QueueId::from(name);
        if self.engine.queue(&id).is_none() {
            self.engine
                .upsert_queue(now, Queue::new(id.clone(), name))
                .with_context(|| format!("creating queue {name}"))?;
        }
        Ok(id)
    }

    /// The queue a waiting task ends its wait in, and whether it was assigned in time.
    fn queue_report(&mut self, queue: &QueueId) -> &mut QueueReport {
        let sla = self.engine.queue(queue).map_or(20_000, |q| q.sla_target_ms);
        self.report
            .queues
            .entry(queue.as_str().to_owned())
            .or_insert_with(|| QueueReport {
                sla_target_ms: sla,
                ..QueueReport::default()
            })
    }

    fn drain(&mut self, now: u64) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Offered { reservation } => {
                    self.report.offers += 1;
                    let at = now.saturating_add(self.accept_delay_ms);
                    self.schedule(at, Due::Accept(reservation.id));
                }
                Output::ReservationExpired { .. } | Output::ReservationCanceled { .. } => {
                    self.report.offers_lost += 1;
                }
                Output::TaskAssigned { task, agent } => self.assigned(now, &task, &agent),
                Output::TaskCompleted {
                    agent: Some(agent), ..
                } => {
                    let track = self.agent(&agent, now);
                    track.busy = track.busy.saturating_sub(1);
                    track.report.handled += 1;
                }
                _ => {}
            }
        }
    }

    fn assigned(&mut self, now: u64, id: &TaskId, agent: &AgentId) {
        let Some(task) = self.engine.task(id) else {
            return;
        };
        let wait = now.saturating_sub(task.arrived_at);
        let in_queue = now.saturating_sub(task.queued_at);
        let queue = task.queue.clone();
        let track = self.tasks.get(id).expect("every task is tracked");
        let (channel, handle_ms) = (track.channel.clone(), track.handle_ms);
        if let Some(last) = &track.last_agent {
            self.report.returning_assigned += 1;
            if last == agent {
                self.report.returning_to_last_agent += 1;
            }
        }
        let has = |skill: &str, level: u8| {
            self.engine
                .agent(agent)
                .and_then(|a| a.proficiency(skill))
                .is_some_and(|p| p >= level)
        };
        if let Some(language) = &track.language {
            self.report.language_asked += 1;
            if has(language, 1) {
                self.report.language_met += 1;
            }
        }
        if !track.skills.is_empty() {
            self.report.skills_asked += 1;
            if track.skills.iter().all(|(s, l)| has(s, *l)) {
                self.report.skills_met += 1;
            }
        }
        if let Some(contact) = track.contact.clone() {
            self.last_agent.insert(contact, agent.clone());
        }
        self.report.waits_ms.push(wait);
        self.report
            .waits_by_channel
            .entry(channel)
            .or_default()
            .push(wait);
        let q = self.queue_report(&queue);
        q.assigned += 1;
        if in_queue <= q.sla_target_ms {
            q.within_sla += 1;
        }
        self.agent(agent, now).busy += 1;
        self.schedule(now.saturating_add(handle_ms), Due::Complete(id.clone()));
    }
}

/// Replays `trace` with `policy` and reports what happened.
pub async fn replay(trace: &Trace, policy: &Policy) -> anyhow::Result<Report> {
    let start = trace.start();
    let mut sim = Run {
        engine: Engine::new(trace.setup.engine.clone().unwrap_or_default()),
        accept_delay_ms: trace.setup.accept_delay_ms,
        queue: BinaryHeap::new(),
        seq: 0,
        tasks: HashMap::new(),
        agents: BTreeMap::new(),
        last_agent: HashMap::new(),
        report: Report {
            policy: policy.label(),
            ..Report::default()
        },
    };
    for q in &trace.setup.queues {
        let mut queue = Queue::new(q.name.as_str(), q.name.as_str());
        queue.sla_target_ms = q.sla_target_ms;
        queue.priority = q.priority;
        queue.required_skills = q.required_skills.clone();
        queue.steps = q.steps.clone();
        queue.channels = q.channels.clone();
        sim.engine
            .upsert_queue(start, queue)
            .with_context(|| format!("setup: queue {}", q.name))?;
    }
    for a in &trace.setup.agents {
        let mut agent = Agent::new(a.id.as_str());
        agent.skills = a.skills.clone();
        agent.capacity = a.capacity.clone().unwrap_or_default();
        let status = a.status.unwrap_or(Status::Offline);
        agent.presence = status.presence(None);
        sim.engine
            .upsert_agent(start, agent)
            .with_context(|| format!("setup: agent {}", a.id))?;
        sim.agent(&AgentId::from(a.id.as_str()), start).online = status != Status::Offline;
    }
    for i in 0..trace.events.len() {
        sim.schedule(trace.events[i].at(), Due::Trace(i));
    }

    let mut now = start;
    loop {
        let next_event = sim.queue.peek().map(|Reverse((at, _, _))| *at);
        let next_timer = sim.engine.poll_timeout();
        match (next_event, next_timer) {
            (None, None) => break,
            (event, Some(timer)) if event.is_none_or(|e| timer < e) => {
                now = now.max(timer);
                sim.engine.handle_timeout(now);
            }
            _ => {
                let Reverse((at, _, what)) = sim.queue.pop().expect("peeked");
                now = now.max(at);
                step(&mut sim, trace, policy, now, what).await?;
            }
        }
        settle(&mut sim, policy, now).await;
    }

    // Whatever still waits could never be served.
    let left: Vec<(QueueId, TaskState)> = sim
        .engine
        .tasks()
        .map(|t| (t.queue.clone(), t.state.clone()))
        .collect();
    for (queue, state) in left {
        if matches!(state, TaskState::Pending | TaskState::Reserved { .. }) {
            sim.report.unserved += 1;
            sim.queue_report(&queue).unserved += 1;
        }
    }
    let ids: Vec<AgentId> = sim.agents.keys().cloned().collect();
    for id in ids {
        sim.agent(&id, now);
    }
    let mut report = sim.report;
    report.agents = sim
        .agents
        .into_iter()
        .map(|(id, t)| (id.as_str().to_owned(), t.report))
        .collect();
    report.waits_ms.sort_unstable();
    for waits in report.waits_by_channel.values_mut() {
        waits.sort_unstable();
    }
    report.ended_after_ms = now.saturating_sub(start);
    Ok(report)
}

async fn step(
    sim: &mut Run,
    trace: &Trace,
    policy: &Policy,
    now: u64,
    what: Due,
) -> anyhow::Result<()> {
    match what {
        Due::Trace(i) => match &trace.events[i] {
            Line::Arrival(a) => arrive(sim, policy, now, a).await?,
            Line::Presence(p) => {
                let id = AgentId::from(p.agent.as_str());
                let mut agent = match sim.engine.agent(&id) {
                    Some(agent) => agent.clone(),
                    None => Agent::new(id.clone()),
                };
                if let Some(skills) = &p.skills {
                    agent.skills = skills.clone();
                }
                if let Some(capacity) = &p.capacity {
                    agent.capacity = capacity.clone();
                }
                if sim.engine.agent(&id) != Some(&agent) {
                    // A capacity too small for the work in hand is refused: keep the old.
                    if let Err(e) = sim.engine.upsert_agent(now, agent) {
                        tracing::warn!(agent = %id, "presence line: {e}");
                    }
                }
                sim.agent(&id, now).online = p.status != Status::Offline;
                sim.engine
                    .set_presence(now, &id, p.status.presence(p.reason.as_deref()))
                    .with_context(|| format!("presence of {id}"))?;
            }
            Line::Setup(_) => unreachable!("the setup is not an event"),
        },
        Due::Accept(reservation) => {
            // The offer may have been withdrawn or have timed out meanwhile.
            let _ = sim.engine.accept(now, &reservation);
        }
        Due::Complete(task) => {
            let _ = sim.engine.complete(now, &task);
        }
        Due::Abandon(task) => {
            let waiting = sim.engine.task(&task).and_then(|t| {
                matches!(t.state, TaskState::Pending | TaskState::Reserved { .. })
                    .then(|| t.queue.clone())
            });
            if let Some(queue) = waiting {
                sim.queue_report(&queue).abandoned += 1;
                let channel = sim.tasks[&task].channel.clone();
                *sim.report.abandoned_by_channel.entry(channel).or_default() += 1;
                sim.engine.cancel(now, &task)?;
            }
        }
    }
    sim.drain(now);
    Ok(())
}

async fn arrive(sim: &mut Run, policy: &Policy, now: u64, a: &Arrival) -> anyhow::Result<()> {
    let id = TaskId::from(a.task.as_str());
    let last_agent = a
        .contact
        .as_ref()
        .and_then(|c| sim.last_agent.get(c).cloned())
        .or_else(|| a.last_agent.as_deref().map(AgentId::from));
    let info = bindings::TaskInfo {
        id: a.task.clone(),
        channel: a.channel.clone(),
        conversation_id: a.attributes.get("conversation_id").cloned(),
        contact: a.contact.as_ref().map(|c| bindings::ContactSummary {
            id: c.clone(),
            display_name: None,
            identities: Vec::new(),
            attributes: a
                .contact_attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        attributes: a
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        waiting_ms: 0,
        last_agent: last_agent.as_ref().map(|a| a.as_str().to_owned()),
    };
    sim.report.arrivals += 1;
    let (queue, priority, skills) = match policy {
        Policy::Wasm(w) => {
            w.set_clock(now);
            sim.report.classify_calls += 1;
            match plugin_classify(&w.host, &w.id, &info).await {
                Ok(c) => c,
                Err(e) => {
                    sim.report.classify_failures += 1;
                    tracing::debug!(task = %a.task, "classify failed, using defaults: {e}");
                    fallback_classify(&a.channel)
                }
            }
        }
        Policy::Native => fallback_classify(&a.channel),
    };
    let queue = sim.ensure_queue(now, &queue)?;
    let mut new = NewTask::new(id.clone(), a.channel.as_str(), queue);
    new.priority = priority;
    new.required_skills = skills;
    new.attributes = a.attributes.clone();
    new.contact_id = a.contact.as_deref().map(Into::into);
    new.last_agent = last_agent.clone();
    sim.tasks.insert(
        id.clone(),
        TaskTrack {
            channel: a.channel.clone(),
            contact: a.contact.clone(),
            handle_ms: a.handle_ms.unwrap_or(DEFAULT_HANDLE_MS),
            last_agent,
            language: a
                .contact_attributes
                .get("language")
                .map(|l| format!("lang-{}", l.trim().to_ascii_lowercase())),
            skills: asked_skills(&a.attributes),
        },
    );
    sim.engine
        .enqueue(now, new)
        .with_context(|| format!("task {}", a.task))?;
    if let Some(after) = a.abandon_after_ms {
        sim.schedule(now.saturating_add(after), Due::Abandon(id));
    }
    Ok(())
}

/// Matches everything that can be matched now, as the live service does after every
/// input.
async fn settle(sim: &mut Run, policy: &Policy, now: u64) {
    while let Some(request) = sim.engine.next_match(now) {
        let ranked = rank(sim, policy, &request, now).await;
        if let Err(e) = sim.engine.offer(now, &request.task_id, &ranked) {
            tracing::error!(task = %request.task_id, "offer failed: {e}");
            break;
        }
        sim.drain(now);
    }
    sim.drain(now);
}

async fn rank(sim: &mut Run, policy: &Policy, request: &MatchRequest, now: u64) -> Vec<AgentId> {
    let Policy::Wasm(w) = policy else {
        return default_rank(request);
    };
    let Some(task) = sim.engine.task(&request.task_id) else {
        return default_rank(request);
    };
    w.set_clock(now);
    let result = plugin_rank(&w.host, &w.id, task, request, now).await;
    sim.report.rank_calls += 1;
    match result {
        Ok(order) => order,
        Err(e) => {
            sim.report.rank_failures += 1;
            tracing::debug!(task = %request.task_id, "rank failed, default order: {e}");
            default_rank(request)
        }
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// The value at percentile `p` (0–100) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `850 ms`, `12.4 s`, `4m 05s`, `1h 02m`.
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        let s = ms / 1000;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = ms / 60_000;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

type Rows = Vec<(String, Vec<String>)>;

fn row(rows: &mut Rows, label: &str, cells: impl IntoIterator<Item = String>) {
    rows.push((label.to_owned(), cells.into_iter().collect()));
}

/// Left-aligned labels, right-aligned cells, each column as wide as it needs.
fn table(out: &mut String, rows: &Rows) {
    let label = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let cell = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(|c| c.chars().count()))
        .max()
        .unwrap_or(0)
        .max(18)
        + 3;
    for (l, cells) in rows {
        let _ = write!(out, "{l:<label$}");
        for c in cells {
            let _ = write!(out, "{c:>cell$}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
}

fn waits_cell(waits: Option<&Vec<u64>>) -> String {
    match waits {
        Some(w) if !w.is_empty() => format!(
            "{} / {}",
            duration(percentile(w, 50.0).unwrap_or(0)),
            duration(percentile(w, 90.0).unwrap_or(0))
        ),
        _ => "-".into(),
    }
}

/// The side-by-side table.
pub fn render(name: &str, trace: &Trace, reports: &[Report]) -> String {
    let mut out = String::new();
    let presence = trace.events.len() - trace.arrivals();
    let _ = writeln!(
        out,
        "Replay of {name}: {} arrivals, {} agents, {presence} presence changes over {} \
         (virtual time); agents accept after {}",
        trace.arrivals(),
        trace.setup.agents.len(),
        duration(trace.span()),
        duration(trace.setup.accept_delay_ms),
    );
    out.push('\n');
    let mut rows = Rows::new();
    row(&mut rows, "", reports.iter().map(|r| r.policy.clone()));
    let each = |f: &dyn Fn(&Report) -> String| reports.iter().map(f).collect::<Vec<_>>();

    row(&mut rows, "Wait, arrival -> accepted", Vec::new());
    row(
        &mut rows,
        "  tasks accepted",
        each(&|r| r.waits_ms.len().to_string()),
    );
    for (label, p) in [("  p50", 50.0), ("  p90", 90.0), ("  max", 100.0)] {
        row(
            &mut rows,
            label,
            each(&|r| percentile(&r.waits_ms, p).map_or("-".into(), duration)),
        );
    }
    let channels: std::collections::BTreeSet<&String> = reports
        .iter()
        .flat_map(|r| {
            r.waits_by_channel
                .keys()
                .chain(r.abandoned_by_channel.keys())
        })
        .collect();
    for channel in &channels {
        row(
            &mut rows,
            &format!("  {channel} p50 / p90"),
            each(&|r| waits_cell(r.waits_by_channel.get(*channel))),
        );
    }

    row(
        &mut rows,
        "Abandoned (gave up waiting)",
        each(&|r| format!("{} ({})", r.abandoned(), pct(r.abandoned(), r.arrivals))),
    );
    for channel in &channels {
        row(
            &mut rows,
            &format!("  {channel}"),
            each(&|r| {
                let n = r.abandoned_by_channel.get(*channel).copied().unwrap_or(0);
                let arrived = r
                    .waits_by_channel
                    .get(*channel)
                    .map_or(0, |w| w.len() as u64)
                    + n;
                format!("{n} ({})", pct(n, arrived))
            }),
        );
    }
    row(
        &mut rows,
        "Never served (nobody could)",
        each(&|r| r.unserved.to_string()),
    );

    row(&mut rows, "SLA: assigned within target", Vec::new());
    let queues: std::collections::BTreeSet<&String> =
        reports.iter().flat_map(|r| r.queues.keys()).collect();
    for queue in queues {
        let target = reports
            .iter()
            .find_map(|r| r.queues.get(queue))
            .map_or(0, |q| q.sla_target_ms);
        row(
            &mut rows,
            &format!("  {queue} ({})", duration(target)),
            each(&|r| match r.queues.get(queue) {
                Some(q) => format!(
                    "{} {}/{}",
                    pct(q.within_sla, q.total()),
                    q.within_sla,
                    q.total()
                ),
                None => "-".into(),
            }),
        );
    }
    row(
        &mut rows,
        "  all tasks",
        each(&|r| {
            let within: u64 = r.queues.values().map(|q| q.within_sla).sum();
            let total: u64 = r.queues.values().map(QueueReport::total).sum();
            format!("{} {within}/{total}", pct(within, total))
        }),
    );
    row(
        &mut rows,
        "Returning -> last agent",
        each(&|r| {
            format!(
                "{} {}/{}",
                pct(r.returning_to_last_agent, r.returning_assigned),
                r.returning_to_last_agent,
                r.returning_assigned
            )
        }),
    );

    row(
        &mut rows,
        "Agent speaks the language",
        each(&|r| {
            format!(
                "{} {}/{}",
                pct(r.language_met, r.language_asked),
                r.language_met,
                r.language_asked
            )
        }),
    );
    row(
        &mut rows,
        "Agent has the skill level",
        each(&|r| {
            format!(
                "{} {}/{}",
                pct(r.skills_met, r.skills_asked),
                r.skills_met,
                r.skills_asked
            )
        }),
    );
    row(&mut rows, "Occupancy (busy/logged in)", Vec::new());
    let agents: std::collections::BTreeSet<&String> =
        reports.iter().flat_map(|r| r.agents.keys()).collect();
    for agent in agents {
        row(
            &mut rows,
            &format!("  {agent}"),
            each(&|r| match r.agents.get(agent) {
                Some(a) => match a.occupancy() {
                    Some(o) => format!("{o:.1}% {:>3} tasks", a.handled),
                    None => "not logged in".into(),
                },
                None => "-".into(),
            }),
        );
    }
    row(
        &mut rows,
        "  all agents",
        each(&|r| {
            let busy: u64 = r.agents.values().map(|a| a.busy_ms).sum();
            let logged: u64 = r.agents.values().map(|a| a.logged_in_ms).sum();
            let handled: u64 = r.agents.values().map(|a| a.handled).sum();
            format!("{} {handled:>3} tasks", pct(busy, logged))
        }),
    );
    row(
        &mut rows,
        "Offers made / lost",
        each(&|r| format!("{} / {}", r.offers, r.offers_lost)),
    );
    row(
        &mut rows,
        "Policy calls classify / rank",
        each(&|r| format!("{} / {}", r.classify_calls, r.rank_calls)),
    );
    row(
        &mut rows,
        "  failed, built-in used",
        each(&|r| format!("{} / {}", r.classify_failures, r.rank_failures)),
    );
    row(
        &mut rows,
        "Last event after",
        each(&|r| duration(r.ended_after_ms)),
    );
    table(&mut out, &rows);
    out
}

#[cfg(test)]
mod tests;
