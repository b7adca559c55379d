//! The SQL every report, drill-down and export shares: where each family of facts is
//! read from, how its rows are cut into time buckets and groups, how the filters apply,
//! and the predicate of every countable metric. A cell's number and the list of
//! conversations behind it come from the same predicate text, so they cannot disagree.
//!
//! Only validated integers (instants, thresholds) are written into the text; every
//! string a caller gives is a bind parameter.

use crate::error::{Result, StoreError};

/// What a report covers and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactQuery {
    /// Contiguous time buckets `[start, end)`, ms since the epoch, in order.
    pub buckets: Vec<(i64, i64)>,
    /// Rows per channel, queue or agent as well as per bucket.
    pub by: Option<Dimension>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// The thresholds and the instant the report is made at.
    pub thresholds: Thresholds,
}

/// A report's thresholds, and the instant it is made at (first contact resolution
/// and open stretches depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Abandons shorter than this are short abandons.
    pub short_abandon_ms: i64,
    /// The service level's threshold.
    pub service_level_ms: i64,
    /// First contact resolution's and repeat contacts' window.
    pub fcr_window_ms: i64,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

/// What rows are grouped by besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The channel.
    Channel,
    /// The queue.
    Queue,
    /// The agent.
    Agent,
}

impl Dimension {
    /// `channel`, `queue` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Channel => "channel",
            Dimension::Queue => "queue",
            Dimension::Agent => "agent",
        }
    }
}

/// The families of facts a metric is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `task_fact t`, by arrival.
    Tasks,
    /// `task_leg l`, by assignment.
    Legs,
    /// `conversation_fact c`, by opening.
    Journeys,
    /// `journey_arrival a` with its conversation, by arrival.
    Arrivals,
}

impl Family {
    pub(crate) fn from(self) -> &'static str {
        match self {
            Family::Tasks => "task_fact t",
            Family::Legs => "task_leg l",
            Family::Journeys => "conversation_fact c",
            Family::Arrivals => {
                "journey_arrival a JOIN conversation_fact c ON c.conversation_id = a.conversation_id"
            }
        }
    }

    pub(crate) fn time(self) -> &'static str {
        match self {
            Family::Tasks => "t.arrived_at",
            Family::Legs => "l.assigned_at",
            Family::Journeys => "c.opened_at",
            Family::Arrivals => "a.at",
        }
    }

    /// The group key of a row.
    pub(crate) fn group(self, by: Option<Dimension>) -> &'static str {
        match (self, by) {
            (_, None) => "CAST('' AS TEXT)",
            (Family::Tasks, Some(Dimension::Channel)) => "t.channel",
            (Family::Tasks, Some(Dimension::Queue)) => "t.queue_id",
            (Family::Tasks, Some(Dimension::Agent)) => "COALESCE(t.agent_id, '')",
            (Family::Legs, Some(Dimension::Channel)) => "l.channel",
            (Family::Legs, Some(Dimension::Queue)) => "l.queue_id",
            (Family::Legs, Some(Dimension::Agent)) => "l.agent_id",
            (Family::Journeys, Some(Dimension::Channel)) => "COALESCE(c.first_channel, '')",
            (Family::Journeys | Family::Arrivals, Some(Dimension::Queue)) => {
                "COALESCE(c.first_queue, '')"
            }
            (Family::Journeys | Family::Arrivals, Some(Dimension::Agent)) => {
                "COALESCE(c.last_agent_id, '')"
            }
            (Family::Arrivals, Some(Dimension::Channel)) => "COALESCE(a.channel, '')",
        }
    }

    /// What every row of the family must satisfy.
    fn base(self) -> &'static str {
        match self {
            Family::Tasks | Family::Legs => "1 = 1",
            Family::Journeys | Family::Arrivals => "c.automatic = 0",
        }
    }
}

/// SQL text with its (text) bind values.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<String>,
}

