//! Task figures rolled up per UTC hour, channel and queue (`task_rollup`), kept in the
//! transaction that changes a task's fact, and read instead of `task_fact` when a
//! report can be answered from them.
//!
//! Each change to a task's fact goes through [`task_delta`] twice: before, with sign
//! −1, taking the task's old contribution out of its hour's row, and after, with +1,
//! putting the new one in (in the row of its new queue, if it moved). The contribution
//! of a task is written from the very predicates the raw path counts with
//! ([`predicate`] at the default thresholds), so the two paths add up the same numbers.
//!
//! A report reads the rollup when its buckets start and end on whole UTC hours (every
//! zone whose offset is a whole number of hours, DST days included), it is not per agent
//! and filters no agent (a task's agent is any of its legs'), and its thresholds are the
//! defaults the rollup counts with. Anything else reads `task_fact`, as before, with the
//! same answer. The maximum queue time is kept as a maximum: a task's queue time and
//! queue are final once it is answered, and only answered tasks have one, so it never
//! has to be taken out.

use std::sync::LazyLock;

use sqlx::{AnyConnection, AnyPool};

use crate::db::{Backend, RowExt, begin_write};
use crate::error::Result;
use crate::reports::sql::{
    Dimension, FactQuery, Family, Sql, Thresholds, bucket_index, check_buckets, filters, predicate,
};

/// The rollup's time grain: one UTC hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// The short-abandon threshold the rollup counts with (the reports' default).
pub(crate) const ROLLUP_SHORT_ABANDON_MS: i64 = 5_000;
/// The service-level threshold the rollup counts with (the reports' default).
pub(crate) const ROLLUP_SERVICE_LEVEL_MS: i64 = 20_000;

/// The thresholds the rollups count with; `now` is read by no predicate they use.
const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    short_abandon_ms: ROLLUP_SHORT_ABANDON_MS,
    service_level_ms: ROLLUP_SERVICE_LEVEL_MS,
    fcr_window_ms: ROLLUP_FCR_WINDOW_MS,
    now_ms: 0,
};

/// Additive columns of `task_rollup` and a task's contribution to each, as SQL over
/// `task_fact t`. `queue_ms_max` is kept apart (a maximum, not a sum).
fn contributions() -> Vec<(&'static str, String)> {
    let th = DEFAULT_THRESHOLDS;
    let when = |metric: &str, value: &str| {
        let (family, p) = predicate(metric, &th).expect("known metric");
        debug_assert_eq!(family, Family::Tasks);
        format!("CASE WHEN {p} THEN {value} ELSE 0 END")
    };
    let queue = "t.answered_at - t.arrived_at";
    vec![
        ("arrived", "1".to_string()),
        ("handled", when("handled", "1")),
        ("abandoned", when("abandoned", "1")),
        ("short_abandoned", when("short_abandoned", "1")),
        ("replaced", when("replaced", "1")),
        ("waiting", when("waiting", "1")),
        ("answered_in_sl", when("answered_in_sl", "1")),
        ("queue_ms_sum", when("handled", queue)),
        (
            "abandon_ms_sum",
            when("abandoned_counted", "t.ended_at - t.arrived_at"),
        ),
        ("responded", when("responded", "1")),
        (
            "first_response_ms_sum",
            when("responded", "t.first_response_at - t.arrived_at"),
        ),
        ("handled_ended", when("handled_ended", "1")),
        ("connected_ms_sum", when("handled_ended", "t.connected_ms")),
        ("wrap_ms_sum", when("handled_ended", "t.wrap_ms")),
        ("hold_ms_sum", when("handled_ended", "t.hold_ms")),
        ("transferred", when("transferred", "1")),
        ("transfers", "t.transfers".into()),
        ("handoffs", "t.handoffs".into()),
        ("handoffs_context", "t.handoffs_context".into()),
        ("missed_offers", "t.missed_offers".into()),
    ]
}

/// `INSERT … SELECT` of one task's contribution times `$2` into its hour's row.
static DELTA_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns = contributions();
    let (_, handled) = predicate("handled", &DEFAULT_THRESHOLDS).expect("known metric");
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let values: Vec<String> = columns.iter().map(|(_, v)| format!("$2 * ({v})")).collect();
    let updates: Vec<String> = names
        .iter()
        .map(|n| format!("{n} = task_rollup.{n} + excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO task_rollup (hour, channel, queue_id, {}, queue_ms_max) \
         SELECT (t.arrived_at / {HOUR_MS}) * {HOUR_MS}, t.channel, t.queue_id, {}, \
         CASE WHEN $2 > 0 AND {handled} THEN t.answered_at - t.arrived_at END \
         FROM task_fact t WHERE t.task_id = $1 \
         ON CONFLICT (hour, channel, queue_id) DO UPDATE SET {}, \
         queue_ms_max = CASE WHEN excluded.queue_ms_max IS NULL THEN task_rollup.queue_ms_max \
         WHEN task_rollup.queue_ms_max IS NULL OR excluded.queue_ms_max > task_rollup.queue_ms_max \
         THEN excluded.queue_ms_max ELSE task_rollup.queue_ms_max END",
        names.join(", "),
        values.join(", "),
        updates.join(", "),
    )
});

