//! `switchboard-bench reports`: the reports at scale (issue 13).
//!
//! 1. **History.** [`history`] writes a contact center's history — by default 1 million
//!    conversations, about 10 million timeline events, 500 agents, 6 channels, 90
//!    days — into a scratch SQLite database in bulk, then `Store::rebuild_reports`
//!    derives every fact and rollup from it through the product's own functions (the
//!    ones the live path applies each record with). PostgreSQL (a scratch database,
//!    dropped at the end) gets the same rows: the tables the reports read are copied
//!    over in bulk ([`copy`]), then vacuumed and analyzed as autovacuum would.
//! 2. **Reports.** Each report (operations, agents, journeys, experience), day by day
//!    and `by=channel`, over the last 30 days, through the reports use case, on each
//!    engine: first run and median of three. Goal: under 1 s. The task, journey,
//!    survey and agent time figures are also read from the facts alone (the path
//!    without the rollups), timed, and compared with the rollups': they must be equal.
//! 3. **Export.** The one-row-per-conversation CSV of one day and of the 90 days,
//!    streamed and counted: rows/s and the process's peak resident set over the run
//!    (VmHWM after a reset, minus the resident set before). Goal: flat memory.
//! 4. **Ingest with the facts vs without.** Customer messages through the store's
//!    ingest transaction, each followed by the routing steps that queue, assign and
//!    complete its task (`save_routing`), on a fresh database; with the facts (and
//!    rollups) maintained, then with `skip_report_facts_for_benchmark` (history still
//!    written, facts not), alternating rounds. Goal: with ≥ 0.9× without.
//!
//! Nothing asserts a timing; goals are printed as met or MISSED.

mod copy;
mod history;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sqlx::{AnyConnection, Connection};
use switchboard_app::Clock;
use switchboard_app::reports::{ReportConfig, ReportKind, ReportRequest, Reports};
use switchboard_core::Identity;
use switchboard_store::{
    Dimension, FactQuery, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, RoutingChanges,
    RoutingLogEntry, Store, Thresholds, skip_report_facts_for_benchmark,
};

use crate::machine::{load_average, print_header};
use crate::rss;
use history::{DAY, START, Scale};

const KEY: [u8; 32] = *b"switchboard-bench-reports-key-01";
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `switchboard-bench reports` options.
#[derive(Args, Debug)]
pub struct ReportsArgs {
    /// Conversations in the generated history (about 10 timeline events each).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(100..=10_000_000))]
    pub conversations: u64,
    /// Agents.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(3..=100_000))]
    pub agents: u32,
    /// Days of history (the reports cover the last 30, or all when fewer).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=400))]
    pub days: u32,
    /// Where built plugins are (sms-twilio, for the webhooks of part 4).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Messages per ingest round, each side.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(10..))]
    pub ingest_messages: u32,
    /// Ingest rounds per side (alternating).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Where the scratch SQLite database goes (a temporary directory under it).
    #[arg(long, default_value = "/var/tmp")]
    pub data_dir: PathBuf,
    /// PostgreSQL server: a connectable database URL; a scratch database
    /// `sb_bench_<random>` is made through it and dropped at the end. Default: try
    /// postgres://postgres@127.0.0.1:5432/postgres, skip with a note if unreachable.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Skip PostgreSQL.
    #[arg(long, conflicts_with = "postgres")]
    pub no_postgres: bool,
    /// Only the ingest comparison (part 4): no history, no reports.
    #[arg(long, conflicts_with = "no_ingest")]
    pub only_ingest: bool,
    /// Leave out the ingest comparison (part 4).
    #[arg(long)]
    pub no_ingest: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
}

/// One measured line of the report.
struct Line {
    engine: &'static str,
    what: String,
    figure: String,
    goal: String,
    met: Option<bool>,
}

