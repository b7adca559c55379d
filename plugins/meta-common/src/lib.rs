//! What Switchboard's Meta connectors share: `whatsapp-cloud`, `messenger`
//! and `instagram` all sit behind Meta's webhooks and the Graph API.
//!
//! - [`signature`]: `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with
//!   the app secret, compared in constant time).
//! - [`webhook`]: the `GET` subscription handshake (`hub.verify_token`,
//!   `hub.challenge`) and the signed `POST`.
//! - [`error`]: Graph API errors mapped to [`switchboard_sdk::PluginError`]
//!   by their code, whatever the HTTP status.
//! - [`graph`]: `{api_base}/{graph_version}/…` requests with
//!   `Authorization: Bearer {access_token}`.
//! - [`messenger_platform`]: Messenger and Instagram — webhook parsing, the
//!   Send API, read watermarks, customer names.
//! - [`parts`]: messages that take several requests, resumed on retry.
//! - [`store`]: kv and HTTP behind traits, so all of the above runs in native
//!   unit tests.
//! - [`text`]: timestamps, readable bodies, phone and e-mail recognition.
//!
//! This crate never exports a component; each plugin crate does, with a thin
//! `Channel` impl over these functions.

pub mod error;
pub mod graph;
pub mod messenger_platform;
pub mod parts;
pub mod signature;
pub mod store;
pub mod text;
pub mod webhook;

pub use error::GraphError;
pub use graph::Graph;