/// Adds `sign` (−1 or +1) times the task's current contribution to its hour's row; no
/// change when the task has no fact yet. Returns whether the task has a fact (so a
/// caller learns it from the statement it runs anyway).
pub(crate) async fn task_delta(conn: &mut AnyConnection, task_id: &str, sign: i64) -> Result<bool> {
    let moved = sqlx::query(sqlx::AssertSqlSafe(DELTA_SQL.as_str()))
        .bind(task_id.to_owned())
        .bind(sign)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(moved > 0)
}

/// Whether the task figures of `q` can be read from the rollup (see the module doc).
pub(crate) fn covers(q: &FactQuery) -> bool {
    q.agent.is_none()
        && q.by != Some(Dimension::Agent)
        && q.thresholds.short_abandon_ms == ROLLUP_SHORT_ABANDON_MS
        && q.thresholds.service_level_ms == ROLLUP_SERVICE_LEVEL_MS
        && q.buckets
            .iter()
            .all(|(start, end)| start.rem_euclid(HOUR_MS) == 0 && end.rem_euclid(HOUR_MS) == 0)
}

/// The task figures query over the rollup, with the column names of the raw one.
pub(crate) fn task_figures_sql(q: &FactQuery) -> Result<Sql> {
    let (start, end) = check_buckets(&q.buckets)?;
    let mut sql = Sql::default();
    let mut filters = String::new();
    if let Some(channel) = &q.channel {
        filters.push_str(&format!(" AND r.channel = {}", sql.bind(channel)));
    }
    if let Some(queue) = &q.queue {
        filters.push_str(&format!(" AND r.queue_id = {}", sql.bind(queue)));
    }
    let group = match q.by {
        Some(Dimension::Channel) => "r.channel",
        Some(Dimension::Queue) => "r.queue_id",
        _ => "CAST('' AS TEXT)",
    };
    let sums: Vec<String> = contributions()
        .iter()
        .map(|(n, _)| format!("CAST(SUM(r.{n}) AS BIGINT) AS {n}"))
        .collect();
    // A row whose tasks all moved to another queue while waiting sums to nothing; the
    // raw path has no cell there.
    sql.push(&format!(
        "SELECT {} AS b, {group} AS k, {}, CAST(MAX(r.queue_ms_max) AS BIGINT) AS queue_ms_max \
         FROM task_rollup r WHERE r.hour >= {start} AND r.hour < {end}{filters} \
         GROUP BY b, k HAVING SUM(r.arrived) > 0",
        bucket_index("r.hour", &q.buckets),
        sums.join(", "),
    ));
    Ok(sql)
}

/// The first contact resolution window the journey rollup counts with (the reports'
/// default, 7 days).
pub(crate) const ROLLUP_FCR_WINDOW_MS: i64 = 7 * 86_400_000;

/// Additive columns of `journey_rollup` and a conversation's contribution to each, as
/// SQL over `conversation_fact c` (only journeys count: `c.automatic = 0`).
fn journey_contributions() -> Vec<(&'static str, String)> {
    let th = DEFAULT_THRESHOLDS;
    let when = |metric: &str, value: &str| {
        let (family, p) = predicate(metric, &th).expect("known metric");
        debug_assert_eq!(family, Family::Journeys);
        format!("CASE WHEN {p} THEN {value} ELSE 0 END")
    };
    vec![
        ("journeys", "1".to_string()),
        ("resolved", when("resolved", "1")),
        ("fcr_no", when("fcr_no", "1")),
        ("fcr_unsettled", when("fcr_unsettled", "1")),
        ("multi_channel", when("multi_channel", "1")),
        ("switches", "c.channel_switches".into()),
        ("reopened", when("reopened", "1")),
        (
            "resolution_ms_sum",
            when("resolved", "c.resolved_at - c.opened_at"),
        ),
        ("handoffs", "c.handoffs".into()),
        ("handoffs_context", "c.handoffs_context".into()),
        ("csat_sent", when("csat_sent", "1")),
        ("csat_responses", when("csat_responses", "1")),
        ("csat_satisfied", when("csat_satisfied", "1")),
        ("csat_sum", "COALESCE(c.csat, 0)".into()),
        ("ces_sent", when("ces_sent", "1")),
        ("ces_responses", when("ces_responses", "1")),
        ("ces_easy", when("ces_easy", "1")),
        ("ces_sum", "COALESCE(c.ces, 0)".into()),
        ("nps_sent", when("nps_sent", "1")),
        ("nps_responses", when("nps_responses", "1")),
        ("nps_promoters", when("nps_promoters", "1")),
        ("nps_detractors", when("nps_detractors", "1")),
    ]
}

