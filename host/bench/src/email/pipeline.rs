//! Part 2's pieces: the real mail system, the corpus delivered into it, and
//! Switchboard deployed in-process the way `switchboard serve` wires it
//! (store on SQLite in a temporary folder, the server's plugin host, the
//! `email` connector installed and loaded, the application layer), reading
//! the mailbox over IMAP.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{AnyConnection, Connection, Row};
use switchboard_app::attachments::AttachmentConfig;
use switchboard_app::host_services::server_plugin_host;
use switchboard_app::plugins as admin;
use switchboard_app::{App, AppConfig, OutboxConfig};
use switchboard_e2e::mail::MailServer;
use switchboard_plugin_host::Limits;
use switchboard_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::corpus::Corpus;
use super::imap;

/// The plugin id of the connector in every deployment.
pub const PLUGIN_ID: &str = "email";
/// Every benchmark mailbox's password.
pub const PASSWORD: &str = "bench-mailbox-pw";

/// What delivering the corpus took.
pub struct Delivery {
    pub messages: usize,
    pub bytes: u64,
    /// Until Postfix accepted the last message (SMTP `250` after DATA).
    pub accepted: Duration,
    /// Until the mailbox held them all (Dovecot delivered over LMTP).
    pub delivered: Duration,
    /// CPU time the SMTP clients spent generating the messages (inside `delivered`).
    pub generating: Duration,
}

impl Delivery {
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.delivered.as_secs_f64().max(1e-9)
    }
}

/// Delivers corpus messages `0..messages` to `to` from `clients` concurrent
/// SMTP connections (one per message, as mail from outside arrives), and
/// waits until the mailbox holds `expect_total`.
pub async fn deliver_corpus(
    server: &Arc<MailServer>,
    corpus: Corpus,
    messages: usize,
    clients: usize,
    to: &str,
    expect_total: u32,
) -> anyhow::Result<Delivery> {
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let generating = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.clamp(1, messages.max(1)) {
        let (server, next, bytes, to) =
            (server.clone(), next.clone(), bytes.clone(), to.to_owned());
        let generating = generating.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    return;
                }
                let made = Instant::now();
                let raw = corpus.message(i).raw;
                generating.fetch_add(made.elapsed().as_nanos() as u64, Ordering::Relaxed);
                bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
                // Panics with the servers' logs on a refusal.
                server.deliver(&raw, &to).await;
            }
        }));
    }
    for task in tasks {
        task.await
            .context("an SMTP client failed (see the panic above)")?;
    }
    let accepted = started.elapsed();
    wait_for_count(
        server,
        to,
        expect_total,
        Duration::from_secs(120 + messages as u64 / 10),
    )
    .await?;
    Ok(Delivery {
        messages,
        bytes: bytes.load(Ordering::Relaxed),
        accepted,
        delivered: started.elapsed(),
        generating: Duration::from_nanos(generating.load(Ordering::Relaxed)),
    })
}

/// Waits until `user`'s INBOX holds `n` messages.
pub async fn wait_for_count(
    server: &MailServer,
    user: &str,
    n: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = imap::count(server.imap_plain_port(), user, PASSWORD, "INBOX").await?;
        if got >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{user} holds {got} of {n} messages after {timeout:?}\n{}",
                tail(&server.logs(), 3000)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(text: &str, max: usize) -> &str {
    let mut from = text.len().saturating_sub(max);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// One in-process Switchboard reading one mailbox.
pub struct Deployment {
    pub app: App,
    pub store: Store,
    pub channel: String,
    db_url: String,
    // Last: removed after everything else is dropped.
    _dir: tempfile::TempDir,
}

/// What to install.
pub struct Install<'a> {
    pub user: &'a str,
    /// Config beyond the mailbox and its servers (`max_message_bytes`…).
    pub extra: &'a [(&'a str, String)],
    /// The blob store's largest file (the server's default is 25 MiB).
    pub max_file_bytes: u64,
}

