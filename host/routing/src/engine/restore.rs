//! Rebuilding the engine from persisted rows after a restart, and the invariants that
//! must hold at every instant.
//!
//! Restoring repairs what a crash can leave behind — an offer whose time ran out while
//! the host was down, an offer to an agent who is no longer available, a reservation row
//! no task points at — and reports each repair as an output so the host writes it back.
//! It refuses, rather than guesses, when rows contradict each other in a way that would
//! double-assign or overload: an assigned task whose agent is unknown, or assigned work
//! beyond an agent's capacity.

use std::collections::{BTreeMap, BTreeSet};

use super::waiting::{Group, Indexed, requirements};
use super::{AgentEntry, Counters, Engine, QueueEntry, TaskEntry, Timer, validate_queue};
use crate::error::EngineError;
use crate::model::{
    Agent, EngineConfig, Presence, Queue, Reservation, ReservationId, Task, TaskState,
};
use crate::output::Output;

impl Engine {
    /// Rebuilds the engine at `now` from persisted queues, agents, tasks and
    /// reservations. Completed and canceled tasks are ignored. Offers whose time ran out
    /// are expired at once (the task waits again and is re-offered; the agent is not
    /// blamed for an outage), offers to agents no longer available are canceled, and
    /// routing steps that fell due while the host was down are applied. Every repair
    /// appears in [`Engine::poll_output`]. Agents' idle time restarts at `now`; queue
    /// counters restart at zero.
    pub fn restore(
        config: EngineConfig,
        queues: Vec<Queue>,
        agents: Vec<Agent>,
        tasks: Vec<Task>,
        reservations: Vec<Reservation>,
        now: u64,
    ) -> Result<Engine, EngineError> {
        let mut engine = Engine::new(config);
        engine.now = now;
        for mut queue in queues {
            validate_queue(&mut queue)?;
            engine.queues.insert(
                queue.id.clone(),
                QueueEntry {
                    queue,
                    counters: Counters::default(),
                },
            );
        }
        for agent in agents {
            engine.agents.insert(
                agent.id.clone(),
                AgentEntry {
                    agent,
                    load: 0,
                    held: BTreeSet::new(),
                    missed: 0,
                    idle_since: now,
                },
            );
        }
        let mut rows: BTreeMap<ReservationId, Reservation> = reservations
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();

        for mut task in tasks.into_iter().filter(|t| !t.state.is_terminal()) {
            let Some(queue) = engine.queues.get(&task.queue) else {
                return Err(EngineError::UnknownQueue(task.queue));
            };
            if engine.tasks.contains_key(&task.id) {
                return Err(EngineError::DuplicateTask(task.id));
            }
            task.step = task.step.min(queue.queue.steps.len() as u32);
            engine.tasks.insert(
                task.id.clone(),
                TaskEntry {
                    task,
                    indexed: Indexed::default(),
                },
            );
        }

        // Work in hand first: it cannot be undone, so it must fit.
        let ids: Vec<_> = engine.tasks.keys().cloned().collect();
        for id in &ids {
            let (TaskState::Assigned { agent } | TaskState::Wrapping { agent }) =
                engine.tasks[id].task.state.clone()
            else {
                continue;
            };
            let Some(entry) = engine.agents.get(&agent) else {
                return Err(EngineError::UnknownAgent(agent));
            };
            let cost = entry.agent.capacity.cost(&engine.tasks[id].task.channel);
            if entry.load + cost > entry.agent.capacity.total {
                return Err(EngineError::OverCapacity {
                    load: entry.load + cost,
                    capacity: entry.agent.capacity.total,
                    agent,
                });
            }
            engine.hold(&agent, id);
        }

        // Then open offers, where they still make sense.
        for id in &ids {
            let TaskState::Reserved { reservation } = engine.tasks[id].task.state.clone() else {
                continue;
            };
            let row = rows.remove(&reservation).filter(|r| &r.task == id);
            let fits = row.as_ref().is_some_and(|r| {
                engine.agents.get(&r.agent).is_some_and(|e| {
                    e.agent.presence == Presence::Available
                        && e.spare() >= e.agent.capacity.cost(&engine.tasks[id].task.channel)
                })
            });
            match row {
                Some(res) if fits => {
                    engine.hold(&res.agent, id);
                    engine
                        .timers
                        .insert((res.expires_at, Timer::Reservation(res.id.clone())));
                    engine.reservations.insert(res.id.clone(), res);
                }
                Some(res) => {
                    engine.tasks.get_mut(id).expect("listed").task.state = TaskState::Pending;
                    engine
                        .outputs
                        .push_back(Output::ReservationCanceled { reservation: res });
                }
                None => {
                    engine.tasks.get_mut(id).expect("listed").task.state = TaskState::Pending;
                }
            }
        }
        for res in rows.into_values() {
            engine
                .outputs
                .push_back(Output::ReservationCanceled { reservation: res });
        }

        // Offers that ran out while the host was down: re-offer, blame no one.
        let expired: Vec<Reservation> = engine
            .reservations
            .values()
            .filter(|r| r.expires_at <= now)
            .cloned()
            .collect();
        for res in expired {
            let res = engine
                .take_reservation(&res.id)
                .expect("listed among live reservations");
            engine.requeue(&res, false);
            engine
                .outputs
                .push_back(Output::ReservationExpired { reservation: res });
        }

        for id in &ids {
            engine.reindex(id);
        }
        for id in engine.agents.keys().cloned().collect::<Vec<_>>() {
            engine.refresh_free(&id);
        }
        engine.fire_due();
        Ok(engine)
    }

