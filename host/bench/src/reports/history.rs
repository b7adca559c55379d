//! The history generator: contacts, conversations, agents, the timeline and the routing
//! log of a contact center over `days` days, written in bulk into a scratch SQLite
//! database. No fact is written here: the facts (and their rollups) come from the
//! product's own `Store::rebuild_reports`, which replays this history through the
//! functions the live path applies each record with.
//!
//! The mix, per conversation (fixed seed, so two runs write the same history):
//! channel shares webchat 30 %, voice 25 %, SMS 15 %, WhatsApp 15 %, e-mail 10 %,
//! Telegram 5 %; two queues per channel (support 70 %, sales 30 %); arrivals weighted by
//! hour of day; about 60 % as many customers as conversations (so customers come back,
//! some within the first contact resolution window); abandons (voice 8 %, web chat 5 %,
//! others 2 %; a third of them under 5 s); queue times by channel (tens of seconds for
//! voice and chat, minutes for messaging, a quarter of an hour for e-mail); missed
//! offers 8 %; transfers 7 % (70 % with a hand-off context); hold on 20 % of calls;
//! channel switches 6 %; 1–5 exchanges; resolutions with a disposition; CSAT sent on
//! 35 % (40 % answered), NPS on 10 % (35 % answered); 9 % reopened by the customer
//! within days, handled and resolved again. Agents work three shifts, their presence
//! logged as it changes.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{AnyConnection, Connection};
use switchboard_store::RoutingLogEntry;

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
/// 2025-09-01T00:00:00Z: the first day of the history.
pub const START: i64 = 1_756_684_800_000;

const CHANNELS: [(&str, &str, f64, i64); 6] = [
    // channel, plugin, share, capacity cost
    ("webchat", "webchat", 0.30, 25),
    ("voice", "voice", 0.25, 100),
    ("sms", "sms-twilio", 0.15, 25),
    ("whatsapp", "whatsapp-cloud", 0.15, 25),
    ("email", "email", 0.10, 20),
    ("telegram", "telegram", 0.05, 25),
];

/// Arrivals per hour of the day (UTC), relative.
const HOURLY: [f64; 24] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 7.0, 10.0, 12.0, 12.0, 11.0, 10.0, 11.0, 12.0, 11.0, 10.0,
    8.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0,
];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub conversations: u64,
    pub agents: u32,
    pub days: u32,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub contacts: u64,
    pub conversations: u64,
    pub events: u64,
    pub routing_entries: u64,
}

/// One table's pending rows, flushed as one multi-row `INSERT`.
struct Table {
    head: &'static str,
    rows: Vec<String>,
}

const FLUSH_ROWS: usize = 400;
const COMMIT_ROWS: u64 = 200_000;

struct Writer<'c> {
    conn: &'c mut AnyConnection,
    tables: Vec<Table>,
    since_commit: u64,
}

const CONTACT: usize = 0;
const CONVERSATION: usize = 1;
const EVENT: usize = 2;
const LOG: usize = 3;
const AGENT: usize = 4;

