//! Logging in, under attack as much as in daily use.
//!
//! Two rules keep a login storm from hurting anything else:
//!
//! - **Hashing off the I/O path.** argon2 costs tens of milliseconds of CPU. It runs on
//!   tokio's blocking pool, never on the runtime's workers (which serve webhooks,
//!   sockets and SIP), and at most one check per CPU at a time
//!   ([`crate::accounts::Passwords`]): a storm queues logins, not the server.
//! - **Throttling before hashing.** Failed logins are counted per client address and
//!   per account (the e-mail as typed, whether or not such an account exists). After
//!   [`ThrottleConfig::free_failures`] failures a key waits before it may try again,
//!   the wait doubling with every further failure up to [`ThrottleConfig::max_delay_ms`];
//!   a throttled attempt is answered 429 with `Retry-After` before any hashing. A
//!   success clears the account's count (not the address's: one good password must not
//!   buy an attacker a fresh round of guesses at other accounts). Counts are forgotten
//!   after [`ThrottleConfig::forget_after_ms`] without failures.
//!
//! The answer never tells whether an account exists: an unknown e-mail is checked
//! against a real hash of no one's password, and throttles the same way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use switchboard_store::{Agent, Store};

use crate::accounts::{Passwords, check_password, new_token, token_hash};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::events::{Audience, EventBus};
use crate::metrics::Metrics;

/// How long a login lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// Login throttling settings.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures a client address or an account may have before it must wait.
    pub free_failures: u32,
    /// The first wait; it doubles with every further failure.
    pub base_delay_ms: u64,
    /// The longest wait.
    pub max_delay_ms: u64,
    /// Counts are forgotten after this long without a failure.
    pub forget_after_ms: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 15 * 60 * 1000,
            forget_after_ms: 60 * 60 * 1000,
        }
    }
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// A client address.
    Address(IpAddr),
    /// An account, by the e-mail as typed (lower-cased, trimmed).
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
    blocked_until_ms: i64,
}

/// Failed-login counts with growing waits, on time passed in.
pub struct Throttle {
    config: ThrottleConfig,
    keys: Mutex<HashMap<ThrottleKey, Failures>>,
}

/// Keys kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    /// A throttle with these settings.
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            keys: Mutex::default(),
        }
    }

    /// `Err(ms)` when `key` must wait that long before trying again.
    pub fn check(&self, key: &ThrottleKey, now_ms: i64) -> Result<(), u64> {
        let keys = self.keys.lock().expect("login throttle");
        match keys.get(key) {
            Some(f) if f.blocked_until_ms > now_ms => Err((f.blocked_until_ms - now_ms) as u64),
            _ => Ok(()),
        }
    }

    /// Counts a failure against `key`.
    pub fn failed(&self, key: ThrottleKey, now_ms: i64) {
        let forget = self.config.forget_after_ms as i64;
        let mut keys = self.keys.lock().expect("login throttle");
        if keys.len() >= SWEEP_AT {
            keys.retain(|_, f| now_ms - f.last_ms < forget);
        }
        let f = keys.entry(key).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
            blocked_until_ms: 0,
        });
        if now_ms - f.last_ms >= forget {
            f.count = 0;
        }
        f.count += 1;
        f.last_ms = now_ms;
        if f.count > self.config.free_failures {
            let doublings = (f.count - self.config.free_failures - 1).min(40);
            let delay = self
                .config
                .base_delay_ms
                .saturating_mul(1u64 << doublings)
                .min(self.config.max_delay_ms);
            f.blocked_until_ms = now_ms + delay as i64;
        }
    }

    /// Clears `key`'s failures.
    pub fn succeeded(&self, key: &ThrottleKey) {
        self.keys.lock().expect("login throttle").remove(key);
    }
}

/// A signed-in agent's new session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token, shown once.
    pub token: String,
    /// When it lapses, ms since the epoch.
    pub expires_at: i64,
    /// Who signed in.
    pub agent: Agent,
}

/// The login use case.
pub struct Logins {
    store: Store,
    passwords: Passwords,
    throttle: Throttle,
    metrics: Arc<Metrics>,
    events: Arc<dyn EventBus>,
    dummy_hash: String,
}

/// The bus event that ends sockets: every session of `agent_id` but `keep` (a token
/// hash) is gone. Published to [`Audience::Host`] only.
pub const SESSIONS_REVOKED: &str = "sessions.revoked";

/// Tells the host's sockets that `agent_id`'s sessions but `keep` ended.
pub fn publish_revoked(events: &dyn EventBus, agent_id: &str, keep: Option<&str>) {
    events.publish(
        SESSIONS_REVOKED,
        Audience::Host,
        serde_json::json!({"agent_id": agent_id, "keep": keep}),
    );
}

impl Logins {
    /// Logins over the store, throttled with `config`.
    pub async fn new(
        store: Store,
        passwords: Passwords,
        config: ThrottleConfig,
        metrics: Arc<Metrics>,
        events: Arc<dyn EventBus>,
    ) -> AppResult<Logins> {
        let dummy_hash = passwords.hash("not-a-real-password").await?;
        Ok(Logins {
            store,
            passwords,
            throttle: Throttle::new(config),
            metrics,
            events,
            dummy_hash,
        })
    }

