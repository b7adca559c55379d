//! Contacts: the unified customer record, its identities and consents, and reversible
//! merges.
//!
//! One customer = one contact, whichever address they write from. Identities are
//! matched exactly on their normalized form (see `switchboard_core::identity`); this
//! module never guesses. When two contacts turn out to be the same person an agent
//! merges them, and because wrong merges happen, every merge writes a ledger entry
//! listing exactly what moved so [`Store::unmerge`] can move it back.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{ConsentState, Identity};

use crate::Store;
use crate::db::{RowExt, new_id, wall_clock_ms};
use crate::error::{Result, StoreError};
use crate::reports::facts::{move_contact, move_conversation};

/// One of a contact's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRow {
    /// Identity id.
    pub id: String,
    /// Kind, e.g. `phone`.
    pub kind: String,
    /// Normalized value, e.g. `+15551234567`.
    pub value: String,
    /// When it was first seen, ms since the epoch.
    pub created_at: i64,
}

impl IdentityRow {
    /// The identity as a domain value.
    pub fn identity(&self) -> Identity {
        Identity::from_normalized(self.kind.clone(), self.value.clone())
    }
}

/// Recorded consent of one identity on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRow {
    /// The address.
    pub identity: Identity,
    /// The channel, e.g. `sms`.
    pub channel: String,
    /// Opted in or out.
    pub state: ConsentState,
    /// The keyword that set it (`STOP`), if any.
    pub keyword: Option<String>,
    /// When it was set, ms since the epoch.
    pub updated_at: i64,
}

/// A contact with everything the agent desk shows about them at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactView {
    /// Contact id.
    pub id: String,
    /// Name to show, from the first channel that told us one.
    pub display_name: Option<String>,
    /// Free-form attributes (CRM enrichment, preferences), a JSON object.
    pub attributes: serde_json::Value,
    /// Addresses, oldest first.
    pub identities: Vec<IdentityRow>,
    /// Consent per identity and channel.
    pub consents: Vec<ConsentRow>,
    /// Set when this contact was merged into another: look there instead.
    pub merged_into: Option<String>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

impl ContactView {
    /// The most recently linked identity of `kind`: where a reply on a channel that
    /// addresses customers by that kind goes.
    pub fn latest_identity(&self, kind: &str) -> Option<&IdentityRow> {
        self.identities.iter().rev().find(|i| i.kind == kind)
    }
}

/// Exactly what a merge moved, as written to the merge ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovedByMerge {
    /// Identity ids moved to the kept contact.
    pub identities: Vec<String>,
    /// Conversation ids moved to the kept contact.
    pub conversations: Vec<String>,
    /// Timeline event ids moved to the kept contact.
    pub events: Vec<String>,
    /// The kept contact's display name before the merge.
    pub keep_display_name_before: Option<String>,
    /// The kept contact's attributes before the merge.
    pub keep_attributes_before: serde_json::Value,
}

/// A merge ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeRecord {
    /// Ledger id; pass it to [`Store::unmerge`].
    pub id: String,
    /// The contact that was kept.
    pub keep_contact_id: String,
    /// The contact that was merged into it.
    pub merged_contact_id: String,
    /// Who merged.
    pub actor: String,
    /// What moved.
    pub moved: MovedByMerge,
    /// When, ms since the epoch.
    pub created_at: i64,
    /// When it was undone, if it was.
    pub undone_at: Option<i64>,
    /// Who undid it.
    pub undone_by: Option<String>,
}

impl MergeRecord {
    fn from_row(row: &AnyRow) -> Result<MergeRecord> {
        Ok(MergeRecord {
            id: row.text("id")?,
            keep_contact_id: row.text("keep_contact_id")?,
            merged_contact_id: row.text("merged_contact_id")?,
            actor: row.text("actor")?,
            moved: row.json("moved")?,
            created_at: row.int("created_at")?,
            undone_at: row.opt_int("undone_at")?,
            undone_by: row.opt_text("undone_by")?,
        })
    }
}

struct ContactRow {
    display_name: Option<String>,
    attributes: serde_json::Value,
    merged_into: Option<String>,
    created_at: i64,
    updated_at: i64,
}

