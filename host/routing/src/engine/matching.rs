//! Matching: who may take which waiting task, in what order, and the two-step offer.
//!
//! The engine proposes ([`Engine::next_match`]): the best-ordered waiting task that has
//! at least one eligible agent, with those agents as candidates. The host ranks them —
//! with the routing policy component, or [`default_rank`] when the policy fails — and
//! disposes ([`Engine::offer`]), at which point eligibility is checked again, because the
//! world may have moved while the policy was thinking. This module never ranks on its own
//! except in [`default_rank`], and never calls out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, btree_set};

use serde::{Deserialize, Serialize};

use super::index::has_skills;
use super::lifecycle::invalid;
use super::waiting::{Group, Waiting, floor, requirements};
use super::{AgentEntry, Engine, Timer};
use crate::error::EngineError;
use crate::model::{
    AgentId, Aging, ContactId, Presence, QueueId, Reservation, ReservationId, SkillLevel, Task,
    TaskId, TaskState,
};
use crate::output::Output;

/// A waiting task and the agents who could take it now, for the policy to rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchRequest {
    /// The task.
    pub task_id: TaskId,
    /// Its queue.
    pub queue: QueueId,
    /// Its channel.
    pub channel: String,
    /// Its effective priority now (queue + task + aging).
    pub priority: i64,
    /// The skills it needs now (queue's and task's, widened by the steps applied).
    pub required_skills: Vec<SkillLevel>,
    /// The customer.
    pub contact_id: Option<ContactId>,
    /// Eligible agents, by id; never empty.
    pub candidates: Vec<Candidate>,
}

/// An agent who could take the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The agent.
    pub agent_id: AgentId,
    /// Their skills.
    pub skills: Vec<SkillLevel>,
    /// Milliseconds since they last became available, took work or finished work.
    pub idle_ms: u64,
    /// Capacity their current work uses.
    pub load: u32,
    /// Their total capacity.
    pub capacity: u32,
    /// True if they are the agent who last served this customer.
    pub served_contact_last: bool,
}

/// The built-in ranking, used when the routing policy fails: best skill match (sum of
/// proficiency in the required skills) first, then the longest idle, then the least
/// loaded, then by id so the order is total.
pub fn default_rank(request: &MatchRequest) -> Vec<AgentId> {
    let skill_match = |c: &Candidate| -> u32 {
        request
            .required_skills
            .iter()
            .filter_map(|(skill, _)| c.skills.iter().find(|(s, _)| s == skill))
            .map(|&(_, level)| u32::from(level))
            .sum()
    };
    let mut ranked: Vec<&Candidate> = request.candidates.iter().collect();
    ranked.sort_by(|a, b| {
        skill_match(b)
            .cmp(&skill_match(a))
            .then(b.idle_ms.cmp(&a.idle_ms))
            .then(a.load.cmp(&b.load))
            .then(a.agent_id.cmp(&b.agent_id))
    });
    ranked.into_iter().map(|c| c.agent_id.clone()).collect()
}

/// Who may take a task at the moment.
#[derive(Clone, Copy)]
enum Pool<'a> {
    /// Any eligible agent.
    Anyone,
    /// Only this agent (a transfer target, or the sticky last agent during the wait).
    Only(&'a AgentId),
}

impl Pool<'_> {
    fn allows(self, agent: &AgentId) -> bool {
        match self {
            Pool::Anyone => true,
            Pool::Only(only) => only == agent,
        }
    }
}

impl Engine {
    /// Brings the engine to `now` and proposes the best-ordered waiting task that some
    /// agent can take, with its candidates. `None` when nothing can be matched. Calling
    /// it again without an offer in between proposes the same task.
    ///
    /// A task for which [`Engine::offer`] found nobody in the policy's ranking is skipped
    /// until its candidates change, so the policy is not asked the same question twice.
    pub fn next_match(&mut self, now: u64) -> Option<MatchRequest> {
        self.advance(now);
        self.find_match()
    }

