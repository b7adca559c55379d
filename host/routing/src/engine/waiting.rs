//! The shape of the waiting order: the [`Group`] a waiting task is filed in (by what
//! decides who may take it), what each group needs, and where a task sits in the
//! engine's indexes so it can be taken out again.
//!
//! Plain data and arithmetic over queues and tasks. It knows nothing of the engine, so
//! the engine's state is built from it; keeping the indexes in step is `index`'s job.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Queue, QueueId, SkillLevel, Task, TaskId};

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