/// `INSERT … SELECT` of one conversation's contribution times `$2` into its hour's row.
static JOURNEY_DELTA_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns = journey_contributions();
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let values: Vec<String> = columns.iter().map(|(_, v)| format!("$2 * ({v})")).collect();
    let updates: Vec<String> = names
        .iter()
        .map(|n| format!("{n} = journey_rollup.{n} + excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO journey_rollup (hour, channel, queue_id, {}) \
         SELECT (c.opened_at / {HOUR_MS}) * {HOUR_MS}, COALESCE(c.first_channel, ''), \
         COALESCE(c.first_queue, ''), {} \
         FROM conversation_fact c WHERE c.conversation_id = $1 AND c.automatic = 0 \
         ON CONFLICT (hour, channel, queue_id) DO UPDATE SET {}",
        names.join(", "),
        values.join(", "),
        updates.join(", "),
    )
});

/// Adds `sign` (−1 or +1) times the conversation's current contribution to its hour's
/// row; no change when it has no fact yet or is not a journey. Returns whether it
/// moved a contribution (the conversation has a fact and is a journey).
pub(crate) async fn journey_delta(
    conn: &mut AnyConnection,
    conversation_id: &str,
    sign: i64,
) -> Result<bool> {
    let moved = sqlx::query(sqlx::AssertSqlSafe(JOURNEY_DELTA_SQL.as_str()))
        .bind(conversation_id.to_owned())
        .bind(sign)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(moved > 0)
}

/// Whether the journey and survey figures of `q` can be read from the rollup: whole
/// UTC hours, no filter (a journey's channels, queues and agents are lists), not per
/// agent (the last agent changes), the default FCR window.
pub(crate) fn covers_journeys(q: &FactQuery) -> bool {
    q.channel.is_none()
        && q.queue.is_none()
        && q.agent.is_none()
        && q.by != Some(Dimension::Agent)
        && q.thresholds.fcr_window_ms == ROLLUP_FCR_WINDOW_MS
        && whole_hours(q)
}

/// Whether every bucket of `q` starts and ends on a whole UTC hour.
pub(crate) fn whole_hours(q: &FactQuery) -> bool {
    q.buckets
        .iter()
        .all(|(start, end)| start.rem_euclid(HOUR_MS) == 0 && end.rem_euclid(HOUR_MS) == 0)
}

/// The journey (or, with `surveys`, the survey) figures query over the rollup, with the
/// column names of the raw one; `fcr_unsettled` instead of `fcr_yes` and `fcr_pending`,
/// which [`pending_sql`] splits.
pub(crate) fn journey_figures_sql(q: &FactQuery, surveys: bool) -> Result<Sql> {
    let (start, end) = check_buckets(&q.buckets)?;
    let mut sql = Sql::default();
    let group = match q.by {
        Some(Dimension::Channel) => "r.channel",
        Some(Dimension::Queue) => "r.queue_id",
        _ => "CAST('' AS TEXT)",
    };
    let sums: Vec<String> = journey_contributions()
        .iter()
        .map(|(n, _)| format!("CAST(SUM(r.{n}) AS BIGINT) AS {n}"))
        .collect();
    // The raw path has a cell only where a row is: a journey, or one with a survey.
    let having = if surveys {
        "SUM(r.csat_sent) + SUM(r.ces_sent) + SUM(r.nps_sent) > 0"
    } else {
        "SUM(r.journeys) > 0"
    };
    sql.push(&format!(
        "SELECT {} AS b, {group} AS k, {} FROM journey_rollup r \
         WHERE r.hour >= {start} AND r.hour < {end} GROUP BY b, k HAVING {having}",
        bucket_index("r.hour", &q.buckets),
        sums.join(", "),
    ));
    Ok(sql)
}

/// Unsettled journeys still in their window at `now` (`fcr_pending`) per cell, from the
/// facts: only those resolved within the window before now, found by the index on the
/// first resolution.
pub(crate) fn pending_sql(q: &FactQuery) -> Result<Sql> {
    let (start, end) = check_buckets(&q.buckets)?;
    let th = &q.thresholds;
    let (_, pending) = predicate("fcr_pending", th).expect("known metric");
    let mut sql = Sql::default();
    let f = filters(&mut sql, Family::Journeys, q);
    sql.push(&format!(
        "SELECT {} AS b, {} AS k, CAST(COUNT(*) AS BIGINT) AS n FROM conversation_fact c \
         WHERE c.first_resolved_at >= {} AND c.opened_at >= {start} AND c.opened_at < {end}{f} \
         AND {pending} GROUP BY b, k",
        bucket_index("c.opened_at", &q.buckets),
        Family::Journeys.group(q.by),
        th.now_ms - th.fcr_window_ms,
    ));
    Ok(sql)
}

