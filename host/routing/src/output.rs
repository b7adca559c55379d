//! What the engine tells the host: events to persist and push to agents' desks.
//!
//! Outputs are facts that already happened inside the engine; the host drains them with
//! [`Engine::poll_output`](crate::Engine::poll_output) after every input, writes them to
//! the database (ideally in one transaction per batch) and fans them out. They are never
//! requests: nothing waits for the host to acknowledge them.

use serde::{Deserialize, Serialize};

use crate::model::{AgentId, QueueId, Reservation, Target, TaskId};

/// Something that happened inside the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Output {
    /// A new task waits in a queue.
    TaskQueued {
        /// The task.
        task: TaskId,
        /// Its queue.
        queue: QueueId,
    },
    /// A task was offered to an agent.
    Offered {
        /// The offer.
        reservation: Reservation,
    },
    /// The agent accepted the offer (a [`Output::TaskAssigned`] follows).
    ReservationAccepted {
        /// The offer.
        reservation: Reservation,
    },
    /// The agent declined; the task waits again and will not be offered to them.
    ReservationRejected {
        /// The offer.
        reservation: Reservation,
    },
    /// The agent did not answer in time; the task waits again and will not be offered
    /// to them.
    ReservationExpired {
        /// The offer.
        reservation: Reservation,
    },
    /// The offer was withdrawn (the agent went away or offline, the task was canceled or
    /// transferred, or the engine restarted and the agent is no longer available).
    ReservationCanceled {
        /// The offer.
        reservation: Reservation,
    },
    /// An agent handles the task.
    TaskAssigned {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent is wrapping up the task (still counted against their capacity).
    TaskWrapping {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The task is done; its capacity is free. The engine forgets it.
    TaskCompleted {
        /// The task.
        task: TaskId,
        /// The agent who held it, if any.
        agent: Option<AgentId>,
    },
    /// The customer left; anything the task held is free. The engine forgets it.
    TaskCanceled {
        /// The task.
        task: TaskId,
    },
    /// A routing step moved the task to another queue.
    TaskOverflowed {
        /// The task.
        task: TaskId,
        /// The queue it left.
        from: QueueId,
        /// The queue it waits in now.
        to: QueueId,
    },
    /// The task was transferred and waits again.
    TaskTransferred {
        /// The task.
        task: TaskId,
        /// Where to.
        target: Target,
    },
    /// The engine set an agent away (too many missed offers).
    AgentSetAway {
        /// The agent.
        agent: AgentId,
        /// Why, as shown to supervisors.
        reason: String,
    },
}

impl Output {
    /// The task this output changed, so the host knows which row to write
    /// ([`Engine::task`](crate::Engine::task) has its current state while it lives).
    pub fn task(&self) -> Option<&TaskId> {
        match self {
            Output::Offered { reservation }
            | Output::ReservationAccepted { reservation }
            | Output::ReservationRejected { reservation }
            | Output::ReservationExpired { reservation }
            | Output::ReservationCanceled { reservation } => Some(&reservation.task),
            Output::TaskQueued { task, .. }
            | Output::TaskAssigned { task, .. }
            | Output::TaskWrapping { task, .. }
            | Output::TaskCompleted { task, .. }
            | Output::TaskCanceled { task }
            | Output::TaskOverflowed { task, .. }
            | Output::TaskTransferred { task, .. } => Some(task),
            Output::AgentSetAway { .. } => None,
        }
    }
}
