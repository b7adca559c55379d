//! `switchboard-bench routing`: routing decisions per second and enqueue-to-offer
//! latency at contact-center scale, with the Wasm `routing-default` policy against the
//! same ranking compiled natively, in the same run.
//!
//! The engine holds 1,000 agents (mixed skills and languages, the default capacity:
//! one call or four chats) and 10,000 waiting tasks (voice, chat, SMS and email, half
//! asking for a skill level, some VIP, some returning customers).
//!
//! - **(a) Steady state.** Every agent is full and 10,000 tasks wait. One step: the
//!   agent who took work longest ago completes a task, a new task arrives (so 10,000
//!   keep waiting), and the host matches whatever can be matched — the engine proposes,
//!   the policy ranks, the engine offers, the agent accepts. Timed end to end; one
//!   decision is one offer.
//! - **(b) Enqueue-to-offer with an agent free.** From `enqueue` to the offer being made
//!   (enqueue, `next_match`, rank, `offer`), in two centers: *busy* — the steady state
//!   of (a), one agent just freed and a VIP email arrives; *quiet* — 15 % of the agents
//!   are specialists, all busy, and the 10,000 waiting tasks need them, while the other
//!   85 % are free, so the arriving task has hundreds of candidates to rank.
//!
//! Rankers: **wasm** is `routing-default` in a [`PluginHost`] with default limits,
//! called through [`plugin_rank`] as the live service does: on a warm instance from
//! the host's pool, which the host discards after any failed call and after
//! [`WARM_POLICY_CALLS`] calls (so one call in that many pays for a fresh instance),
//! under the host's deadline, memory cap and health bookkeeping. **native** is
//! [`native_rank`], routing-default's `rank` re-implemented here (checked against the
//! plugin on every decision of (b) and in the tests). **bare** is a reference, not
//! something the host does: the same component instantiated once outside the plugin
//! host (no pool, no deadline or memory cap, no health bookkeeping) and called again
//! and again, so wasm − bare is what the host adds around a warm call.
//! Classification happens before `enqueue` and is not timed. Nothing asserts a timing.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use switchboard_app::routing::{plugin_rank, task_info};
use switchboard_plugin_host::bindings::v0_2::channel::switchboard::plugin::{host, types};
use switchboard_plugin_host::bindings::v0_2::routing::Routing;
use switchboard_plugin_host::bindings::{KvError, LogLevel};
use switchboard_plugin_host::{
    CandidateRef, CandidateSet, CandidateTable, Manifest, PluginHost, WARM_POLICY_CALLS,
};
use switchboard_routing::{
    Agent, AgentId, Engine, EngineConfig, MatchRequest, NewTask, Presence, Queue, RoutingStep,
    Task, TaskId, default_rank,
};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use switchboard::replay::WasmPolicy;

use crate::machine::{load_average, print_header};

const POLICY: &str = "routing-default";
/// Queue per channel, and the channel's base priority, as routing-default classifies.
const CHANNELS: &[(&str, &str, i32, u64)] = &[
    // channel, queue, priority, share in percent
    ("voice", "voice", 15, 25),
    ("chat", "chat", 10, 30),
    ("sms", "messaging", 10, 15),
    ("email", "email", 5, 30),
];
const SKILLS: &[&str] = &["billing", "tech", "sales"];
const LANGUAGES: &[(&str, u64)] = &[("es", 20), ("pt", 5), ("fr", 5)];
/// Virtual milliseconds between two steps.
const TICK_MS: u64 = 50;

/// `switchboard-bench routing` options.
#[derive(Args, Debug)]
pub struct RoutingBenchArgs {
    /// Where built plugins are (the routing-default folder is used).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Agents in the engine.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(10..))]
    pub agents: u32,
    /// Tasks kept waiting.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub waiting: u32,
    /// Steady-state steps timed per ranker in each round of (a).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// Rounds of (a); the rankers alternate, so drift on a busy machine hits all.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Offers timed per ranker in each center of (b).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub samples: u32,
    /// What an email costs an agent (the product default is 20 of 100; 25 makes every
    /// channel but voice cost the same, so no agent is left with spare capacity that
    /// fits nothing).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub email_cost: u32,
}

// ---------------------------------------------------------------------------
// routing-default's rank, natively
// ---------------------------------------------------------------------------

