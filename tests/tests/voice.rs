//! Voice end to end: the real server, a SIP caller on loopback, and the agent's
//! softphone as an in-process str0m peer signaling over the realtime socket.
//!
//! - A call from the trunk is queued with hold music, offered, answered from the
//!   "browser", and both sides hear each other: the payloads are compared both ways.
//!   The recording holds both directions; the call is on the caller's timeline (a
//!   channel switch after their SMS) with duration, queue, agent and recording.
//! - The routing policy's IVR gathers a digit (RFC 4733) that picks the queue.
//! - A caller hanging up while queued is an abandon; with a CRM installed, the caller
//!   is looked up when the call comes in and the abandoned call is written to the CRM.
//! - Untrusted sources, unsupported codecs and malformed packets get 403/488/400 or
//!   nothing, and calls carry on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::crm::{FakeHubSpot, hubspot_contact};
use switchboard_e2e::voice::{
    AgentPhone, SipCaller, answer_voice_offer, frame, in_order, payloads, voice_server,
};
use switchboard_e2e::{FakeTwilio, Server};

const AGENT_EMAIL: &str = "sam@voice.test";
const AGENT_PASSWORD: &str = "sam-password-123";
const CALLER: &str = "+15551230001";
const DIALED: &str = "+15550001000";

struct Voice {
    server: Server,
    sam: String,
    _twilio: FakeTwilio,
}

async fn voice(policy: Option<&[&str]>) -> Voice {
    voice_with(policy, &[]).await
}

async fn voice_with(policy: Option<&[&str]>, env: &[(&str, &str)]) -> Voice {
    // Every loopback caller is "the trunk".
    let (server, sam, twilio) = voice_server(
        (AGENT_EMAIL, AGENT_PASSWORD, "Sam"),
        "127.0.0.1:5999",
        policy,
        &[],
        env,
    )
    .await;
    Voice {
        server,
        sam,
        _twilio: twilio,
    }
}

impl Voice {
    async fn as_sam(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.server.call(&self.sam, method, path, body).await
    }

