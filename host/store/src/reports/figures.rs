//! Reading the facts: each report's sums, counts, maxima and percentiles per time
//! bucket and group, the stretches of agent time clipped to the buckets, and the rows
//! behind a metric (drill-down). Ratios and averages are the caller's: they divide
//! these numbers as `REPORTS.md` says.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use switchboard_core::reports::nearest_rank;

use crate::Store;
use crate::db::RowExt;
use crate::error::{Result, StoreError};
use crate::reports::facts::SEGMENT_MAX_MS;
use crate::reports::sql::{
    Dimension, FactQuery, Family, Sql, bucket_end, bucket_index, check_buckets, count, filters,
    max_if, predicate, sum_if,
};
use crate::reports::{agent_rollup, rollup};

/// One row of a report: a time bucket (index into the query's buckets) and a group key
/// (`""` when not grouped), with its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell<T> {
    /// Index of the bucket.
    pub bucket: usize,
    /// The channel, queue or agent; `""` when the report is not grouped (or the task
    /// had none).
    pub key: String,
    /// The figures.
    pub figures: T,
}

/// Task figures of one cell (tasks counted in the bucket of their arrival).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskFigures {
    /// Tasks that arrived.
    pub arrived: i64,
    /// Of those, answered by an agent.
    pub handled: i64,
    /// Canceled before an answer because the customer left (short ones included).
    pub abandoned: i64,
    /// Abandoned sooner than the short-abandon threshold.
    pub short_abandoned: i64,
    /// Ended unanswered because the customer called instead.
    pub replaced: i64,
    /// Still waiting for an answer.
    pub waiting: i64,
    /// Answered within the service-level threshold.
    pub answered_in_sl: i64,
    /// Sum of queue times of handled tasks (arrival to answer).
    pub queue_ms_sum: i64,
    /// The longest queue time of a handled task.
    pub queue_ms_max: Option<i64>,
    /// The 90th percentile (nearest rank, whole seconds) of handled tasks' queue times;
    /// `None` per agent.
    pub queue_ms_p90: Option<i64>,
    /// Sum of the waits of abandoned tasks, short ones excluded.
    pub abandon_ms_sum: i64,
    /// Tasks with a first response.
    pub responded: i64,
    /// Sum of first response times (arrival to first agent message; answer for calls).
    pub first_response_ms_sum: i64,
    /// The 90th percentile (nearest rank, whole seconds) of first response times;
    /// `None` per agent.
    pub first_response_ms_p90: Option<i64>,
    /// Handled tasks that ended (their handle time is known).
    pub handled_ended: i64,
    /// Sum of their connected time (talk or chat, hold included).
    pub connected_ms_sum: i64,
    /// Sum of their wrap-up time.
    pub wrap_ms_sum: i64,
    /// Sum of their hold time.
    pub hold_ms_sum: i64,
    /// Tasks transferred at least once.
    pub transferred: i64,
    /// Transfers in all.
    pub transfers: i64,
    /// Hand-offs received (an agent took a transferred task).
    pub handoffs: i64,
    /// Of those, with the hand-off context.
    pub handoffs_context: i64,
    /// Offers rejected or let time out.
    pub missed_offers: i64,
}

/// One agent leg group of one cell and channel (legs counted in the bucket of their
/// assignment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LegFigures {
    /// Legs (an agent taking a task).
    pub legs: i64,
    /// Legs that ended.
    pub ended: i64,
    /// Their handle time (connected plus wrap-up).
    pub handle_ms_sum: i64,
    /// Their handle time weighted by the capacity the task cost (cost × ms).
    pub cost_ms_sum: i64,
    /// Legs that ended in a transfer.
    pub transferred_out: i64,
}

/// Agent time of one cell, clipped to the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentTime {
    /// Available, or holding at least one task.
    pub staffed_ms: i64,
    /// Holding at least one task (assigned or wrapping up).
    pub busy_ms: i64,
    /// Σ time × tasks held (task-time).
    pub task_ms: i64,
    /// Σ time × capacity used.
    pub load_ms: i64,
    /// Σ staffed time × capacity.
    pub capacity_ms: i64,
}

