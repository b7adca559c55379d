//! The task lifecycle: arrival, offers answered or timed out, wrap-up, completion,
//! cancellation and transfer, and the transitions they share. Every input here first
//! brings the engine up to `now` and fires what fell due after acting.

use std::collections::BTreeSet;

use super::waiting::Indexed;
use super::{Counters, Engine, MISSED_OFFERS_REASON, TaskEntry, Timer};
use crate::error::EngineError;
use crate::model::{
    AgentId, NewTask, Presence, QueueId, Reservation, ReservationId, Target, Task, TaskId,
    TaskState,
};
use crate::output::Output;

impl Engine {
    /// A new task starts waiting in its queue.
    pub fn enqueue(&mut self, now: u64, new: NewTask) -> Result<(), EngineError> {
        self.advance(now);
        if !self.queues.contains_key(&new.queue) {
            return Err(EngineError::UnknownQueue(new.queue));
        }
        if self.tasks.contains_key(&new.id) {
            return Err(EngineError::DuplicateTask(new.id));
        }
        let task = Task {
            id: new.id,
            channel: new.channel,
            queue: new.queue,
            priority: new.priority,
            required_skills: new.required_skills,
            attributes: new.attributes,
            contact_id: new.contact_id,
            last_agent: new.last_agent,
            arrived_at: self.now,
            queued_at: self.now,
            step: 0,
            pinned_agent: None,
            excluded_agents: BTreeSet::new(),
            offers: 0,
            assigned_at: None,
            state: TaskState::Pending,
        };
        let id = task.id.clone();
        self.outputs.push_back(Output::TaskQueued {
            task: id.clone(),
            queue: task.queue.clone(),
        });
        self.tasks.insert(
            id.clone(),
            TaskEntry {
                task,
                indexed: Indexed::default(),
            },
        );
        self.reindex(&id);
        self.fire_due();
        Ok(())
    }

    /// The agent takes the offered task.
    pub fn accept(&mut self, now: u64, reservation: &ReservationId) -> Result<(), EngineError> {
        self.advance(now);
        let res = self.take_reservation(reservation)?;
        let now = self.now;
        let entry = self.tasks.get_mut(&res.task).expect("reserved task exists");
        entry.task.state = TaskState::Assigned {
            agent: res.agent.clone(),
        };
        entry.task.assigned_at = Some(now);
        entry.task.pinned_agent = None;
        entry.task.excluded_agents.clear();
        let queue = entry.task.queue.clone();
        self.counters(&queue).assigned += 1;
        let agent = self
            .agents
            .get_mut(&res.agent)
            .expect("reserved agent exists");
        agent.missed = 0;
        agent.idle_since = now;
        self.reindex(&res.task);
        let (task, agent) = (res.task.clone(), res.agent.clone());
        self.outputs
            .push_back(Output::ReservationAccepted { reservation: res });
        self.outputs.push_back(Output::TaskAssigned { task, agent });
        self.fire_due();
        Ok(())
    }

    /// The agent declines the offer: the task waits again and is not offered to them.
    pub fn reject(&mut self, now: u64, reservation: &ReservationId) -> Result<(), EngineError> {
        self.advance(now);
        let res = self.take_reservation(reservation)?;
        if let Some(agent) = self.agents.get_mut(&res.agent) {
            agent.missed = 0;
        }
        self.requeue(&res, true);
        self.outputs
            .push_back(Output::ReservationRejected { reservation: res });
        self.fire_due();
        Ok(())
    }

    /// The agent is done talking and writes notes; the task keeps its capacity.
    pub fn wrap_up(&mut self, now: u64, task: &TaskId) -> Result<(), EngineError> {
        self.advance(now);
        let entry = self.live_task(task)?;
        let TaskState::Assigned { agent } = &entry.task.state else {
            return Err(invalid(&entry.task, "wrap up"));
        };
        let agent = agent.clone();
        entry.task.state = TaskState::Wrapping {
            agent: agent.clone(),
        };
        self.outputs.push_back(Output::TaskWrapping {
            task: task.clone(),
            agent,
        });
        self.fire_due();
        Ok(())
    }

    /// The task is done; the agent's capacity is free again.
    pub fn complete(&mut self, now: u64, task: &TaskId) -> Result<(), EngineError> {
        self.advance(now);
        let entry = self.live_task(task)?;
        let (TaskState::Assigned { agent } | TaskState::Wrapping { agent }) = &entry.task.state
        else {
            return Err(invalid(&entry.task, "complete"));
        };
        let agent = agent.clone();
        let waited = entry
            .task
            .assigned_at
            .map(|at| at.saturating_sub(entry.task.queued_at));
        let queue = entry.task.queue.clone();
        let sla = self.queues[&queue].queue.sla_target_ms;
        let counters = self.counters(&queue);
        counters.completed += 1;
        if waited.is_some_and(|waited| waited <= sla) {
            counters.completed_within_sla += 1;
        }
        self.finish_work(&agent, task);
        self.forget(task);
        self.outputs.push_back(Output::TaskCompleted {
            task: task.clone(),
            agent: Some(agent),
        });
        self.fire_due();
        Ok(())
    }

