//! Keeping the report facts up to date, inside the transaction that changes what they
//! describe.
//!
//! Two kinds of history drive every fact: the routing log (each engine output and
//! presence change, [`RoutingLogEntry`], written by `save_routing`) and the timeline
//! (each event, through [`record_event`]). [`apply_routing`] and [`apply_event`] turn
//! one history record into fact changes; the live path calls them as the record is
//! written, and the rebuild replays the whole history through the very same functions
//! in time order, which is why the rebuild gives the live numbers.
//!
//! The rules: a fact looks only at its record, the facts already there and stored
//! times, never at the clock or at live state (so replaying the history in order gives
//! the same result), and anything it asks of another fact is asked by time ("the task
//! of this conversation live at this instant"), not by "now".

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use switchboard_core::{Direction, EventKind};

use crate::db::{RowExt, new_id};
use crate::error::{Result, StoreError};
use crate::reports::agent_rollup::{Holding, add_stretches};
use crate::reports::rollup::{journey_delta, task_delta};
use crate::timeline::{TimelineEvent, insert_event, is_automatic};

/// The longest closed stretch of agent time: stretches are cut at each UTC midnight.
pub(crate) const SEGMENT_MAX_MS: i64 = 86_400_000;

/// One routing history record: what the engine did to a task or an agent. Written to
/// `routing_log` with the instant it happened by
/// [`Store::save_routing`](crate::Store::save_routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoutingLogEntry {
    /// A task arrived in a queue.
    Queued {
        /// The task.
        task_id: String,
        /// The conversation it routes.
        conversation_id: Option<String>,
        /// The customer.
        contact_id: Option<String>,
        /// Its channel.
        channel: String,
        /// The queue it entered.
        queue_id: String,
        /// When it arrived (the engine's arrival instant).
        arrived_at: i64,
    },
    /// The task was offered to an agent.
    Offered {
        /// The task.
        task_id: String,
        /// The agent offered it.
        agent_id: String,
    },
    /// An offer ended without an accept: `rejected`, `expired` or `canceled`.
    OfferEnded {
        /// The task.
        task_id: String,
        /// The agent it was offered to.
        agent_id: String,
        /// `rejected`, `expired` (both missed offers) or `canceled` (withdrawn).
        how: String,
    },
    /// An agent took the task (accepted its offer).
    Assigned {
        /// The task.
        task_id: String,
        /// The agent.
        agent_id: String,
        /// The capacity the task costs the agent.
        cost: i64,
        /// The agent's total capacity.
        capacity: i64,
    },
    /// The agent moved the task to wrap-up.
    Wrapping {
        /// The task.
        task_id: String,
        /// The agent.
        agent_id: String,
    },
    /// The task is done.
    Completed {
        /// The task.
        task_id: String,
    },
    /// The task ended without being done: `abandoned` (the customer left) or
    /// `replaced` (the customer moved to a call, which is routed as its own task).
    Canceled {
        /// The task.
        task_id: String,
        /// `abandoned` or `replaced`.
        reason: String,
    },
    /// The task was transferred and waits again.
    Transferred {
        /// The task.
        task_id: String,
        /// To this queue…
        to_queue: Option<String>,
        /// …or to this agent.
        to_agent: Option<String>,
    },
    /// A routing step moved the waiting task to another queue.
    Overflowed {
        /// The task.
        task_id: String,
        /// The queue it waits in now.
        to_queue: String,
    },
    /// The agent put the customer on hold (`held`) or took them off it.
    Hold {
        /// The task.
        task_id: String,
        /// On hold from now, or not any more.
        held: bool,
    },
    /// An agent's presence or capacity changed.
    Presence {
        /// The agent.
        agent_id: String,
        /// `available`, `away` or `offline`.
        status: String,
        /// Their total capacity.
        capacity: i64,
    },
}

impl RoutingLogEntry {
    /// The entry's kind, as stored in `routing_log.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingLogEntry::Queued { .. } => "queued",
            RoutingLogEntry::Offered { .. } => "offered",
            RoutingLogEntry::OfferEnded { .. } => "offer_ended",
            RoutingLogEntry::Assigned { .. } => "assigned",
            RoutingLogEntry::Wrapping { .. } => "wrapping",
            RoutingLogEntry::Completed { .. } => "completed",
            RoutingLogEntry::Canceled { .. } => "canceled",
            RoutingLogEntry::Transferred { .. } => "transferred",
            RoutingLogEntry::Overflowed { .. } => "overflowed",
            RoutingLogEntry::Hold { .. } => "hold",
            RoutingLogEntry::Presence { .. } => "presence",
        }
    }

    fn task_id(&self) -> Option<&str> {
        match self {
            RoutingLogEntry::Queued { task_id, .. }
            | RoutingLogEntry::Offered { task_id, .. }
            | RoutingLogEntry::OfferEnded { task_id, .. }
            | RoutingLogEntry::Assigned { task_id, .. }
            | RoutingLogEntry::Wrapping { task_id, .. }
            | RoutingLogEntry::Completed { task_id }
            | RoutingLogEntry::Canceled { task_id, .. }
            | RoutingLogEntry::Transferred { task_id, .. }
            | RoutingLogEntry::Overflowed { task_id, .. }
            | RoutingLogEntry::Hold { task_id, .. } => Some(task_id),
            RoutingLogEntry::Presence { .. } => None,
        }
    }

    fn agent_id(&self) -> Option<&str> {
        match self {
            RoutingLogEntry::Offered { agent_id, .. }
            | RoutingLogEntry::OfferEnded { agent_id, .. }
            | RoutingLogEntry::Assigned { agent_id, .. }
            | RoutingLogEntry::Wrapping { agent_id, .. }
            | RoutingLogEntry::Presence { agent_id, .. } => Some(agent_id),
            _ => None,
        }
    }
}

