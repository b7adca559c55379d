//! Webhook signatures checked by the host (`switchboard:signing/hmac@0.1.0`).
//!
//! Providers sign webhooks with an HMAC keyed by a secret the operator
//! configured: Twilio HMAC-SHA1 with the auth token, Meta HMAC-SHA256 with the
//! app secret. Instead of reading that secret and hashing in the sandbox, a
//! connector builds the signed bytes the provider's way, decodes the signature
//! it was sent, and names the config key: the host reads the value, computes
//! the MAC natively and compares in constant time. The secret never enters the
//! plugin, and the check costs a fraction of a software hash in WebAssembly.
//!
//! ```no_run
//! use switchboard_sdk::signing::{self, Algorithm};
//!
//! # fn demo(body: &[u8], mac: &[u8]) -> Result<(), switchboard_sdk::PluginError> {
//! if !signing::verify_hmac(Algorithm::Sha256, "app_secret", body, mac)? {
//!     return Err(switchboard_sdk::PluginError::Unauthorized("bad signature".into()));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The key must be one `plugin.toml` declares. The interface is a package of
//! its own beside the frozen `switchboard:plugin@0.2.0`, so calling it adds an
//! import to the component: hosts older than the SDK that introduced it do not
//! load such a component.

use crate::PluginError;
use crate::bindings::signing::switchboard::signing::hmac::{self, SigningError};

/// The hash an HMAC is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1 (Twilio's `X-Twilio-Signature`).
    Sha1,
    /// HMAC-SHA256 (Meta's `X-Hub-Signature-256`, and most providers since).
    Sha256,
}

impl Algorithm {
    /// The name the host knows the algorithm by.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
        }
    }
}

/// Whether `signature` (the raw MAC, decoded from the provider's base64 or
/// hex) is the HMAC of `message` keyed with the value of the config key
/// `config_key`. A signature that does not match is `Ok(false)`.
///
/// # Errors
///
/// [`PluginError::Config`] when the key is not declared in `plugin.toml` or
/// has no value (the operator has a setting to fix), [`PluginError::Internal`]
/// when the host does not compute the algorithm.
pub fn verify_hmac(
    algorithm: Algorithm,
    config_key: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, PluginError> {
    hmac::verify(algorithm.name(), config_key, message, signature).map_err(|e| match e {
        SigningError::UnsupportedAlgorithm(name) => {
            PluginError::Internal(format!("the host does not compute HMAC-{name}"))
        }
        SigningError::UndeclaredKey(key) => PluginError::Config(format!(
            "config `{key}` is not declared in plugin.toml, so no signature is checked with it"
        )),
        SigningError::MissingSecret(key) => {
            PluginError::Config(format!("config `{key}` is required but not set"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_have_the_names_the_host_knows() {
        assert_eq!(Algorithm::Sha1.name(), "sha1");
        assert_eq!(Algorithm::Sha256.name(), "sha256");
    }
}
