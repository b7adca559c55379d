//! Plugin administration: installation and lifecycle, shared by the CLI and the API.
//!
//! Changes made through [`PluginAdmin`] take effect at once in the running server;
//! the CLI's (through the free functions) on the next start. Config values are never
//! returned: secrets show as `"set"`, plain values as they are.
//!
//! Installing copies the plugin folder into `{data_dir}/plugins/{id}/`, so the
//! source may go away, checks the manifest, the config and the component, and
//! records the plugin with its config (secrets encrypted by the store).
//!
//! On a cluster (`[cluster] file_store = "database"`, see [`PluginFiles`]) the
//! component is also kept in the database's file store under its content key,
//! recorded on the plugin's row. A node loading a plugin (at start or on a reload)
//! then uses its own `{data_dir}/plugins/{id}/`, and writes it there first from
//! the database (the installed manifest and that component) when it is missing or
//! holds another component — so a node that never saw the install, or saw an
//! older one, loads what was installed last. In folder mode the recorded path is
//! loaded as it always was.
//!
//! A change made through [`PluginAdmin`] on one node of a cluster (install, config,
//! enable or disable, remove) is announced on the event bus (`plugin.changed`, to
//! the host only), and every other node applies it from the database at once
//! ([`PluginAdmin::follow_other_nodes`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use switchboard_plugin_host::{
    LoadError, LoadSpec, Manifest, Origin, PluginHost, WEBHOOK_BASE_KEY,
};
use switchboard_store::{ConfigEntry, PluginInstall, PluginRecord, Store, StoreError};

use crate::blobs::{BlobError, BlobStore};
use crate::channels::Channels;
use crate::error::{AppError, AppResult};
use crate::events::{Audience, Delivery, EventBus};

/// The bus event a node publishes when it changed a plugin (`{id, node}`).
pub const PLUGIN_CHANGED: &str = "plugin.changed";

/// Why a plugin could not be installed or changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The plugin itself is unusable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Copying files failed.
    #[error("{0}")]
    Io(String),
    /// The database's file store failed (database mode).
    #[error("plugin component: {0}")]
    Files(#[from] BlobError),
}

/// Where this node keeps installed plugins: `{data_dir}/plugins/{id}/`, and in
/// database mode the file store that holds every installed component (see the
/// module doc).
#[derive(Debug, Clone)]
pub struct PluginFiles {
    data_dir: PathBuf,
    shared: Option<BlobStore>,
}

impl PluginFiles {
    /// Plugins under `data_dir`, their components also in `blobs` when that
    /// store is in the database.
    pub fn new(data_dir: impl Into<PathBuf>, blobs: &BlobStore) -> PluginFiles {
        PluginFiles {
            data_dir: data_dir.into(),
            // An installed component is the operator's, not a customer's file:
            // the attachments' cap does not apply.
            shared: blobs.is_shared().then(|| blobs.with_max_bytes(u64::MAX)),
        }
    }

    /// Plugins under `data_dir` only (one node).
    pub fn folder(data_dir: impl Into<PathBuf>) -> PluginFiles {
        PluginFiles {
            data_dir: data_dir.into(),
            shared: None,
        }
    }

