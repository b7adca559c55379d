//! The outbox worker: delivers replies through their connector.
//!
//! A reply is durable the moment the API answers (event and outbox row commit
//! together). This worker claims due rows with a lease — a crashed worker's
//! rows come back when the lease runs out — calls the connector's `send`, and
//! records the result: sent, retry with exponential backoff, or dead letter
//! after the last attempt. Consent is checked again here, on the host's send
//! path, so no connector can message an identity that opted out.

use std::time::Duration;

use switchboard_core::{ConsentState, retry_delay};
use switchboard_plugin_host::{CallError, OutboundMessage, PluginError, bindings};
use switchboard_store::OutboxRow;
use tokio::sync::watch;

use crate::AppState;

/// Outbox tuning.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Delay before the first retry; doubles each attempt.
    pub retry_base: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// Attempts before a message becomes a dead letter.
    pub max_attempts: u32,
    /// How long a claimed row is reserved for one worker.
    pub lease: Duration,
    /// Idle polling interval (a new reply wakes the worker at once).
    pub poll: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            max_attempts: 8,
            lease: Duration::from_secs(120),
            poll: Duration::from_millis(500),
        }
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    const BATCH: u32 = 32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let lease = state.outbox.lease.as_millis() as i64;
        let claimed = match state
            .store
            .claim_outbox(crate::now_ms(), BATCH, lease)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("outbox claim failed: {e}");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        let sends = claimed.into_iter().map(|row| deliver(&state, row));
        futures_join_all(sends).await;
        if full {
            continue;
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(state.outbox.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    for f in set {
        f.await;
    }
}

enum Verdict {
    Retry(String, Option<Duration>),
    Dead(String),
}

async fn deliver(state: &AppState, row: OutboxRow) {
    let now = crate::now_ms();
    let to = row.to.clone();
    match state.store.consent_state(&to, &row.channel).await {
        Ok(Some(ConsentState::OptedOut)) => {
            let reason = format!(
                "{}:{} opted out of {}; not sent",
                row.to.kind(),
                row.to.value(),
                row.channel
            );
            finish_dead(state, &row, &reason).await;
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(outbox = %row.id, "consent check failed: {e}");
            retry(state, &row, format!("consent check failed: {e}"), None).await;
            return;
        }
    }
    if row.plugin_id == crate::webchat::PLUGIN_ID {
        match crate::webchat::deliver(state, &row).await {
            Ok(()) => state.metrics.outbox("sent"),
            Err(e) => retry(state, &row, format!("webchat delivery failed: {e}"), None).await,
        }
        return;
    }
    let message = OutboundMessage {
        message_id: row.event_id.clone(),
        conversation_id: row.conversation_id.clone(),
        to: bindings::Identity {
            kind: row.to.kind().to_string(),
            value: row.to.value().to_string(),
        },
        body: row.body.clone(),
        attachments: Vec::new(),
    };
    let verdict = match state.plugins.send(&row.plugin_id, &message).await {
        Ok(Ok(receipt)) => {
            let status = crate::hooks::delivery_status(receipt.status);
            if let Err(e) = state
                .store
                .outbox_sent(&row.id, &receipt.provider_id, status, now)
                .await
            {
                tracing::error!(outbox = %row.id, "recording a sent message failed: {e}");
            }
            state.metrics.outbox("sent");
            return;
        }
        Ok(Err(e)) => match e {
            PluginError::Transient(m) => Verdict::Retry(format!("provider unavailable: {m}"), None),
            PluginError::RateLimited(after) => Verdict::Retry(
                "provider rate limit".into(),
                after.map(|s| Duration::from_secs(s.into())),
            ),
            PluginError::Internal(m) => Verdict::Retry(format!("connector error: {m}"), None),
            PluginError::Permanent(m) => Verdict::Dead(format!("provider refused: {m}")),
            PluginError::Config(m) => Verdict::Dead(format!("connector misconfigured: {m}")),
            PluginError::InvalidRequest(m) => Verdict::Dead(format!("invalid message: {m}")),
            PluginError::Unauthorized(m) => Verdict::Dead(format!("provider auth failed: {m}")),
        },
        Err(e @ CallError::NotFound(_)) | Err(e @ CallError::WrongKind { .. }) => {
            Verdict::Dead(e.to_string())
        }
        Err(e) => Verdict::Retry(e.to_string(), None),
    };
    match verdict {
        Verdict::Retry(reason, after) => retry(state, &row, reason, after).await,
        Verdict::Dead(reason) => finish_dead(state, &row, &reason).await,
    }
}

async fn retry(state: &AppState, row: &OutboxRow, reason: String, after: Option<Duration>) {
    let attempts = row.attempts + 1;
    if attempts >= state.outbox.max_attempts {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        finish_dead(state, row, &reason).await;
        return;
    }
    let delay = after
        .unwrap_or_else(|| retry_delay(attempts, state.outbox.retry_base, state.outbox.retry_max));
    tracing::warn!(outbox = %row.id, attempts, "send failed, retrying in {delay:?}: {reason}");
    state.metrics.outbox("retry");
    let next = crate::now_ms() + delay.as_millis() as i64;
    if let Err(e) = state
        .store
        .outbox_retry(&row.id, attempts, next, &reason)
        .await
    {
        tracing::error!(outbox = %row.id, "recording a retry failed: {e}");
    }
}

async fn finish_dead(state: &AppState, row: &OutboxRow, reason: &str) {
    tracing::error!(outbox = %row.id, "dead letter: {reason}");
    state.metrics.outbox("dead");
    if let Err(e) = state.store.outbox_dead(&row.id, reason).await {
        tracing::error!(outbox = %row.id, "recording a dead letter failed: {e}");
    }
}
