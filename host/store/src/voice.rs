//! Voice: SIP trunks, desk-phone accounts and call records.
//!
//! A trunk's password is sealed like a plugin secret and only opened for the host's
//! SIP layer ([`Store::trunks`]); listings for people ([`TrunkRow::public`]) never
//! carry it. A desk phone's account keeps only the digest HA1, so the password a
//! phone uses is never stored. A call record is the durable state of one call; its
//! timeline event carries the same detail for display.

use serde::Serialize;
use serde_json::{Value, json};

use crate::Store;
use crate::db::{RowExt, new_id, wall_clock_ms};
use crate::error::{Result, StoreError};
use crate::timeline::TimelineEvent;

/// The namespace trunk passwords are sealed under.
const TRUNK_SECRETS: &str = "sip-trunk";

/// A SIP trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRow {
    /// Id.
    pub id: String,
    /// Unique name, e.g. `carrier`.
    pub name: String,
    /// `host:port` of the trunk: where outbound INVITEs go, and the source address
    /// (host) whose INVITEs are accepted as trunk calls.
    pub address: String,
    /// Digest username for the trunk's challenges.
    pub username: Option<String>,
    /// Digest password, decrypted (host use only).
    pub password: Option<String>,
    /// When it was added, ms since the epoch.
    pub created_at: i64,
}

impl TrunkRow {
    /// What an admin may see: no password, only whether one is set.
    pub fn public(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "username": self.username,
            "has_password": self.password.is_some(),
            "created_at": self.created_at,
        })
    }
}

/// A desk phone's SIP account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAccount {
    /// The SIP username (the extension), e.g. `1001`.
    pub username: String,
    /// The digest realm the HA1 was made for.
    pub realm: String,
    /// MD5(username:realm:password), lowercase hex.
    pub ha1: String,
    /// The agent whose phone it is, if any.
    pub agent_id: Option<String>,
}

/// The durable record of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// Call id.
    pub id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The call's state (`ivr`, `queued`, `connected`, `ended`…).
    pub state: String,
    /// The customer's number (caller of an inbound call, callee of an outbound one).
    pub remote_number: String,
    /// The number dialed (our number for inbound calls).
    pub dialed_number: String,
    /// The customer's contact.
    pub contact_id: Option<String>,
    /// The conversation the call joined.
    pub conversation_id: Option<String>,
    /// Its timeline event.
    pub event_id: Option<String>,
    /// The agent who took it (last one, after transfers).
    pub agent_id: Option<String>,
    /// Where the recording was written, if it was.
    #[serde(skip)]
    pub recording_path: Option<String>,
    /// IVR path, queue, waits, disposition…: a JSON object.
    pub detail: Value,
    /// When it started, ms since the epoch.
    pub started_at: i64,
    /// When it was answered (by an agent, or by the far end of an outbound call).
    pub answered_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
}

/// What [`Store::save_call_with_event`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CallSave {
    /// Written; with the call's timeline event as it now reads, when one was updated.
    Saved(Option<Box<TimelineEvent>>),
    /// Not written: the stored record had already ended and this one had not.
    Stale,
}

fn trunk_from(store: &Store, row: &sqlx::any::AnyRow) -> Result<TrunkRow> {
    let name = row.text("name")?;
    let password = row
        .opt_text("password")?
        .map(|sealed| store.secrets().open(TRUNK_SECRETS, &name, &sealed))
        .transpose()?;
    Ok(TrunkRow {
        id: row.text("id")?,
        address: row.text("address")?,
        username: row.opt_text("username")?,
        password,
        created_at: row.int("created_at")?,
        name,
    })
}

fn call_from(row: &sqlx::any::AnyRow) -> Result<CallRecord> {
    Ok(CallRecord {
        id: row.text("id")?,
        direction: row.text("direction")?,
        state: row.text("state")?,
        remote_number: row.text("remote_number")?,
        dialed_number: row.text("dialed_number")?,
        contact_id: row.opt_text("contact_id")?,
        conversation_id: row.opt_text("conversation_id")?,
        event_id: row.opt_text("event_id")?,
        agent_id: row.opt_text("agent_id")?,
        recording_path: row.opt_text("recording_path")?,
        detail: row.json("detail")?,
        started_at: row.int("started_at")?,
        answered_at: row.opt_int("answered_at")?,
        ended_at: row.opt_int("ended_at")?,
    })
}