    async fn available(&self) {
        let (s, v) = self
            .as_sam(
                "PUT",
                "/api/v1/agents/me/presence",
                json!({"status": "available"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    async fn answer_offer(&self) -> Value {
        let offer = answer_voice_offer(&self.server, &self.sam).await;
        assert_eq!(offer["task"]["channel"], "voice");
        offer
    }

    async fn call_state(&self, state: &str) -> Value {
        self.server
            .eventually(Duration::from_secs(10), || async {
                let (_, v) = self.as_sam("GET", "/api/v1/calls/me", json!(null)).await;
                v["calls"]
                    .as_array()?
                    .iter()
                    .find(|c| c["state"] == state)
                    .cloned()
            })
            .await
            .unwrap_or_else(|| panic!("no call in state {state}; log:\n{}", self.server.log()))
    }

    async fn call_event(&self, number: &str, outcome: &str) -> Value {
        self.server
            .eventually(Duration::from_secs(10), || async {
                let contact = self.server.contact_by(&format!("phone:{number}")).await?;
                let id = contact["id"].as_str()?.to_string();
                let (_, t) = self
                    .server
                    .get(&format!("/api/v1/contacts/{id}/timeline"))
                    .await;
                t["events"]
                    .as_array()?
                    .iter()
                    .find(|e| e["kind"] == "call" && e["data"]["outcome"] == outcome)
                    .cloned()
            })
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no {outcome} call on the timeline; log:\n{}",
                    self.server.log()
                )
            })
    }
}

#[tokio::test]
async fn a_trunk_call_is_queued_answered_in_the_browser_and_both_sides_hear_each_other() {
    let v = voice(None).await;
    v.server.sms("SMvoice01", CALLER, "my bill is wrong").await;
    v.available().await;
    let phone = AgentPhone::connect(&v.server.base, &v.sam).await;

    let mut caller = SipCaller::new(v.server.sip.unwrap(), CALLER).await;
    assert_eq!(
        caller.call(DIALED).await,
        200,
        "answered at once for the queue"
    );
    // Hold music while the offer is out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let music = caller.received.lock().unwrap().len();
    assert!(
        music >= 5,
        "the caller hears hold music while queued ({music} packets)"
    );

    let offer = v.answer_offer().await;
    assert_eq!(offer["task"]["queue"], "voice", "the built-in voice queue");
    let call = v.call_state("connected").await;
    assert_eq!(call["from"], CALLER);
    assert_eq!(call["direction"], "inbound");

    // Caller → agent: 50 recognisable frames arrive as they were sent.
    let sent: Vec<Vec<u8>> = (0..50u8).map(frame).collect();
    for f in &sent {
        caller.say(f).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = phone.heard.lock().unwrap().clone();
    let found = in_order(&heard, &sent);
    assert!(
        found >= 48,
        "agent heard {found} of 50 caller frames in order ({} packets)",
        heard.len()
    );

    // Agent → caller.
    let before = caller.received.lock().unwrap().len();
    let spoken: Vec<Vec<u8>> = (0..50u8).map(|n| vec![0x90 + (n % 0x30); 160]).collect();
    for (i, f) in spoken.iter().enumerate() {
        phone.say(i as u64 * 160, f.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = payloads(&caller.received.lock().unwrap(), before, Some(0));
    let found = in_order(&got, &spoken);
    assert!(
        found >= 48,
        "caller heard {found} of 50 agent frames in order"
    );

    // Hold: the caller hears music, not the agent.
    let id = call["id"].as_str().unwrap().to_string();
    let (s, held) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/hold"),
            json!({"held": true}),
        )
        .await;
    assert_eq!(
        (s, held["call"]["state"].as_str()),
        (200, Some("held")),
        "{held}"
    );
    let (s, _) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/hold"),
            json!({"held": false}),
        )
        .await;
    assert_eq!(s, 200);

    // The keypad: the caller receives the digit as RFC 4733 events (payload type 101).
    let before = caller.received.lock().unwrap().len();
    let (s, sent) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/dtmf"),
            json!({"digits": "5"}),
        )
        .await;
    assert_eq!(s, 200, "{sent}");
    let (s, _) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/dtmf"),
            json!({"digits": "5; rm -rf"}),
        )
        .await;
    assert_eq!(s, 400, "only keypad digits");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let events = payloads(&caller.received.lock().unwrap(), before, Some(101));
    assert!(
        events.len() >= 3,
        "start, updates and end packets: {events:?}"
    );
    assert!(events.iter().all(|e| e[0] == 5), "digit 5: {events:?}");
    assert!(
        events.last().unwrap()[1] & 0x80 != 0,
        "the last one ends the event"
    );

