//! Plugin installation and lifecycle, shared by the CLI and the API.
//!
//! Installing copies the plugin folder into `{data_dir}/plugins/{id}/`, so the
//! source may go away, checks the manifest, the config and the component, and
//! records the plugin with its config (secrets encrypted by the store).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use switchboard_plugin_host::{
    LoadError, LoadSpec, Manifest, Origin, PluginHost, WEBHOOK_BASE_KEY,
};
use switchboard_store::{ConfigEntry, PluginInstall, PluginRecord, Store, StoreError};

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
}

/// Validates, copies and records a plugin. Returns its manifest. The caller
/// loads it (the server) or tells the operator to restart (the CLI).
pub async fn install(
    store: &Store,
    host: &PluginHost,
    data_dir: &Path,
    req: InstallRequest,
) -> Result<Manifest, AdminError> {
    let manifest = Manifest::load(&req.source).map_err(LoadError::from)?;
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
    std::fs::copy(source.join("plugin.toml"), dest.join("plugin.toml")).map_err(io)?;
    std::fs::copy(
        source.join(&manifest.component),
        dest.join(&manifest.component),
    )
    .map_err(io)?;
    Ok(())
}

/// The load spec of an installed plugin, config decrypted, webhook base set.
pub async fn spec_for(
    store: &Store,
    record: &PluginRecord,
    public_url: &str,
) -> Result<LoadSpec, AdminError> {
    let dir = PathBuf::from(&record.path);
    let manifest = Manifest::load(&dir).map_err(LoadError::from)?;
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

/// Loads every installed plugin. A plugin that fails to load is logged and
/// skipped; the others still serve.
pub async fn load_installed(
    store: &Store,
    host: &PluginHost,
    public_url: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut failed = Vec::new();
    for record in store.list_plugins().await? {
        let result = match spec_for(store, &record, public_url).await {
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
