//! Switchboard's routing engine: who gets which conversation or call, and when.
//!
//! This crate is **sans-IO**, in the manner of str0m's `Rtc`: it owns queues, agents,
//! tasks and reservations, and decides offers, expiries and overflows — but it never
//! reads a clock, sleeps, touches a socket or a database, or calls the routing policy.
//! Time is always passed in as `now`, milliseconds on any monotonic scale the host likes
//! (wall-clock epoch milliseconds in production, a counter from 0 in tests and in the
//! offline replay). Given the same inputs at the same instants it makes the same
//! decisions, to the byte.
//!
//! # The run loop
//!
//! A host task owns one [`Engine`] and loops:
//!
//! 1. feed an input: [`Engine::enqueue`], [`Engine::accept`], [`Engine::reject`],
//!    [`Engine::set_presence`], [`Engine::complete`]… or [`Engine::handle_timeout`] when
//!    the instant from [`Engine::poll_timeout`] has come;
//! 2. match: while [`Engine::next_match`] proposes a task, rank its candidates with the
//!    routing policy (a Wasm component — asynchronous, so ranking is a request/response
//!    step, not a callback), falling back to [`default_rank`] if the policy fails or is
//!    slow, and hand the ranking to [`Engine::offer`], which re-checks eligibility and
//!    makes the reservation;
//! 3. drain [`Engine::poll_output`]: persist each [`Output`] (one transaction per batch)
//!    and push it to the agents' and supervisors' desks;
//! 4. sleep until the next input or [`Engine::poll_timeout`].
//!
//! There is no polling interval: matching runs right after every input, so an agent who
//! becomes available is offered waiting work at once.
//!
//! ```
//! use switchboard_routing::{
//!     Agent, Engine, EngineConfig, MatchRequest, NewTask, Output, Presence, Queue,
//!     default_rank,
//! };
//! # use switchboard_routing::AgentId;
//!
//! // Stands in for the Wasm routing policy, which may fail.
//! fn policy(request: &MatchRequest) -> Result<Vec<AgentId>, String> {
//!     Err(format!("policy trapped ranking {}", request.task_id))
//! }
//!
//! # fn main() -> Result<(), switchboard_routing::EngineError> {
//! let mut engine = Engine::new(EngineConfig::default());
//! let mut now = 0; // virtual time, in ms
//!
//! let mut support = Queue::new("support", "Support");
//! support.required_skills = vec![("billing".into(), 2)];
//! engine.upsert_queue(now, support)?;
//! let mut ada = Agent::new("ada");
//! ada.skills = vec![("billing".into(), 4)];
//! ada.presence = Presence::Available;
//! engine.upsert_agent(now, ada)?;
//!
//! // Inputs arrive: two chats.
//! engine.enqueue(now, NewTask::new("chat-1", "chat", "support"))?;
//! engine.enqueue(now, NewTask::new("chat-2", "chat", "support"))?;
//!
//! let mut offered = Vec::new();
//! loop {
//!     // Match everything that can be matched now.
//!     while let Some(request) = engine.next_match(now) {
//!         let ranked = policy(&request).unwrap_or_else(|_| default_rank(&request));
//!         if let Some(reservation) = engine.offer(now, &request.task_id, &ranked)? {
//!             // The agent's desk shows the offer; here Ada accepts the first at once.
//!             if offered.is_empty() {
//!                 engine.accept(now, &reservation.id)?;
//!             }
//!             offered.push(reservation.id);
//!         }
//!     }
//!     // Persist and publish what happened.
//!     while let Some(output) = engine.poll_output() {
//!         let _ = serde_json::to_string(&output); // e.g. into the database
//!     }
//!     // Sleep until the next timer (a real host also wakes on inputs).
//!     match engine.poll_timeout() {
//!         Some(at) if at <= 60_000 => {
//!             now = at;
//!             engine.handle_timeout(now);
//!         }
//!         _ => break,
//!     }
//! }
//! // Ada took the first chat and let the second time out, so it waits again.
//! assert_eq!(offered, ["chat-1.1".into(), "chat-2.1".into()]);
//! assert_eq!(engine.queue_stats(now, &"support".into())?.waiting, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Model
//!
//! - A [`Queue`] has required skills with minimum proficiency, an SLA target, a base
//!   priority and escalation [`RoutingStep`]s: after `after_ms` in the queue, widen the
//!   proficiency required (e.g. from ≥ 4 to ≥ 1 at 60 s) or overflow to another queue
//!   (e.g. at 180 s; the task's step clock restarts there).
//! - An [`Agent`] has skills (1–5), a [`Presence`] and a [`CapacityProfile`]: total 100,
//!   voice 100, chat/SMS/WhatsApp/Telegram 25, email 20, anything else 25 — "one call or
//!   four chats". An agent's load is the cost of the tasks offered to, assigned to or
//!   wrapped up by them.
//! - A [`Task`] goes pending → reserved → assigned → wrapping → completed, or canceled
//!   from anywhere. Completed and canceled tasks leave the engine once reported.
//! - A [`Reservation`] is an offer with an accept timeout.
//!
//! # Decisions
//!
//! - **Order.** Waiting tasks go by effective priority (queue priority + task priority +
//!   aging: [`Aging::step`] per [`Aging::every_ms`] since arrival), then arrival (oldest
//!   first), then task id.
//! - **Eligibility.** An agent may be offered a task if available, with every required
//!   skill at the current minimum, spare capacity for the channel's cost, not already
//!   holding it, and not among the task's excluded agents (who rejected it, let it time
//!   out, or transferred it away).
//! - **Sticky.** A task with `last_agent` is offered only to that agent for
//!   `sticky_wait_ms` after arrival — it waits for them while they are busy or away —
//!   unless they are offline or unknown, or declined it; then to anyone.
//! - **Transfers.** To a queue: the task waits there from now, and the agent who had it
//!   is excluded. To an agent: only that agent, until they decline, then anyone in the
//!   queue.
//! - **Time outs.** An unanswered offer counts as a reject plus a missed offer;
//!   `max_missed_offers` in a row (default 3) sets the agent away with reason
//!   [`MISSED_OFFERS_REASON`]. An agent going away or offline loses their open offers.
//! - **Clocks.** Steps and SLA run from when the task entered its current queue
//!   (`queued_at`: arrival, overflow or transfer), because each queue answers for its own
//!   wait; ordering, aging and the sticky wait run from arrival (`arrived_at`), the
//!   customer's whole wait. Timers fire at their own instant even if the host is late:
//!   an overflow is stamped at its deadline, not when the host noticed.
//! - **Policy passes.** If [`Engine::offer`] finds none of the ranked agents eligible,
//!   the task is skipped by [`Engine::next_match`] until its candidate set changes, so a
//!   policy that declines never blocks the tasks behind it.
//!
//! Debug builds and tests can call [`Engine::check_invariants`] after any input.
#![deny(missing_docs)]

mod engine;
mod error;
mod model;
mod output;

pub use engine::{Candidate, Engine, MISSED_OFFERS_REASON, MatchRequest, QueueStats, default_rank};
pub use error::EngineError;
pub use model::{
    Agent, AgentId, Aging, CapacityProfile, ContactId, EngineConfig, NewTask, Presence, Queue,
    QueueId, Reservation, ReservationId, RoutingStep, SkillLevel, Target, Task, TaskId, TaskState,
};
pub use output::Output;
