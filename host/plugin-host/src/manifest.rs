//! `plugin.toml`: what a plugin is and what it may touch.
//!
//! This module owns parsing and validation only. Every problem in a manifest is
//! reported at once, so an author fixes them in one round.
//!
//! ```toml
//! id = "email"                          # lower-case letters, digits, dashes
//! name = "E-mail"                       # optional, shown to operators
//! version = "0.1.0"                     # the plugin's own version
//! kind = "channel"                      # channel | routing | crm
//! world = "switchboard:mail/email@0.2.0"  # one of SUPPORTED_WORLDS
//! component = "email.wasm"              # a file in the plugin folder
//!
//! [capabilities]
//! allowed-hosts = ["https://api.example.com"]  # outbound HTTP origins (switchboard:http, wasi:http)
//! kv = true                                    # the plugin's key-value store
//!
//! # `switchboard:mail/streams`, e-mail worlds only: the servers the plugin may
//! # open TCP/TLS connections to are the values the operator gives these config
//! # keys (installing with them is the approval). `port-config` may be unset at
//! # install, then `default-port` is used; an unset host key approves nothing.
//! [[capabilities.connect]]
//! host-config = "imap_host"
//! port-config = "imap_port"
//! default-port = 993
//!
//! [[capabilities.connect]]
//! host-config = "smtp_host"
//! port-config = "smtp_port"
//! default-port = 465
//!
//! [[config]]
//! key = "imap_host"
//! required = true
//! description = "IMAP server"
//!
//! [[config]]
//! key = "imap_port"
//! default = "993"
//!
//! [[config]]
//! key = "password"
//! required = true
//! secret = true                         # encrypted at rest, never logged
//! # also: smtp_host, smtp_port, …
//! ```

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
    // A 0.2.0 channel connector plus `switchboard:mail` streams and `mailer`.
    (PluginKind::Channel, EMAIL_WORLD_V0_1),
    // The same plus `blobs` and `attachments`.
    (PluginKind::Channel, EMAIL_WORLD),
];

/// The e-mail connector's current world, `switchboard:mail/email@0.2.0`:
/// [`EMAIL_WORLD_V0_1`] plus the `blobs` import and the `attachments` export
/// (inbound files written into the host's blob store piece by piece).
pub const EMAIL_WORLD: &str = "switchboard:mail/email@0.2.0";

/// The first e-mail world, `switchboard:mail/email@0.1.0`: every
/// `channel@0.2.0` export (its connector API is 0.2.0), plus the `streams`
/// import and the `mailer` export. It keeps loading.
pub const EMAIL_WORLD_V0_1: &str = "switchboard:mail/email@0.1.0";

/// Every e-mail world, oldest first: the only worlds that may declare
/// `[[capabilities.connect]]`.
pub const EMAIL_WORLDS: &[&str] = &[EMAIL_WORLD_V0_1, EMAIL_WORLD];

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
    /// Servers the plugin may open byte streams to (`[[capabilities.connect]]`,
    /// [`EMAIL_WORLDS`] only), named by config keys the operator sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect: Vec<ConnectEntry>,
}

