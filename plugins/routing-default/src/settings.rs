//! Operator settings: the config keys declared in `plugin.toml`, parsed and
//! checked. Every problem becomes [`PluginError::Config`] naming the key, so the
//! operator knows what to fix.
//!
//! The host fills in the defaults declared in `plugin.toml`; the same defaults
//! live here too, so an unset or empty value means the same thing either way.

use switchboard_sdk::PluginError;

/// Default of `channel_queues`.
pub const DEFAULT_CHANNEL_QUEUES: &str = "voice=voice,chat=chat,webchat=chat,sms=messaging,whatsapp=messaging,telegram=messaging,email=email";
/// Default of `default_queue`.
pub const DEFAULT_QUEUE: &str = "general";
/// Default of `channel_priority`.
pub const DEFAULT_CHANNEL_PRIORITY: &str =
    "voice=15,chat=10,webchat=10,sms=10,whatsapp=10,telegram=10,email=5";
/// Default of `default_priority`.
pub const DEFAULT_PRIORITY: &str = "5";
/// Default of `vip_boost`.
pub const DEFAULT_VIP_BOOST: &str = "10";
/// Default of `language_skills`.
pub const DEFAULT_LANGUAGE_SKILLS: &str = "true";
/// Default of `widen_after_secs`.
pub const DEFAULT_WIDEN_AFTER_SECS: &str = "60";
/// Default of `overflow_after_secs`.
pub const DEFAULT_OVERFLOW_AFTER_SECS: &str = "180";

/// The longest queue name accepted.
pub const MAX_QUEUE_NAME: usize = 64;

/// The policy's settings, valid by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lower-case channel → queue.
    pub channel_queues: Vec<(String, String)>,
    /// Queue of a channel missing from `channel_queues`.
    pub default_queue: String,
    /// Lower-case channel → base priority.
    pub channel_priority: Vec<(String, i32)>,
    /// Base priority of a channel missing from `channel_priority`.
    pub default_priority: i32,
    /// Added to the priority of a VIP contact.
    pub vip_boost: i32,
    /// Whether the contact's `language` becomes a required skill.
    pub language_skills: bool,
    /// When every skill widens to proficiency 1; `None` when turned off.
    pub widen_after_ms: Option<u64>,
    /// Where and when a task overflows; `None` without `overflow_queue`.
    pub overflow: Option<Overflow>,
    /// IVR menu for calls, digit → queue, in the order given; empty when unset.
    pub ivr_menu: Vec<(char, String)>,
}

/// The overflow step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overflow {
    /// The queue a task moves to.
    pub queue: String,
    /// After how long a wait.
    pub after_ms: u64,
}

