//! Report facts: what the reports read, kept up to date as events happen, rebuildable
//! from history. The metrics themselves are defined in `REPORTS.md` at the repository
//! root; this module owns their storage and their SQL.
//!
//! - `facts`: the history records (routing log entries, timeline events) and how each
//!   changes the facts, applied in the transaction that writes the record;
//! - `sql`: families of facts, buckets, filters and the predicate of every countable
//!   metric, shared by the figures, the drill-down and the export;
//! - `figures`: per bucket and group sums, counts, maxima and nearest-rank percentiles;
//! - `export`: the one-row-per-conversation export, streamed;
//! - `rollup`: task figures per UTC hour, channel and queue, kept with the facts and
//!   read instead of them when a report allows;
//! - `agent_rollup`: agent time per UTC hour and agent, likewise;
//! - `rebuild`: every fact again from history.
//!
//! # Why instants and not local days
//!
//! Facts keep instants (ms since the epoch), never a local day. A report's buckets are
//! turned into instants by the caller (`switchboard_core::reports::buckets`, in the
//! operator's time zone) and the SQL assigns rows to buckets with a `CASE` over those
//! edges, within a range filter on an indexed time column. So a day is exactly the
//! operator's day, daylight-saving days included; changing the time zone needs no
//! rebuild; and nothing at write time depends on a setting. The cost is a `CASE` of at
//! most one branch per bucket per row read, which is small next to reading the row.
//!
//! Agent time is kept as closed stretches of constant state (`agent_segment`), which a
//! bucket edge may cut: stretches inside one bucket are summed by the database, the few
//! that cross an edge (at most one per agent per edge) are clipped in Rust. The same
//! stretches are also added up per UTC hour and agent (`agent_rollup`), each cut at the
//! hour's edges, which is what a report on whole hours reads.

pub(crate) mod agent_rollup;
pub(crate) mod export;
pub(crate) mod facts;
pub(crate) mod figures;
pub(crate) mod rebuild;
pub(crate) mod rollup;
pub(crate) mod sql;