/// Journey figures of one cell (conversations counted in the bucket where they opened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JourneyFigures {
    /// Conversations opened.
    pub journeys: i64,
    /// Resolved now.
    pub resolved: i64,
    /// First contact resolution: yes.
    pub fcr_yes: i64,
    /// First contact resolution: no.
    pub fcr_no: i64,
    /// First contact resolution: window still open.
    pub fcr_pending: i64,
    /// Journeys on two channels or more.
    pub multi_channel: i64,
    /// Channel switches in all.
    pub switches: i64,
    /// Journeys reopened at least once.
    pub reopened: i64,
    /// Sum of resolution times (opening to final resolution) of resolved journeys.
    pub resolution_ms_sum: i64,
    /// The 90th percentile (nearest rank, whole seconds) of resolution times; `None`
    /// per agent.
    pub resolution_ms_p90: Option<i64>,
    /// Hand-offs received.
    pub handoffs: i64,
    /// Of those, with context.
    pub handoffs_context: i64,
    /// Journey arrivals (opened or reopened by the customer), by arrival.
    pub arrivals: i64,
    /// Of those, within the window after one of the customer's resolutions.
    pub repeat_contacts: i64,
}

/// Survey figures of one cell (conversations counted in the bucket where they opened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExperienceFigures {
    /// CSAT surveys sent.
    pub csat_sent: i64,
    /// CSAT answers.
    pub csat_responses: i64,
    /// Sum of CSAT scores (1–5).
    pub csat_sum: i64,
    /// Answers of 4 or 5.
    pub csat_satisfied: i64,
    /// CES surveys sent.
    pub ces_sent: i64,
    /// CES answers.
    pub ces_responses: i64,
    /// Sum of CES scores (1–7).
    pub ces_sum: i64,
    /// Answers of 5 to 7 ("agree").
    pub ces_easy: i64,
    /// NPS surveys sent.
    pub nps_sent: i64,
    /// NPS answers.
    pub nps_responses: i64,
    /// Answers of 9 or 10.
    pub nps_promoters: i64,
    /// Answers of 0 to 6.
    pub nps_detractors: i64,
}

/// One conversation behind a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillRow {
    /// The conversation.
    pub conversation_id: Option<String>,
    /// Its display number (`#1042` without the `#`).
    pub display_id: Option<i64>,
    /// The customer.
    pub contact_id: Option<String>,
    /// The task, for task and leg metrics.
    pub task_id: Option<String>,
    /// The channel (of the task, or the journey's first one).
    pub channel: Option<String>,
    /// The queue.
    pub queue: Option<String>,
    /// The agent (answering agent, leg's agent, or the journey's last agent).
    pub agent: Option<String>,
    /// The instant that put it in the bucket (arrival, assignment, opening).
    pub at: i64,
}

type Cells<T> = BTreeMap<(usize, String), T>;

fn cell_key(row: &AnyRow) -> Result<(usize, String)> {
    Ok((row.int("b")?.max(0) as usize, row.text("k")?))
}

fn into_cells<T>(cells: Cells<T>) -> Vec<Cell<T>> {
    cells
        .into_iter()
        .map(|((bucket, key), figures)| Cell {
            bucket,
            key,
            figures,
        })
        .collect()
}

/// `SELECT <bucket> AS b, <group> AS k, <columns> FROM <family> WHERE <range> <filters>
/// [AND <extra>] GROUP BY b, k`.
fn grouped(q: &FactQuery, family: Family, columns: &[String], extra: Option<&str>) -> Result<Sql> {
    let (start, end) = check_buckets(&q.buckets)?;
    let mut sql = Sql::default();
    let time = family.time();
    let f = filters(&mut sql, family, q);
    sql.push(&format!(
        "SELECT {} AS b, {} AS k, {} FROM {} WHERE {time} >= {start} AND {time} < {end}{f}",
        bucket_index(time, &q.buckets),
        family.group(q.by),
        columns.join(", "),
        family.from(),
    ));
    if let Some(extra) = extra {
        sql.push(&format!(" AND {extra}"));
    }
    sql.push(" GROUP BY b, k");
    Ok(sql)
}

