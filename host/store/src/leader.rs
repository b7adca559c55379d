//! Routing leadership across nodes sharing one PostgreSQL database.
//!
//! One node at a time drives the routing engine. It leads by holding a session-level
//! PostgreSQL advisory lock ([`LEADER_LOCK`]) on a connection of its own, taken out
//! of the pool; when that session ends — the process dies, the connection is cut, an
//! administrator terminates it — PostgreSQL releases the lock and another node's
//! [`Store::try_lead`] wins it. The winner bumps the epoch in `routing_leader`, and
//! every routing write names the epoch it was made under ([`RoutingChanges::epoch`]):
//! the write first reads the row `FOR SHARE` and is refused with
//! [`StoreError::Fenced`] when the epoch moved on. A deposed leader that has not
//! noticed yet therefore cannot write, and a new leader's bump waits for the old
//! leader's writes already under way, so the new leader restores from a database
//! that no longer changes under it.
//!
//! The holder checks its session every interval; a failed check, or one with no
//! answer for three intervals (at least 3 s), means the lock may be gone, and the
//! leadership reports itself lost (the node steps down and stops writing; fencing
//! covers the moments in between).
//!
//! SQLite is one node: [`Store::try_lead`] always wins, with no epoch, and nothing
//! is fenced.
//!
//! [`RoutingChanges::epoch`]: crate::RoutingChanges::epoch

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{Any, Connection, Transaction};
use tokio::sync::{oneshot, watch};

use crate::db::{Backend, wall_clock_ms};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// The advisory lock key of routing leadership ("SWBROUTE").
pub const LEADER_LOCK: i64 = 0x5357_4252_4f55_5445;

/// Leading routing: the epoch to write under, and a signal when it is lost.
/// Dropping it ends the session that holds the lock (another node may then lead).
#[derive(Debug)]
pub struct Leadership {
    epoch: Option<i64>,
    lost: watch::Receiver<bool>,
    _stop: Option<oneshot::Sender<()>>,
    /// On SQLite, the sender of `lost`, kept so it never reports a loss.
    _never_lost: Option<watch::Sender<bool>>,
}

impl Leadership {
    /// The epoch routing writes carry (`None` on SQLite: nothing to fence).
    pub fn epoch(&self) -> Option<i64> {
        self.epoch
    }

    /// Whether the lock may be gone.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves when the leadership is lost (never, on SQLite).
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the checker is gone without saying so: lost as well.
        let _ = lost.wait_for(|l| *l).await;
    }
}

/// Who leads routing, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRecord {
    /// The node that last won leadership (empty before any did).
    pub node: String,
    /// Its epoch.
    pub epoch: i64,
    /// When it won, ms since the epoch.
    pub since: i64,
}

impl Store {
    /// Tries once to lead routing as `node`: `None` when another node leads. The
    /// session is checked every `check_every`.
    pub async fn try_lead(&self, node: &str, check_every: Duration) -> Result<Option<Leadership>> {
        if self.backend() == Backend::Sqlite {
            let (never_lost, lost) = watch::channel(false);
            return Ok(Some(Leadership {
                epoch: None,
                lost,
                _stop: None,
                _never_lost: Some(never_lost),
            }));
        }
        let mut conn = self.pool().acquire().await?.detach();
        let won: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if !won {
            let _ = conn.close().await;
            return Ok(None);
        }
        // Have the server notice a vanished leader within seconds, not the
        // system's TCP keepalive default of hours (ignored on Unix sockets, where
        // the server sees the close at once).
        for setting in [
            "SET tcp_keepalives_idle = 2",
            "SET tcp_keepalives_interval = 1",
            "SET tcp_keepalives_count = 2",
        ] {
            sqlx::query(setting).execute(&mut conn).await?;
        }
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE routing_leader SET epoch = epoch + 1, node = $1, since = $2 WHERE id = 1 \
             RETURNING epoch",
        )
        .bind(node.to_string())
        .bind(wall_clock_ms())
        .fetch_one(&mut conn)
        .await?;
        let (lost_tx, lost) = watch::channel(false);
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => {
                        let _ = conn.close().await;
                        return;
                    }
                    () = tokio::time::sleep(check_every) => {}
                }
                // A slow answer on a busy machine is not a lost session: only a
                // failed check, or none for three intervals (at least 3 s), is.
                let patience = (check_every * 3).max(Duration::from_secs(3));
                let check = tokio::time::timeout(patience, conn.ping()).await;
                if !matches!(check, Ok(Ok(()))) {
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        });
        Ok(Some(Leadership {
            epoch: Some(epoch),
            lost,
            _stop: Some(stop),
            _never_lost: None,
        }))
    }

    /// Who leads routing, as recorded.
    pub async fn routing_leader(&self) -> Result<LeaderRecord> {
        let (node, epoch, since): (String, i64, i64) =
            sqlx::query_as("SELECT node, epoch, since FROM routing_leader WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
        Ok(LeaderRecord { node, epoch, since })
    }
}

