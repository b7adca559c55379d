//! The engine: its state, administration (queues, agents, presence), reading, outputs
//! and timers.
//!
//! This module owns every live queue, agent, task and reservation. Its children split
//! the work: `lifecycle` moves tasks through their states, `matching` proposes and makes
//! offers, `waiting` defines the groups tasks wait in, `index` keeps the indexes that make
//! matching cheap in step with the rows, and `restore` rebuilds the engine after a restart
//! and states the invariants. The children build on the state defined here, so this
//! module imports nothing of theirs but `waiting`, which knows nothing of the engine
//! (it only re-exports what callers of `matching` need).
//!
//! Every input first brings the engine up to `now`, then acts, then fires whatever became
//! due, so the state at an instant never depends on how often the host called
//! [`Engine::handle_timeout`]. Nothing here may read a clock, do I/O or call out to the
//! routing policy: ranking is the host's step between [`Engine::next_match`] and
//! [`Engine::offer`].

mod index;
mod lifecycle;
mod matching;
mod restore;
mod waiting;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::model::{
    Agent, AgentId, EngineConfig, Presence, Queue, QueueId, Reservation, ReservationId, Task,
    TaskId, TaskState,
};
use crate::output::Output;

pub use matching::{Candidate, MatchRequest, default_rank};
use waiting::{Group, Indexed, Waiting, requirements};

/// The reason given when the engine sets an agent away for not answering offers.
pub const MISSED_OFFERS_REASON: &str = "missed offers";

/// A queue's figures for a supervisor's wallboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Tasks waiting (pending or offered) in the queue.
    pub waiting: u32,
    /// How long the longest-waiting of them has been in the queue (ms).
    pub longest_wait_ms: u64,
    /// Offers made for tasks in the queue since the engine started.
    pub offered: u64,
    /// Offers accepted since the engine started.
    pub assigned: u64,
    /// Completed tasks that had been assigned within the queue's SLA target of entering it.
    pub completed_within_sla: u64,
    /// Tasks completed since the engine started.
    pub completed: u64,
    /// Tasks canceled while still waiting (the customer gave up).
    pub abandoned: u64,
}

/// Counters kept per queue; the waiting figures are computed on demand.
#[derive(Debug, Clone, Default)]
struct Counters {
    offered: u64,
    assigned: u64,
    completed_within_sla: u64,
    completed: u64,
    abandoned: u64,
}

#[derive(Debug)]
struct QueueEntry {
    queue: Queue,
    counters: Counters,
}

#[derive(Debug)]
struct AgentEntry {
    agent: Agent,
    /// Sum of the costs of `held`, under the agent's current capacity profile.
    load: u32,
    /// Tasks reserved for, assigned to or wrapped up by this agent.
    held: BTreeSet<TaskId>,
    /// Offers let time out in a row.
    missed: u32,
    /// When the agent last became available, took work or finished work.
    idle_since: u64,
}

impl AgentEntry {
    fn spare(&self) -> u32 {
        self.agent.capacity.total.saturating_sub(self.load)
    }

    /// Available with room for at least the cheapest channel. Agents who are
    /// nearly full would otherwise stay "free" and make every scan test them.
    fn is_free(&self) -> bool {
        self.agent.presence == Presence::Available
            && self.spare() >= self.agent.capacity.min_cost().max(1)
    }
}

#[derive(Debug)]
struct TaskEntry {
    task: Task,
    indexed: Indexed,
}

/// What a timer is for. At the same instant, expiries fire before steps before sticky
/// ends (the derived order), which keeps runs deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Reservation(ReservationId),
    Step(TaskId),
    Sticky(TaskId),
}

/// The sans-IO routing engine. See the [crate docs](crate) for the run loop.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    now: u64,
    queues: BTreeMap<QueueId, QueueEntry>,
    agents: BTreeMap<AgentId, AgentEntry>,
    tasks: BTreeMap<TaskId, TaskEntry>,
    reservations: BTreeMap<ReservationId, Reservation>,
    /// Available agents with spare capacity: nobody else can be offered anything.
    free: BTreeSet<AgentId>,
    /// Pending tasks grouped by what decides who may take them, then by arrival and id.
    pending: BTreeMap<Group, Waiting>,
    timers: BTreeSet<(u64, Timer)>,
    /// Tasks the policy declined to give to any of these candidates; they are not asked
    /// about again until their candidates change.
    passed: BTreeMap<TaskId, Vec<AgentId>>,
    outputs: VecDeque<Output>,
}

