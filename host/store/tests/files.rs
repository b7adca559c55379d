//! Files in the database on SQLite and on PostgreSQL: a file is whole or absent, is
//! kept once whoever stores it (two store handles on one database stand for two
//! nodes), is read back chunk by chunk, and the plugin and call rows name theirs.

#[macro_use]
mod common;

use common::{Ctx, TEST_KEY};
use switchboard_store::{CallRecord, FILE_CHUNK_BYTES, PluginInstall, Store, StoreError};

fn file(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect()
}

async fn read_back(store: &Store, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(chunk) = store.file_chunk(key, n).await.unwrap() {
        assert!(chunk.len() <= FILE_CHUNK_BYTES);
        out.extend_from_slice(&chunk);
        n += 1;
    }
    out
}

async fn a_file_is_stored_once_in_chunks_and_read_back(ctx: Ctx) {
    let bytes = file(2 * FILE_CHUNK_BYTES + 10, 7);
    let mut upload = ctx
        .store
        .begin_file("k1", bytes.len() as u64)
        .await
        .unwrap()
        .expect("new file");
    // Pieces that do not line up with chunks.
    for piece in bytes.chunks(300_001) {
        upload.write(piece).await.unwrap();
    }
    assert_eq!(ctx.store.file_size("k1").await.unwrap(), None, "not yet");
    upload.commit().await.unwrap();
    assert_eq!(
        ctx.store.file_size("k1").await.unwrap(),
        Some(bytes.len() as u64)
    );
    assert_eq!(
        ctx.store
            .file_chunk("k1", 2)
            .await
            .unwrap()
            .map(|c| c.len()),
        Some(10)
    );
    assert!(read_back(&ctx.store, "k1").await == bytes);

    // Another node (another handle on the database) finds it stored.
    let other = Store::connect(&ctx.url, TEST_KEY).await.unwrap();
    assert!(
        other
            .begin_file("k1", bytes.len() as u64)
            .await
            .unwrap()
            .is_none()
    );
    assert!(read_back(&other, "k1").await == bytes);
    other.close().await;

    // An empty file is a file.
    let empty = ctx.store.begin_file("k0", 0).await.unwrap().unwrap();
    empty.commit().await.unwrap();
    assert_eq!(ctx.store.file_size("k0").await.unwrap(), Some(0));
    assert_eq!(ctx.store.file_chunk("k0", 0).await.unwrap(), None);
}

async fn a_file_is_whole_or_absent(ctx: Ctx) {
    // Fewer bytes than announced: refused at commit, nothing kept.
    let mut short = ctx.store.begin_file("short", 10).await.unwrap().unwrap();
    short.write(b"12345").await.unwrap();
    assert!(matches!(short.commit().await, Err(StoreError::Invalid(_))));
    assert_eq!(ctx.store.file_size("short").await.unwrap(), None);
    // More than announced: refused at once.
    let mut long = ctx.store.begin_file("long", 3).await.unwrap().unwrap();
    assert!(matches!(
        long.write(b"1234").await,
        Err(StoreError::Invalid(_))
    ));
    drop(long);
    // Dropped unfinished: nothing kept, and the key can be stored afterwards.
    let mut dropped = ctx.store.begin_file("k", 4).await.unwrap().unwrap();
    dropped.write(b"ab").await.unwrap();
    drop(dropped);
    assert_eq!(ctx.store.file_size("k").await.unwrap(), None);
    let mut again = ctx.store.begin_file("k", 4).await.unwrap().unwrap();
    again.write(b"abcd").await.unwrap();
    again.commit().await.unwrap();
    assert_eq!(read_back(&ctx.store, "k").await, b"abcd");
}

async fn plugins_and_calls_name_their_files(ctx: Ctx) {
    let install = |component: Option<&str>| PluginInstall {
        id: "p".into(),
        version: "0.1.0".into(),
        kind: "routing".into(),
        world: "switchboard:plugin/routing@0.2.0".into(),
        manifest: "id = \"p\"\n".into(),
        path: "/var/lib/switchboard/plugins/p".into(),
        allowed_hosts: vec![],
        enabled: true,
        component: component.map(str::to_string),
    };
    ctx.store.upsert_plugin(install(Some("abc"))).await.unwrap();
    assert_eq!(
        ctx.store.plugin_component("p").await.unwrap().as_deref(),
        Some("abc")
    );
    // A reinstall names its own component, or none (folder mode).
    ctx.store.upsert_plugin(install(Some("def"))).await.unwrap();
    assert_eq!(
        ctx.store.plugin_component("p").await.unwrap().as_deref(),
        Some("def")
    );
    ctx.store.upsert_plugin(install(None)).await.unwrap();
    assert_eq!(ctx.store.plugin_component("p").await.unwrap(), None);
    assert!(matches!(
        ctx.store.plugin_component("nope").await,
        Err(StoreError::NotFound { .. })
    ));

    let mut call = CallRecord {
        id: "c1".into(),
        direction: "inbound".into(),
        state: "connected".into(),
        remote_number: "+15550001111".into(),
        dialed_number: "+15550002222".into(),
        contact_id: None,
        conversation_id: None,
        event_id: None,
        agent_id: None,
        recording_path: Some("/data/recordings/c1.wav".into()),
        detail: serde_json::json!({}),
        started_at: 1,
        answered_at: Some(2),
        ended_at: None,
    };
    ctx.store.save_call(&call).await.unwrap();
    assert_eq!(ctx.store.call_recording_file("c1").await.unwrap(), None);
    ctx.store
        .set_call_recording_file("c1", "wav")
        .await
        .unwrap();
    // Rewriting the record as the call goes on keeps the file it names.
    call.state = "ended".into();
    call.ended_at = Some(3);
    ctx.store.save_call(&call).await.unwrap();
    assert_eq!(
        ctx.store
            .call_recording_file("c1")
            .await
            .unwrap()
            .as_deref(),
        Some("wav")
    );
    assert!(matches!(
        ctx.store.call_recording_file("nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

store_tests!(
    a_file_is_stored_once_in_chunks_and_read_back,
    a_file_is_whole_or_absent,
    plugins_and_calls_name_their_files,
);