/// routing-default's `rank` (plugins/routing-default/src/rank.rs) over what the host
/// hands the plugin: the task's attributes and last agent ([`task_info`] gives the
/// plugin no contact, so no language skill), and the candidates in the engine's order.
/// Best first: the agent who served the contact last; the higher sum of proficiencies
/// in the skills the `skills` attribute asks for; the longer idle; the lower
/// load/capacity (no capacity sorts last); the engine's order. `None` where the
/// plugin answers an error (a malformed `skills` attribute), and the host falls back
/// to [`default_rank`].
pub fn native_rank(task: &Task, request: &MatchRequest) -> Option<Vec<AgentId>> {
    let required = match task
        .attributes
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("skills"))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
    {
        Some(text) => parse_skills(text)?,
        None => Vec::new(),
    };
    let last = task.last_agent.as_ref();
    let mut scored: Vec<(usize, bool, u32)> = request
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sticky = c.served_contact_last || last == Some(&c.agent_id);
            let skill = required
                .iter()
                .map(|(name, _)| {
                    c.skills
                        .iter()
                        .filter(|(s, _)| s == name)
                        .map(|&(_, level)| u32::from(level))
                        .max()
                        .unwrap_or(0)
                })
                .sum();
            (i, sticky, skill)
        })
        .collect();
    let candidates = &request.candidates;
    scored.sort_by(|(a, a_sticky, a_skill), (b, b_sticky, b_skill)| {
        let (ca, cb) = (&candidates[*a], &candidates[*b]);
        b_sticky
            .cmp(a_sticky)
            .then(b_skill.cmp(a_skill))
            .then(cb.idle_ms.cmp(&ca.idle_ms))
            .then(load_ratio_cmp(
                (ca.load, ca.capacity),
                (cb.load, cb.capacity),
            ))
    });
    Some(
        scored
            .into_iter()
            .map(|(i, _, _)| candidates[i].agent_id.clone())
            .collect(),
    )
}

/// `billing:3, spanish : 2, returns` → skills with levels 1–5, a repeated skill keeping
/// its highest level; `None` for an entry routing-default rejects.
fn parse_skills(text: &str) -> Option<Vec<(String, u8)>> {
    let mut skills: Vec<(String, u8)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, level) = match entry.split_once(':') {
            Some((name, level)) => (name.trim(), Some(level.trim())),
            None => (entry, None),
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return None;
        }
        let level = match level {
            None => 1,
            Some(level) => level.parse::<u8>().ok().filter(|l| (1..=5).contains(l))?,
        };
        match skills.iter_mut().find(|(s, _)| s == name) {
            Some(existing) => existing.1 = existing.1.max(level),
            None => skills.push((name.to_owned(), level)),
        }
    }
    Some(skills)
}

fn load_ratio_cmp((a_load, a_cap): (u32, u32), (b_load, b_cap): (u32, u32)) -> Ordering {
    match (a_cap, b_cap) {
        (0, 0) => Ordering::Equal,
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        _ => (u64::from(a_load) * u64::from(b_cap)).cmp(&(u64::from(b_load) * u64::from(a_cap))),
    }
}

// ---------------------------------------------------------------------------
// The bare-instance reference
// ---------------------------------------------------------------------------

/// What a reused instance of the policy sees: the manifest's config, no kv, no network.
struct BareState {
    table: ResourceTable,
    wasi: WasiCtx,
    config: HashMap<String, String>,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for BareState {}

impl CandidateTable for BareState {
    fn candidate_table(&self) -> &ResourceTable {
        &self.table
    }

    fn candidate_table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

switchboard_plugin_host::impl_candidate_host!(BareState);

impl host::Host for BareState {
    async fn log(&mut self, _level: LogLevel, _message: String) {}

    async fn get_config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    async fn kv_get(&mut self, _key: String) -> Option<Vec<u8>> {
        None
    }

    async fn kv_set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), KvError> {
        Err(KvError::Unavailable("no kv in the benchmark".into()))
    }

    async fn kv_delete(&mut self, _key: String) {}

    async fn now_ms(&mut self) -> u64 {
        0
    }
}

/// routing-default instantiated once outside the plugin host and called again and
/// again: no pool, no recycling, no deadline or memory cap, no health bookkeeping.
/// Not how the host runs plugins (it calls a warm pooled instance under its limits,
/// see [`WARM_POLICY_CALLS`]), but the floor of a warm call's cost.
struct BarePolicy {
    store: wasmtime::Store<BareState>,
    routing: Routing,
}

impl BarePolicy {
    async fn load(dir: &Path) -> anyhow::Result<BarePolicy> {
        let manifest = Manifest::load(dir)?;
        let config = PluginHost::resolve_config(&manifest, &HashMap::new())?;
        let mut wasm_config = wasmtime::Config::new();
        // Same code generation as the plugin host (deadline checks compiled in).
        wasm_config.epoch_interruption(true);
        if let Ok(cache) = wasmtime::Cache::from_file(None) {
            wasm_config.cache(Some(cache));
        }
        let engine = wasmtime::Engine::new(&wasm_config)?;
        let component = Component::from_file(&engine, dir.join(&manifest.component))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Routing::add_to_linker::<BareState, HasSelf<BareState>>(&mut linker, |s| s)?;
        let mut store = wasmtime::Store::new(
            &engine,
            BareState {
                table: ResourceTable::new(),
                wasi: WasiCtx::builder().build(),
                config,
            },
        );
        store.set_epoch_deadline(u64::MAX);
        let routing = Routing::instantiate_async(&mut store, &component, &linker).await?;
        Ok(BarePolicy { store, routing })
    }

