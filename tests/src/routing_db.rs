//! The routing tables as the concurrency tests check them: one snapshot of the
//! committed `task` and `reservation` rows, and what must hold in every such state
//! (each task's state matches its offers, nobody over capacity). Shared by the
//! single-node hammer (`routing_concurrency.rs`, SQLite and PostgreSQL) and the
//! three-node kill test (`cluster.rs`).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Connection;

/// Every state a task row may be in.
pub const TASK_STATES: &[&str] = &["pending", "reserved", "assigned", "wrapping", "completed"];

/// One offer of a task: (reservation id, agent, state, offered at, decided at).
pub type OfferRow = (String, String, String, i64, Option<i64>);

/// A task row with its offers.
#[derive(Debug)]
pub struct TaskRow {
    /// The task's state.
    pub state: String,
    /// Who holds it (offered, assigned or wrapping).
    pub agent: Option<String>,
    /// Its queue.
    pub queue: String,
    /// When it last changed (ms).
    pub updated_at: i64,
    /// Its offers, oldest first.
    pub offers: Vec<OfferRow>,
}

/// The `task` and `reservation` tables, read directly in one statement, so on both
/// databases it is one snapshot of committed routing steps.
pub async fn read_db(url: &str) -> BTreeMap<String, TaskRow> {
    type Row = (
        String,
        String,
        Option<String>,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("open the database");
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT t.id, t.state, t.agent_id, t.queue_id, t.updated_at, \
         r.id, r.agent_id, r.state, r.offered_at, r.decided_at \
         FROM task t LEFT JOIN reservation r ON r.task_id = t.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let mut tasks = BTreeMap::new();
    for (id, state, agent, queue, updated_at, r_id, r_agent, r_state, r_at, r_decided) in rows {
        let task = tasks.entry(id).or_insert_with(|| TaskRow {
            state,
            agent,
            queue,
            updated_at,
            offers: Vec::new(),
        });
        if let (Some(r), Some(a), Some(s), Some(at)) = (r_id, r_agent, r_state, r_at) {
            task.offers.push((r, a, s, at, r_decided));
        }
    }
    for task in tasks.values_mut() {
        task.offers.sort_by_key(|o| offer_number(&o.0));
    }
    tasks
}

/// Offer number of a reservation id (`{task}.{n}`), to order a task's offers.
pub fn offer_number(id: &str) -> u64 {
    id.rsplit('.').next().unwrap().parse().unwrap()
}

/// What must hold in every committed state: each task is in one of `queues`, its
/// state matches its offers, and nobody holds more than `capacity` when a task
/// costs `cost`. Returns who holds what.
pub fn check_snapshot(
    tasks: &BTreeMap<String, TaskRow>,
    queues: &[&str],
    cost: u32,
    capacity: u32,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut holdings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, t) in tasks {
        assert!(TASK_STATES.contains(&t.state.as_str()), "{id}: {t:?}");
        assert!(queues.contains(&t.queue.as_str()), "{id}: {t:?}");
        let pending: Vec<_> = t.offers.iter().filter(|r| r.2 == "pending").collect();
        match t.state.as_str() {
            "reserved" => {
                assert_eq!(pending.len(), 1, "{id}: {t:?}");
                assert_eq!(Some(&pending[0].1), t.agent.as_ref(), "{id}: {t:?}");
                assert_eq!(
                    t.offers.last().map(|r| &r.0),
                    Some(&pending[0].0),
                    "{id}: {t:?}"
                );
            }
            "assigned" | "wrapping" => {
                // Held through its latest offer, which that agent accepted.
                let last = t.offers.last().unwrap_or_else(|| panic!("{id}: {t:?}"));
                assert_eq!(last.2, "accepted", "{id}: {t:?}");
                assert_eq!(Some(&last.1), t.agent.as_ref(), "{id}: {t:?}");
            }
            _ => assert!(pending.is_empty(), "{id}: {t:?}"),
        }
        if matches!(t.state.as_str(), "reserved" | "assigned" | "wrapping") {
            let agent = t.agent.clone().expect("a holder");
            holdings.entry(agent).or_default().insert(id.clone());
        }
    }
    for (agent, held) in &holdings {
        assert!(
            held.len() as u32 * cost <= capacity,
            "{agent} holds {held:?}"
        );
    }
    holdings
}
