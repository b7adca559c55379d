//! Agents (users of the agent desk), their skills, and login sessions.
//!
//! This module stores password hashes and session token hashes; it never sees a
//! password or a session token in clear and never hashes anything itself (the API
//! crate chooses the algorithms).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{Role, Skill, normalize_identity};

use crate::Store;
use crate::db::{RowExt, new_id, wall_clock_ms};
use crate::error::{Result, StoreError};

/// An agent, supervisor or admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Login e-mail, lower-cased.
    pub email: String,
    /// Name shown to colleagues and customers.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Skills with proficiency, by name.
    pub skills: Vec<Skill>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Disabled by an admin: cannot sign in, has no session.
    pub disabled: bool,
}

/// A user to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// Login e-mail; normalized (trimmed, lower-cased) and unique.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password hash (PHC string); never a password.
    pub password_hash: String,
    /// Skills.
    pub skills: Vec<Skill>,
}

impl std::fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAgent")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("skills", &self.skills)
            .finish()
    }
}

fn normalize_email(email: &str) -> Result<String> {
    normalize_identity("email", email, None)
        .map(|i| i.value().to_owned())
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn agent_from_row(row: &AnyRow, skills: Vec<Skill>) -> Result<Agent> {
    Ok(Agent {
        id: row.text("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        role: row.parsed("role")?,
        skills,
        created_at: row.int("created_at")?,
        disabled: row.opt_int("disabled_at")?.is_some(),
    })
}

async fn skills_of(conn: &mut AnyConnection, agent_id: &str) -> Result<Vec<Skill>> {
    sqlx::query("SELECT skill, proficiency FROM agent_skill WHERE agent_id = $1 ORDER BY skill")
        .bind(agent_id.to_owned())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(skill_from_row)
        .collect()
}

fn skill_from_row(row: &AnyRow) -> Result<Skill> {
    let level =
        u8::try_from(row.int("proficiency")?).map_err(|e| StoreError::corrupt("proficiency", e))?;
    Skill::new(&row.text("skill")?, level).map_err(|e| StoreError::corrupt("skill", e))
}

async fn load(conn: &mut AnyConnection, row: Option<AnyRow>) -> Result<Option<Agent>> {
    match row {
        Some(row) => {
            let skills = skills_of(conn, &row.text("id")?).await?;
            Ok(Some(agent_from_row(&row, skills)?))
        }
        None => Ok(None),
    }
}

impl Store {
    /// Creates a user. [`StoreError::Conflict`] if the e-mail is taken.
    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent> {
        let email = normalize_email(&new.email)?;
        let name = new.name.trim().to_owned();
        if name.is_empty() {
            return Err(StoreError::Invalid("agent name is empty".into()));
        }
        let mut skills = new.skills;
        skills.sort_by(|a, b| a.name().cmp(b.name()));
        let agent = Agent {
            id: new_id(),
            email,
            name,
            role: new.role,
            skills,
            created_at: wall_clock_ms(),
            disabled: false,
        };
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO agent (id, email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(agent.id.clone())
        .bind(agent.email.clone())
        .bind(agent.name.clone())
        .bind(agent.role.as_str())
        .bind(new.password_hash)
        .bind(agent.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "an agent with e-mail {} exists",
                agent.email
            )));
        }
        for skill in &agent.skills {
            sqlx::query(
                "INSERT INTO agent_skill (agent_id, skill, proficiency) VALUES ($1, $2, $3)",
            )
            .bind(agent.id.clone())
            .bind(skill.name().to_owned())
            .bind(i64::from(skill.proficiency()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(agent)
    }

    /// The agent with this login e-mail and their password hash, for login.
    pub async fn agent_by_email(&self, email: &str) -> Result<Option<(Agent, String)>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT id, email, name, role, password_hash, created_at, disabled_at FROM agent WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let hash = row.text("password_hash")?;
        Ok(load(&mut conn, Some(row)).await?.map(|a| (a, hash)))
    }

    /// One agent; [`StoreError::NotFound`] if absent.
    pub async fn agent(&self, id: &str) -> Result<Agent> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT id, email, name, role, created_at, disabled_at FROM agent WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        load(&mut conn, row)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", id))
    }

    /// All agents, by name.
    pub async fn list_agents(&self) -> Result<Vec<Agent>> {
        let mut conn = self.pool().acquire().await?;
        let mut skills: HashMap<String, Vec<Skill>> = HashMap::new();
        for row in sqlx::query(
            "SELECT agent_id, skill, proficiency FROM agent_skill ORDER BY agent_id, skill",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            skills
                .entry(row.text("agent_id")?)
                .or_default()
                .push(skill_from_row(&row)?);
        }
        sqlx::query(
            "SELECT id, email, name, role, created_at, disabled_at FROM agent ORDER BY name, email",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            let own = skills.remove(&row.text("id")?).unwrap_or_default();
            agent_from_row(row, own)
        })
        .collect()
    }

    /// Replaces an agent's skills.
    pub async fn set_agent_skills(&self, agent_id: &str, skills: Vec<Skill>) -> Result<Agent> {
        let mut tx = self.begin_write().await?;
        sqlx::query("SELECT id FROM agent WHERE id = $1")
            .bind(agent_id.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", agent_id))?;
        sqlx::query("DELETE FROM agent_skill WHERE agent_id = $1")
            .bind(agent_id.to_owned())
            .execute(&mut *tx)
            .await?;
        for skill in &skills {
            sqlx::query(
                "INSERT INTO agent_skill (agent_id, skill, proficiency) VALUES ($1, $2, $3)",
            )
            .bind(agent_id.to_owned())
            .bind(skill.name().to_owned())
            .bind(i64::from(skill.proficiency()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.agent(agent_id).await
    }

    /// Records a login session by the hash of its token.
    pub async fn create_session(
        &self,
        agent_id: &str,
        token_hash: &str,
        expires_at_ms: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO agent_session (token_hash, agent_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash.to_owned())
            .bind(agent_id.to_owned())
            .bind(wall_clock_ms())
            .bind(expires_at_ms)
            .execute(self.pool())
            .await
            .map_err(|e| match StoreError::from(e) {
                e if e.is_unique_violation() => StoreError::Conflict("session token already exists".into()),
                StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    StoreError::not_found("agent", agent_id)
                }
                e => e,
            })?;
        Ok(())
    }

    /// The agent a session token (hash) belongs to, if the session exists and has not
    /// expired at `now_ms`.
    pub async fn agent_for_session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Agent>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT a.id, a.email, a.name, a.role, a.created_at, a.disabled_at FROM agent_session s
             JOIN agent a ON a.id = s.agent_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled_at IS NULL",
        )
        .bind(token_hash.to_owned())
        .bind(now_ms)
        .fetch_optional(&mut *conn)
        .await?;
        load(&mut conn, row).await
    }

    /// Ends a session (logout); returns whether it existed.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM agent_session WHERE token_hash = $1")
            .bind(token_hash.to_owned())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of an agent but `keep` (a token hash); returns how many.
    pub async fn delete_agent_sessions(&self, agent_id: &str, keep: Option<&str>) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM agent_session WHERE agent_id = $1 AND token_hash <> $2")
                .bind(agent_id.to_owned())
                .bind(keep.unwrap_or("").to_owned())
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// Disables (ending every session in the same transaction) or re-enables an agent.
    pub async fn set_agent_disabled(&self, agent_id: &str, disabled: bool) -> Result<Agent> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE agent SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.then(wall_clock_ms))
            .bind(agent_id.to_owned())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("agent", agent_id));
        }
        if disabled {
            sqlx::query("DELETE FROM agent_session WHERE agent_id = $1")
                .bind(agent_id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.agent(agent_id).await
    }

    /// Replaces an agent's password hash.
    pub async fn set_password_hash(&self, agent_id: &str, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE agent SET password_hash = $1 WHERE id = $2")
            .bind(password_hash.to_owned())
            .bind(agent_id.to_owned())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("agent", agent_id));
        }
        Ok(())
    }

    /// The agent's e-mail signature (plain text), `None` when they have none.
    /// [`StoreError::NotFound`] if there is no such agent.
    pub async fn agent_signature(&self, agent_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT signature FROM agent WHERE id = $1")
            .bind(agent_id.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("agent", agent_id))?;
        Ok(row.opt_text("signature")?.filter(|s| !s.is_empty()))
    }

    /// Sets (or with `None`, removes) the agent's e-mail signature. The caller checks
    /// what a signature may be; the store keeps it as given.
    pub async fn set_agent_signature(&self, agent_id: &str, signature: Option<&str>) -> Result<()> {
        let done = sqlx::query("UPDATE agent SET signature = $1 WHERE id = $2")
            .bind(signature.map(str::to_owned))
            .bind(agent_id.to_owned())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("agent", agent_id));
        }
        Ok(())
    }

    /// Deletes sessions that expired by `now_ms`; returns how many.
    pub async fn purge_expired_sessions(&self, now_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM agent_session WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