async fn contact_row(conn: &mut AnyConnection, id: &str) -> Result<ContactRow> {
    let row = sqlx::query(
        "SELECT display_name, attributes, merged_into, created_at, updated_at FROM contact WHERE id = $1",
    )
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("contact", id))?;
    Ok(ContactRow {
        display_name: row.opt_text("display_name")?,
        attributes: row.json("attributes")?,
        merged_into: row.opt_text("merged_into")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

pub(crate) async fn view(conn: &mut AnyConnection, id: &str) -> Result<ContactView> {
    let c = contact_row(conn, id).await?;
    let identities = sqlx::query(
        "SELECT id, kind, value, created_at FROM identity WHERE contact_id = $1 ORDER BY created_at, id",
    )
    .bind(id.to_owned())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(IdentityRow {
            id: r.text("id")?,
            kind: r.text("kind")?,
            value: r.text("value")?,
            created_at: r.int("created_at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let consents = sqlx::query(
        "SELECT c.identity_kind, c.identity_value, c.channel, c.state, c.keyword, c.updated_at
         FROM consent c JOIN identity i ON i.kind = c.identity_kind AND i.value = c.identity_value
         WHERE i.contact_id = $1 ORDER BY c.identity_kind, c.identity_value, c.channel",
    )
    .bind(id.to_owned())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ConsentRow {
            identity: Identity::from_normalized(
                r.text("identity_kind")?,
                r.text("identity_value")?,
            ),
            channel: r.text("channel")?,
            state: r.parsed("state")?,
            keyword: r.opt_text("keyword")?,
            updated_at: r.int("updated_at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(ContactView {
        id: id.to_owned(),
        display_name: c.display_name,
        attributes: c.attributes,
        identities,
        consents,
        merged_into: c.merged_into,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

pub(crate) async fn contact_id_for(
    conn: &mut AnyConnection,
    identity: &Identity,
) -> Result<Option<String>> {
    let row = sqlx::query("SELECT contact_id FROM identity WHERE kind = $1 AND value = $2")
        .bind(identity.kind().to_owned())
        .bind(identity.value().to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.text("contact_id")).transpose()
}

/// The contact owning `identity`, created (with `display_name`) if the identity is new.
/// An existing contact without a name gets `display_name`. Returns the contact id and
/// whether it was created.
pub(crate) async fn resolve_or_create(
    conn: &mut AnyConnection,
    identity: &Identity,
    display_name: Option<&str>,
    now_ms: i64,
) -> Result<(String, bool)> {
    let display_name = display_name.map(str::trim).filter(|n| !n.is_empty());
    if let Some(contact_id) = contact_id_for(conn, identity).await? {
        if let Some(name) = display_name {
            sqlx::query("UPDATE contact SET display_name = $1, updated_at = $2 WHERE id = $3 AND display_name IS NULL")
                .bind(name.to_owned())
                .bind(now_ms)
                .bind(contact_id.clone())
                .execute(&mut *conn)
                .await?;
        }
        return Ok((contact_id, false));
    }
    // A WhatsApp number is the customer's mobile number: the same person as the
    // phone identity with the same E.164 value, and the other way round.
    if let Some(twin) = twin_identity(identity)
        && let Some(contact_id) = contact_id_for(conn, &twin).await?
    {
        insert_identity(conn, &contact_id, identity, now_ms).await?;
        if let Some(name) = display_name {
            sqlx::query("UPDATE contact SET display_name = $1, updated_at = $2 WHERE id = $3 AND display_name IS NULL")
                .bind(name.to_owned())
                .bind(now_ms)
                .bind(contact_id.clone())
                .execute(&mut *conn)
                .await?;
        }
        return Ok((contact_id, false));
    }
    let contact_id = create_contact(conn, identity, display_name, now_ms).await?;
    Ok((contact_id, true))
}

/// A new contact named `display_name` (already trimmed, or `None`), owning `identity`.
pub(crate) async fn create_contact(
    conn: &mut AnyConnection,
    identity: &Identity,
    display_name: Option<&str>,
    now_ms: i64,
) -> Result<String> {
    let contact_id = new_id();
    sqlx::query(
        "INSERT INTO contact (id, display_name, attributes, created_at, updated_at) VALUES ($1, $2, '{}', $3, $3)",
    )
    .bind(contact_id.clone())
    .bind(display_name.map(str::to_owned))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    insert_identity(conn, &contact_id, identity, now_ms).await?;
    Ok(contact_id)
}

/// The identity that names the same person on the other phone-number channel:
/// `whatsapp:+1555…` for `phone:+1555…` and the reverse.
pub(crate) fn twin_identity(identity: &Identity) -> Option<Identity> {
    let twin_kind = match identity.kind() {
        switchboard_core::identity::PHONE => switchboard_core::identity::WHATSAPP,
        switchboard_core::identity::WHATSAPP => switchboard_core::identity::PHONE,
        _ => return None,
    };
    Some(Identity::from_normalized(
        twin_kind.to_owned(),
        identity.value().to_owned(),
    ))
}

pub(crate) async fn insert_identity(
    conn: &mut AnyConnection,
    contact_id: &str,
    identity: &Identity,
    now_ms: i64,
) -> Result<IdentityRow> {
    let row = IdentityRow {
        id: new_id(),
        kind: identity.kind().to_owned(),
        value: identity.value().to_owned(),
        created_at: now_ms,
    };
    sqlx::query("INSERT INTO identity (id, contact_id, kind, value, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(row.id.clone())
        .bind(contact_id.to_owned())
        .bind(row.kind.clone())
        .bind(row.value.clone())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(row)
}

pub(crate) async fn consent_of(
    conn: &mut AnyConnection,
    identity: &Identity,
    channel: &str,
) -> Result<Option<ConsentState>> {
    let row = sqlx::query("SELECT state FROM consent WHERE identity_kind = $1 AND identity_value = $2 AND channel = $3")
        .bind(identity.kind().to_owned())
        .bind(identity.value().to_owned())
        .bind(channel.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.parsed("state")).transpose()
}

pub(crate) async fn set_consent(
    conn: &mut AnyConnection,
    identity: &Identity,
    channel: &str,
    state: ConsentState,
    keyword: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO consent (identity_kind, identity_value, channel, state, keyword, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (identity_kind, identity_value, channel)
         DO UPDATE SET state = excluded.state, keyword = excluded.keyword, updated_at = excluded.updated_at",
    )
    .bind(identity.kind().to_owned())
    .bind(identity.value().to_owned())
    .bind(channel.to_owned())
    .bind(state.as_str())
    .bind(keyword.map(str::to_owned))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn ids(conn: &mut AnyConnection, sql: &'static str, contact_id: &str) -> Result<Vec<String>> {
    sqlx::query(sql)
        .bind(contact_id.to_owned())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.text("id"))
        .collect()
}

async fn move_one(
    conn: &mut AnyConnection,
    sql: &'static str,
    to: &str,
    id: &str,
    from: &str,
) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(to.to_owned())
        .bind(id.to_owned())
        .bind(from.to_owned())
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

fn merged_attributes(keep: &serde_json::Value, merged: &serde_json::Value) -> serde_json::Value {
    match (keep, merged) {
        (serde_json::Value::Object(k), serde_json::Value::Object(m)) => {
            let mut out = m.clone();
            out.extend(k.iter().map(|(key, v)| (key.clone(), v.clone())));
            serde_json::Value::Object(out)
        }
        _ => keep.clone(),
    }
}

impl Store {
    /// A contact with its identities and consents; [`StoreError::NotFound`] if absent.
    /// A merged contact is still returned, with `merged_into` set and no identities.
    pub async fn contact(&self, id: &str) -> Result<ContactView> {
        let mut conn = self.pool().acquire().await?;
        view(&mut conn, id).await
    }

    /// The contact owning `identity`, if any.
    pub async fn contact_by_identity(&self, identity: &Identity) -> Result<Option<ContactView>> {
        let mut conn = self.pool().acquire().await?;
        let mut found = contact_id_for(&mut conn, identity).await?;
        if found.is_none()
            && let Some(twin) = twin_identity(identity)
        {
            found = contact_id_for(&mut conn, &twin).await?;
        }
        match found {
            Some(id) => Ok(Some(view(&mut conn, &id).await?)),
            None => Ok(None),
        }
    }

    /// Creates a contact with one identity (for agents adding a customer by hand).
    /// [`StoreError::Conflict`] if the identity already belongs to a contact.
    pub async fn create_contact(
        &self,
        identity: &Identity,
        display_name: Option<&str>,
    ) -> Result<ContactView> {
        let mut tx = self.begin_write().await?;
        let (id, created) =
            resolve_or_create(&mut tx, identity, display_name, wall_clock_ms()).await?;
        if !created {
            return Err(StoreError::Conflict(format!(
                "{identity} already belongs to contact {id}"
            )));
        }
        let v = view(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Adds an identity to a contact. Adding one it already has is a no-op;
    /// [`StoreError::Conflict`] if another contact owns it (merge them instead).
    pub async fn add_identity(&self, contact_id: &str, identity: &Identity) -> Result<IdentityRow> {
        let mut tx = self.begin_write().await?;
        let contact = contact_row(&mut tx, contact_id).await?;
        if let Some(into) = contact.merged_into {
            return Err(StoreError::Conflict(format!(
                "contact {contact_id} was merged into {into}"
            )));
        }
        match contact_id_for(&mut tx, identity).await? {
            Some(owner) if owner != contact_id => Err(StoreError::Conflict(format!(
                "{identity} belongs to contact {owner}"
            ))),
            Some(_) => {
                let row = sqlx::query(
                    "SELECT id, created_at FROM identity WHERE kind = $1 AND value = $2",
                )
                .bind(identity.kind().to_owned())
                .bind(identity.value().to_owned())
                .fetch_one(&mut *tx)
                .await?;
                Ok(IdentityRow {
                    id: row.text("id")?,
                    kind: identity.kind().to_owned(),
                    value: identity.value().to_owned(),
                    created_at: row.int("created_at")?,
                })
            }
            None => {
                let row = insert_identity(&mut tx, contact_id, identity, wall_clock_ms()).await?;
                tx.commit().await?;
                Ok(row)
            }
        }
    }

    /// Recorded consent of `identity` on `channel`; `None` if never recorded.
    pub async fn consent_state(
        &self,
        identity: &Identity,
        channel: &str,
    ) -> Result<Option<ConsentState>> {
        let mut conn = self.pool().acquire().await?;
        consent_of(&mut conn, identity, channel).await
    }

    /// Sets consent by hand (an agent recording a verbal opt-out, an import).
    pub async fn set_consent_state(
        &self,
        identity: &Identity,
        channel: &str,
        state: ConsentState,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        set_consent(&mut tx, identity, channel, state, None, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Merges contact `merge_id` into `keep_id`: its identities, conversations and
    /// timeline events move to `keep_id` (consents follow their identities); the kept
    /// contact takes the other's name if it had none and its attributes where it had
    /// none; the merged contact remains with `merged_into` set. Everything moved is
    /// listed in the returned ledger entry, which [`Store::unmerge`] reverses.
    pub async fn merge_contacts(
        &self,
        keep_id: &str,
        merge_id: &str,
        actor: &str,
    ) -> Result<MergeRecord> {
        if keep_id == merge_id {
            return Err(StoreError::Invalid(
                "cannot merge a contact into itself".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let keep = contact_row(&mut tx, keep_id).await?;
        let merged = contact_row(&mut tx, merge_id).await?;
        for (id, c) in [(keep_id, &keep), (merge_id, &merged)] {
            if let Some(into) = &c.merged_into {
                return Err(StoreError::Conflict(format!(
                    "contact {id} was already merged into {into}"
                )));
            }
        }
        let moved = MovedByMerge {
            identities: ids(
                &mut tx,
                "SELECT id FROM identity WHERE contact_id = $1 ORDER BY id",
                merge_id,
            )
            .await?,
            conversations: ids(
                &mut tx,
                "SELECT id FROM conversation WHERE contact_id = $1 ORDER BY id",
                merge_id,
            )
            .await?,
            events: ids(
                &mut tx,
                "SELECT id FROM timeline_event WHERE contact_id = $1 ORDER BY id",
                merge_id,
            )
            .await?,
            keep_display_name_before: keep.display_name.clone(),
            keep_attributes_before: keep.attributes.clone(),
        };
        for (sql, from) in [
            (
                "UPDATE identity SET contact_id = $1 WHERE contact_id = $2",
                merge_id,
            ),
            (
                "UPDATE conversation SET contact_id = $1 WHERE contact_id = $2",
                merge_id,
            ),
            (
                "UPDATE timeline_event SET contact_id = $1 WHERE contact_id = $2",
                merge_id,
            ),
        ] {
            sqlx::query(sql)
                .bind(keep_id.to_owned())
                .bind(from.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        move_contact(&mut tx, merge_id, keep_id).await?;
        let attributes = merged_attributes(&keep.attributes, &merged.attributes);
        sqlx::query("UPDATE contact SET display_name = COALESCE(display_name, $1), attributes = $2 WHERE id = $3")
            .bind(merged.display_name.clone())
            .bind(attributes.to_string())
            .bind(keep_id.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE contact SET merged_into = $1 WHERE id = $2")
            .bind(keep_id.to_owned())
            .bind(merge_id.to_owned())
            .execute(&mut *tx)
            .await?;
        let record = MergeRecord {
            id: new_id(),
            keep_contact_id: keep_id.to_owned(),
            merged_contact_id: merge_id.to_owned(),
            actor: actor.to_owned(),
            moved,
            created_at: wall_clock_ms(),
            undone_at: None,
            undone_by: None,
        };
        let moved_json =
            serde_json::to_string(&record.moved).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO merge_ledger (id, keep_contact_id, merged_contact_id, actor, moved, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.id.clone())
        .bind(keep_id.to_owned())
        .bind(merge_id.to_owned())
        .bind(actor.to_owned())
        .bind(moved_json)
        .bind(record.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Reverses a merge: the identities, conversations and events listed in the ledger
    /// go back to the merged contact (so do events that arrived since in the
    /// conversations that move back), the kept contact's name and attributes are
    /// restored, and the merged contact is active again. Items that have since left the
    /// kept contact (for example merged elsewhere) are left where they are.
    /// [`StoreError::Conflict`] if the merge was already undone.
    pub async fn unmerge(&self, merge_ledger_id: &str, actor: &str) -> Result<MergeRecord> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT id, keep_contact_id, merged_contact_id, actor, moved, created_at, undone_at, undone_by
             FROM merge_ledger WHERE id = $1",
        )
        .bind(merge_ledger_id.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("merge", merge_ledger_id))?;
        let mut record = MergeRecord::from_row(&row)?;
        if record.undone_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "merge {merge_ledger_id} was already undone"
            )));
        }
        let (keep, back) = (
            record.keep_contact_id.clone(),
            record.merged_contact_id.clone(),
        );
        let merged = contact_row(&mut tx, &back).await?;
        if merged.merged_into.as_deref() != Some(keep.as_str()) {
            return Err(StoreError::Conflict(format!(
                "contact {back} is no longer merged into {keep}"
            )));
        }
        let moved = &record.moved;
        for id in &moved.identities {
            move_one(
                &mut tx,
                "UPDATE identity SET contact_id = $1 WHERE id = $2 AND contact_id = $3",
                &back,
                id,
                &keep,
            )
            .await?;
        }
        for id in &moved.conversations {
            move_one(
                &mut tx,
                "UPDATE conversation SET contact_id = $1 WHERE id = $2 AND contact_id = $3",
                &back,
                id,
                &keep,
            )
            .await?;
            move_conversation(&mut tx, id, &back).await?;
            move_one(
                &mut tx,
                "UPDATE timeline_event SET contact_id = $1 WHERE conversation_id = $2 AND contact_id = $3",
                &back,
                id,
                &keep,
            )
            .await?;
        }
        for id in &moved.events {
            move_one(
                &mut tx,
                "UPDATE timeline_event SET contact_id = $1 WHERE id = $2 AND contact_id = $3",
                &back,
                id,
                &keep,
            )
            .await?;
        }
        sqlx::query("UPDATE contact SET display_name = $1, attributes = $2 WHERE id = $3")
            .bind(moved.keep_display_name_before.clone())
            .bind(moved.keep_attributes_before.to_string())
            .bind(keep.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE contact SET merged_into = NULL WHERE id = $1")
            .bind(back.clone())
            .execute(&mut *tx)
            .await?;
        let now = wall_clock_ms();
        sqlx::query("UPDATE merge_ledger SET undone_at = $1, undone_by = $2 WHERE id = $3")
            .bind(now)
            .bind(actor.to_owned())
            .bind(merge_ledger_id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        record.undone_at = Some(now);
        record.undone_by = Some(actor.to_owned());
        Ok(record)
    }

    /// Merges involving `contact_id` (kept or merged), newest first.
    pub async fn list_merges(&self, contact_id: &str) -> Result<Vec<MergeRecord>> {
        let mut conn = self.pool().acquire().await?;
        sqlx::query(
            "SELECT id, keep_contact_id, merged_contact_id, actor, moved, created_at, undone_at, undone_by
             FROM merge_ledger WHERE keep_contact_id = $1 OR merged_contact_id = $1
             ORDER BY created_at DESC, id DESC",
        )
        .bind(contact_id.to_owned())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(MergeRecord::from_row)
        .collect()
    }
}
