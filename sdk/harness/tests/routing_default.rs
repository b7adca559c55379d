//! The built `routing-default` policy in the real sandbox: what `classify` and
//! `rank` answer for real tasks and candidates, under default and operator
//! config.
//!
//! Run with `bash plugins/build.sh && cargo test -p switchboard-harness`.

use switchboard_harness::bindings::{
    Classification, ContactSummary, IvrStep, SkillRequirement, TaskInfo,
};
use switchboard_harness::{AgentCandidate, CandidateSet, Harness, PluginError, plugin_dir};

fn load(config: &[(&str, &str)]) -> Harness {
    Harness::load(&plugin_dir("routing-default"), config)
        .expect("load routing-default (run `bash plugins/build.sh` first)")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A task on `channel` with these task attributes and, when given, a contact
/// with these attributes.
fn task(channel: &str, attributes: &[(&str, &str)], contact: Option<&[(&str, &str)]>) -> TaskInfo {
    TaskInfo {
        id: "task-1".into(),
        channel: channel.into(),
        conversation_id: Some("conv-1".into()),
        contact: contact.map(|contact_attributes| ContactSummary {
            id: "contact-1".into(),
            display_name: Some("Ada".into()),
            identities: Vec::new(),
            attributes: pairs(contact_attributes),
        }),
        attributes: pairs(attributes),
        waiting_ms: 0,
        last_agent: None,
    }
}

fn agent(id: &str, skills: &[(&str, u8)], idle_ms: u64, load: u32) -> AgentCandidate {
    AgentCandidate {
        id: id.into(),
        skills: skills.iter().map(|(s, l)| ((*s).to_owned(), *l)).collect(),
        idle_ms,
        load,
        capacity: 100,
        served_contact_last: false,
        attributes: Vec::new(),
    }
}

async fn classify(h: &Harness, task: &TaskInfo) -> Classification {
    h.host()
        .classify(h.id(), task)
        .await
        .expect("the call completes")
        .expect("the task is classified")
}

async fn classify_error(h: &Harness, task: &TaskInfo) -> PluginError {
    match h
        .host()
        .classify(h.id(), task)
        .await
        .expect("the call completes")
    {
        Ok(c) => panic!("expected an error, got queue {:?}", c.queue),
        Err(error) => error,
    }
}

async fn rank(h: &Harness, task: &TaskInfo, candidates: &[AgentCandidate]) -> Vec<u32> {
    h.host()
        .rank(h.id(), task, &CandidateSet::new(candidates))
        .await
        .expect("the call completes")
        .expect("the candidates are ranked")
}

fn skills(c: &Classification) -> Vec<(&str, u8)> {
    c.required_skills
        .iter()
        .map(
            |SkillRequirement {
                 skill,
                 min_proficiency,
             }| (skill.as_str(), *min_proficiency),
        )
        .collect()
}

/// Steps as (after-ms, min-proficiency, overflow-queue).
fn steps(c: &Classification) -> Vec<(u64, Option<u8>, Option<&str>)> {
    c.steps
        .iter()
        .map(|s| (s.after_ms, s.min_proficiency, s.overflow_queue.as_deref()))
        .collect()
}

#[tokio::test]
async fn voice_outranks_chat_outranks_email() {
    let h = load(&[]);
    let voice = classify(&h, &task("voice", &[], None)).await;
    let chat = classify(&h, &task("chat", &[], None)).await;
    let email = classify(&h, &task("email", &[], None)).await;
    assert_eq!((voice.queue.as_str(), voice.priority), ("voice", 15));
    assert_eq!((chat.queue.as_str(), chat.priority), ("chat", 10));
    assert_eq!((email.queue.as_str(), email.priority), ("email", 5));
    for c in [&voice, &chat, &email] {
        assert!(c.required_skills.is_empty() && c.steps.is_empty() && c.ivr.is_empty());
    }
}

#[tokio::test]
async fn channels_map_to_their_queues() {
    let h = load(&[]);
    for (channel, queue, priority) in [
        ("webchat", "chat", 10),
        ("sms", "messaging", 10),
        ("whatsapp", "messaging", 10),
        ("telegram", "messaging", 10),
        ("fax", "general", 5),
    ] {
        let c = classify(&h, &task(channel, &[], None)).await;
        assert_eq!(
            (c.queue.as_str(), c.priority),
            (queue, priority),
            "{channel}"
        );
    }
    let c = classify(&h, &task("email", &[("queue", "billing")], None)).await;
    assert_eq!(c.queue, "billing", "the task's `queue` attribute wins");

    let h = load(&[
        ("channel_queues", "voice=phones,sms=texts"),
        ("default_queue", "misc"),
    ]);
    assert_eq!(classify(&h, &task("sms", &[], None)).await.queue, "texts");
    assert_eq!(
        classify(&h, &task("voice", &[], None)).await.queue,
        "phones"
    );
    assert_eq!(classify(&h, &task("email", &[], None)).await.queue, "misc");
}

#[tokio::test]
async fn vip_contacts_are_boosted_and_priority_attribute_overrides() {
    let h = load(&[]);
    let vip = Some(&[("vip", "true")][..]);
    assert_eq!(classify(&h, &task("voice", &[], vip)).await.priority, 25);
    assert_eq!(classify(&h, &task("email", &[], vip)).await.priority, 15);
    let yes = Some(&[("vip", "YES")][..]);
    assert_eq!(classify(&h, &task("chat", &[], yes)).await.priority, 20);
    let not_vip = Some(&[("vip", "no")][..]);
    assert_eq!(classify(&h, &task("chat", &[], not_vip)).await.priority, 10);
    assert_eq!(
        classify(&h, &task("email", &[("priority", "40")], None))
            .await
            .priority,
        40
    );
    assert_eq!(
        classify(&h, &task("email", &[("priority", "40")], vip))
            .await
            .priority,
        50
    );

    let h = load(&[
        ("vip_boost", "100"),
        ("channel_priority", "email=1"),
        ("default_priority", "3"),
    ]);
    assert_eq!(classify(&h, &task("email", &[], vip)).await.priority, 101);
    assert_eq!(classify(&h, &task("voice", &[], None)).await.priority, 3);
}

#[tokio::test]
async fn skills_come_from_the_task_and_the_contacts_language() {
    let h = load(&[]);
    let t = task(
        "chat",
        &[("skills", "billing:3, spanish:2")],
        Some(&[("language", "es")]),
    );
    let c = classify(&h, &t).await;
    assert_eq!(
        skills(&c),
        vec![("billing", 3), ("spanish", 2), ("lang-es", 1)]
    );

    let h = load(&[("language_skills", "false")]);
    let c = classify(&h, &t).await;
    assert_eq!(skills(&c), vec![("billing", 3), ("spanish", 2)]);

    match classify_error(&h, &task("chat", &[("skills", "billing:7")], None)).await {
        PluginError::InvalidRequest(message) => assert!(message.contains("skills"), "{message}"),
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[tokio::test]
async fn steps_widen_then_overflow() {
    let skilled = task("chat", &[("skills", "billing:4")], None);
    let h = load(&[]);
    assert_eq!(
        steps(&classify(&h, &skilled).await),
        vec![(60_000, Some(1), None)]
    );
    // Nothing to widen or overflow for a task without skills by default.
    assert_eq!(steps(&classify(&h, &task("chat", &[], None)).await), vec![]);

    let h = load(&[("overflow_queue", "backup")]);
    assert_eq!(
        steps(&classify(&h, &skilled).await),
        vec![(60_000, Some(1), None), (180_000, None, Some("backup"))]
    );

    let h = load(&[
        ("overflow_queue", "backup"),
        ("widen_after_secs", "30"),
        ("overflow_after_secs", "600"),
    ]);
    assert_eq!(
        steps(&classify(&h, &skilled).await),
        vec![(30_000, Some(1), None), (600_000, None, Some("backup"))]
    );
}

#[tokio::test]
async fn a_call_gathers_the_ivr_menu_then_routes_by_the_digit() {
    let h = load(&[("ivr_menu", "1=sales,2=billing")]);
    let c = classify(&h, &task("voice", &[], None)).await;
    match c.ivr.as_slice() {
        [IvrStep::Gather(g)] => {
            assert_eq!(g.prompt, "main-menu");
            assert_eq!(g.max_digits, 1);
            assert_eq!(g.timeout_ms, 5_000);
            assert_eq!(g.attribute, "menu");
        }
        other => panic!("expected one gather step, got {other:?}"),
    }
    assert_eq!((c.queue.as_str(), c.priority), ("voice", 15));

    let c = classify(&h, &task("voice", &[("menu", "2")], None)).await;
    assert_eq!((c.queue.as_str(), c.ivr.len()), ("billing", 0));
    let c = classify(&h, &task("voice", &[("menu", "9")], None)).await;
    assert_eq!((c.queue.as_str(), c.ivr.len()), ("voice", 0));
    // The caller pressed nothing: the host leaves `menu` empty, and the call
    // is not sent round the menu again.
    let c = classify(&h, &task("voice", &[("menu", "")], None)).await;
    assert_eq!((c.queue.as_str(), c.ivr.len()), ("voice", 0));

    // Chats get no IVR, and calls none without a menu.
    assert!(classify(&h, &task("chat", &[], None)).await.ivr.is_empty());
    assert!(
        classify(&load(&[]), &task("voice", &[], None))
            .await
            .ivr
            .is_empty()
    );
}

#[tokio::test]
async fn the_agent_who_served_the_contact_last_comes_first() {
    let h = load(&[]);
    let t = task("chat", &[("skills", "billing:2")], None);
    let mut sticky = agent("sticky", &[], 0, 75);
    sticky.served_contact_last = true;
    let candidates = [agent("expert", &[("billing", 5)], 90_000, 0), sticky];
    assert_eq!(rank(&h, &t, &candidates).await, vec![1, 0]);

    let mut t = task("chat", &[], None);
    t.last_agent = Some("c".into());
    let candidates = [agent("b", &[], 90_000, 0), agent("c", &[], 10, 50)];
    assert_eq!(rank(&h, &t, &candidates).await, vec![1, 0]);
}

#[tokio::test]
async fn skill_match_then_longest_idle_then_lowest_load() {
    let h = load(&[]);
    let t = task(
        "chat",
        &[("skills", "billing:2")],
        Some(&[("language", "es")]),
    );
    let candidates = [
        agent("idle", &[("billing", 2)], 90_000, 0),
        agent("expert", &[("billing", 5), ("sales", 5)], 1_000, 0),
        agent("speaks-es", &[("billing", 2), ("lang-es", 4)], 1_000, 0),
    ];
    // Scores: idle 2, expert 5, speaks-es 6; skills the task does not need
    // (sales) do not count.
    assert_eq!(rank(&h, &t, &candidates).await, vec![2, 1, 0]);

    let t = task("email", &[], None);
    let candidates = [
        agent("short", &[], 1_000, 0),
        agent("busy", &[], 5_000, 75),
        agent("long", &[], 60_000, 90),
        agent("light", &[], 5_000, 20),
    ];
    assert_eq!(rank(&h, &t, &candidates).await, vec![2, 3, 1, 0]);
    assert_eq!(rank(&h, &t, &[]).await, Vec::<u32>::new());
}

/// SplitMix64: the same candidates on every run and platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }
}

/// The order the policy gave before candidates became columns (plugin API
/// 0.1.0, one record per agent), restated row by row: sticky first, then the
/// sum of proficiencies in `required`, the longest idle, the lowest
/// load/capacity (none counts as full), the host's order.
fn row_by_row_rank(
    last_agent: Option<&str>,
    required: &[&str],
    rows: &[AgentCandidate],
) -> Vec<u32> {
    let skill_match = |c: &AgentCandidate| -> u32 {
        required
            .iter()
            .map(|name| {
                c.skills
                    .iter()
                    .filter(|(s, _)| s == name)
                    .map(|(_, level)| u32::from(*level))
                    .max()
                    .unwrap_or(0)
            })
            .sum()
    };
    let sticky = |c: &AgentCandidate| c.served_contact_last || last_agent == Some(c.id.as_str());
    let ratio = |a: &AgentCandidate, b: &AgentCandidate| match (a.capacity, b.capacity) {
        (0, 0) => std::cmp::Ordering::Equal,
        (0, _) => std::cmp::Ordering::Greater,
        (_, 0) => std::cmp::Ordering::Less,
        _ => (u64::from(a.load) * u64::from(b.capacity))
            .cmp(&(u64::from(b.load) * u64::from(a.capacity))),
    };
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&rows[a as usize], &rows[b as usize]);
        sticky(b)
            .cmp(&sticky(a))
            .then(skill_match(b).cmp(&skill_match(a)))
            .then(b.idle_ms.cmp(&a.idle_ms))
            .then(ratio(a, b))
    });
    order
}

