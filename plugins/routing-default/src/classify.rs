//! `classify`: which queue, how urgent, which skills, how to widen, and the
//! IVR for calls.

use switchboard_sdk::PluginError;
use switchboard_sdk::routing::{
    Classification, GatherDigits, IvrStep, RoutingStep, SkillRequirement, TaskInfo,
};

use crate::settings::{Settings, valid_queue};
use crate::task::{self, MENU, PRIORITY, QUEUE};

/// The task attribute naming the connector the conversation came through.
pub const PLUGIN_ID: &str = "plugin_id";

/// The channel whose tasks get the IVR.
pub const VOICE: &str = "voice";
/// Prompt id of the IVR menu the host plays.
pub const MENU_PROMPT: &str = "main-menu";
/// How long the IVR waits for the caller's digit.
pub const MENU_TIMEOUT_MS: u32 = 5_000;

/// Classifies `task` under `settings`.
///
/// - **Queue**: the task attribute `queue`; else, for a call when `ivr_menu`
///   is set, the queue of the digit in the task attribute `menu`; else the
///   queue `channel_queues` gives the connector (the task attribute
///   `plugin_id`, e.g. `email-billing=billing`), else the channel's, else
///   `default_queue`.
/// - **Priority**: the task attribute `priority`, else the channel's from
///   `channel_priority` (or `default_priority`); plus `vip_boost` for a VIP
///   contact.
/// - **Skills**: see [`task::required_skills`].
/// - **Steps**: widen every skill to proficiency 1 after `widen_after_secs`
///   (only when some skill asks for more than 1); overflow to
///   `overflow_queue` after `overflow_after_secs` (only when set and not the
///   task's own queue). Ordered by time.
/// - **IVR**: a call with `ivr_menu` set, no `queue` and no `menu` attribute
///   yet gathers one digit into `menu`; its queue meanwhile is the channel's.
///   Once `menu` is present (empty when the caller pressed nothing), the call
///   goes to that digit's queue, or the channel's, with no IVR again.
///
/// # Errors
///
/// [`PluginError::InvalidRequest`] when the task's `queue`, `priority` or
/// `skills` attribute is malformed.
pub fn classify(settings: &Settings, task: &TaskInfo) -> Result<Classification, PluginError> {
    let channel = task.channel.trim();
    let is_call = channel.eq_ignore_ascii_case(VOICE);
    let has_menu = is_call && !settings.ivr_menu.is_empty();

    let mut ivr = Vec::new();
    let queue = if let Some(queue) = task::task_attribute(task, QUEUE) {
        if !valid_queue(queue) {
            return Err(PluginError::InvalidRequest(format!(
                "task attribute `{QUEUE}`: `{queue}` is not a queue name"
            )));
        }
        queue
    } else if has_menu {
        if task::has_task_attribute(task, MENU) {
            // The IVR has run. A digit off the menu, or none before the
            // timeout (`menu` empty), falls back to the channel's queue: the
            // caller is not sent round the menu again.
            task::task_attribute(task, MENU)
                .and_then(|digit| settings.menu_queue(digit))
                .unwrap_or_else(|| settings.queue_for(channel))
        } else {
            ivr.push(IvrStep::Gather(GatherDigits {
                prompt: MENU_PROMPT.into(),
                max_digits: 1,
                timeout_ms: MENU_TIMEOUT_MS,
                attribute: MENU.into(),
            }));
            settings.queue_for(channel)
        }
    } else {
        // A connector installed for one account (the billing@ mailbox, a second
        // WhatsApp number) can have a queue of its own: its plugin id first.
        task::task_attribute(task, PLUGIN_ID)
            .and_then(|plugin| settings.queue_named(plugin))
            .unwrap_or_else(|| settings.queue_for(channel))
    }
    .to_owned();

    let base = match task::task_attribute(task, PRIORITY) {
        Some(text) => text.parse::<i32>().map_err(|_| {
            PluginError::InvalidRequest(format!(
                "task attribute `{PRIORITY}`: `{text}` is not an integer"
            ))
        })?,
        None => settings.priority_for(channel),
    };
    let priority = if task::is_vip(task) {
        base.saturating_add(settings.vip_boost)
    } else {
        base
    };

    let required_skills = task::required_skills(task, settings.language_skills)?;
    let steps = steps(settings, &queue, &required_skills);

    Ok(Classification {
        queue,
        priority,
        required_skills,
        steps,
        ivr,
    })
}