    async fn rank(
        &mut self,
        task: &Task,
        request: &MatchRequest,
        now: u64,
    ) -> anyhow::Result<Option<Vec<AgentId>>> {
        let info = task_info(task, now);
        let handle = self.store.data_mut().table.push(wit_candidates(request))?;
        let borrowed = wasmtime::component::Resource::new_borrow(handle.rep());
        let order = self
            .routing
            .switchboard_plugin_policy()
            .call_rank(&mut self.store, &info, borrowed)
            .await;
        self.store.data_mut().table.delete(handle)?;
        let order = order?;
        Ok(order.ok().map(|order| {
            order
                .into_iter()
                .filter_map(|i| request.candidates.get(i as usize))
                .map(|c| c.agent_id.clone())
                .collect()
        }))
    }
}

/// The candidates as [`plugin_rank`] hands them to the plugin.
fn wit_candidates(request: &MatchRequest) -> CandidateSet {
    CandidateSet::from_refs(request.candidates.iter().map(|c| CandidateRef {
        id: c.agent_id.as_str(),
        skills: &c.skills,
        idle_ms: c.idle_ms,
        load: c.load,
        capacity: c.capacity,
        served_contact_last: c.served_contact_last,
        attributes: &[],
    }))
}

// ---------------------------------------------------------------------------
// Rankers
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Wasm,
    Bare,
    Native,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Wasm, Kind::Bare, Kind::Native];
}

struct Rankers {
    wasm: WasmPolicy,
    bare: BarePolicy,
    /// Calls that failed (and fell back to the default order), per ranker.
    failures: BTreeMap<Kind, u64>,
}

impl Rankers {
    async fn rank(
        &mut self,
        kind: Kind,
        engine: &Engine,
        request: &MatchRequest,
        now: u64,
    ) -> Vec<AgentId> {
        let task = engine
            .task(&request.task_id)
            .expect("proposed tasks are live");
        let ranked = match kind {
            Kind::Wasm => plugin_rank(&self.wasm.host, &self.wasm.id, task, request, now)
                .await
                .map_err(|e| e.to_string()),
            Kind::Bare => match self.bare.rank(task, request, now).await {
                Ok(Some(order)) => Ok(order),
                Ok(None) => Err("the policy refused".into()),
                Err(e) => Err(e.to_string()),
            },
            Kind::Native => native_rank(task, request).ok_or_else(String::new),
        };
        ranked.unwrap_or_else(|_| {
            *self.failures.entry(kind).or_default() += 1;
            default_rank(request)
        })
    }
}

// ---------------------------------------------------------------------------
// Worlds
// ---------------------------------------------------------------------------

/// SplitMix64: deterministic and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn level(&mut self) -> u8 {
        1 + self.below(5) as u8
    }
}

fn agent_id(i: u32) -> AgentId {
    AgentId(format!("agent-{i:04}"))
}

/// An available agent with the default capacity (email at `email_cost`) and a random
/// mix of skills.
fn make_agent(i: u32, rng: &mut Rng, email_cost: u32) -> Agent {
    let mut agent = Agent::new(agent_id(i));
    agent.capacity.costs.insert("email".into(), email_cost);
    for (skill, p) in SKILLS.iter().zip([80, 70, 50]) {
        if rng.percent(p) {
            agent.skills.push(((*skill).to_owned(), rng.level()));
        }
    }
    for (language, p) in LANGUAGES {
        if rng.percent(*p) {
            agent.skills.push((format!("lang-{language}"), 5));
        }
    }
    agent.presence = Presence::Available;
    agent
}

fn channel_queues() -> Vec<Queue> {
    CHANNELS
        .iter()
        .map(|(_, queue, _, _)| {
            let mut q = Queue::new(*queue, *queue);
            // routing-default's widening step, which the host keeps on the queue.
            q.steps = vec![RoutingStep {
                after_ms: 60_000,
                min_proficiency: Some(1),
                overflow_queue: None,
            }];
            q
        })
        .collect()
}

