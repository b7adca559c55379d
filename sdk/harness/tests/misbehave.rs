//! Purpose-built misbehaving components against the real sandbox: every bad
//! call fails alone with a clear error, the host keeps serving, and a plugin
//! that keeps failing is quarantined until re-enabled.

use std::time::Duration;

use switchboard_harness::{
    CallError, ChannelEvent, Harness, Limits, OutboundResponse, PluginError, plugin_dir, webhook,
};

fn harness(quarantine_after: u32) -> Harness {
    let limits = Limits {
        call_timeout: Duration::from_millis(300),
        send_timeout: Duration::from_millis(300),
        memory_bytes: 32 << 20,
        quarantine_after,
        ..Limits::default()
    };
    Harness::load_with(&plugin_dir("test-misbehave"), &[], limits, &[])
        .expect("load test-misbehave")
}

fn hook(path: &str) -> switchboard_harness::HttpRequest {
    webhook(
        &format!("http://127.0.0.1:1/hooks/test-misbehave/{path}"),
        &[],
        b"hello",
    )
}

async fn assert_still_serves(h: &Harness) {
    let out = h
        .handle_webhook(&hook("ok"))
        .await
        .expect("ok call")
        .expect("ok result");
    assert_eq!(out.response.status, 200);
    assert!(matches!(out.events.as_slice(), [ChannelEvent::Message(m)] if m.body == "hello"));
}

#[tokio::test]
async fn infinite_loop_times_out_and_host_keeps_serving() {
    let h = harness(10);
    let err = h.handle_webhook(&hook("loop")).await.unwrap_err();
    assert!(
        matches!(err, CallError::Timeout { millis: 300, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_cap_and_host_keeps_serving() {
    let h = harness(10);
    let err = h.handle_webhook(&hook("bomb")).await.unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{err}"
    );
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn panic_is_a_trap_and_host_keeps_serving() {
    let h = harness(10);
    let err = h.handle_webhook(&hook("panic")).await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn outbound_http_off_the_allow_list_is_denied() {
    let h = harness(10);
    let result = h
        .handle_webhook(&hook("forbidden"))
        .await
        .expect("the call itself completes");
    let Err(PluginError::Internal(message)) = result else {
        panic!("expected the plugin to report the denial, got {result:?}");
    };
    assert!(message.to_lowercase().contains("denied"), "{message}");
    assert!(
        h.http().requests().is_empty(),
        "a denied request must never leave the host"
    );
}

#[tokio::test]
async fn outbound_http_to_an_allowed_origin_goes_through_the_host() {
    let h = harness(10);
    h.http().respond(202, "pong");
    let out = h
        .handle_webhook(&hook("fetch"))
        .await
        .expect("the call completes")
        .expect("the plugin got its response");
    assert_eq!(out.response.status, 202);
    assert_eq!(out.response.body, b"pong");
    let requests = h.http().requests();
    let [request] = requests.as_slice() else {
        panic!("one request, got {requests:?}");
    };
    assert_eq!(request.method, "GET");
    assert_eq!(request.uri, "http://127.0.0.1:1/fetch");
    assert_eq!(
        request.headers,
        vec![("host".to_owned(), "127.0.0.1:1".to_owned())]
    );
}

#[tokio::test]
async fn an_outbound_response_over_the_body_cap_is_an_error_value() {
    let limits = Limits {
        max_http_body_bytes: 1024,
        ..Limits::default()
    };
    let h = Harness::load_with(&plugin_dir("test-misbehave"), &[], limits, &[])
        .expect("load test-misbehave");
    h.http().respond_with(OutboundResponse {
        status: 200,
        headers: Vec::new(),
        body: vec![b'x'; 1025].into(),
    });
    let result = h
        .handle_webhook(&hook("fetch"))
        .await
        .expect("a refused response is no trap: the call completes");
    let Err(PluginError::Internal(message)) = result else {
        panic!("expected the plugin to report the refusal, got {result:?}");
    };
    assert!(message.contains("1024 byte limit"), "{message}");
    assert!(message.contains("http://127.0.0.1:1"), "{message}");
    let status = h.host().status(h.id()).unwrap();
    assert_eq!(
        status.consecutive_failures, 0,
        "the plugin did nothing wrong"
    );
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let h = harness(10);
    let err = h.handle_webhook(&hook("huge")).await.unwrap_err();
    assert!(matches!(err, CallError::OutputTooLarge { .. }), "{err}");
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn repeated_failures_quarantine_until_reenabled() {
    let h = harness(3);
    for _ in 0..3 {
        let err = h.handle_webhook(&hook("panic")).await.unwrap_err();
        assert!(matches!(err, CallError::Trap { .. }), "{err}");
    }
    let err = h.handle_webhook(&hook("ok")).await.unwrap_err();
    assert!(matches!(err, CallError::Quarantined { .. }), "{err}");
    let status = h.host().status(h.id()).unwrap();
    assert!(status.quarantined.is_some());
    assert_eq!(
        h.quarantined().len(),
        1,
        "the host reports the quarantine once"
    );

    assert!(h.host().set_enabled(h.id(), true));
    assert_still_serves(&h).await;
}

#[tokio::test]
async fn kv_is_per_plugin_and_persists_across_calls() {
    let h = harness(10);
    let first = h
        .handle_webhook(&webhook("http://x/hooks/test-misbehave/kv", &[], b"one"))
        .await
        .unwrap()
        .unwrap();
    assert!(first.response.body.is_empty());
    let second = h
        .handle_webhook(&webhook("http://x/hooks/test-misbehave/kv", &[], b"two"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.response.body, b"one");
    assert_eq!(h.kv().get("last").map(Vec::as_slice), Some(&b"two"[..]));
}