fn steps(settings: &Settings, queue: &str, skills: &[SkillRequirement]) -> Vec<RoutingStep> {
    let mut steps = Vec::new();
    if let Some(after_ms) = settings.widen_after_ms
        && skills.iter().any(|s| s.min_proficiency > 1)
    {
        steps.push(RoutingStep {
            after_ms,
            min_proficiency: Some(1),
            overflow_queue: None,
        });
    }
    if let Some(overflow) = &settings.overflow
        && overflow.queue != queue
    {
        steps.push(RoutingStep {
            after_ms: overflow.after_ms,
            min_proficiency: None,
            overflow_queue: Some(overflow.queue.clone()),
        });
    }
    steps.sort_by_key(|step| step.after_ms);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests::task;

    fn settings(given: &[(&str, &str)]) -> Settings {
        Settings::load(|key| {
            given
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap()
    }

    fn classify_default(t: &TaskInfo) -> Classification {
        classify(&Settings::defaults(), t).unwrap()
    }

    fn req(skill: &str, min_proficiency: u8) -> SkillRequirement {
        SkillRequirement {
            skill: skill.into(),
            min_proficiency,
        }
    }

    fn widen(after_ms: u64) -> RoutingStep {
        RoutingStep {
            after_ms,
            min_proficiency: Some(1),
            overflow_queue: None,
        }
    }

    fn overflow(after_ms: u64, queue: &str) -> RoutingStep {
        RoutingStep {
            after_ms,
            min_proficiency: None,
            overflow_queue: Some(queue.into()),
        }
    }

    #[test]
    fn a_connector_can_have_its_own_queue_before_its_channel() {
        let settings = Settings::load(|key| {
            (key == "channel_queues").then(|| "email=support,email-billing=billing".to_owned())
        })
        .unwrap();
        let billing = task("email", &[(PLUGIN_ID, "email-billing")], None);
        assert_eq!(classify(&settings, &billing).unwrap().queue, "billing");
        let support = task("email", &[(PLUGIN_ID, "email")], None);
        assert_eq!(classify(&settings, &support).unwrap().queue, "support");
        let unlisted = task("email", &[(PLUGIN_ID, "email-sales")], None);
        assert_eq!(classify(&settings, &unlisted).unwrap().queue, "support");
    }

    #[test]
    fn channels_map_to_queues_and_priorities() {
        let cases = [
            ("voice", "voice", 15),
            ("chat", "chat", 10),
            ("webchat", "chat", 10),
            ("sms", "messaging", 10),
            ("whatsapp", "messaging", 10),
            ("telegram", "messaging", 10),
            ("email", "email", 5),
            ("Email", "email", 5),
            ("fax", "general", 5),
        ];
        for (channel, queue, priority) in cases {
            let c = classify_default(&task(channel, &[], None));
            assert_eq!(
                (c.queue.as_str(), c.priority),
                (queue, priority),
                "{channel}"
            );
            assert!(c.ivr.is_empty() && c.steps.is_empty() && c.required_skills.is_empty());
        }
    }

    #[test]
    fn queue_attribute_wins() {
        let c = classify_default(&task("email", &[("queue", "billing")], None));
        assert_eq!(c.queue, "billing");
        assert_eq!(c.priority, 5);
        let err = classify(
            &Settings::defaults(),
            &task("email", &[("queue", "a b")], None),
        );
        assert!(
            matches!(err, Err(PluginError::InvalidRequest(_))),
            "{err:?}"
        );
    }

    #[test]
    fn vip_boost_and_priority_override() {
        let vip = Some(&[("vip", "yes")][..]);
        assert_eq!(classify_default(&task("voice", &[], vip)).priority, 25);
        assert_eq!(classify_default(&task("email", &[], vip)).priority, 15);
        assert_eq!(
            classify_default(&task("email", &[("priority", "40")], None)).priority,
            40
        );
        assert_eq!(
            classify_default(&task("email", &[("priority", "-3")], vip)).priority,
            7
        );
        let boosted = settings(&[("vip_boost", "100")]);
        assert_eq!(
            classify(&boosted, &task("chat", &[], vip))
                .unwrap()
                .priority,
            110
        );
        let max = classify_default(&task("chat", &[("priority", "2147483647")], vip));
        assert_eq!(max.priority, i32::MAX);
        let err = classify(
            &Settings::defaults(),
            &task("chat", &[("priority", "high")], None),
        );
        assert!(matches!(err, Err(PluginError::InvalidRequest(m)) if m.contains("`high`")));
    }

    #[test]
    fn skills_language_and_widening() {
        let t = task(
            "chat",
            &[("skills", "billing:3,spanish:2")],
            Some(&[("language", "es")]),
        );
        let c = classify_default(&t);
        assert_eq!(
            c.required_skills,
            vec![req("billing", 3), req("spanish", 2), req("lang-es", 1)]
        );
        assert_eq!(c.steps, vec![widen(60_000)]);

        let no_lang = classify(&settings(&[("language_skills", "false")]), &t).unwrap();
        assert_eq!(
            no_lang.required_skills,
            vec![req("billing", 3), req("spanish", 2)]
        );

        // Nothing to widen when every skill is already at 1.
        let t = task(
            "chat",
            &[("skills", "returns")],
            Some(&[("language", "fr")]),
        );
        assert_eq!(classify_default(&t).steps, vec![]);

        let err = classify(
            &Settings::defaults(),
            &task("chat", &[("skills", "billing:9")], None),
        );
        assert!(
            matches!(err, Err(PluginError::InvalidRequest(_))),
            "{err:?}"
        );
    }

    #[test]
    fn steps_follow_the_settings_in_time_order() {
        let skilled = task("chat", &[("skills", "billing:4")], None);
        let s = settings(&[("overflow_queue", "backup")]);
        assert_eq!(
            classify(&s, &skilled).unwrap().steps,
            vec![widen(60_000), overflow(180_000, "backup")]
        );
        let s = settings(&[
            ("overflow_queue", "backup"),
            ("overflow_after_secs", "30"),
            ("widen_after_secs", "90"),
        ]);
        assert_eq!(
            classify(&s, &skilled).unwrap().steps,
            vec![overflow(30_000, "backup"), widen(90_000)]
        );
        let s = settings(&[("overflow_queue", "backup"), ("widen_after_secs", "0")]);
        assert_eq!(
            classify(&s, &skilled).unwrap().steps,
            vec![overflow(180_000, "backup")]
        );
        // No overflow into the queue the task is already in.
        let s = settings(&[("overflow_queue", "chat")]);
        assert_eq!(classify(&s, &skilled).unwrap().steps, vec![widen(60_000)]);
    }

    #[test]
    fn calls_gather_a_menu_digit_then_route_by_it() {
        let s = settings(&[("ivr_menu", "1=sales,2=billing")]);
        let c = classify(&s, &task("voice", &[], None)).unwrap();
        assert_eq!(
            c.ivr,
            vec![IvrStep::Gather(GatherDigits {
                prompt: "main-menu".into(),
                max_digits: 1,
                timeout_ms: 5_000,
                attribute: "menu".into(),
            })]
        );
        assert_eq!(c.queue, "voice");
        assert_eq!(c.priority, 15);

        let c = classify(&s, &task("voice", &[("menu", "2")], None)).unwrap();
        assert_eq!((c.queue.as_str(), c.ivr.len()), ("billing", 0));
        let c = classify(&s, &task("voice", &[("menu", "7")], None)).unwrap();
        assert_eq!((c.queue.as_str(), c.ivr.len()), ("voice", 0));
        // No digit before the timeout: the host leaves `menu` empty.
        let c = classify(&s, &task("voice", &[("menu", "")], None)).unwrap();
        assert_eq!((c.queue.as_str(), c.ivr.len()), ("voice", 0));
        let c = classify(&s, &task("voice", &[("queue", "vip-line")], None)).unwrap();
        assert_eq!((c.queue.as_str(), c.ivr.len()), ("vip-line", 0));

        // Only calls get the IVR, and only when a menu is configured.
        let c = classify(&s, &task("chat", &[("menu", "2")], None)).unwrap();
        assert_eq!((c.queue.as_str(), c.ivr.len()), ("chat", 0));
        assert!(classify_default(&task("voice", &[], None)).ivr.is_empty());
    }
}
