//! Files on several nodes (`[cluster] file_store = "database"`): two nodes are two
//! `App`s, each with its own `Store` and its own data directory, on one database.
//! What one node keeps — an upload, a streamed file, a plugin component, a call
//! recording — the other reads whole and identical, with nothing in its own folder
//! beforehand. Run on PostgreSQL (a fresh database each, dropped afterwards) and on
//! SQLite (where database mode is allowed too: one file holds everything).
//!
//! PostgreSQL: `SWITCHBOARD_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`);
//! `SWITCHBOARD_TEST_SKIP_PG=1` skips when unreachable.

// Shares the scenario support's harness; not its two-backend macro.
#[allow(unused_macros, unused_imports)]
mod support;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::Connection;
use switchboard_app::attachments::AttachmentConfig;
use switchboard_app::blobs::{BlobError, BlobStore};
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins::{InstallRequest, PluginFiles, load_installed_from};
use switchboard_app::{App, AppConfig, ErrorKind, FileStore};
use switchboard_core::Role;
use switchboard_store::{CallRecord, NewAgent, Store};

/// The attachments' cap in these tests: 3 MiB, so files span several 1 MiB chunks.
const CAP: u64 = 3 << 20;

// ---------------------------------------------------------------- harness

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::support::with_sqlite_database(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::support::with_postgres_database(super::$name).await;
            }
        }
    )*};
}

/// One node: its own store connection, data directory and application.
struct Node {
    app: App,
    data: tempfile::TempDir,
}

impl Node {
    async fn start(url: &str, file_store: FileStore) -> Node {
        let data = tempfile::tempdir().expect("data dir");
        let store = Store::connect(url, support::KEY).await.expect("connect");
        let plugins = server_plugin_host(&store, Default::default()).expect("plugin host");
        let app = App::start(
            store,
            plugins,
            AppConfig {
                public_url: "http://127.0.0.1:9".into(),
                data_dir: data.path().to_path_buf(),
                reopen_window_ms: 0,
                default_region: None,
                dispositions: switchboard_app::desk::default_dispositions(),
                outbox: Default::default(),
                routing: None,
                login: Default::default(),
                webchat: Default::default(),
                attachments: AttachmentConfig {
                    max_bytes: CAP,
                    ..Default::default()
                },
                crm: Default::default(),
                file_store,
                node: Default::default(),
            },
        )
        .await
        .expect("app");
        Node { app, data }
    }

    fn dir(&self) -> &Path {
        self.data.path()
    }

    /// The node's blob store as the application builds it.
    fn blobs(&self) -> BlobStore {
        FileStore::Database.blobs(self.dir().join("blobs"), CAP, &self.app.store)
    }

    async fn stop(self) {
        self.app.store.close().await;
    }
}

