//! `switchboard:mail/blobs`: the `test-blobs` component (an e-mail connector
//! of `switchboard:mail@0.2.0` written against the SDK) writes scripted files
//! into the blob writer the real plugin host lends it. A file the host hands
//! over is whole; one over the limit, refused part-way, failed or trapped is
//! never handed over, and the host drops its sink.

use switchboard_harness::{
    CallError, DownloadError, Harness, MemorySink, PluginError, attachment, plugin_dir,
};

fn blobs() -> Harness {
    Harness::load(&plugin_dir("test-blobs"), &[]).unwrap()
}

/// The bytes `test-blobs` writes.
fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

#[tokio::test]
async fn a_file_written_in_pieces_is_handed_over_whole() {
    let h = blobs();
    assert!(h.is_mail());
    let copied = h
        .copy_attachment(&attachment("write:3000000:65536"), 4 << 20)
        .await
        .unwrap();
    assert_eq!(copied.bytes, 3_000_000);
    assert_eq!(copied.sink.bytes(), pattern(3_000_000));
    assert_eq!(copied.sink.writes(), 3_000_000u64.div_ceil(65_536));
    assert_eq!(copied.content_type.as_deref(), Some("application/x-test"));
    // A file exactly at the limit fits.
    let copied = h
        .copy_attachment(&attachment("write:4096:1000"), 4096)
        .await
        .unwrap();
    assert_eq!(copied.sink.bytes(), pattern(4096));
}

#[tokio::test]
async fn over_the_limit_is_a_clear_error_and_the_sink_is_dropped() {
    let h = blobs();
    for script in ["write:5000:1000", "ignore:5000:1000"] {
        let sink = MemorySink::default();
        let result = h
            .copy_attachment_into(&attachment(script), sink.clone(), 4500)
            .await;
        let Err(error) = result else {
            panic!("{script}: a file over the limit was handed over");
        };
        assert!(
            matches!(error, DownloadError::TooLarge { max_bytes: 4500 }),
            "{script}: {error:?}"
        );
        assert!(!error.is_retryable());
        assert_eq!(error.to_string(), "the file is larger than 4500 bytes");
        // The refused write reached nothing; the host let go of the sink
        // (the server's blob writer then deletes its temporary file).
        assert_eq!(sink.bytes(), pattern(4000), "{script}");
        assert!(!sink.held_elsewhere(), "{script}");
    }
    // One write larger than the whole limit is refused as well.
    let sink = MemorySink::default();
    let result = h
        .copy_attachment_into(&attachment("write:3000000:3000000"), sink.clone(), 1 << 20)
        .await;
    assert!(matches!(result, Err(DownloadError::TooLarge { .. })));
    assert!(sink.bytes().is_empty());
}

#[tokio::test]
async fn a_call_that_fails_or_traps_hands_nothing_over() {
    let h = blobs();
    let sink = MemorySink::default();
    let result = h
        .copy_attachment_into(&attachment("fail:2000"), sink.clone(), 1 << 20)
        .await;
    match result {
        Err(e @ DownloadError::Refused(PluginError::Transient(_))) => {
            assert!(e.is_retryable());
        }
        other => panic!("{:?}", other.map(|c| c.bytes)),
    }
    assert_eq!(sink.bytes().len(), 2000, "written before it failed");
    assert!(!sink.held_elsewhere());

    let sink = MemorySink::default();
    let result = h
        .copy_attachment_into(&attachment("trap:2000"), sink.clone(), 1 << 20)
        .await;
    assert!(
        matches!(result, Err(DownloadError::Plugin(CallError::Trap { .. }))),
        "{:?}",
        result.map(|c| c.bytes)
    );
    assert!(!sink.held_elsewhere(), "the trapped call's store let it go");
}

#[tokio::test]
async fn a_connector_that_does_not_stream_is_asked_fetch_attachment() {
    let h = blobs();
    let copied = h
        .copy_attachment(&attachment("unsupported"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(copied.sink.bytes(), b"from fetch-attachment");
    assert_eq!(copied.content_type.as_deref(), Some("text/plain"));
    // Too late to change its mind once it wrote.
    let result = h
        .copy_attachment(&attachment("unsupported:10"), 1 << 20)
        .await;
    assert!(matches!(
        result,
        Err(DownloadError::Refused(PluginError::Unsupported(_)))
    ));
    // The fallback keeps the limit too.
    let result = h.copy_attachment(&attachment("unsupported"), 8).await;
    assert!(matches!(
        result,
        Err(DownloadError::TooLarge { max_bytes: 8 })
    ));
}

#[tokio::test]
async fn an_email_connector_of_mail_0_1_0_is_copied_through_fetch_attachment() {
    // `test-streams` is built on `switchboard:mail@0.1.0`: no blob writer,
    // and its `fetch-attachment` answers `unsupported`.
    let h = Harness::load(
        &plugin_dir("test-streams"),
        &[("imap_host", "127.0.0.1"), ("imap_port", "1")],
    )
    .unwrap();
    assert!(h.is_mail());
    let result = h.copy_attachment(&attachment("imap:1/1/1"), 1 << 20).await;
    assert!(
        matches!(
            &result,
            Err(DownloadError::Refused(PluginError::Unsupported(m))) if m == "no attachments"
        ),
        "{:?}",
        result.map(|c| c.bytes)
    );
}
