//! The rows the engine routes: queues, agents, tasks and reservations, and its config.
//!
//! Every type here is plain data that serializes with serde, so the host can persist it
//! and hand it back to [`Engine::restore`](crate::Engine::restore) after a restart. This
//! module owns the vocabulary and the small pure rules attached to it (what a channel
//! costs an agent, what a task's state is called); it never decides who gets what — that
//! is the engine's job.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Identifies a queue, e.g. `support`.
    QueueId
);
id_type!(
    /// Identifies an agent (the host's agent id).
    AgentId
);
id_type!(
    /// Identifies a task: one per conversation or call that needs a person.
    TaskId
);
id_type!(
    /// Identifies the customer (contact) a task is about.
    ContactId
);
id_type!(
    /// Identifies a reservation. The engine makes it as `{task}.{n}` (URL-safe), where `n` is the
    /// task's [`offers`](Task::offers) count, so ids stay unique across restarts without
    /// a clock or randomness.
    ReservationId
);

/// A skill requirement or an agent's skill: name and proficiency (1 novice – 5 expert).
pub type SkillLevel = (String, u8);

/// One rung of a queue's escalation ladder: once a task has waited `after_ms` in the
/// queue, the step widens who may take it, or moves it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingStep {
    /// Milliseconds after the task entered the queue at which this step applies.
    pub after_ms: u64,
    /// From then on every required skill needs at most this proficiency.
    #[serde(default)]
    pub min_proficiency: Option<u8>,
    /// From then on the task waits in this queue instead (its steps start afresh, and a
    /// transfer to an agent is dropped). A queue the engine does not know is ignored.
    #[serde(default)]
    pub overflow_queue: Option<QueueId>,
}

/// A queue: where tasks wait for an agent with the right skills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Its id.
    pub id: QueueId,
    /// What supervisors call it.
    pub name: String,
    /// The channels it serves (informational: for administration and the routing policy).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Skills every task in the queue needs, with the minimum proficiency.
    #[serde(default)]
    pub required_skills: Vec<SkillLevel>,
    /// Service level target: a task should be assigned within this many milliseconds of
    /// entering the queue.
    pub sla_target_ms: u64,
    /// Base priority added to every task's own priority.
    #[serde(default)]
    pub priority: i32,
    /// Escalation steps; the engine keeps them sorted by `after_ms`.
    #[serde(default)]
    pub steps: Vec<RoutingStep>,
}

impl Queue {
    /// A queue serving any channel, needing no skill, with a 20 s service level target.
    pub fn new(id: impl Into<QueueId>, name: impl Into<String>) -> Queue {
        Queue {
            id: id.into(),
            name: name.into(),
            channels: Vec::new(),
            required_skills: Vec::new(),
            sla_target_ms: 20_000,
            priority: 0,
            steps: Vec::new(),
        }
    }
}

/// Whether an agent takes new work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Presence {
    /// Ready for offers.
    Available,
    /// Logged in but not taking new work (break, training, too many missed offers).
    Away {
        /// Why, as shown to supervisors.
        reason: String,
    },
    /// Logged out.
    Offline,
}

/// How much work an agent can hold at once, as cost across channels: the default total
/// of 100 with voice costing 100 and chat 25 means "one call or four chats".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityProfile {
    /// Total capacity.
    pub total: u32,
    /// Cost of one task per channel.
    pub costs: BTreeMap<String, u32>,
    /// Cost of a task on a channel missing from `costs`.
    pub default_cost: u32,
}

impl Default for CapacityProfile {
    fn default() -> Self {
        let costs = [
            ("voice", 100),
            ("chat", 25),
            ("sms", 25),
            ("whatsapp", 25),
            ("telegram", 25),
            ("email", 20),
        ]
        .into_iter()
        .map(|(channel, cost)| (channel.to_owned(), cost))
        .collect();
        CapacityProfile {
            total: 100,
            costs,
            default_cost: 25,
        }
    }
}

impl CapacityProfile {
    /// The cheapest channel's cost: an agent with less spare capacity than this
    /// can take nothing and is not worth matching against.
    pub fn min_cost(&self) -> u32 {
        self.costs
            .values()
            .copied()
            .chain([self.default_cost])
            .min()
            .unwrap_or(0)
    }

    /// What one task on `channel` costs.
    pub fn cost(&self, channel: &str) -> u32 {
        self.costs
            .get(channel)
            .copied()
            .unwrap_or(self.default_cost)
    }
}

/// An agent as routing sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// Skills with proficiency 1–5.
    #[serde(default)]
    pub skills: Vec<SkillLevel>,
    /// Whether they take new work.
    pub presence: Presence,
    /// How much work they can hold.
    #[serde(default)]
    pub capacity: CapacityProfile,
}

impl Agent {
    /// An offline agent without skills, with the default capacity.
    pub fn new(id: impl Into<AgentId>) -> Agent {
        Agent {
            id: id.into(),
            skills: Vec::new(),
            presence: Presence::Offline,
            capacity: CapacityProfile::default(),
        }
    }

