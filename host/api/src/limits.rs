//! How large a request body each kind of route accepts. A body over its limit is
//! answered 413 before a handler reads it.

/// Body limits per kind of route, with defaults a real deployment can keep.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// `/api/v1`: JSON from agents and admins.
    pub api_bytes: usize,
    /// `/webchat/v1`: a visitor's name or message.
    pub webchat_bytes: usize,
    /// `/hooks`: providers' webhooks, which may carry media descriptions.
    pub webhook_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            api_bytes: 256 * 1024,
            webchat_bytes: 64 * 1024,
            webhook_bytes: 2 << 20,
        }
    }
}