impl Settings {
    /// Reads and checks every key through `get` (the SDK's `config::get` in the
    /// component, a map in tests).
    ///
    /// # Errors
    ///
    /// [`PluginError::Config`] for the first key whose value is malformed.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Settings, PluginError> {
        let value = |key: &str, default: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let optional = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let channel_queues = pairs(
            "channel_queues",
            &value("channel_queues", DEFAULT_CHANNEL_QUEUES),
        )?
        .into_iter()
        .map(|(channel, queue)| {
            check_queue("channel_queues", &queue)?;
            Ok((channel.to_ascii_lowercase(), queue))
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
        let default_queue = value("default_queue", DEFAULT_QUEUE);
        check_queue("default_queue", &default_queue)?;

        let channel_priority = pairs(
            "channel_priority",
            &value("channel_priority", DEFAULT_CHANNEL_PRIORITY),
        )?
        .into_iter()
        .map(|(channel, priority)| {
            let priority = priority.parse::<i32>().map_err(|_| {
                config_error(
                    "channel_priority",
                    format!("`{channel}={priority}`: the priority must be an integer"),
                )
            })?;
            Ok((channel.to_ascii_lowercase(), priority))
        })
        .collect::<Result<Vec<_>, PluginError>>()?;
        let default_priority = integer(
            "default_priority",
            &value("default_priority", DEFAULT_PRIORITY),
        )?;
        let vip_boost = integer("vip_boost", &value("vip_boost", DEFAULT_VIP_BOOST))?;
        let language_skills = boolean(
            "language_skills",
            &value("language_skills", DEFAULT_LANGUAGE_SKILLS),
        )?;

        let widen_after_ms = match seconds_as_ms(
            "widen_after_secs",
            &value("widen_after_secs", DEFAULT_WIDEN_AFTER_SECS),
        )? {
            0 => None,
            ms => Some(ms),
        };
        let overflow_after_ms = seconds_as_ms(
            "overflow_after_secs",
            &value("overflow_after_secs", DEFAULT_OVERFLOW_AFTER_SECS),
        )?;
        if overflow_after_ms == 0 {
            return Err(config_error(
                "overflow_after_secs",
                "must be at least 1 (to send tasks to a queue at once, map them there with `channel_queues`)".into(),
            ));
        }
        let overflow = match optional("overflow_queue") {
            Some(queue) => {
                check_queue("overflow_queue", &queue)?;
                Some(Overflow {
                    queue,
                    after_ms: overflow_after_ms,
                })
            }
            None => None,
        };

        let ivr_menu = match optional("ivr_menu") {
            Some(menu) => pairs("ivr_menu", &menu)?
                .into_iter()
                .map(|(digit, queue)| {
                    let mut chars = digit.chars();
                    let key = match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => c,
                        _ => {
                            return Err(config_error(
                                "ivr_menu",
                                format!("`{digit}={queue}`: the key must be one digit, `*` or `#`"),
                            ));
                        }
                    };
                    check_queue("ivr_menu", &queue)?;
                    Ok((key, queue))
                })
                .collect::<Result<Vec<_>, PluginError>>()?,
            None => Vec::new(),
        };

        Ok(Settings {
            channel_queues,
            default_queue,
            channel_priority,
            default_priority,
            vip_boost,
            language_skills,
            widen_after_ms,
            overflow,
            ivr_menu,
        })
    }

    /// The defaults, as declared in `plugin.toml`.
    pub fn defaults() -> Settings {
        Settings::load(|_| None).expect("the built-in defaults are valid")
    }

    /// The queue `channel_queues` names for exactly `key` (a channel or a
    /// connector's plugin id), if any.
    pub fn queue_named(&self, key: &str) -> Option<&str> {
        self.channel_queues
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(key))
            .map(|(_, queue)| queue.as_str())
    }

    /// The queue of a channel (matched case-insensitively).
    pub fn queue_for(&self, channel: &str) -> &str {
        self.channel_queues
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(channel))
            .map_or(self.default_queue.as_str(), |(_, queue)| queue.as_str())
    }

    /// The base priority of a channel (matched case-insensitively).
    pub fn priority_for(&self, channel: &str) -> i32 {
        self.channel_priority
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(channel))
            .map_or(self.default_priority, |(_, priority)| *priority)
    }

    /// The queue an IVR digit selects, if the menu has it.
    pub fn menu_queue(&self, digit: &str) -> Option<&str> {
        let mut chars = digit.trim().chars();
        let (Some(key), None) = (chars.next(), chars.next()) else {
            return None;
        };
        self.ivr_menu
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, queue)| queue.as_str())
    }
}

/// Only `language_skills`, for `rank`, which needs nothing else.
///
/// # Errors
///
/// [`PluginError::Config`] when the value is not a boolean.
pub fn language_skills(get: impl Fn(&str) -> Option<String>) -> Result<bool, PluginError> {
    let text = get("language_skills")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_LANGUAGE_SKILLS.to_owned());
    boolean("language_skills", &text)
}

