//! Typed errors of the plugin host, carrying which plugin and which call.

use thiserror::Error;

/// A `plugin.toml` that cannot be used.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The manifest path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Not valid TOML, or unknown or missing fields.
    #[error("plugin.toml: {0}")]
    Syntax(String),
    /// Parsed, but some values are wrong.
    #[error("plugin.toml has {} problem(s): {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
}

/// Why a plugin could not be installed or loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component does not compile or does not fit its declared world.
    #[error("plugin `{plugin}`: component rejected: {message}")]
    Component {
        /// Plugin id.
        plugin: String,
        /// What wasmtime said.
        message: String,
    },
    /// A required config key has no value.
    #[error("plugin `{plugin}`: missing required config {}", .keys.join(", "))]
    MissingConfig {
        /// Plugin id.
        plugin: String,
        /// The keys without a value.
        keys: Vec<String>,
    },
    /// A config key the manifest does not declare.
    #[error("plugin `{plugin}`: unknown config key `{key}`")]
    UnknownConfig {
        /// Plugin id.
        plugin: String,
        /// The key.
        key: String,
    },
    /// An `--allow-host` value is not an origin.
    #[error("plugin `{plugin}`: {message}")]
    AllowHost {
        /// Plugin id.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// A config value a `[[capabilities.connect]]` entry names is not a
    /// server (a host key that is no host name, a port key that is no port).
    #[error("plugin `{plugin}`: approved servers: {message}")]
    Connect {
        /// Plugin id.
        plugin: String,
        /// Which config key is wrong.
        message: String,
    },
}

/// Why one call into a plugin failed. Only that call fails; the host goes on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No plugin with that id is loaded.
    #[error("plugin `{0}` is not installed")]
    NotFound(String),
    /// The operator disabled it.
    #[error("plugin `{0}` is disabled")]
    Disabled(String),
    /// It failed too often and was quarantined until re-enabled.
    #[error("plugin `{plugin}` is quarantined: {reason}")]
    Quarantined {
        /// Plugin id.
        plugin: String,
        /// The failure that tipped it over.
        reason: String,
    },
    /// The plugin is not of the kind this call needs.
    #[error("plugin `{plugin}` is a {kind} plugin, not a {wanted} plugin")]
    WrongKind {
        /// Plugin id.
        plugin: String,
        /// What it is.
        kind: String,
        /// What the call needs.
        wanted: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("plugin `{plugin}` {call}: timed out after {millis} ms")]
    Timeout {
        /// Plugin id.
        plugin: String,
        /// The export called.
        call: &'static str,
        /// The deadline.
        millis: u64,
    },
    /// The plugin tried to use more memory than its cap.
    #[error("plugin `{plugin}` {call}: memory limit of {limit_bytes} bytes exceeded")]
    MemoryLimit {
        /// Plugin id.
        plugin: String,
        /// The export called.
        call: &'static str,
        /// The cap.
        limit_bytes: usize,
    },
    /// The plugin trapped (panic, unreachable, bad memory access…).
    #[error("plugin `{plugin}` {call}: trapped: {message}")]
    Trap {
        /// Plugin id.
        plugin: String,
        /// The export called.
        call: &'static str,
        /// The trap, without guest memory contents.
        message: String,
    },
    /// The plugin returned more data than the host accepts.
    #[error("plugin `{plugin}` {call}: output too large: {message}")]
    OutputTooLarge {
        /// Plugin id.
        plugin: String,
        /// The export called.
        call: &'static str,
        /// What was over which limit.
        message: String,
    },
}

impl CallError {
    /// Whether this failure counts against the plugin's health (and may
    /// quarantine it). Refusals by the host itself do not.
    pub fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            CallError::Timeout { .. }
                | CallError::MemoryLimit { .. }
                | CallError::Trap { .. }
                | CallError::OutputTooLarge { .. }
        )
    }
}