/// Set only by the benchmark, to measure what keeping the facts costs the write path.
static SKIP_FACTS: AtomicBool = AtomicBool::new(false);

/// Benchmark only: while `true`, history is still written (timeline, routing log) but
/// not applied to the report facts, in this whole process. The reports are then wrong
/// until `switchboard reports rebuild`. `switchboard-bench reports` measures ingest with
/// and without the facts this way; nothing else may call it.
#[doc(hidden)]
pub fn skip_report_facts_for_benchmark(skip: bool) {
    SKIP_FACTS.store(skip, Ordering::Relaxed);
}

/// Appends routing history at `at` and applies it to the facts.
pub(crate) async fn log_routing(
    conn: &mut AnyConnection,
    at: i64,
    entries: &[RoutingLogEntry],
) -> Result<()> {
    let skip = SKIP_FACTS.load(Ordering::Relaxed);
    // The step's tasks leave the rollup once before its entries and come back once
    // after them (the same sum as entry by entry, with fewer writes). Taking a task
    // out also tells whether it has a fact, so it is not created again per entry.
    let mut tasks: Vec<(&str, bool)> = Vec::new();
    for task in entries.iter().filter_map(RoutingLogEntry::task_id) {
        if !skip && !tasks.iter().any(|(t, _)| *t == task) {
            let has_fact = task_delta(conn, task, -1).await?;
            tasks.push((task, has_fact));
        }
    }
    for entry in entries {
        let id = new_id();
        let detail =
            serde_json::to_string(entry).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO routing_log (id, at, kind, task_id, agent_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.clone())
        .bind(at)
        .bind(entry.kind())
        .bind(entry.task_id().map(str::to_owned))
        .bind(entry.agent_id().map(str::to_owned))
        .bind(detail)
        .execute(&mut *conn)
        .await?;
        if !skip {
            let mut no_task = true;
            let ensured = match entry.task_id() {
                Some(task) => tasks
                    .iter_mut()
                    .find(|(t, _)| *t == task)
                    .map_or(&mut no_task, |(_, ensured)| ensured),
                None => &mut no_task,
            };
            apply_routing_to_facts(conn, &id, at, entry, ensured).await?;
        }
    }
    for (task, _) in tasks {
        task_delta(conn, task, 1).await?;
    }
    Ok(())
}

/// What the caller of [`record_event_known`] already read about the facts an event
/// touches, in a query it ran anyway, so that [`contact_event`] can leave out a lookup
/// or an update that would find nothing. The default knows nothing and looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Known {
    /// The contact has no resolved conversation whose next contact is still unset, so
    /// an inbound message settles none.
    pub no_unsettled: bool,
    /// The event's conversation has no journey arrival without a channel.
    pub arrivals_channeled: bool,
    /// The event's conversation has no fact yet (it was opened in this transaction
    /// and nothing was recorded on it before).
    pub no_fact: bool,
}

/// Writes a timeline event and applies it to the facts: every timeline write in the
/// store goes through here (or through [`record_event_known`]).
pub(crate) async fn record_event(conn: &mut AnyConnection, event: &TimelineEvent) -> Result<()> {
    record_event_known(conn, event, Known::default()).await
}

/// [`record_event`] by a caller that already knows some of the facts' state; `known`
/// must hold in the transaction at the moment of the call.
pub(crate) async fn record_event_known(
    conn: &mut AnyConnection,
    event: &TimelineEvent,
    known: Known,
) -> Result<()> {
    insert_event(conn, event).await?;
    crate::crm::queue_for_event(conn, event).await?;
    if SKIP_FACTS.load(Ordering::Relaxed) {
        return Ok(());
    }
    apply_event_known(conn, event, known).await
}

async fn exec(conn: &mut AnyConnection, sql: &'static str, binds: &[Bind<'_>]) -> Result<u64> {
    Ok(query(sql, binds).execute(&mut *conn).await?.rows_affected())
}

fn query<'q>(
    sql: &'static str,
    binds: &[Bind<'_>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s.to_string()),
            Bind::OptText(s) => q.bind(s.map(str::to_owned)),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

enum Bind<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
}

use Bind::{Int, OptText, Text};

/// Creates a task's fact from the `task` table when its arrival was not logged (a task
/// that was live when the reports were installed).
async fn ensure_task(conn: &mut AnyConnection, task_id: &str) -> Result<()> {
    exec(
        conn,
        "INSERT INTO task_fact (task_id, conversation_id, contact_id, channel, queue_id, arrived_at) \
         SELECT id, conversation_id, contact_id, channel, queue_id, arrived_at FROM task WHERE id = $1 \
         ON CONFLICT (task_id) DO NOTHING",
        &[Text(task_id)],
    )
    .await?;
    Ok(())
}

/// Creates a conversation's fact from the `conversation` table if it has none.
async fn ensure_conversation(conn: &mut AnyConnection, conversation_id: &str) -> Result<()> {
    exec(
        conn,
        "INSERT INTO conversation_fact (conversation_id, contact_id, opened_at) \
         SELECT id, contact_id, opened_at FROM conversation WHERE id = $1 \
         ON CONFLICT (conversation_id) DO NOTHING",
        &[Text(conversation_id)],
    )
    .await?;
    Ok(())
}

