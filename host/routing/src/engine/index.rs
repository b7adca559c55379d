//! The indexes that keep matching cheap, and the one place that keeps them in step with
//! the rows: waiting tasks grouped by what decides who may take them, the set of agents
//! with spare capacity, and each task's timers. Nothing here decides a transition.

use std::collections::{BTreeMap, BTreeSet};

use super::{AgentEntry, Engine, Timer};
use crate::model::{AgentId, Queue, QueueId, SkillLevel, Task, TaskId, TaskState};

/// Where a task currently sits in the engine's indexes, so it can be taken out again.
#[derive(Debug, Default)]
pub(super) struct Indexed {
    /// `(group, arrived_at)` in `Engine::pending`.
    pub(super) pending: Option<(Group, u64)>,
    pub(super) step_timer: Option<u64>,
    pub(super) sticky_timer: Option<u64>,
}

/// Waiting tasks that share a base priority and the same needs (queue, proficiency
/// floor, channel, own skills). Within a group the order by effective priority is the
/// order by arrival (older tasks have aged at least as much), and one check tells whether
/// any free agent fits the whole group — so a scan skips a hopeless group in one step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Group {
    pub(super) base: i64,
    pub(super) queue: QueueId,
    pub(super) floor: Option<u8>,
    pub(super) channel: String,
    pub(super) skills: Vec<SkillLevel>,
}

impl Group {
    pub(super) fn of(queue: &Queue, task: &Task) -> Group {
        Group {
            base: i64::from(queue.priority) + i64::from(task.priority),
            queue: task.queue.clone(),
            floor: floor(queue, task.step),
            channel: task.channel.clone(),
            skills: task.required_skills.clone(),
        }
    }
}

/// The tasks of one group, and what each of them needs (computed once per group).
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) required: Vec<SkillLevel>,
    pub(super) tasks: BTreeSet<(u64, TaskId)>,
    /// False only if no free agent can serve the group. Set whenever an agent who can
    /// becomes free; cleared lazily by the scan, which is what keeps scans cheap when
    /// thousands of tasks wait for a few partly loaded agents.
    pub(super) viable: bool,
}

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

/// The proficiency cap set by the latest applied step of `queue` that sets one.
pub(super) fn floor(queue: &Queue, applied: u32) -> Option<u8> {
    let applied = (applied as usize).min(queue.steps.len());
    queue.steps[..applied]
        .iter()
        .rev()
        .find_map(|s| s.min_proficiency)
}

/// What a task in `queue` with its own `skills` needs, capped by `floor`; sorted by
/// skill, the higher minimum winning when both ask for the same skill.
pub(super) fn requirements(
    queue: &Queue,
    skills: &[SkillLevel],
    floor: Option<u8>,
) -> Vec<SkillLevel> {
    let mut needs: BTreeMap<&str, u8> = BTreeMap::new();
    for (skill, level) in queue.required_skills.iter().chain(skills) {
        let need = needs.entry(skill).or_insert(0);
        *need = (*need).max(*level);
    }
    let floor = floor.unwrap_or(u8::MAX);
    needs
        .into_iter()
        .map(|(skill, level)| (skill.to_owned(), level.min(floor)))
        .collect()
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
