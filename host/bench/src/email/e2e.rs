//! Part 2: from the mailbox to the timeline, against the mail server itself.
//!
//! The corpus is delivered over SMTP into one mailbox of a real Postfix +
//! Dovecot (the server's own delivery rate), read back by a minimal IMAP
//! client twice (in one session, and the way the connector asks: a session
//! per batch of at most 25 messages), then read by Switchboard three times:
//! the connector alone (`poll-mail` back to back, nothing stored), the full
//! ingest back to back (`Ingest::poll_once` again as soon as it returns, the
//! attachment copier beside it), and the server as it runs (every worker,
//! the poller on its 2 s schedule). The last two each on a fresh store, and
//! each must end with every message on the timeline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_e2e::mail::MailServer;

use super::corpus::{Corpus, MAILBOX};
use super::imap;
use super::pipeline::{self, Delivery, Install, PASSWORD, Pass};

const MB: f64 = 1e6;

/// What part 2 measured.
pub struct E2e {
    pub delivery: Delivery,
    pub clients: usize,
    pub read_all: imap::Read,
    pub read_batches: imap::Read,
    pub alone: Pass,
    pub drain: Pass,
    pub poller: Pass,
}

pub async fn measure(
    plugins_dir: &Path,
    server: &Arc<MailServer>,
    corpus: Corpus,
    messages: usize,
    clients: usize,
) -> anyhow::Result<E2e> {
    eprintln!("delivering {messages} messages over SMTP from {clients} clients…");
    let delivery =
        pipeline::deliver_corpus(server, corpus, messages, clients, MAILBOX, messages as u32)
            .await?;
    let port = server.imap_plain_port();
    eprintln!("reading them back over IMAP…");
    let read_all = imap::read_all(port, MAILBOX, PASSWORD, "INBOX").await?;
    let read_batches = imap::read_in_batches(port, MAILBOX, PASSWORD, "INBOX").await?;
    let last_uid = {
        let mut session = imap::Imap::login(port, MAILBOX, PASSWORD).await?;
        let status = session.examine("INBOX").await?;
        session.logout().await;
        status.uid_next.unwrap_or(1).saturating_sub(1)
    };
    let install = || Install {
        user: MAILBOX,
        extra: &[],
        max_file_bytes: 25 * 1024 * 1024,
    };

    eprintln!("switchboard: the connector alone…");
    let d = pipeline::deploy(plugins_dir, server, install()).await?;
    let alone = pipeline::connector_alone(&d, last_uid).await?;
    eprintln!("switchboard: full ingest, back to back…");
    let drain = pipeline::drain(&d, last_uid, messages as u64, (port, MAILBOX)).await?;
    drop(d);

    eprintln!("switchboard: the server's workers and poller…");
    let d = pipeline::deploy(plugins_dir, server, install()).await?;
    let poller = pipeline::poller(&d, last_uid, messages as u64).await?;
    drop(d);
    Ok(E2e {
        delivery,
        clients,
        read_all,
        read_batches,
        alone,
        drain,
        poller,
    })
}

