//! A plugin that spins never holds the runtime thread: a call still running at an
//! epoch tick yields, so another call on the same single-threaded runtime starts
//! and finishes while the spinning one waits for its deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard_harness::{CallError, Harness, Limits, plugin_dir, webhook};

fn hook(path: &str) -> switchboard_harness::HttpRequest {
    webhook(
        &format!("http://127.0.0.1:1/hooks/test-misbehave/{path}"),
        &[],
        b"hello",
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_call_yields_so_other_calls_finish_first() {
    let limits = Limits {
        call_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let h = Harness::load_with(&plugin_dir("test-misbehave"), &[], limits, &[])
        .expect("load test-misbehave");
    let order = AtomicUsize::new(0);
    let spinning = async {
        let r = h.handle_webhook(&hook("loop")).await;
        (r, order.fetch_add(1, Ordering::SeqCst))
    };
    let quick = async {
        // Starts once the spinning call is running.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let r = h.handle_webhook(&hook("ok")).await;
        (r, order.fetch_add(1, Ordering::SeqCst))
    };
    let ((spun, spun_at), (ok, ok_at)) = tokio::join!(spinning, quick);
    assert!(
        matches!(spun, Err(CallError::Timeout { .. })),
        "{:?}",
        spun.err()
    );
    assert_eq!(
        ok.expect("ok call").expect("ok result").response.status,
        200
    );
    assert_eq!(
        (ok_at, spun_at),
        (0, 1),
        "the quick call finished while the spinning one ran"
    );
}
