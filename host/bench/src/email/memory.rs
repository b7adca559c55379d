//! Part 3: the host's memory while one large message goes through.
//!
//! Each case gets its own mailbox holding one message and its own fresh
//! deployment; then, measured separately, (1) one `Ingest::poll_once` (the
//! connector reads the message over IMAP in the sandbox, whole or, over
//! `max_message_bytes`, from its structure; the event, inline files and
//! cursor are stored) and (2) the attachment copier until the message's
//! files have had their first copy attempt (`fetch-attachment-to`: the
//! connector fetches the part a MiB at a time and writes it, decoded, into
//! the host's blob writer). A stored file's key, the SHA-256 of its bytes,
//! is checked against the attachment's. Before
//! each phase the kernel's peak-RSS mark is reset (`5` into
//! `/proc/self/clear_refs`); the phase's figure is the peak (`VmHWM`) minus
//! the resident set just before it, cross-checked by sampling `VmRSS` every
//! 2 ms from a thread.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchboard_e2e::mail::MailServer;

use sha2::{Digest, Sha256};

use super::corpus::{large_attachment, large_message};
use super::pipeline::{self, Deployment, Files, Install};
use crate::rss;

const MIB: u64 = 1024 * 1024;

/// One large-message case.
pub struct Case {
    pub user: &'static str,
    pub label: String,
    pub attachment_bytes: usize,
    /// `max_message_bytes` when not the connector's default (16 MiB).
    pub max_message_bytes: Option<u64>,
    /// The blob store's largest file (server default 25 MiB).
    pub max_file_bytes: u64,
}

/// The connector's default (and largest) `max_message_bytes`: larger
/// messages are read from their structure.
const DEFAULT_MAX_MESSAGE: u64 = 16 * MIB;
/// The server's default largest file.
const DEFAULT_MAX_FILE: u64 = 25 * MIB;

/// The largest whole-MiB attachment whose message (base64, 76-character
/// lines) stays under the connector's default `max_message_bytes`.
pub fn largest_under_default() -> u64 {
    (1..=16u64)
        .rev()
        .find(|m| (m * MIB).div_ceil(57) * 78 + 4096 <= DEFAULT_MAX_MESSAGE)
        .unwrap_or(1)
}

/// The cases measured: the large message with the blob store's limit
/// raised to hold its file (the goal's case), the same under every default
/// (the file is over the server's 25 MiB), the largest attachment whose
/// message is still read whole, and a smaller one.
pub fn cases(big_mib: u64, fits_mib: u64) -> Vec<Case> {
    let raised = (big_mib + 14).max(DEFAULT_MAX_FILE / MIB);
    let edge = largest_under_default();
    let mut cases = vec![
        Case {
            user: USERS[0],
            label: format!(
                "{big_mib} MiB attachment, connector defaults (max_message_bytes 16 MiB), the blob store's limit raised to {raised} MiB"
            ),
            attachment_bytes: (big_mib * MIB) as usize,
            max_message_bytes: None,
            max_file_bytes: raised * MIB,
        },
        Case {
            user: USERS[1],
            label: format!(
                "{big_mib} MiB attachment, every default (the blob store keeps files up to 25 MiB)"
            ),
            attachment_bytes: (big_mib * MIB) as usize,
            max_message_bytes: None,
            max_file_bytes: DEFAULT_MAX_FILE,
        },
        Case {
            user: USERS[2],
            label: format!(
                "{edge} MiB attachment, the largest whose message is read whole (under max_message_bytes)"
            ),
            attachment_bytes: (edge * MIB) as usize,
            max_message_bytes: None,
            max_file_bytes: DEFAULT_MAX_FILE,
        },
    ];
    if fits_mib != edge {
        cases.push(Case {
            user: USERS[3],
            label: format!("{fits_mib} MiB attachment, connector defaults"),
            attachment_bytes: (fits_mib * MIB) as usize,
            max_message_bytes: None,
            max_file_bytes: DEFAULT_MAX_FILE,
        });
    }
    cases
}

const USERS: [&str; 4] = [
    "big-default@example.test",
    "big-raised@example.test",
    "big-edge@example.test",
    "big-fits@example.test",
];

/// The mailboxes the cases need.
pub fn users() -> [&'static str; 4] {
    USERS
}

/// One measured phase.
pub struct Phase {
    /// Resident set just before, bytes.
    pub before: u64,
    /// Peak resident set during the phase (VmHWM after the reset), bytes.
    pub peak: u64,
    /// The highest sampled VmRSS, bytes.
    pub sampled: u64,
    pub elapsed: Duration,
    /// What came of it.
    pub outcome: String,
    /// Whether the peak mark could be reset (else `peak` is the sampled one).
    pub exact: bool,
}