    /// This node's folder for plugin `id`.
    fn dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("plugins").join(id)
    }

    /// The folder to load `record` from. In database mode, this node's own
    /// folder, first written from the database when it does not hold the
    /// recorded component; otherwise the recorded path.
    pub async fn materialise(
        &self,
        store: &Store,
        record: &PluginRecord,
    ) -> Result<PathBuf, AdminError> {
        let Some(blobs) = &self.shared else {
            return Ok(PathBuf::from(&record.path));
        };
        let Some(key) = store.plugin_component(&record.id).await? else {
            // Installed before the cluster kept components: only where it was put.
            return Ok(PathBuf::from(&record.path));
        };
        let manifest = Manifest::parse(&record.manifest).map_err(LoadError::from)?;
        let dir = self.dir(&record.id);
        let installed = dir.join(&manifest.component);
        let current = std::fs::read_to_string(dir.join("plugin.toml"))
            .is_ok_and(|text| text == record.manifest)
            && file_hash(&installed).is_some_and(|hash| hash == key);
        if current {
            return Ok(dir);
        }
        let io = |e: std::io::Error| AdminError::Io(format!("writing plugin files: {e}"));
        let source = blobs.local_path(&key).await?;
        let staged = self.data_dir.join("plugins").join(format!(
            ".{}.{}.staging",
            record.id,
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&staged).map_err(io)?;
        let written = (|| {
            std::fs::write(staged.join("plugin.toml"), &record.manifest)?;
            std::fs::copy(&source, staged.join(&manifest.component))?;
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::rename(&staged, &dir)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(io(e));
        }
        tracing::info!(plugin = %record.id, dir = %dir.display(), "plugin component written from the database");
        Ok(dir)
    }
}

/// The SHA-256 (hex) of the file at `path`, the blob store's key for it.
fn file_hash(path: &Path) -> Option<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex::encode(hasher.finalize()))
}

/// What an operator asks for when installing.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// The plugin folder (plugin.toml + component).
    pub source: PathBuf,
    /// `key=value` settings; merged over the values of a previous install.
    pub config: HashMap<String, String>,
    /// Origins added to the manifest's allow-list.
    pub allow_hosts: Vec<String>,
    /// Install under this id instead of the manifest's (`--id`), to run the
    /// same component more than once with its own config, secrets, kv,
    /// webhook path and health.
    pub id: Option<String>,
}

/// Validates, copies and records a plugin (its component in the database too in
/// database mode). Returns its manifest. The caller loads it (the server) or tells
/// the operator to restart (the CLI).
pub async fn install(
    store: &Store,
    host: &PluginHost,
    files: &PluginFiles,
    req: InstallRequest,
) -> Result<Manifest, AdminError> {
    let data_dir = files.data_dir.as_path();
    let mut manifest = Manifest::load(&req.source).map_err(LoadError::from)?;
    if let Some(id) = &req.id {
        manifest = manifest.with_id(id).map_err(LoadError::from)?;
    }
    for h in &req.allow_hosts {
        Origin::parse(h).map_err(|message| LoadError::AllowHost {
            plugin: manifest.id.clone(),
            message,
        })?;
    }
    let mut config: HashMap<String, String> = match store.plugin(&manifest.id).await {
        Ok(_) => store
            .plugin_config(&manifest.id)
            .await?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect(),
        Err(StoreError::NotFound { .. }) => HashMap::new(),
        Err(e) => return Err(e.into()),
    };
    config.extend(req.config);
    PluginHost::resolve_config(&manifest, &config)?;

    let dest = data_dir.join("plugins").join(&manifest.id);
    let staged = data_dir
        .join("plugins")
        .join(format!(".{}.staging", manifest.id));
    copy_plugin(&req.source, &staged, &manifest)?;
    // Prove the component compiles and links before anything is recorded.
    let mut spec = LoadSpec::from_dir(&staged)?;
    spec.config = config.clone();
    spec.extra_allowed_hosts = req.allow_hosts.clone();
    host.load(spec)?;
    host.unload(&manifest.id);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| AdminError::Io(e.to_string()))?;
    }
    std::fs::rename(&staged, &dest).map_err(|e| AdminError::Io(e.to_string()))?;
    let component = match &files.shared {
        Some(blobs) => Some(blobs.put_file(&dest.join(&manifest.component)).await?.key),
        None => None,
    };

    let manifest_text = toml::to_string(&manifest).map_err(|e| AdminError::Io(e.to_string()))?;
    store
        .upsert_plugin(PluginInstall {
            id: manifest.id.clone(),
            version: manifest.version.clone(),
            kind: manifest.kind.as_str().to_string(),
            world: manifest.world.clone(),
            manifest: manifest_text,
            path: dest.display().to_string(),
            allowed_hosts: req.allow_hosts,
            enabled: true,
            component,
        })
        .await?;
    let entries = config
        .into_iter()
        .map(|(key, value)| ConfigEntry {
            secret: manifest.config_key(&key).is_some_and(|k| k.secret),
            key,
            value,
        })
        .collect();
    store.set_plugin_config(&manifest.id, entries).await?;
    Ok(manifest)
}

