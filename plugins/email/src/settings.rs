//! The connector's configuration, read once per call and checked as a whole:
//! every problem is reported at once, naming the keys to fix.
//!
//! This module only reads and validates; it never connects anywhere.

use switchboard_sdk::PluginError;
use switchboard_sdk::mail::Security;

use crate::address;

/// The largest message read whole, and `max_message_bytes` when unset: 16 MiB.
///
/// Reading a message holds it encoded, parsed and its parts decoded inside the
/// connector's 64 MiB of memory: the e-mail benchmark measured a 15 MiB
/// attachment peaking at about 41 MiB and a 24.6 MiB message exceeding the
/// limit, which failed every poll and stopped the mailbox. Larger messages
/// are read from their structure (header, the start of the text, files by
/// reference, copied later in pieces), and a higher setting is lowered to
/// this, so no message can stop a mailbox and none loses its files.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_MAILGUN_API: &str = "https://api.mailgun.net";
const DEFAULT_POSTMARK_API: &str = "https://api.postmarkapp.com";

/// How mail comes in and goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Polled over IMAP, sent over SMTP submission.
    Imap,
    /// Mailgun routes in, the Mailgun API out.
    Mailgun,
    /// Postmark inbound webhooks in, the Postmark API out.
    Postmark,
}

impl Provider {
    /// The provider `provider` names; `imap` when unset.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Provider::Imap),
            Some(v) if v.eq_ignore_ascii_case("imap") => Ok(Provider::Imap),
            Some(v) if v.eq_ignore_ascii_case("mailgun") => Ok(Provider::Mailgun),
            Some(v) if v.eq_ignore_ascii_case("postmark") => Ok(Provider::Postmark),
            Some(v) => Err(format!(
                "`provider` is `{v}`; expected `imap`, `mailgun` or `postmark`"
            )),
        }
    }
}

/// One mail server and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// How the connector logs in to IMAP and SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Password { username: String, password: String },
    XOauth2 { username: String, oauth: OAuth },
}

impl Login {
    pub fn username(&self) -> &str {
        match self {
            Login::Password { username, .. } | Login::XOauth2 { username, .. } => username,
        }
    }
}

/// An OAuth 2.0 client that refreshes access tokens for XOAUTH2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub refresh_token: String,
    pub scope: Option<String>,
}

/// What the first poll of a mailbox takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialSync {
    /// Every message already in the folder.
    All,
    /// Only mail that arrives after the first poll.
    New,
}

/// The IMAP/SMTP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSmtp {
    pub imap: Server,
    pub smtp: Server,
    pub login: Login,
    pub mailbox: String,
    pub initial_sync: InitialSync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailgun {
    pub signing_key: String,
    pub api_key: String,
    pub domain: String,
    pub api_base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postmark {
    pub server_token: String,
    pub webhook_user: String,
    pub webhook_password: String,
    pub api_base: String,
}

/// Everything the connector reads from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The mailbox's own address.
    pub address: String,
    pub display_name: Option<String>,
    pub max_message_bytes: u64,
    pub provider: ProviderSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    Imap(ImapSmtp),
    Mailgun(Mailgun),
    Postmark(Postmark),
}

impl Settings {
    /// Reads and checks the config through `get` (the host's config in the
    /// component, a map in tests).
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] listing every missing or malformed key.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Settings, PluginError> {
        let mut reader = Reader {
            get: &get,
            problems: Vec::new(),
        };
        let settings = reader.settings();
        if reader.problems.is_empty() {
            Ok(settings)
        } else {
            Err(PluginError::Config(reader.problems.join("; ")))
        }
    }

    /// The domain of [`Settings::address`].
    pub fn domain(&self) -> &str {
        address::domain(&self.address).unwrap_or("localhost")
    }
}

struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn optional(&self, key: &str) -> Option<String> {
        (self.get)(key)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// Secrets are taken as set: a password may start or end with a space.
    fn secret(&self, key: &str) -> Option<String> {
        (self.get)(key).filter(|value| !value.is_empty())
    }

    fn required(&mut self, key: &str, why: &str) -> String {
        self.optional(key).unwrap_or_else(|| {
            self.problems.push(format!("`{key}` is required {why}"));
            String::new()
        })
    }

    fn required_secret(&mut self, key: &str, why: &str) -> String {
        self.secret(key).unwrap_or_else(|| {
            self.problems.push(format!("`{key}` is required {why}"));
            String::new()
        })
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str, default: T) -> T {
        match self.optional(key) {
            None => default,
            Some(value) => value.parse().unwrap_or_else(|_| {
                self.problems
                    .push(format!("`{key}` is `{value}`, which is not a valid number"));
                default
            }),
        }
    }

    fn settings(&mut self) -> Settings {
        let address = self.required("address", "(the mailbox's e-mail address)");
        if !address.is_empty() && !address::is_valid(&address) {
            self.problems.push(format!(
                "`address` is `{address}`, which is not an e-mail address"
            ));
        }
        let display_name = self.optional("display_name");
        let max_message_bytes = self
            .number("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)
            .min(DEFAULT_MAX_MESSAGE_BYTES);
        if max_message_bytes == 0 {
            self.problems
                .push("`max_message_bytes` must be more than 0".to_owned());
        }
        let provider = match Provider::parse(self.optional("provider").as_deref()) {
            Ok(provider) => provider,
            Err(problem) => {
                self.problems.push(problem);
                Provider::Imap
            }
        };
        let provider = match provider {
            Provider::Imap => ProviderSettings::Imap(self.imap_smtp(&address)),
            Provider::Mailgun => ProviderSettings::Mailgun(self.mailgun(&address)),
            Provider::Postmark => ProviderSettings::Postmark(self.postmark()),
        };
        Settings {
            address,
            display_name,
            max_message_bytes,
            provider,
        }
    }

    fn imap_smtp(&mut self, address: &str) -> ImapSmtp {
        let why = "with provider `imap`";
        let security = match self.optional("security").as_deref() {
            None => Security::Tls,
            Some(v) if v.eq_ignore_ascii_case("tls") => Security::Tls,
            Some(v) if v.eq_ignore_ascii_case("starttls") => Security::Starttls,
            Some(v) if v.eq_ignore_ascii_case("plain") => Security::Plain,
            Some(v) => {
                self.problems.push(format!(
                    "`security` is `{v}`; expected `tls`, `starttls` or `plain`"
                ));
                Security::Tls
            }
        };
        let imap_host = self.required("imap_host", why);
        let imap_port = self.number("imap_port", 993u16);
        let smtp_host = self.required("smtp_host", why);
        let smtp_port = self.number("smtp_port", 465u16);
        let username = self
            .optional("username")
            .unwrap_or_else(|| address.to_owned());
        let login = match self.optional("auth").as_deref() {
            None => self.password_login(username),
            Some(v) if v.eq_ignore_ascii_case("password") => self.password_login(username),
            Some(v) if v.eq_ignore_ascii_case("xoauth2") || v.eq_ignore_ascii_case("oauth") => {
                self.oauth_login(username)
            }
            Some(v) => {
                self.problems
                    .push(format!("`auth` is `{v}`; expected `password` or `xoauth2`"));
                self.password_login(username)
            }
        };
        let initial_sync = match self.optional("initial_sync").as_deref() {
            None => InitialSync::All,
            Some(v) if v.eq_ignore_ascii_case("all") => InitialSync::All,
            Some(v) if v.eq_ignore_ascii_case("new") => InitialSync::New,
            Some(v) => {
                self.problems
                    .push(format!("`initial_sync` is `{v}`; expected `all` or `new`"));
                InitialSync::All
            }
        };
        ImapSmtp {
            imap: Server {
                security: per_server(security, imap_port, &[993], &[143]),
                host: imap_host,
                port: imap_port,
            },
            smtp: Server {
                security: per_server(security, smtp_port, &[465], &[587, 25]),
                host: smtp_host,
                port: smtp_port,
            },
            login,
            mailbox: self
                .optional("mailbox")
                .unwrap_or_else(|| "INBOX".to_owned()),
            initial_sync,
        }
    }

    fn password_login(&mut self, username: String) -> Login {
        let password = self.required_secret("password", "with auth `password`");
        Login::Password { username, password }
    }

    fn oauth_login(&mut self, username: String) -> Login {
        let why = "with auth `xoauth2`";
        let token_url = self.required("oauth_token_url", why);
        if !token_url.is_empty()
            && !token_url.starts_with("https://")
            && !token_url.starts_with("http://")
        {
            self.problems.push(format!(
                "`oauth_token_url` is `{token_url}`, which is not an http(s) URL"
            ));
        }
        let oauth = OAuth {
            token_url,
            client_id: self.required("oauth_client_id", why),
            client_secret: self.secret("oauth_client_secret"),
            refresh_token: self.required_secret("oauth_refresh_token", why),
            scope: self.optional("oauth_scope"),
        };
        Login::XOauth2 { username, oauth }
    }

    fn mailgun(&mut self, address: &str) -> Mailgun {
        let why = "with provider `mailgun`";
        Mailgun {
            signing_key: self.required_secret("mailgun_signing_key", why),
            api_key: self.required_secret("mailgun_api_key", why),
            domain: self
                .optional("mailgun_domain")
                .or_else(|| address::domain(address).map(str::to_owned))
                .unwrap_or_default(),
            api_base: self
                .optional("mailgun_api_base")
                .unwrap_or_else(|| DEFAULT_MAILGUN_API.to_owned())
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    fn postmark(&mut self) -> Postmark {
        let why = "with provider `postmark`";
        Postmark {
            server_token: self.required_secret("postmark_server_token", why),
            webhook_user: self.required("postmark_webhook_user", why),
            webhook_password: self.required_secret("postmark_webhook_password", why),
            api_base: self
                .optional("postmark_api_base")
                .unwrap_or_else(|| DEFAULT_POSTMARK_API.to_owned())
                .trim_end_matches('/')
                .to_owned(),
        }
    }
}

/// `security` as one server uses it. `tls` and `starttls` both mean
/// "encrypted"; the well-known ports decide how, since one setting covers two
/// servers that often differ (Gmail: IMAP 993 with TLS, SMTP 587 with
/// STARTTLS). `plain` stays plain, and other ports take the setting as it is.
fn per_server(security: Security, port: u16, implicit: &[u16], starttls: &[u16]) -> Security {
    match security {
        Security::Plain => Security::Plain,
        _ if implicit.contains(&port) => Security::Tls,
        _ if starttls.contains(&port) => Security::Starttls,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, PluginError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(|key| map.get(key).cloned())
    }

    #[test]
    fn an_imap_mailbox_with_defaults() {
        let settings = load(&[
            ("address", "support@example.com"),
            ("imap_host", "imap.example.com"),
            ("smtp_host", "smtp.example.com"),
            ("password", " secret "),
        ])
        .unwrap();
        assert_eq!(settings.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(settings.domain(), "example.com");
        // More than the connector's memory holds is lowered; less is kept.
        for (asked, kept) in [
            ("52428800", DEFAULT_MAX_MESSAGE_BYTES),
            ("1048576", 1_048_576),
        ] {
            let settings = load(&[
                ("address", "support@example.com"),
                ("imap_host", "imap.example.com"),
                ("smtp_host", "smtp.example.com"),
                ("password", "secret"),
                ("max_message_bytes", asked),
            ])
            .unwrap();
            assert_eq!(settings.max_message_bytes, kept);
        }
        let ProviderSettings::Imap(imap) = settings.provider else {
            panic!("imap expected")
        };
        assert_eq!(imap.imap.port, 993);
        assert_eq!(imap.imap.security, Security::Tls);
        assert_eq!(imap.smtp.port, 465);
        assert_eq!(imap.mailbox, "INBOX");
        assert_eq!(
            imap.login,
            Login::Password {
                username: "support@example.com".into(),
                password: " secret ".into()
            }
        );
    }

    #[test]
    fn well_known_ports_pick_the_tls_method() {
        let settings = load(&[
            ("address", "support@example.com"),
            ("imap_host", "imap.example.com"),
            ("smtp_host", "smtp.example.com"),
            ("smtp_port", "587"),
            ("security", "tls"),
            ("password", "x"),
        ])
        .unwrap();
        let ProviderSettings::Imap(imap) = settings.provider else {
            panic!()
        };
        assert_eq!(imap.imap.security, Security::Tls);
        assert_eq!(imap.smtp.security, Security::Starttls);
        assert_eq!(
            per_server(Security::Starttls, 10993, &[993], &[143]),
            Security::Starttls
        );
        assert_eq!(
            per_server(Security::Plain, 993, &[993], &[143]),
            Security::Plain
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let Err(PluginError::Config(message)) = load(&[
            ("address", "not an address"),
            ("imap_port", "99999"),
            ("security", "ssl"),
            ("auth", "xoauth2"),
        ]) else {
            panic!("config error expected")
        };
        for key in [
            "`address`",
            "`imap_host`",
            "`smtp_host`",
            "`imap_port`",
            "`security`",
            "`oauth_token_url`",
            "`oauth_client_id`",
            "`oauth_refresh_token`",
        ] {
            assert!(message.contains(key), "{key} missing from {message}");
        }
    }

    #[test]
    fn mailgun_and_postmark_need_their_own_keys_only() {
        let settings = load(&[
            ("address", "support@mg.example.com"),
            ("provider", "mailgun"),
            ("mailgun_signing_key", "key"),
            ("mailgun_api_key", "api"),
        ])
        .unwrap();
        let ProviderSettings::Mailgun(mailgun) = settings.provider else {
            panic!()
        };
        assert_eq!(mailgun.domain, "mg.example.com");
        assert_eq!(mailgun.api_base, "https://api.mailgun.net");

        let Err(PluginError::Config(message)) =
            load(&[("address", "a@example.com"), ("provider", "postmark")])
        else {
            panic!()
        };
        assert!(message.contains("postmark_server_token"));
        assert!(message.contains("postmark_webhook_password"));
        assert!(!message.contains("imap_host"));
    }
}