/// The nearest-rank 90th percentile of `value` (ms, rounded up to whole seconds) over
/// rows of `metric`, per cell: the database counts rows per cell and second (one
/// grouping pass, no window sort), the rank is found here. Not computed per agent (the
/// answer is `None` there): a cell per agent and day holds a handful of rows, and the
/// pass would return them all.
async fn p90(
    store: &Store,
    q: &FactQuery,
    metric: &str,
    value: &str,
) -> Result<BTreeMap<(usize, String), i64>> {
    if q.by == Some(Dimension::Agent) {
        return Ok(BTreeMap::new());
    }
    let (start, end) = check_buckets(&q.buckets)?;
    let (family, pred) = predicate(metric, &q.thresholds).expect("known metric");
    let mut sql = Sql::default();
    let time = family.time();
    let f = filters(&mut sql, family, q);
    sql.push(&format!(
        "SELECT b, k, s, CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT {} AS b, {} AS k, \
           CAST(({value} + 999) / 1000 AS BIGINT) AS s FROM {} \
           WHERE {time} >= {start} AND {time} < {end}{f} AND {pred}) x GROUP BY b, k, s",
        bucket_index(time, &q.buckets),
        family.group(q.by),
        family.from(),
    ));
    let rows = sql.query().fetch_all(store.pool()).await?;
    let mut seconds: BTreeMap<(usize, String), Vec<(i64, i64)>> = BTreeMap::new();
    for r in &rows {
        seconds
            .entry(cell_key(r)?)
            .or_default()
            .push((r.int("s")?, r.int("n")?));
    }
    Ok(seconds
        .into_iter()
        .filter_map(|(cell, mut counts)| {
            counts.sort_unstable();
            let total: i64 = counts.iter().map(|c| c.1).sum();
            let rank = nearest_rank(total.max(0) as u64, 90) as i64;
            let mut seen = 0;
            counts.into_iter().find_map(|(s, n)| {
                seen += n;
                (seen >= rank).then_some((cell.clone(), s * 1000))
            })
        })
        .collect())
}

impl Store {
    /// Task figures per bucket (of arrival) and group: from the hourly rollup when the
    /// query allows (`reports::rollup`), else from the task facts; the same numbers.
    pub async fn task_figures(&self, q: &FactQuery) -> Result<Vec<Cell<TaskFigures>>> {
        self.task_figures_via(q, rollup::covers(q)).await
    }

    /// Task figures read from the task facts alone, never the rollup: what the rollup
    /// must agree with (tests and the benchmark compare them).
    pub async fn task_figures_from_facts(&self, q: &FactQuery) -> Result<Vec<Cell<TaskFigures>>> {
        self.task_figures_via(q, false).await
    }