/// One `[[capabilities.connect]]` entry: the approved server is the value of
/// `host-config` with the value of `port-config` (or `default-port` when that
/// key is unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConnectEntry {
    /// The config key holding the server's host name or IP address.
    pub host_config: String,
    /// The config key holding its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_config: Option<String>,
    /// The port when `port-config` is absent or unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_port: Option<u16>,
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
        self.connect_problems(&mut problems);
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

    fn connect_problems(&self, problems: &mut Vec<String>) {
        let connect = &self.capabilities.connect;
        if !connect.is_empty() && !self.is_mail() {
            problems.push(format!(
                "capabilities.connect is only for the e-mail worlds ({}), not `{}`",
                EMAIL_WORLDS
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.world
            ));
        }
        for (i, entry) in connect.iter().enumerate() {
            let at = format!("capabilities.connect[{i}]");
            let mut keys = vec![("host-config", &entry.host_config)];
            keys.extend(entry.port_config.iter().map(|k| ("port-config", k)));
            for (field, key) in keys {
                if self.config_key(key).is_none() {
                    problems.push(format!(
                        "{at}: {field} `{key}` is not a declared config key"
                    ));
                }
            }
            if entry.port_config.as_ref() == Some(&entry.host_config) {
                problems.push(format!(
                    "{at}: host-config and port-config are the same key"
                ));
            }
            match (&entry.port_config, entry.default_port) {
                (_, Some(0)) => problems.push(format!("{at}: default-port must be 1-65535")),
                (None, None) => {
                    problems.push(format!("{at}: needs a port-config, a default-port or both"))
                }
                _ => {}
            }
            if connect[..i]
                .iter()
                .any(|e| e.host_config == entry.host_config && e.port_config == entry.port_config)
            {
                problems.push(format!(
                    "{at}: host-config `{}` is declared twice with the same port",
                    entry.host_config
                ));
            }
        }
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

    /// The `switchboard:plugin` version of the declared world's exports
    /// (validated at parse time); the e-mail world's connector is 0.2.0.
    pub fn api_version(&self) -> ApiVersion {
        if self.world.starts_with("switchboard:plugin/") && self.world.ends_with("@0.1.0") {
            ApiVersion::V0_1
        } else {
            ApiVersion::V0_2
        }
    }

    /// Whether the plugin is an e-mail connector (one of [`EMAIL_WORLDS`]): a
    /// channel that also exports `mailer`.
    pub fn is_mail(&self) -> bool {
        EMAIL_WORLDS.contains(&self.world.as_str())
    }

    /// Whether the plugin writes inbound files into the host's blob store
    /// itself ([`EMAIL_WORLD`], `switchboard:mail@0.2.0`: it imports `blobs`
    /// and exports `attachments`).
    pub fn writes_blobs(&self) -> bool {
        self.world == EMAIL_WORLD
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

    /// Whether `uri` is on the allow-list `allowed`: the one check every
    /// outbound request of a plugin passes, whichever way it leaves
    /// (`switchboard:http`, `wasi:http`, an attachment download).
    pub(crate) fn allows(allowed: &[Origin], uri: &hyper::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        allowed
            .iter()
            .any(|o| o.matches(scheme, host, uri.port_u16()))
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

    const EMAIL: &str = r#"
id = "email"
version = "0.1.0"
kind = "channel"
world = "switchboard:mail/email@0.1.0"
component = "email.wasm"

[[capabilities.connect]]
host-config = "imap_host"
port-config = "imap_port"
default-port = 993

[[capabilities.connect]]
host-config = "smtp_host"
port-config = "smtp_port"

[[config]]
key = "imap_host"
required = true

[[config]]
key = "imap_port"

[[config]]
key = "smtp_host"

[[config]]
key = "smtp_port"
default = "465"
"#;

    fn problems_of(text: &str) -> Vec<String> {
        match Manifest::parse(text) {
            Err(ManifestError::Invalid(problems)) => problems,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn an_email_manifest_declares_its_servers() {
        let m = Manifest::parse(EMAIL).unwrap();
        assert!(m.is_mail());
        assert!(!m.writes_blobs(), "0.1.0 has no blob writer");
        assert_eq!(m.kind, PluginKind::Channel);
        assert_eq!(m.api_version(), ApiVersion::V0_2);
        assert_eq!(
            m.capabilities.connect[0],
            ConnectEntry {
                host_config: "imap_host".into(),
                port_config: Some("imap_port".into()),
                default_port: Some(993),
            }
        );
        assert_eq!(m.capabilities.connect[1].default_port, None);
        assert!(!Manifest::parse(GOOD).unwrap().is_mail());
        let current = Manifest::parse(&EMAIL.replace(EMAIL_WORLD_V0_1, EMAIL_WORLD)).unwrap();
        assert!(current.is_mail() && current.writes_blobs());
        assert_eq!(current.api_version(), ApiVersion::V0_2);
        assert_eq!(current.capabilities.connect.len(), 2);
    }

    #[test]
    fn connect_keys_must_be_declared_config_keys() {
        let bad = EMAIL
            .replace(
                "host-config = \"imap_host\"",
                "host-config = \"imap_server\"",
            )
            .replace(
                "port-config = \"smtp_port\"",
                "port-config = \"smtp_portt\"",
            );
        let problems = problems_of(&bad);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("capabilities.connect[0]: host-config `imap_server`"));
        assert!(problems[1].contains("capabilities.connect[1]: port-config `smtp_portt`"));
    }

    #[test]
    fn connect_is_only_for_the_email_world() {
        let bad = EMAIL.replace(EMAIL_WORLD_V0_1, "switchboard:plugin/channel@0.2.0");
        let problems = problems_of(&bad);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(
                "only for the e-mail worlds (`switchboard:mail/email@0.1.0`, \
                 `switchboard:mail/email@0.2.0`)"
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn connect_entries_need_a_port_and_no_twins() {
        // Array-of-tables headers name their full path, so entries appended
        // after the `[[config]]` keys still belong to `capabilities.connect`.
        let bad = format!(
            "{EMAIL}\n[[capabilities.connect]]\nhost-config = \"smtp_host\"\n\n\
             [[capabilities.connect]]\nhost-config = \"imap_host\"\n\
             port-config = \"imap_port\"\ndefault-port = 0\n"
        );
        let problems = problems_of(&bad);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("[2]: needs a port-config, a default-port or both"));
        assert!(problems[1].contains("[3]: default-port must be 1-65535"));
        assert!(problems[2].contains("[3]: host-config `imap_host` is declared twice"));
    }

    #[test]
    fn unknown_connect_fields_are_refused() {
        let bad = EMAIL.replace("default-port = 993", "default-port = 993\ntls = true");
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