impl<'c> Writer<'c> {
    async fn new(conn: &'c mut AnyConnection) -> anyhow::Result<Writer<'c>> {
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        Ok(Writer {
            conn,
            tables: vec![
                Table {
                    head: "INSERT INTO contact (id, display_name, created_at, updated_at) VALUES ",
                    rows: Vec::new(),
                },
                Table {
                    head: "INSERT INTO conversation (id, display_id, contact_id, status, \
                           last_channel, last_plugin_id, opened_at, updated_at, resolved_at) VALUES ",
                    rows: Vec::new(),
                },
                Table {
                    head: "INSERT INTO timeline_event (id, contact_id, conversation_id, channel, \
                           plugin_id, direction, kind, body, author_agent_id, occurred_at, data) VALUES ",
                    rows: Vec::new(),
                },
                Table {
                    head: "INSERT INTO routing_log (id, at, kind, task_id, agent_id, detail) VALUES ",
                    rows: Vec::new(),
                },
                Table {
                    head: "INSERT INTO agent (id, email, name, role, password_hash, created_at) VALUES ",
                    rows: Vec::new(),
                },
            ],
            since_commit: 0,
        })
    }

    async fn push(&mut self, table: usize, row: String) -> anyhow::Result<()> {
        self.tables[table].rows.push(row);
        if self.tables[table].rows.len() >= FLUSH_ROWS {
            self.flush(table).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, table: usize) -> anyhow::Result<()> {
        let t = &mut self.tables[table];
        if t.rows.is_empty() {
            return Ok(());
        }
        let n = t.rows.len() as u64;
        let sql = format!("{}{}", t.head, t.rows.join(","));
        t.rows.clear();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *self.conn)
            .await
            .with_context(|| format!("bulk insert into table #{table}"))?;
        self.since_commit += n;
        if self.since_commit >= COMMIT_ROWS {
            sqlx::raw_sql("COMMIT; BEGIN")
                .execute(&mut *self.conn)
                .await?;
            self.since_commit = 0;
        }
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        for t in 0..self.tables.len() {
            self.flush(t).await?;
        }
        sqlx::raw_sql("COMMIT").execute(&mut *self.conn).await?;
        Ok(())
    }
}

/// A SQL string literal (the generator's own text: ids, names, JSON without quotes).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".into(), lit)
}

fn agent_id(n: u32) -> String {
    format!("agent-{n:04}")
}

/// The three shifts: (first agent, agents, start hour UTC, hours).
fn shifts(agents: u32) -> [(u32, u32, i64, i64); 3] {
    let a = agents * 44 / 100;
    let b = agents * 44 / 100;
    let c = agents - a - b;
    [(0, a, 6, 8), (a, b, 14, 8), (a + b, c.max(1), 22, 8)]
}

struct Gen<'c> {
    rng: StdRng,
    w: Writer<'c>,
    scale: Scale,
    written: Written,
    event_seq: u64,
    log_seq: u64,
    task_seq: u64,
    hour_cdf: Vec<f64>,
}

/// One conversation's identity, for the events written about it.
struct Conv<'a> {
    id: &'a str,
    contact: &'a str,
    channel: &'static str,
    plugin: &'static str,
    cost: i64,
    queue: String,
}

/// One timeline event of a conversation.
struct Ev<'a> {
    channel: Option<&'a str>,
    direction: &'a str,
    kind: &'a str,
    body: &'a str,
    author: Option<&'a str>,
    at: i64,
    data: &'a str,
}