fn copy_plugin(source: &Path, dest: &Path, manifest: &Manifest) -> Result<(), AdminError> {
    let io = |e: std::io::Error| AdminError::Io(format!("copying plugin files: {e}"));
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(io)?;
    }
    std::fs::create_dir_all(dest).map_err(io)?;
    // The installed manifest carries the id it was installed under.
    let text = toml::to_string(manifest).map_err(|e| AdminError::Io(e.to_string()))?;
    std::fs::write(dest.join("plugin.toml"), text).map_err(io)?;
    std::fs::copy(
        source.join(&manifest.component),
        dest.join(&manifest.component),
    )
    .map_err(io)?;
    Ok(())
}

/// The load spec of an installed plugin, config decrypted, webhook base set; its
/// files where `files` finds them on this node.
pub async fn spec_for(
    store: &Store,
    record: &PluginRecord,
    public_url: &str,
    files: &PluginFiles,
) -> Result<LoadSpec, AdminError> {
    let dir = files.materialise(store, record).await?;
    let manifest = Manifest::load(&dir)
        .and_then(|m| m.with_id(&record.id))
        .map_err(LoadError::from)?;
    let mut config: HashMap<String, String> = store
        .plugin_config(&record.id)
        .await?
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect();
    config.insert(
        WEBHOOK_BASE_KEY.to_string(),
        format!("{}/hooks/{}", public_url, record.id),
    );
    Ok(LoadSpec {
        dir,
        manifest,
        config,
        extra_allowed_hosts: record.allowed_hosts.clone(),
        enabled: record.enabled,
        quarantined: record.quarantine_reason.clone(),
    })
}

/// Loads every installed plugin from the paths recorded at install (one node).
/// A plugin that fails to load is logged and skipped; the others still serve.
pub async fn load_installed(
    store: &Store,
    host: &PluginHost,
    public_url: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    load_installed_from(store, host, public_url, &PluginFiles::folder(".")).await
}

/// [`load_installed`] with this node's [`PluginFiles`]: in database mode a
/// component this node lacks is written from the database first.
pub async fn load_installed_from(
    store: &Store,
    host: &PluginHost,
    public_url: &str,
    files: &PluginFiles,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut failed = Vec::new();
    for record in store.list_plugins().await? {
        let result = match spec_for(store, &record, public_url, files).await {
            Ok(spec) => host.load(spec).map_err(AdminError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(plugin = %record.id, version = %record.version, "plugin loaded")
            }
            Err(e) => {
                tracing::error!(plugin = %record.id, "plugin not loaded: {e}");
                failed.push((record.id.clone(), e.to_string()));
            }
        }
    }
    Ok(failed)
}

