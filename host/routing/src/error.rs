//! Why an input was refused. A refused input changes nothing but the engine's clock:
//! timers that fell due by `now` still fire.

use crate::model::{AgentId, QueueId, ReservationId, TaskId};

/// Why the engine refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No live task has this id (it may have completed or been canceled).
    #[error("unknown task {0}")]
    UnknownTask(TaskId),
    /// No live reservation has this id (it may have expired, been answered or canceled).
    #[error("unknown reservation {0}")]
    UnknownReservation(ReservationId),
    /// No agent has this id.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// No queue has this id.
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    /// A task with this id is already routed.
    #[error("task {0} already exists")]
    DuplicateTask(TaskId),
    /// The task is not in a state that allows the action.
    #[error("cannot {action} task {task}: it is {state}")]
    InvalidState {
        /// The task.
        task: TaskId,
        /// What was attempted, e.g. `complete`.
        action: &'static str,
        /// The task's state, e.g. `pending`.
        state: &'static str,
    },
    /// The change would leave the agent holding more work than their capacity.
    #[error("agent {agent} would hold {load} of capacity {capacity}")]
    OverCapacity {
        /// The agent.
        agent: AgentId,
        /// The load they would hold.
        load: u32,
        /// Their total capacity.
        capacity: u32,
    },
    /// The queue definition is unusable.
    #[error("queue {queue}: {reason}")]
    InvalidQueue {
        /// The queue.
        queue: QueueId,
        /// What is wrong.
        reason: String,
    },
}