    /// The agent's proficiency in `skill`, if they have it.
    pub fn proficiency(&self, skill: &str) -> Option<u8> {
        self.skills
            .iter()
            .find(|(name, _)| name == skill)
            .map(|&(_, level)| level)
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for an agent.
    Pending,
    /// Offered to an agent who has not answered yet.
    Reserved {
        /// The live reservation.
        reservation: ReservationId,
    },
    /// Being handled.
    Assigned {
        /// Who handles it.
        agent: AgentId,
    },
    /// Handled; the agent is finishing notes (still holds capacity).
    Wrapping {
        /// Who is wrapping up.
        agent: AgentId,
    },
    /// Done.
    Completed,
    /// The customer left before it was done.
    Canceled,
}

impl TaskState {
    /// The state's name, e.g. `reserved`.
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Reserved { .. } => "reserved",
            TaskState::Assigned { .. } => "assigned",
            TaskState::Wrapping { .. } => "wrapping",
            TaskState::Completed => "completed",
            TaskState::Canceled => "canceled",
        }
    }

    /// True once the task is completed or canceled.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Canceled)
    }
}

/// What the host knows about a task when it asks the engine to route it (the routing
/// policy's classification of an arriving conversation or call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Its id.
    pub id: TaskId,
    /// Channel, e.g. `voice`, `chat`, `email`.
    pub channel: String,
    /// The queue it waits in.
    pub queue: QueueId,
    /// Priority on top of the queue's.
    #[serde(default)]
    pub priority: i32,
    /// Skills needed on top of the queue's.
    #[serde(default)]
    pub required_skills: Vec<SkillLevel>,
    /// Anything the policy wants to remember (VIP, language, intent…).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The customer.
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// The agent who last served this customer: offered first, for a bounded wait.
    #[serde(default)]
    pub last_agent: Option<AgentId>,
}

impl NewTask {
    /// A task with no extra priority, skills or attributes.
    pub fn new(
        id: impl Into<TaskId>,
        channel: impl Into<String>,
        queue: impl Into<QueueId>,
    ) -> NewTask {
        NewTask {
            id: id.into(),
            channel: channel.into(),
            queue: queue.into(),
            priority: 0,
            required_skills: Vec::new(),
            attributes: BTreeMap::new(),
            contact_id: None,
            last_agent: None,
        }
    }
}

/// A task: the engine's row for one conversation or call that needs a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Channel, e.g. `voice`.
    pub channel: String,
    /// The queue it is in now.
    pub queue: QueueId,
    /// Priority on top of the queue's.
    pub priority: i32,
    /// Skills needed on top of the queue's.
    pub required_skills: Vec<SkillLevel>,
    /// Policy attributes.
    pub attributes: BTreeMap<String, String>,
    /// The customer.
    pub contact_id: Option<ContactId>,
    /// The agent who last served the customer (sticky routing).
    pub last_agent: Option<AgentId>,
    /// When it arrived (ms): drives ordering, aging and the sticky wait.
    pub arrived_at: u64,
    /// When it entered its current queue (ms): drives the queue's steps and SLA.
    pub queued_at: u64,
    /// How many of the current queue's steps have applied.
    #[serde(default)]
    pub step: u32,
    /// After a transfer to an agent: the only agent who may take it, until they decline.
    #[serde(default)]
    pub pinned_agent: Option<AgentId>,
    /// Agents who rejected it, let it time out or transferred it away.
    #[serde(default)]
    pub excluded_agents: BTreeSet<AgentId>,
    /// How many reservations were made for it.
    #[serde(default)]
    pub offers: u32,
    /// When it was last assigned (ms).
    #[serde(default)]
    pub assigned_at: Option<u64>,
    /// Where it is in its life.
    pub state: TaskState,
}

/// An offer of a task to one agent, who must accept before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// The task offered.
    pub task: TaskId,
    /// The agent it is offered to.
    pub agent: AgentId,
    /// When it was offered (ms).
    pub offered_at: u64,
    /// When it times out (ms).
    pub expires_at: u64,
}

/// Priority aging: a waiting task gains `step` priority for every `every_ms` it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aging {
    /// Interval in milliseconds (0 disables aging).
    pub every_ms: u64,
    /// Priority gained per interval.
    pub step: u32,
}

/// How the engine behaves; the defaults match the product notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long an agent has to accept an offer.
    pub accept_timeout_ms: u64,
    /// How long a returning customer's task waits for the agent who last served them.
    pub sticky_wait_ms: u64,
    /// Offers an agent may let time out in a row before being set away (0: never).
    pub max_missed_offers: u32,
    /// Priority aging, off by default.
    pub aging: Option<Aging>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            accept_timeout_ms: 15_000,
            sticky_wait_ms: 20_000,
            max_missed_offers: 3,
            aging: None,
        }
    }
}

/// Where a task is transferred to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// Back to waiting, in this queue (its steps start afresh).
    Queue(QueueId),
    /// To this agent only (in the same queue, whose steps start afresh), waiting for them
    /// if busy or away; if they decline or let the offer time out, anyone in the queue.
    Agent(AgentId),
}