/// Records a plugin enabled (which also lifts a quarantine) or disabled, audited under
/// `actor`. The CLI's way: a running server applies it on restart; [`PluginAdmin`]
/// also applies it at once.
pub async fn record_enabled(
    store: &Store,
    actor: &str,
    id: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    store.set_plugin_enabled(id, enabled).await?;
    let action = if enabled {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    store
        .audit(actor, action, Some(id), serde_json::Value::Null)
        .await?;
    Ok(())
}

/// Forgets an installed plugin and deletes its files, audited under `actor`.
pub async fn record_removed(store: &Store, actor: &str, id: &str) -> Result<(), StoreError> {
    let record = store.plugin(id).await?;
    store.remove_plugin(id).await?;
    let _ = std::fs::remove_dir_all(&record.path);
    store
        .audit(actor, "plugin.remove", Some(id), serde_json::json!(null))
        .await?;
    Ok(())
}

impl From<AdminError> for AppError {
    fn from(e: AdminError) -> AppError {
        match e {
            AdminError::Load(e) => AppError::bad_request(e.to_string()),
            AdminError::Store(e) => e.into(),
            AdminError::Io(m) => AppError::bad_request(m),
            AdminError::Files(e) => {
                tracing::error!("{e}");
                AppError::new(
                    crate::error::ErrorKind::Unavailable,
                    "storage_unavailable",
                    "the file store is unavailable",
                )
            }
        }
    }
}

/// Plugin administration in the running server. Every change is audited under the
/// acting admin's id.
pub struct PluginAdmin {
    store: Store,
    plugins: PluginHost,
    channels: Arc<Channels>,
    public_url: String,
    files: PluginFiles,
    /// The cluster's event bus and this node's name, when there are several nodes.
    cluster: Option<(Arc<dyn EventBus>, String)>,
}

impl PluginAdmin {
    /// Administration over these parts; plugins are installed where `files` says and
    /// get webhook URLs under `public_url`.
    pub fn new(
        store: Store,
        plugins: PluginHost,
        channels: Arc<Channels>,
        public_url: String,
        files: PluginFiles,
    ) -> PluginAdmin {
        PluginAdmin {
            store,
            plugins,
            channels,
            public_url,
            files,
            cluster: None,
        }
    }

    /// Announces this node's plugin changes on `events` (as node `node`), and
    /// lets [`PluginAdmin::follow_other_nodes`] apply the other nodes'.
    pub fn on_cluster(mut self, events: Arc<dyn EventBus>, node: &str) -> PluginAdmin {
        self.cluster = Some((events, node.to_string()));
        self
    }

    /// Tells the other nodes that plugin `id` changed.
    fn announce(&self, id: &str) {
        if let Some((events, node)) = &self.cluster {
            events.publish(
                PLUGIN_CHANGED,
                Audience::Host,
                json!({"id": id, "node": node}),
            );
        }
    }

    /// On a cluster, applies the plugin changes other nodes announce until
    /// `shutdown` turns true: the plugin is loaded again from the database (its
    /// component, config and state), or unloaded when it was removed. When events
    /// were lost, every plugin is brought in line with the database.
    pub async fn follow_other_nodes(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some((events, node)) = self.cluster.clone() else {
            return;
        };
        let mut feed = events.subscribe(None);
        loop {
            let delivery = tokio::select! {
                d = feed.next() => d,
                _ = shutdown.changed() => return,
            };
            match delivery {
                Delivery::Event(e)
                    if e.kind == PLUGIN_CHANGED && e.data["node"] != node.as_str() =>
                {
                    if let Some(id) = e.data["id"].as_str() {
                        self.follow(id).await;
                    }
                }
                Delivery::Event(_) => {}
                Delivery::Resync { .. } => self.follow_all().await,
                Delivery::Closed => return,
            }
        }
    }

    /// Brings plugin `id` in line with the database after another node changed it.
    pub async fn follow(&self, id: &str) {
        let outcome = match self.store.plugin(id).await {
            Ok(_) => self.reload(id).await.map(|()| "reloaded"),
            Err(StoreError::NotFound { .. }) => {
                let _ = std::fs::remove_dir_all(self.files.dir(id));
                self.plugins.unload(id);
                self.channels.forget(id).await;
                Ok("unloaded")
            }
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(what) => tracing::info!(plugin = id, "plugin changed on another node: {what}"),
            Err(e) => tracing::error!(plugin = id, "another node's plugin change not applied: {e}"),
        }
    }

    /// Every plugin in line with the database (after lost events).
    async fn follow_all(&self) {
        let recorded = match self.store.list_plugins().await {
            Ok(records) => records,
            Err(e) => {
                tracing::error!("plugins not brought in line with the database: {e}");
                return;
            }
        };
        let mut ids: Vec<String> = recorded.into_iter().map(|r| r.id).collect();
        for loaded in self.plugins.list() {
            if !ids.contains(&loaded.id) {
                ids.push(loaded.id);
            }
        }
        for id in ids {
            self.follow(&id).await;
        }
    }

    /// (Re)loads one installed plugin from the store.
    pub async fn reload(&self, id: &str) -> AppResult<()> {
        let record = self.store.plugin(id).await?;
        let spec = spec_for(&self.store, &record, &self.public_url, &self.files).await?;
        self.plugins
            .load(spec)
            .map_err(|e| AppError::bad_request(e.to_string()))?;
        self.channels.forget(id).await;
        Ok(())
    }

    /// A plugin as admins see it: record, health, config (secrets hidden) and the
    /// config keys its manifest declares.
    pub async fn describe(&self, id: &str) -> AppResult<Value> {
        let record = self.store.plugin(id).await?;
        let status = self.plugins.status(id);
        let manifest = self.plugins.manifest(id);
        let config: Vec<Value> = self
            .store
            .plugin_config(id)
            .await?
            .into_iter()
            .map(|e| {
                if e.secret {
                    json!({"key": e.key, "secret": true, "value": "set"})
                } else {
                    json!({"key": e.key, "secret": false, "value": e.value})
                }
            })
            .collect();
        Ok(json!({
            "id": record.id,
            "version": record.version,
            "kind": record.kind,
            "world": record.world,
            "enabled": record.enabled,
            "quarantined": record.quarantine_reason,
            "loaded": status.is_some(),
            "health": status,
            "config": config,
            "declared_config": manifest.map(|m| m.config).unwrap_or_default(),
        }))
    }

    /// Every installed plugin, described.
    pub async fn list(&self) -> AppResult<Vec<Value>> {
        let mut out = Vec::new();
        for record in self.store.list_plugins().await? {
            out.push(self.describe(&record.id).await?);
        }
        Ok(out)
    }

    /// Installs or upgrades a plugin from a folder on the server's disk and loads it.
    pub async fn install(&self, admin_id: &str, request: InstallRequest) -> AppResult<Value> {
        let manifest = install(&self.store, &self.plugins, &self.files, request).await?;
        self.reload(&manifest.id).await?;
        self.announce(&manifest.id);
        self.store
            .audit(
                admin_id,
                "plugin.install",
                Some(&manifest.id),
                serde_json::json!(&manifest.version),
            )
            .await?;
        self.describe(&manifest.id).await
    }

    /// Enables (also lifting a quarantine) or disables a plugin.
    pub async fn set_enabled(&self, admin_id: &str, id: &str, enabled: bool) -> AppResult<Value> {
        record_enabled(&self.store, admin_id, id, enabled).await?;
        self.plugins.set_enabled(id, enabled);
        if enabled && self.plugins.status(id).is_none() {
            self.reload(id).await?;
        }
        self.announce(id);
        self.describe(id).await
    }

    /// Removes a plugin and its files.
    pub async fn remove(&self, admin_id: &str, id: &str) -> AppResult<()> {
        record_removed(&self.store, admin_id, id).await?;
        // This node's copy when it differs from the recorded path (database mode).
        let _ = std::fs::remove_dir_all(self.files.dir(id));
        self.plugins.unload(id);
        self.channels.forget(id).await;
        self.announce(id);
        Ok(())
    }

    /// Sets config values (secrets are encrypted and never shown again) and reloads
    /// the plugin. Keys the manifest does not declare are refused.
    pub async fn set_config(
        &self,
        admin_id: &str,
        id: &str,
        values: HashMap<String, String>,
    ) -> AppResult<Value> {
        let declared = self
            .plugins
            .manifest(id)
            .map(|m| m.config)
            .ok_or_else(|| AppError::not_found(format!("plugin {id} is not loaded")))?;
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in values {
            match declared.iter().find(|c| c.key == key) {
                Some(c) if c.secret => entries.push(ConfigEntry::secret(key, value)),
                Some(_) => entries.push(ConfigEntry::plain(key, value)),
                None => unknown.push(key),
            }
        }
        if !unknown.is_empty() {
            unknown.sort();
            return Err(AppError::bad_request(format!(
                "the plugin declares no config key {}",
                unknown.join(", ")
            )));
        }
        let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        self.store.set_plugin_config(id, entries).await?;
        self.reload(id).await?;
        self.announce(id);
        self.store
            .audit(admin_id, "plugin.config", Some(id), json!({"keys": keys}))
            .await?;
        self.describe(id).await
    }
}