impl Sql {
    /// A placeholder for `value`.
    pub(crate) fn bind(&mut self, value: &str) -> String {
        self.binds.push(value.to_owned());
        format!("${}", self.binds.len())
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.as_str()));
        for b in &self.binds {
            q = q.bind(b.clone());
        }
        q
    }
}

/// Checks that buckets are contiguous and non-empty.
pub(crate) fn check_buckets(buckets: &[(i64, i64)]) -> Result<(i64, i64)> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Err(StoreError::Invalid("a report needs a time range".into()));
    };
    if buckets.windows(2).any(|w| w[0].1 != w[1].0) || buckets.iter().any(|b| b.0 >= b.1) {
        return Err(StoreError::Invalid(
            "report buckets must be contiguous".into(),
        ));
    }
    Ok((first.0, last.1))
}

/// The 0-based bucket of instant `col` (which the range filter keeps within them).
pub(crate) fn bucket_index(col: &str, buckets: &[(i64, i64)]) -> String {
    if buckets.len() <= 1 {
        return "CAST(0 AS BIGINT)".into();
    }
    let mut s = String::from("CAST(CASE");
    for (i, (_, end)) in buckets.iter().enumerate().take(buckets.len() - 1) {
        s.push_str(&format!(" WHEN {col} < {end} THEN {i}"));
    }
    s.push_str(&format!(" ELSE {} END AS BIGINT)", buckets.len() - 1));
    s
}

/// The end of the bucket holding instant `col`.
pub(crate) fn bucket_end(col: &str, buckets: &[(i64, i64)]) -> String {
    if buckets.len() <= 1 {
        return buckets.last().map_or(0, |b| b.1).to_string();
    }
    let mut s = String::from("CASE");
    for (_, end) in buckets.iter().take(buckets.len().saturating_sub(1)) {
        s.push_str(&format!(" WHEN {col} < {end} THEN {end}"));
    }
    s.push_str(&format!(" ELSE {} END", buckets.last().map_or(0, |b| b.1)));
    s
}

/// ` AND …` for the query's filters on a family, binding the values.
pub(crate) fn filters(sql: &mut Sql, family: Family, q: &FactQuery) -> String {
    let mut out = format!(" AND {}", family.base());
    if let Some(channel) = &q.channel {
        let p = sql.bind(channel);
        out.push_str(&match family {
            Family::Tasks => format!(" AND t.channel = {p}"),
            Family::Legs => format!(" AND l.channel = {p}"),
            Family::Journeys => format!(" AND c.channels LIKE '%,' || {p} || ',%'"),
            Family::Arrivals => format!(" AND a.channel = {p}"),
        });
    }
    if let Some(queue) = &q.queue {
        let p = sql.bind(queue);
        out.push_str(&match family {
            Family::Tasks => format!(" AND t.queue_id = {p}"),
            Family::Legs => format!(" AND l.queue_id = {p}"),
            Family::Journeys | Family::Arrivals => format!(
                " AND EXISTS (SELECT 1 FROM task_fact q WHERE q.conversation_id = c.conversation_id \
                 AND q.queue_id = {p})"
            ),
        });
    }
    if let Some(agent) = &q.agent {
        let p = sql.bind(agent);
        out.push_str(&match family {
            Family::Tasks => format!(
                " AND EXISTS (SELECT 1 FROM task_leg g WHERE g.task_id = t.task_id AND g.agent_id = {p})"
            ),
            Family::Legs => format!(" AND l.agent_id = {p}"),
            Family::Journeys | Family::Arrivals => {
                format!(" AND c.agents LIKE '%,' || {p} || ',%'")
            }
        });
    }
    out
}

