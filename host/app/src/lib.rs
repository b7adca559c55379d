//! Switchboard's application layer: the use cases, with no HTTP or SIP types in them.
//!
//! Edges — the HTTP API (`switchboard-api`), the SIP user agent (`switchboard-voice`)
//! and the CLI — parse what arrives, call one use case here and shape the answer.
//! The use cases work with the domain crates (core, store, routing, plugin-host) and
//! tell the world what changed through the [`events::EventBus`].
//!
//! - [`ingest`]: a provider webhook through its connector into the store, then routing
//!   (started once the answer is written: [`after_answer`]);
//! - [`outbox`]: agents' replies and the worker that delivers them;
//! - [`routing`]: the service that drives the sans-IO routing engine with the wall
//!   clock and the routing policy plugin; [`tasks`]: routing on behalf of people;
//! - [`webchat`]: the host's own customer channel;
//! - [`desk`], [`supervisor`], [`contacts`]: what agents and supervisors do and see;
//! - [`surveys`]: CSAT, CES and NPS asked after a resolve, and the answers;
//! - [`plugins`]: plugin administration; [`channels`]: which channels exist;
//! - [`attachments`] over [`blobs`], the content-addressed file store (a folder, or
//!   on a cluster the database with the folder as a cache: [`FileStore`]);
//!   [`recordings`]: call recordings any node serves;
//! - [`events`] and [`notify`]: the event bus and publishing to the right audience;
//!   [`events_nats`]: the bus across the nodes of a cluster (NATS JetStream);
//! - [`login`]: signing in, with hashing off the I/O path and throttling;
//! - [`accounts`]: passwords, tokens and users; [`text`]: what people type;
//!   [`clock`]: the wall clock and the UTC day; [`metrics`]; [`host_services`]: the
//!   capabilities plugins get in the server (kv in the store, outbound HTTP).
//!
//! [`App`] holds the services together; each is built from only the parts it uses.
//! Module dependencies point one way (no module imports one that imports it back);
//! `scripts/check-module-cycles.py` checks it.

#![deny(missing_docs)]

pub mod accounts;
pub mod after_answer;
pub mod app;
pub mod attachments;
pub mod background;
pub mod blobs;
pub mod channels;
pub mod clock;
pub mod compose;
pub mod contacts;
pub mod crm;
pub mod desk;
pub mod email_view;
pub mod error;
pub mod events;
pub mod events_nats;
pub mod host_services;
pub mod ingest;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod plugins;
pub mod rate;
pub mod recordings;
pub mod relay;
pub mod reports;
pub mod routing;
pub mod signing;
pub mod supervisor;
pub mod surveys;
pub mod tasks;
pub mod text;
pub mod webchat;

pub use app::{App, AppConfig};
pub use blobs::FileStore;
pub use clock::{Clock, now_ms};
pub use error::{AppError, AppResult, ErrorKind};
pub use events::{Audience, BusEvent, Delivery, EventBus, LocalBus, Subscription};
pub use events_nats::{NatsBus, NatsBusConfig};
pub use host_services::ServerServices;
pub use metrics::Metrics;
pub use outbox::OutboxConfig;