    async fn task_figures_via(
        &self,
        q: &FactQuery,
        rollup: bool,
    ) -> Result<Vec<Cell<TaskFigures>>> {
        let th = &q.thresholds;
        let queue = "t.answered_at - t.arrived_at";
        let columns = vec![
            "CAST(COUNT(*) AS BIGINT) AS arrived".to_string(),
            count("handled", th, "handled"),
            count("abandoned", th, "abandoned"),
            count("short_abandoned", th, "short_abandoned"),
            count("replaced", th, "replaced"),
            count("waiting", th, "waiting"),
            count("answered_in_sl", th, "answered_in_sl"),
            sum_if("handled", th, queue, "queue_ms_sum"),
            max_if("handled", th, queue, "queue_ms_max"),
            sum_if(
                "abandoned_counted",
                th,
                "t.ended_at - t.arrived_at",
                "abandon_ms_sum",
            ),
            count("responded", th, "responded"),
            sum_if(
                "responded",
                th,
                "t.first_response_at - t.arrived_at",
                "first_response_ms_sum",
            ),
            count("handled_ended", th, "handled_ended"),
            sum_if("handled_ended", th, "t.connected_ms", "connected_ms_sum"),
            sum_if("handled_ended", th, "t.wrap_ms", "wrap_ms_sum"),
            sum_if("handled_ended", th, "t.hold_ms", "hold_ms_sum"),
            count("transferred", th, "transferred"),
            "CAST(SUM(t.transfers) AS BIGINT) AS transfers".into(),
            "CAST(SUM(t.handoffs) AS BIGINT) AS handoffs".into(),
            "CAST(SUM(t.handoffs_context) AS BIGINT) AS handoffs_context".into(),
            "CAST(SUM(t.missed_offers) AS BIGINT) AS missed_offers".into(),
        ];
        let sql = if rollup {
            rollup::task_figures_sql(q)?
        } else {
            grouped(q, Family::Tasks, &columns, None)?
        };
        // Three passes over the range, on three connections at once.
        let (rows, queue_p90, response_p90) = tokio::try_join!(
            async { Ok(sql.query().fetch_all(self.pool()).await?) },
            p90(self, q, "handled", queue),
            p90(self, q, "responded", "t.first_response_at - t.arrived_at"),
        )?;
        let mut cells: Cells<TaskFigures> = BTreeMap::new();
        for r in &rows {
            cells.insert(
                cell_key(r)?,
                TaskFigures {
                    arrived: r.int("arrived")?,
                    handled: r.int("handled")?,
                    abandoned: r.int("abandoned")?,
                    short_abandoned: r.int("short_abandoned")?,
                    replaced: r.int("replaced")?,
                    waiting: r.int("waiting")?,
                    answered_in_sl: r.int("answered_in_sl")?,
                    queue_ms_sum: r.int("queue_ms_sum")?,
                    queue_ms_max: r.opt_int("queue_ms_max")?,
                    queue_ms_p90: None,
                    abandon_ms_sum: r.int("abandon_ms_sum")?,
                    responded: r.int("responded")?,
                    first_response_ms_sum: r.int("first_response_ms_sum")?,
                    first_response_ms_p90: None,
                    handled_ended: r.int("handled_ended")?,
                    connected_ms_sum: r.int("connected_ms_sum")?,
                    wrap_ms_sum: r.int("wrap_ms_sum")?,
                    hold_ms_sum: r.int("hold_ms_sum")?,
                    transferred: r.int("transferred")?,
                    transfers: r.int("transfers")?,
                    handoffs: r.int("handoffs")?,
                    handoffs_context: r.int("handoffs_context")?,
                    missed_offers: r.int("missed_offers")?,
                },
            );
        }
        for (key, v) in queue_p90 {
            if let Some(c) = cells.get_mut(&key) {
                c.queue_ms_p90 = Some(v);
            }
        }
        for (key, v) in response_p90 {
            if let Some(c) = cells.get_mut(&key) {
                c.first_response_ms_p90 = Some(v);
            }
        }
        Ok(into_cells(cells))
    }

