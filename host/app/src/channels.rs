//! The channels a conversation can use: the enabled connector plugins and the host's
//! own webchat, with each connector's `describe` answer asked once and cached.

use std::collections::HashMap;

use switchboard_plugin_host::{CallError, ChannelInfo, PluginHost, PluginKind};
use switchboard_store::WEBCHAT;
use tokio::sync::RwLock;

/// The plugin id and channel name webchat events carry.
pub const WEBCHAT_PLUGIN_ID: &str = "webchat";

/// The description webchat has in place of a connector's `describe`.
pub fn webchat_info() -> ChannelInfo {
    ChannelInfo {
        channel: WEBCHAT_PLUGIN_ID.into(),
        identity_kind: WEBCHAT.into(),
        display_name: "Webchat".into(),
        supports_media: false,
        supports_receipts: true,
    }
}

/// Channel lookup over the plugin host.
pub struct Channels {
    plugins: PluginHost,
    cache: RwLock<HashMap<String, ChannelInfo>>,
}

impl Channels {
    /// Channels of the plugins in `plugins`.
    pub fn new(plugins: PluginHost) -> Channels {
        Channels {
            plugins,
            cache: RwLock::default(),
        }
    }

    /// A channel connector's description, asked once and then cached. Webchat
    /// answers for itself.
    pub async fn info(&self, plugin_id: &str) -> Result<ChannelInfo, CallError> {
        if plugin_id == WEBCHAT_PLUGIN_ID {
            return Ok(webchat_info());
        }
        if let Some(info) = self.cache.read().await.get(plugin_id) {
            return Ok(info.clone());
        }
        let info = self.plugins.describe_channel(plugin_id).await?;
        self.cache
            .write()
            .await
            .insert(plugin_id.to_string(), info.clone());
        Ok(info)
    }

    /// Every channel a reply can go out on: webchat, then the enabled channel
    /// plugins that are not quarantined.
    pub fn plugin_ids(&self) -> Vec<String> {
        let mut ids = vec![WEBCHAT_PLUGIN_ID.to_string()];
        ids.extend(
            self.plugins
                .list()
                .into_iter()
                .filter(|p| p.kind == PluginKind::Channel && p.enabled && p.quarantined.is_none())
                .map(|p| p.id),
        );
        ids
    }

    /// The enabled channel plugin whose id or channel name is `name`.
    pub async fn plugin_named(&self, name: &str) -> Option<String> {
        if name == WEBCHAT_PLUGIN_ID {
            return Some(name.to_string());
        }
        let candidates: Vec<_> = self
            .plugins
            .list()
            .into_iter()
            .filter(|p| p.kind == PluginKind::Channel && p.enabled && p.quarantined.is_none())
            .collect();
        if candidates.iter().any(|p| p.id == name) {
            return Some(name.to_string());
        }
        for p in candidates {
            if let Ok(info) = self.info(&p.id).await
                && info.channel == name
            {
                return Some(p.id);
            }
        }
        None
    }

    /// Forgets a plugin's cached description (it was reloaded or removed).
    pub async fn forget(&self, plugin_id: &str) {
        self.cache.write().await.remove(plugin_id);
    }
}