impl Store {
    /// Adds a trunk, or replaces the one of that name.
    pub async fn upsert_trunk(
        &self,
        name: &str,
        address: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<TrunkRow> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(StoreError::Invalid("trunk name: 1-64 characters".into()));
        }
        if address.trim().is_empty() {
            return Err(StoreError::Invalid("trunk address: host:port".into()));
        }
        if username.is_some() != password.is_some() {
            return Err(StoreError::Invalid(
                "trunk credentials: give both a username and a password, or neither".into(),
            ));
        }
        let sealed = password
            .map(|p| self.secrets().seal(TRUNK_SECRETS, name, p))
            .transpose()?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sip_trunk (id, name, address, username, password, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET address = excluded.address,
             username = excluded.username, password = excluded.password",
        )
        .bind(new_id())
        .bind(name.to_owned())
        .bind(address.trim().to_owned())
        .bind(username.map(str::to_owned))
        .bind(sealed)
        .bind(wall_clock_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.trunks()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| StoreError::not_found("trunk", name))
    }

    /// Every trunk, passwords decrypted (host use only), by name.
    pub async fn trunks(&self) -> Result<Vec<TrunkRow>> {
        let rows = sqlx::query(
            "SELECT id, name, address, username, password, created_at FROM sip_trunk ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| trunk_from(self, r)).collect()
    }

    /// Removes a trunk by name; returns whether it existed.
    pub async fn remove_trunk(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sip_trunk WHERE name = $1")
            .bind(name.to_owned())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds or replaces a desk phone's account.
    pub async fn upsert_sip_account(&self, account: &SipAccount) -> Result<()> {
        let valid = !account.username.is_empty()
            && account.username.len() <= 64
            && account
                .username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
        if !valid {
            return Err(StoreError::Invalid(
                "SIP username: 1-64 letters, digits, '-', '_', '.' or '+'".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sip_account (username, realm, ha1, agent_id, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (username) DO UPDATE SET realm = excluded.realm, ha1 = excluded.ha1,
             agent_id = excluded.agent_id",
        )
        .bind(account.username.clone())
        .bind(account.realm.clone())
        .bind(account.ha1.clone())
        .bind(account.agent_id.clone())
        .bind(wall_clock_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A desk phone's account by SIP username.
    pub async fn sip_account(&self, username: &str) -> Result<Option<SipAccount>> {
        let row = sqlx::query(
            "SELECT username, realm, ha1, agent_id FROM sip_account WHERE username = $1",
        )
        .bind(username.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SipAccount {
                username: r.text("username")?,
                realm: r.text("realm")?,
                ha1: r.text("ha1")?,
                agent_id: r.opt_text("agent_id")?,
            })
        })
        .transpose()
    }

    /// Writes a call's record. A record that is already ended is only replaced by
    /// another ended one, so a save that raced with the hang-up cannot undo the end;
    /// returns whether the record was written.
    pub async fn save_call(&self, call: &CallRecord) -> Result<bool> {
        Ok(self.save_call_with_event(call, None).await? != CallSave::Stale)
    }

    /// Writes a call's record and, with `summary`, its timeline event's body and
    /// detail, in one transaction and under the same rule as [`Store::save_call`]:
    /// an ended record is never replaced by an unended one, and then the event is
    /// left alone too.
    pub async fn save_call_with_event(
        &self,
        call: &CallRecord,
        summary: Option<&str>,
    ) -> Result<CallSave> {
        let mut tx = self.begin_write().await?;
        let written = sqlx::query(
            "INSERT INTO call_record (id, direction, state, remote_number, dialed_number,
             contact_id, conversation_id, event_id, agent_id, recording_path, detail,
             started_at, answered_at, ended_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
             contact_id = excluded.contact_id, conversation_id = excluded.conversation_id,
             event_id = excluded.event_id, agent_id = excluded.agent_id,
             recording_path = excluded.recording_path, detail = excluded.detail,
             answered_at = excluded.answered_at, ended_at = excluded.ended_at
             WHERE call_record.ended_at IS NULL OR excluded.ended_at IS NOT NULL",
        )
        .bind(call.id.clone())
        .bind(call.direction.clone())
        .bind(call.state.clone())
        .bind(call.remote_number.clone())
        .bind(call.dialed_number.clone())
        .bind(call.contact_id.clone())
        .bind(call.conversation_id.clone())
        .bind(call.event_id.clone())
        .bind(call.agent_id.clone())
        .bind(call.recording_path.clone())
        .bind(call.detail.to_string())
        .bind(call.started_at)
        .bind(call.answered_at)
        .bind(call.ended_at)
        .execute(&mut *tx)
        .await?;
        if written.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(CallSave::Stale);
        }
        if let (Some(ended), Some(event)) = (call.ended_at, &call.event_id) {
            crate::crm::queue(&mut tx, event, crate::crm::CrmActivityKind::Call, ended).await?;
        }
        let event = match (summary, &call.event_id) {
            (Some(body), Some(id)) => {
                let done =
                    sqlx::query("UPDATE timeline_event SET body = $1, data = $2 WHERE id = $3")
                        .bind(crate::db::storable(body))
                        .bind(call.detail.to_string())
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("timeline event", id));
                }
                Some(id.clone())
            }
            _ => None,
        };
        tx.commit().await?;
        Ok(match event {
            Some(id) => CallSave::Saved(Some(Box::new(self.event(&id).await?))),
            None => CallSave::Saved(None),
        })
    }

    /// One call record.
    pub async fn call(&self, id: &str) -> Result<CallRecord> {
        let row = sqlx::query("SELECT * FROM call_record WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("call", id))?;
        call_from(&row)
    }

    /// Calls that a crash left unfinished (no `ended_at`); the host ends them at start.
    pub async fn unfinished_calls(&self) -> Result<Vec<CallRecord>> {
        let rows = sqlx::query("SELECT * FROM call_record WHERE ended_at IS NULL")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(call_from).collect()
    }
}
