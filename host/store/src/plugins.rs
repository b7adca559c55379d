//! Installed plugins, their configuration (secrets encrypted at rest) and their
//! key-value data.
//!
//! The plugin host owns what these fields mean (when to quarantine, which hosts a
//! plugin may call); this module stores them faithfully and enforces the two rules that
//! must hold whoever calls: secret config values never reach the database in clear, and
//! a plugin's key-value data never exceeds the quota it is given.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::Store;
use crate::db::{RowExt, pg_xact_lock, wall_clock_ms};
use crate::error::{Result, StoreError};

macro_rules! plugin_columns {
    () => {
        "id, version, kind, world, manifest, path, enabled, quarantined, quarantine_reason, \
         failure_count, allowed_hosts, installed_at, updated_at"
    };
}

/// What installing (or upgrading) a plugin records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInstall {
    /// Plugin id from its manifest, e.g. `sms-twilio`.
    pub id: String,
    /// Version from its manifest.
    pub version: String,
    /// Kind: `channel`, `routing`, `crm`.
    pub kind: String,
    /// WIT world with version, e.g. `switchboard:plugin/channel@0.1.0`.
    pub world: String,
    /// The manifest as installed (TOML text).
    pub manifest: String,
    /// Where the component lives on disk.
    pub path: String,
    /// Outbound hosts it may call (manifest plus operator additions).
    pub allowed_hosts: Vec<String>,
    /// Whether it starts enabled.
    pub enabled: bool,
    /// The stored file (content key) of its component when it was installed in
    /// database mode, so every node can load it; `None` in folder mode.
    pub component: Option<String>,
}

/// An installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginRecord {
    /// Plugin id.
    pub id: String,
    /// Installed version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// WIT world with version.
    pub world: String,
    /// Manifest text.
    pub manifest: String,
    /// Component path.
    pub path: String,
    /// Enabled by the operator.
    pub enabled: bool,
    /// Stopped by the host after repeated failures.
    pub quarantined: bool,
    /// Why it was quarantined.
    pub quarantine_reason: Option<String>,
    /// Failures counted since it was last enabled or installed.
    pub failure_count: u32,
    /// Outbound hosts it may call.
    pub allowed_hosts: Vec<String>,
    /// First installed, ms since the epoch.
    pub installed_at: i64,
    /// Last changed, ms since the epoch.
    pub updated_at: i64,
}

impl PluginRecord {
    fn from_row(row: &AnyRow) -> Result<PluginRecord> {
        Ok(PluginRecord {
            id: row.text("id")?,
            version: row.text("version")?,
            kind: row.text("kind")?,
            world: row.text("world")?,
            manifest: row.text("manifest")?,
            path: row.text("path")?,
            enabled: row.flag("enabled")?,
            quarantined: row.flag("quarantined")?,
            quarantine_reason: row.opt_text("quarantine_reason")?,
            failure_count: u32::try_from(row.int("failure_count")?).unwrap_or(u32::MAX),
            allowed_hosts: row.json("allowed_hosts")?,
            installed_at: row.int("installed_at")?,
            updated_at: row.int("updated_at")?,
        })
    }
}

/// One configuration value of a plugin. `Debug` never prints a secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config key, e.g. `auth_token`.
    pub key: String,
    /// The value, in clear (decrypted when read back).
    pub value: String,
    /// Whether it is a secret (encrypted at rest, never shown).
    pub secret: bool,
}

impl std::fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigEntry")
            .field("key", &self.key)
            .field(
                "value",
                if self.secret {
                    &"<redacted>"
                } else {
                    &self.value
                },
            )
            .field("secret", &self.secret)
            .finish()
    }
}

impl ConfigEntry {
    /// A plain value.
    pub fn plain(key: impl Into<String>, value: impl Into<String>) -> Self {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
            secret: false,
        }
    }

    /// A secret value.
    pub fn secret(key: impl Into<String>, value: impl Into<String>) -> Self {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
            secret: true,
        }
    }
}

