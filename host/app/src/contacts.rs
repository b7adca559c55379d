//! Contacts and conversations changed by people: linking identities, reversible
//! merges, conversation status.
//!
//! Identities are normalized here (phones to E.164 with the deployment's default
//! region) before the store sees them; every change is audited under the acting
//! agent's id.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_core::{ConversationStatus, parse_identity_query};
use switchboard_store::{ContactView, ConversationRow, MergeRecord, Store, TimelineEvent};

use crate::clock::Clock;
use crate::email_view::EmailViews;
use crate::error::{AppError, AppResult};

/// The contact use cases.
pub struct Contacts {
    store: Store,
    default_region: Option<String>,
    email: Arc<EmailViews>,
    clock: Clock,
}

impl Contacts {
    /// Contacts over the store; phone numbers without a country code are read in
    /// `default_region`; e-mail messages are shown through `email`; status changes are
    /// stamped with `clock`.
    pub fn new(
        store: Store,
        default_region: Option<String>,
        email: Arc<EmailViews>,
        clock: Clock,
    ) -> Contacts {
        Contacts {
            store,
            default_region,
            email,
            clock,
        }
    }

    /// The contact owning an identity written `kind:value` (`phone:+15551234567`).
    pub async fn find(&self, identity: &str) -> AppResult<Option<ContactView>> {
        let identity = parse_identity_query(identity, self.default_region.as_deref())?;
        Ok(self.store.contact_by_identity(&identity).await?)
    }

    /// A contact's timeline across every channel, oldest first: at most `limit`
    /// events (1–1000), older than the event `before` when given.
    pub async fn timeline(
        &self,
        contact_id: &str,
        limit: u32,
        before: Option<&str>,
    ) -> AppResult<Vec<TimelineEvent>> {
        self.store.contact(contact_id).await?;
        Ok(self
            .store
            .contact_timeline(contact_id, limit.clamp(1, 1000), before)
            .await?)
    }

    /// A conversation with its timeline and its contact. E-mail messages carry an
    /// `email` object: the sanitized, quote-split view the desk shows.
    pub async fn conversation(&self, conversation_id: &str) -> AppResult<Value> {
        let conversation = self.store.conversation(conversation_id).await?;
        let timeline = self.store.conversation_timeline(conversation_id).await?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let mut v = json!(conversation);
        v["timeline"] = self.email.timeline_json(timeline).await?;
        v["contact"] = json!(contact);
        Ok(v)
    }

    /// Links another number, e-mail or handle to a contact (a conflict when it belongs
    /// to someone else).
    pub async fn add_identity(
        &self,
        agent_id: &str,
        contact_id: &str,
        kind: &str,
        value: &str,
    ) -> AppResult<ContactView> {
        let identity =
            switchboard_core::normalize_identity(kind, value, self.default_region.as_deref())?;
        self.store.add_identity(contact_id, &identity).await?;
        self.store
            .audit(
                agent_id,
                "contact.add_identity",
                Some(contact_id),
                json!({"kind": identity.kind(), "value": identity.value()}),
            )
            .await?;
        Ok(self.store.contact(contact_id).await?)
    }

    /// Folds `merge_id` into `keep_id`, reversibly; returns the merge's ledger record
    /// and the contact kept.
    pub async fn merge(
        &self,
        agent_id: &str,
        keep_id: &str,
        merge_id: &str,
    ) -> AppResult<(MergeRecord, ContactView)> {
        let record = self
            .store
            .merge_contacts(keep_id, merge_id, agent_id)
            .await?;
        Ok((record, self.store.contact(keep_id).await?))
    }

    /// Undoes a merge exactly.
    pub async fn undo_merge(&self, agent_id: &str, merge_ledger_id: &str) -> AppResult<()> {
        self.store.unmerge(merge_ledger_id, agent_id).await?;
        Ok(())
    }

    /// Sets a conversation's status (`open`, `pending`, `snoozed`, `resolved`).
    pub async fn set_conversation_status(
        &self,
        conversation_id: &str,
        status: &str,
    ) -> AppResult<ConversationRow> {
        let status: ConversationStatus = status
            .parse()
            .map_err(|e: switchboard_core::ParseEnumError| AppError::bad_request(e.to_string()))?;
        self.store
            .set_conversation_status(conversation_id, status, self.clock.now_ms())
            .await?;
        Ok(self.store.conversation(conversation_id).await?)
    }
}