impl Engine {
    /// An empty engine at time 0. An `accept_timeout_ms` of 0 is taken as 1 ms.
    pub fn new(mut config: EngineConfig) -> Engine {
        config.accept_timeout_ms = config.accept_timeout_ms.max(1);
        Engine {
            config,
            now: 0,
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            tasks: BTreeMap::new(),
            reservations: BTreeMap::new(),
            free: BTreeSet::new(),
            pending: BTreeMap::new(),
            timers: BTreeSet::new(),
            passed: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    // ----- reading -------------------------------------------------------------------

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The latest instant the engine has been brought to (inputs never move it back).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// A queue.
    pub fn queue(&self, id: &QueueId) -> Option<&Queue> {
        self.queues.get(id).map(|e| &e.queue)
    }

    /// All queues, by id.
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.values().map(|e| &e.queue)
    }

    /// An agent.
    pub fn agent(&self, id: &AgentId) -> Option<&Agent> {
        self.agents.get(id).map(|e| &e.agent)
    }

    /// All agents, by id.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values().map(|e| &e.agent)
    }

    /// The capacity an agent's reserved, assigned and wrapping tasks use.
    pub fn agent_load(&self, id: &AgentId) -> Option<u32> {
        self.agents.get(id).map(|e| e.load)
    }

    /// A live task (completed and canceled tasks leave the engine).
    pub fn task(&self, id: &TaskId) -> Option<&Task> {
        self.tasks.get(id).map(|e| &e.task)
    }

    /// The agent holding a task: offered to, assigned to or wrapping it up.
    pub fn holder(&self, task: &TaskId) -> Option<&AgentId> {
        match &self.tasks.get(task)?.task.state {
            TaskState::Reserved { reservation } => {
                self.reservations.get(reservation).map(|r| &r.agent)
            }
            TaskState::Assigned { agent } | TaskState::Wrapping { agent } => Some(agent),
            _ => None,
        }
    }