    /// The customer left: the task ends wherever it is and frees what it held.
    pub fn cancel(&mut self, now: u64, task: &TaskId) -> Result<(), EngineError> {
        self.advance(now);
        let entry = self.live_task(task)?;
        let state = entry.task.state.clone();
        let queue = entry.task.queue.clone();
        match state {
            TaskState::Pending => self.counters(&queue).abandoned += 1,
            TaskState::Reserved { reservation } => {
                self.counters(&queue).abandoned += 1;
                let res = self.take_reservation(&reservation)?;
                self.release(&res.agent, task);
                self.outputs
                    .push_back(Output::ReservationCanceled { reservation: res });
            }
            TaskState::Assigned { agent } | TaskState::Wrapping { agent } => {
                self.finish_work(&agent, task);
            }
            TaskState::Completed | TaskState::Canceled => {
                unreachable!("terminal tasks are forgotten")
            }
        }
        self.forget(task);
        self.outputs
            .push_back(Output::TaskCanceled { task: task.clone() });
        self.fire_due();
        Ok(())
    }

    /// Moves a task to another queue, or to one agent, from wherever it is: an open offer
    /// is withdrawn, and an agent handling it lets it go (and will not be offered it
    /// again unless named as the target).
    pub fn transfer(&mut self, now: u64, task: &TaskId, target: Target) -> Result<(), EngineError> {
        self.advance(now);
        match &target {
            Target::Queue(q) if !self.queues.contains_key(q) => {
                return Err(EngineError::UnknownQueue(q.clone()));
            }
            Target::Agent(a) if !self.agents.contains_key(a) => {
                return Err(EngineError::UnknownAgent(a.clone()));
            }
            _ => {}
        }
        let state = self.live_task(task)?.task.state.clone();
        let mut handler = None;
        match state {
            TaskState::Pending => {}
            TaskState::Reserved { reservation } => {
                let res = self.take_reservation(&reservation)?;
                self.release(&res.agent, task);
                self.outputs
                    .push_back(Output::ReservationCanceled { reservation: res });
            }
            TaskState::Assigned { agent } | TaskState::Wrapping { agent } => {
                self.finish_work(&agent, task);
                handler = Some(agent);
            }
            TaskState::Completed | TaskState::Canceled => {
                unreachable!("terminal tasks are forgotten")
            }
        }
        let now = self.now;
        let entry = self.tasks.get_mut(task).expect("checked above");
        let t = &mut entry.task;
        t.state = TaskState::Pending;
        t.queued_at = now;
        t.step = 0;
        if let Some(agent) = handler {
            t.excluded_agents.insert(agent);
        }
        match &target {
            Target::Queue(q) => {
                t.queue = q.clone();
                t.pinned_agent = None;
            }
            Target::Agent(a) => {
                t.excluded_agents.remove(a);
                t.pinned_agent = Some(a.clone());
            }
        }
        self.reindex(task);
        self.outputs.push_back(Output::TaskTransferred {
            task: task.clone(),
            target,
        });
        self.fire_due();
        Ok(())
    }

    // ----- shared transitions --------------------------------------------------------

    pub(super) fn live_task(&mut self, id: &TaskId) -> Result<&mut TaskEntry, EngineError> {
        self.tasks
            .get_mut(id)
            .ok_or_else(|| EngineError::UnknownTask(id.clone()))
    }

    pub(super) fn counters(&mut self, queue: &QueueId) -> &mut Counters {
        &mut self
            .queues
            .get_mut(queue)
            .expect("tasks only reference known queues")
            .counters
    }

    /// The offer timed out: like a reject, plus a missed offer against the agent.
    pub(super) fn expire(&mut self, id: &ReservationId) {
        let Ok(res) = self.take_reservation(id) else {
            return;
        };
        self.requeue(&res, true);
        let agent = res.agent.clone();
        self.outputs
            .push_back(Output::ReservationExpired { reservation: res });
        let max = self.config.max_missed_offers;
        let Some(entry) = self.agents.get_mut(&agent) else {
            return;
        };
        entry.missed += 1;
        if max > 0 && entry.missed >= max {
            // Reported before the withdrawn offers it causes.
            self.outputs.push_back(Output::AgentSetAway {
                agent: agent.clone(),
                reason: MISSED_OFFERS_REASON.to_owned(),
            });
            self.change_presence(
                &agent,
                Presence::Away {
                    reason: MISSED_OFFERS_REASON.to_owned(),
                },
            );
        }
    }