pub async fn run(args: ReportsArgs) -> anyhow::Result<()> {
    print_header("reports");
    sqlx::any::install_default_drivers();
    let mut lines = Vec::new();
    let scale = Scale {
        conversations: args.conversations,
        agents: args.agents,
        days: args.days,
        seed: args.seed,
    };
    let pg = if args.no_postgres {
        None
    } else {
        pg_server(args.postgres.as_deref()).await?
    };
    if !args.only_ingest {
        history_and_reports(&args, scale, pg.as_deref(), &mut lines).await?;
    }
    if !args.no_ingest {
        // Ingest with and without the facts, each engine on a fresh database.
        let dir = tempfile::Builder::new()
            .prefix("sb-bench-ingest-")
            .tempdir_in(&args.data_dir)?;
        let url = format!("sqlite://{}", dir.path().join("ingest.db").display());
        ingest_ratio("SQLite", &url, &args, &mut lines).await?;
        let data = dir.path().join("webhooks");
        std::fs::create_dir_all(&data)?;
        let url = format!("sqlite://{}", data.join("switchboard.db").display());
        webhook_ratio("SQLite", &url, &data, &args, &mut lines).await?;
        if let Some(server) = &pg {
            let (admin_url, name, url) = scratch_pg(server).await?;
            let outcome = ingest_ratio("PostgreSQL", &url, &args, &mut lines).await;
            drop_pg(&admin_url, &name).await?;
            outcome?;
            let (admin_url, name, url) = scratch_pg(server).await?;
            let data = dir.path().join("webhooks-pg");
            std::fs::create_dir_all(&data)?;
            let outcome = webhook_ratio("PostgreSQL", &url, &data, &args, &mut lines).await;
            drop_pg(&admin_url, &name).await?;
            outcome?;
        }
    }

    println!();
    println!(
        "{:<11} {:<58} {:>26}  {:<18} result",
        "engine", "what", "figure", "goal"
    );
    for l in &lines {
        let result = match l.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<11} {:<58} {:>26}  {:<18} {result}",
            l.engine, l.what, l.figure, l.goal
        );
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// Parts 1–3: the history, its facts, the reports and the export on each engine.
async fn history_and_reports(
    args: &ReportsArgs,
    scale: Scale,
    pg: Option<&str>,
    lines: &mut Vec<Line>,
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("sb-bench-reports-")
        .tempdir_in(&args.data_dir)
        .context("scratch directory")?;
    let sqlite = format!("sqlite://{}", dir.path().join("reports.db").display());

    eprintln!(
        "generating the history ({} conversations)…",
        scale.conversations
    );
    let store = Store::connect(&sqlite, KEY).await?;
    let started = Instant::now();
    let written = history::generate(&sqlite, scale).await?;
    let generated = started.elapsed();
    eprintln!("deriving the facts (reports rebuild)…");
    let started = Instant::now();
    let stats = store.rebuild_reports().await?;
    let rebuilt = started.elapsed();
    sqlx::raw_sql("ANALYZE")
        .execute(&mut AnyConnection::connect(&sqlite).await?)
        .await?;
    println!(
        "history: {} conversations, {} contacts, {} timeline events, {} routing entries, {} agents, {} channels, {} days",
        written.conversations,
        written.contacts,
        written.events,
        written.routing_entries,
        scale.agents,
        6,
        scale.days
    );
    println!(
        "  written in {:.1} s; facts derived by `reports rebuild` in {:.1} s ({} tasks, {} conversations)",
        generated.as_secs_f64(),
        rebuilt.as_secs_f64(),
        stats.tasks,
        stats.conversations
    );

    let now = START + i64::from(scale.days) * DAY + DAY;
    let first_day = i64::from(scale.days.saturating_sub(30));
    let range = (
        date(START + first_day * DAY),
        date(START + (i64::from(scale.days) - 1) * DAY),
    );
    measure("SQLite", &store, now, &range, scale, first_day, lines).await?;

    if let Some(server) = pg {
        let (admin_url, name, url) = scratch_pg(server).await?;
        let outcome = async {
            let pg_store = Store::connect(&url, KEY).await?;
            eprintln!("copying the tables the reports read to PostgreSQL…");
            let started = Instant::now();
            let rows = copy::copy_tables(&sqlite, &url).await?;
            println!(
                "  PostgreSQL: {rows} rows copied (and vacuumed, analyzed) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            measure(
                "PostgreSQL",
                &pg_store,
                now,
                &range,
                scale,
                first_day,
                lines,
            )
            .await?;
            pg_store.close().await;
            anyhow::Ok(())
        }
        .await;
        drop_pg(&admin_url, &name).await?;
        outcome?;
    } else {
        println!("  PostgreSQL: skipped");
    }
    store.close().await;
    drop(dir);
    Ok(())
}

