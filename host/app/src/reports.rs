//! Reports: the metrics of `REPORTS.md`, per day, ISO week or month of the operator's
//! time zone, per channel, queue or agent, as JSON rows or CSV; the conversations behind
//! any counted number (drill-down); and the one-row-per-conversation export.
//!
//! The store sums, counts and ranks the facts; this module turns the operator's dates
//! into instants, divides as the definitions say, names the columns once for both JSON
//! and CSV, and fills the cells nothing happened in, so a day-by-day table has every
//! day. Only supervisors and admins reach it (the edge checks the role).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use switchboard_core::reports::{
    Bucket, DAY_MS, DEFAULT_FCR_WINDOW_DAYS, DEFAULT_SERVICE_LEVEL_MS, DEFAULT_SHORT_ABANDON_MS,
    Period, ReportDate, ReportZone, buckets, fcr_state, ratio,
};
use switchboard_store::{
    AgentTime, Cell, ConversationExportRow, Dimension, DrillRow, ExperienceFigures, FactQuery,
    JourneyFigures, LegFigures, Store, StoreError, TaskFigures, Thresholds,
};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::error::{AppError, AppResult};

/// The operator's report settings.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The time zone days, weeks and months are counted in.
    pub zone: ReportZone,
    /// Default short-abandon threshold.
    pub short_abandon_ms: i64,
    /// Default service-level threshold.
    pub service_level_ms: i64,
    /// Default first contact resolution window, in days.
    pub fcr_window_days: i64,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        ReportConfig {
            zone: ReportZone::utc(),
            short_abandon_ms: DEFAULT_SHORT_ABANDON_MS,
            service_level_ms: DEFAULT_SERVICE_LEVEL_MS,
            fcr_window_days: DEFAULT_FCR_WINDOW_DAYS,
        }
    }
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Tasks: arrivals, handling, abandons, service level, queue and handle times.
    Operations,
    /// Agents: occupancy, concurrency, utilization, handle time per agent.
    Agents,
    /// Journeys: first contact resolution, repeats, channel switches, resolution time.
    Journeys,
    /// Surveys: CSAT, CES, NPS and response rates.
    Experience,
}

impl ReportKind {
    /// `operations`, `agents`, `journeys` or `experience`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Operations => "operations",
            ReportKind::Agents => "agents",
            ReportKind::Journeys => "journeys",
            ReportKind::Experience => "experience",
        }
    }
}

/// A report request as the API receives it (every field optional but the dates).
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    /// First local date, `YYYY-MM-DD`.
    pub from: String,
    /// Last local date (included).
    pub to: String,
    /// `day` (default), `week`, `month` or `total`.
    pub group_by: Option<String>,
    /// `channel`, `queue` or `agent`.
    pub by: Option<String>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Short-abandon threshold in seconds.
    pub short_abandon_secs: Option<u64>,
    /// Service-level threshold in seconds.
    pub service_level_secs: Option<u64>,
    /// First contact resolution window in days.
    pub fcr_days: Option<u64>,
}

/// A report: its columns (in CSV order) and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTable {
    /// Which report.
    pub kind: ReportKind,
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows, each a value per column.
    pub rows: Vec<Vec<Value>>,
    /// What it was asked with, for the JSON answer.
    pub meta: Value,
}