/// A task as routing-default would classify it: the channel's queue and priority, VIP
/// boost, the `skills` attribute and the contact's language as required skills.
/// Returning customers name a last agent among `sticky_pool`.
fn make_task(n: u64, rng: &mut Rng, sticky_pool: &[AgentId]) -> NewTask {
    let mut pick = rng.below(100);
    let &(channel, queue, priority, _) = CHANNELS
        .iter()
        .find(|c| {
            if pick < c.3 {
                true
            } else {
                pick -= c.3;
                false
            }
        })
        .unwrap_or(&CHANNELS[0]);
    let mut task = NewTask::new(format!("task-{n:06}"), channel, queue);
    task.priority = priority + if rng.percent(5) { 10 } else { 0 };
    task.attributes
        .insert("conversation_id".into(), format!("conv-{n:06}"));
    if rng.percent(50) {
        let skill = SKILLS[rng.below(SKILLS.len() as u64) as usize];
        let level = 1 + rng.below(4) as u8;
        task.attributes
            .insert("skills".into(), format!("{skill}:{level}"));
        task.required_skills.push((skill.to_owned(), level));
    }
    if rng.percent(10) {
        let language = LANGUAGES[rng.below(LANGUAGES.len() as u64) as usize].0;
        task.required_skills.push((format!("lang-{language}"), 1));
    }
    task.contact_id = Some(format!("contact-{}", rng.below(50_000)).into());
    if rng.percent(20) && !sticky_pool.is_empty() {
        task.last_agent = Some(sticky_pool[rng.below(sticky_pool.len() as u64) as usize].clone());
    }
    task
}

/// One engine and the host's bookkeeping around it.
struct World {
    engine: Engine,
    rng: Rng,
    now: u64,
    next_task: u64,
    /// Accepted tasks, oldest first: the next to complete.
    assigned: VecDeque<TaskId>,
    agents: Vec<AgentId>,
}

impl World {
    fn new(seed: u64) -> World {
        World {
            engine: Engine::new(EngineConfig::default()),
            rng: Rng(seed),
            now: 0,
            next_task: 0,
            assigned: VecDeque::new(),
            agents: Vec::new(),
        }
    }

    fn new_task(&mut self) -> NewTask {
        self.next_task += 1;
        make_task(self.next_task, &mut self.rng, &self.agents)
    }

    fn drain(&mut self) {
        while self.engine.poll_output().is_some() {}
    }

    /// Matches everything, ranking natively and accepting every offer at once.
    fn settle_native(&mut self) -> anyhow::Result<()> {
        while let Some(request) = self.engine.next_match(self.now) {
            let task = self.engine.task(&request.task_id).context("proposed")?;
            let ranked = native_rank(task, &request).unwrap_or_else(|| default_rank(&request));
            if let Some(res) = self.engine.offer(self.now, &request.task_id, &ranked)? {
                self.engine.accept(self.now, &res.id)?;
                self.assigned.push_back(res.task);
            }
        }
        self.drain();
        Ok(())
    }

    /// What the engine's matching scan walks: agents it counts as free and groups of
    /// waiting tasks with the same needs.
    fn shape(&self) -> Shape {
        let mut shape = Shape::default();
        for agent in self.engine.agents() {
            let load = self.engine.agent_load(&agent.id).unwrap_or(0);
            if agent.presence == Presence::Available && load < agent.capacity.total {
                shape.free += 1;
                let cheapest = agent
                    .capacity
                    .costs
                    .values()
                    .copied()
                    .chain([agent.capacity.default_cost])
                    .min()
                    .unwrap_or(0);
                if agent.capacity.total - load < cheapest {
                    shape.useless += 1;
                }
            }
        }
        let groups: std::collections::BTreeSet<_> = self
            .engine
            .tasks()
            .filter(|t| t.state == switchboard_routing::TaskState::Pending)
            .map(|t| (&t.queue, &t.channel, t.priority, &t.required_skills))
            .collect();
        shape.groups = groups.len();
        shape
    }

    fn waiting(&self) -> usize {
        self.engine.tasks().count() - self.assigned.len()
    }

    /// (a)'s world: every agent full, `waiting` tasks waiting, arrivals spread over the
    /// past hour (so their sticky waits and widening steps have run their course).
    fn busy(agents: u32, waiting: usize, email_cost: u32) -> anyhow::Result<World> {
        let mut world = World::new(0x5EED_0001);
        for q in channel_queues() {
            world.engine.upsert_queue(0, q)?;
        }
        for i in 0..agents {
            let agent = make_agent(i, &mut world.rng, email_cost);
            world.agents.push(agent.id.clone());
            world.engine.upsert_agent(0, agent)?;
        }
        let spacing = (3_600_000 / (waiting as u64 + 3 * u64::from(agents))).max(1);
        while world.waiting() < waiting {
            world.now += spacing;
            let task = world.new_task();
            world.engine.enqueue(world.now, task)?;
            world.settle_native()?;
        }
        Ok(world)
    }