    /// Offers the task to the first agent in `ranked` who is still eligible, with a
    /// reservation expiring `accept_timeout_ms` from now. `Ok(None)` if none is (the
    /// policy passed, or every ranked agent became busy meanwhile). Ids that are not
    /// eligible, or not agents at all, are skipped.
    pub fn offer(
        &mut self,
        now: u64,
        task_id: &TaskId,
        ranked: &[AgentId],
    ) -> Result<Option<Reservation>, EngineError> {
        self.advance(now);
        let task = &self
            .tasks
            .get(task_id)
            .ok_or_else(|| EngineError::UnknownTask(task_id.clone()))?
            .task;
        if task.state != TaskState::Pending {
            return Err(invalid(task, "offer"));
        }
        let required = self.requirements(task);
        let pool = self.pool(task);
        let chosen = ranked
            .iter()
            .find(|a| {
                pool.allows(a)
                    && self
                        .agents
                        .get(*a)
                        .is_some_and(|e| eligible(task, &required, e))
            })
            .cloned();
        let Some(agent) = chosen else {
            let candidates = self
                .candidates(task, &required, pool)
                .iter()
                .map(|e| e.agent.id.clone())
                .collect();
            self.passed.insert(task_id.clone(), candidates);
            return Ok(None);
        };
        let reservation = self.reserve(task_id, &agent);
        self.fire_due();
        Ok(Some(reservation))
    }

    /// Matches everything that can be matched at `now`, ranking with `rank` (the policy,
    /// or [`default_rank`]), and returns the reservations made. For tests, benchmarks and
    /// the offline replay, where ranking is synchronous.
    pub fn route_all(
        &mut self,
        now: u64,
        mut rank: impl FnMut(&MatchRequest) -> Vec<AgentId>,
    ) -> Vec<Reservation> {
        let mut made = Vec::new();
        while let Some(request) = self.next_match(now) {
            let ranked = rank(&request);
            match self.offer(now, &request.task_id, &ranked) {
                Ok(Some(reservation)) => made.push(reservation),
                Ok(None) => {}
                Err(err) => {
                    debug_assert!(false, "next_match proposed an unofferable task: {err}");
                    break;
                }
            }
        }
        made
    }

    fn find_match(&mut self) -> Option<MatchRequest> {
        if self.free.is_empty() {
            return None;
        }
        // Confirm the groups marked viable; a group nobody free serves is left out of
        // the scan altogether until an agent who can serve it becomes free.
        let mut stale = Vec::new();
        for (group, waiting) in &self.pending {
            if waiting.viable && !self.anyone_serves(&group.channel, &waiting.required) {
                stale.push(group.clone());
            }
        }
        for group in stale {
            if let Some(waiting) = self.pending.get_mut(&group) {
                waiting.viable = false;
            }
        }
        let mut order = self.waiting_order();
        while let Some((id, g)) = order.pop() {
            let required = &order.groups[g].waiting.required;
            order.pull(g);
            let task = &self.tasks[id].task;
            let pool = self.pool(task);
            let candidates = self.candidates(task, required, pool);
            if candidates.is_empty() {
                continue;
            }
            if self
                .passed
                .get(id)
                .is_some_and(|passed| passed.iter().eq(candidates.iter().map(|e| &e.agent.id)))
            {
                continue;
            }
            return Some(MatchRequest {
                task_id: id.clone(),
                queue: task.queue.clone(),
                channel: task.channel.clone(),
                priority: self.effective_priority(task),
                required_skills: required.clone(),
                contact_id: task.contact_id.clone(),
                candidates: candidates
                    .into_iter()
                    .map(|e| Candidate {
                        agent_id: e.agent.id.clone(),
                        skills: e.agent.skills.clone(),
                        idle_ms: self.now.saturating_sub(e.idle_since),
                        load: e.load,
                        capacity: e.agent.capacity.total,
                        served_contact_last: task.last_agent.as_ref() == Some(&e.agent.id),
                    })
                    .collect(),
            });
        }
        None
    }

    fn reserve(&mut self, task_id: &TaskId, agent: &AgentId) -> Reservation {
        let now = self.now;
        let expires_at = now.saturating_add(self.config.accept_timeout_ms);
        let task = &mut self.tasks.get_mut(task_id).expect("caller checked").task;
        task.offers += 1;
        let id = ReservationId(format!("{}.{}", task.id, task.offers));
        task.state = TaskState::Reserved {
            reservation: id.clone(),
        };
        let queue = task.queue.clone();
        let reservation = Reservation {
            id: id.clone(),
            task: task_id.clone(),
            agent: agent.clone(),
            offered_at: now,
            expires_at,
        };
        self.hold(agent, task_id);
        self.counters(&queue).offered += 1;
        self.timers
            .insert((expires_at, Timer::Reservation(id.clone())));
        self.reservations.insert(id, reservation.clone());
        self.reindex(task_id);
        self.outputs.push_back(Output::Offered {
            reservation: reservation.clone(),
        });
        reservation
    }