/// The column-reading policy orders exactly as the record-reading one did, on
/// generated tasks and candidates full of ties (the same idle times, loads
/// and skill sums), duplicate skill entries, agents without capacity, sticky
/// agents by flag and by `last-agent`, and agents' attributes it must ignore.
#[tokio::test]
async fn rank_orders_as_the_row_by_row_policy_did() {
    let h = load(&[]);
    let mut rng = Rng(0x5EED);
    // The `skills` attribute, and the skills it requires once parsed.
    let asks: &[(&str, &[&str])] = &[
        ("", &[]),
        ("billing:2", &["billing"]),
        ("billing:3, tech", &["billing", "tech"]),
        ("tech:1,sales:5,tech:4", &["tech", "sales"]),
        ("lang-es:3", &["lang-es"]),
    ];
    let skill_names = ["billing", "tech", "sales", "lang-es", "lang-pt"];
    for case in 0..300 {
        let (skills_attr, asked) = *rng.pick(asks);
        let language = *rng.pick(&[None, Some("es"), Some("pt")]);
        let mut required: Vec<&str> = asked.to_vec();
        let language_skill = language.map(|code| format!("lang-{code}"));
        if let Some(skill) = &language_skill
            && !required.contains(&skill.as_str())
        {
            required.push(skill);
        }

        let n = (rng.next() % 31) as usize;
        let rows: Vec<AgentCandidate> = (0..n)
            .map(|i| AgentCandidate {
                id: format!("a{i}"),
                skills: (0..rng.next() % 4)
                    .map(|_| {
                        let level = 1 + (rng.next() % 5) as u8;
                        ((*rng.pick(&skill_names)).to_owned(), level)
                    })
                    .collect(),
                idle_ms: *rng.pick(&[0, 1_000, 5_000, 90_000]),
                load: *rng.pick(&[0, 25, 50, 75, 100]),
                capacity: *rng.pick(&[0, 100, 100, 200]),
                served_contact_last: rng.next().is_multiple_of(20),
                attributes: vec![("team".into(), format!("t{}", rng.next() % 3))],
            })
            .collect();
        let last_agent = match rng.next() % 3 {
            0 if n > 0 => Some(format!("a{}", rng.next() % n as u64)),
            1 => Some("someone-offline".to_owned()),
            _ => None,
        };

        let attributes: &[(&str, &str)] = if skills_attr.is_empty() {
            &[]
        } else {
            &[("skills", skills_attr)]
        };
        let contact: Option<Vec<(&str, &str)>> = language.map(|code| vec![("language", code)]);
        let mut t = task("chat", attributes, contact.as_deref());
        t.last_agent = last_agent.clone();

        assert_eq!(
            rank(&h, &t, &rows).await,
            row_by_row_rank(last_agent.as_deref(), &required, &rows),
            "case {case}: skills {skills_attr:?}, language {language:?}, last agent {last_agent:?}"
        );
    }
}