async fn plugin_exists(conn: &mut sqlx::AnyConnection, id: &str) -> Result<()> {
    sqlx::query("SELECT id FROM plugin WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .map(|_| ())
        .ok_or_else(|| StoreError::not_found("plugin", id))
}

impl Store {
    /// Installs a plugin or replaces an installed one's definition. A reinstall is a
    /// fresh start: `enabled` is taken from `install`, quarantine and failure count are
    /// cleared; config and key-value data are kept, `installed_at` too.
    pub async fn upsert_plugin(&self, install: PluginInstall) -> Result<PluginRecord> {
        let hosts = serde_json::to_string(&install.allowed_hosts)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let now = wall_clock_ms();
        let install_kind_is_crm = install.kind == "crm";
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plugin (id, version, kind, world, manifest, path, enabled, quarantined,
                                 quarantine_reason, failure_count, allowed_hosts, installed_at, updated_at,
                                 component_blob)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, 0, $8, $9, $9, $10)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, kind = excluded.kind,
                 world = excluded.world, manifest = excluded.manifest, path = excluded.path,
                 enabled = excluded.enabled, quarantined = 0, quarantine_reason = NULL,
                 failure_count = 0, allowed_hosts = excluded.allowed_hosts, updated_at = excluded.updated_at,
                 component_blob = excluded.component_blob",
        )
        .bind(install.id.clone())
        .bind(install.version)
        .bind(install.kind)
        .bind(install.world)
        .bind(install.manifest)
        .bind(install.path)
        .bind(i64::from(install.enabled))
        .bind(hosts)
        .bind(now)
        .bind(install.component)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            plugin_columns!(),
            " FROM plugin WHERE id = $1"
        ))
        .bind(install.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if install_kind_is_crm {
            // Events recorded from now on queue their CRM write-back.
            self.crm_installed().await?;
        }
        PluginRecord::from_row(&row)
    }

    /// Installed plugins, by id.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRecord>> {
        let mut conn = self.pool().acquire().await?;
        sqlx::query(concat!(
            "SELECT ",
            plugin_columns!(),
            " FROM plugin ORDER BY id"
        ))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(PluginRecord::from_row)
        .collect()
    }

    /// One installed plugin.
    pub async fn plugin(&self, id: &str) -> Result<PluginRecord> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            plugin_columns!(),
            " FROM plugin WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("plugin", id))?;
        PluginRecord::from_row(&row)
    }

    /// Enables or disables a plugin. Enabling also lifts a quarantine and resets the
    /// failure count: the operator decided to try again.
    pub async fn set_plugin_enabled(&self, id: &str, enabled: bool) -> Result<PluginRecord> {
        let sql = if enabled {
            "UPDATE plugin SET enabled = 1, quarantined = 0, quarantine_reason = NULL, failure_count = 0,
             updated_at = $1 WHERE id = $2"
        } else {
            "UPDATE plugin SET enabled = 0, updated_at = $1 WHERE id = $2"
        };
        let done = sqlx::query(sql)
            .bind(wall_clock_ms())
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("plugin", id));
        }
        self.plugin(id).await
    }

    /// Quarantines a plugin with a reason (the host stops calling it).
    pub async fn quarantine_plugin(&self, id: &str, reason: &str) -> Result<PluginRecord> {
        let done = sqlx::query("UPDATE plugin SET quarantined = 1, quarantine_reason = $1, updated_at = $2 WHERE id = $3")
            .bind(reason.to_owned())
            .bind(wall_clock_ms())
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("plugin", id));
        }
        self.plugin(id).await
    }

    /// Counts one failure of a plugin and returns the new count.
    pub async fn record_plugin_failure(&self, id: &str) -> Result<u32> {
        let row = sqlx::query(
            "UPDATE plugin SET failure_count = failure_count + 1, updated_at = $1 WHERE id = $2 RETURNING failure_count",
        )
        .bind(wall_clock_ms())
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("plugin", id))?;
        Ok(u32::try_from(row.int("failure_count")?).unwrap_or(u32::MAX))
    }

    /// Removes a plugin with its config and key-value data.
    pub async fn remove_plugin(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        plugin_exists(&mut tx, id).await?;
        for sql in [
            "DELETE FROM plugin_config WHERE plugin_id = $1",
            "DELETE FROM plugin_kv WHERE plugin_id = $1",
            "DELETE FROM plugin WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets config values of a plugin (other keys are kept). Secret values are
    /// encrypted before they reach the database.
    pub async fn set_plugin_config(&self, id: &str, entries: Vec<ConfigEntry>) -> Result<()> {
        let now = wall_clock_ms();
        let mut tx = self.begin_write().await?;
        plugin_exists(&mut tx, id).await?;
        for entry in entries {
            if entry.key.trim().is_empty() {
                return Err(StoreError::Invalid(format!(
                    "plugin {id}: empty config key"
                )));
            }
            let stored = if entry.secret {
                self.secrets().seal(id, &entry.key, &entry.value)?
            } else {
                entry.value
            };
            sqlx::query(
                "INSERT INTO plugin_config (plugin_id, key, value, secret, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret,
                 updated_at = excluded.updated_at",
            )
            .bind(id.to_owned())
            .bind(entry.key)
            .bind(stored)
            .bind(i64::from(entry.secret))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes one config key; returns whether it existed.
    pub async fn delete_plugin_config(&self, id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM plugin_config WHERE plugin_id = $1 AND key = $2")
            .bind(id.to_owned())
            .bind(key.to_owned())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A plugin's config with secrets decrypted, by key. For the host's own use (to
    /// hand to the plugin); never return it from an API.
    pub async fn plugin_config(&self, id: &str) -> Result<Vec<ConfigEntry>> {
        let mut conn = self.pool().acquire().await?;
        plugin_exists(&mut conn, id).await?;
        let rows = sqlx::query(
            "SELECT key, value, secret FROM plugin_config WHERE plugin_id = $1 ORDER BY key",
        )
        .bind(id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let key = row.text("key")?;
                let secret = row.flag("secret")?;
                let stored = row.text("value")?;
                let value = if secret {
                    self.secrets().open(id, &key, &stored)?
                } else {
                    stored
                };
                Ok(ConfigEntry { key, value, secret })
            })
            .collect()
    }

    /// A value from a plugin's key-value store.
    pub async fn kv_get(&self, plugin_id: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM plugin_kv WHERE plugin_id = $1 AND key = $2")
            .bind(plugin_id.to_owned())
            .bind(key.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.blob("value")).transpose()
    }

    /// Stores a value in a plugin's key-value store. Usage is the sum of key and value
    /// lengths over the plugin's entries; if it would exceed `max_total_bytes`, nothing
    /// is written and [`StoreError::QuotaExceeded`] is returned.
    pub async fn kv_set(
        &self,
        plugin_id: &str,
        key: &str,
        value: &[u8],
        max_total_bytes: u64,
    ) -> Result<()> {
        let size = (key.len() + value.len()) as u64;
        let mut tx = self.begin_write().await?;
        pg_xact_lock(&mut tx, self.backend(), &format!("plugin-kv:{plugin_id}")).await?;
        let others = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM plugin_kv WHERE plugin_id = $1 AND key <> $2",
        )
        .bind(plugin_id.to_owned())
        .bind(key.to_owned())
        .fetch_one(&mut *tx)
        .await?
        .int("used")?;
        let would_use = others.max(0) as u64 + size;
        if would_use > max_total_bytes {
            return Err(StoreError::QuotaExceeded {
                plugin_id: plugin_id.to_owned(),
                would_use,
                limit: max_total_bytes,
            });
        }
        sqlx::query(
            "INSERT INTO plugin_kv (plugin_id, key, value, size, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, size = excluded.size,
             updated_at = excluded.updated_at",
        )
        .bind(plugin_id.to_owned())
        .bind(key.to_owned())
        .bind(value.to_vec())
        .bind(size as i64)
        .bind(wall_clock_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a key; returns whether it existed.
    pub async fn kv_delete(&self, plugin_id: &str, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2")
            .bind(plugin_id.to_owned())
            .bind(key.to_owned())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Bytes a plugin's key-value data uses (keys plus values).
    pub async fn kv_usage(&self, plugin_id: &str) -> Result<u64> {
        let used = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM plugin_kv WHERE plugin_id = $1")
            .bind(plugin_id.to_owned())
            .fetch_one(self.pool())
            .await?
            .int("used")?;
        Ok(used.max(0) as u64)
    }
}