/// Runs an update of one conversation's fact, creating the fact first if the update
/// found none, and moves its contribution in the journey rollup. Every write of a
/// conversation's fact goes through here, except the customer's next contact (below).
async fn update_conversation(
    conn: &mut AnyConnection,
    conversation_id: &str,
    sql: &'static str,
    binds: &[Bind<'_>],
) -> Result<()> {
    update_conversation_returning(conn, conversation_id, sql, binds, false).await?;
    Ok(())
}

/// [`update_conversation`], whose statement ends in `RETURNING inbound` when
/// `returning`: the fact's inbound count after the update, `None` when there is no
/// fact to update (without `returning`, `Some(0)` for an update).
async fn update_conversation_returning(
    conn: &mut AnyConnection,
    conversation_id: &str,
    sql: &'static str,
    binds: &[Bind<'_>],
    returning: bool,
) -> Result<Option<i64>> {
    // A contribution taken out means the fact exists; otherwise it may not (or is
    // machine mail's), and is created first rather than after a failed update.
    let mut updated = None;
    if journey_delta(conn, conversation_id, -1).await? {
        updated = update_one(conn, sql, binds, returning).await?;
    }
    if updated.is_none() {
        ensure_conversation(conn, conversation_id).await?;
        updated = update_one(conn, sql, binds, returning).await?;
    }
    journey_delta(conn, conversation_id, 1).await?;
    Ok(updated)
}

/// Runs an update of one row: `None` if it found none, else the `RETURNING` column's
/// value when `returning`, or 0.
async fn update_one(
    conn: &mut AnyConnection,
    sql: &'static str,
    binds: &[Bind<'_>],
    returning: bool,
) -> Result<Option<i64>> {
    if !returning {
        return Ok((exec(conn, sql, binds).await? > 0).then_some(0));
    }
    let row = query(sql, binds).fetch_optional(&mut *conn).await?;
    row.map(|r| r.int("inbound")).transpose()
}

/// An update of columns the journey rollup does not count (who held it, the
/// disposition, inbound messages): no rollup change, unless the fact has to be created.
async fn update_conversation_untallied(
    conn: &mut AnyConnection,
    conversation_id: &str,
    sql: &'static str,
    binds: &[Bind<'_>],
) -> Result<()> {
    if exec(conn, sql, binds).await? == 0 {
        update_conversation(conn, conversation_id, sql, binds).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
struct AgentState {
    since: i64,
    presence: String,
    tasks: i64,
    load: i64,
    capacity: i64,
}

/// Changes an agent's state at `at`, closing the stretch that ends there.
async fn change_agent(
    conn: &mut AnyConnection,
    agent_id: &str,
    at: i64,
    change: impl FnOnce(&mut AgentState),
) -> Result<()> {
    let row = sqlx::query(
        "SELECT since, presence, tasks, load, capacity FROM agent_state WHERE agent_id = $1",
    )
    .bind(agent_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let before = match row {
        Some(r) => AgentState {
            since: r.int("since")?,
            presence: r.text("presence")?,
            tasks: r.int("tasks")?,
            load: r.int("load")?,
            capacity: r.int("capacity")?,
        },
        None => AgentState {
            since: at,
            presence: "offline".into(),
            tasks: 0,
            load: 0,
            capacity: 100,
        },
    };
    let mut after = before.clone();
    change(&mut after);
    after.tasks = after.tasks.max(0);
    after.load = after.load.max(0);
    if after == before {
        return Ok(());
    }
    if before.since < at && (before.presence == "available" || before.tasks > 0) {
        // Cut at each UTC midnight, so no stretch is longer than a day and a report
        // finds the ones crossing its start by the index on `start_at`.
        let mut closed = Vec::new();
        let mut from = before.since;
        while from < at {
            let to = at.min((from.div_euclid(SEGMENT_MAX_MS) + 1) * SEGMENT_MAX_MS);
            let inserted = sqlx::query(
                "INSERT INTO agent_segment (agent_id, start_at, end_at, presence, tasks, load, capacity) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agent_id, start_at) DO NOTHING",
            )
            .bind(agent_id.to_owned())
            .bind(from)
            .bind(to)
            .bind(before.presence.clone())
            .bind(before.tasks)
            .bind(before.load)
            .bind(before.capacity)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted > 0 {
                closed.push((from, to));
            }
            from = to;
        }
        let held = Holding {
            tasks: before.tasks,
            load: before.load,
            capacity: before.capacity,
        };
        add_stretches(conn, agent_id, held, &closed).await?;
    }
    after.since = before.since.max(at);
    sqlx::query(
        "INSERT INTO agent_state (agent_id, since, presence, tasks, load, capacity) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id) DO UPDATE SET \
         since = excluded.since, presence = excluded.presence, tasks = excluded.tasks, \
         load = excluded.load, capacity = excluded.capacity",
    )
    .bind(agent_id.to_owned())
    .bind(after.since)
    .bind(after.presence)
    .bind(after.tasks)
    .bind(after.load)
    .bind(after.capacity)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What releasing a task's leg adds to the task's fact, written by the caller's own
/// update of the fact with [`released_set!`] (one statement for both).
#[derive(Debug, Clone, Copy, Default)]
struct Released {
    /// 1 when a leg was released, else 0 (and the fact is left as it is).
    released: i64,
    /// Connected time to add (the leg's, unless wrap-up already added it).
    connected_ms: i64,
    /// Wrap-up time to add.
    wrap_ms: i64,
}

impl Released {
    /// The binds of [`released_set!`]: `$1` to `$4`.
    fn binds(&self, at: i64) -> [Bind<'static>; 4] {
        [
            Int(self.released),
            Int(self.connected_ms),
            Int(self.wrap_ms),
            Int(at),
        ]
    }
}

/// `SET` assignments of `task_fact` for a release (see [`Released`]): `$1` whether a
/// leg was released, `$2` connected and `$3` wrap-up time to add, `$4` the instant.
/// The holder lets go and the customer comes off hold too (as `end_hold`).
macro_rules! released_set {
    () => {
        "connected_ms = connected_ms + $2, wrap_ms = wrap_ms + $3, \
         holder_id = CASE WHEN $1 = 1 THEN NULL ELSE holder_id END, \
         holder_since = CASE WHEN $1 = 1 THEN NULL ELSE holder_since END, \
         holder_phase = CASE WHEN $1 = 1 THEN NULL ELSE holder_phase END, \
         hold_ms = hold_ms + CASE WHEN $1 = 1 AND hold_since <= $4 THEN $4 - hold_since ELSE 0 END, \
         hold_since = CASE WHEN $1 = 1 AND hold_since <= $4 THEN NULL ELSE hold_since END"
    };
}

/// The agent holding a task lets it go at `at`: the leg ends with `outcome` and the
/// agent's load drops. What the task's fact gains is returned, for the caller's update
/// of it.
async fn release(
    conn: &mut AnyConnection,
    task_id: &str,
    at: i64,
    outcome: &str,
) -> Result<Released> {
    let leg = sqlx::query(
        "SELECT id, agent_id, assigned_at, wrap_at, connected_ms, cost FROM task_leg \
         WHERE task_id = $1 AND ended_at IS NULL ORDER BY assigned_at DESC, id DESC LIMIT 1",
    )
    .bind(task_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(leg) = leg else {
        return Ok(Released::default());
    };
    let (connected, wrap) = match leg.opt_int("wrap_at")? {
        None => ((at - leg.int("assigned_at")?).max(0), 0),
        Some(wrap_at) => (leg.int("connected_ms")?, (at - wrap_at).max(0)),
    };
    let added_connected = match leg.opt_int("wrap_at")? {
        None => connected,
        Some(_) => 0,
    };
    exec(
        conn,
        "UPDATE task_leg SET ended_at = $1, outcome = $2, connected_ms = $3, wrap_ms = $4 WHERE id = $5",
        &[
            Int(at),
            Text(outcome),
            Int(connected),
            Int(wrap),
            Text(&leg.text("id")?),
        ],
    )
    .await?;
    let cost = leg.int("cost")?;
    change_agent(conn, &leg.text("agent_id")?, at, |s| {
        s.tasks -= 1;
        s.load -= cost;
    })
    .await?;
    Ok(Released {
        released: 1,
        connected_ms: added_connected,
        wrap_ms: wrap,
    })
}

/// Takes the customer off hold at `at` (if they were), adding the time to the task.
async fn end_hold(conn: &mut AnyConnection, task_id: &str, at: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE task_fact SET hold_ms = hold_ms + ($1 - hold_since), hold_since = NULL \
         WHERE task_id = $2 AND hold_since IS NOT NULL AND hold_since <= $1",
        &[Int(at), Text(task_id)],
    )
    .await?;
    Ok(())
}

/// Applies one routing history record, logged as `log_id` at `at`, to the facts and
/// to the task's rollup row (its contribution before the change out, after it in).
pub(crate) async fn apply_routing(
    conn: &mut AnyConnection,
    log_id: &str,
    at: i64,
    entry: &RoutingLogEntry,
) -> Result<()> {
    let task = entry.task_id();
    let mut ensured = true;
    if let Some(task) = task {
        ensured = task_delta(conn, task, -1).await?;
    }
    apply_routing_to_facts(conn, log_id, at, entry, &mut ensured).await?;
    if let Some(task) = task {
        task_delta(conn, task, 1).await?;
    }
    Ok(())
}

/// `ensured`: the entry's task has a fact, or was already created from the `task`
/// table in this step if it could be (a second try would find the same rows); set
/// once the entry has done either.
async fn apply_routing_to_facts(
    conn: &mut AnyConnection,
    log_id: &str,
    at: i64,
    entry: &RoutingLogEntry,
    ensured: &mut bool,
) -> Result<()> {
    if let Some(task) = entry.task_id()
        && !*ensured
        && !matches!(entry, RoutingLogEntry::Queued { .. })
    {
        ensure_task(conn, task).await?;
    }
    if entry.task_id().is_some() {
        // A queued entry inserts its own fact (or finds one).
        *ensured = true;
    }
    match entry {
        RoutingLogEntry::Queued {
            task_id,
            conversation_id,
            contact_id,
            channel,
            queue_id,
            arrived_at,
        } => {
            exec(
                conn,
                "INSERT INTO task_fact (task_id, conversation_id, contact_id, channel, queue_id, arrived_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id) DO NOTHING",
                &[
                    Text(task_id),
                    OptText(conversation_id.as_deref()),
                    OptText(contact_id.as_deref()),
                    Text(channel),
                    Text(queue_id),
                    Int(*arrived_at),
                ],
            )
            .await?;
            if let Some(conversation) = conversation_id {
                update_conversation(
                    conn,
                    conversation,
                    "UPDATE conversation_fact SET first_queue = COALESCE(first_queue, $1) \
                     WHERE conversation_id = $2",
                    &[Text(queue_id), Text(conversation)],
                )
                .await?;
            }
        }
        RoutingLogEntry::Offered { task_id, .. } => {
            exec(
                conn,
                "UPDATE task_fact SET offers = offers + 1, \
                 first_offered_at = COALESCE(first_offered_at, $1) WHERE task_id = $2",
                &[Int(at), Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::OfferEnded { task_id, how, .. } => {
            if how != "canceled" {
                exec(
                    conn,
                    "UPDATE task_fact SET missed_offers = missed_offers + 1 WHERE task_id = $1",
                    &[Text(task_id)],
                )
                .await?;
            }
        }
        RoutingLogEntry::Assigned {
            task_id,
            agent_id,
            cost,
            capacity,
        } => {
            macro_rules! assign {
                ($when:literal) => {
                    concat!(
                        "UPDATE task_fact SET answered_at = COALESCE(answered_at, $1), \
                         agent_id = COALESCE(agent_id, $2), \
                         first_response_at = CASE WHEN channel = 'voice' \
                             THEN COALESCE(first_response_at, $1) ELSE first_response_at END, \
                         holder_id = $2, holder_since = $1, holder_phase = 'handling' \
                         WHERE task_id = $3",
                        $when,
                        " RETURNING conversation_id, channel, queue_id"
                    )
                };
            }
            let binds = [Int(at), Text(agent_id), Text(task_id)];
            // A task's holder is set exactly while one of its legs is open, so a task
            // nobody holds (nearly all) is taken in one statement. A task cannot be
            // held twice: a stale leg (a lost release) ends first.
            let mut task = query(assign!(" AND holder_id IS NULL"), &binds)
                .fetch_optional(&mut *conn)
                .await?;
            if task.is_none() {
                let stale = release(conn, task_id, at, "canceled").await?;
                if stale.released == 1 {
                    let [b1, b2, b3, b4] = stale.binds(at);
                    exec(
                        conn,
                        concat!(
                            "UPDATE task_fact SET ",
                            released_set!(),
                            " WHERE task_id = $5"
                        ),
                        &[b1, b2, b3, b4, Text(task_id)],
                    )
                    .await?;
                }
                task = query(assign!(""), &binds)
                    .fetch_optional(&mut *conn)
                    .await?;
            }
            let Some(task) = task else {
                return Ok(());
            };
            let conversation = task.opt_text("conversation_id")?;
            sqlx::query(
                "INSERT INTO task_leg (id, task_id, agent_id, conversation_id, channel, queue_id, \
                 assigned_at, cost, capacity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(log_id.to_owned())
            .bind(task_id.clone())
            .bind(agent_id.clone())
            .bind(conversation.clone())
            .bind(task.text("channel")?)
            .bind(task.text("queue_id")?)
            .bind(at)
            .bind(*cost)
            .bind(*capacity)
            .execute(&mut *conn)
            .await?;
            if let Some(conversation) = &conversation {
                let pattern = format!("%,{agent_id},%");
                update_conversation_untallied(
                    conn,
                    conversation,
                    "UPDATE conversation_fact SET agents = CASE WHEN agents LIKE $1 THEN agents \
                     ELSE agents || $2 || ',' END, last_agent_id = $2 WHERE conversation_id = $3",
                    &[Text(&pattern), Text(agent_id), Text(conversation)],
                )
                .await?;
            }
            let (cost, capacity) = (*cost, *capacity);
            change_agent(conn, agent_id, at, |s| {
                s.tasks += 1;
                s.load += cost;
                s.capacity = capacity;
            })
            .await?;
        }
        RoutingLogEntry::Wrapping { task_id, .. } => {
            exec(
                conn,
                "UPDATE task_leg SET connected_ms = $1 - assigned_at, wrap_at = $1 \
                 WHERE task_id = $2 AND ended_at IS NULL AND wrap_at IS NULL",
                &[Int(at), Text(task_id)],
            )
            .await?;
            // The customer comes off hold (as `end_hold`) and the holder's talk ends,
            // in one statement.
            exec(
                conn,
                "UPDATE task_fact SET \
                 hold_ms = hold_ms + CASE WHEN hold_since <= $1 THEN $1 - hold_since ELSE 0 END, \
                 hold_since = CASE WHEN hold_since <= $1 THEN NULL ELSE hold_since END, \
                 connected_ms = connected_ms + CASE WHEN holder_phase = 'handling' \
                     THEN $1 - holder_since ELSE 0 END, \
                 holder_since = CASE WHEN holder_phase = 'handling' THEN $1 ELSE holder_since END, \
                 holder_phase = CASE WHEN holder_phase = 'handling' THEN 'wrapping' \
                     ELSE holder_phase END \
                 WHERE task_id = $2",
                &[Int(at), Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::Completed { task_id } => {
            let [b1, b2, b3, b4] = release(conn, task_id, at, "completed").await?.binds(at);
            exec(
                conn,
                concat!(
                    "UPDATE task_fact SET ",
                    released_set!(),
                    ", ended_at = $4, outcome = 'completed' WHERE task_id = $5"
                ),
                &[b1, b2, b3, b4, Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::Canceled { task_id, reason } => {
            let [b1, b2, b3, b4] = release(conn, task_id, at, "canceled").await?.binds(at);
            let reason = if reason == "replaced" {
                "replaced"
            } else {
                "abandoned"
            };
            exec(
                conn,
                concat!(
                    "UPDATE task_fact SET ",
                    released_set!(),
                    ", ended_at = $4, outcome = CASE WHEN answered_at IS NULL \
                     THEN $5 ELSE 'canceled' END WHERE task_id = $6"
                ),
                &[b1, b2, b3, b4, Text(reason), Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::Transferred {
            task_id, to_queue, ..
        } => {
            let [b1, b2, b3, b4] = release(conn, task_id, at, "transferred").await?.binds(at);
            exec(
                conn,
                concat!(
                    "UPDATE task_fact SET ",
                    released_set!(),
                    ", transfers = transfers + 1, queue_id = CASE \
                     WHEN answered_at IS NULL AND $5 IS NOT NULL THEN $5 ELSE queue_id END \
                     WHERE task_id = $6"
                ),
                &[b1, b2, b3, b4, OptText(to_queue.as_deref()), Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::Overflowed { task_id, to_queue } => {
            exec(
                conn,
                "UPDATE task_fact SET overflows = overflows + 1, queue_id = CASE \
                 WHEN answered_at IS NULL THEN $1 ELSE queue_id END WHERE task_id = $2",
                &[Text(to_queue), Text(task_id)],
            )
            .await?;
        }
        RoutingLogEntry::Hold { task_id, held } => {
            if *held {
                exec(
                    conn,
                    "UPDATE task_fact SET hold_since = COALESCE(hold_since, $1) \
                     WHERE task_id = $2 AND holder_phase = 'handling'",
                    &[Int(at), Text(task_id)],
                )
                .await?;
            } else {
                end_hold(conn, task_id, at).await?;
            }
        }
        RoutingLogEntry::Presence {
            agent_id,
            status,
            capacity,
        } => {
            let (status, capacity) = (status.clone(), *capacity);
            change_agent(conn, agent_id, at, |s| {
                s.presence = status;
                s.capacity = capacity;
            })
            .await?;
        }
    }
    Ok(())
}

/// A status event's change as `(from, to)`, from its `data` or, for events written
/// before it carried one, its text (`open → resolved`, `reopened`, `resolved: …`).
fn status_change(event: &TimelineEvent) -> (Option<String>, Option<String>) {
    let field = |k: &str| event.data.get(k).and_then(Value::as_str).map(str::to_owned);
    if let (Some(from), Some(to)) = (field("from"), field("to")) {
        return (Some(from), Some(to));
    }
    let body = event.body.trim();
    if body == "reopened" {
        return (Some("resolved".into()), Some("open".into()));
    }
    if body.starts_with("resolved:") {
        return (None, Some("resolved".into()));
    }
    match body.split_once('→') {
        Some((from, to)) => (Some(from.trim().to_owned()), Some(to.trim().to_owned())),
        None => (None, None),
    }
}

/// Applies one timeline event to the facts.
pub(crate) async fn apply_event(conn: &mut AnyConnection, event: &TimelineEvent) -> Result<()> {
    apply_event_known(conn, event, Known::default()).await
}

async fn apply_event_known(
    conn: &mut AnyConnection,
    event: &TimelineEvent,
    known: Known,
) -> Result<()> {
    let Some(conversation) = event.conversation_id.as_deref() else {
        return Ok(());
    };
    let at = event.occurred_at;
    match event.kind {
        EventKind::Message | EventKind::Call => {
            contact_event(conn, conversation, event, known).await?
        }
        EventKind::ChannelSwitch => {
            update_conversation(
                conn,
                conversation,
                "UPDATE conversation_fact SET channel_switches = channel_switches + 1 \
                 WHERE conversation_id = $1",
                &[Text(conversation)],
            )
            .await?
        }
        EventKind::Status => {
            let (from, to) = status_change(event);
            if to.as_deref() == Some("resolved") {
                let automatic = i64::from(event.body.starts_with("resolved: automatic"));
                update_conversation(
                    conn,
                    conversation,
                    "UPDATE conversation_fact SET first_resolved_at = COALESCE(first_resolved_at, $1), \
                     last_resolved_at = $1, resolved_at = $1, \
                     automatic = CASE WHEN $2 = 1 THEN 1 ELSE automatic END WHERE conversation_id = $3",
                    &[Int(at), Int(automatic), Text(conversation)],
                )
                .await?;
            } else if from.as_deref() == Some("resolved") {
                update_conversation(
                    conn,
                    conversation,
                    "UPDATE conversation_fact SET reopens = reopens + 1, resolved_at = NULL \
                     WHERE conversation_id = $1",
                    &[Text(conversation)],
                )
                .await?;
                // Only a customer's message reopens with this text; an agent's status
                // change is not the customer coming back.
                if event.body.trim() == "reopened" {
                    arrival(conn, conversation, &event.contact_id, at, "reopened", None).await?;
                }
            }
        }
        EventKind::Transfer
            if event.data.get("handoff").and_then(Value::as_str) == Some("received") =>
        {
            let context = i64::from(event.data.get("context_received") == Some(&Value::Bool(true)));
            if let Some(task) = event.data.get("task_id").and_then(Value::as_str) {
                task_delta(conn, task, -1).await?;
                exec(
                    conn,
                    "UPDATE task_fact SET handoffs = handoffs + 1, \
                     handoffs_context = handoffs_context + $1 WHERE task_id = $2",
                    &[Int(context), Text(task)],
                )
                .await?;
                task_delta(conn, task, 1).await?;
            }
            update_conversation(
                conn,
                conversation,
                "UPDATE conversation_fact SET handoffs = handoffs + 1, \
                 handoffs_context = handoffs_context + $1 WHERE conversation_id = $2",
                &[Int(context), Text(conversation)],
            )
            .await?;
        }
        EventKind::Disposition => {
            let code = event.data.get("code").and_then(Value::as_str);
            update_conversation_untallied(
                conn,
                conversation,
                "UPDATE conversation_fact SET disposition = $1, resolved_by = $2 \
                 WHERE conversation_id = $3",
                &[
                    OptText(code),
                    OptText(event.author_agent_id.as_deref()),
                    Text(conversation),
                ],
            )
            .await?;
        }
        EventKind::Survey => survey_event(conn, conversation, event).await?,
        _ => {}
    }
    Ok(())
}

/// A message or call: the channel is used; an inbound one is the customer contacting us
/// (it settles first contact resolution of their resolved conversations and may be a
/// journey's arrival); an agent's outbound message may be a task's first response.
async fn contact_event(
    conn: &mut AnyConnection,
    conversation: &str,
    event: &TimelineEvent,
    known: Known,
) -> Result<()> {
    let at = event.occurred_at;
    let automatic = event.data.get("metadata").is_some_and(is_automatic);
    let inbound = event.direction == Direction::In && !automatic;
    // The fact's inbound count after this event, when known without another read.
    let mut inbound_now = None;
    if let Some(channel) = event.channel.as_deref() {
        let pattern = format!("%,{channel},%");
        if known.no_fact {
            // A new conversation: its fact is written whole, with this channel, then
            // counted in the rollup (what creating it and updating it would give).
            inbound_now = query(
                "INSERT INTO conversation_fact (conversation_id, contact_id, opened_at, \
                 first_channel, channels, channel_count, inbound) \
                 SELECT id, contact_id, opened_at, $2, ',' || $2 || ',', 1, $3 \
                 FROM conversation WHERE id = $1 \
                 ON CONFLICT (conversation_id) DO NOTHING RETURNING inbound",
                &[Text(conversation), Text(channel), Int(i64::from(inbound))],
            )
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.int("inbound"))
            .transpose()?;
            if inbound_now.is_some() {
                journey_delta(conn, conversation, 1).await?;
            }
        } else {
            // A conversation already on this channel: only the inbound count moves,
            // which no journey figure counts, so the rollup is left alone (taking the
            // contribution out and putting the same one back would change nothing).
            inbound_now = query(
                "UPDATE conversation_fact SET inbound = inbound + $1 WHERE conversation_id = $2 \
                 AND first_channel IS NOT NULL AND channels LIKE $3 RETURNING inbound",
                &[Int(i64::from(inbound)), Text(conversation), Text(&pattern)],
            )
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.int("inbound"))
            .transpose()?;
        }
        if inbound_now.is_none() {
            inbound_now = update_conversation_returning(
                conn,
                conversation,
                "UPDATE conversation_fact SET \
                 channel_count = channel_count + CASE WHEN channels LIKE $1 THEN 0 ELSE 1 END, \
                 channels = CASE WHEN channels LIKE $1 THEN channels ELSE channels || $2 || ',' END, \
                 first_channel = COALESCE(first_channel, $2), inbound = inbound + $3 \
                 WHERE conversation_id = $4 RETURNING inbound",
                &[
                    Text(&pattern),
                    Text(channel),
                    Int(i64::from(inbound)),
                    Text(conversation),
                ],
                true,
            )
            .await?;
        }
    } else if inbound {
        update_conversation_untallied(
            conn,
            conversation,
            "UPDATE conversation_fact SET inbound = inbound + 1 WHERE conversation_id = $1",
            &[Text(conversation)],
        )
        .await?;
    }
    if inbound && !known.no_unsettled {
        // The customer's resolved conversations whose next contact this is (a few at
        // most), each moved in the journey rollup.
        let settled: Vec<String> = sqlx::query(
            "SELECT conversation_id FROM conversation_fact WHERE contact_id = $1 \
             AND first_resolved_at IS NOT NULL AND first_resolved_at < $2 AND next_contact_at IS NULL",
        )
        .bind(event.contact_id.clone())
        .bind(at)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.text("conversation_id"))
        .collect::<Result<_>>()?;
        for id in &settled {
            update_conversation(
                conn,
                id,
                "UPDATE conversation_fact SET next_contact_at = $1 WHERE conversation_id = $2",
                &[Int(at), Text(id)],
            )
            .await?;
        }
    }
    if inbound {
        if event.channel.is_none() {
            inbound_now =
                sqlx::query("SELECT inbound FROM conversation_fact WHERE conversation_id = $1")
                    .bind(conversation.to_owned())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| r.int("inbound"))
                    .transpose()?;
        }
        let first = inbound_now == Some(1);
        if first {
            arrival(
                conn,
                conversation,
                &event.contact_id,
                at,
                "opened",
                event.channel.as_deref(),
            )
            .await?;
        } else if let Some(channel) = event.channel.as_deref()
            && !known.arrivals_channeled
        {
            exec(
                conn,
                "UPDATE journey_arrival SET channel = $1 WHERE conversation_id = $2 AND channel IS NULL",
                &[Text(channel), Text(conversation)],
            )
            .await?;
        }
    }
    if event.direction == Direction::Out
        && event.kind == EventKind::Message
        && event.author_agent_id.is_some()
    {
        let task = sqlx::query(
            "SELECT task_id FROM task_fact WHERE conversation_id = $1 AND arrived_at <= $2 \
             AND (ended_at IS NULL OR ended_at >= $2) AND first_response_at IS NULL \
             ORDER BY arrived_at DESC, task_id DESC LIMIT 1",
        )
        .bind(conversation.to_owned())
        .bind(at)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(task) = task {
            let task = task.text("task_id")?;
            task_delta(conn, &task, -1).await?;
            exec(
                conn,
                "UPDATE task_fact SET first_response_at = $1 WHERE task_id = $2",
                &[Int(at), Text(&task)],
            )
            .await?;
            task_delta(conn, &task, 1).await?;
        }
    }
    Ok(())
}

/// A customer starts (`opened`) or restarts (`reopened`) a journey at `at`.
async fn arrival(
    conn: &mut AnyConnection,
    conversation: &str,
    contact_id: &str,
    at: i64,
    kind: &str,
    channel: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO journey_arrival (conversation_id, at, contact_id, kind, channel, prev_resolved_at) \
         SELECT $1, $2, $3, $4, $5, (SELECT MAX(last_resolved_at) FROM conversation_fact \
             WHERE contact_id = $3 AND last_resolved_at < $2) \
         ON CONFLICT (conversation_id, at) DO NOTHING",
    )
    .bind(conversation.to_owned())
    .bind(at)
    .bind(contact_id.to_owned())
    .bind(kind.to_owned())
    .bind(channel.map(str::to_owned))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A survey event (`data`: `survey` = `csat`, `ces` or `nps`; `phase` = `sent`,
/// `answered` or `not_sent`; `score`): sent and answered times and the latest score.
/// A survey that was not sent (no consent, a closed window) counts nowhere.
async fn survey_event(
    conn: &mut AnyConnection,
    conversation: &str,
    event: &TimelineEvent,
) -> Result<()> {
    let at = event.occurred_at;
    let phase = event.data.get("phase").and_then(Value::as_str);
    if phase == Some("not_sent") {
        return Ok(());
    }
    let score = event.data.get("score").and_then(Value::as_i64);
    let survey = event.data.get("survey").and_then(Value::as_str);
    let sent = match survey {
        Some("csat") => {
            "UPDATE conversation_fact SET csat_sent_at = COALESCE(csat_sent_at, $1) \
             WHERE conversation_id = $2"
        }
        Some("ces") => {
            "UPDATE conversation_fact SET ces_sent_at = COALESCE(ces_sent_at, $1) \
             WHERE conversation_id = $2"
        }
        Some("nps") => {
            "UPDATE conversation_fact SET nps_sent_at = COALESCE(nps_sent_at, $1) \
             WHERE conversation_id = $2"
        }
        _ => return Ok(()),
    };
    update_conversation(conn, conversation, sent, &[Int(at), Text(conversation)]).await?;
    if phase != Some("answered") {
        return Ok(());
    }
    let answered = match (survey, score) {
        (Some("csat"), Some(s)) if (1..=5).contains(&s) => {
            "UPDATE conversation_fact SET csat = $1, survey_channel = COALESCE($2, survey_channel) \
             WHERE conversation_id = $3"
        }
        (Some("ces"), Some(s)) if (1..=7).contains(&s) => {
            "UPDATE conversation_fact SET ces = $1, survey_channel = COALESCE($2, survey_channel) \
             WHERE conversation_id = $3"
        }
        (Some("nps"), Some(s)) if (0..=10).contains(&s) => {
            "UPDATE conversation_fact SET nps = $1, survey_channel = COALESCE($2, survey_channel) \
             WHERE conversation_id = $3"
        }
        _ => return Ok(()),
    };
    update_conversation(
        conn,
        conversation,
        answered,
        &[
            Int(score.unwrap_or(0)),
            OptText(event.channel.as_deref()),
            Text(conversation),
        ],
    )
    .await?;
    Ok(())
}

/// A merge moved `from`'s conversations to `to`: their facts follow.
pub(crate) async fn move_contact(conn: &mut AnyConnection, from: &str, to: &str) -> Result<()> {
    for sql in [
        "UPDATE conversation_fact SET contact_id = $1 WHERE contact_id = $2",
        "UPDATE journey_arrival SET contact_id = $1 WHERE contact_id = $2",
        "UPDATE task_fact SET contact_id = $1 WHERE contact_id = $2",
    ] {
        exec(conn, sql, &[Text(to), Text(from)]).await?;
    }
    Ok(())
}

/// An unmerge moved `conversation` back to `contact`: its facts follow.
pub(crate) async fn move_conversation(
    conn: &mut AnyConnection,
    conversation: &str,
    contact: &str,
) -> Result<()> {
    for sql in [
        "UPDATE conversation_fact SET contact_id = $1 WHERE conversation_id = $2",
        "UPDATE journey_arrival SET contact_id = $1 WHERE conversation_id = $2",
        "UPDATE task_fact SET contact_id = $1 WHERE conversation_id = $2",
    ] {
        exec(conn, sql, &[Text(contact), Text(conversation)]).await?;
    }
    Ok(())
}