/// `YYYY-MM-DD` of a UTC instant.
fn date(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("a representable instant")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

async fn measure(
    engine: &'static str,
    store: &Store,
    now: i64,
    range: &(String, String),
    scale: Scale,
    first_day: i64,
    lines: &mut Vec<Line>,
) -> anyhow::Result<()> {
    let reports = Reports::new(store.clone(), ReportConfig::default(), Clock::manual(now));
    eprintln!("{engine}: reports over {} – {}…", range.0, range.1);
    for kind in [
        ReportKind::Operations,
        ReportKind::Agents,
        ReportKind::Journeys,
        ReportKind::Experience,
    ] {
        for by in [None, Some("channel")] {
            if kind == ReportKind::Agents && by.is_some() {
                continue;
            }
            let request = ReportRequest {
                from: range.0.clone(),
                to: range.1.clone(),
                by: by.map(str::to_owned),
                ..Default::default()
            };
            let mut times = Vec::new();
            let mut rows = 0;
            for _ in 0..4 {
                let started = Instant::now();
                let table = reports
                    .report(kind, &request)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                times.push(started.elapsed());
                rows = table.to_json()["rows"].as_array().map_or(0, Vec::len);
            }
            let first = times[0];
            let mut rest = times[1..].to_vec();
            rest.sort();
            let median = rest[rest.len() / 2];
            lines.push(Line {
                engine,
                what: format!(
                    "{} 30 days{} ({rows} rows): first / median",
                    kind.as_str(),
                    by.map_or(" day by day".to_string(), |b| format!(" by {b}")),
                ),
                figure: format!("{} / {}", secs(first), secs(median)),
                goal: "< 1 s".into(),
                met: Some(median < Duration::from_secs(1)),
            });
        }
    }
    // The figures through the rollups and from the facts alone.
    let query = |by| FactQuery {
        buckets: (first_day..i64::from(scale.days))
            .map(|d| (START + d * DAY, START + (d + 1) * DAY))
            .collect(),
        by,
        channel: None,
        queue: None,
        agent: None,
        thresholds: Thresholds {
            short_abandon_ms: 5_000,
            service_level_ms: 20_000,
            fcr_window_ms: 7 * DAY,
            now_ms: now,
        },
    };
    for by in [None, Some(Dimension::Agent)] {
        let q = query(by);
        let suffix = by.map_or("", |_| " by agent");
        let started = Instant::now();
        let rolled = store.agent_time(&q).await?;
        let rollup_time = started.elapsed();
        let started = Instant::now();
        let raw = store.agent_time_from_facts(&q).await?;
        let raw_time = started.elapsed();
        lines.push(same(
            engine,
            &format!("agent time{suffix}"),
            rolled == raw,
            rollup_time,
            raw_time,
        ));
        // Legs have no rollup; their time is the rest of the agents report's.
        let started = Instant::now();
        store.leg_figures(&q).await?;
        lines.push(Line {
            engine,
            what: format!("agent legs{suffix}, from the legs"),
            figure: secs(started.elapsed()),
            goal: String::new(),
            met: None,
        });
    }
    for by in [None, Some(Dimension::Channel)] {
        let q = query(by);
        let suffix = by.map_or("", |_| " by channel");
        let started = Instant::now();
        let rolled = store.task_figures(&q).await?;
        let rollup_time = started.elapsed();
        let started = Instant::now();
        let raw = store.task_figures_from_facts(&q).await?;
        let raw_time = started.elapsed();
        lines.push(same(
            engine,
            &format!("task figures{suffix}"),
            rolled == raw,
            rollup_time,
            raw_time,
        ));
        let started = Instant::now();
        let rolled = store.journey_figures(&q).await?;
        let rollup_time = started.elapsed();
        let started = Instant::now();
        let raw = store.journey_figures_from_facts(&q).await?;
        let raw_time = started.elapsed();
        lines.push(same(
            engine,
            &format!("journey figures{suffix}"),
            rolled == raw,
            rollup_time,
            raw_time,
        ));
        let started = Instant::now();
        let rolled = store.experience_figures(&q).await?;
        let rollup_time = started.elapsed();
        let started = Instant::now();
        let raw = store.experience_figures_from_facts(&q).await?;
        let raw_time = started.elapsed();
        lines.push(same(
            engine,
            &format!("survey figures{suffix}"),
            rolled == raw,
            rollup_time,
            raw_time,
        ));
    }
    // The export: a day in the middle, then the whole history.
    let mid = date(START + (i64::from(scale.days) / 2) * DAY);
    let last = date(START + (i64::from(scale.days) - 1) * DAY);
    for (label, from, to) in [
        ("export, one day", mid.clone(), mid),
        ("export, whole history", date(START), last),
    ] {
        let request = ReportRequest {
            from,
            to,
            ..Default::default()
        };
        let (rows, bytes, took, peak) = export(&reports, &request).await?;
        lines.push(Line {
            engine,
            what: format!(
                "{label} ({rows} rows, {:.0} MiB) rows/s",
                bytes as f64 / 1_048_576.0
            ),
            figure: format!("{:.0}", rows as f64 / took.as_secs_f64().max(1e-9)),
            goal: String::new(),
            met: None,
        });
        lines.push(Line {
            engine,
            what: format!("{label}: peak resident set over the start"),
            figure: format!("{:.1} MiB", peak as f64 / 1_048_576.0),
            goal: "flat".into(),
            met: None,
        });
    }
    Ok(())
}

/// A line comparing the rollup's answer with the facts' alone.
fn same(engine: &'static str, what: &str, equal: bool, rollup: Duration, raw: Duration) -> Line {
    Line {
        engine,
        what: format!(
            "{what}: rollup vs facts alone (same numbers: {})",
            if equal { "yes" } else { "NO" }
        ),
        figure: format!("{} vs {}", secs(rollup), secs(raw)),
        goal: "equal".into(),
        met: Some(equal),
    }
}

/// Streams one export to nowhere: rows, bytes, time, and the peak resident set above
/// the one before it.
async fn export(
    reports: &Reports,
    request: &ReportRequest,
) -> anyhow::Result<(u64, u64, Duration, u64)> {
    let (counted, m) = rss::around(async {
        let started = Instant::now();
        let mut lines = reports
            .conversations_csv(request)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let (mut rows, mut bytes) = (0u64, 0u64);
        while let Some(line) = lines.next().await {
            let line = line.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            bytes += line.len() as u64;
            rows += 1;
        }
        anyhow::Ok((rows, bytes, started.elapsed()))
    })
    .await;
    let (rows, bytes, took) = counted?;
    Ok((rows.saturating_sub(1), bytes, took, m.growth()))
}

/// Customer messages through the ingest transaction and the routing steps of their
/// tasks, with the facts kept and without, alternating; the ratio of throughputs.
async fn ingest_ratio(
    engine: &'static str,
    url: &str,
    args: &ReportsArgs,
    lines: &mut Vec<Line>,
) -> anyhow::Result<()> {
    eprintln!("{engine}: ingest with and without the facts…");
    let store = Store::connect(url, KEY).await?;
    let mut with = Duration::ZERO;
    let mut without = Duration::ZERO;
    let mut n = 0u64;
    // A warm-up round, not counted.
    skip_report_facts_for_benchmark(false);
    ingest_round(&store, &mut n, args.ingest_messages / 5).await?;
    for _ in 0..args.rounds {
        for skip in [false, true] {
            skip_report_facts_for_benchmark(skip);
            let started = Instant::now();
            ingest_round(&store, &mut n, args.ingest_messages).await?;
            let took = started.elapsed();
            if skip {
                without += took;
            } else {
                with += took;
            }
        }
    }
    skip_report_facts_for_benchmark(false);
    store.close().await;
    let total = f64::from(args.ingest_messages) * f64::from(args.rounds);
    let rate_with = total / with.as_secs_f64();
    let rate_without = total / without.as_secs_f64();
    let ratio = rate_with / rate_without;
    lines.push(Line {
        engine,
        what: format!(
            "store: ingest + routing steps, msg/s with facts vs without ({:.0} vs {:.0})",
            rate_with, rate_without
        ),
        figure: format!("{ratio:.2}x"),
        goal: "≥ 0.9x".into(),
        met: Some(ratio >= 0.9),
    });
    Ok(())
}

/// Signed webhooks through the real server with the facts kept and without.
async fn webhook_ratio(
    engine: &'static str,
    url: &str,
    data: &std::path::Path,
    args: &ReportsArgs,
    lines: &mut Vec<Line>,
) -> anyhow::Result<()> {
    eprintln!("{engine}: webhooks with and without the facts…");
    let (with, without, problems) = crate::ingest::facts_cost(
        url,
        data,
        &args.plugins_dir.join("sms-twilio"),
        args.ingest_messages as usize,
        32,
        args.rounds as usize,
    )
    .await?;
    let ratio = with / without;
    lines.push(Line {
        engine,
        what: format!(
            "webhooks/s over HTTP with facts vs without ({with:.0} vs {without:.0}{})",
            if problems.is_empty() {
                String::new()
            } else {
                format!(", {} failed", problems.len())
            }
        ),
        figure: format!("{ratio:.2}x"),
        goal: "≥ 0.9x".into(),
        met: Some(ratio >= 0.9 && problems.is_empty()),
    });
    Ok(())
}

/// `count` customer messages from 5,000 customers; each that opens a conversation is
/// queued, assigned and completed by routing steps (every fourth is abandoned).
async fn ingest_round(store: &Store, n: &mut u64, count: u32) -> anyhow::Result<()> {
    for _ in 0..count {
        *n += 1;
        let now = switchboard_app::now_ms();
        let outcomes = store
            .ingest(IngestBatch {
                plugin_id: "sms-twilio".into(),
                channel: "sms".into(),
                now_ms: now,
                reopen_window_ms: 7 * DAY,
                events: vec![IngestEvent::InboundMessage(InboundMessage {
                    provider_id: format!("bench-{n}-{now}"),
                    sender: Identity::from_normalized("phone", format!("+1555{:07}", *n % 5000)),
                    sender_name: None,
                    body: "Where is my order?".into(),
                    attachments: vec![],
                    sent_at_ms: None,
                    metadata: serde_json::Value::Null,
                })],
            })
            .await?;
        let (conversation, contact) = match outcomes.into_iter().next() {
            Some(IngestOutcome::Created {
                conversation_id,
                contact_id,
                ..
            }) => (conversation_id, contact_id),
            _ => continue,
        };
        let task = format!("bench-task-{n}-{now}");
        let agent = format!("bench-agent-{}", *n % 20);
        let step = |at: i64, log: Vec<RoutingLogEntry>| RoutingChanges {
            at,
            log,
            ..Default::default()
        };
        store
            .save_routing(&step(
                now,
                vec![RoutingLogEntry::Queued {
                    task_id: task.clone(),
                    conversation_id: Some(conversation),
                    contact_id: Some(contact),
                    channel: "sms".into(),
                    queue_id: "sms-support".into(),
                    arrived_at: now,
                }],
            ))
            .await?;
        if (*n).is_multiple_of(4) {
            store
                .save_routing(&step(
                    now + 1,
                    vec![RoutingLogEntry::Canceled {
                        task_id: task,
                        reason: "abandoned".into(),
                    }],
                ))
                .await?;
            continue;
        }
        store
            .save_routing(&step(
                now + 1,
                vec![
                    RoutingLogEntry::Offered {
                        task_id: task.clone(),
                        agent_id: agent.clone(),
                    },
                    RoutingLogEntry::Assigned {
                        task_id: task.clone(),
                        agent_id: agent.clone(),
                        cost: 25,
                        capacity: 100,
                    },
                ],
            ))
            .await?;
        store
            .save_routing(&step(
                now + 2,
                vec![
                    RoutingLogEntry::Wrapping {
                        task_id: task.clone(),
                        agent_id: agent,
                    },
                    RoutingLogEntry::Completed { task_id: task },
                ],
            ))
            .await?;
    }
    Ok(())
}

/// The PostgreSQL server to use, or `None` (with a note) when the default is
/// unreachable.
async fn pg_server(given: Option<&str>) -> anyhow::Result<Option<String>> {
    let url = given.unwrap_or(DEFAULT_PG).to_owned();
    match AnyConnection::connect(&url).await {
        Ok(c) => {
            c.close().await?;
            Ok(Some(url))
        }
        Err(e) if given.is_none() => {
            println!("  PostgreSQL at {url} unreachable ({e}); skipped");
            Ok(None)
        }
        Err(e) => Err(e).context("connecting to PostgreSQL"),
    }
}

/// A scratch database on the server: (admin URL, name, its URL).
async fn scratch_pg(admin: &str) -> anyhow::Result<(String, String, String)> {
    let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AnyConnection::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    Ok((admin.to_owned(), name, url.to_string()))
}

async fn drop_pg(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = AnyConnection::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}
