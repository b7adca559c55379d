//! Voice against sipp (Debian `sip-tester`), an independent SIP implementation:
//!
//! - a caller from the trunk goes through the routing policy's IVR (a digit played
//!   from sipp's RFC 4733 capture), queues, and is answered by the agent's
//!   softphone, which hears the caller's audio played from a capture, payload for
//!   payload; the agent hangs up and sipp sees the BYE;
//! - sipp as the carrier answers an agent's outbound call;
//! - sipp sends bad requests and gets each one's proper 4xx/5xx;
//! - baresip, a second independent peer, registers as a desk phone with digest
//!   authentication and calls in (challenged, then accepted), and the agent hears it.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::voice::{AgentPhone, SipCaller, Sipp, pcap_rtp_payloads, voice_server};
use switchboard_e2e::{FakeTwilio, Server};

const AGENT_EMAIL: &str = "ana@sipp.test";
const AGENT_PASSWORD: &str = "ana-password-123";

async fn start(trunk: &str, policy: bool) -> (Server, String, FakeTwilio) {
    start_with(trunk, policy, &[]).await
}

async fn start_with(trunk: &str, policy: bool, setup: &[&[&str]]) -> (Server, String, FakeTwilio) {
    let menu: &[&str] = &["ivr_menu=1=sales,2=billing"];
    let (server, token, twilio) = voice_server(
        (AGENT_EMAIL, AGENT_PASSWORD, "Ana"),
        trunk,
        policy.then_some(menu),
        setup,
        &[],
    )
    .await;
    let (s, v) = server
        .call(
            &token,
            "PUT",
            "/api/v1/agents/me/presence",
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    (server, token, twilio)
}

async fn live_call(server: &Server, token: &str, state: &str) -> Value {
    server
        .eventually(Duration::from_secs(20), || async {
            let (_, v) = server
                .call(token, "GET", "/api/v1/calls/me", json!(null))
                .await;
            v["calls"]
                .as_array()?
                .iter()
                .find(|c| c["state"] == state)
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no call {state}; log:\n{}", server.log()))
}

/// Waits for the agent's first offer and accepts it (the softphone's Answer).
async fn answer_first_offer(server: &Server, token: &str) -> Value {
    let offer = server
        .eventually(Duration::from_secs(20), || async {
            let (_, v) = server
                .call(token, "GET", "/api/v1/agents/me/offers", json!(null))
                .await;
            v["offers"].as_array()?.first().cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no offer; log:\n{}", server.log()));
    let id = offer["reservation"]["id"].as_str().unwrap();
    let (s, v) = server
        .call(
            token,
            "POST",
            &format!("/api/v1/reservations/{id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    offer
}

async fn timeline_call(server: &Server, number: &str, outcome: &str) -> Value {
    server
        .eventually(Duration::from_secs(15), || async {
            let contact = server.contact_by(&format!("phone:{number}")).await?;
            let (_, t) = server
                .get(&format!(
                    "/api/v1/contacts/{}/timeline",
                    contact["id"].as_str()?
                ))
                .await;
            t["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "call" && e["data"]["outcome"] == outcome)
                .cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no {outcome} call for {number}; log:\n{}", server.log()))
}

#[tokio::test]
async fn a_sipp_caller_picks_billing_in_the_ivr_and_the_agent_hears_the_captured_audio() {
    let (server, ana, _twilio) = start("127.0.0.1:5999", true).await;
    for q in ["sales", "billing"] {
        let (s, v) = server
            .post("/api/v1/queues", json!({"name": q, "channels": ["voice"]}))
            .await;
        assert!(s == 200 || s == 201, "{v}");
    }
    let phone = AgentPhone::connect(&server.base, &ana).await;
    let sipp = Sipp::start("caller_ivr", server.sip);

    let offer = answer_first_offer(&server, &ana).await;
    assert_eq!(offer["task"]["queue"], "billing", "the caller pressed 2");
    let call = live_call(&server, &ana, "connected").await;
    assert_eq!(call["ivr_path"], json!(["menu=2"]));

    // The capture plays for about 7 s; listen for 3.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let capture = pcap_rtp_payloads("/usr/share/sip-tester/g711a.pcap");
    let heard = phone.heard.lock().unwrap().clone();
    let start = heard
        .iter()
        .find_map(|h| capture.iter().position(|c| c == h))
        .unwrap_or_else(|| panic!("none of {} heard packets is from the capture", heard.len()));
    let run = heard
        .iter()
        .skip_while(|h| **h != capture[start])
        .zip(&capture[start..])
        .take_while(|(h, c)| h == c)
        .count();
    assert!(
        run >= 50,
        "the agent heard {run} consecutive captured packets unchanged"
    );

    let call_id = call["id"].as_str().unwrap();
    let (s, v) = server
        .call(
            &ana,
            "POST",
            &format!("/api/v1/calls/{call_id}/hangup"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (ok, out) = sipp.finish(Duration::from_secs(30)).await;
    assert!(ok, "sipp saw the BYE and answered it:\n{out}");
    let event = timeline_call(&server, "+15557770001", "answered").await;
    assert_eq!(event["data"]["queue"], "billing");
    assert_eq!(event["data"]["ivr_path"], json!(["menu=2"]));
}

#[tokio::test]
async fn sipp_as_the_carrier_answers_an_agents_outbound_call() {
    let carrier = Sipp::start("trunk_uas", None);
    let (server, ana, _twilio) = start(&format!("127.0.0.1:{}", carrier.port), false).await;
    let _phone = AgentPhone::connect(&server.base, &ana).await;
    let (s, v) = server
        .call(
            &ana,
            "POST",
            "/api/v1/calls",
            json!({"to": "+1 555 888 0001"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["call"]["direction"], "outbound");
    let call = live_call(&server, &ana, "connected").await;
    assert_eq!(call["to"], "+15558880001");
    let (s, _) = server
        .call(&ana, "POST", "/api/v1/calls", json!({"to": "+15558880002"}))
        .await;
    assert_eq!(s, 409, "one call at a time");
    let id = call["id"].as_str().unwrap();
    let (s, v) = server
        .call(
            &ana,
            "POST",
            &format!("/api/v1/calls/{id}/hangup"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (ok, out) = carrier.finish(Duration::from_secs(30)).await;
    assert!(ok, "the carrier's side completed:\n{out}");
    let event = timeline_call(&server, "+15558880001", "answered").await;
    assert_eq!(event["direction"], "out");
    assert!(
        event["body"]
            .as_str()
            .unwrap()
            .starts_with("Call to +15558880001")
    );
}

#[tokio::test]
async fn sipp_bad_requests_get_their_4xx_and_calls_carry_on() {
    let (server, ana, _twilio) = start("127.0.0.1:5999", false).await;
    let sipp = Sipp::start("hostile", server.sip);
    let (ok, out) = sipp.finish(Duration::from_secs(30)).await;
    assert!(ok, "405, 505, 400, 488 and 481 as expected:\n{out}");
    let _phone = AgentPhone::connect(&server.base, &ana).await;
    let mut caller = SipCaller::new(server.sip.unwrap(), "+15557770003").await;
    assert_eq!(caller.call("+15550001000").await, 200);
    live_call(&server, &ana, "offered").await;
}

/// 8 kHz mono 16-bit WAV of a 440 Hz tone, what baresip's `aufile` source reads.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let samples: Vec<i16> = (0..8000 * seconds)
        .map(|n| ((f64::from(n) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 12000.0) as i16)
        .collect();
    let data_len = samples.len() as u32 * 2;
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

#[tokio::test]
async fn baresip_registers_as_a_desk_phone_with_digest_and_its_call_reaches_the_agent() {
    // The trunk is elsewhere (127.0.0.2), so baresip on 127.0.0.1 is a desk phone.
    let (server, ana, _twilio) = start_with(
        "127.0.0.2:5999",
        false,
        &[&[
            "phone",
            "add",
            "--user",
            "1001",
            "--password",
            "desk-secret-1",
        ]],
    )
    .await;
    let phone = AgentPhone::connect(&server.base, &ana).await;
    let sip = server.sip.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listen = switchboard_e2e::voice::free_udp_port();
    let source = dir.path().join("caller.wav");
    std::fs::write(&source, tone_wav(30)).unwrap();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{listen}\n\
             audio_player aufile,{heard}\naudio_source aufile,{source}\n\
             audio_alert aufile,{heard}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule account.so\nmodule menu.so\n",
            heard = dir.path().join("heard.wav").display(),
            source = source.display(),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!(
            "<sip:1001@{sip};transport=udp>;auth_pass=desk-secret-1;regint=600;audio_codecs=PCMU\n"
        ),
    )
    .unwrap();
    let baresip = tokio::process::Command::new("baresip")
        .current_dir(dir.path())
        .args([
            "-f",
            dir.path().to_str().unwrap(),
            "-t",
            "25",
            "-n",
            "127.0.0.1",
        ])
        .args(["-e", &format!("/dial sip:+15550001000@{sip}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip runs (apt-get install baresip)");
    let baresip_log = || {
        ["out.log", "err.log"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let _ = answer_first_offer(&server, &ana).await;
    assert!(
        server.log().contains("desk phone registered"),
        "REGISTER with digest"
    );
    let call = live_call(&server, &ana, "connected").await;
    assert_eq!(
        call["from"], "1001@127.0.0.1",
        "a desk phone is known by its SIP address"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let heard = phone.heard.lock().unwrap().clone();
    // μ-law of silence is 0xFF/0x7F; a 440 Hz tone is not.
    let tone = heard
        .iter()
        .filter(|p| p.iter().filter(|b| **b != 0xFF && **b != 0x7F).count() > 100)
        .count();
    assert!(
        tone >= 50,
        "the agent heard baresip's tone ({tone} of {} packets); baresip:\n{}\nlog:\n{}",
        heard.len(),
        baresip_log(),
        server.log()
    );
    let call_id = call["id"].as_str().unwrap();
    server
        .call(
            &ana,
            "POST",
            &format!("/api/v1/calls/{call_id}/hangup"),
            json!({}),
        )
        .await;
    let event = server
        .eventually(Duration::from_secs(10), || async {
            let contact = server.contact_by("sip:1001@127.0.0.1").await?;
            let (_, t) = server
                .get(&format!(
                    "/api/v1/contacts/{}/timeline",
                    contact["id"].as_str()?
                ))
                .await;
            t["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "call")
                .cloned()
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the desk phone's call is on a timeline; log:\n{}",
                server.log()
            )
        });
    assert_eq!(event["data"]["outcome"], "answered");
    drop(baresip);
}