    /// (b)'s quiet world: 15 % specialists, all on escalation calls, with `waiting`
    /// escalations queued behind them; everyone else free.
    fn quiet(agents: u32, waiting: usize, email_cost: u32) -> anyhow::Result<World> {
        let mut world = World::new(0x5EED_0002);
        for q in channel_queues() {
            world.engine.upsert_queue(0, q)?;
        }
        let mut escalations = Queue::new("escalations", "escalations");
        escalations.required_skills = vec![("escalation".into(), 5)];
        world.engine.upsert_queue(0, escalations)?;
        let specialists = quiet_specialists(agents);
        for i in 0..agents {
            let mut agent = make_agent(i, &mut world.rng, email_cost);
            if i < specialists {
                agent.skills.push(("escalation".into(), 5));
            } else {
                world.agents.push(agent.id.clone());
            }
            world.engine.upsert_agent(0, agent)?;
        }
        for n in 0..(specialists as usize + waiting) {
            world.now += 1;
            let task = NewTask::new(format!("escalation-{n:06}"), "voice", "escalations");
            world.engine.enqueue(world.now, task)?;
            world.settle_native()?;
        }
        world.now += 3_600_000;
        world.engine.handle_timeout(world.now);
        world.drain();
        Ok(world)
    }
}

/// The busy specialists of (b)'s quiet world: 15 % of the agents.
fn quiet_specialists(agents: u32) -> u32 {
    agents * 15 / 100
}

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Shape {
    free: usize,
    useless: usize,
    groups: usize,
}

#[derive(Default)]
struct Steady {
    elapsed: Duration,
    rank: Duration,
    /// In `next_match`, and in its last call of a step, which finds nothing more.
    matching: Duration,
    matching_none: Duration,
    decisions: u64,
    candidates: u64,
}

