//! Logins under attack: a storm of wrong passwords is throttled (429 with
//! `Retry-After`) while webhooks keep being answered, a caller waiting in a queue
//! keeps hearing its music without a break and other clients still sign in; failed
//! logins are counted in `/metrics` and in the audit log.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_e2e::voice::{SipCaller, gaps_ms, voice_server};
use switchboard_e2e::*;

const STORM: usize = 400;
const CLIENTS: usize = 64;

async fn login_from(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_login_storm_is_throttled_while_webhooks_a_call_and_other_clients_carry_on() {
    // Every loopback caller is "the trunk"; Sam is not available, so a call waits
    // in its queue hearing music: every packet of it is timed by the host.
    let (server, _sam, _twilio) = voice_server(
        ("sam@e2e.test", "sams-long-password", "Sam"),
        "127.0.0.1:5999",
        None,
        &[],
        &[],
    )
    .await;
    let mut caller = SipCaller::new(server.sip.unwrap(), "+15551230009").await;
    assert_eq!(caller.call("+15550001000").await, 200);
    let music = server
        .eventually(Duration::from_secs(10), || async {
            (caller.received.lock().unwrap().len() >= 25).then_some(())
        })
        .await;
    assert!(music.is_some(), "the waiting caller hears music");
    let storm_began = Instant::now();

    // 64 clients on 127.0.0.1 try 400 wrong passwords, half of them for the admin.
    let storm = {
        let base = server.base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut clients = Vec::new();
            for _ in 0..CLIENTS {
                let (http, base, next) = (http.clone(), base.clone(), next.clone());
                clients.push(tokio::spawn(async move {
                    let mut answers = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= STORM {
                            return answers;
                        }
                        let email = if i % 2 == 0 {
                            ADMIN_EMAIL.to_string()
                        } else {
                            format!("nobody{i}@e2e.test")
                        };
                        let r = login_from(&http, &base, &email, &format!("guess-{i}")).await;
                        let retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap();
                        answers.push((status, retry_after, body));
                    }
                }));
            }
            let mut all = Vec::new();
            for c in clients {
                all.extend(c.await.unwrap());
            }
            all
        })
    };

    // Meanwhile the SMS stream goes on: every webhook is answered and stored.
    let mut webhooks = 0;
    while !storm.is_finished() || webhooks < 20 {
        let (status, _) = server
            .sms(
                &format!("SMstorm{webhooks:04}"),
                &format!("+1555300{:04}", webhooks % 50),
                "still there?",
            )
            .await;
        assert_eq!(status, 200, "webhook {webhooks} during the storm");
        webhooks += 1;
    }
    let answers = storm.await.unwrap();
    let storm_ended = Instant::now();
    assert_eq!(answers.len(), STORM);
    // The call's audio went on through the storm: a packet every 20 ms, and no
    // pause a caller would hear as a drop-out (these bounds hold on a slow machine;
    // `switchboard-bench login` measures the jitter itself).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let arrivals = caller.arrivals.lock().unwrap().clone();
    let gaps = gaps_ms(&arrivals, storm_began, storm_ended);
    let expected = storm_ended.duration_since(storm_began).as_millis() as usize / 20;
    assert!(
        gaps.len() + 1 >= expected / 2,
        "{} packets in {expected} slots of 20 ms during the storm",
        gaps.len() + 1
    );
    let longest = gaps.last().copied().unwrap_or(0.0);
    assert!(
        longest < 500.0,
        "a {longest:.0} ms silence during the storm"
    );
    caller.bye().await;
    let throttled: Vec<_> = answers.iter().filter(|(s, ..)| *s == 429).collect();
    let refused = answers.iter().filter(|(s, ..)| *s == 401).count();
    // On a slow machine a login can wait for its password check longer than the
    // request timeout (30 s): it is then answered 408, also a refusal.
    let other: Vec<u16> = answers
        .iter()
        .map(|(s, ..)| *s)
        .filter(|s| ![401, 408, 429].contains(s))
        .collect();
    assert!(
        other.is_empty(),
        "every wrong login is refused or throttled: {other:?}"
    );
    assert!(
        throttled.len() >= STORM / 2,
        "most of the storm is throttled before any hashing: {} of {STORM}",
        throttled.len()
    );
    for (_, retry_after, body) in &throttled {
        assert!(
            retry_after.is_some_and(|s| s >= 1),
            "429 says when to retry"
        );
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    // Unknown e-mails and the real account get the same answers.
    let statuses = |pick: &dyn Fn(usize) -> bool| {
        let mut s: Vec<u16> = answers
            .iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .map(|(_, (s, ..))| *s)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    assert_eq!(statuses(&|i| i % 2 == 0), statuses(&|i| i % 2 == 1));
    for n in 0..webhooks.min(50) {
        let number = format!("phone:+1555300{n:04}");
        assert!(
            server.contact_by(&number).await.is_some(),
            "{number} stored"
        );
    }

    // Another client, on another address, signs in as usual.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = login_from(&other, &server.base, "sam@e2e.test", "sams-long-password").await;
    assert_eq!(r.status(), 200, "another client's login is unaffected");
    // The attacked account waits, whoever asks: guessing it has been slowed down.
    let r = login_from(&other, &server.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Counted where operators look.
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |outcome: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "switchboard_logins_total{{outcome=\"{outcome}\"}}"
                ))
            })
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(counter("failed") as usize, refused);
    // The storm's 429s and the attacked account's one from the other client.
    assert_eq!(counter("throttled") as usize, throttled.len() + 1);
    sqlx::any::install_default_drivers();
    let db = format!(
        "sqlite://{}",
        server.data.path().join("switchboard.db").display()
    );
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login_failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(audited as usize, refused, "each refused login is audited");
}
