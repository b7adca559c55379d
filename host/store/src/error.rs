//! The store's error type. Callers match on the variant to choose an HTTP status or a
//! WIT error; the message carries enough context (which entity, which id) for logs.

/// What went wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist.
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// Kind of record, e.g. `"contact"`.
        entity: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The change contradicts existing data (a unique value owned by someone else, a
    /// merge already undone, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A routing write from a node that no longer leads routing (its epoch is not
    /// the current one); nothing was written.
    #[error("routing write fenced: this node's leader epoch {held} is not the current {current}")]
    Fenced {
        /// The epoch the writer holds.
        held: i64,
        /// The current epoch.
        current: i64,
    },
    /// The recipient opted out of this channel; nothing was written.
    #[error("{identity} opted out of {channel}")]
    OptedOut {
        /// The recipient, `kind:value`.
        identity: String,
        /// The channel, e.g. `sms`.
        channel: String,
    },
    /// A plugin's key-value store would exceed its quota; nothing was written.
    #[error("plugin {plugin_id:?} key-value quota exceeded: {would_use} bytes > {limit} bytes")]
    QuotaExceeded {
        /// The plugin.
        plugin_id: String,
        /// Bytes the plugin would use after the write (keys plus values).
        would_use: u64,
        /// The quota.
        limit: u64,
    },
    /// The request itself is invalid (bad argument, bad URL, …).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A secret could not be encrypted or decrypted (wrong key or tampered data).
    #[error(
        "secret {key:?} of plugin {plugin_id:?} cannot be decrypted (wrong secret key or corrupted value)"
    )]
    Crypto {
        /// The plugin.
        plugin_id: String,
        /// The config key.
        key: String,
    },
    /// Stored data does not decode (unknown enum spelling, bad JSON, …).
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// The schema could not be brought up to date.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// Migration number.
        version: i64,
        /// Migration name.
        name: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds a schema newer than this build knows.
    #[error(
        "database schema version {found} is newer than this build's {supported}; upgrade Switchboard"
    )]
    SchemaTooNew {
        /// Highest migration applied in the database.
        found: i64,
        /// Highest migration this build knows.
        supported: i64,
    },
    /// The ingest writer is gone or the group transaction failed as a whole; the batch
    /// was not stored and may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            entity,
            id: id.into(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// True if the database refused the write because of a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// Whether the database refused a statement because of another transaction: a
    /// deadlock or serialization failure (PostgreSQL `40P01`, `40001`), or a unique key
    /// another transaction inserted first. Applying the work again may succeed.
    pub(crate) fn is_conflict_with_another_transaction(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || matches!(e.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
