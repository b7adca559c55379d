//! `plugin.toml`: what a plugin is and what it may touch.
//!
//! This module owns parsing and validation only. Every problem in a manifest is
//! reported at once, so an author fixes them in one round.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;

/// The WIT worlds this host implements, by kind: every released version side
/// by side.
pub const SUPPORTED_WORLDS: &[(PluginKind, &str)] = &[
    (PluginKind::Channel, "switchboard:plugin/channel@0.1.0"),
    (PluginKind::Routing, "switchboard:plugin/routing@0.1.0"),
    (PluginKind::Crm, "switchboard:plugin/crm@0.1.0"),
    (PluginKind::Channel, "switchboard:plugin/channel@0.2.0"),
    (PluginKind::Routing, "switchboard:plugin/routing@0.2.0"),
    (PluginKind::Crm, "switchboard:plugin/crm@0.2.0"),
];

/// A released version of the `switchboard:plugin` package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `@0.1.0`, frozen.
    V0_1,
    /// `@0.2.0`, current.
    V0_2,
}

/// What a plugin does for the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// A channel connector (SMS, WhatsApp, email…).
    Channel,
    /// A routing policy.
    Routing,
    /// A CRM integration.
    Crm,
}

impl PluginKind {
    /// The lower-case name used in manifests and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Channel => "channel",
            PluginKind::Routing => "routing",
            PluginKind::Crm => "crm",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed and validated `plugin.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Unique id: lower-case letters, digits and dashes. Also the webhook path.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// The plugin's own version.
    pub version: String,
    /// What the plugin does.
    pub kind: PluginKind,
    /// The WIT world it was built against, with its version.
    pub world: String,
    /// The component file, relative to the plugin folder.
    pub component: String,
    /// What the plugin may use.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Config keys the operator sets.
    #[serde(default)]
    pub config: Vec<ConfigKey>,
}

/// Capabilities a plugin declares; it gets nothing else.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// Origins (`scheme://host[:port]`) the plugin may call over HTTP.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Whether the plugin uses its key-value store.
    #[serde(default)]
    pub kv: bool,
}

/// One operator-set value the plugin reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigKey {
    /// The key the plugin asks for.
    pub key: String,
    /// Installation fails without it (unless a default is given).
    #[serde(default)]
    pub required: bool,
    /// Encrypted at rest, never logged or returned by the API.
    #[serde(default)]
    pub secret: bool,
    /// Used when the operator sets nothing.
    #[serde(default)]
    pub default: Option<String>,
    /// What the value is for, shown to operators.
    #[serde(default)]
    pub description: Option<String>,
}