    /// Signs in with e-mail and password from client `address`: a new session, 401
    /// for a wrong e-mail or password (the same either way), 429 with the wait when
    /// the address or the account has failed too often.
    pub async fn login(
        &self,
        address: Option<IpAddr>,
        email: &str,
        password: &str,
    ) -> AppResult<Session> {
        let account = ThrottleKey::Account(email.trim().to_lowercase());
        let mut keys = vec![account.clone()];
        keys.extend(address.map(ThrottleKey::Address));
        let now = now_ms();
        let wait = keys
            .iter()
            .filter_map(|k| self.throttle.check(k, now).err())
            .max();
        if let Some(wait_ms) = wait {
            self.metrics.login("throttled");
            let secs = wait_ms.div_ceil(1000).max(1);
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "rate_limited",
                format!("too many failed logins; try again in {secs} s"),
            )
            .with_retry_after(secs));
        }
        let found = self.store.agent_by_email(email).await?;
        // Verify against a dummy hash when the user is unknown so timing does not
        // reveal which e-mails exist.
        let (agent, hash) = match found {
            Some((agent, hash)) => (Some(agent), hash),
            None => (None, self.dummy_hash.clone()),
        };
        let ok = self.passwords.verify(password, &hash).await;
        let agent = match (agent, ok) {
            // A disabled account answers like a wrong password.
            (Some(agent), true) if !agent.disabled => agent,
            _ => {
                let now = now_ms();
                for key in keys {
                    self.throttle.failed(key, now);
                }
                self.metrics.login("failed");
                let detail = serde_json::json!({
                    "address": address.map(|a| a.to_string()),
                    "email": email.chars().take(200).collect::<String>(),
                });
                if let Err(e) = self
                    .store
                    .audit("anonymous", "auth.login_failed", None, detail)
                    .await
                {
                    tracing::warn!("failed login not audited: {e}");
                }
                return Err(AppError::unauthorized("wrong email or password"));
            }
        };
        self.throttle.succeeded(&account);
        self.metrics.login("ok");
        let token = new_token();
        let now = now_ms();
        self.store
            .create_session(&agent.id, &token_hash(&token), now + SESSION_TTL_MS)
            .await?;
        Ok(Session {
            token,
            expires_at: now + SESSION_TTL_MS,
            agent,
        })
    }

    /// Ends every session of `agent_id` ("sign out everywhere"), sockets included.
    pub async fn logout_everywhere(&self, agent_id: &str) -> AppResult<u64> {
        let ended = self.store.delete_agent_sessions(agent_id, None).await?;
        publish_revoked(self.events.as_ref(), agent_id, None);
        self.store
            .audit(
                agent_id,
                "auth.logout_all",
                Some(agent_id),
                serde_json::json!({"sessions": ended}),
            )
            .await?;
        Ok(ended)
    }

    /// Changes `agent`'s password after checking the current one; every other session
    /// (and its sockets) ends, the one with token hash `keep` stays.
    pub async fn change_password(
        &self,
        agent: &Agent,
        current: &str,
        new: &str,
        keep: &str,
    ) -> AppResult<()> {
        let Some((_, hash)) = self.store.agent_by_email(&agent.email).await? else {
            return Err(AppError::unauthorized("no such account"));
        };
        if !self.passwords.verify(current, &hash).await {
            self.metrics.login("failed");
            return Err(AppError::new(
                ErrorKind::Forbidden,
                "wrong_password",
                "the current password is wrong",
            ));
        }
        check_password(&agent.email, new)?;
        let hash = self.passwords.hash(new).await?;
        self.store.set_password_hash(&agent.id, &hash).await?;
        let ended = self
            .store
            .delete_agent_sessions(&agent.id, Some(keep))
            .await?;
        publish_revoked(self.events.as_ref(), &agent.id, Some(keep));
        self.store
            .audit(
                &agent.id,
                "auth.password_changed",
                Some(&agent.id),
                serde_json::json!({"other_sessions_ended": ended}),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig {
            free_failures: 3,
            base_delay_ms: 1_000,
            max_delay_ms: 8_000,
            forget_after_ms: 60_000,
        })
    }

    #[test]
    fn waits_start_after_the_free_failures_and_double_up_to_the_cap() {
        let t = throttle();
        let key = ThrottleKey::Account("a@example.com".into());
        for i in 0..3 {
            assert_eq!(t.check(&key, i), Ok(()));
            t.failed(key.clone(), i);
        }
        assert_eq!(t.check(&key, 3), Ok(()), "three failures are free");
        t.failed(key.clone(), 10);
        assert_eq!(t.check(&key, 10), Err(1_000));
        assert_eq!(t.check(&key, 1_010), Ok(()), "the wait is over");
        t.failed(key.clone(), 1_010);
        assert_eq!(t.check(&key, 1_010), Err(2_000));
        for _ in 0..10 {
            t.failed(key.clone(), 5_000);
        }
        assert_eq!(t.check(&key, 5_000), Err(8_000), "capped");
    }

    #[test]
    fn keys_are_independent_and_success_or_time_clears_them() {
        let t = throttle();
        let a = ThrottleKey::Address(IpAddr::from([192, 0, 2, 1]));
        let b = ThrottleKey::Address(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..5 {
            t.failed(a.clone(), 0);
        }
        assert!(t.check(&a, 0).is_err());
        assert_eq!(t.check(&b, 0), Ok(()), "another address is not affected");
        t.failed(a.clone(), 61_000);
        assert_eq!(
            t.check(&a, 61_000),
            Ok(()),
            "an hour-old count is forgotten: this is failure one again"
        );
        t.succeeded(&a);
        assert_eq!(t.check(&a, 61_000), Ok(()));
    }

    #[tokio::test]
    async fn hashing_runs_off_the_runtime_and_checks_what_it_hashed() {
        let p = Passwords::new(1);
        let hash = p.hash("correct horse").await.unwrap();
        assert!(p.verify("correct horse", &hash).await);
        assert!(!p.verify("wrong horse", &hash).await);
        assert!(!p.verify("x", "not a hash").await);
    }
}