impl Phase {
    pub fn delta(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}

/// What one case measured.
pub struct Measured {
    pub label: String,
    pub message_bytes: u64,
    pub attachment_bytes: u64,
    pub poll: Phase,
    pub copy: Option<Phase>,
    /// Whether the kernel let the peak mark be reset (else the figures are
    /// sampled only).
    pub exact: bool,
}

/// Delivers each case's message into its own mailbox (before anything is
/// measured, so generating them costs nothing later).
pub async fn deliver(server: &MailServer, cases: &[Case]) -> anyhow::Result<Vec<u64>> {
    let mut sizes = Vec::new();
    for case in cases {
        let raw = large_message(
            case.attachment_bytes,
            &format!("large.{}@example.com", case.attachment_bytes),
            case.user,
        );
        sizes.push(raw.len() as u64);
        server.deliver(&raw, case.user).await;
        drop(raw);
        pipeline::wait_for_count(server, case.user, 1, Duration::from_secs(120)).await?;
    }
    Ok(sizes)
}

/// Runs one case on a fresh deployment.
pub async fn measure(
    plugins_dir: &Path,
    server: &MailServer,
    case: &Case,
    message_bytes: u64,
) -> anyhow::Result<Measured> {
    let extra: Vec<(&str, String)> = case
        .max_message_bytes
        .map(|m| ("max_message_bytes", m.to_string()))
        .into_iter()
        .collect();
    let d = pipeline::deploy(
        plugins_dir,
        server,
        Install {
            user: case.user,
            extra: &extra,
            max_file_bytes: case.max_file_bytes,
        },
    )
    .await?;
    // Settle: the first calls compile and cache; measure from a quiet state.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let poll = phase(async {
        d.app
            .ingest
            .poll_once(pipeline::PLUGIN_ID, &d.channel)
            .await;
        poll_outcome(&d).await
    })
    .await?;

    let mut poll = poll;
    if d.poll_error().await?.is_some() {
        // Does the mailbox get past it? The server polls again and again.
        for _ in 0..5 {
            d.app
                .ingest
                .poll_once(pipeline::PLUGIN_ID, &d.channel)
                .await;
        }
        let quarantined = d
            .app
            .plugins
            .status(pipeline::PLUGIN_ID)
            .and_then(|s| s.quarantined);
        poll.outcome.push_str(&format!(
            "; after 5 more polls the cursor is at UID {}, {}",
            d.cursor_uid().await?,
            match quarantined {
                Some(_) => "the connector is quarantined (the mailbox is stuck)".to_owned(),
                None => "the connector is not quarantined".to_owned(),
            }
        ));
    }
    let files = d.files().await?;
    let copy = if files.pending > 0 {
        let copier = d.start_copier();
        let phase = phase(async {
            let files = d.wait_for_files(false, Duration::from_secs(180)).await?;
            Ok(files_outcome(&files))
        })
        .await;
        copier.stop().await?;
        let mut phase = phase?;
        // Outside the measured phase: the stored file is the one sent.
        let files = d.files().await?;
        if !files.blobs.is_empty() {
            let sent = hex::encode(Sha256::digest(large_attachment(case.attachment_bytes)));
            phase.outcome.push_str(if files.blobs.contains(&sent) {
                "; its SHA-256 is the attachment's"
            } else {
                "; its SHA-256 is NOT the attachment's"
            });
        }
        Some(phase)
    } else {
        None
    };
    Ok(Measured {
        label: case.label.clone(),
        message_bytes,
        attachment_bytes: case.attachment_bytes as u64,
        exact: poll.exact && copy.as_ref().is_none_or(|c| c.exact),
        poll,
        copy,
    })
}

async fn poll_outcome(d: &Deployment) -> anyhow::Result<String> {
    if let Some(error) = d.poll_error().await? {
        return Ok(format!("poll failed: {}", shorten(&error, 220)));
    }
    let events = d.timeline_events().await?;
    let files = d.files().await?;
    Ok(format!(
        "{events} timeline event(s); {} file(s) to copy{}",
        files.pending,
        if d.cursor_uid().await? >= 1 {
            ""
        } else {
            "; cursor did not move"
        }
    ))
}

