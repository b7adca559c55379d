//! Switchboard's persistence: repositories and migrations over SQLite and PostgreSQL.
//!
//! The store owns every durable fact — contacts and their identities, conversations,
//! the cross-channel timeline, the outbox, consent, agents and sessions, installed
//! plugins with their (encrypted) config and key-value data, the audit log, and on a
//! cluster the files themselves (attachments, recordings, plugin components, by content
//! key: see `files`) — and the transactional rules that keep them consistent: an
//! inbound message is resolved to a contact and a conversation and appended to the
//! timeline in one transaction; a reply and its outbox row are written together;
//! delivery receipts never move a status backwards; a merge of two contacts can be
//! undone exactly. It never calls plugins, never routes, and never speaks HTTP; the
//! host wires those around it.
//!
//! # One implementation, two engines
//!
//! All queries go through sqlx's `Any` driver with `$1`-style placeholders, which both
//! PostgreSQL and SQLite accept (SQLite reads `$NNN` as parameter number NNN). We chose
//! this over an enum of two typed pools because every repository function is then
//! written, reviewed and tested once; the price is that only the types `Any`
//! understands cross the boundary, so the schema uses TEXT ids (UUID v7), BIGINT
//! millisecond timestamps, BIGINT 0/1 flags (SQLite's `BOOLEAN` does not map through
//! `Any`), TEXT JSON and BLOB/BYTEA bytes. Where the engines really differ the code
//! says so in one place: migrations have one SQL file per backend, write transactions
//! start with `BEGIN IMMEDIATE` on SQLite, PostgreSQL gets advisory locks and
//! `FOR UPDATE SKIP LOCKED` where concurrent writers from several host nodes could race.
//!
//! SQLite databases are created if missing, switched to WAL, and every connection runs
//! with foreign keys on and a busy timeout. `synchronous` stays at SQLite's default
//! (`FULL`): an acknowledged webhook must survive a power cut.
//!
//! # Group commit
//!
//! [`Store::ingest`] does not open a transaction per call. Calls queue to one writer
//! task, which takes everything waiting (up to [`GROUP_COMMIT_MAX_BATCHES`]), applies
//! each batch inside its own savepoint of one transaction, commits once, and only then
//! answers each caller with its own outcome. A batch that fails rolls back to its
//! savepoint and fails alone; if the commit itself fails, every caller in the group
//! gets an error and nothing was stored. Under load this turns N fsyncs into one.
//!
//! # Time
//!
//! Rules that depend on time (reopen windows, leases, session expiry) take `now_ms`
//! from the caller. Bookkeeping timestamps (`created_at` of an agent or plugin, audit
//! entries) use the wall clock.
//!
//! # Testing
//!
//! `tests/repository.rs` runs every repository test twice, on a temporary SQLite file
//! and on a fresh PostgreSQL database (`sb_test_<random>`, created through the
//! `postgres` database and dropped afterwards) on the server named by
//! `SWITCHBOARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`, trust
//! auth). An unreachable server fails the PostgreSQL half; set
//! `SWITCHBOARD_TEST_SKIP_PG=1` to skip it explicitly.
//!
//! ```text
//! cargo test -p switchboard-core -p switchboard-store
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_store::StoreError> {
//! use switchboard_store::Store;
//! let store = Store::connect("sqlite://data/switchboard.db", [0u8; 32]).await?;
//! println!("{} conversations open", store.metrics_counts().await?.conversations_open());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

// First: its column-list macro is used by the modules below.
#[macro_use]
mod timeline;

mod agents;
mod attachments;
mod audit;
mod contacts;
mod conversations;
mod crm;
mod crypto;
mod db;
mod desk;
mod error;
mod files;
mod ingest;
mod leader;
mod migrate;
mod outbox;
mod plugins;
mod reports;
mod routing;
mod store;
mod surveys;
mod threads;
mod voice;
mod writer;

pub use agents::{Agent, NewAgent};
pub use attachments::{AttachmentRow, InboundAttachment, attachment_url};
pub use audit::{AuditEntry, MetricsCounts};
pub use contacts::{ConsentRow, ContactView, IdentityRow, MergeRecord, MovedByMerge};
pub use conversations::ConversationRow;
pub use crm::{CrmActivityKind, CrmActivityRow, CrmActivityStatus, CrmLink, CrmSubscription};
pub use db::Backend;
pub use desk::{DeskSummary, NewEvent, TaskDayRow, WEBCHAT, WebchatVisitor};
pub use error::{Result, StoreError};
pub use files::{FILE_CHUNK_BYTES, FileUpload};
pub use ingest::{
    CallStarted, ConsentEvent, InboundMessage, IngestBatch, IngestEvent, IngestOutcome, Ingested,
    Receipt,
};
pub use leader::{HANDED_BATCH, HandedInbound, LEADER_LOCK, LeaderRecord, Leadership};
pub use outbox::{NewReply, OutboxRow};
pub use plugins::{ConfigEntry, PluginInstall, PluginRecord};
pub use reports::export::ConversationExportRow;
pub use reports::facts::{RoutingLogEntry, skip_report_facts_for_benchmark};
pub use reports::figures::{
    AgentTime, Cell, DrillRow, ExperienceFigures, JourneyFigures, LegFigures, TaskFigures,
};
pub use reports::rebuild::RebuildStats;
pub use reports::sql::{DRILL_METRICS, Dimension, FactQuery, Thresholds};
pub use routing::{
    AgentRoutingRow, QueueRow, ReservationRow, RoutingChanges, RoutingSnapshot, TaskRow,
};
pub use store::Store;
pub use surveys::{SurveyAnswer, SurveyRow, SurveySetting};
pub use threads::THREAD_CONVERSATION_KEY;
pub use timeline::{TimelineEvent, is_automatic};
pub use voice::{CallRecord, CallSave, SipAccount, TrunkRow};
pub use writer::{GROUP_COMMIT_MAX_BATCHES, IngestStats, PG_LANES};