/// `(files, chunks)` stored in the database.
async fn stored(url: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(url).await.expect("connect");
    let files: (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM blob")
        .fetch_one(&mut db)
        .await
        .expect("count files");
    let chunks: (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM blob_chunk")
        .fetch_one(&mut db)
        .await
        .expect("count chunks");
    db.close().await.expect("close");
    (files.0, chunks.0)
}

/// `len` bytes that differ with `seed`, and are no known file type.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 31 + seed as u64 * 7) % 251) as u8)
        .collect()
}

/// Every file under `dir`.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

async fn agent(app: &App) -> String {
    app.store
        .create_agent(NewAgent {
            email: format!("{}@example.test", uuid::Uuid::new_v4().simple()),
            name: "Ada".into(),
            role: Role::Agent,
            password_hash: "not-used".into(),
            skills: vec![],
        })
        .await
        .expect("agent")
        .id
}

// ---------------------------------------------------------------- attachments

async fn a_file_kept_on_one_node_is_read_whole_on_the_other(url: String) {
    let a = Node::start(&url, FileStore::Database).await;
    let b = Node::start(&url, FileStore::Database).await;

    // An agent's upload on A (bytes in memory), 2.5 chunks long.
    let upload = bytes(2 * (1 << 20) + 512 * 1024, 1);
    let ada = agent(&a.app).await;
    let row = a
        .app
        .attachments
        .upload(&ada, &upload, Some("text/plain"), Some("notes.txt"))
        .await
        .expect("upload on A");
    assert!(files_in(&b.dir().join("blobs")).is_empty());
    let served = b.app.attachments.open(&row.id).await.expect("open on B");
    assert_eq!(served.bytes.len(), upload.len());
    assert!(served.bytes == upload, "B serves the bytes A kept");
    assert_eq!(served.content_type, "text/plain");
    assert_eq!(served.filename.as_deref(), Some("notes.txt"));
    // B now has it in its cache: one file, under its key.
    let key = hex::encode(Sha256::digest(&upload));
    assert_eq!(
        files_in(&b.dir().join("blobs")),
        vec![b.dir().join("blobs").join(&key[..2]).join(&key[2..])]
    );

    // A file that arrives in pieces on A (the copy worker's path), read on B.
    let streamed = bytes((1 << 20) * 2 + 1, 2);
    let mut writer = a.blobs().writer().await.expect("writer");
    for piece in streamed.chunks(65_537) {
        writer.write(piece).await.expect("piece");
    }
    let kept = writer.finish().await.expect("finish");
    assert_eq!(kept.key, hex::encode(Sha256::digest(&streamed)));
    assert!(b.blobs().get(&kept.key).await.expect("get on B") == streamed);

    // Two files, in 3 + 3 chunks; the same files kept again, on either node and
    // either path, are stored once.
    assert_eq!(stored(&url).await, (2, 6));
    assert_eq!(b.blobs().put(&upload).await.expect("put on B"), key);
    let mut again = b.blobs().writer().await.expect("writer on B");
    again.write(&streamed).await.expect("write");
    assert_eq!(again.finish().await.expect("finish").key, kept.key);
    a.app
        .attachments
        .upload(&ada, &upload, None, None)
        .await
        .expect("upload again");
    assert_eq!(stored(&url).await, (2, 6));

    // The cache is only a cache: emptied, B reads from the database again.
    std::fs::remove_dir_all(b.dir().join("blobs")).expect("empty B's cache");
    assert!(b.blobs().get(&kept.key).await.expect("get again") == streamed);

    // A key nobody stored is an error, not an empty file.
    let nobody = hex::encode(Sha256::digest(b"nobody"));
    assert!(matches!(
        b.blobs().get(&nobody).await,
        Err(BlobError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
    a.stop().await;
    b.stop().await;
}

async fn over_the_cap_is_refused_on_both_paths_and_nothing_is_stored(url: String) {
    let a = Node::start(&url, FileStore::Database).await;
    let ada = agent(&a.app).await;
    let big = bytes(CAP as usize + 1, 3);
    let refused = a
        .app
        .attachments
        .upload(&ada, &big, None, None)
        .await
        .expect_err("over the cap");
    assert_eq!(refused.kind(), ErrorKind::PayloadTooLarge);
    let mut writer = a.blobs().writer().await.expect("writer");
    writer
        .write(&big[..CAP as usize])
        .await
        .expect("up to the cap");
    assert!(matches!(
        writer.write(&big[CAP as usize..]).await,
        Err(BlobError::TooLarge { .. })
    ));
    assert!(writer.finish().await.is_err());
    assert_eq!(stored(&url).await, (0, 0));
    assert!(files_in(&a.dir().join("blobs")).is_empty());
    a.stop().await;
}

/// Folder mode is the single-node default: nothing goes to the database, and a
/// node with another folder does not see the file.
async fn folder_mode_keeps_files_in_the_node_folder(url: String) {
    let a = Node::start(&url, FileStore::Folder).await;
    let b = Node::start(&url, FileStore::Folder).await;
    let ada = agent(&a.app).await;
    let upload = bytes(1000, 4);
    let row = a
        .app
        .attachments
        .upload(&ada, &upload, None, None)
        .await
        .expect("upload");
    assert!(a.app.attachments.open(&row.id).await.expect("open").bytes == upload);
    assert_eq!(stored(&url).await, (0, 0));
    let err = b.app.attachments.open(&row.id).await.expect_err("not on B");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------- plugins

fn dist(plugin: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(plugin);
    assert!(
        source.join("plugin.toml").exists(),
        "{} is missing: run `bash plugins/build.sh` first",
        source.display()
    );
    source
}

async fn install(node: &Node, plugin: &str) {
    node.app
        .plugin_admin
        .install(
            "admin",
            InstallRequest {
                source: dist(plugin),
                id: Some("policy".into()),
                ..Default::default()
            },
        )
        .await
        .expect("install");
}

async fn a_plugin_installed_on_one_node_loads_on_another(url: String) {
    let a = Node::start(&url, FileStore::Database).await;
    let b = Node::start(&url, FileStore::Database).await;
    install(&a, "routing-least-busy").await;
    assert!(a.app.plugins.status("policy").is_some());
    assert!(files_in(b.dir()).is_empty(), "B has no plugin files");

    // B starts: it loads every installed plugin, writing the component first.
    let failed = load_installed_from(
        &b.app.store,
        &b.app.plugins,
        "http://127.0.0.1:9",
        &PluginFiles::new(b.dir(), &b.blobs()),
    )
    .await
    .expect("load on B");
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        b.app
            .plugins
            .manifest("policy")
            .expect("loaded on B")
            .component,
        "routing_least_busy.wasm"
    );
    let on_b = b.dir().join("plugins/policy/routing_least_busy.wasm");
    assert!(
        std::fs::read(&on_b).unwrap()
            == std::fs::read(dist("routing-least-busy").join("routing_least_busy.wasm")).unwrap()
    );

    // A reinstalls another component under the same id; B's reload replaces its
    // copy rather than loading the old one.
    install(&a, "routing-default").await;
    b.app
        .plugin_admin
        .reload("policy")
        .await
        .expect("reload on B");
    assert_eq!(
        b.app
            .plugins
            .manifest("policy")
            .expect("reloaded")
            .component,
        "routing_default.wasm"
    );
    assert!(!on_b.exists(), "the old component is gone");
    assert!(
        std::fs::read(b.dir().join("plugins/policy/routing_default.wasm")).unwrap()
            == std::fs::read(dist("routing-default").join("routing_default.wasm")).unwrap()
    );
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------- recordings

async fn a_recording_made_on_one_node_is_served_by_another(url: String) {
    let a = Node::start(&url, FileStore::Database).await;
    let b = Node::start(&url, FileStore::Database).await;
    // Larger than the attachments' cap: recordings are not bound by it.
    let wav = bytes(CAP as usize + 4096, 5);
    let path = a.dir().join("recordings/call-1.wav");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &wav).unwrap();
    a.app
        .store
        .save_call(&CallRecord {
            id: "call-1".into(),
            direction: "inbound".into(),
            state: "ended".into(),
            remote_number: "+15550001111".into(),
            dialed_number: "+15550002222".into(),
            contact_id: None,
            conversation_id: None,
            event_id: None,
            agent_id: None,
            recording_path: Some(path.display().to_string()),
            detail: serde_json::json!({}),
            started_at: 1,
            answered_at: Some(2),
            ended_at: Some(3),
        })
        .await
        .expect("save call");

    // Not kept yet: B cannot serve what only A's disk holds (A's folder stands
    // for another machine's, so it goes away first).
    let moved = a.dir().join("elsewhere.wav");
    std::fs::rename(&path, &moved).unwrap();
    let record = b.app.store.call("call-1").await.unwrap();
    let err = b.app.recordings.read(&record).await.expect_err("not kept");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    std::fs::rename(&moved, &path).unwrap();

    a.app.recordings.keep("call-1", &path).await.expect("keep");
    std::fs::remove_file(&path).unwrap();
    let record = b.app.store.call("call-1").await.unwrap();
    assert!(b.app.recordings.read(&record).await.expect("served by B") == wav);
    // A serves it too, from the database, now that its own file is gone.
    assert!(a.app.recordings.read(&record).await.expect("served by A") == wav);
    a.stop().await;
    b.stop().await;
}

both_backends!(
    a_file_kept_on_one_node_is_read_whole_on_the_other,
    over_the_cap_is_refused_on_both_paths_and_nothing_is_stored,
    folder_mode_keeps_files_in_the_node_folder,
    a_plugin_installed_on_one_node_loads_on_another,
    a_recording_made_on_one_node_is_served_by_another,
);