/// Whether `name` is a usable queue name: 1–64 ASCII letters, digits, `-`, `_`
/// or `.`.
pub fn valid_queue(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn config_error(key: &str, problem: String) -> PluginError {
    PluginError::Config(format!("config `{key}`: {problem}"))
}

fn check_queue(key: &str, queue: &str) -> Result<(), PluginError> {
    if valid_queue(queue) {
        Ok(())
    } else {
        Err(config_error(
            key,
            format!(
                "`{queue}` is not a queue name (1-{MAX_QUEUE_NAME} letters, digits, `-`, `_` or `.`)"
            ),
        ))
    }
}

/// `a=b,c=d` → `[(a, b), (c, d)]`, trimmed; empty entries are skipped, a key
/// given twice is an error.
fn pairs(key: &str, text: &str) -> Result<Vec<(String, String)>, PluginError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry
            .split_once('=')
            .map(|(n, v)| (n.trim(), v.trim()))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                config_error(
                    key,
                    format!("entry `{entry}` is not of the form `name=value`"),
                )
            })?;
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(config_error(key, format!("`{name}` is given twice")));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

fn integer(key: &str, text: &str) -> Result<i32, PluginError> {
    text.parse()
        .map_err(|_| config_error(key, format!("`{text}` is not an integer")))
}

fn seconds_as_ms(key: &str, text: &str) -> Result<u64, PluginError> {
    text.parse::<u64>()
        .ok()
        .and_then(|secs| secs.checked_mul(1000))
        .ok_or_else(|| config_error(key, format!("`{text}` is not a number of seconds")))
}

