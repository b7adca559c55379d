//! The one place that keeps the engine's indexes in step with its rows: each waiting
//! task filed in its [`Group`] and with its timers, and each agent with spare capacity in
//! the free set. What a group is lives in `waiting`; nothing here decides a transition.

use std::collections::BTreeSet;

use super::waiting::{Group, Waiting, requirements};
use super::{AgentEntry, Engine, Timer};
use crate::model::{AgentId, SkillLevel, TaskId, TaskState};

impl Engine {
    /// Files the agent as free or not after any change to their load, presence, skills
    /// or capacity, and marks the groups they could now serve as worth scanning.
    pub(super) fn refresh_free(&mut self, agent: &AgentId) {
        match self.agents.get(agent) {
            Some(entry) if entry.is_free() => {
                self.free.insert(agent.clone());
                for (group, waiting) in &mut self.pending {
                    if !waiting.viable && serves(entry, &group.channel, &waiting.required) {
                        waiting.viable = true;
                    }
                }
            }
            _ => {
                self.free.remove(agent);
            }
        }
    }

    /// Whether some free agent could take a task needing `required` on `channel`.
    pub(super) fn anyone_serves(&self, channel: &str, required: &[SkillLevel]) -> bool {
        self.free
            .iter()
            .filter_map(|a| self.agents.get(a))
            .any(|e| serves(e, channel, required))
    }

    /// Re-files a task in the waiting order and timers after any change to it: the one
    /// place that keeps the indexes in step with the task rows.
    pub(super) fn reindex(&mut self, id: &TaskId) {
        let Engine {
            config,
            now,
            queues,
            agents,
            tasks,
            free,
            pending,
            timers,
            passed,
            ..
        } = self;
        let Some(entry) = tasks.get_mut(id) else {
            return;
        };
        let indexed = &mut entry.indexed;
        if let Some((group, arrived)) = indexed.pending.take()
            && let Some(waiting) = pending.get_mut(&group)
        {
            waiting.tasks.remove(&(arrived, id.clone()));
            if waiting.tasks.is_empty() {
                pending.remove(&group);
            }
        }
        if let Some(at) = indexed.step_timer.take() {
            timers.remove(&(at, Timer::Step(id.clone())));
        }
        if let Some(at) = indexed.sticky_timer.take() {
            timers.remove(&(at, Timer::Sticky(id.clone())));
        }
        let task = &entry.task;
        if task.state != TaskState::Pending {
            passed.remove(id);
            return;
        }
        let queue = &queues[&task.queue].queue;
        let group = Group::of(queue, task);
        pending
            .entry(group.clone())
            .or_insert_with(|| {
                let required = requirements(queue, &group.skills, group.floor);
                let viable = free
                    .iter()
                    .filter_map(|a| agents.get(a))
                    .any(|e| serves(e, &group.channel, &required));
                Waiting {
                    required,
                    tasks: BTreeSet::new(),
                    viable,
                }
            })
            .tasks
            .insert((task.arrived_at, id.clone()));
        indexed.pending = Some((group, task.arrived_at));
        if let Some(step) = queue.steps.get(task.step as usize) {
            let at = task.queued_at.saturating_add(step.after_ms);
            timers.insert((at, Timer::Step(id.clone())));
            indexed.step_timer = Some(at);
        }
        if task.last_agent.is_some() && task.pinned_agent.is_none() {
            let at = task.arrived_at.saturating_add(config.sticky_wait_ms);
            if at > *now {
                timers.insert((at, Timer::Sticky(id.clone())));
                indexed.sticky_timer = Some(at);
            }
        }
    }
}

/// Whether a free agent could take a task needing `required` on `channel` (the
/// restrictions of a single task aside).
pub(super) fn serves(e: &AgentEntry, channel: &str, required: &[SkillLevel]) -> bool {
    e.is_free() && e.spare() >= e.agent.capacity.cost(channel) && has_skills(e, required)
}

pub(super) fn has_skills(e: &AgentEntry, required: &[SkillLevel]) -> bool {
    required
        .iter()
        .all(|(skill, min)| e.agent.proficiency(skill).is_some_and(|p| p >= *min))
}