    /// Panics if any invariant is broken: a task has at most one live reservation or
    /// assignment; an agent's load is the cost of what they hold and never exceeds their
    /// capacity; every reserved, assigned or wrapping task's agent exists; the indexes
    /// agree with the rows. For tests and debug builds: it walks everything.
    pub fn check_invariants(&self) {
        let mut holder_of = BTreeMap::new();
        for (id, entry) in &self.tasks {
            let task = &entry.task;
            assert_eq!(id, &task.id, "task filed under another id");
            assert!(!task.state.is_terminal(), "task {id} is finished but live");
            assert!(
                self.queues.contains_key(&task.queue),
                "task {id}: unknown queue"
            );
            let holder = match &task.state {
                TaskState::Reserved { reservation } => {
                    let res = self
                        .reservations
                        .get(reservation)
                        .unwrap_or_else(|| panic!("task {id}: reservation {reservation} missing"));
                    assert_eq!(
                        &res.task, id,
                        "reservation {reservation} is for another task"
                    );
                    assert!(
                        self.timers
                            .contains(&(res.expires_at, Timer::Reservation(reservation.clone()))),
                        "reservation {reservation} has no timer"
                    );
                    let agent = &self.agents[&res.agent];
                    assert_eq!(
                        agent.agent.presence,
                        Presence::Available,
                        "reservation {reservation} to an agent who is not available"
                    );
                    Some(&res.agent)
                }
                TaskState::Assigned { agent } | TaskState::Wrapping { agent } => Some(agent),
                _ => None,
            };
            if let Some(agent) = holder {
                let entry = self
                    .agents
                    .get(agent)
                    .unwrap_or_else(|| panic!("task {id} held by unknown agent {agent}"));
                assert!(
                    entry.held.contains(id),
                    "agent {agent} does not count task {id}"
                );
                holder_of.insert(id, agent);
            }
            let pending = task.state == TaskState::Pending;
            assert_eq!(
                pending,
                entry.indexed.pending.is_some(),
                "task {id}: waiting index"
            );
            if let Some((group, arrived)) = &entry.indexed.pending {
                assert_eq!(
                    group,
                    &Group::of(&self.queues[&task.queue].queue, task),
                    "task {id} filed in a stale group"
                );
                assert_eq!(*arrived, task.arrived_at);
                assert!(
                    self.pending
                        .get(group)
                        .is_some_and(|g| g.tasks.contains(&(*arrived, id.clone()))),
                    "task {id} missing from the waiting order"
                );
            }
            if !pending {
                assert!(
                    entry.indexed.step_timer.is_none(),
                    "task {id}: stray step timer"
                );
                assert!(!self.passed.contains_key(id), "task {id}: stray pass");
            }
        }
        for (id, res) in &self.reservations {
            assert_eq!(id, &res.id);
            let task = self
                .tasks
                .get(&res.task)
                .unwrap_or_else(|| panic!("reservation {id} for unknown task"));
            assert_eq!(
                task.task.state,
                TaskState::Reserved {
                    reservation: id.clone()
                },
                "reservation {id} is not the task's live one"
            );
        }
        for (id, entry) in &self.agents {
            let mut load = 0;
            for task in &entry.held {
                assert_eq!(
                    holder_of.get(task).copied(),
                    Some(id),
                    "agent {id} counts task {task}"
                );
                load += entry.agent.capacity.cost(&self.tasks[task].task.channel);
            }
            assert_eq!(load, entry.load, "agent {id}: load");
            assert!(
                entry.load <= entry.agent.capacity.total,
                "agent {id}: load {} over capacity {}",
                entry.load,
                entry.agent.capacity.total
            );
            assert_eq!(
                entry.is_free(),
                self.free.contains(id),
                "agent {id}: free set"
            );
        }
        let waiting: usize = self.pending.values().map(|w| w.tasks.len()).sum();
        for (group, waiting) in &self.pending {
            let queue = &self.queues[&group.queue].queue;
            assert_eq!(
                waiting.required,
                requirements(queue, &group.skills, group.floor),
                "stale needs for {group:?}"
            );
            assert!(
                waiting.viable || !self.anyone_serves(&group.channel, &waiting.required),
                "group {group:?} is servable but left out of scans"
            );
        }
        let pending = self
            .tasks
            .values()
            .filter(|e| e.task.state == TaskState::Pending)
            .count();
        assert_eq!(waiting, pending, "waiting order size");
        for (at, timer) in &self.timers {
            assert!(
                *at > self.now,
                "timer {timer:?} at {at} is overdue at {}",
                self.now
            );
            match timer {
                Timer::Reservation(id) => {
                    assert!(self.reservations.contains_key(id), "timer for gone {id}")
                }
                Timer::Step(id) => assert_eq!(
                    self.tasks.get(id).and_then(|e| e.indexed.step_timer),
                    Some(*at),
                    "stray step timer for {id}"
                ),
                Timer::Sticky(id) => assert_eq!(
                    self.tasks.get(id).and_then(|e| e.indexed.sticky_timer),
                    Some(*at),
                    "stray sticky timer for {id}"
                ),
            }
        }
    }
}
