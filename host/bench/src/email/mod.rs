//! `switchboard-bench email`: e-mail from the mailbox to the timeline (issue 12).
//!
//! 1. **Parse cost** of one message in the sandbox (the `email` component's
//!    `handle-mail-webhook` with a signed Mailgun `body-mime` posting, a fresh
//!    instance per call) against the same steps natively, per size class of a
//!    deterministic mixed corpus ([`corpus`]), with the fixed per-call floor
//!    (fresh instance + `describe`); see [`parse_cost`].
//! 2. **End to end** against a real Postfix + Dovecot started for the run
//!    (`switchboard_e2e::mail::MailServer`, root needed): the server's own
//!    delivery rate and IMAP serving rate, then the connector alone, the full
//!    ingest and the server's own poller; see [`e2e`].
//! 3. **Memory** of the host while a large message goes through: the poll
//!    (over `max_message_bytes` a message is read from its structure) and
//!    the copy of its attachment into the blob store, streamed; see
//!    [`memory`].
//!
//! Part 3 runs first (a fresh process's heap makes its figures clean) and is
//! printed last. Everything stays on 127.0.0.1. Nothing asserts a timing;
//! goals are printed as met or MISSED.

mod corpus;
mod e2e;
mod imap;
mod memory;
mod native;
mod parse_cost;
mod pipeline;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use clap::{Args, ValueEnum};
use switchboard_e2e::mail::MailServer;

use crate::machine::{load_average, print_header};
use corpus::{Corpus, MAILBOX};
use pipeline::PASSWORD;

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Parse,
    E2e,
    Memory,
}

/// `switchboard-bench email` options.
#[derive(Args, Debug)]
pub struct EmailArgs {
    /// Where built plugins are (the email folder is used).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Corpus messages: each parsed on both sides in part 1, delivered and
    /// ingested in part 2.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub messages: u32,
    /// Concurrent SMTP clients delivering the corpus.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smtp_clients: u32,
    /// The large message's attachment, MiB (part 3). Up to 64: base64, it
    /// must fit one call's stream read budget (96 MiB).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub large_mib: u64,
    /// A smaller attachment under the connector's defaults, MiB (part 3,
    /// besides the largest whose message is read whole).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=18))]
    pub fits_mib: u64,
    /// The corpus's seed (the same seed, the same mail).
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
    /// Run only these parts (repeat or comma-separate); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
}

pub async fn run(args: EmailArgs) -> anyhow::Result<()> {
    if !args.plugins_dir.join("email/plugin.toml").exists() {
        bail!(
            "{} is not a built plugin; run `bash plugins/build.sh` or pass --plugins-dir",
            args.plugins_dir.join("email").display()
        );
    }
    let wants = |part: Part| args.only.is_empty() || args.only.contains(&part);
    let started = Instant::now();
    print_header("email");
    let corpus = Corpus::new(args.seed);
    let messages = args.messages as usize;

    let server = if wants(Part::E2e) || wants(Part::Memory) {
        let mut users = vec![(MAILBOX, PASSWORD)];
        users.extend(memory::users().into_iter().map(|u| (u, PASSWORD)));
        eprintln!("starting Postfix and Dovecot…");
        Some(Arc::new(MailServer::start(&users).await))
    } else {
        None
    };

    let mut large = Vec::new();
    if let (true, Some(server)) = (wants(Part::Memory), &server) {
        let cases = memory::cases(args.large_mib, args.fits_mib);
        eprintln!("delivering the large messages…");
        let sizes = memory::deliver(server, &cases).await?;
        for (case, size) in cases.iter().zip(sizes) {
            eprintln!("memory: {}…", case.label);
            large.push(memory::measure(&args.plugins_dir, server, case, size).await?);
        }
    }

    let mut verdicts = Vec::new();
    if wants(Part::Parse) {
        eprintln!("parse cost: {messages} messages, sandbox and native…");
        let mut cost = parse_cost::measure(&args.plugins_dir, corpus, messages).await?;
        println!();
        let ratio = parse_cost::print(&mut cost);
        verdicts.push(format!(
            "parse within {}x of native: {} ({ratio:.2}x)",
            parse_cost::GOAL_RATIO,
            if ratio <= parse_cost::GOAL_RATIO {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    if let (true, Some(server)) = (wants(Part::E2e), &server) {
        let result = e2e::measure(
            &args.plugins_dir,
            server,
            corpus,
            messages,
            args.smtp_clients as usize,
        )
        .await?;
        println!();
        let met = e2e::print(2, &result);
        verdicts.push(format!(
            "ingest bounded by the mail server: {}",
            if met { "met" } else { "MISSED" }
        ));
    }
    if !large.is_empty() {
        println!();
        let met = memory::print(3, &large);
        verdicts.push(format!(
            "files streamed, not held several times over: {}",
            if met { "met" } else { "MISSED" }
        ));
    }
    println!();
    if !verdicts.is_empty() {
        println!("   goals: {}", verdicts.join("; "));
    }
    println!(
        "   run took {:.0} s; load average at the end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    Ok(())
}
