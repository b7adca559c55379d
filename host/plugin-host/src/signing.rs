//! `switchboard:signing/hmac`: webhook signatures checked natively, with a
//! secret read from the plugin's own config and never handed to the plugin.
//!
//! This module owns the check only: it never logs the secret, the message or
//! either MAC, and refuses keys the plugin's manifest does not declare, so a
//! plugin can use no config value it could not already read.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::bindings::signing::switchboard::signing::hmac::{Host, SigningError};
use crate::state::PluginState;

/// Whether `signature` is the HMAC of `message` keyed with `secret`, using
/// the hash `algorithm` names; the comparison runs in constant time.
///
/// # Errors
///
/// [`SigningError::UnsupportedAlgorithm`] for anything but `sha1` and `sha256`.
pub(crate) fn verify(
    algorithm: &str,
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, SigningError> {
    fn check<M: Mac + hmac::digest::KeyInit>(
        secret: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let mut mac = <M as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }
    match algorithm {
        "sha1" => Ok(check::<Hmac<Sha1>>(secret, message, signature)),
        "sha256" => Ok(check::<Hmac<Sha256>>(secret, message, signature)),
        other => Err(SigningError::UnsupportedAlgorithm(other.to_owned())),
    }
}

impl Host for PluginState {
    fn verify(
        &mut self,
        algorithm: String,
        key: String,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<bool, SigningError> {
        let secret = self.secret(&key)?;
        verify(&algorithm, secret.as_bytes(), &message, &signature)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::{
        BoxFuture, HostServices, HttpFailure, KvFailure, Limits, OutboundRequest, OutboundResponse,
    };

    /// Services for a store whose calls never reach them: `verify` reads only
    /// the plugin's config.
    struct Unreachable;

    impl HostServices for Unreachable {
        fn kv_get(&self, _: String, _: String) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
            Box::pin(async { Err("no kv in this test".to_owned()) })
        }
        fn kv_set(
            &self,
            _: String,
            _: String,
            _: Vec<u8>,
            _: u64,
        ) -> BoxFuture<'_, Result<(), KvFailure>> {
            Box::pin(async { Err(KvFailure::Unavailable("no kv in this test".to_owned())) })
        }
        fn kv_delete(&self, _: String, _: String) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Err("no kv in this test".to_owned()) })
        }
        fn now_ms(&self) -> u64 {
            0
        }
        fn send_http(
            &self,
            _: OutboundRequest,
        ) -> BoxFuture<'_, Result<OutboundResponse, HttpFailure>> {
            Box::pin(async { Err(HttpFailure::Other("no http in this test".to_owned())) })
        }
        fn plugin_quarantined(&self, _: String, _: String) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    /// A plugin declaring `auth_token` (set to "Jefe"), `unset_token` (no
    /// value) and `empty_token` (set to ""), as `load` would resolve it.
    fn plugin() -> PluginState {
        let config = HashMap::from([
            ("auth_token".to_owned(), "Jefe".to_owned()),
            ("empty_token".to_owned(), String::new()),
            (
                "switchboard.webhook-base".to_owned(),
                "https://sb.test/hooks/p".to_owned(),
            ),
        ]);
        PluginState::new(
            Arc::from("p"),
            Arc::new(config),
            Arc::from(["auth_token", "unset_token", "empty_token"].map(String::from)),
            Arc::from([]),
            false,
            Arc::new(Unreachable),
            Limits::default(),
        )
    }

    // RFC 2202 test case 2 and RFC 4231 test case 2: key "Jefe",
    // data "what do ya want for nothing?".
    const DATA: &[u8] = b"what do ya want for nothing?";

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn checks_the_published_vectors() {
        let sha1 = unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let sha256 = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(verify("sha1", b"Jefe", DATA, &sha1), Ok(true));
        assert_eq!(verify("sha256", b"Jefe", DATA, &sha256), Ok(true));
        // The other hash's MAC, a truncated MAC and another key do not match.
        assert_eq!(verify("sha1", b"Jefe", DATA, &sha256), Ok(false));
        assert_eq!(verify("sha256", b"Jefe", DATA, &sha256[..31]), Ok(false));
        assert_eq!(verify("sha256", b"jefe", DATA, &sha256), Ok(false));
    }

    #[test]
    fn names_an_algorithm_it_does_not_compute() {
        assert_eq!(
            verify("md5", b"Jefe", DATA, &[0; 16]),
            Err(SigningError::UnsupportedAlgorithm("md5".into()))
        );
        // Names are lower case, as the WIT documents.
        assert_eq!(
            verify("SHA256", b"Jefe", DATA, &[0; 32]),
            Err(SigningError::UnsupportedAlgorithm("SHA256".into()))
        );
    }

    #[test]
    fn the_host_keys_the_mac_with_the_plugins_declared_secret() {
        let mac = unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let mut state = plugin();
        let verify = |state: &mut PluginState, algorithm: &str, key: &str, mac: &[u8]| {
            Host::verify(
                state,
                algorithm.into(),
                key.into(),
                DATA.to_vec(),
                mac.to_vec(),
            )
        };
        assert_eq!(verify(&mut state, "sha1", "auth_token", &mac), Ok(true));
        assert_eq!(
            verify(&mut state, "sha1", "auth_token", &mac[1..]),
            Ok(false)
        );
        assert_eq!(
            verify(&mut state, "sha512", "auth_token", &mac),
            Err(SigningError::UnsupportedAlgorithm("sha512".into()))
        );
        // Declared, but the operator set nothing (or nothing but "").
        for key in ["unset_token", "empty_token"] {
            assert_eq!(
                verify(&mut state, "sha1", key, &mac),
                Err(SigningError::MissingSecret(key.into()))
            );
        }
        // A key the manifest does not declare, even one the host sets and the
        // plugin may read, never keys a MAC; nor does a near miss.
        for key in ["switchboard.webhook-base", "AUTH_TOKEN", "", "other"] {
            assert_eq!(
                verify(&mut state, "sha1", key, &mac),
                Err(SigningError::UndeclaredKey(key.into()))
            );
        }
    }
}