/// The countable metrics: name, family, predicate. Drill-downs accept these names.
pub(crate) fn predicate(metric: &str, th: &Thresholds) -> Option<(Family, String)> {
    let short = th.short_abandon_ms;
    let sl = th.service_level_ms;
    let window = th.fcr_window_ms;
    let now = th.now_ms;
    let no = format!(
        "(c.first_resolved_at IS NOT NULL AND c.next_contact_at IS NOT NULL \
         AND c.next_contact_at <= c.first_resolved_at + {window})"
    );
    let unsettled = format!(
        "c.first_resolved_at IS NOT NULL AND (c.next_contact_at IS NULL \
         OR c.next_contact_at > c.first_resolved_at + {window})"
    );
    let (family, text) = match metric {
        "arrived" => (Family::Tasks, "1 = 1".to_string()),
        "handled" => (Family::Tasks, "t.answered_at IS NOT NULL".into()),
        "abandoned" => (Family::Tasks, "t.outcome = 'abandoned'".into()),
        "short_abandoned" => (
            Family::Tasks,
            format!("t.outcome = 'abandoned' AND t.ended_at - t.arrived_at < {short}"),
        ),
        "abandoned_counted" => (
            Family::Tasks,
            format!("t.outcome = 'abandoned' AND t.ended_at - t.arrived_at >= {short}"),
        ),
        "replaced" => (Family::Tasks, "t.outcome = 'replaced'".into()),
        "waiting" => (
            Family::Tasks,
            "t.answered_at IS NULL AND t.ended_at IS NULL".into(),
        ),
        "answered_in_sl" => (
            Family::Tasks,
            format!("t.answered_at IS NOT NULL AND t.answered_at - t.arrived_at <= {sl}"),
        ),
        "answered_late" => (
            Family::Tasks,
            format!("t.answered_at IS NOT NULL AND t.answered_at - t.arrived_at > {sl}"),
        ),
        "responded" => (Family::Tasks, "t.first_response_at IS NOT NULL".into()),
        "handled_ended" => (
            Family::Tasks,
            "t.answered_at IS NOT NULL AND t.ended_at IS NOT NULL".into(),
        ),
        "transferred" => (Family::Tasks, "t.transfers > 0".into()),
        "handoffs" => (Family::Tasks, "t.handoffs > 0".into()),
        "handoffs_without_context" => (Family::Tasks, "t.handoffs > t.handoffs_context".into()),
        "missed_offers" => (Family::Tasks, "t.missed_offers > 0".into()),
        "legs" => (Family::Legs, "1 = 1".into()),
        "legs_ended" => (Family::Legs, "l.ended_at IS NOT NULL".into()),
        "transferred_out" => (Family::Legs, "l.outcome = 'transferred'".into()),
        "journeys" => (Family::Journeys, "1 = 1".into()),
        "resolved" => (Family::Journeys, "c.resolved_at IS NOT NULL".into()),
        "unresolved" => (Family::Journeys, "c.resolved_at IS NULL".into()),
        "fcr_no" => (Family::Journeys, no),
        // Resolved and not settled `no`: `yes` or `pending` depending on now. Not a
        // drill-down metric; the rollup counts it.
        "fcr_unsettled" => (Family::Journeys, unsettled.clone()),
        "fcr_yes" => (
            Family::Journeys,
            format!("{unsettled} AND {now} > c.first_resolved_at + {window}"),
        ),
        "fcr_pending" => (
            Family::Journeys,
            format!("{unsettled} AND {now} <= c.first_resolved_at + {window}"),
        ),
        "multi_channel" => (Family::Journeys, "c.channel_count >= 2".into()),
        "switched" => (Family::Journeys, "c.channel_switches > 0".into()),
        "reopened" => (Family::Journeys, "c.reopens > 0".into()),
        "journey_handoffs" => (Family::Journeys, "c.handoffs > 0".into()),
        "arrivals" => (Family::Arrivals, "1 = 1".into()),
        "repeat_contacts" => (
            Family::Arrivals,
            format!("a.prev_resolved_at IS NOT NULL AND a.at - a.prev_resolved_at <= {window}"),
        ),
        "csat_sent" => (Family::Journeys, "c.csat_sent_at IS NOT NULL".into()),
        "csat_responses" => (Family::Journeys, "c.csat IS NOT NULL".into()),
        "csat_satisfied" => (Family::Journeys, "c.csat >= 4".into()),
        "ces_sent" => (Family::Journeys, "c.ces_sent_at IS NOT NULL".into()),
        "ces_responses" => (Family::Journeys, "c.ces IS NOT NULL".into()),
        "ces_easy" => (Family::Journeys, "c.ces >= 5".into()),
        "nps_sent" => (Family::Journeys, "c.nps_sent_at IS NOT NULL".into()),
        "nps_responses" => (Family::Journeys, "c.nps IS NOT NULL".into()),
        "nps_promoters" => (Family::Journeys, "c.nps >= 9".into()),
        "nps_detractors" => (Family::Journeys, "c.nps <= 6".into()),
        _ => return None,
    };
    Some((family, text))
}