impl Gen<'_> {
    async fn event(&mut self, conv: &Conv<'_>, e: Ev<'_>) -> anyhow::Result<()> {
        let Ev {
            channel,
            direction,
            kind,
            body,
            author,
            at,
            data,
        } = e;
        self.event_seq += 1;
        self.written.events += 1;
        let plugin = channel.map(|c| {
            CHANNELS
                .iter()
                .find(|x| x.0 == c)
                .map_or(conv.plugin, |x| x.1)
        });
        let row = format!(
            "({}, {}, {}, {}, {}, {}, {}, {}, {}, {at}, {})",
            lit(&format!("ev-{:010}", self.event_seq)),
            lit(conv.contact),
            lit(conv.id),
            opt(channel),
            opt(plugin),
            lit(direction),
            lit(kind),
            lit(body),
            opt(author),
            lit(data),
        );
        self.w.push(EVENT, row).await
    }

    async fn log(&mut self, at: i64, entry: RoutingLogEntry) -> anyhow::Result<()> {
        self.log_seq += 1;
        self.written.routing_entries += 1;
        let detail = serde_json::to_string(&entry)?;
        let (task, agent) = match &entry {
            RoutingLogEntry::Queued { task_id, .. }
            | RoutingLogEntry::Wrapping { task_id, .. }
            | RoutingLogEntry::Completed { task_id }
            | RoutingLogEntry::Canceled { task_id, .. }
            | RoutingLogEntry::Transferred { task_id, .. }
            | RoutingLogEntry::Overflowed { task_id, .. }
            | RoutingLogEntry::Hold { task_id, .. } => (Some(task_id.as_str()), None),
            RoutingLogEntry::Offered { task_id, agent_id }
            | RoutingLogEntry::OfferEnded {
                task_id, agent_id, ..
            }
            | RoutingLogEntry::Assigned {
                task_id, agent_id, ..
            } => (Some(task_id.as_str()), Some(agent_id.as_str())),
            RoutingLogEntry::Presence { agent_id, .. } => (None, Some(agent_id.as_str())),
        };
        let row = format!(
            "({}, {at}, {}, {}, {}, {})",
            lit(&format!("log-{:010}", self.log_seq)),
            lit(entry.kind()),
            opt(task),
            opt(agent),
            lit(&detail),
        );
        self.w.push(LOG, row).await
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// Exponentially distributed ms with this mean, capped.
    fn exp_ms(&mut self, mean_ms: f64, cap_ms: i64) -> i64 {
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        ((-u.ln() * mean_ms) as i64).clamp(1, cap_ms)
    }

    fn agent_at(&mut self, at: i64) -> u32 {
        let hour = at.rem_euclid(DAY) / HOUR;
        let shift = shifts(self.scale.agents)
            .into_iter()
            .find(|(_, _, start, len)| (hour - start).rem_euclid(24) < *len)
            .expect("the shifts cover the day");
        shift.0 + self.rng.random_range(0..shift.1)
    }

    /// One task of `conv` from its arrival: routed, abandoned or handled (possibly
    /// transferred), completed. The end instant and the agent who finished it, or
    /// `None` when the customer gave up.
    async fn task(&mut self, conv: &Conv<'_>, arrived: i64) -> anyhow::Result<Option<(i64, u32)>> {
        self.task_seq += 1;
        let task_id = format!("task-{:09}", self.task_seq);
        self.log(
            arrived,
            RoutingLogEntry::Queued {
                task_id: task_id.clone(),
                conversation_id: Some(conv.id.to_owned()),
                contact_id: Some(conv.contact.to_owned()),
                channel: conv.channel.into(),
                queue_id: conv.queue.clone(),
                arrived_at: arrived,
            },
        )
        .await?;
        let abandon = match conv.channel {
            "voice" => 0.08,
            "webchat" => 0.05,
            _ => 0.02,
        };
        if self.chance(abandon) {
            let wait = if self.chance(0.33) {
                self.rng.random_range(500..5_000)
            } else {
                self.exp_ms(60_000.0, 900_000) + 5_000
            };
            self.log(
                arrived + wait,
                RoutingLogEntry::Canceled {
                    task_id,
                    reason: "abandoned".into(),
                },
            )
            .await?;
            return Ok(None);
        }
        let (mean, cap) = match conv.channel {
            "voice" | "webchat" => (25_000.0, 1_200_000),
            "email" => (900_000.0, 4 * HOUR),
            _ => (90_000.0, 3_600_000),
        };
        let queue = self.exp_ms(mean, cap).max(1_500);
        let answered = arrived + queue;
        let mut agent = self.agent_at(answered);
        if self.chance(0.08) {
            let other = self.agent_at(answered);
            let ring = arrived + queue / 3;
            self.log(
                ring,
                RoutingLogEntry::Offered {
                    task_id: task_id.clone(),
                    agent_id: agent_id(other),
                },
            )
            .await?;
            self.log(
                ring + (queue / 3).max(1),
                RoutingLogEntry::OfferEnded {
                    task_id: task_id.clone(),
                    agent_id: agent_id(other),
                    how: "expired".into(),
                },
            )
            .await?;
        }
        self.log(
            answered - 1_000,
            RoutingLogEntry::Offered {
                task_id: task_id.clone(),
                agent_id: agent_id(agent),
            },
        )
        .await?;
        self.log(
            answered,
            RoutingLogEntry::Assigned {
                task_id: task_id.clone(),
                agent_id: agent_id(agent),
                cost: conv.cost,
                capacity: 100,
            },
        )
        .await?;
        let mut t = answered;
        let voice = conv.channel == "voice";
        if voice {
            t += self.rng.random_range(60_000..600_000);
            if self.chance(0.2) {
                let held = answered + 30_000;
                self.log(
                    held,
                    RoutingLogEntry::Hold {
                        task_id: task_id.clone(),
                        held: true,
                    },
                )
                .await?;
                let unheld = held + self.rng.random_range(10_000..25_000);
                self.log(
                    unheld,
                    RoutingLogEntry::Hold {
                        task_id: task_id.clone(),
                        held: false,
                    },
                )
                .await?;
            }
        } else {
            // The first response, then the exchanges.
            t += self.rng.random_range(10_000..90_000);
            let a = agent_id(agent);
            self.event(
                conv,
                Ev {
                    channel: Some(conv.channel),
                    direction: "out",
                    kind: "message",
                    body: "Hello, let me look.",
                    author: Some(&a),
                    at: t,
                    data: "{}",
                },
            )
            .await?;
            let exchanges = [1, 2, 2, 3, 3, 3, 4, 5][self.rng.random_range(0..8)];
            for _ in 0..exchanges {
                t += self.rng.random_range(20_000..240_000);
                self.event(
                    conv,
                    Ev {
                        channel: Some(conv.channel),
                        direction: "in",
                        kind: "message",
                        body: "Thanks, here it is.",
                        author: None,
                        at: t,
                        data: "{}",
                    },
                )
                .await?;
                t += self.rng.random_range(15_000..120_000);
                self.event(
                    conv,
                    Ev {
                        channel: Some(conv.channel),
                        direction: "out",
                        kind: "message",
                        body: "Done on our side.",
                        author: Some(&a),
                        at: t,
                        data: "{}",
                    },
                )
                .await?;
            }
            if self.chance(0.06) {
                t += 5_000;
                self.event(
                    conv,
                    Ev {
                        channel: Some("sms"),
                        direction: "internal",
                        kind: "channel_switch",
                        body: "Moved to sms",
                        author: None,
                        at: t,
                        data: "{}",
                    },
                )
                .await?;
                t += 5_000;
                self.event(
                    conv,
                    Ev {
                        channel: Some("sms"),
                        direction: "out",
                        kind: "message",
                        body: "Texting you the link.",
                        author: Some(&a),
                        at: t,
                        data: "{}",
                    },
                )
                .await?;
            }
        }
        if self.chance(0.07) {
            let to = self.agent_at(t);
            t += 2_000;
            self.log(
                t,
                RoutingLogEntry::Transferred {
                    task_id: task_id.clone(),
                    to_queue: None,
                    to_agent: Some(agent_id(to)),
                },
            )
            .await?;
            self.log(
                t + 1_000,
                RoutingLogEntry::Offered {
                    task_id: task_id.clone(),
                    agent_id: agent_id(to),
                },
            )
            .await?;
            t += self.rng.random_range(5_000..60_000);
            let context = self.chance(0.7);
            let data = format!(
                "{{\"handoff\":\"received\",\"context_received\":{context},\"task_id\":\"{task_id}\"}}"
            );
            self.event(
                conv,
                Ev {
                    channel: None,
                    direction: "internal",
                    kind: "transfer",
                    body: "Transfer received",
                    author: Some(&agent_id(to)),
                    at: t,
                    data: &data,
                },
            )
            .await?;
            self.log(
                t,
                RoutingLogEntry::Assigned {
                    task_id: task_id.clone(),
                    agent_id: agent_id(to),
                    cost: conv.cost,
                    capacity: 100,
                },
            )
            .await?;
            agent = to;
            t += self.rng.random_range(60_000..400_000);
        }
        t += 10_000;
        self.log(
            t,
            RoutingLogEntry::Wrapping {
                task_id: task_id.clone(),
                agent_id: agent_id(agent),
            },
        )
        .await?;
        t += self.rng.random_range(15_000..120_000);
        self.log(t, RoutingLogEntry::Completed { task_id }).await?;
        Ok(Some((t, agent)))
    }

    /// The agent resolves: the status change and the disposition.
    async fn resolve(&mut self, conv: &Conv<'_>, at: i64, agent: u32) -> anyhow::Result<()> {
        let a = agent_id(agent);
        self.event(
            conv,
            Ev {
                channel: None,
                direction: "internal",
                kind: "status",
                body: "open → resolved",
                author: Some(&a),
                at,
                data: "{\"from\":\"open\",\"to\":\"resolved\"}",
            },
        )
        .await?;
        let code = ["resolved", "resolved", "resolved", "refund", "escalated"]
            [self.rng.random_range(0..5)];
        self.event(
            conv,
            Ev {
                channel: None,
                direction: "internal",
                kind: "disposition",
                body: code,
                author: Some(&a),
                at: at + 1,
                data: &format!("{{\"code\":\"{code}\"}}"),
            },
        )
        .await
    }

    async fn surveys(&mut self, conv: &Conv<'_>, at: i64) -> anyhow::Result<()> {
        for (kind, sent, answered) in [("csat", 0.35, 0.4), ("nps", 0.10, 0.35)] {
            if !self.chance(sent) {
                continue;
            }
            let s = at + 60_000;
            if self.chance(answered) {
                let score = match kind {
                    "csat" => [1, 2, 3, 3, 4, 4, 4, 5, 5, 5][self.rng.random_range(0..10)],
                    _ => [0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10][self.rng.random_range(0..11)],
                };
                let data = format!("{{\"survey\":\"{kind}\",\"phase\":\"sent\"}}");
                self.event(
                    conv,
                    Ev {
                        channel: Some(conv.channel),
                        direction: "out",
                        kind: "survey",
                        body: "Survey",
                        author: None,
                        at: s,
                        data: &data,
                    },
                )
                .await?;
                let data =
                    format!("{{\"survey\":\"{kind}\",\"phase\":\"answered\",\"score\":{score}}}");
                let t = s + self.rng.random_range(60_000..3_600_000);
                self.event(
                    conv,
                    Ev {
                        channel: Some(conv.channel),
                        direction: "in",
                        kind: "survey",
                        body: "Answer",
                        author: None,
                        at: t,
                        data: &data,
                    },
                )
                .await?;
            } else {
                let data = format!("{{\"survey\":\"{kind}\",\"phase\":\"sent\"}}");
                self.event(
                    conv,
                    Ev {
                        channel: Some(conv.channel),
                        direction: "out",
                        kind: "survey",
                        body: "Survey",
                        author: None,
                        at: s,
                        data: &data,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn conversation(&mut self, n: u64) -> anyhow::Result<()> {
        let contacts = (self.scale.conversations * 6 / 10).max(1);
        let contact = format!("contact-{:08}", self.rng.random_range(0..contacts));
        let id = format!("conv-{n:08}");
        let pick: f64 = self.rng.random();
        let mut acc = 0.0;
        let (channel, plugin, _, cost) = *CHANNELS
            .iter()
            .find(|c| {
                acc += c.2;
                pick < acc
            })
            .unwrap_or(&CHANNELS[0]);
        let queue = format!(
            "{channel}-{}",
            if self.chance(0.7) { "support" } else { "sales" }
        );
        let day = self.rng.random_range(0..i64::from(self.scale.days));
        let u: f64 = self.rng.random();
        let hour = self.hour_cdf.iter().position(|c| u < *c).unwrap_or(23) as i64;
        let opened = START + day * DAY + hour * HOUR + self.rng.random_range(0..HOUR);
        let conv = Conv {
            id: &id,
            contact: &contact,
            channel,
            plugin,
            cost,
            queue,
        };
        let kind = if channel == "voice" {
            "call"
        } else {
            "message"
        };
        self.event(
            &conv,
            Ev {
                channel: Some(channel),
                direction: "in",
                kind,
                body: "Hi, I need help",
                author: None,
                at: opened,
                data: "{}",
            },
        )
        .await?;
        let mut status = "open";
        let mut resolved_at = None;
        let mut updated = opened;
        if let Some((end, agent)) = self.task(&conv, opened + 200).await? {
            if self.chance(0.96) {
                self.resolve(&conv, end, agent).await?;
                status = "resolved";
                resolved_at = Some(end);
                updated = end;
                self.surveys(&conv, end).await?;
                if self.chance(0.09) {
                    let back = end + self.rng.random_range(HOUR..6 * DAY);
                    self.event(
                        &conv,
                        Ev {
                            channel: Some(channel),
                            direction: "in",
                            kind,
                            body: "It happened again",
                            author: None,
                            at: back,
                            data: "{}",
                        },
                    )
                    .await?;
                    self.event(
                        &conv,
                        Ev {
                            channel: None,
                            direction: "internal",
                            kind: "status",
                            body: "reopened",
                            author: None,
                            at: back + 1,
                            data: "{\"from\":\"resolved\",\"to\":\"open\"}",
                        },
                    )
                    .await?;
                    status = "open";
                    resolved_at = None;
                    updated = back;
                    if let Some((end, agent)) = self.task(&conv, back + 200).await? {
                        self.resolve(&conv, end, agent).await?;
                        status = "resolved";
                        resolved_at = Some(end);
                        updated = end;
                    }
                }
            } else {
                updated = end;
            }
        }
        self.written.conversations += 1;
        let row = format!(
            "({}, {}, {}, {}, {}, {}, {opened}, {updated}, {})",
            lit(&id),
            n + 1,
            lit(&contact),
            lit(status),
            lit(channel),
            lit(plugin),
            resolved_at.map_or_else(|| "NULL".into(), |t: i64| t.to_string()),
        );
        self.w.push(CONVERSATION, row).await
    }
}

/// Writes the whole history into the (migrated, empty) database behind `url`.
pub async fn generate(url: &str, scale: Scale) -> anyhow::Result<Written> {
    let mut conn = AnyConnection::connect(url).await?;
    if url.starts_with("sqlite") {
        // Bulk load: rows of each table go in batches of their own, so a conversation's
        // events may land before it; every reference holds once the load is done.
        sqlx::raw_sql("PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF")
            .execute(&mut conn)
            .await?;
    }
    let total: f64 = HOURLY.iter().sum();
    let mut acc = 0.0;
    let hour_cdf = HOURLY
        .iter()
        .map(|h| {
            acc += h / total;
            acc
        })
        .collect();
    let w = Writer::new(&mut conn).await?;
    let mut g = Gen {
        rng: StdRng::seed_from_u64(scale.seed),
        w,
        scale,
        written: Written::default(),
        event_seq: 0,
        log_seq: 0,
        task_seq: 0,
        hour_cdf,
    };
    // Customers: every one who may write, named.
    let contacts = (scale.conversations * 6 / 10).max(1);
    for c in 0..contacts {
        let row = format!(
            "({}, {}, {START}, {START})",
            lit(&format!("contact-{c:08}")),
            lit(&format!("Customer {c}"))
        );
        g.w.push(CONTACT, row).await?;
        g.written.contacts += 1;
    }
    // Agents and their shifts, day by day.
    for a in 0..scale.agents {
        let row = format!(
            "({}, {}, {}, 'agent', 'not-used', {START})",
            lit(&agent_id(a)),
            lit(&format!("{}@bench.test", agent_id(a))),
            lit(&format!("Agent {a}"))
        );
        g.w.push(AGENT, row).await?;
    }
    for day in 0..i64::from(scale.days) {
        for (first, count, start, len) in shifts(scale.agents) {
            for a in first..first + count {
                let on = START + day * DAY + start * HOUR + g.rng.random_range(-600_000..600_000);
                for (at, status) in [(on, "available"), (on + len * HOUR, "offline")] {
                    g.log(
                        at,
                        RoutingLogEntry::Presence {
                            agent_id: agent_id(a),
                            status: status.into(),
                            capacity: 100,
                        },
                    )
                    .await?;
                }
            }
        }
    }
    for n in 0..scale.conversations {
        g.conversation(n).await?;
    }
    let written = g.written;
    g.w.finish().await?;
    conn.close().await?;
    Ok(written)
}