impl Manifest {
    /// Reads and validates `plugin.toml` in `dir`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join("plugin.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| ManifestError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Manifest::parse(&text)
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_string()))?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !valid_id(&self.id) {
            problems.push(format!(
                "id `{}` must be 1-64 lower-case letters, digits or dashes, starting with a letter",
                self.id
            ));
        }
        match SUPPORTED_WORLDS.iter().find(|(_, w)| *w == self.world) {
            Some((kind, _)) if *kind != self.kind => problems.push(format!(
                "world `{}` does not match kind `{}`",
                self.world, self.kind
            )),
            Some(_) => {}
            None => problems.push(format!(
                "world `{}` is not supported; this host implements {}",
                self.world,
                SUPPORTED_WORLDS
                    .iter()
                    .map(|(_, w)| *w)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        if self.component.is_empty()
            || self.component.contains('/')
            || self.component.contains('\\')
            || self.component.starts_with('.')
        {
            problems.push(format!(
                "component `{}` must be a file name inside the plugin folder",
                self.component
            ));
        }
        for host in &self.capabilities.allowed_hosts {
            if let Err(e) = Origin::parse(host) {
                problems.push(format!("allowed-hosts: {e}"));
            }
        }
        let mut seen = HashSet::new();
        for key in &self.config {
            if !seen.insert(key.key.as_str()) {
                problems.push(format!("config key `{}` is declared twice", key.key));
            }
            if key.key.starts_with("switchboard.") {
                problems.push(format!(
                    "config key `{}` uses the reserved prefix `switchboard.`",
                    key.key
                ));
            }
        }
        problems
    }

    /// The same plugin under another id: one component installed several times
    /// (two WhatsApp numbers, several mailboxes), each with its own config,
    /// secrets, key-value store, webhook path and health.
    pub fn with_id(mut self, id: &str) -> Result<Manifest, ManifestError> {
        if !valid_id(id) {
            return Err(ManifestError::Invalid(vec![format!(
                "id `{id}` must be 1-64 lower-case letters, digits or dashes, starting with a letter"
            )]));
        }
        self.id = id.to_string();
        Ok(self)
    }

    /// The package version of the declared world (validated at parse time).
    pub fn api_version(&self) -> ApiVersion {
        if self.world.ends_with("@0.1.0") {
            ApiVersion::V0_1
        } else {
            ApiVersion::V0_2
        }
    }

    /// The declared config key, if any.
    pub fn config_key(&self, key: &str) -> Option<&ConfigKey> {
        self.config.iter().find(|k| k.key == key)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `scheme://host:port`, the unit of the outbound HTTP allow-list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal.
    pub host: String,
    /// Explicit or default port.
    pub port: u16,
    /// `https://*.fbcdn.net`: any subdomain of `host` (not `host` itself).
    /// Providers serve media from CDN hosts whose names vary.
    pub subdomains: bool,
}

impl Origin {
    /// Parses `https://api.example.com`, `http://127.0.0.1:8080` or
    /// `https://*.cdn.example.com` (every subdomain; a name, not an IP).
    pub fn parse(text: &str) -> Result<Origin, String> {
        if let Some((scheme, rest)) = text.split_once("://*.") {
            let mut origin = Origin::parse(&format!("{scheme}://{rest}"))?;
            if origin.host.parse::<std::net::IpAddr>().is_ok() || origin.host.starts_with('[') {
                return Err(format!("`{text}`: a wildcard needs a host name"));
            }
            if !origin.host.contains('.') {
                return Err(format!("`{text}`: a wildcard needs a domain with a dot"));
            }
            origin.subdomains = true;
            return Ok(origin);
        }
        let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let scheme = url.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{text}`: only http and https are allowed"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("`{text}` has no host"))?
            .to_ascii_lowercase();
        if url.path() != "/" || url.query().is_some() {
            return Err(format!(
                "`{text}` must be an origin (scheme://host[:port]) without a path"
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("`{text}` has no port"))?;
        Ok(Origin {
            scheme,
            host,
            port,
            subdomains: false,
        })
    }

    /// Whether `uri` points at this origin.
    pub fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let default = if scheme == "https" { 443 } else { 80 };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host_matches = if self.subdomains {
            let host = host.to_ascii_lowercase();
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            self.host.eq_ignore_ascii_case(host)
        };
        self.scheme == scheme && host_matches && self.port == port.unwrap_or(default)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wildcard = if self.subdomains { "*." } else { "" };
        write!(f, "{}://{wildcard}{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "sms-twilio"
version = "0.1.0"
kind = "channel"
world = "switchboard:plugin/channel@0.1.0"
component = "sms_twilio.wasm"

[capabilities]
allowed-hosts = ["https://api.twilio.com"]
kv = true

[[config]]
key = "auth_token"
required = true
secret = true
"#;

    #[test]
    fn wildcard_origins_match_subdomains_only() {
        let o = Origin::parse("https://*.fbcdn.net").unwrap();
        assert!(o.matches("https", "scontent-iad3-1.xx.fbcdn.net", None));
        assert!(o.matches("https", "a.FBCDN.net", Some(443)));
        assert!(!o.matches("https", "fbcdn.net", None));
        assert!(!o.matches("https", "evilfbcdn.net", None));
        assert!(!o.matches("https", "a.fbcdn.net.evil.com", None));
        assert!(!o.matches("http", "a.fbcdn.net", None));
        assert_eq!(o.to_string(), "https://*.fbcdn.net:443");
        assert!(Origin::parse("https://*.127.0.0.1").is_err());
        assert!(Origin::parse("https://*.com").is_err());
    }

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "sms-twilio");
        assert_eq!(m.kind, PluginKind::Channel);
        assert!(m.config_key("auth_token").unwrap().secret);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let bad = GOOD
            .replace("sms-twilio", "SMS_Twilio")
            .replace("channel@0.1.0", "channel@9.0.0")
            .replace("https://api.twilio.com", "ftp://x");
        let Err(ManifestError::Invalid(problems)) = Manifest::parse(&bad) else {
            panic!("expected invalid");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn rejects_unknown_fields() {
        let bad = format!("{GOOD}\nsurprise = 1\n");
        assert!(matches!(
            Manifest::parse(&bad),
            Err(ManifestError::Syntax(_))
        ));
    }

    #[test]
    fn origin_matching_uses_default_ports() {
        let o = Origin::parse("https://api.twilio.com").unwrap();
        assert!(o.matches("https", "API.twilio.com", None));
        assert!(o.matches("https", "api.twilio.com", Some(443)));
        assert!(!o.matches("http", "api.twilio.com", None));
        assert!(!o.matches("https", "api.twilio.com.evil.test", None));
        assert!(Origin::parse("https://x.test/path").is_err());
    }
}