    /// Applies the next routing step of a pending task whose deadline `at` has come.
    pub(super) fn apply_step(&mut self, id: &TaskId, at: u64) {
        let Some(entry) = self.tasks.get_mut(id) else {
            return;
        };
        let task = &mut entry.task;
        if task.state != TaskState::Pending {
            return;
        }
        let Some(step) = self
            .queues
            .get(&task.queue)
            .and_then(|q| q.queue.steps.get(task.step as usize))
        else {
            return;
        };
        task.step += 1;
        if let Some(to) = &step.overflow_queue
            && *to != task.queue
            && self.queues.contains_key(to)
        {
            let from = std::mem::replace(&mut task.queue, to.clone());
            task.queued_at = at;
            task.step = 0;
            task.pinned_agent = None;
            self.outputs.push_back(Output::TaskOverflowed {
                task: id.clone(),
                from,
                to: to.clone(),
            });
        }
        self.reindex(id);
    }

    /// Withdraws a live reservation from the indexes (the task still says `Reserved`).
    pub(super) fn take_reservation(
        &mut self,
        id: &ReservationId,
    ) -> Result<Reservation, EngineError> {
        let res = self
            .reservations
            .remove(id)
            .ok_or_else(|| EngineError::UnknownReservation(id.clone()))?;
        self.timers
            .remove(&(res.expires_at, Timer::Reservation(id.clone())));
        Ok(res)
    }

    /// After an offer ended unanswered: the agent lets go and the task waits again.
    pub(super) fn requeue(&mut self, res: &Reservation, exclude_agent: bool) {
        self.release(&res.agent, &res.task);
        let Some(entry) = self.tasks.get_mut(&res.task) else {
            return;
        };
        entry.task.state = TaskState::Pending;
        if exclude_agent {
            entry.task.excluded_agents.insert(res.agent.clone());
            if entry.task.pinned_agent.as_ref() == Some(&res.agent) {
                entry.task.pinned_agent = None;
            }
        }
        self.reindex(&res.task);
    }

    /// Counts a task against an agent's capacity.
    pub(super) fn hold(&mut self, agent: &AgentId, task: &TaskId) {
        let channel = &self.tasks[task].task.channel;
        let entry = self.agents.get_mut(agent).expect("holder exists");
        if entry.held.insert(task.clone()) {
            entry.load += entry.agent.capacity.cost(channel);
        }
        self.refresh_free(agent);
    }

    /// Stops counting a task against an agent's capacity.
    pub(super) fn release(&mut self, agent: &AgentId, task: &TaskId) {
        let Some(channel) = self.tasks.get(task).map(|e| &e.task.channel) else {
            return;
        };
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        if entry.held.remove(task) {
            entry.load -= entry.agent.capacity.cost(channel);
        }
        self.refresh_free(agent);
    }

    /// The agent is done with a task they handled: its capacity is free and their idle
    /// time starts now. (An unanswered offer does not restart idle time.)
    pub(super) fn finish_work(&mut self, agent: &AgentId, task: &TaskId) {
        self.release(agent, task);
        let now = self.now;
        if let Some(entry) = self.agents.get_mut(agent) {
            entry.idle_since = now;
        }
    }

    pub(super) fn change_presence(&mut self, agent: &AgentId, presence: Presence) {
        let now = self.now;
        let entry = self.agents.get_mut(agent).expect("caller checked");
        let was_available = entry.agent.presence == Presence::Available;
        let available = presence == Presence::Available;
        entry.agent.presence = presence;
        if available && !was_available {
            entry.idle_since = now;
            entry.missed = 0;
        }
        if !available {
            let offers: Vec<ReservationId> = entry
                .held
                .iter()
                .filter_map(|t| match &self.tasks.get(t)?.task.state {
                    TaskState::Reserved { reservation } => Some(reservation.clone()),
                    _ => None,
                })
                .collect();
            for id in offers {
                if let Ok(res) = self.take_reservation(&id) {
                    self.requeue(&res, false);
                    self.outputs
                        .push_back(Output::ReservationCanceled { reservation: res });
                }
            }
        }
        self.refresh_free(agent);
    }

    /// Drops a finished task and everything indexing it.
    pub(super) fn forget(&mut self, id: &TaskId) {
        if let Some(entry) = self.tasks.get_mut(id) {
            entry.task.state = TaskState::Completed;
        }
        self.reindex(id);
        self.tasks.remove(id);
    }
}

pub(super) fn invalid(task: &Task, action: &'static str) -> EngineError {
    EngineError::InvalidState {
        task: task.id.clone(),
        action,
        state: task.state.name(),
    }
}
