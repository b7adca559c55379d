//! Agent time rolled up per UTC hour and agent (`agent_rollup`, migration `0014`),
//! kept in the transaction that closes a stretch of agent time, and read instead of
//! `agent_segment` when a report's buckets start and end on whole UTC hours.
//!
//! It only grows, so nothing is ever taken out: a closed stretch never changes, and its
//! time is added to each hour it covers, cut at the hour's edges, which is what the raw
//! path does with a stretch across a bucket edge. An agent's current stretch
//! (`agent_state`) is not here: the report adds it up to its now, as before.
//!
//! Legs are not rolled up: per hour, agent, channel and queue there are about as many
//! rows as legs (an agent takes a few tasks an hour), so the raw legs, read through the
//! index on their assignment, are as fast (the benchmark measured both).
//!
//! The live path and the rebuild add to it through the same function
//! ([`add_stretches`]), called from `facts`.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AnyPool};

use crate::db::Backend;
use crate::error::Result;
use crate::reports::rollup::{HOUR_MS, fill_empty, whole_hours};
use crate::reports::sql::{Dimension, FactQuery, Sql, bucket_index, check_buckets};

/// The capacity state of a closed stretch: tasks held, capacity they use, capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holding {
    pub tasks: i64,
    pub load: i64,
    pub capacity: i64,
}

/// Each UTC hour the stretches `[start, end)` cover, with the time in it.
fn hours(stretches: &[(i64, i64)]) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for &(start, end) in stretches {
        let mut hour = start.div_euclid(HOUR_MS) * HOUR_MS;
        while hour < end {
            let d = end.min(hour + HOUR_MS) - start.max(hour);
            if d > 0 {
                *out.entry(hour).or_insert(0) += d;
            }
            hour += HOUR_MS;
        }
    }
    out
}

/// Adds an agent's closed stretches, all in the state `held`, to the hours they cover:
/// one statement for them all.
pub(crate) async fn add_stretches(
    conn: &mut AnyConnection,
    agent_id: &str,
    held: Holding,
    stretches: &[(i64, i64)],
) -> Result<()> {
    let hours = hours(stretches);
    if hours.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..hours.len())
        .map(|i| {
            let p = i * 7;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO agent_rollup (hour, agent_id, staffed_ms, busy_ms, task_ms, load_ms, \
         capacity_ms) VALUES {} ON CONFLICT (hour, agent_id) DO UPDATE SET \
         staffed_ms = agent_rollup.staffed_ms + excluded.staffed_ms, \
         busy_ms = agent_rollup.busy_ms + excluded.busy_ms, \
         task_ms = agent_rollup.task_ms + excluded.task_ms, \
         load_ms = agent_rollup.load_ms + excluded.load_ms, \
         capacity_ms = agent_rollup.capacity_ms + excluded.capacity_ms",
        rows.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (hour, d) in hours {
        q = q
            .bind(hour)
            .bind(agent_id.to_owned())
            .bind(d)
            .bind(if held.tasks > 0 { d } else { 0 })
            .bind(d * held.tasks)
            .bind(d * held.load)
            .bind(d * held.capacity);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Whether the agent time of `q` can be read from the rollup: buckets on whole UTC
/// hours. Agent time is grouped by agent or not at all and filtered by agent only, both
/// columns of the rollup, and no threshold enters it.
pub(crate) fn covers_agents(q: &FactQuery) -> bool {
    whole_hours(q)
}

/// Closed agent time per bucket and group (the agent, or `''`) over the rollup, with
/// the column names of the raw query; `agent=` is the only filter agent time has.
pub(crate) fn agent_time_sql(q: &FactQuery) -> Result<Sql> {
    let (start, end) = check_buckets(&q.buckets)?;
    let mut sql = Sql::default();
    let filter = match &q.agent {
        Some(agent) => format!(" AND r.agent_id = {}", sql.bind(agent)),
        None => String::new(),
    };
    let group = if q.by == Some(Dimension::Agent) {
        "r.agent_id"
    } else {
        "CAST('' AS TEXT)"
    };
    sql.push(&format!(
        "SELECT {} AS b, {group} AS k, CAST(SUM(r.staffed_ms) AS BIGINT) AS staffed, \
         CAST(SUM(r.busy_ms) AS BIGINT) AS busy, CAST(SUM(r.task_ms) AS BIGINT) AS task_ms, \
         CAST(SUM(r.load_ms) AS BIGINT) AS load_ms, \
         CAST(SUM(r.capacity_ms) AS BIGINT) AS capacity_ms \
         FROM agent_rollup r WHERE r.hour >= {start} AND r.hour < {end}{filter} GROUP BY b, k",
        bucket_index("r.hour", &q.buckets),
    ));
    Ok(sql)
}

/// Fills `agent_rollup` from the stretches when it is empty and they are not (a
/// database whose facts predate migration `0014`). Runs at every start, after the other
/// rollups' fill.
pub(crate) async fn fill_if_empty(pool: &AnyPool, backend: Backend) -> Result<()> {
    fill_empty(
        pool,
        backend,
        [("agent_rollup", "agent_segment", fill_agent_sql())],
    )
    .await
}

/// `INSERT … SELECT` filling `agent_rollup` from every closed stretch, each cut at the
/// hours it covers (a stretch is cut at each UTC midnight, so it covers 24 at most).
fn fill_agent_sql() -> String {
    let numbers: Vec<String> = (0..25).map(|n| format!("SELECT {n} AS n")).collect();
    let hour = format!("(s.start_at / {HOUR_MS} + h.n) * {HOUR_MS}");
    let next = format!("(s.start_at / {HOUR_MS} + h.n + 1) * {HOUR_MS}");
    format!(
        "INSERT INTO agent_rollup (hour, agent_id, staffed_ms, busy_ms, task_ms, load_ms, \
         capacity_ms) SELECT x.hour, x.agent_id, CAST(SUM(x.d) AS BIGINT), \
         CAST(SUM(CASE WHEN x.tasks > 0 THEN x.d ELSE 0 END) AS BIGINT), \
         CAST(SUM(x.d * x.tasks) AS BIGINT), CAST(SUM(x.d * x.load) AS BIGINT), \
         CAST(SUM(x.d * x.capacity) AS BIGINT) \
         FROM (SELECT s.agent_id, s.tasks, s.load, s.capacity, {hour} AS hour, \
             (CASE WHEN s.end_at < {next} THEN s.end_at ELSE {next} END) \
             - (CASE WHEN s.start_at > {hour} THEN s.start_at ELSE {hour} END) AS d \
           FROM agent_segment s JOIN ({}) h ON {hour} < s.end_at) x \
         WHERE x.d > 0 GROUP BY x.hour, x.agent_id",
        numbers.join(" UNION ALL ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_is_cut_at_each_hour() {
        let h = HOUR_MS;
        let got = hours(&[(h / 2, 2 * h + 10), (2 * h + 10, 2 * h + 20)]);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![(0, h / 2), (h, h), (2 * h, 20)]
        );
        assert!(hours(&[(5, 5)]).is_empty());
    }
}