fn files_outcome(files: &Files) -> String {
    let mut out = format!(
        "{} stored ({:.1} MiB in the blob store), {} failed, {} waiting for a retry",
        files.stored,
        files.stored_bytes as f64 / MIB as f64,
        files.failed,
        files.retrying
    );
    for error in &files.errors {
        out.push_str(&format!("; reason: {}", shorten(error, 200)));
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Runs `work` between a resident-set reading and the peak mark.
async fn phase<F>(work: F) -> anyhow::Result<Phase>
where
    F: std::future::Future<Output = anyhow::Result<String>>,
{
    rss::status_bytes("VmRSS:").context("reading /proc/self/status")?;
    let ((outcome, elapsed), m) = rss::around(async {
        let started = Instant::now();
        let outcome = work.await;
        (outcome, started.elapsed())
    })
    .await;
    Ok(Phase {
        before: m.before,
        peak: m.peak,
        sampled: m.sampled,
        elapsed,
        outcome: outcome?,
        exact: m.exact,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Prints part 3; returns whether the goal (files stream to the blob
/// store, never held several times over) is met.
pub fn print(number: usize, results: &[Measured]) -> bool {
    println!(
        "{number}. Host memory while a large message goes through: peak RSS (VmHWM, reset per phase) minus RSS before,"
    );
    println!(
        "   one message per mailbox, fresh deployment per case; phase 1 = one poll (read whole, or from its structure over"
    );
    println!(
        "   max_message_bytes, in the sandbox; store), phase 2 = the attachment copier (fetch-attachment-to: the part"
    );
    println!(
        "   fetched a MiB at a time, decoded and written into the host's blob writer; SHA-256 checked)"
    );
    for r in results {
        println!(
            "   {} — message {:.1} MiB on the wire, attachment {:.1} MiB",
            r.label,
            mib(r.message_bytes),
            mib(r.attachment_bytes)
        );
        let line = |name: &str, p: &Phase| {
            println!(
                "     {name:<6} peak +{:>6.1} MiB ({:.2}x the message, {:.2}x the attachment; sampled +{:.1} MiB) in {:.2} s: {}",
                mib(p.delta()),
                p.delta() as f64 / r.message_bytes.max(1) as f64,
                p.delta() as f64 / r.attachment_bytes.max(1) as f64,
                mib(p.sampled.saturating_sub(p.before)),
                p.elapsed.as_secs_f64(),
                p.outcome
            );
        };
        line("poll", &r.poll);
        match &r.copy {
            Some(copy) => line("copy", copy),
            None => println!("     copy   nothing to copy"),
        }
    }
    if results.iter().any(|r| !r.exact) {
        println!("   note: the kernel refused to reset the peak mark; figures from sampling only");
    }
    // Held several times over: a copy phase peaking at more than 1.5x its file.
    let copies: Vec<f64> = results
        .iter()
        .filter_map(|r| {
            let copy = r.copy.as_ref()?;
            copy.outcome
                .starts_with("1 stored")
                .then(|| copy.delta() as f64 / r.attachment_bytes.max(1) as f64)
        })
        .collect();
    let worst_copy = copies.iter().copied().fold(0.0, f64::max);
    let stuck: Vec<&Measured> = results
        .iter()
        .filter(|r| r.poll.outcome.starts_with("poll failed"))
        .collect();
    let altered = results.iter().any(|r| {
        r.copy
            .as_ref()
            .is_some_and(|c| c.outcome.contains("is NOT the attachment's"))
    });
    // The goal's figure: the large message, its file kept, whichever phase
    // peaks higher.
    if let Some(big) = results.first() {
        let peak = big
            .copy
            .as_ref()
            .map_or(big.poll.delta(), |c| c.delta().max(big.poll.delta()));
        println!(
            "   the {:.0} MiB message goes through at a peak of +{:.1} MiB, {:.2}x its attachment",
            mib(big.message_bytes),
            mib(peak),
            peak as f64 / big.attachment_bytes.max(1) as f64
        );
    }
    let met = !copies.is_empty() && worst_copy <= 1.5 && stuck.is_empty() && !altered;
    let mut why = Vec::new();
    if copies.is_empty() {
        why.push("no attachment reached the blob store".to_owned());
    } else {
        why.push(format!(
            "copying a file peaks at up to {worst_copy:.2}x its size"
        ));
    }
    for r in &stuck {
        why.push(format!(
            "a {:.1} MiB message fails the poll",
            mib(r.message_bytes)
        ));
    }
    if altered {
        why.push("a stored file differs from the one sent".to_owned());
    }
    println!(
        "   goal attachments stream to the blob store, not held several times over: {} ({})",
        if met { "met" } else { "MISSED" },
        why.join("; ")
    );
    met
}