/// (a): `steps` times, the oldest assignment completes, a task arrives, and the host
/// matches, ranks, offers and accepts until nothing more matches.
async fn steady(
    world: &mut World,
    rankers: &mut Rankers,
    kind: Kind,
    steps: u32,
) -> anyhow::Result<Steady> {
    let mut out = Steady::default();
    let start = Instant::now();
    for _ in 0..steps {
        world.now += TICK_MS;
        let now = world.now;
        let done = world.assigned.pop_front().context("someone is working")?;
        world.engine.complete(now, &done)?;
        let task = world.new_task();
        world.engine.enqueue(now, task)?;
        loop {
            let t = Instant::now();
            let proposed = world.engine.next_match(now);
            let matching = t.elapsed();
            out.matching += matching;
            let Some(request) = proposed else {
                out.matching_none += matching;
                break;
            };
            let t = Instant::now();
            let ranked = rankers.rank(kind, &world.engine, &request, now).await;
            out.rank += t.elapsed();
            out.candidates += request.candidates.len() as u64;
            if let Some(res) = world.engine.offer(now, &request.task_id, &ranked)? {
                world.engine.accept(now, &res.id)?;
                world.assigned.push_back(res.task);
                out.decisions += 1;
            }
        }
        world.drain();
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

#[derive(Default)]
struct Latency {
    micros: Vec<f64>,
    candidates: u64,
    /// Decisions on which the native order differed from the Wasm plugin's.
    mismatches: u64,
    checked: u64,
    /// Arrivals nobody free could take (not timed).
    skipped: u64,
}

impl Latency {
    fn percentile(&mut self, p: f64) -> f64 {
        self.micros.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        self.micros[rank.clamp(1, self.micros.len()) - 1]
    }

    fn mean_candidates(&self) -> f64 {
        self.candidates as f64 / self.micros.len().max(1) as f64
    }
}

/// Times enqueue → next_match → rank → offer for `task`. `None` (and nothing timed)
/// when the engine did not offer that task at once (nobody free has the skills it
/// asks for): the caller cancels it. Untimed afterwards: the native order is checked
/// against the plugin's.
async fn time_offer(
    world: &mut World,
    rankers: &mut Rankers,
    kind: Kind,
    task: NewTask,
    out: &mut Latency,
) -> anyhow::Result<Option<TaskId>> {
    let now = world.now;
    let id = task.id.clone();
    let start = Instant::now();
    world.engine.enqueue(now, task)?;
    let Some(request) = world.engine.next_match(now) else {
        out.skipped += 1;
        return Ok(None);
    };
    let ranked = rankers.rank(kind, &world.engine, &request, now).await;
    let offered = world.engine.offer(now, &request.task_id, &ranked)?;
    let elapsed = start.elapsed();
    if request.task_id != id || offered.is_none() {
        bail!("the engine offered another task than the one arriving");
    }
    out.micros.push(elapsed.as_secs_f64() * 1e6);
    out.candidates += request.candidates.len() as u64;
    if kind == Kind::Native {
        let wasm = rankers.rank(Kind::Wasm, &world.engine, &request, now).await;
        out.checked += 1;
        if wasm != ranked {
            out.mismatches += 1;
        }
    }
    Ok(Some(id))
}

/// (b) in the busy center: an agent completes a task, then a VIP email arrives (priority
/// above everything waiting, the cheapest channel, so the freed agent can take it).
async fn busy_latency(
    world: &mut World,
    rankers: &mut Rankers,
    kind: Kind,
    samples: u32,
) -> anyhow::Result<Latency> {
    let mut out = Latency::default();
    for _ in 0..samples {
        world.now += TICK_MS;
        let done = world.assigned.pop_front().context("someone is working")?;
        world.engine.complete(world.now, &done)?;
        world.next_task += 1;
        let mut vip = NewTask::new(format!("vip-{:06}", world.next_task), "email", "email");
        vip.priority = 100;
        vip.attributes.insert("vip".into(), "true".into());
        let id = time_offer(world, rankers, kind, vip, &mut out)
            .await?
            .context("the freed agent can take an email")?;
        let reservation = world
            .engine
            .task(&id)
            .and_then(|t| match &t.state {
                switchboard_routing::TaskState::Reserved { reservation } => {
                    Some(reservation.clone())
                }
                _ => None,
            })
            .context("offered")?;
        world.engine.accept(world.now, &reservation)?;
        world.assigned.push_back(id);
        // Whatever else the freed capacity can take, as the host would (untimed).
        world.settle_native()?;
        // Keep the backlog at its size.
        let task = world.new_task();
        world.engine.enqueue(world.now, task)?;
        world.settle_native()?;
    }
    Ok(out)
}

/// (b) in the quiet center: a mixed task arrives while hundreds of agents are free; it
/// is canceled once offered (untimed), so every sample starts from the same state.
async fn quiet_latency(
    world: &mut World,
    rankers: &mut Rankers,
    kind: Kind,
    samples: u32,
) -> anyhow::Result<Latency> {
    let mut out = Latency::default();
    for _ in 0..samples {
        world.now += TICK_MS;
        let task = world.new_task();
        let id = task.id.clone();
        time_offer(world, rankers, kind, task, &mut out).await?;
        world.engine.cancel(world.now, &id)?;
        world.drain();
    }
    Ok(out)
}

/// Mean cost of one rank call with `n` candidates, per ranker.
async fn call_cost(
    rankers: &mut Rankers,
    world: &mut World,
    n: usize,
    calls: u32,
) -> anyhow::Result<Option<Vec<f64>>> {
    // A task every free agent can take, proposed with all of them as candidates.
    world.next_task += 1;
    let mut task = NewTask::new(format!("probe-{}", world.next_task), "email", "email");
    task.priority = 100;
    task.attributes.insert("skills".into(), "billing:2".into());
    world.engine.enqueue(world.now, task)?;
    let mut request = world.engine.next_match(world.now).context("probe")?;
    if request.candidates.len() < n {
        let id = request.task_id.clone();
        world.engine.cancel(world.now, &id)?;
        world.drain();
        return Ok(None);
    }
    request.candidates.truncate(n);
    let mut costs = Vec::new();
    for kind in Kind::ALL {
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(rankers.rank(kind, &world.engine, &request, world.now).await);
        }
        costs.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    }
    let id = request.task_id.clone();
    world.engine.cancel(world.now, &id)?;
    world.drain();
    Ok(Some(costs))
}

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Runs the benchmark and prints the report.
pub async fn run(args: RoutingBenchArgs) -> anyhow::Result<()> {
    let dir = args.plugins_dir.join(POLICY);
    if !dir.join("plugin.toml").exists() {
        bail!(
            "{} is not a built plugin; run `bash plugins/build.sh` or pass --plugins-dir",
            dir.display()
        );
    }
    print_header("routing");
    let waiting = args.waiting as usize;
    let mut rankers = Rankers {
        wasm: WasmPolicy::load(&dir)?,
        bare: BarePolicy::load(&dir)
            .await
            .context("instantiating the bare reference")?,
        failures: BTreeMap::new(),
    };
    println!(
        "policy {POLICY} from {}: wasm = PluginHost, default limits, as live (a warm pooled \
         instance, replaced after any failure and every {WARM_POLICY_CALLS} calls); bare* = one \
         instance outside the plugin host, no limits (reference); native = the same ranking in Rust",
        dir.display()
    );

    let built = Instant::now();
    let mut worlds: BTreeMap<Kind, World> = BTreeMap::new();
    for kind in Kind::ALL {
        worlds.insert(kind, World::busy(args.agents, waiting, args.email_cost)?);
    }
    println!(
        "engine: {} agents (mixed skills and languages, capacity 100: voice 100, chat/sms 25, \
         email {}), {} waiting tasks (voice/chat/sms/email, half asking a skill level), {} in \
         progress; built in {:.1} s",
        args.agents,
        args.email_cost,
        worlds[&Kind::Wasm].waiting(),
        worlds[&Kind::Wasm].assigned.len(),
        built.elapsed().as_secs_f64()
    );
    println!();

    // (a) Steady state.
    println!(
        "(a) Steady state: an agent completes -> a task arrives -> match, rank, offer, accept; \
         {} rounds x {} steps per ranker, alternating",
        args.rounds, args.steps
    );
    // Warm-up, untimed: caches, the plugin's first instances.
    for kind in Kind::ALL {
        let world = worlds.get_mut(&kind).expect("built");
        steady(world, &mut rankers, kind, (args.steps / 10).max(1)).await?;
    }
    let mut totals: BTreeMap<Kind, Steady> = BTreeMap::new();
    for _ in 0..args.rounds {
        for kind in Kind::ALL {
            let world = worlds.get_mut(&kind).expect("built");
            let s = steady(world, &mut rankers, kind, args.steps).await?;
            let t = totals.entry(kind).or_default();
            t.elapsed += s.elapsed;
            t.rank += s.rank;
            t.matching += s.matching;
            t.matching_none += s.matching_none;
            t.decisions += s.decisions;
            t.candidates += s.candidates;
        }
    }
    let rate = |s: &Steady| s.decisions as f64 / s.elapsed.as_secs_f64();
    let per = |s: &Steady, d: Duration| d.as_secs_f64() * 1e6 / s.decisions.max(1) as f64;
    println!(
        "    {:<34}{:>12}{:>12}{:>12}{:>14}",
        "", "wasm", "bare*", "native", "wasm/native"
    );
    let row = |label: &str, f: &dyn Fn(&Steady) -> f64, fmt: &dyn Fn(f64) -> String, inv: bool| {
        let v: Vec<f64> = Kind::ALL.iter().map(|k| f(&totals[k])).collect();
        let r = if inv {
            ratio(v[2], v[0])
        } else {
            ratio(v[0], v[2])
        };
        println!(
            "    {label:<34}{:>12}{:>12}{:>12}{:>14}",
            fmt(v[0]),
            fmt(v[1]),
            fmt(v[2]),
            r
        );
    };
    row("decisions/s", &|s| rate(s), &|v| format!("{v:.0}"), true);
    row(
        "time per decision (us)",
        &|s| per(s, s.elapsed),
        &|v| format!("{v:.1}"),
        false,
    );
    row(
        "  of which ranking (us)",
        &|s| per(s, s.rank),
        &|v| format!("{v:.1}"),
        false,
    );
    row(
        "  of which next_match (us)",
        &|s| per(s, s.matching),
        &|v| format!("{v:.1}"),
        false,
    );
    row(
        "    the last call, finding none",
        &|s| per(s, s.matching_none),
        &|v| format!("{v:.1}"),
        false,
    );
    row(
        "candidates per decision",
        &|s| s.candidates as f64 / s.decisions.max(1) as f64,
        &|v| format!("{v:.2}"),
        false,
    );
    println!(
        "    decisions timed: {} per ranker; waiting after: {}",
        totals[&Kind::Wasm].decisions,
        worlds[&Kind::Wasm].waiting()
    );
    let shape = worlds[&Kind::Native].shape();
    println!(
        "    engine in steady state: {} agents with spare capacity ({} of them with less than \
         the cheapest channel costs), {} distinct groups of waiting tasks",
        shape.free, shape.useless, shape.groups
    );
    println!();

    // (b) Enqueue-to-offer.
    println!(
        "(b) Enqueue-to-offer with an agent free (enqueue + next_match + rank + offer), {} offers per ranker",
        args.samples
    );
    println!(
        "    {:<34}{:>20}{:>20}{:>20}{:>12}",
        "p50 / p99 (us)", "wasm", "bare*", "native", "wasm/native"
    );
    let mut busy: BTreeMap<Kind, Latency> = BTreeMap::new();
    for kind in Kind::ALL {
        let world = worlds.get_mut(&kind).expect("built");
        busy.insert(
            kind,
            busy_latency(world, &mut rankers, kind, args.samples).await?,
        );
    }
    drop(worlds);
    let mut quiet_world = World::quiet(args.agents, waiting, args.email_cost)?;
    let mut quiet: BTreeMap<Kind, Latency> = BTreeMap::new();
    for kind in Kind::ALL {
        quiet_latency(
            &mut quiet_world,
            &mut rankers,
            kind,
            (args.samples / 10).max(1),
        )
        .await?;
        quiet.insert(
            kind,
            quiet_latency(&mut quiet_world, &mut rankers, kind, args.samples).await?,
        );
    }
    let mut p99_wasm = Vec::new();
    let mut p50_ratio = Vec::new();
    let quiet_name = format!(
        "quiet: {} agents free",
        args.agents - quiet_specialists(args.agents)
    );
    for (name, results) in [
        ("busy: 1 agent just freed, VIP email", &mut busy),
        (quiet_name.as_str(), &mut quiet),
    ] {
        let mut cells = Vec::new();
        let mut p50s = Vec::new();
        for kind in Kind::ALL {
            let l = results.get_mut(&kind).expect("measured");
            let (p50, p99) = (l.percentile(50.0), l.percentile(99.0));
            if kind == Kind::Wasm {
                p99_wasm.push(p99);
            }
            p50s.push(p50);
            cells.push(format!("{p50:.1} / {p99:.1}"));
        }
        p50_ratio.push(p50s[0] / p50s[2]);
        println!(
            "    {name:<34}{:>20}{:>20}{:>20}{:>12}",
            cells[0],
            cells[1],
            cells[2],
            ratio(p50s[0], p50s[2])
        );
        let native = &results[&Kind::Native];
        println!(
            "      candidates per offer {:.1}; native order == plugin order on {}/{} offers{}",
            native.mean_candidates(),
            native.checked - native.mismatches,
            native.checked,
            if native.skipped > 0 {
                format!(
                    "; {} arrivals nobody free could take, not timed",
                    native.skipped
                )
            } else {
                String::new()
            }
        );
    }
    println!();

    // Where the Wasm time goes.
    println!("Cost of one rank call by candidates (us, mean)");
    println!(
        "    {:<34}{:>12}{:>12}{:>12}{:>14}",
        "candidates", "wasm", "bare*", "native", "wasm/native"
    );
    for (n, calls) in [(1, 2000), (10, 2000), (100, 500), (500, 100)] {
        let Some(costs) = call_cost(&mut rankers, &mut quiet_world, n, calls).await? else {
            continue;
        };
        println!(
            "    {n:<34}{:>12.1}{:>12.1}{:>12.1}{:>14}",
            costs[0],
            costs[1],
            costs[2],
            ratio(costs[0], costs[2])
        );
    }
    println!();

    // Goals.
    let a_rate = rate(&totals[&Kind::Wasm]);
    let a_ratio = totals[&Kind::Wasm].elapsed.as_secs_f64()
        / totals[&Kind::Wasm].decisions as f64
        / (totals[&Kind::Native].elapsed.as_secs_f64() / totals[&Kind::Native].decisions as f64);
    let worst_p99 = p99_wasm.iter().copied().fold(0.0, f64::max);
    let worst_ratio = p50_ratio.iter().copied().fold(a_ratio, f64::max);
    println!("Goals (Wasm policy, as deployed)");
    println!(
        "    >= 20,000 decisions/s (a)                 {a_rate:>10.0}/s   {}",
        verdict(a_rate >= 20_000.0)
    );
    println!(
        "    p99 enqueue-to-offer < 5 ms (b)           {:>10.2} ms  {}",
        worst_p99 / 1000.0,
        verdict(worst_p99 < 5000.0)
    );
    println!(
        "    Wasm within 2x of native (worst of a, b)  {worst_ratio:>10.2}x   {}",
        verdict(worst_ratio <= 2.0)
    );
    let failures: u64 = rankers.failures.values().sum();
    println!(
        "    policy failures (fell back to the default order): {failures}; load average at the end {}",
        load_average()
    );
    let mismatches: u64 = busy
        .values()
        .chain(quiet.values())
        .map(|l| l.mismatches)
        .sum();
    if failures > 0 || mismatches > 0 {
        bail!("the native ranking or the plugin misbehaved (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