/// Every metric name [`predicate`] knows, for error messages and the API document.
pub const DRILL_METRICS: &[&str] = &[
    "arrived",
    "handled",
    "abandoned",
    "short_abandoned",
    "abandoned_counted",
    "replaced",
    "waiting",
    "answered_in_sl",
    "answered_late",
    "responded",
    "handled_ended",
    "transferred",
    "handoffs",
    "handoffs_without_context",
    "missed_offers",
    "legs",
    "legs_ended",
    "transferred_out",
    "journeys",
    "resolved",
    "unresolved",
    "fcr_yes",
    "fcr_no",
    "fcr_pending",
    "multi_channel",
    "switched",
    "reopened",
    "journey_handoffs",
    "arrivals",
    "repeat_contacts",
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

/// `CAST(SUM(CASE WHEN <metric> THEN 1 ELSE 0 END) AS BIGINT) AS <alias>`.
pub(crate) fn count(metric: &str, th: &Thresholds, alias: &str) -> String {
    let (_, p) = predicate(metric, th).expect("known metric");
    format!("CAST(SUM(CASE WHEN {p} THEN 1 ELSE 0 END) AS BIGINT) AS {alias}")
}

/// `CAST(SUM(CASE WHEN <metric> THEN <value> ELSE 0 END) AS BIGINT) AS <alias>`.
pub(crate) fn sum_if(metric: &str, th: &Thresholds, value: &str, alias: &str) -> String {
    let (_, p) = predicate(metric, th).expect("known metric");
    format!("CAST(SUM(CASE WHEN {p} THEN {value} ELSE 0 END) AS BIGINT) AS {alias}")
}

/// `CAST(MAX(CASE WHEN <metric> THEN <value> END) AS BIGINT) AS <alias>`.
pub(crate) fn max_if(metric: &str, th: &Thresholds, value: &str, alias: &str) -> String {
    let (_, p) = predicate(metric, th).expect("known metric");
    format!("CAST(MAX(CASE WHEN {p} THEN {value} END) AS BIGINT) AS {alias}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_metric_has_a_predicate() {
        let th = Thresholds {
            short_abandon_ms: 5000,
            service_level_ms: 20000,
            fcr_window_ms: 1,
            now_ms: 2,
        };
        for m in DRILL_METRICS {
            assert!(predicate(m, &th).is_some(), "{m}");
        }
        assert!(predicate("nonsense", &th).is_none());
    }

    #[test]
    fn buckets_become_case_expressions() {
        let b = [(0, 10), (10, 20), (20, 30)];
        assert_eq!(check_buckets(&b).unwrap(), (0, 30));
        assert_eq!(
            bucket_index("x", &b),
            "CAST(CASE WHEN x < 10 THEN 0 WHEN x < 20 THEN 1 ELSE 2 END AS BIGINT)"
        );
        assert_eq!(
            bucket_end("x", &b),
            "CASE WHEN x < 10 THEN 10 WHEN x < 20 THEN 20 ELSE 30 END"
        );
        assert_eq!(bucket_end("x", &[(0, 10)]), "10");
        assert!(check_buckets(&[(0, 10), (11, 20)]).is_err());
        assert!(check_buckets(&[]).is_err());
    }
}
