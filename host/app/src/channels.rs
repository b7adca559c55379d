//! The channels a conversation can use: the enabled connector plugins and the host's
//! own webchat, with each connector's `describe` answer asked once and cached.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchboard_plugin_host::bindings::{AttachmentLimits, ChannelCapabilities};
use switchboard_plugin_host::{CallError, ChannelInfo, PluginHost, PluginKind, TemplateInfo};

use crate::compose::{Template, TemplateParameter};
use crate::error::call_error;
use crate::error::{AppError, AppResult, ErrorKind};
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
        capabilities: ChannelCapabilities {
            window_secs: None,
            human_window_secs: None,
            max_body_chars: Some(crate::text::MAX_TEXT_CHARS as u32),
            attachments: AttachmentLimits {
                max_count: 0,
                max_bytes: 0,
                content_types: Vec::new(),
            },
            templates: false,
            interactive: false,
            delivery_receipts: true,
            read_receipts: false,
            poll_interval_ms: None,
        },
    }
}

/// Channel lookup over the plugin host.
pub struct Channels {
    plugins: PluginHost,
    cache: RwLock<HashMap<String, ChannelInfo>>,
    templates: RwLock<HashMap<String, (Instant, Vec<TemplateInfo>)>>,
}

impl Channels {
    /// Channels of the plugins in `plugins`.
    pub fn new(plugins: PluginHost) -> Channels {
        Channels {
            plugins,
            cache: RwLock::default(),
            templates: RwLock::default(),
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

    /// Forgets a plugin's cached description and templates (it was reloaded or
    /// removed).
    pub async fn forget(&self, plugin_id: &str) {
        self.cache.write().await.remove(plugin_id);
        self.templates.write().await.remove(plugin_id);
    }

    /// The templates a connector's provider approved, asked at most every
    /// [`TEMPLATE_TTL`] (the answer is kept when the provider is down).
    pub async fn templates(&self, plugin_id: &str) -> AppResult<Vec<TemplateInfo>> {
        if let Some((at, list)) = self.templates.read().await.get(plugin_id)
            && at.elapsed() < TEMPLATE_TTL
        {
            return Ok(list.clone());
        }
        match self.plugins.list_templates(plugin_id).await {
            Ok(Ok(list)) => {
                self.templates
                    .write()
                    .await
                    .insert(plugin_id.to_string(), (Instant::now(), list.clone()));
                Ok(list)
            }
            failure => {
                if let Some((_, list)) = self.templates.read().await.get(plugin_id) {
                    return Ok(list.clone());
                }
                Err(match failure {
                    Err(e) => call_error(e),
                    Ok(Err(e)) => AppError::new(
                        ErrorKind::Unavailable,
                        "templates_unavailable",
                        format!("the provider's templates could not be listed: {e:?}"),
                    ),
                    Ok(Ok(_)) => unreachable!("handled above"),
                })
            }
        }
    }

    /// The text a template sends, with its parameters filled in, for the
    /// timeline; `name (language): values` when the catalogue does not have it.
    pub async fn render_template(&self, plugin_id: &str, template: &Template) -> String {
        let known = self.templates(plugin_id).await.ok().and_then(|list| {
            list.into_iter()
                .find(|t| t.name == template.name && t.language == template.language)
        });
        match known {
            Some(t) => fill_template(&t.body, &t.parameters, &template.parameters),
            None => {
                let values: Vec<&str> = template
                    .parameters
                    .iter()
                    .map(|p| p.value.as_str())
                    .collect();
                format!(
                    "Template {} ({}): {}",
                    template.name,
                    template.language,
                    values.join(", ")
                )
            }
        }
    }
}

/// How long a connector's template list is kept.
pub const TEMPLATE_TTL: Duration = Duration::from_secs(300);

/// `Hello {{1}}` with `["Jane"]` → `Hello Jane`: a numbered placeholder `{{n}}`
/// takes the n-th unnamed value (as WhatsApp fills them, whatever order they
/// appear in the body), a named one the value with its name.
pub fn fill_template(body: &str, names: &[String], values: &[TemplateParameter]) -> String {
    let positional: Vec<&TemplateParameter> = values.iter().filter(|v| v.name.is_none()).collect();
    let mut out = body.to_string();
    for (i, name) in names.iter().enumerate() {
        let value = values
            .iter()
            .find(|v| v.name.as_deref() == Some(name.as_str()))
            .or_else(|| match name.parse::<usize>() {
                Ok(n) => n.checked_sub(1).and_then(|n| positional.get(n).copied()),
                Err(_) => positional.get(i).copied(),
            });
        if let Some(v) = value {
            out = out.replace(&format!("{{{{{name}}}}}"), &v.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: Option<&str>, value: &str) -> TemplateParameter {
        TemplateParameter {
            name: name.map(str::to_string),
            value: value.to_string(),
        }
    }

    #[test]
    fn templates_fill_positional_and_named_placeholders() {
        let names = vec!["1".to_string(), "2".to_string()];
        assert_eq!(
            fill_template(
                "Hi {{1}}, order {{2}} shipped",
                &names,
                &[param(None, "Jane"), param(None, "42")]
            ),
            "Hi Jane, order 42 shipped"
        );
        let names = vec!["first_name".to_string()];
        assert_eq!(
            fill_template(
                "Hi {{first_name}}",
                &names,
                &[param(Some("first_name"), "Ann")]
            ),
            "Hi Ann"
        );
        // Numbered placeholders take values by number, not by where they appear.
        let names = vec!["2".to_string(), "1".to_string()];
        assert_eq!(
            fill_template(
                "{{2}} before {{1}}",
                &names,
                &[param(None, "one"), param(None, "two")]
            ),
            "two before one"
        );
        // A missing value leaves the placeholder for the agent to see.
        assert_eq!(fill_template("Hi {{1}}", &["1".into()], &[]), "Hi {{1}}");
    }
}