    /// Who may take the task now: a transfer target, else the last agent during the
    /// sticky wait (unless they declined it or are offline), else anyone.
    fn pool<'a>(&self, task: &'a Task) -> Pool<'a> {
        if let Some(agent) = &task.pinned_agent {
            return Pool::Only(agent);
        }
        if let Some(agent) = &task.last_agent
            && self.now < task.arrived_at.saturating_add(self.config.sticky_wait_ms)
            && !task.excluded_agents.contains(agent)
            && self
                .agents
                .get(agent)
                .is_some_and(|e| e.agent.presence != Presence::Offline)
        {
            return Pool::Only(agent);
        }
        Pool::Anyone
    }

    /// The skills a task needs now: its queue's and its own, capped by the routing
    /// steps applied so far.
    fn requirements(&self, task: &Task) -> Vec<SkillLevel> {
        let queue = &self.queues[&task.queue].queue;
        requirements(queue, &task.required_skills, floor(queue, task.step))
    }

    fn candidates<'a>(
        &'a self,
        task: &Task,
        required: &[SkillLevel],
        pool: Pool<'_>,
    ) -> Vec<&'a AgentEntry> {
        let eligible = |e: &&AgentEntry| eligible(task, required, e);
        match pool {
            Pool::Only(agent) => self
                .agents
                .get(agent)
                .filter(eligible)
                .into_iter()
                .collect(),
            Pool::Anyone => self
                .free
                .iter()
                .filter_map(|a| self.agents.get(a))
                .filter(eligible)
                .collect(),
        }
    }

    pub(super) fn effective_priority(&self, task: &Task) -> i64 {
        let base = i64::from(self.queues[&task.queue].queue.priority) + i64::from(task.priority);
        base.saturating_add(aging_bonus(self.config.aging, task.arrived_at, self.now))
    }

    /// Pending tasks, best first: effective priority (desc), arrival (asc), id (asc).
    fn waiting_order(&self) -> WaitingOrder<'_> {
        let mut order = WaitingOrder {
            groups: Vec::with_capacity(self.pending.len()),
            heap: BinaryHeap::with_capacity(self.pending.len()),
            aging: self.config.aging,
            now: self.now,
        };
        for (group, waiting) in &self.pending {
            if waiting.viable {
                order.groups.push(Cursor {
                    group,
                    waiting,
                    tasks: waiting.tasks.iter(),
                });
                order.pull(order.groups.len() - 1);
            }
        }
        order
    }
}

/// Whether an agent can take a pending task needing `required` right now (the pool
/// restriction aside).
fn eligible(task: &Task, required: &[SkillLevel], e: &AgentEntry) -> bool {
    e.agent.presence == Presence::Available
        && e.spare() >= e.agent.capacity.cost(&task.channel)
        && !e.held.contains(&task.id)
        && !task.excluded_agents.contains(&e.agent.id)
        && has_skills(e, required)
}

fn aging_bonus(aging: Option<Aging>, arrived_at: u64, now: u64) -> i64 {
    match aging {
        Some(Aging { every_ms, step }) if every_ms > 0 => {
            let intervals = now.saturating_sub(arrived_at) / every_ms;
            i64::try_from(intervals)
                .unwrap_or(i64::MAX)
                .saturating_mul(i64::from(step))
        }
        _ => 0,
    }
}

/// A lazy k-way merge of the groups of waiting tasks. Within a group, older tasks have
/// aged at least as much, so each group's next task is its best; the heap picks among
/// those. The caller pulls a group's next task only if it still wants that group.
struct WaitingOrder<'a> {
    groups: Vec<Cursor<'a>>,
    heap: BinaryHeap<(i64, Reverse<u64>, Reverse<&'a TaskId>, usize)>,
    aging: Option<Aging>,
    now: u64,
}

/// Where the scan stands in one group.
struct Cursor<'a> {
    group: &'a Group,
    waiting: &'a Waiting,
    tasks: btree_set::Iter<'a, (u64, TaskId)>,
}

impl<'a> WaitingOrder<'a> {
    /// Queues the next task of group `g`, if any.
    fn pull(&mut self, g: usize) {
        let cursor = &mut self.groups[g];
        if let Some((arrived, id)) = cursor.tasks.next() {
            let priority = cursor
                .group
                .base
                .saturating_add(aging_bonus(self.aging, *arrived, self.now));
            self.heap
                .push((priority, Reverse(*arrived), Reverse(id), g));
        }
    }

    /// The best queued task and its group.
    fn pop(&mut self) -> Option<(&'a TaskId, usize)> {
        let (_, _, Reverse(id), g) = self.heap.pop()?;
        Some((id, g))
    }
}
