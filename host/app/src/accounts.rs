//! Accounts: password hashing, bearer-token material and creating users.
//!
//! Passwords are hashed with argon2id. A token is 32 random bytes shown once to its
//! holder; only its SHA-256 is stored, so a database leak yields no usable tokens.
//! Checking a request's token is the edge's business; making and hashing them is here
//! because webchat sessions use the same scheme. Logging in is [`crate::login`]'s.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_core::{Role, Skill};
use switchboard_store::{Agent, NewAgent, Store};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The stored form of a bearer token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random bearer token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Password hashing and checking on the blocking pool, at most one per CPU at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Passwords::new(cpus)
    }
}

impl Passwords {
    /// At most `concurrent` hashes or checks at a time.
    pub fn new(concurrent: usize) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// Hashes a password for storage.
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(AppError::internal)?
    }

    /// Whether `password` matches `hash`.
    pub async fn verify(&self, password: &str, hash: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_string(), hash.to_string());
        tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    }
}

/// Creates a user from the CLI or the API; the password must pass [`check_password`]. The hash
/// is computed on the blocking pool ([`Passwords`]).
pub async fn create_user(
    store: &Store,
    passwords: &Passwords,
    email: &str,
    password: &str,
    role: Role,
    name: Option<String>,
    skills: Vec<Skill>,
) -> AppResult<Agent> {
    check_password(email, password)?;
    if !email.contains('@') {
        return Err(AppError::bad_request("email must be an e-mail address"));
    }
    let hash = passwords.hash(password).await?;
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
    Ok(store
        .create_agent(NewAgent {
            email: email.to_string(),
            name,
            role,
            password_hash: hash,
            skills,
        })
        .await?)
}

/// Passwords nobody should be allowed to choose: the most common ones of at least
/// eight characters in public breach lists.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "11111111",
    "00000000",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "admin123",
    "letmein1",
    "trustno1",
    "changeme",
    "abcdefgh",
    "abc12345",
    "passw0rd",
    "p@ssw0rd",
    "switchboard",
];

/// A password's minimum strength: 8 to 1024 characters, not one repeated character,
/// not a well-known password, not the account's own e-mail or its name part alone.
pub fn check_password(email: &str, password: &str) -> AppResult<()> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < 8 {
        return Err(AppError::bad_request(
            "the password must have at least 8 characters",
        ));
    }
    if chars.len() > 1024 {
        return Err(AppError::bad_request(
            "the password must have at most 1024 characters",
        ));
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    let weak = chars.iter().all(|c| *c == chars[0])
        || COMMON_PASSWORDS.contains(&lower.as_str())
        || lower == email
        || lower == local;
    if weak {
        return Err(AppError::bad_request(
            "the password is too easy to guess: not a common password, not your e-mail",
        ));
    }
    Ok(())
}

/// Whether the agent has the supervisor or admin role.
pub fn is_supervisor(agent: &Agent) -> bool {
    matches!(agent.role, Role::Supervisor | Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        let email = "sam.jones@example.com";
        assert!(check_password(email, "correct-horse-battery").is_ok());
        for weak in [
            "short",
            "aaaaaaaaaaaa",
            "Password123",
            "sam.jones@example.com",
            "Sam.Jones",
        ] {
            assert!(check_password(email, weak).is_err(), "{weak} refused");
        }
        assert!(check_password(email, &"x".repeat(1025)).is_err());
    }
}