/// A new conversation a follower handed to the leader to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedInbound {
    /// The conversation.
    pub conversation_id: String,
    /// Its contact.
    pub contact_id: String,
    /// The channel the message came on.
    pub channel: String,
    /// Task attributes (the connector, a call's IVR answers).
    pub attributes: BTreeMap<String, String>,
}

impl Store {
    /// Hands a new conversation to the leader to route (this node follows).
    pub async fn hand_to_leader(&self, inbound: &HandedInbound) -> Result<()> {
        let attributes = serde_json::to_string(&inbound.attributes)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO routing_inbox (id, conversation_id, contact_id, channel, attributes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(crate::db::new_id())
        .bind(inbound.conversation_id.clone())
        .bind(inbound.contact_id.clone())
        .bind(inbound.channel.clone())
        .bind(attributes)
        .bind(wall_clock_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets what followers handed over about `conversation_id`: a new leader calls
    /// it for each conversation it routes because it found it without a task, which is
    /// what those hand-overs asked for (read later, after the task ended, they would
    /// route the conversation a second time).
    pub async fn forget_handed(&self, conversation_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM routing_inbox WHERE conversation_id = $1")
            .bind(conversation_id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes (deletes and returns) up to [`HANDED_BATCH`] handed conversations,
    /// oldest first.
    pub async fn take_handed(&self) -> Result<Vec<HandedInbound>> {
        let sql = match self.backend() {
            Backend::Postgres => {
                "DELETE FROM routing_inbox WHERE id IN (SELECT id FROM routing_inbox \
                 ORDER BY created_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, conversation_id, contact_id, channel, attributes, created_at"
            }
            Backend::Sqlite => {
                "DELETE FROM routing_inbox WHERE id IN (SELECT id FROM routing_inbox \
                 ORDER BY created_at, id LIMIT 100) \
                 RETURNING id, conversation_id, contact_id, channel, attributes, created_at"
            }
        };
        let mut rows: Vec<(String, String, String, String, String, i64)> =
            sqlx::query_as(sql).fetch_all(self.pool()).await?;
        rows.sort_by(|a, b| (a.5, &a.0).cmp(&(b.5, &b.0)));
        Ok(rows
            .into_iter()
            .map(
                |(_, conversation_id, contact_id, channel, attributes, _)| HandedInbound {
                    conversation_id,
                    contact_id,
                    channel,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                },
            )
            .collect())
    }
}

impl Store {
    /// Records that `node` is alive now.
    pub async fn node_seen(&self, node: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO cluster_node (id, seen_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(node.to_string())
        .bind(wall_clock_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every node that ever reported, with when it was last seen (ms since the
    /// epoch).
    pub async fn nodes_seen(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT id, seen_at FROM cluster_node ORDER BY id")
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// How many handed conversations [`Store::take_handed`] takes at once (the `LIMIT`
/// of its statement).
pub const HANDED_BATCH: usize = 100;

/// Refuses the transaction's routing write unless `held` is still the current
/// epoch; the row lock (`FOR SHARE`) holds a new leader's bump until this
/// transaction ends.
pub(crate) async fn check_epoch(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    held: i64,
) -> Result<()> {
    let sql = match backend {
        Backend::Postgres => "SELECT epoch FROM routing_leader WHERE id = 1 FOR SHARE",
        Backend::Sqlite => "SELECT epoch FROM routing_leader WHERE id = 1",
    };
    let current: i64 = sqlx::query_scalar(sql).fetch_one(&mut **tx).await?;
    if current != held {
        return Err(StoreError::Fenced { held, current });
    }
    Ok(())
}