fn boolean(key: &str, text: &str) -> Result<bool, PluginError> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(config_error(
            key,
            format!("`{text}` is not a boolean (true/false, yes/no, on/off, 1/0)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(given: &[(&str, &str)]) -> Result<Settings, PluginError> {
        let given: Vec<(String, String)> = given
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(|key| given.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    fn config_message(result: Result<Settings, PluginError>) -> String {
        match result {
            Err(PluginError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_brief() {
        let s = Settings::defaults();
        assert_eq!(s.queue_for("voice"), "voice");
        assert_eq!(s.queue_for("webchat"), "chat");
        assert_eq!(s.queue_for("WhatsApp"), "messaging");
        assert_eq!(s.queue_for("email"), "email");
        assert_eq!(s.queue_for("fax"), "general");
        assert_eq!(s.priority_for("voice"), 15);
        assert_eq!(s.priority_for("chat"), 10);
        assert_eq!(s.priority_for("sms"), 10);
        assert_eq!(s.priority_for("email"), 5);
        assert_eq!(s.priority_for("fax"), 5);
        assert_eq!(s.vip_boost, 10);
        assert!(s.language_skills);
        assert_eq!(s.widen_after_ms, Some(60_000));
        assert_eq!(s.overflow, None);
        assert!(s.ivr_menu.is_empty());
    }

    /// The defaults in `plugin.toml` (which the host fills in) and in the code
    /// (used when a value is unset or empty) must not drift apart.
    #[test]
    fn plugin_toml_declares_the_same_defaults() {
        let manifest = include_str!("../plugin.toml");
        let mut declared: Vec<(String, Option<String>)> = Vec::new();
        for line in manifest.lines().map(str::trim) {
            let quoted = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|rest| rest.trim().strip_prefix('='))
                    .map(|rest| rest.trim().trim_matches('"').to_owned())
            };
            if let Some(key) = quoted("key") {
                declared.push((key, None));
            } else if let Some(default) = quoted("default") {
                declared.last_mut().expect("default after key").1 = Some(default);
            }
        }
        let expected = [
            ("channel_queues", Some(DEFAULT_CHANNEL_QUEUES)),
            ("default_queue", Some(DEFAULT_QUEUE)),
            ("channel_priority", Some(DEFAULT_CHANNEL_PRIORITY)),
            ("default_priority", Some(DEFAULT_PRIORITY)),
            ("vip_boost", Some(DEFAULT_VIP_BOOST)),
            ("language_skills", Some(DEFAULT_LANGUAGE_SKILLS)),
            ("widen_after_secs", Some(DEFAULT_WIDEN_AFTER_SECS)),
            ("overflow_after_secs", Some(DEFAULT_OVERFLOW_AFTER_SECS)),
            ("overflow_queue", None),
            ("ivr_menu", None),
        ]
        .map(|(k, d)| (k.to_owned(), d.map(str::to_owned)))
        .to_vec();
        assert_eq!(declared, expected);
    }

    #[test]
    fn empty_values_mean_the_default() {
        let s = load(&[("channel_priority", ""), ("vip_boost", "  ")]).unwrap();
        assert_eq!(s, Settings::defaults());
    }

    #[test]
    fn operator_values_replace_the_defaults() {
        let s = load(&[
            ("channel_queues", " Voice = phones , , email=inbox "),
            ("default_queue", "misc"),
            ("channel_priority", "voice=20,email=-1"),
            ("default_priority", "2"),
            ("vip_boost", "50"),
            ("language_skills", "no"),
            ("widen_after_secs", "0"),
            ("overflow_after_secs", "300"),
            ("overflow_queue", "backup"),
            ("ivr_menu", "1=sales, 2=billing, #=operator"),
        ])
        .unwrap();
        assert_eq!(s.queue_for("voice"), "phones");
        assert_eq!(s.queue_for("email"), "inbox");
        assert_eq!(s.queue_for("chat"), "misc");
        assert_eq!(s.priority_for("VOICE"), 20);
        assert_eq!(s.priority_for("email"), -1);
        assert_eq!(s.priority_for("chat"), 2);
        assert_eq!(s.vip_boost, 50);
        assert!(!s.language_skills);
        assert_eq!(s.widen_after_ms, None);
        assert_eq!(
            s.overflow,
            Some(Overflow {
                queue: "backup".into(),
                after_ms: 300_000
            })
        );
        assert_eq!(s.menu_queue("2"), Some("billing"));
        assert_eq!(s.menu_queue(" # "), Some("operator"));
        assert_eq!(s.menu_queue("3"), None);
        assert_eq!(s.menu_queue("12"), None);
        assert_eq!(s.menu_queue(""), None);
    }

    #[test]
    fn malformed_values_are_config_errors_naming_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "channel_queues",
                "voice",
                "entry `voice` is not of the form",
            ),
            ("channel_queues", "voice=", "is not of the form"),
            (
                "channel_queues",
                "voice=a,voice=b",
                "`voice` is given twice",
            ),
            (
                "channel_queues",
                "voice=front desk",
                "`front desk` is not a queue name",
            ),
            ("default_queue", "a/b", "`a/b` is not a queue name"),
            (
                "channel_priority",
                "voice=high",
                "`voice=high`: the priority must be an integer",
            ),
            ("default_priority", "1.5", "`1.5` is not an integer"),
            ("vip_boost", "lots", "`lots` is not an integer"),
            ("language_skills", "maybe", "`maybe` is not a boolean"),
            ("widen_after_secs", "-1", "`-1` is not a number of seconds"),
            ("widen_after_secs", "1m", "`1m` is not a number of seconds"),
            ("overflow_after_secs", "0", "must be at least 1"),
            (
                "overflow_after_secs",
                "99999999999999999",
                "is not a number of seconds",
            ),
            ("overflow_queue", "over flow", "is not a queue name"),
            (
                "ivr_menu",
                "12=sales",
                "`12=sales`: the key must be one digit",
            ),
            ("ivr_menu", "1=sales,1=billing", "`1` is given twice"),
            ("ivr_menu", "1", "entry `1` is not of the form"),
        ];
        for (key, value, expected) in cases {
            let message = config_message(load(&[(key, value)]));
            assert!(
                message.starts_with(&format!("config `{key}`: ")) && message.contains(expected),
                "{key}={value:?} gave {message:?}"
            );
        }
    }

    #[test]
    fn language_skills_alone() {
        assert!(language_skills(|_| None).unwrap());
        assert!(!language_skills(|_| Some("false".into())).unwrap());
        assert!(matches!(
            language_skills(|_| Some("sometimes".into())),
            Err(PluginError::Config(_))
        ));
    }
}