    /// Sets one of a live task's attributes (what a policy and the desk read, e.g.
    /// the hand-off that travels with a transfer). Changes no routing state.
    pub fn set_attribute(
        &mut self,
        task: &TaskId,
        key: &str,
        value: &str,
    ) -> Result<(), EngineError> {
        let entry = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| EngineError::UnknownTask(task.clone()))?;
        entry
            .task
            .attributes
            .insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// All live tasks, by id.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().map(|e| &e.task)
    }

    /// A live reservation.
    pub fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.reservations.get(id)
    }

    /// All live reservations, by id.
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.reservations.values()
    }

    /// The offers waiting for an agent's answer (what their desk shows).
    pub fn reservations_of(&self, agent: &AgentId) -> Vec<&Reservation> {
        let Some(entry) = self.agents.get(agent) else {
            return Vec::new();
        };
        entry
            .held
            .iter()
            .filter_map(|t| match &self.tasks.get(t)?.task.state {
                TaskState::Reserved { reservation } => self.reservations.get(reservation),
                _ => None,
            })
            .collect()
    }

    /// A queue's figures at `now`.
    pub fn queue_stats(&self, now: u64, queue: &QueueId) -> Result<QueueStats, EngineError> {
        let entry = self
            .queues
            .get(queue)
            .ok_or_else(|| EngineError::UnknownQueue(queue.clone()))?;
        let now = now.max(self.now);
        let mut stats = QueueStats {
            offered: entry.counters.offered,
            assigned: entry.counters.assigned,
            completed_within_sla: entry.counters.completed_within_sla,
            completed: entry.counters.completed,
            abandoned: entry.counters.abandoned,
            ..QueueStats::default()
        };
        for task in self.tasks.values().map(|e| &e.task) {
            if &task.queue == queue
                && matches!(task.state, TaskState::Pending | TaskState::Reserved { .. })
            {
                stats.waiting += 1;
                stats.longest_wait_ms = stats
                    .longest_wait_ms
                    .max(now.saturating_sub(task.queued_at));
            }
        }
        Ok(stats)
    }

    // ----- outputs and time ----------------------------------------------------------

    /// The next event to persist and publish, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which [`Engine::handle_timeout`] has work: an offer
    /// expiring, a routing step applying, or a sticky wait ending (after which other
    /// agents become candidates, so the host should call [`Engine::next_match`]).
    /// Priority aging is continuous and needs no timer.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Brings the engine to `now`: expires offers, applies routing steps.
    pub fn handle_timeout(&mut self, now: u64) {
        self.advance(now);
    }

    // ----- administration ------------------------------------------------------------

    /// Adds or replaces a queue. Its steps are sorted by `after_ms`; tasks already in it
    /// keep the number of steps applied so far.
    pub fn upsert_queue(&mut self, now: u64, mut queue: Queue) -> Result<(), EngineError> {
        validate_queue(&mut queue)?;
        self.advance(now);
        let id = queue.id.clone();
        match self.queues.get_mut(&id) {
            Some(entry) => entry.queue = queue,
            None => {
                self.queues.insert(
                    id.clone(),
                    QueueEntry {
                        queue,
                        counters: Counters::default(),
                    },
                );
            }
        }
        let steps = self.queues[&id].queue.steps.len() as u32;
        let affected: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|e| e.task.queue == id)
            .map(|e| e.task.id.clone())
            .collect();
        for task in affected {
            if let Some(entry) = self.tasks.get_mut(&task) {
                entry.task.step = entry.task.step.min(steps);
            }
            self.reindex(&task);
        }
        // The queue's own skills may have changed under groups that stayed filed.
        let queue = &self.queues[&id].queue;
        for (group, waiting) in self.pending.iter_mut().filter(|(g, _)| g.queue == id) {
            waiting.required = requirements(queue, &group.skills, group.floor);
            waiting.viable = true; // re-checked by the next scan
        }
        self.fire_due();
        Ok(())
    }

    /// Adds or replaces an agent (skills, capacity and presence). Refused if the new
    /// capacity profile cannot hold the work the agent already has.
    pub fn upsert_agent(&mut self, now: u64, agent: Agent) -> Result<(), EngineError> {
        self.advance(now);
        let id = agent.id.clone();
        let Some(entry) = self.agents.get(&id) else {
            self.agents.insert(
                id.clone(),
                AgentEntry {
                    agent,
                    load: 0,
                    held: BTreeSet::new(),
                    missed: 0,
                    idle_since: self.now,
                },
            );
            self.refresh_free(&id);
            return Ok(());
        };
        let load = entry
            .held
            .iter()
            .filter_map(|t| self.tasks.get(t))
            .map(|t| agent.capacity.cost(&t.task.channel))
            .sum::<u32>();
        if load > agent.capacity.total {
            return Err(EngineError::OverCapacity {
                agent: id,
                load,
                capacity: agent.capacity.total,
            });
        }
        let presence = agent.presence.clone();
        let entry = self.agents.get_mut(&id).expect("checked above");
        entry.agent = Agent {
            presence: entry.agent.presence.clone(),
            ..agent
        };
        entry.load = load;
        self.change_presence(&id, presence);
        self.fire_due();
        Ok(())
    }

    /// Sets an agent's presence. Going away or offline withdraws their open offers (the
    /// tasks wait again); becoming available makes waiting work matchable at once.
    pub fn set_presence(
        &mut self,
        now: u64,
        agent: &AgentId,
        presence: Presence,
    ) -> Result<(), EngineError> {
        self.advance(now);
        if !self.agents.contains_key(agent) {
            return Err(EngineError::UnknownAgent(agent.clone()));
        }
        self.change_presence(agent, presence);
        self.fire_due();
        Ok(())
    }

    // ----- internals -----------------------------------------------------------------

    /// Moves the clock forward (never back) and fires every timer now due.
    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.fire_due();
    }

    fn fire_due(&mut self) {
        while let Some((at, timer)) = self.timers.first().cloned() {
            if at > self.now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Reservation(id) => self.expire(&id),
                Timer::Step(task) => {
                    if let Some(entry) = self.tasks.get_mut(&task) {
                        entry.indexed.step_timer = None;
                    }
                    self.apply_step(&task, at);
                }
                Timer::Sticky(task) => {
                    if let Some(entry) = self.tasks.get_mut(&task) {
                        entry.indexed.sticky_timer = None;
                    }
                }
            }
        }
    }
}

fn validate_queue(queue: &mut Queue) -> Result<(), EngineError> {
    let bad = |reason: &str| EngineError::InvalidQueue {
        queue: queue.id.clone(),
        reason: reason.to_owned(),
    };
    for step in &queue.steps {
        if let Some(to) = &step.overflow_queue {
            if *to == queue.id {
                return Err(bad("a step overflows into the queue itself"));
            }
            if step.after_ms == 0 {
                return Err(bad("an overflow step needs after_ms > 0"));
            }
        }
    }
    queue.steps.sort_by_key(|s| s.after_ms);
    Ok(())
}