/// Starts a fresh Switchboard on SQLite with the connector installed for
/// `install.user`'s mailbox (IMAP on loopback, plain, polled every 2 s).
pub async fn deploy(
    plugins_dir: &Path,
    server: &MailServer,
    install: Install<'_>,
) -> anyhow::Result<Deployment> {
    let dir = tempfile::Builder::new()
        .prefix("sb-bench-email-")
        .tempdir()?;
    let data_dir = dir.path().join("switchboard");
    std::fs::create_dir_all(&data_dir)?;
    let db_url = format!("sqlite://{}", data_dir.join("switchboard.db").display());
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let store = Store::connect(&db_url, key)
        .await
        .context("opening the store")?;
    let host = server_plugin_host(&store, Limits::default())
        .map_err(|e| anyhow::anyhow!("plugin host: {e}"))?;
    let mut config: HashMap<String, String> = [
        ("address", install.user.to_owned()),
        ("display_name", "Example Support".to_owned()),
        ("imap_host", "127.0.0.1".to_owned()),
        ("imap_port", server.imap_plain_port().to_string()),
        ("smtp_host", "127.0.0.1".to_owned()),
        ("smtp_port", server.smtp_submission_port().to_string()),
        ("security", "plain".to_owned()),
        ("username", install.user.to_owned()),
        ("password", PASSWORD.to_owned()),
        ("poll_seconds", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in install.extra {
        config.insert((*k).to_owned(), v.clone());
    }
    admin::install(
        &store,
        &host,
        &admin::PluginFiles::folder(&data_dir),
        admin::InstallRequest {
            source: plugins_dir.join("email"),
            config,
            allow_hosts: Vec::new(),
            id: None,
        },
    )
    .await
    .context("installing the email connector")?;
    // No HTTP edge: the mailbox is polled, nothing calls in.
    let public_url = "http://127.0.0.1:9".to_owned();
    let failed = admin::load_installed(&store, &host, &public_url).await?;
    if let Some((id, why)) = failed.first() {
        bail!("plugin {id} did not load: {why}");
    }
    let app = App::start(
        store.clone(),
        host,
        AppConfig {
            public_url,
            data_dir: data_dir.clone(),
            reopen_window_ms: 7 * 24 * 3600 * 1000,
            default_region: None,
            dispositions: switchboard_app::desk::default_dispositions(),
            outbox: OutboxConfig::default(),
            routing: None,
            login: Default::default(),
            webchat: Default::default(),
            attachments: AttachmentConfig {
                max_bytes: install.max_file_bytes,
                ..AttachmentConfig::default()
            },
            crm: Default::default(),
            file_store: Default::default(),
            node: Default::default(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting the application: {e}"))?;
    let channel = app
        .channels
        .info(PLUGIN_ID)
        .await
        .map_err(|e| anyhow::anyhow!("describing the connector: {e}"))?
        .channel;
    Ok(Deployment {
        app,
        store,
        channel,
        db_url,
        _dir: dir,
    })
}

/// Attachment rows by status, and a few reasons of failed or retried copies.
#[derive(Debug, Default)]
pub struct Files {
    pub pending: u64,
    pub stored: u64,
    pub failed: u64,
    /// Pending rows whose copy was already tried (waiting for a retry).
    pub retrying: u64,
    pub stored_bytes: u64,
    /// The blob keys (SHA-256, hex) of the stored files.
    pub blobs: Vec<String>,
    pub errors: Vec<String>,
}

impl Deployment {
    /// The last UID the stored cursor names (0 before the first poll).
    pub async fn cursor_uid(&self) -> anyhow::Result<u32> {
        Ok(self
            .store
            .poll_cursor(PLUGIN_ID)
            .await?
            .and_then(|c| c.split_once(':').and_then(|(_, uid)| uid.parse().ok()))
            .unwrap_or(0))
    }

    /// Timeline events stored.
    pub async fn timeline_events(&self) -> anyhow::Result<u64> {
        Ok(self.store.metrics_counts().await?.timeline_events)
    }

    /// Timeline events by `kind/direction`.
    pub async fn event_kinds(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let mut conn = self.connection().await?;
        let rows = sqlx::query(
            "SELECT kind || '/' || direction AS what, COUNT(*) AS n FROM timeline_event GROUP BY kind, direction ORDER BY what",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        rows.iter()
            .map(|row| Ok((row.try_get("what")?, row.try_get("n")?)))
            .collect()
    }

    /// Inbound messages on the timeline; fails unless there are `expected`.
    pub async fn check_messages(&self, expected: u64) -> anyhow::Result<u64> {
        let kinds = self.event_kinds().await?;
        let messages = kinds
            .iter()
            .find(|(what, _)| what == "message/in")
            .map_or(0, |(_, n)| *n as u64);
        if messages != expected {
            bail!(
                "the timeline holds {messages} inbound messages, expected {expected} (events: {kinds:?})"
            );
        }
        Ok(messages)
    }

    async fn connection(&self) -> anyhow::Result<AnyConnection> {
        sqlx::any::install_default_drivers();
        Ok(AnyConnection::connect(&self.db_url).await?)
    }

    /// `(uid, part path)` of every file still to copy (`imap:{validity}/{uid}/{path}`).
    pub async fn pending_parts(&self) -> anyhow::Result<Vec<(u32, String)>> {
        let mut conn = self.connection().await?;
        let rows = sqlx::query("SELECT source FROM attachment WHERE status = 'pending'")
            .fetch_all(&mut conn)
            .await?;
        conn.close().await?;
        let mut parts = Vec::new();
        for row in rows {
            let source: String = row.try_get("source")?;
            let mut pieces = source
                .strip_prefix("imap:")
                .unwrap_or_default()
                .splitn(3, '/')
                .skip(1);
            if let (Some(uid), Some(path)) = (pieces.next(), pieces.next())
                && let Ok(uid) = uid.parse()
            {
                parts.push((uid, path.to_owned()));
            }
        }
        Ok(parts)
    }

    /// The error of the last poll, if it failed.
    pub async fn poll_error(&self) -> anyhow::Result<Option<String>> {
        let mut conn = self.connection().await?;
        let row = sqlx::query("SELECT last_error FROM plugin_poll WHERE plugin_id = $1")
            .bind(PLUGIN_ID)
            .fetch_optional(&mut conn)
            .await?;
        conn.close().await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<String>, _>(0)?,
            None => None,
        })
    }

    pub async fn files(&self) -> anyhow::Result<Files> {
        let mut conn = self.connection().await?;
        let rows = sqlx::query(
            "SELECT status, attempts, COALESCE(size, 0) AS size, last_error, blob FROM attachment WHERE direction = 'in'",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        let mut files = Files::default();
        for row in rows {
            let status: String = row.try_get("status")?;
            let attempts: i64 = row.try_get("attempts")?;
            let size: i64 = row.try_get("size")?;
            let error: Option<String> = row.try_get("last_error")?;
            match status.as_str() {
                "stored" => {
                    files.stored += 1;
                    files.stored_bytes += size.max(0) as u64;
                    files
                        .blobs
                        .extend(row.try_get::<Option<String>, _>("blob")?);
                }
                "failed" => files.failed += 1,
                _ => {
                    files.pending += 1;
                    if attempts > 0 {
                        files.retrying += 1;
                    }
                }
            }
            if let Some(error) = error
                && files.errors.len() < 3
                && !files.errors.contains(&error)
            {
                files.errors.push(error);
            }
        }
        Ok(files)
    }

    /// Waits until no file is waiting for its first copy attempt (`all`:
    /// until none is pending at all), up to `timeout`.
    pub async fn wait_for_files(&self, all: bool, timeout: Duration) -> anyhow::Result<Files> {
        let deadline = Instant::now() + timeout;
        loop {
            let files = self.files().await?;
            let waiting = if all {
                files.pending
            } else {
                files.pending - files.retrying
            };
            if waiting == 0 || Instant::now() > deadline {
                return Ok(files);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the attachment copier alone.
    pub fn start_copier(&self) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let app = self.app.clone();
        Workers {
            stop,
            task: tokio::spawn(async move { app.attachments.run(stopped).await }),
        }
    }

    /// Starts every background worker the server runs (outbox, attachment
    /// copier, pollers), as `switchboard serve` does.
    pub fn start_workers(&self) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let app = self.app.clone();
        Workers {
            stop,
            task: tokio::spawn(async move { app.run_workers(stopped).await }),
        }
    }
}

/// Background workers running until [`Workers::stop`].
pub struct Workers {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Workers {
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .context("the workers did not stop within 60 s")?
            .context("a worker panicked")
    }
}

/// What one Switchboard pass over the mailbox did.
pub struct Pass {
    pub messages: u64,
    /// Connector calls (`poll-mail`), when counted.
    pub polls: usize,
    /// Until the last message was on the timeline (or returned, for the connector alone).
    pub elapsed: Duration,
    /// Until every file was copied into the blob store, when measured.
    pub files_elapsed: Option<Duration>,
    pub files: Option<Files>,
    /// Time in the store's group commits and how many, when measured.
    pub commits: Option<(f64, u64)>,
    /// Files by reference, and the mail server serving just those parts the
    /// way `fetch-attachment` asks (a session per part), when measured.
    pub by_reference: Option<(usize, imap::Read)>,
}

impl Pass {
    pub fn per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn uid_of(cursor: Option<&str>) -> u32 {
    cursor
        .and_then(|c| c.split_once(':').and_then(|(_, uid)| uid.parse().ok()))
        .unwrap_or(0)
}

/// The connector alone: `poll-mail` calls back to back through the plugin
/// host, cursor kept here, results dropped — IMAP plus parsing in the
/// sandbox, no store.
pub async fn connector_alone(d: &Deployment, last_uid: u32) -> anyhow::Result<Pass> {
    let started = Instant::now();
    let mut cursor: Option<String> = None;
    let (mut messages, mut polls) = (0u64, 0usize);
    loop {
        let batch = match d.app.plugins.poll_mail(PLUGIN_ID, cursor.as_deref()).await {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => bail!("poll-mail refused: {e:?}"),
            Err(e) => bail!("poll-mail failed: {e}"),
        };
        polls += 1;
        messages += batch.envelopes.len() as u64;
        if batch.cursor.is_some() {
            cursor = batch.cursor;
        }
        if !batch.more && uid_of(cursor.as_deref()) >= last_uid {
            break;
        }
        if polls > 10 * last_uid as usize + 100 {
            bail!("the connector is not getting through the mailbox (cursor {cursor:?})");
        }
    }
    Ok(Pass {
        messages,
        polls,
        elapsed: started.elapsed(),
        files_elapsed: None,
        files: None,
        commits: None,
        by_reference: None,
    })
}

/// The full ingest back to back: `Ingest::poll_once` (poll-mail, inline files
/// into the blob store, the group-commit writer, the cursor) again as soon as
/// it returns, until the stored cursor reaches `last_uid`; then the
/// attachment copier alone until every referenced file is copied (timed on
/// its own, so each figure is one kind of work).
pub async fn drain(
    d: &Deployment,
    last_uid: u32,
    expected: u64,
    (port, user): (u16, &str),
) -> anyhow::Result<Pass> {
    let commits_before = commit_seconds(&d.app);
    let started = Instant::now();
    let mut failures = 0;
    loop {
        d.app.ingest.poll_once(PLUGIN_ID, &d.channel).await;
        if d.cursor_uid().await? >= last_uid {
            break;
        }
        if let Some(error) = d.poll_error().await? {
            failures += 1;
            if failures > 20 {
                bail!("polls keep failing: {error}");
            }
        }
    }
    let elapsed = started.elapsed();
    let commits_after = commit_seconds(&d.app);
    // The mail server's share of the copies: the same parts, read the way
    // fetch-attachment reads them, by a client that keeps nothing.
    let parts = d.pending_parts().await?;
    let served = imap::read_parts(port, user, PASSWORD, "INBOX", &parts).await?;
    let copier = d.start_copier();
    let copy_started = Instant::now();
    let files = d.wait_for_files(true, Duration::from_secs(600)).await?;
    let files_elapsed = copy_started.elapsed();
    copier.stop().await?;
    let messages = d.check_messages(expected).await?;
    Ok(Pass {
        messages,
        polls: 0,
        elapsed,
        files_elapsed: Some(files_elapsed),
        files: Some(files),
        commits: Some((
            commits_after.0 - commits_before.0,
            commits_after.1 - commits_before.1,
        )),
        by_reference: Some((parts.len(), served)),
    })
}

/// The store's commit time so far: (seconds, commits), from the metrics.
fn commit_seconds(app: &App) -> (f64, u64) {
    let text = app.metrics.encode();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("switchboard_ingest_commit_seconds_sum "),
        value("switchboard_ingest_commit_seconds_count ") as u64,
    )
}

/// The server as it runs: every worker started, the poller on its own
/// schedule (`poll_seconds` 2), until the cursor reaches `last_uid`.
pub async fn poller(d: &Deployment, last_uid: u32, expected: u64) -> anyhow::Result<Pass> {
    let started = Instant::now();
    let workers = d.start_workers();
    let deadline = started + Duration::from_secs(600 + expected / 5);
    loop {
        if d.cursor_uid().await? >= last_uid {
            break;
        }
        if Instant::now() > deadline {
            let error = d.poll_error().await?;
            bail!(
                "the poller did not get through the mailbox in time (last poll error: {error:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let files = d.wait_for_files(true, Duration::from_secs(600)).await?;
    let files_elapsed = started.elapsed();
    workers.stop().await?;
    let messages = d.check_messages(expected).await?;
    Ok(Pass {
        messages,
        polls: 0,
        elapsed,
        files_elapsed: Some(files_elapsed),
        files: Some(files),
        commits: None,
        by_reference: None,
    })
}