fn rate(messages: u64, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Prints part 2; returns whether ingest keeps up with the server's delivery.
pub fn print(number: usize, r: &E2e) -> bool {
    let d = &r.delivery;
    println!(
        "{number}. End to end: {} corpus messages ({:.0} MB) through a real Postfix + Dovecot (started for the run, loopback),",
        d.messages,
        d.bytes as f64 / MB
    );
    println!(
        "   read over plain IMAP; Switchboard in-process on SQLite (temporary folder), the email component in the server's plugin host"
    );
    println!(
        "   {:<68} {:>8} {:>9} {:>8}",
        "", "seconds", "msg/s", "MB/s"
    );
    let row = |name: &str, messages: u64, bytes: u64, elapsed: Duration, extra: String| {
        println!(
            "   {:<68} {:>8.1} {:>9.0} {:>8.1}{}",
            name,
            elapsed.as_secs_f64(),
            rate(messages, elapsed),
            bytes as f64 / MB / elapsed.as_secs_f64().max(1e-9),
            extra
        );
    };
    let n = d.messages as u64;
    row(
        &format!(
            "mail server: SMTP in ({} clients) until all are in the mailbox",
            r.clients
        ),
        n,
        d.bytes,
        d.delivered,
        format!(
            "   (Postfix accepted the last after {:.1} s; generating the mail took {:.1} s of CPU)",
            d.accepted.as_secs_f64(),
            d.generating.as_secs_f64()
        ),
    );
    row(
        "mail server: served over IMAP, one session FETCH 1:*",
        r.read_all.messages as u64,
        r.read_all.bytes,
        r.read_all.elapsed,
        String::new(),
    );
    row(
        &format!(
            "mail server: served the connector's way (a session per <= {} msgs)",
            imap::MAX_BATCH_MESSAGES
        ),
        r.read_batches.messages as u64,
        r.read_batches.bytes,
        r.read_batches.elapsed,
        format!("   ({} sessions)", r.read_batches.sessions),
    );
    row(
        "switchboard: connector alone (poll-mail back to back, no store)",
        r.alone.messages,
        d.bytes,
        r.alone.elapsed,
        format!("   ({} poll-mail calls)", r.alone.polls),
    );
    let files = |p: &Pass, what: &str| match (&p.files, p.files_elapsed) {
        (Some(f), Some(at)) => format!(
            "   (files {what} {:.1} s: {} stored{}{})",
            at.as_secs_f64(),
            f.stored,
            if f.failed > 0 {
                format!(", {} failed", f.failed)
            } else {
                String::new()
            },
            if f.pending > 0 {
                format!(", {} still pending", f.pending)
            } else {
                String::new()
            }
        ),
        _ => String::new(),
    };
    row(
        "switchboard: full ingest to the timeline (poll_once back to back)",
        r.drain.messages,
        d.bytes,
        r.drain.elapsed,
        files(&r.drain, "by reference copied afterwards, alone, in"),
    );
    row(
        "switchboard: as the server runs (workers, poller every 2 s)",
        r.poller.messages,
        d.bytes,
        r.poller.elapsed,
        files(&r.poller, "all copied after"),
    );
    if let (Some((files, served)), Some(copied)) = (&r.drain.by_reference, r.drain.files_elapsed) {
        let each = |t: Duration| 1e3 * t.as_secs_f64() / (*files).max(1) as f64;
        println!(
            "   files by reference: {files}; the copier took {:.1} ms per file, the mail server serving the same parts the way",
            each(copied)
        );
        println!(
            "   fetch-attachment asks (a session per part, {:.0} MB) {:.1} ms per file",
            served.bytes as f64 / MB,
            each(served.elapsed)
        );
    }
    let ingest = r.drain.per_sec();
    let as_run = r.poller.per_sec();
    let delivery = d.per_sec();
    let serving = rate(r.read_batches.messages as u64, r.read_batches.elapsed);
    println!(
        "   ratios: full ingest / SMTP delivery {:.2}x; full ingest / IMAP serving the connector's way {:.2}x; as run / SMTP delivery {:.2}x",
        ingest / delivery.max(1e-9),
        ingest / serving.max(1e-9),
        as_run / delivery.max(1e-9)
    );
    let total = r.drain.elapsed.as_secs_f64().max(1e-9);
    let calls = r.alone.elapsed.as_secs_f64();
    let server = r.read_batches.elapsed.as_secs_f64().min(calls);
    let (commits, count) = r.drain.commits.unwrap_or((0.0, 0));
    let rest = (total - calls - commits).max(0.0);
    let pct = |x: f64| 100.0 * x / total;
    println!(
        "   where the full ingest's {total:.1} s go (from the passes above): poll-mail calls ~{calls:.1} s ({:.0} %: the mail server serving ~{server:.1} s,",
        pct(calls)
    );
    println!(
        "   the connector in the sandbox ~{:.1} s), group commits {commits:.1} s ({:.0} %, {count} commits), the rest {rest:.1} s ({:.0} %: inline files into",
        calls - server,
        pct(commits),
        pct(rest)
    );
    println!("   the blob store, identities, cursor writes)");
    let met = ingest >= delivery;
    println!(
        "   goal ingest bounded by the mail server, not Switchboard: {} for the pipeline ({ingest:.0} msg/s vs {delivery:.0} msg/s delivered); {} as the server runs it ({as_run:.0} msg/s)",
        if met { "met" } else { "MISSED" },
        if as_run >= delivery { "met" } else { "MISSED" }
    );
    met && as_run >= delivery
}