#[tokio::test]
async fn bad_config_is_a_config_error() {
    for (key, value, expected) in [
        (
            "channel_priority",
            "voice=high",
            "config `channel_priority`",
        ),
        ("vip_boost", "lots", "config `vip_boost`"),
        ("channel_queues", "voice", "config `channel_queues`"),
        ("ivr_menu", "12=sales", "config `ivr_menu`"),
        ("overflow_queue", "not a queue", "config `overflow_queue`"),
        ("widen_after_secs", "soon", "config `widen_after_secs`"),
    ] {
        let h = load(&[(key, value)]);
        match classify_error(&h, &task("voice", &[], None)).await {
            PluginError::Config(message) => {
                assert!(message.contains(expected), "{key}={value}: {message}");
            }
            other => panic!("{key}={value}: expected a config error, got {other:?}"),
        }
    }

    let h = load(&[("language_skills", "perhaps")]);
    let result = h
        .host()
        .rank(
            h.id(),
            &task("chat", &[], None),
            &CandidateSet::new(vec![agent("a", &[], 0, 0)]),
        )
        .await
        .expect("the call completes");
    assert!(
        matches!(&result, Err(PluginError::Config(m)) if m.contains("language_skills")),
        "{result:?}"
    );
}

/// Every key the README documents is declared in `plugin.toml` (the host
/// refuses undeclared keys at load) and takes effect.
#[tokio::test]
async fn every_documented_key_is_declared_and_applied() {
    let h = load(&[
        ("channel_queues", "voice=phones"),
        ("default_queue", "misc"),
        ("channel_priority", "voice=30"),
        ("default_priority", "1"),
        ("vip_boost", "2"),
        ("language_skills", "no"),
        ("widen_after_secs", "10"),
        ("overflow_after_secs", "20"),
        ("overflow_queue", "backup"),
        ("ivr_menu", "1=sales"),
    ]);
    let vip = Some(&[("vip", "1"), ("language", "de")][..]);
    let call = classify(&h, &task("voice", &[("skills", "billing:3")], vip)).await;
    assert_eq!((call.queue.as_str(), call.priority), ("phones", 32));
    assert_eq!(skills(&call), vec![("billing", 3)]);
    assert_eq!(
        steps(&call),
        vec![(10_000, Some(1), None), (20_000, None, Some("backup"))]
    );
    assert_eq!(call.ivr.len(), 1);
    let chat = classify(&h, &task("chat", &[], None)).await;
    assert_eq!((chat.queue.as_str(), chat.priority), ("misc", 1));
}

/// Policy instances are reused between calls and recycled after
/// `WARM_POLICY_CALLS`; answers stay the same across the recycling boundary.
#[tokio::test]
async fn answers_are_stable_across_warm_instance_recycling() {
    let h = load(&[]);
    let t = task("chat", &[], None);
    let candidates = [agent("a", &[], 10, 0), agent("b", &[], 5_000, 0)];
    let first = rank(&h, &t, &candidates).await;
    assert_eq!(first, vec![1, 0], "longest idle first");
    let calls = switchboard_harness::WARM_POLICY_CALLS;
    for _ in 0..calls + 5 {
        assert_eq!(rank(&h, &t, &candidates).await, first);
    }
    let status = h.host().status(h.id()).unwrap();
    assert_eq!(status.failures, 0);
    assert_eq!(status.calls, u64::from(calls) + 6);
}