impl ReportTable {
    /// `{report, …meta, columns, rows: [{column: value}]}`.
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (c, v) in self.columns.iter().zip(r) {
                    m.insert((*c).to_string(), v.clone());
                }
                Value::Object(m)
            })
            .collect();
        let mut out = json!({"report": self.kind.as_str(), "columns": self.columns, "rows": rows});
        if let (Some(o), Some(meta)) = (out.as_object_mut(), self.meta.as_object()) {
            for (k, v) in meta {
                o.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// The table as CSV: a header line, then one line per row.
    pub fn to_csv(&self) -> String {
        let mut out = csv_line(self.columns.iter().map(|c| Value::from(*c)));
        for r in &self.rows {
            out.push_str(&csv_line(r.iter().cloned()));
        }
        out
    }
}

/// One CSV field: numbers as they are, text quoted when needed, and a leading `=`, `+`,
/// `-`, `@`, tab or carriage return defused with `'` (a spreadsheet would run it).
pub fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::Number(n) => return n.to_string(),
        Value::Bool(b) => return b.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_line(values: impl Iterator<Item = Value>) -> String {
    let mut line = values.map(|v| csv_field(&v)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// A parsed request: the store's query and the buckets' calendar.
struct Plan {
    query: FactQuery,
    buckets: Vec<Bucket>,
    period: Period,
}

fn avg(sum: i64, n: i64) -> Value {
    match n {
        0 => Value::Null,
        n => json!((sum as f64 / n as f64).round() as i64),
    }
}

fn avg_f(sum: i64, n: i64) -> Value {
    json!(ratio(sum, n))
}

fn rate(num: i64, den: i64) -> Value {
    json!(ratio(num, den))
}

fn bad(e: impl std::fmt::Display) -> AppError {
    AppError::bad_request(e.to_string())
}

fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Invalid(m) => AppError::bad_request(m),
        other => other.into(),
    }
}

/// The reports use case.
pub struct Reports {
    store: Store,
    config: ReportConfig,
    clock: Clock,
}

impl Reports {
    /// Reports over the store with these settings, made as of `clock`'s now.
    pub fn new(store: Store, config: ReportConfig, clock: Clock) -> Reports {
        Reports {
            store,
            config,
            clock,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ReportConfig {
        &self.config
    }

    fn plan(&self, r: &ReportRequest) -> AppResult<Plan> {
        let from: ReportDate = r.from.trim().parse().map_err(bad)?;
        let to: ReportDate = r.to.trim().parse().map_err(bad)?;
        let period: Period = r
            .group_by
            .as_deref()
            .unwrap_or("day")
            .parse()
            .map_err(bad)?;
        let by = match r.by.as_deref() {
            None | Some("") => None,
            Some("channel") => Some(Dimension::Channel),
            Some("queue") => Some(Dimension::Queue),
            Some("agent") => Some(Dimension::Agent),
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "by must be channel, queue or agent, not {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        let buckets = buckets(&self.config.zone, from, to, period).map_err(bad)?;
        let secs = |v: Option<u64>, default: i64, what: &str| -> AppResult<i64> {
            match v {
                None => Ok(default),
                Some(s) if s <= 86_400 => Ok(s as i64 * 1000),
                Some(_) => Err(AppError::bad_request(format!("{what} is at most 86400"))),
            }
        };
        let fcr_days = match r.fcr_days {
            None => self.config.fcr_window_days,
            Some(d) if (1..=90).contains(&d) => d as i64,
            Some(_) => return Err(AppError::bad_request("fcr_days is 1 to 90")),
        };
        let clean = |s: &Option<String>| s.as_ref().filter(|s| !s.is_empty()).cloned();
        let query = FactQuery {
            buckets: buckets.iter().map(|b| (b.start_ms, b.end_ms)).collect(),
            by,
            channel: clean(&r.channel),
            queue: clean(&r.queue),
            agent: clean(&r.agent),
            thresholds: Thresholds {
                short_abandon_ms: secs(
                    r.short_abandon_secs,
                    self.config.short_abandon_ms,
                    "short_abandon_secs",
                )?,
                service_level_ms: secs(
                    r.service_level_secs,
                    self.config.service_level_ms,
                    "service_level_secs",
                )?,
                fcr_window_ms: fcr_days * DAY_MS,
                now_ms: self.clock.now_ms(),
            },
        };
        Ok(Plan {
            query,
            buckets,
            period,
        })
    }

    fn meta(&self, plan: &Plan, r: &ReportRequest) -> Value {
        let th = &plan.query.thresholds;
        json!({
            "from": r.from.trim(), "to": r.to.trim(), "zone": self.config.zone.name(),
            "group_by": plan.period.as_str(), "by": plan.query.by.map(Dimension::as_str),
            "filters": {"channel": plan.query.channel, "queue": plan.query.queue,
                "agent": plan.query.agent},
            "short_abandon_secs": th.short_abandon_ms / 1000,
            "service_level_secs": th.service_level_ms / 1000,
            "fcr_days": th.fcr_window_ms / DAY_MS,
            "at": th.now_ms,
        })
    }

    /// One report.
    pub async fn report(&self, kind: ReportKind, r: &ReportRequest) -> AppResult<ReportTable> {
        let plan = self.plan(r)?;
        let meta = self.meta(&plan, r);
        let (columns, rows) = match kind {
            ReportKind::Operations => self.operations(&plan).await?,
            ReportKind::Agents => self.agents(&plan).await?,
            ReportKind::Journeys => self.journeys(&plan).await?,
            ReportKind::Experience => self.experience(&plan).await?,
        };
        Ok(ReportTable {
            kind,
            columns,
            rows,
            meta,
        })
    }

    /// The leading columns of every row: the period and the group.
    fn lead(plan: &Plan) -> Vec<&'static str> {
        let mut c = vec!["period", "from", "to"];
        if let Some(by) = plan.query.by {
            c.push(by.as_str());
        }
        c
    }

    /// Every (bucket, key) a table shows: each bucket with each key seen anywhere (so
    /// days without activity are rows of zeros).
    fn grid<T: Default + Clone>(plan: &Plan, cells: Vec<Cell<T>>) -> Vec<(usize, String, T)> {
        let keys: BTreeSet<String> = match plan.query.by {
            None => BTreeSet::from([String::new()]),
            Some(_) => cells.iter().map(|c| c.key.clone()).collect(),
        };
        let mut map: BTreeMap<(usize, String), T> = cells
            .into_iter()
            .map(|c| ((c.bucket, c.key), c.figures))
            .collect();
        let mut out = Vec::new();
        for i in 0..plan.buckets.len() {
            for k in &keys {
                let f = map.remove(&(i, k.clone())).unwrap_or_default();
                out.push((i, k.clone(), f));
            }
        }
        out
    }

    fn lead_values(plan: &Plan, bucket: usize, key: &str) -> Vec<Value> {
        let b = &plan.buckets[bucket];
        let mut v = vec![
            json!(b.key),
            json!(b.first.to_string()),
            json!(b.last.to_string()),
        ];
        if plan.query.by.is_some() {
            v.push(json!(key));
        }
        v
    }

    async fn operations(&self, plan: &Plan) -> AppResult<(Vec<&'static str>, Vec<Vec<Value>>)> {
        let cells = self
            .store
            .task_figures(&plan.query)
            .await
            .map_err(store_error)?;
        let mut columns = Self::lead(plan);
        columns.extend([
            "arrived",
            "handled",
            "abandoned",
            "short_abandoned",
            "abandon_rate",
            "replaced",
            "waiting",
            "answered_in_sl",
            "service_level",
            "avg_queue_ms",
            "p90_queue_ms",
            "max_queue_ms",
            "avg_abandon_ms",
            "responded",
            "avg_first_response_ms",
            "p90_first_response_ms",
            "avg_handle_ms",
            "avg_talk_ms",
            "avg_hold_ms",
            "avg_wrap_ms",
            "transferred",
            "transfers",
            "transfer_rate",
            "handoffs",
            "handoffs_with_context",
            "context_transfer_rate",
            "missed_offers",
        ]);
        let rows = Self::grid(plan, cells)
            .into_iter()
            .map(|(b, k, f): (usize, String, TaskFigures)| {
                let counted_abandons = f.abandoned - f.short_abandoned;
                let settled = f.handled + counted_abandons;
                let mut v = Self::lead_values(plan, b, &k);
                v.extend([
                    json!(f.arrived),
                    json!(f.handled),
                    json!(f.abandoned),
                    json!(f.short_abandoned),
                    rate(counted_abandons, settled),
                    json!(f.replaced),
                    json!(f.waiting),
                    json!(f.answered_in_sl),
                    rate(f.answered_in_sl, settled),
                    avg(f.queue_ms_sum, f.handled),
                    json!(f.queue_ms_p90),
                    json!(f.queue_ms_max),
                    avg(f.abandon_ms_sum, counted_abandons),
                    json!(f.responded),
                    avg(f.first_response_ms_sum, f.responded),
                    json!(f.first_response_ms_p90),
                    avg(f.connected_ms_sum + f.wrap_ms_sum, f.handled_ended),
                    avg(f.connected_ms_sum - f.hold_ms_sum, f.handled_ended),
                    avg(f.hold_ms_sum, f.handled_ended),
                    avg(f.wrap_ms_sum, f.handled_ended),
                    json!(f.transferred),
                    json!(f.transfers),
                    rate(f.transferred, f.handled),
                    json!(f.handoffs),
                    json!(f.handoffs_context),
                    rate(f.handoffs_context, f.handoffs),
                    json!(f.missed_offers),
                ]);
                v
            })
            .collect();
        Ok((columns, rows))
    }

    async fn agent_names(&self) -> AppResult<HashMap<String, String>> {
        Ok(self
            .store
            .list_agents()
            .await?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect())
    }

    async fn agents(&self, plan: &Plan) -> AppResult<(Vec<&'static str>, Vec<Vec<Value>>)> {
        if matches!(
            plan.query.by,
            Some(Dimension::Channel) | Some(Dimension::Queue)
        ) {
            return Err(AppError::bad_request(
                "the agents report is by agent or in all (by=agent or no by)",
            ));
        }
        let (time, legs) = tokio::try_join!(
            self.store.agent_time(&plan.query),
            self.store.leg_figures(&plan.query),
        )
        .map_err(store_error)?;
        // Legs per cell, and per channel within it.
        let mut per_cell: HashMap<(usize, String), (LegFigures, BTreeMap<String, i64>)> =
            HashMap::new();
        let mut cells: Vec<Cell<AgentTime>> = time;
        for (c, channel) in legs {
            let e = per_cell.entry((c.bucket, c.key.clone())).or_default();
            e.0.legs += c.figures.legs;
            e.0.ended += c.figures.ended;
            e.0.handle_ms_sum += c.figures.handle_ms_sum;
            e.0.cost_ms_sum += c.figures.cost_ms_sum;
            e.0.transferred_out += c.figures.transferred_out;
            *e.1.entry(channel).or_default() += c.figures.cost_ms_sum;
            if !cells.iter().any(|x| x.bucket == c.bucket && x.key == c.key) {
                cells.push(Cell {
                    bucket: c.bucket,
                    key: c.key,
                    figures: AgentTime::default(),
                });
            }
        }
        let names = if plan.query.by.is_some() {
            self.agent_names().await?
        } else {
            HashMap::new()
        };
        let mut columns = Self::lead(plan);
        if plan.query.by.is_some() {
            columns.push("agent_name");
        }
        columns.extend([
            "staffed_ms",
            "busy_ms",
            "idle_ms",
            "occupancy",
            "avg_concurrency",
            "utilization",
            "utilization_by_channel",
            "handled",
            "avg_handle_ms",
            "transferred_out",
        ]);
        let rows = Self::grid(plan, cells)
            .into_iter()
            .map(|(b, k, t)| {
                let (legs, by_channel) = per_cell.remove(&(b, k.clone())).unwrap_or_default();
                let mut v = Self::lead_values(plan, b, &k);
                if plan.query.by.is_some() {
                    v.push(json!(names.get(&k)));
                }
                let by_channel: Map<String, Value> = by_channel
                    .into_iter()
                    .map(|(ch, cost_ms)| (ch, rate(cost_ms, t.capacity_ms)))
                    .collect();
                v.extend([
                    json!(t.staffed_ms),
                    json!(t.busy_ms),
                    json!(t.staffed_ms - t.busy_ms),
                    rate(t.busy_ms, t.staffed_ms),
                    avg_f(t.task_ms, t.busy_ms),
                    rate(t.load_ms, t.capacity_ms),
                    Value::Object(by_channel),
                    json!(legs.legs),
                    avg(legs.handle_ms_sum, legs.ended),
                    json!(legs.transferred_out),
                ]);
                v
            })
            .collect();
        Ok((columns, rows))
    }

    async fn journeys(&self, plan: &Plan) -> AppResult<(Vec<&'static str>, Vec<Vec<Value>>)> {
        let cells = self
            .store
            .journey_figures(&plan.query)
            .await
            .map_err(store_error)?;
        let mut columns = Self::lead(plan);
        columns.extend([
            "journeys",
            "resolved",
            "fcr_yes",
            "fcr_no",
            "fcr_pending",
            "fcr_rate",
            "arrivals",
            "repeat_contacts",
            "repeat_contact_rate",
            "multi_channel",
            "multi_channel_share",
            "channel_switches",
            "switches_per_journey",
            "reopened",
            "avg_resolution_ms",
            "p90_resolution_ms",
            "handoffs",
            "handoffs_with_context",
            "context_transfer_rate",
        ]);
        let rows = Self::grid(plan, cells)
            .into_iter()
            .map(|(b, k, f): (usize, String, JourneyFigures)| {
                let mut v = Self::lead_values(plan, b, &k);
                v.extend([
                    json!(f.journeys),
                    json!(f.resolved),
                    json!(f.fcr_yes),
                    json!(f.fcr_no),
                    json!(f.fcr_pending),
                    rate(f.fcr_yes, f.fcr_yes + f.fcr_no),
                    json!(f.arrivals),
                    json!(f.repeat_contacts),
                    rate(f.repeat_contacts, f.arrivals),
                    json!(f.multi_channel),
                    rate(f.multi_channel, f.journeys),
                    json!(f.switches),
                    avg_f(f.switches, f.journeys),
                    json!(f.reopened),
                    avg(f.resolution_ms_sum, f.resolved),
                    json!(f.resolution_ms_p90),
                    json!(f.handoffs),
                    json!(f.handoffs_context),
                    rate(f.handoffs_context, f.handoffs),
                ]);
                v
            })
            .collect();
        Ok((columns, rows))
    }

    async fn experience(&self, plan: &Plan) -> AppResult<(Vec<&'static str>, Vec<Vec<Value>>)> {
        let cells = self
            .store
            .experience_figures(&plan.query)
            .await
            .map_err(store_error)?;
        let mut columns = Self::lead(plan);
        columns.extend([
            "csat_sent",
            "csat_responses",
            "csat_response_rate",
            "csat_avg",
            "csat_satisfied_share",
            "ces_sent",
            "ces_responses",
            "ces_response_rate",
            "ces_avg",
            "ces_easy_share",
            "nps_sent",
            "nps_responses",
            "nps_response_rate",
            "nps",
        ]);
        let rows = Self::grid(plan, cells)
            .into_iter()
            .map(|(b, k, f): (usize, String, ExperienceFigures)| {
                let mut v = Self::lead_values(plan, b, &k);
                let nps = ratio(f.nps_promoters - f.nps_detractors, f.nps_responses)
                    .map(|r| (r * 1000.0).round() / 10.0);
                v.extend([
                    json!(f.csat_sent),
                    json!(f.csat_responses),
                    rate(f.csat_responses, f.csat_sent),
                    avg_f(f.csat_sum, f.csat_responses),
                    rate(f.csat_satisfied, f.csat_responses),
                    json!(f.ces_sent),
                    json!(f.ces_responses),
                    rate(f.ces_responses, f.ces_sent),
                    avg_f(f.ces_sum, f.ces_responses),
                    rate(f.ces_easy, f.ces_responses),
                    json!(f.nps_sent),
                    json!(f.nps_responses),
                    rate(f.nps_responses, f.nps_sent),
                    json!(nps),
                ]);
                v
            })
            .collect();
        Ok((columns, rows))
    }

    /// The conversations behind `metric` over the request's range and filters, and in
    /// group `key` of `by` when given: at most `limit`, oldest first.
    pub async fn drill(
        &self,
        r: &ReportRequest,
        metric: &str,
        key: Option<&str>,
        limit: u32,
    ) -> AppResult<Value> {
        let mut plan = self.plan(r)?;
        let (start, end) = (
            plan.buckets.first().map_or(0, |b| b.start_ms),
            plan.buckets.last().map_or(0, |b| b.end_ms),
        );
        plan.query.buckets = vec![(start, end)];
        let rows: Vec<DrillRow> = self
            .store
            .drill(&plan.query, metric, key, limit)
            .await
            .map_err(store_error)?;
        let mut meta = self.meta(&plan, r);
        meta["metric"] = json!(metric);
        meta["key"] = json!(key);
        meta["count"] = json!(rows.len());
        meta["conversations"] = json!(rows);
        Ok(meta)
    }

    /// The one-row-per-conversation export of the conversations opened in the range,
    /// as CSV lines (the header first), streamed from the store.
    pub fn conversations_csv(&self, r: &ReportRequest) -> AppResult<ConversationLines> {
        let plan = self.plan(r)?;
        let rows = self
            .store
            .export_conversations(&plan.query)
            .map_err(store_error)?;
        Ok(ConversationLines {
            rows,
            header: true,
            zone: self.config.zone.clone(),
            thresholds: plan.query.thresholds,
        })
    }
}

/// The export's columns.
pub const CONVERSATION_COLUMNS: &[&str] = &[
    "conversation_id",
    "display_id",
    "status",
    "contact_id",
    "contact_name",
    "channels",
    "channel_switches",
    "queue",
    "agents",
    "tasks",
    "opened_at",
    "first_response_at",
    "first_resolved_at",
    "resolved_at",
    "resolution_ms",
    "handle_ms",
    "reopens",
    "fcr",
    "disposition",
    "handoffs",
    "handoffs_with_context",
    "csat",
    "ces",
    "nps",
];

/// The export's lines, read one by one.
pub struct ConversationLines {
    rows: mpsc::Receiver<Result<ConversationExportRow, StoreError>>,
    header: bool,
    zone: ReportZone,
    thresholds: Thresholds,
}

impl ConversationLines {
    /// The next CSV line (`\r\n`-terminated), the header first; `None` at the end.
    pub async fn next(&mut self) -> Option<AppResult<String>> {
        if std::mem::take(&mut self.header) {
            return Some(Ok(csv_line(
                CONVERSATION_COLUMNS.iter().map(|c| Value::from(*c)),
            )));
        }
        let row = match self.rows.recv().await? {
            Ok(row) => row,
            Err(e) => return Some(Err(e.into())),
        };
        Some(Ok(csv_line(self.values(&row).into_iter())))
    }

    fn values(&self, r: &ConversationExportRow) -> Vec<Value> {
        let time = |ms: Option<i64>| json!(ms.map(|t| self.zone.format_ms(t)));
        let th = &self.thresholds;
        let fcr = fcr_state(
            r.first_resolved_at,
            r.next_contact_at,
            th.fcr_window_ms,
            th.now_ms,
        );
        vec![
            json!(r.conversation_id),
            json!(r.display_id),
            json!(r.status),
            json!(r.contact_id),
            json!(r.contact_name),
            json!(r.channels),
            json!(r.channel_switches),
            json!(r.queue),
            json!(r.agents),
            json!(r.tasks),
            time(Some(r.opened_at)),
            time(r.first_response_at),
            time(r.first_resolved_at),
            time(r.resolved_at),
            json!(r.resolved_at.map(|t| t - r.opened_at)),
            json!(r.handle_ms),
            json!(r.reopens),
            json!(fcr.as_str()),
            json!(r.disposition),
            json!(r.handoffs),
            json!(r.handoffs_context),
            json!(r.csat),
            json!(r.ces),
            json!(r.nps),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field(&json!("plain")), "plain");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&json!("=HYPERLINK(1)")), "'=HYPERLINK(1)");
        assert_eq!(csv_field(&json!(-3)), "-3");
        assert_eq!(csv_field(&json!(0.25)), "0.25");
        assert_eq!(csv_field(&Value::Null), "");
        assert_eq!(csv_field(&json!(["webchat", "voice"])), "webchat voice");
        assert_eq!(csv_field(&json!({"chat": 0.5})), "chat=0.5");
    }
}
