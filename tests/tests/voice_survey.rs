//! The post-call DTMF survey, end to end: the real server, a SIP caller on loopback
//! (sipp playing its stock RFC 4733 captures, or the in-process caller) pressing
//! keys, and the agent answering and hanging up through the API.
//!
//! - Where the queue offers it (`voice: true`), the agent's hang-up frees the agent
//!   at once while the caller stays on the line; the caller's keys answer CSAT and
//!   CES, the host hangs up, and the answers are `survey` events on the timeline,
//!   attributed to the agent, and in the experience report.
//! - Broken telephone-events are no key; a key off the scale asks again once; a
//!   caller hanging up mid-survey keeps the answers given and the rest is closed as
//!   dropped. A caller who hangs up first is not surveyed.
//! - Without the setting, the agent's hang-up ends the call as before: no survey.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::voice::{SipCaller, Sipp, voice_server};
use switchboard_e2e::{FakeTwilio, Server};

const AGENT_EMAIL: &str = "sam@survey.test";
const AGENT_PASSWORD: &str = "sam-password-123";
const DIALED: &str = "+15550001000";

struct Desk {
    server: Server,
    sam: String,
    _twilio: FakeTwilio,
}

/// A voice server whose built-in `voice` queue asks CSAT then CES, offered to
/// callers when `voice` is true.
async fn desk(voice: bool) -> Desk {
    let (server, sam, twilio) = voice_server(
        (AGENT_EMAIL, AGENT_PASSWORD, "Sam"),
        "127.0.0.1:5999",
        None,
        &[],
        &[],
    )
    .await;
    let (s, v) = server
        .call(
            &server.token,
            "PUT",
            "/api/v1/queues/voice/survey",
            json!({"surveys": ["csat", "ces"], "voice": voice}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["voice"], voice, "{v}");
    let (s, v) = server
        .call(
            &sam,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    Desk {
        server,
        sam,
        _twilio: twilio,
    }
}

impl Desk {
    async fn as_sam(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.server.call(&self.sam, method, path, body).await
    }

    /// A call from `number`, answered by Sam; returns the caller and the call id.
    async fn answered_call(&self, number: &str) -> (SipCaller, String) {
        let mut caller = SipCaller::new(self.server.sip.unwrap(), number).await;
        assert_eq!(caller.call(DIALED).await, 200);
        (caller, self.answer().await)
    }

    /// Sam accepts the call offered; returns its id once connected.
    async fn answer(&self) -> String {
        let offer = self
            .server
            .eventually(Duration::from_secs(15), || async {
                let (_, v) = self
                    .as_sam("GET", "/api/v1/agents/me/offers", json!(null))
                    .await;
                v["offers"].as_array()?.first().cloned()
            })
            .await
            .unwrap_or_else(|| panic!("no offer; log:\n{}", self.server.log()));
        let id = offer["reservation"]["id"].as_str().unwrap();
        let (s, v) = self
            .as_sam(
                "POST",
                &format!("/api/v1/reservations/{id}/accept"),
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let call = self
            .server
            .eventually(Duration::from_secs(10), || async {
                let (_, v) = self.as_sam("GET", "/api/v1/calls/me", json!(null)).await;
                v["calls"]
                    .as_array()?
                    .iter()
                    .find(|c| c["state"] == "connected")
                    .cloned()
            })
            .await
            .unwrap_or_else(|| panic!("call not connected; log:\n{}", self.server.log()));
        call["id"].as_str().unwrap().to_string()
    }

    /// Sam hangs up; their softphone has no call left at once.
    async fn sam_hangs_up(&self, call: &str) {
        let (s, v) = self
            .as_sam("POST", &format!("/api/v1/calls/{call}/hangup"), json!({}))
            .await;
        assert_eq!(s, 200, "{v}");
        let (_, mine) = self.as_sam("GET", "/api/v1/calls/me", json!(null)).await;
        assert_eq!(mine["calls"], json!([]), "the agent is off the call");
    }

    /// The caller's timeline.
    async fn timeline(&self, number: &str) -> Vec<Value> {
        let Some(contact) = self.server.contact_by(&format!("phone:{number}")).await else {
            return Vec::new();
        };
        let (_, t) = self
            .server
            .get(&format!(
                "/api/v1/contacts/{}/timeline",
                contact["id"].as_str().unwrap()
            ))
            .await;
        t["events"].as_array().cloned().unwrap_or_default()
    }

    /// Waits for the `survey` event of `kind` in `phase` on the caller's timeline.
    async fn survey_event(&self, number: &str, kind: &str, phase: &str) -> Value {
        self.server
            .eventually(Duration::from_secs(20), || async {
                self.timeline(number).await.into_iter().find(|e| {
                    e["kind"] == "survey"
                        && e["data"]["survey"] == kind
                        && e["data"]["phase"] == phase
                })
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no {kind} survey {phase} on the timeline; log:\n{}",
                    self.server.log()
                )
            })
    }

    /// The ended call's timeline event.
    async fn call_event(&self, number: &str) -> Value {
        self.server
            .eventually(Duration::from_secs(10), || async {
                self.timeline(number)
                    .await
                    .into_iter()
                    .find(|e| e["kind"] == "call" && e["data"]["outcome"] == "answered")
            })
            .await
            .unwrap_or_else(|| panic!("no answered call; log:\n{}", self.server.log()))
    }

    async fn surveys_of(&self, conversation: &str) -> Vec<Value> {
        let (s, v) = self
            .server
            .get(&format!("/api/v1/conversations/{conversation}/surveys"))
            .await;
        assert_eq!(s, 200, "{v}");
        v["surveys"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn the_caller_answers_the_post_call_survey_by_dtmf_after_the_agent_hangs_up() {
    let d = desk(true).await;
    let number = "+15551230101";
    let (mut caller, call) = d.answered_call(number).await;
    d.sam_hangs_up(&call).await;

    // The call is over for the agent (answered, in the record) but not for the caller.
    let ended = d.call_event(number).await;
    let sam_id = ended["data"]["agent_id"].as_str().unwrap().to_string();
    let asked = d.survey_event(number, "csat", "sent").await;
    assert_eq!(asked["data"]["mode"], "dtmf");
    assert_eq!(asked["data"]["agent_id"], sam_id.as_str());
    assert!(!caller.got_bye(), "the caller is not hung up on");

    // Sam's task is in wrap-up already: they resolve while the caller answers, and
    // the resolve asks nothing more (the call's survey is the IVR's).
    let conversation = ended["conversation_id"].as_str().unwrap();
    let (s, v) = d
        .as_sam(
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(s, 200, "the agent wraps up during the survey: {v}");

    caller.press(4).await;
    let csat = d.survey_event(number, "csat", "answered").await;
    assert_eq!(csat["data"]["score"], 4);
    assert_eq!(csat["channel"], "voice");
    d.survey_event(number, "ces", "sent").await;
    caller.press(6).await;
    let ces = d.survey_event(number, "ces", "answered").await;
    assert_eq!(ces["data"]["score"], 6);
    assert_eq!(ces["data"]["agent_id"], sam_id.as_str());

    // Thanks, and the host hangs up.
    let bye = d
        .server
        .eventually(Duration::from_secs(10), || async {
            caller.got_bye().then_some(())
        })
        .await;
    assert!(bye.is_some(), "the host hangs up after the survey");

    let surveys = d.surveys_of(conversation).await;
    let status: Vec<(&str, &str, i64)> = surveys
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["score"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        status,
        vec![("csat", "answered", 4), ("ces", "answered", 6)]
    );

    let path = format!(
        "/api/v1/reports/experience?{}&group_by=total",
        switchboard_e2e::report_range_around_today()
    );
    let report = d
        .server
        .eventually(Duration::from_secs(10), || async {
            let (s, v) = d.server.get(&path).await;
            assert_eq!(s, 200, "{v}");
            (v["rows"][0]["csat_responses"] == 1).then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("the answers are not in the experience report"));
    let row = &report["rows"][0];
    assert_eq!(row["csat_avg"].as_f64(), Some(4.0), "{report}");
    assert_eq!(row["ces_responses"], 1, "{report}");
    assert_eq!(row["ces_avg"].as_f64(), Some(6.0), "{report}");

    // The agent's figures hold the answers too.
    let agents = format!(
        "/api/v1/reports/experience?{}&group_by=total&by=agent",
        switchboard_e2e::report_range_around_today()
    );
    let (s, v) = d.server.get(&agents).await;
    assert_eq!(s, 200, "{v}");
    let sams = v["rows"].as_array().unwrap().iter().find(|r| {
        r.as_object()
            .is_some_and(|o| o.values().any(|x| x == sam_id.as_str()))
    });
    assert!(
        sams.is_some_and(|r| r["csat_responses"] == 1),
        "attributed to the agent: {v}"
    );
}

#[tokio::test]
async fn sipp_answers_the_post_call_survey_with_its_rfc_4733_captures() {
    let d = desk(true).await;
    let number = "+15557770009";
    let sipp = Sipp::start("caller_survey", d.server.sip);
    let call = d.answer().await;
    d.sam_hangs_up(&call).await;
    let (ok, out) = sipp.finish(Duration::from_secs(60)).await;
    assert!(
        ok,
        "sipp pressed 4 and 6 and answered the host's BYE:\n{out}"
    );
    let csat = d.survey_event(number, "csat", "answered").await;
    let ces = d.survey_event(number, "ces", "answered").await;
    assert_eq!(
        (
            csat["data"]["score"].as_i64(),
            ces["data"]["score"].as_i64()
        ),
        (Some(4), Some(6))
    );
    assert_eq!(csat["data"]["mode"], "dtmf");
}

#[tokio::test]
async fn a_key_off_the_scale_asks_again_and_a_caller_hanging_up_keeps_the_answers_given() {
    let d = desk(true).await;
    let number = "+15551230102";
    let (mut caller, call) = d.answered_call(number).await;
    d.sam_hangs_up(&call).await;
    d.survey_event(number, "csat", "sent").await;

    // Broken telephone-events are no key: a truncated one and an event that is not
    // a keypad key (RFC 4733 event 200).
    let to = caller.host_rtp.unwrap();
    for payload in [vec![5u8, 0x8a], vec![200u8, 0x8a, 0x01, 0x40]] {
        let mut packet = vec![
            0x80,
            0x80 | 101,
            0x7f,
            0x00,
            0,
            0,
            0x10,
            0,
            0x51,
            0x51,
            0x51,
            0x51,
        ];
        packet.extend_from_slice(&payload);
        caller.rtp.send_to(&packet, to).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 9 is not on the 1-5 scale: the question is asked again, and 3 answers it.
    caller.press(9).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.press(3).await;
    let csat = d.survey_event(number, "csat", "answered").await;
    assert_eq!(
        csat["data"]["score"], 3,
        "the key off the scale is not taken"
    );

    // The caller leaves before answering CES.
    d.survey_event(number, "ces", "sent").await;
    caller.bye().await;
    let conversation = csat["conversation_id"].as_str().unwrap().to_string();
    let closed = d
        .server
        .eventually(Duration::from_secs(10), || async {
            let surveys = d.surveys_of(&conversation).await;
            surveys
                .iter()
                .find(|s| s["kind"] == "ces" && s["status"] == "dropped")
                .cloned()
                .map(|ces| (surveys, ces))
        })
        .await;
    let (surveys, ces) =
        closed.unwrap_or_else(|| panic!("CES not closed; log:\n{}", d.server.log()));
    assert_eq!(ces["reason"], "the caller hung up during the survey");
    assert!(ces["score"].is_null());
    let csat = surveys.iter().find(|s| s["kind"] == "csat").unwrap();
    assert_eq!(
        (csat["status"].as_str(), csat["score"].as_i64()),
        (Some("answered"), Some(3))
    );
    assert!(
        !caller.got_bye(),
        "the caller hung up; the host sends no BYE of its own"
    );

    // A caller who hangs up first left: no survey.
    let (s, v) = d
        .as_sam(
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let other = "+15551230104";
    let (mut caller, _) = d.answered_call(other).await;
    caller.bye().await;
    let ended = d.call_event(other).await;
    let conversation = ended["conversation_id"].as_str().unwrap();
    assert_eq!(d.surveys_of(conversation).await, Vec::<Value>::new());
}

#[tokio::test]
async fn without_the_setting_the_agent_hanging_up_ends_the_call_as_before() {
    let d = desk(false).await;
    let number = "+15551230103";
    let (caller, call) = d.answered_call(number).await;
    d.sam_hangs_up(&call).await;
    let bye = d
        .server
        .eventually(Duration::from_secs(10), || async {
            caller.got_bye().then_some(())
        })
        .await;
    assert!(bye.is_some(), "the caller is hung up on at once");
    let ended = d.call_event(number).await;
    let conversation = ended["conversation_id"].as_str().unwrap();
    assert_eq!(
        d.surveys_of(conversation).await,
        Vec::<Value>::new(),
        "no survey"
    );
    assert!(
        !d.timeline(number)
            .await
            .iter()
            .any(|e| e["kind"] == "survey"),
        "no survey event"
    );
}