/// `INSERT … SELECT` filling a rollup from all its facts at once, grouped.
fn fill_sql(
    rollup: &str,
    key: &str,
    from: &str,
    columns: &[(&'static str, String)],
    extra: &str,
) -> String {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let sums: Vec<String> = columns
        .iter()
        .map(|(_, v)| format!("CAST(SUM({v}) AS BIGINT)"))
        .collect();
    format!(
        "INSERT INTO {rollup} (hour, channel, queue_id, {}{}) SELECT {key}, {}{} FROM {from} \
         GROUP BY 1, 2, 3",
        names.join(", "),
        if extra.is_empty() {
            ""
        } else {
            ", queue_ms_max"
        },
        sums.join(", "),
        extra,
    )
}

/// Fills the rollups from the facts when they are empty and the facts are not: a
/// database whose facts predate the rollups (migration `0011`), or one left so by a
/// crash between the two. Runs at every start; costs two lookups when there is nothing
/// to do.
pub(crate) async fn fill_if_empty(pool: &AnyPool, backend: Backend) -> Result<()> {
    let (_, handled) = predicate("handled", &DEFAULT_THRESHOLDS).expect("known metric");
    let task = fill_sql(
        "task_rollup",
        &format!("(t.arrived_at / {HOUR_MS}) * {HOUR_MS}, t.channel, t.queue_id"),
        "task_fact t",
        &contributions(),
        &format!(", MAX(CASE WHEN {handled} THEN t.answered_at - t.arrived_at END)"),
    );
    let journey = fill_sql(
        "journey_rollup",
        &format!(
            "(c.opened_at / {HOUR_MS}) * {HOUR_MS}, COALESCE(c.first_channel, ''), \
             COALESCE(c.first_queue, '')"
        ),
        "conversation_fact c WHERE c.automatic = 0",
        &journey_contributions(),
        "",
    );
    fill_empty(
        pool,
        backend,
        [
            ("task_rollup", "task_fact", task),
            ("journey_rollup", "conversation_fact", journey),
        ],
    )
    .await
}

/// For each `(rollup, facts, fill)`: runs `fill` when `rollup` is empty and `facts` is
/// not, in one transaction.
pub(crate) async fn fill_empty<const N: usize>(
    pool: &AnyPool,
    backend: Backend,
    fills: [(&str, &str, String); N],
) -> Result<()> {
    let mut tx = begin_write(pool, backend).await?;
    for (rollup, facts, fill) in fills {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {rollup} LIMIT 1) r) AS rolled, \
             (SELECT COUNT(*) FROM (SELECT 1 FROM {facts} LIMIT 1) f) AS facts"
        )))
        .fetch_one(&mut *tx)
        .await?;
        if row.int("rolled")? == 0 && row.int("facts")? > 0 {
            sqlx::query(sqlx::AssertSqlSafe(fill))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(buckets: Vec<(i64, i64)>) -> FactQuery {
        FactQuery {
            buckets,
            by: None,
            channel: None,
            queue: None,
            agent: None,
            thresholds: Thresholds {
                short_abandon_ms: ROLLUP_SHORT_ABANDON_MS,
                service_level_ms: ROLLUP_SERVICE_LEVEL_MS,
                fcr_window_ms: 7 * 86_400_000,
                now_ms: 0,
            },
        }
    }

    #[test]
    fn whole_hours_with_default_thresholds_read_the_rollup() {
        let day = 86_400_000;
        assert!(covers(&query(vec![(0, day), (day, 2 * day)])));
        // A zone half an hour off UTC (India): its days start at :30.
        assert!(!covers(&query(vec![(HOUR_MS / 2, day + HOUR_MS / 2)])));
        let mut q = query(vec![(0, day)]);
        q.thresholds.service_level_ms = 30_000;
        assert!(!covers(&q));
        let mut q = query(vec![(0, day)]);
        q.by = Some(Dimension::Agent);
        assert!(!covers(&q));
        let mut q = query(vec![(0, day)]);
        q.agent = Some("a".into());
        assert!(!covers(&q));
        let mut q = query(vec![(0, day)]);
        q.by = Some(Dimension::Queue);
        q.channel = Some("sms".into());
        assert!(covers(&q));
    }

    #[test]
    fn the_delta_counts_with_the_raw_predicates() {
        assert!(DELTA_SQL.contains("t.ended_at - t.arrived_at < 5000"));
        assert!(DELTA_SQL.contains("t.answered_at - t.arrived_at <= 20000"));
        assert!(DELTA_SQL.contains("ON CONFLICT (hour, channel, queue_id)"));
    }
}