    /// Agent leg figures per bucket (of assignment), group and channel: the cell's key
    /// is the group, the channel is the second element.
    pub async fn leg_figures(&self, q: &FactQuery) -> Result<Vec<(Cell<LegFigures>, String)>> {
        let th = &q.thresholds;
        let handle = "l.connected_ms + l.wrap_ms";
        let columns = vec![
            "l.channel AS channel".to_string(),
            "CAST(COUNT(*) AS BIGINT) AS legs".into(),
            count("legs_ended", th, "ended"),
            sum_if("legs_ended", th, handle, "handle_ms_sum"),
            sum_if(
                "legs_ended",
                th,
                &format!("l.cost * ({handle})"),
                "cost_ms_sum",
            ),
            count("transferred_out", th, "transferred_out"),
        ];
        let mut sql = grouped(q, Family::Legs, &columns, None)?;
        sql.push(", l.channel");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let (bucket, key) = cell_key(r)?;
                Ok((
                    Cell {
                        bucket,
                        key,
                        figures: LegFigures {
                            legs: r.int("legs")?,
                            ended: r.int("ended")?,
                            handle_ms_sum: r.int("handle_ms_sum")?,
                            cost_ms_sum: r.int("cost_ms_sum")?,
                            transferred_out: r.int("transferred_out")?,
                        },
                    },
                    r.text("channel")?,
                ))
            })
            .collect()
    }

    /// Agent time per bucket and agent (or in all when not grouped by agent): closed
    /// stretches and each agent's current one up to `now`, clipped to the buckets. The
    /// closed ones from the hourly rollup when the query allows
    /// (`reports::agent_rollup`), else from the stretches; the same numbers.
    pub async fn agent_time(&self, q: &FactQuery) -> Result<Vec<Cell<AgentTime>>> {
        self.agent_time_via(q, agent_rollup::covers_agents(q)).await
    }

    /// Agent time from the stretches alone, never the rollup (what it must agree with).
    pub async fn agent_time_from_facts(&self, q: &FactQuery) -> Result<Vec<Cell<AgentTime>>> {
        self.agent_time_via(q, false).await
    }

    async fn agent_time_via(&self, q: &FactQuery, rollup: bool) -> Result<Vec<Cell<AgentTime>>> {
        let (start, end) = check_buckets(&q.buckets)?;
        let by_agent = q.by == Some(Dimension::Agent);
        let group = if by_agent {
            "s.agent_id"
        } else {
            "CAST('' AS TEXT)"
        };
        let mut cells: Cells<AgentTime> = BTreeMap::new();
        let agent_filter = |sql: &mut Sql| match &q.agent {
            Some(a) => format!(" AND s.agent_id = {}", sql.bind(a)),
            None => String::new(),
        };
        // Stretches inside one bucket: summed by the database (or, per hour, by the
        // rollup, which holds every closed stretch cut at the hours).
        let mut inside = Sql::default();
        if rollup {
            inside = agent_rollup::agent_time_sql(q)?;
        } else {
            let f = agent_filter(&mut inside);
            let dur = "(s.end_at - s.start_at)";
            inside.push(&format!(
                "SELECT {} AS b, {group} AS k, \
                 CAST(SUM({dur}) AS BIGINT) AS staffed, \
                 CAST(SUM(CASE WHEN s.tasks > 0 THEN {dur} ELSE 0 END) AS BIGINT) AS busy, \
                 CAST(SUM({dur} * s.tasks) AS BIGINT) AS task_ms, \
                 CAST(SUM({dur} * s.load) AS BIGINT) AS load_ms, \
                 CAST(SUM({dur} * s.capacity) AS BIGINT) AS capacity_ms \
                 FROM agent_segment s WHERE s.start_at >= {start} AND s.end_at <= {} {f} \
                 GROUP BY b, k",
                bucket_index("s.start_at", &q.buckets),
                bucket_end("s.start_at", &q.buckets),
            ));
        }
        // Stretches across a bucket edge (none from the rollup), and the current ones:
        // clipped below. No stretch is longer than a day (they are cut at each UTC
        // midnight when written), so the ones that end in the range started at most a
        // day before it.
        let mut across = Sql::default();
        let f = agent_filter(&mut across);
        let now = q.thresholds.now_ms;
        if !rollup {
            across.push(&format!(
                "SELECT s.agent_id, s.start_at, s.end_at, s.presence, s.tasks, s.load, s.capacity \
                 FROM agent_segment s WHERE s.start_at < {end} AND s.start_at > {} \
                 AND s.end_at > {start} AND NOT (s.start_at >= {start} AND s.end_at <= {}) {f} \
                 UNION ALL ",
                start - SEGMENT_MAX_MS,
                bucket_end("s.start_at", &q.buckets),
            ));
        }
        across.push(&format!(
            "SELECT s.agent_id, s.since AS start_at, {now} AS end_at, s.presence, \
             s.tasks, s.load, s.capacity FROM agent_state s WHERE s.since < {end} \
             AND s.since < {now} AND (s.presence = 'available' OR s.tasks > 0) {f}",
        ));
        // `s.end_at <= bucket_end(start)` keeps a stretch inside its bucket (and the range).
        let (inside, across) = tokio::try_join!(
            inside.query().fetch_all(self.pool()),
            across.query().fetch_all(self.pool()),
        )?;
        for r in inside {
            let c = cells.entry(cell_key(&r)?).or_default();
            c.staffed_ms += r.int("staffed")?;
            c.busy_ms += r.int("busy")?;
            c.task_ms += r.int("task_ms")?;
            c.load_ms += r.int("load_ms")?;
            c.capacity_ms += r.int("capacity_ms")?;
        }
        for r in across {
            let (s0, s1) = (r.int("start_at")?, r.int("end_at")?);
            let tasks = r.int("tasks")?;
            let (load, capacity) = (r.int("load")?, r.int("capacity")?);
            let key = if by_agent {
                r.text("agent_id")?
            } else {
                String::new()
            };
            for (i, (b0, b1)) in q.buckets.iter().enumerate() {
                let d = s1.min(*b1) - s0.max(*b0);
                if d <= 0 {
                    continue;
                }
                let c = cells.entry((i, key.clone())).or_default();
                c.staffed_ms += d;
                if tasks > 0 {
                    c.busy_ms += d;
                }
                c.task_ms += d * tasks;
                c.load_ms += d * load;
                c.capacity_ms += d * capacity;
            }
        }
        Ok(into_cells(cells))
    }

    /// Journey figures per bucket (of opening; arrivals by their own instant) and group:
    /// the journey counts from the hourly rollup when the query allows
    /// (`reports::rollup`), else from the facts; the same numbers.
    pub async fn journey_figures(&self, q: &FactQuery) -> Result<Vec<Cell<JourneyFigures>>> {
        self.journey_figures_via(q, rollup::covers_journeys(q))
            .await
    }

    /// Journey figures from the facts alone, never the rollup (what it must agree with).
    pub async fn journey_figures_from_facts(
        &self,
        q: &FactQuery,
    ) -> Result<Vec<Cell<JourneyFigures>>> {
        self.journey_figures_via(q, false).await
    }

    async fn journey_figures_via(
        &self,
        q: &FactQuery,
        rollup: bool,
    ) -> Result<Vec<Cell<JourneyFigures>>> {
        let th = &q.thresholds;
        let resolution = "c.resolved_at - c.opened_at";
        let columns = vec![
            "CAST(COUNT(*) AS BIGINT) AS journeys".to_string(),
            count("resolved", th, "resolved"),
            count("fcr_yes", th, "fcr_yes"),
            count("fcr_no", th, "fcr_no"),
            count("fcr_pending", th, "fcr_pending"),
            count("multi_channel", th, "multi_channel"),
            "CAST(SUM(c.channel_switches) AS BIGINT) AS switches".into(),
            count("reopened", th, "reopened"),
            sum_if("resolved", th, resolution, "resolution_ms_sum"),
            "CAST(SUM(c.handoffs) AS BIGINT) AS handoffs".into(),
            "CAST(SUM(c.handoffs_context) AS BIGINT) AS handoffs_context".into(),
        ];
        let sql = if rollup {
            rollup::journey_figures_sql(q, false)?
        } else {
            grouped(q, Family::Journeys, &columns, None)?
        };
        let arrival_columns = vec![
            "CAST(COUNT(*) AS BIGINT) AS arrivals".to_string(),
            count("repeat_contacts", th, "repeat_contacts"),
        ];
        let arrival_sql = grouped(q, Family::Arrivals, &arrival_columns, None)?;
        let pending_sql = if rollup {
            Some(rollup::pending_sql(q)?)
        } else {
            None
        };
        let (rows, resolution_p90, arrivals, pending) = tokio::try_join!(
            async { Ok(sql.query().fetch_all(self.pool()).await?) },
            p90(self, q, "resolved", resolution),
            async { Ok(arrival_sql.query().fetch_all(self.pool()).await?) },
            async {
                match &pending_sql {
                    Some(sql) => Ok(sql.query().fetch_all(self.pool()).await?),
                    None => Ok(Vec::new()),
                }
            },
        )?;
        // The rollup counts first contact resolutions not settled `no`; those still in
        // their window at now are pending, the rest `yes`.
        let mut pending_by_cell = BTreeMap::new();
        for r in &pending {
            pending_by_cell.insert(cell_key(r)?, r.int("n")?);
        }
        let mut cells: Cells<JourneyFigures> = BTreeMap::new();
        for r in rows {
            let key = cell_key(&r)?;
            let (fcr_yes, fcr_pending) = if rollup {
                let pending = pending_by_cell.get(&key).copied().unwrap_or(0);
                (r.int("fcr_unsettled")? - pending, pending)
            } else {
                (r.int("fcr_yes")?, r.int("fcr_pending")?)
            };
            cells.insert(
                key,
                JourneyFigures {
                    journeys: r.int("journeys")?,
                    resolved: r.int("resolved")?,
                    fcr_yes,
                    fcr_no: r.int("fcr_no")?,
                    fcr_pending,
                    multi_channel: r.int("multi_channel")?,
                    switches: r.int("switches")?,
                    reopened: r.int("reopened")?,
                    resolution_ms_sum: r.int("resolution_ms_sum")?,
                    handoffs: r.int("handoffs")?,
                    handoffs_context: r.int("handoffs_context")?,
                    ..JourneyFigures::default()
                },
            );
        }
        for (key, v) in resolution_p90 {
            if let Some(c) = cells.get_mut(&key) {
                c.resolution_ms_p90 = Some(v);
            }
        }
        for r in arrivals {
            let c = cells.entry(cell_key(&r)?).or_default();
            c.arrivals = r.int("arrivals")?;
            c.repeat_contacts = r.int("repeat_contacts")?;
        }
        Ok(into_cells(cells))
    }

    /// Survey figures per bucket (of opening) and group: from the hourly rollup when the
    /// query allows (`reports::rollup`), else from the facts; the same numbers.
    pub async fn experience_figures(&self, q: &FactQuery) -> Result<Vec<Cell<ExperienceFigures>>> {
        self.experience_figures_via(q, rollup::covers_journeys(q))
            .await
    }

    /// Survey figures from the facts alone, never the rollup (what it must agree with).
    pub async fn experience_figures_from_facts(
        &self,
        q: &FactQuery,
    ) -> Result<Vec<Cell<ExperienceFigures>>> {
        self.experience_figures_via(q, false).await
    }

    async fn experience_figures_via(
        &self,
        q: &FactQuery,
        rollup: bool,
    ) -> Result<Vec<Cell<ExperienceFigures>>> {
        let th = &q.thresholds;
        let names = [
            "csat_sent",
            "csat_responses",
            "csat_satisfied",
            "ces_sent",
            "ces_responses",
            "ces_easy",
            "nps_sent",
            "nps_responses",
            "nps_promoters",
            "nps_detractors",
        ];
        let mut columns: Vec<String> = names.iter().map(|n| count(n, th, n)).collect();
        columns.push("CAST(SUM(COALESCE(c.csat, 0)) AS BIGINT) AS csat_sum".into());
        columns.push("CAST(SUM(COALESCE(c.ces, 0)) AS BIGINT) AS ces_sum".into());
        let sql = if rollup {
            rollup::journey_figures_sql(q, true)?
        } else {
            grouped(
                q,
                Family::Journeys,
                &columns,
                Some(
                    "(c.csat_sent_at IS NOT NULL OR c.ces_sent_at IS NOT NULL OR c.nps_sent_at IS NOT NULL)",
                ),
            )?
        };
        let mut cells: Cells<ExperienceFigures> = BTreeMap::new();
        for r in sql.query().fetch_all(self.pool()).await? {
            cells.insert(
                cell_key(&r)?,
                ExperienceFigures {
                    csat_sent: r.int("csat_sent")?,
                    csat_responses: r.int("csat_responses")?,
                    csat_sum: r.int("csat_sum")?,
                    csat_satisfied: r.int("csat_satisfied")?,
                    ces_sent: r.int("ces_sent")?,
                    ces_responses: r.int("ces_responses")?,
                    ces_sum: r.int("ces_sum")?,
                    ces_easy: r.int("ces_easy")?,
                    nps_sent: r.int("nps_sent")?,
                    nps_responses: r.int("nps_responses")?,
                    nps_promoters: r.int("nps_promoters")?,
                    nps_detractors: r.int("nps_detractors")?,
                },
            );
        }
        Ok(into_cells(cells))
    }

    /// The conversations behind `metric` in the query's range (one bucket, usually)
    /// and filters, and in group `key` of `q.by` when given; at most `limit`, oldest
    /// first. [`StoreError::Invalid`] for a metric with no list behind it.
    pub async fn drill(
        &self,
        q: &FactQuery,
        metric: &str,
        key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DrillRow>> {
        let (start, end) = check_buckets(&q.buckets)?;
        let Some((family, pred)) = predicate(metric, &q.thresholds) else {
            return Err(StoreError::Invalid(format!(
                "unknown metric {metric:?}; one of: {}",
                crate::reports::sql::DRILL_METRICS.join(", ")
            )));
        };
        let mut sql = Sql::default();
        let time = family.time();
        let f = filters(&mut sql, family, q);
        let k = match (key, q.by) {
            (Some(key), Some(_)) => format!(" AND {} = {}", family.group(q.by), sql.bind(key)),
            _ => String::new(),
        };
        let columns = match family {
            Family::Tasks => {
                "t.conversation_id, t.contact_id, t.task_id, t.channel, t.queue_id AS queue, \
                 t.agent_id AS agent, t.arrived_at AS at"
            }
            Family::Legs => {
                "l.conversation_id, CAST(NULL AS TEXT) AS contact_id, l.task_id, l.channel, \
                 l.queue_id AS queue, l.agent_id AS agent, l.assigned_at AS at"
            }
            Family::Journeys => {
                "c.conversation_id, c.contact_id, CAST(NULL AS TEXT) AS task_id, \
                 c.first_channel AS channel, c.first_queue AS queue, c.last_agent_id AS agent, \
                 c.opened_at AS at"
            }
            Family::Arrivals => {
                "c.conversation_id, c.contact_id, CAST(NULL AS TEXT) AS task_id, \
                 a.channel AS channel, c.first_queue AS queue, c.last_agent_id AS agent, a.at AS at"
            }
        };
        sql.push(&format!(
            "SELECT d.*, v.display_id FROM (SELECT {columns} FROM {} \
             WHERE {time} >= {start} AND {time} < {end}{f}{k} AND {pred}) d \
             LEFT JOIN conversation v ON v.id = d.conversation_id \
             ORDER BY d.at, d.conversation_id LIMIT {}",
            family.from(),
            limit.clamp(1, 10_000)
        ));
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(DrillRow {
                    conversation_id: r.opt_text("conversation_id")?,
                    display_id: r.opt_int("display_id")?,
                    contact_id: r.opt_text("contact_id")?,
                    task_id: r.opt_text("task_id")?,
                    channel: r.opt_text("channel")?,
                    queue: r.opt_text("queue")?,
                    agent: r.opt_text("agent")?,
                    at: r.int("at")?,
                })
            })
            .collect()
    }
}