    // Mute: the agent's audio stops reaching the caller.
    let (s, muted) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/mute"),
            json!({"muted": true}),
        )
        .await;
    assert_eq!((s, muted["call"]["muted"].as_bool()), (200, Some(true)));
    let before = caller.received.lock().unwrap().len();
    let quiet: Vec<Vec<u8>> = (0..10u8).map(|n| vec![0xC0 + n; 160]).collect();
    for (i, f) in quiet.iter().enumerate() {
        phone.say(20_000 + i as u64 * 160, f.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = payloads(&caller.received.lock().unwrap(), before, None);
    assert_eq!(
        in_order(&got, &quiet),
        0,
        "muted audio does not reach the caller"
    );
    v.as_sam(
        "POST",
        &format!("/api/v1/calls/{id}/mute"),
        json!({"muted": false}),
    )
    .await;

    // The caller hangs up.
    caller.bye().await;
    let event = v.call_event(CALLER, "answered").await;
    let data = &event["data"];
    assert_eq!(data["queue"], "voice");
    assert!(data["duration_ms"].as_i64().unwrap() > 1000, "{data}");
    assert!(data["agent_id"].is_string(), "{data}");
    let recording = data["recording_url"]
        .as_str()
        .expect("a recording link")
        .to_string();
    assert!(
        event["body"]
            .as_str()
            .unwrap()
            .starts_with("Call from +15551230001")
    );

    // One conversation, switched from SMS to voice.
    let contact = v
        .server
        .contact_by(&format!("phone:{CALLER}"))
        .await
        .unwrap();
    let (_, timeline) = v
        .server
        .get(&format!(
            "/api/v1/contacts/{}/timeline",
            contact["id"].as_str().unwrap()
        ))
        .await;
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"channel_switch"), "{kinds:?}");
    let conversations: std::collections::HashSet<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["conversation_id"].as_str())
        .collect();
    assert_eq!(
        conversations.len(),
        1,
        "the call joined the SMS conversation"
    );

    // The recording has both directions: caller on the left, agent on the right.
    let wav = v
        .server
        .http
        .get(format!("{}{recording}", v.server.base))
        .bearer_auth(&v.sam)
        .send()
        .await
        .unwrap();
    assert_eq!(wav.status(), 200);
    let bytes = wav.bytes().await.unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "stereo");
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let loud = |channel: usize| {
        samples
            .iter()
            .skip(channel)
            .step_by(2)
            .filter(|s| s.unsigned_abs() > 1000)
            .count()
    };
    // 48 of the 50 frames each way (160 samples a frame), allowing for a lost packet.
    assert!(loud(0) >= 48 * 160, "caller audio recorded: {}", loud(0));
    assert!(loud(1) >= 48 * 160, "agent audio recorded: {}", loud(1));

    // The disposition chosen when resolving lands on the call's record.
    let conversation = event["conversation_id"].as_str().unwrap();
    let (s, resolved) = v
        .as_sam(
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "resolved"}),
        )
        .await;
    assert_eq!(s, 200, "{resolved}");
    v.server
        .eventually(Duration::from_secs(10), || async {
            let (_, t) = v
                .server
                .get(&format!(
                    "/api/v1/contacts/{}/timeline",
                    contact["id"].as_str()?
                ))
                .await;
            t["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "call" && e["data"]["disposition"] == "resolved")
                .cloned()
        })
        .await
        .expect("the call shows its disposition");

    // Someone else may not fetch it.
    let anon = v
        .server
        .http
        .get(format!("{}{recording}", v.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    assert!(
        !phone.events_of("call.updated").is_empty(),
        "the softphone was told"
    );
}

#[tokio::test]
async fn the_policy_ivr_gathers_a_digit_that_picks_the_queue_and_an_abandon_is_recorded() {
    let v = voice(Some(&["ivr_menu=1=sales,2=billing"])).await;
    for q in ["sales", "billing"] {
        let (s, body) = v
            .server
            .post("/api/v1/queues", json!({"name": q, "channels": ["voice"]}))
            .await;
        assert!(s == 200 || s == 201, "{body}");
    }
    let mut caller = SipCaller::new(v.server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    // The menu prompt plays; the caller presses 2 (RFC 4733).
    tokio::time::sleep(Duration::from_millis(400)).await;
    caller.press(2).await;
    let queued = v
        .server
        .eventually(Duration::from_secs(10), || async {
            let (_, all) = v.server.get("/api/v1/calls").await;
            all["calls"]
                .as_array()?
                .iter()
                .find(|c| c["state"] == "queued" && c["queue"] == "billing")
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("call not queued in billing; log:\n{}", v.server.log()));
    assert_eq!(queued["ivr_path"], json!(["menu=2"]));
    // Nobody is available: the caller gives up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.bye().await;
    let event = v.call_event(CALLER, "abandoned").await;
    assert_eq!(event["data"]["queue"], "billing");
    assert_eq!(event["data"]["ivr_path"], json!(["menu=2"]));
    assert!(
        event["data"]["queue_wait_ms"].as_i64().unwrap() >= 300,
        "{event}"
    );
    let (_, stats) = v.server.get("/api/v1/queues/billing/stats").await;
    assert_eq!(stats["stats"]["abandoned"], 1, "{stats}");
}

#[tokio::test]
async fn hostile_sip_gets_refused_or_dropped_and_calls_carry_on() {
    let v = voice(None).await;
    let sip = v.server.sip.unwrap();
    let probe = SipCaller::new(sip, CALLER).await;
    // Garbage of every shape: nothing crashes, some of it is answered 400.
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage".to_vec(),
        b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(),
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nCSeq: banana\r\n\r\n".to_vec(),
        vec![b'A'; 60_000],
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"INVITE sip:1@127.0.0.1 SIP/3.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKv\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: v\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ];
    for _ in 0..20 {
        for j in &junk {
            probe.raw(j).await;
        }
    }
    // A codec we do not speak: 488.
    let mut g729 = SipCaller::new(sip, "+15551239999").await;
    let status = g729
        .call_with_sdp_codecs(DIALED, "18", "a=rtpmap:18 G729/8000")
        .await;
    assert_eq!(status, 488);
    // A stranger (not the trunk's address, not a desk phone): 403.
    let mut stranger = SipCaller::new_on("127.0.0.2", sip, "+15551238888").await;
    assert_eq!(stranger.call(DIALED).await, 403, "log:\n{}", v.server.log());
    assert!(
        v.server.contact_by("phone:+15551238888").await.is_none(),
        "nothing recorded"
    );
    // After all that, a real call still works.
    v.available().await;
    let _phone = AgentPhone::connect(&v.server.base, &v.sam).await;
    let mut caller = SipCaller::new(sip, CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200, "log:\n{}", v.server.log());
    v.answer_offer().await;
    v.call_state("connected").await;
    let log = v.server.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_warm_transfer_consults_then_hands_the_caller_over_with_the_context() {
    let v = voice(None).await;
    let server = &v.server;
    let (s, alex) = server
        .post(
            "/api/v1/agents",
            json!({"email": "alex@voice.test", "password": "alex-password-123", "name": "Alex", "role": "agent"}),
        )
        .await;
    assert!(s == 200 || s == 201, "{alex}");
    let alex_id = alex["agent"]["id"]
        .as_str()
        .or(alex["id"].as_str())
        .unwrap()
        .to_string();
    let (alex_token, _) = server.login("alex@voice.test", "alex-password-123").await;
    let sam_phone = AgentPhone::connect(&server.base, &v.sam).await;
    let alex_phone = AgentPhone::connect(&server.base, &alex_token).await;
    v.available().await;

    let mut caller = SipCaller::new(server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    v.answer_offer().await;
    let call = v.call_state("connected").await;
    let id = call["id"].as_str().unwrap().to_string();
    // Alex goes available only now, so the first offer was Sam's.
    let (s, _) = server
        .call(
            &alex_token,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(s, 200);

    let context = json!({"reason": "disputed charge", "steps": ["checked the invoice"],
        "commitments": ["refund if confirmed"], "sentiment": "negative"});
    let (s, consult) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"agent_id": alex_id, "mode": "warm", "context": context}),
        )
        .await;
    assert_eq!(s, 200, "{consult}");
    assert_eq!(consult["call"]["state"], "consulting");

    // Sam and Alex talk; the caller hears music, not Sam.
    let before = caller.received.lock().unwrap().len();
    let words: Vec<Vec<u8>> = (0..25u8).map(|n| vec![0xA0 + n; 160]).collect();
    for (i, w) in words.iter().enumerate() {
        sam_phone.say(10_000 + i as u64 * 160, w.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let alex_heard = alex_phone.heard.lock().unwrap().clone();
    assert!(
        in_order(&alex_heard, &words) >= 23,
        "Alex heard Sam during the consult"
    );
    let caller_heard = payloads(&caller.received.lock().unwrap(), before, None);
    assert!(
        !caller_heard.is_empty(),
        "music keeps playing to the caller"
    );
    assert_eq!(
        in_order(&caller_heard, &words),
        0,
        "the caller does not hear the consult"
    );

    // Complete: the call is offered to Alex with Sam's context.
    let (s, done) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/transfer/complete"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    let offer = server
        .eventually(Duration::from_secs(10), || async {
            let (_, o) = server
                .call(&alex_token, "GET", "/api/v1/agents/me/offers", json!(null))
                .await;
            o["offers"].as_array()?.first().cloned()
        })
        .await
        .expect("Alex is offered the call");
    assert_eq!(
        offer["handoff"]["context"]["reason"], "disputed charge",
        "the context travels: {offer}"
    );
    let rid = offer["reservation"]["id"].as_str().unwrap();
    let (s, _) = server
        .call(
            &alex_token,
            "POST",
            &format!("/api/v1/reservations/{rid}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let connected = server
        .eventually(Duration::from_secs(10), || async {
            let (_, c) = server
                .call(&alex_token, "GET", "/api/v1/calls/me", json!(null))
                .await;
            c["calls"]
                .as_array()?
                .iter()
                .find(|c| c["state"] == "connected")
                .cloned()
        })
        .await
        .expect("the caller is connected to Alex");
    assert_eq!(connected["agent_id"], alex_id.as_str());
    let sent: Vec<Vec<u8>> = (0..25u8).map(|n| vec![0x20 + n; 160]).collect();
    for f in &sent {
        caller.say(f).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        in_order(&alex_phone.heard.lock().unwrap(), &sent) >= 23,
        "Alex hears the caller"
    );
    caller.bye().await;
    let event = v.call_event(CALLER, "answered").await;
    assert_eq!(
        event["data"]["agents"].as_array().unwrap().len(),
        2,
        "{event}"
    );
}

#[tokio::test]
async fn a_blind_transfer_sends_the_caller_back_to_a_queue_with_music() {
    let v = voice(None).await;
    let server = &v.server;
    let _phone = AgentPhone::connect(&server.base, &v.sam).await;
    v.available().await;
    let (s, _) = server
        .post(
            "/api/v1/queues",
            json!({"name": "billing", "channels": ["voice"]}),
        )
        .await;
    assert!(s == 200 || s == 201);
    let mut caller = SipCaller::new(server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    v.answer_offer().await;
    let call = v.call_state("connected").await;
    let id = call["id"].as_str().unwrap();
    // Sam steps away so the transfer cannot come straight back.
    let (s, _) = v
        .as_sam(
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "away", "reason": "break"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, moved) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"queue": "billing", "context": {"reason": "invoice question",
                "steps": [], "commitments": [], "sentiment": "neutral"}}),
        )
        .await;
    assert_eq!(s, 200, "{moved}");
    let queued = server
        .eventually(Duration::from_secs(10), || async {
            let (_, all) = server.get("/api/v1/calls").await;
            all["calls"]
                .as_array()?
                .iter()
                .find(|c| c["state"] == "queued" && c["queue"] == "billing")
                .cloned()
        })
        .await
        .expect("the call waits in billing");
    assert!(queued["agent_id"].is_null(), "{queued}");
    let before = caller.received.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        caller.received.lock().unwrap().len() > before + 5,
        "the caller hears music while waiting again"
    );
    let (s, wrong) = v
        .as_sam(
            "POST",
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"queue": "nope"}),
        )
        .await;
    assert!(s == 403 || s == 404 || s == 409, "{s} {wrong}");
    caller.bye().await;
    let event = v.call_event(CALLER, "abandoned").await;
    assert_eq!(event["data"]["queue"], "billing");
}

#[tokio::test]
async fn a_caller_whose_audio_stops_is_hung_up_and_the_agent_freed() {
    let v = voice_with(None, &[("SWITCHBOARD_RTP_TIMEOUT_SECS", "2")]).await;
    let _phone = AgentPhone::connect(&v.server.base, &v.sam).await;
    v.available().await;
    let mut caller = SipCaller::new(v.server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    // The caller talks for a moment, then their network dies: no BYE, no RTP.
    for n in 0..10u8 {
        caller.say(&frame(n)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    v.answer_offer().await;
    v.call_state("connected").await;
    let hung_up = v
        .server
        .eventually(Duration::from_secs(10), || async {
            caller.got_bye().then_some(())
        })
        .await;
    assert!(hung_up.is_some(), "the host sent BYE after 2 s of silence");
    let event = v.call_event(CALLER, "failed").await;
    assert!(event["data"]["agent_id"].is_string());
    let (_, calls) = v.as_sam("GET", "/api/v1/calls/me", json!(null)).await;
    assert_eq!(calls["calls"], json!([]), "the agent is off the call");
}

#[tokio::test]
async fn sip_over_tls_is_served_when_configured() {
    use switchboard_sip::message::{Message, Method, NameAddr, SipUri, Transport, Via, new_branch};
    use switchboard_sip::transport::{SipEndpoint, SipEvent, TransportConfig};

    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("sip.crt"), dir.path().join("sip.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_addr = format!("127.0.0.1:{tls_port}");
    let v = voice_with(
        None,
        &[
            ("SWITCHBOARD_SIP_TLS_ADDR", &tls_addr),
            ("SWITCHBOARD_SIP_TLS_CERT", cert_path.to_str().unwrap()),
            ("SWITCHBOARD_SIP_TLS_KEY", key_path.to_str().unwrap()),
        ],
    )
    .await;

    // A TLS client that trusts only that certificate.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = TransportConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls_client = Some(Arc::new(client));
    let (peer, mut events) = SipEndpoint::bind(config).await.unwrap();
    let to: std::net::SocketAddr = tls_addr.parse().unwrap();
    let uri = SipUri::sip(None, "127.0.0.1", Some(tls_port));
    let mut from = NameAddr::new(SipUri::sip(Some("probe"), "127.0.0.1", None));
    from.params.set("tag", Some("tls1"));
    let options = Message::request(Method::Options, uri.clone())
        .with_header(
            "Via",
            Via::new(
                Transport::Tls,
                "127.0.0.1",
                Some(peer.udp_addr().port()),
                &new_branch(),
            ),
        )
        .with_header("Max-Forwards", 70)
        .with_header("From", &from)
        .with_header("To", NameAddr::new(uri))
        .with_header("Call-ID", "tls-options-1")
        .with_header("CSeq", "1 OPTIONS")
        .with_header("Content-Length", 0);
    peer.send_request(options, to, Transport::Tls)
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if let SipEvent::Response { response, .. } = event {
                return Some(response);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no answer over TLS; log:\n{}", v.server.log()));
    assert_eq!(response.status(), Some(200));
    assert!(
        response
            .header("Allow")
            .unwrap_or_default()
            .contains("INVITE")
    );
}

#[tokio::test]
async fn a_sip_flood_from_one_address_is_shed_while_the_trunks_calls_go_through() {
    let v = voice_with(
        None,
        &[
            ("SWITCHBOARD_SIP_SOURCE_RATE", "20"),
            ("SWITCHBOARD_SIP_SOURCE_BURST", "20"),
        ],
    )
    .await;
    let sip = v.server.sip.unwrap();
    // 300 OPTIONS at once from 127.0.0.2, which is not a trunk.
    let flooder = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let local = flooder.local_addr().unwrap();
    for i in 0..300 {
        let options = format!(
            "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bKflood{i}\r\n\
             From: <sip:flood@127.0.0.2>;tag=f{i}\r\nTo: <sip:{sip}>\r\nCall-ID: flood{i}@127.0.0.2\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        flooder.send_to(options.as_bytes(), sip).await.unwrap();
    }
    let (mut ok, mut shed) = (0, 0);
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), flooder.recv(&mut buf)).await
    {
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("SIP/2.0 200") {
            ok += 1;
        } else if text.starts_with("SIP/2.0 503") {
            assert!(text.contains("Retry-After"), "{text}");
            shed += 1;
        }
    }
    // The burst, and what the rate refilled while the flood was read, are answered;
    // the rest is shed (how much depends on how fast this machine reads them).
    assert!(ok >= 20, "the burst is answered: {ok}");
    assert!(
        shed >= 100,
        "the flood is shed with 503: {shed} (answered {ok})"
    );
    assert!(
        ok < shed,
        "most of the flood is shed: {ok} answered, {shed} shed"
    );
    // Meanwhile the trunk (127.0.0.1) is not limited: its call goes through.
    v.available().await;
    let _phone = AgentPhone::connect(&v.server.base, &v.sam).await;
    let mut caller = SipCaller::new(sip, CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200, "log:\n{}", v.server.log());
    v.answer_offer().await;
    v.call_state("connected").await;
}

#[tokio::test]
async fn an_incoming_call_pops_the_crm_record_and_an_abandoned_call_is_written_back() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[
            ("firstname", "Carla"),
            ("lastname", "Caller"),
            ("phone", "(555) 123-0001"),
        ],
    )])
    .await;
    let args = hubspot.install_args();
    let install: Vec<&str> = args.iter().map(String::as_str).collect();
    let (server, _sam, _twilio) = voice_server(
        (AGENT_EMAIL, AGENT_PASSWORD, "Sam"),
        "127.0.0.1:5999",
        None,
        &[&install],
        &[],
    )
    .await;
    let mut caller = SipCaller::new(server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    // Screen pop: the caller's record is on the contact while the call waits.
    let contact = server
        .eventually(Duration::from_secs(15), || async {
            let c = server.contact_by(&format!("phone:{CALLER}")).await?;
            let (_, c) = server
                .get(&format!("/api/v1/contacts/{}", c["id"].as_str()?))
                .await;
            (c["crm"]["crm-hubspot"]["external_id"] == "501").then_some(c)
        })
        .await
        .unwrap_or_else(|| panic!("no CRM record on the caller; log:\n{}", server.log()));
    assert_eq!(contact["display_name"], "Carla Caller");
    // Nobody answers: the caller gives up, and HubSpot gets an unanswered inbound call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.bye().await;
    let (_, call) = server
        .eventually(Duration::from_secs(20), || async {
            hubspot
                .engagements()
                .into_iter()
                .find(|(kind, _)| kind == "calls")
        })
        .await
        .unwrap_or_else(|| panic!("no call in HubSpot; log:\n{}", server.log()));
    assert_eq!(call["properties"]["hs_call_status"], "NO_ANSWER", "{call}");
    assert_eq!(call["properties"]["hs_call_direction"], "INBOUND", "{call}");
    assert_eq!(call.pointer("/associations/0/to/id"), Some(&json!("501")));
    assert!(
        call["properties"]["hs_call_body"]
            .as_str()
            .is_some_and(|b| b.contains("abandoned")),
        "{call}"
    );
}

#[tokio::test]
async fn an_answered_call_reaches_the_crm_with_its_duration_and_disposition() {
    let hubspot = FakeHubSpot::start(vec![hubspot_contact(
        "501",
        &[("firstname", "Carla"), ("phone", "+1 555 123 0001")],
    )])
    .await;
    let args = hubspot.install_args();
    let install: Vec<&str> = args.iter().map(String::as_str).collect();
    let (server, sam, twilio) = voice_server(
        (AGENT_EMAIL, AGENT_PASSWORD, "Sam"),
        "127.0.0.1:5999",
        None,
        &[&install],
        &[],
    )
    .await;
    let v = Voice {
        server,
        sam,
        _twilio: twilio,
    };
    v.available().await;
    let _phone = AgentPhone::connect(&v.server.base, &v.sam).await;
    let mut caller = SipCaller::new(v.server.sip.unwrap(), CALLER).await;
    assert_eq!(caller.call(DIALED).await, 200);
    let offer = v.answer_offer().await;
    v.call_state("connected").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    caller.bye().await;
    v.call_event(CALLER, "answered").await;
    assert!(
        !hubspot
            .engagements()
            .iter()
            .any(|(kind, _)| kind == "calls"),
        "an answered call waits for its disposition"
    );
    // Sam resolves after wrap-up: the call goes with the disposition.
    let conversation = offer["conversation_id"].as_str().unwrap();
    let (s, body) = v
        .as_sam(
            "POST",
            &format!("/api/v1/conversations/{conversation}/resolve"),
            json!({"disposition": "billing_adjusted"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, call) = v
        .server
        .eventually(Duration::from_secs(20), || async {
            hubspot
                .engagements()
                .into_iter()
                .find(|(kind, _)| kind == "calls")
        })
        .await
        .unwrap_or_else(|| panic!("no call in HubSpot; log:\n{}", v.server.log()));
    let props = &call["properties"];
    assert_eq!(props["hs_call_status"], "COMPLETED", "{call}");
    assert_eq!(props["hs_call_direction"], "INBOUND", "{call}");
    let duration: u64 = props["hs_call_duration"].as_str().unwrap().parse().unwrap();
    assert!(duration >= 1_000, "{call}");
    assert!(
        props["hs_call_body"]
            .as_str()
            .is_some_and(|b| b.contains("billing_adjusted")),
        "{call}"
    );
    assert_eq!(call.pointer("/associations/0/to/id"), Some(&json!("501")));
}
