//! Part 1: what reading one message costs in the sandbox against the same
//! parser natively, per size class, in one run.
//!
//! The sandboxed side is the real `email` component in a [`PluginHost`] with
//! default limits, configured for Mailgun: every call is
//! [`PluginHost::handle_mail_webhook`] with a signed `multipart/form-data`
//! posting carrying the whole message as `body-mime` (what a Mailgun route
//! ending in `mime` posts), on a fresh instance, with the output checks the
//! server makes. The native side is [`super::native`]: the same steps and
//! `mail-parser` calls. Both must return the same batch for every message —
//! checked on the results of the timed calls themselves — or the run stops.
//! A fresh instance plus `describe` is the floor every call pays whatever it
//! does; the same postings with a forged signature (refused after the config,
//! the form and the HMAC, on both sides) split each call into what comes
//! before reading the MIME and the reading itself. The corpus is walked in
//! blocks of 50 messages; in each block the five series run one after the
//! other, so drift on a busy machine hits all of them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_plugin_host::{HttpRequest, Limits, LoadSpec, PluginHost};

use super::corpus::{Class, Corpus, MAILBOX};
use super::native;
use crate::sample::us;

/// Mailgun's HTTP webhook signing key of the benchmark's install.
const SIGNING_KEY: &str = "key-bench-signing-secret";
const HOOK_URL: &str = "https://switchboard.example.com/hooks/email/mailgun/mime";
/// Messages per block; the five series alternate block by block.
const BLOCK: usize = 50;
/// The goal: the sandboxed parse within this many times native.
pub const GOAL_RATIO: f64 = 2.0;

/// The config of the benchmark's install (Mailgun, so webhooks are accepted).
fn config() -> HashMap<String, String> {
    HashMap::from([
        ("address".to_owned(), MAILBOX.to_owned()),
        ("display_name".to_owned(), "Example Support".to_owned()),
        ("provider".to_owned(), "mailgun".to_owned()),
        ("mailgun_signing_key".to_owned(), SIGNING_KEY.to_owned()),
        ("mailgun_api_key".to_owned(), "key-bench-api".to_owned()),
    ])
}

/// A Mailgun route's posting of `raw`, signed now.
fn posting(raw: &[u8], n: usize) -> HttpRequest {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let token = format!("{n:08x}{:050x}", n.wrapping_mul(0x9E37_79B9));
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY.as_bytes()).expect("any key");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let boundary = format!("sbbench{n:016x}mailgunposting");
    let mut body = Vec::with_capacity(raw.len() + 1024);
    for (name, value) in [
        ("recipient", MAILBOX.as_bytes()),
        ("sender", b"customer@example.com".as_slice()),
        ("timestamp", timestamp.as_bytes()),
        ("token", token.as_bytes()),
        ("signature", signature.as_bytes()),
        ("body-mime", raw),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    HttpRequest {
        method: "POST".into(),
        url: HOOK_URL.into(),
        headers: vec![
            (
                "content-type".into(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
            ("user-agent".into(), "mailgun/treq-16.12.0".into()),
        ],
        body,
    }
}

/// `request` with its signature's last hex digit changed: refused after the
/// config, the form and the HMAC, before the MIME is read.
fn forged(request: &HttpRequest) -> HttpRequest {
    let mut forged = request.clone();
    let marker = b"name=\"signature\"\r\n\r\n";
    if let Some(at) = forged.body.windows(marker.len()).position(|w| w == marker) {
        let digit = at + marker.len() + 63;
        forged.body[digit] = if forged.body[digit] == b'0' {
            b'1'
        } else {
            b'0'
        };
    }
    forged
}

/// Timed samples of one class.
#[derive(Default)]
pub struct Series {
    pub sandbox: Vec<Duration>,
    pub native: Vec<Duration>,
    /// The same posting with a forged signature: everything but reading the MIME.
    pub sandbox_refused: Vec<Duration>,
    pub native_refused: Vec<Duration>,
    pub bytes: u64,
}

/// What part 1 measured.
pub struct ParseCost {
    pub classes: Vec<(Class, Series)>,
    pub floor: Vec<Duration>,
    pub messages: usize,
    pub elapsed: Duration,
}

/// Loads the connector and times every corpus message on both sides.
pub async fn measure(
    plugins_dir: &Path,
    corpus: Corpus,
    messages: usize,
) -> anyhow::Result<ParseCost> {
    let host = PluginHost::new(
        Limits::default(),
        Arc::new(switchboard::offline::OfflineServices::wall_clock()),
    )
    .map_err(|e| anyhow::anyhow!("starting the plugin host: {e:#}"))?;
    let mut spec = LoadSpec::from_dir(&plugins_dir.join("email"))?;
    spec.config = config();
    let resolved = PluginHost::resolve_config(&spec.manifest, &spec.config)?;
    host.load(spec).context("loading the email connector")?;
    let id = "email";

    // Warm-up: the first calls pay for lazy initialization on both sides.
    for i in 0..20.min(messages) {
        let request = posting(&corpus.message(i).raw, i);
        let _ = host.handle_mail_webhook(id, &request).await;
        let _ = native::handle_mail_webhook(&resolved, &request, now_secs());
        let _ = host.describe_channel(id).await;
    }

    let started = Instant::now();
    let mut classes: Vec<(Class, Series)> =
        Class::ALL.iter().map(|c| (*c, Series::default())).collect();
    let mut floor = Vec::with_capacity(messages);
    let mut block_start = 0;
    while block_start < messages {
        let end = (block_start + BLOCK).min(messages);
        let block: Vec<(Class, HttpRequest)> = (block_start..end)
            .map(|i| {
                let mail = corpus.message(i);
                (mail.class, posting(&mail.raw, i))
            })
            .collect();
        let refused: Vec<HttpRequest> = block.iter().map(|(_, r)| forged(r)).collect();
        let mut native_out = Vec::with_capacity(block.len());
        for (_, request) in &block {
            let now = now_secs();
            let t = Instant::now();
            let out = native::handle_mail_webhook(&resolved, std::hint::black_box(request), now);
            native_out.push((t.elapsed(), std::hint::black_box(out)));
        }
        let mut sandbox_out = Vec::with_capacity(block.len());
        for (_, request) in &block {
            let t = Instant::now();
            let out = host.handle_mail_webhook(id, request).await;
            sandbox_out.push((t.elapsed(), std::hint::black_box(out)));
        }
        let mut native_refused = Vec::with_capacity(block.len());
        for request in &refused {
            let now = now_secs();
            let t = Instant::now();
            let out = native::handle_mail_webhook(&resolved, std::hint::black_box(request), now);
            native_refused.push(t.elapsed());
            if std::hint::black_box(out).is_ok() {
                bail!("the native baseline took a forged posting");
            }
        }
        let mut sandbox_refused = Vec::with_capacity(block.len());
        for request in &refused {
            let t = Instant::now();
            let out = host.handle_mail_webhook(id, request).await;
            sandbox_refused.push(t.elapsed());
            match std::hint::black_box(out) {
                Ok(Err(switchboard_plugin_host::PluginError::Unauthorized(_))) => {}
                other => bail!("the connector did not refuse a forged posting: {other:?}"),
            }
        }
        for _ in &block {
            let t = Instant::now();
            let out = host.describe_channel(id).await;
            let elapsed = t.elapsed();
            if let Err(e) = out {
                bail!("describe: {e}");
            }
            floor.push(elapsed);
        }
        let timed = block
            .iter()
            .zip(native_out)
            .zip(sandbox_out)
            .zip(native_refused.into_iter().zip(sandbox_refused));
        for (k, ((((class, request), (n_time, n_out)), (s_time, s_out)), (n_refused, s_refused))) in
            timed.enumerate()
        {
            let i = block_start + k;
            let sandbox = match s_out {
                Ok(Ok(batch)) => batch,
                Ok(Err(e)) => bail!("message {i}: the connector refused the posting: {e:?}"),
                Err(e) => bail!("message {i}: the call failed: {e}"),
            };
            let native = n_out
                .map_err(|e| anyhow::anyhow!("message {i}: the native baseline refused: {e}"))?;
            native::same(&sandbox, &native).map_err(|e| {
                anyhow::anyhow!("message {i}: the native baseline and the connector disagree: {e}")
            })?;
            let series = &mut classes
                .iter_mut()
                .find(|(c, _)| c == class)
                .expect("every class")
                .1;
            series.native.push(n_time);
            series.sandbox.push(s_time);
            series.native_refused.push(n_refused);
            series.sandbox_refused.push(s_refused);
            series.bytes += request.body.len() as u64;
        }
        block_start = end;
    }
    Ok(ParseCost {
        classes,
        floor,
        messages,
        elapsed: started.elapsed(),
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `p`-quantile of `samples` (sorted here).
pub fn quantile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let n = samples.len();
    samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
}

fn mean(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.iter().sum::<Duration>() / samples.len() as u32
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Prints part 1; returns the overall ratio of means (the goal's figure).
pub fn print(cost: &mut ParseCost) -> f64 {
    println!(
        "1. Parse cost: one message per call, Mailgun `body-mime` posting (signed multipart) through handle-mail-webhook"
    );
    println!(
        "   on a fresh instance in a PluginHost (default limits) vs the same steps natively (mail-parser, same calls);"
    );
    println!(
        "   {} corpus messages, every result checked equal on both sides, alternating in blocks of {BLOCK} ({:.1} s)",
        cost.messages,
        cost.elapsed.as_secs_f64()
    );
    println!(
        "   {:<26} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "",
        "n",
        "avg KB",
        "sb p50µs",
        "sb p90µs",
        "sb avgµs",
        "nat p50µs",
        "nat p90µs",
        "nat avgµs",
        "x p50",
        "x p90",
        "x avg"
    );
    let mut all_sandbox = Vec::new();
    let mut all_native = Vec::new();
    let mut all_bytes = 0u64;
    let row = |label: &str, sandbox: &mut Vec<Duration>, native: &mut Vec<Duration>, bytes: u64| {
        let n = sandbox.len();
        let (s50, s90, savg) = (
            quantile(sandbox, 0.5),
            quantile(sandbox, 0.9),
            mean(sandbox),
        );
        let (n50, n90, navg) = (quantile(native, 0.5), quantile(native, 0.9), mean(native));
        println!(
            "   {:<26} {:>6} {:>8.1} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>6.2}x {:>6.2}x {:>6.2}x",
            label,
            n,
            bytes as f64 / n.max(1) as f64 / 1024.0,
            us(s50),
            us(s90),
            us(savg),
            us(n50),
            us(n90),
            us(navg),
            ratio(s50, n50),
            ratio(s90, n90),
            ratio(savg, navg),
        );
        (savg, navg)
    };
    for (class, series) in &mut cost.classes {
        all_sandbox.extend_from_slice(&series.sandbox);
        all_native.extend_from_slice(&series.native);
        all_bytes += series.bytes;
        row(
            class.label(),
            &mut series.sandbox,
            &mut series.native,
            series.bytes,
        );
    }
    let (savg, navg) = row("all messages", &mut all_sandbox, &mut all_native, all_bytes);
    let floor50 = quantile(&mut cost.floor, 0.5);
    let floor90 = quantile(&mut cost.floor, 0.9);
    let floor_avg = mean(&cost.floor);
    println!(
        "   floor: fresh instance + describe: p50 {:.0} µs, p90 {:.0} µs, avg {:.0} µs",
        us(floor50),
        us(floor90),
        us(floor_avg)
    );
    println!(
        "   where a call's time goes (means, µs): the same posting with a forged signature is refused after the config,"
    );
    println!(
        "   the form and the HMAC (sandbox: also the instance and the posting copied in); the rest is reading the MIME"
    );
    println!(
        "   {:<26} {:>9} {:>13} {:>11} {:>13} {:>11} {:>11}",
        "", "floor", "sb refused", "sb MIME", "nat refused", "nat MIME", "x MIME"
    );
    let mut all_refused = (Vec::new(), Vec::new());
    let mut all_totals = (Vec::new(), Vec::new());
    let breakdown = |label: &str,
                     sandbox: &[Duration],
                     native: &[Duration],
                     sandbox_refused: &[Duration],
                     native_refused: &[Duration]| {
        let (sb, nat) = (mean(sandbox), mean(native));
        let (sbr, natr) = (mean(sandbox_refused), mean(native_refused));
        let (sb_mime, nat_mime) = (sb.saturating_sub(sbr), nat.saturating_sub(natr));
        println!(
            "   {:<26} {:>9.0} {:>13.0} {:>11.0} {:>13.0} {:>11.0} {:>10.2}x",
            label,
            us(floor_avg),
            us(sbr),
            us(sb_mime),
            us(natr),
            us(nat_mime),
            ratio(sb_mime, nat_mime)
        );
    };
    for (class, series) in &cost.classes {
        all_refused.0.extend_from_slice(&series.sandbox_refused);
        all_refused.1.extend_from_slice(&series.native_refused);
        all_totals.0.extend_from_slice(&series.sandbox);
        all_totals.1.extend_from_slice(&series.native);
        breakdown(
            class.label(),
            &series.sandbox,
            &series.native,
            &series.sandbox_refused,
            &series.native_refused,
        );
    }
    breakdown(
        "all messages",
        &all_totals.0,
        &all_totals.1,
        &all_refused.0,
        &all_refused.1,
    );
    let overall = ratio(savg, navg);
    let beyond_floor = ratio(savg.saturating_sub(floor_avg), navg);
    println!(
        "   sandbox throughput {:.0} msg/s ({:.0} MB/s of postings), native {:.0} msg/s",
        1.0 / savg.as_secs_f64().max(1e-9),
        all_bytes as f64 / 1e6 / (savg.as_secs_f64() * all_sandbox.len() as f64).max(1e-9),
        1.0 / navg.as_secs_f64().max(1e-9)
    );
    println!(
        "   goal sandboxed parse within {GOAL_RATIO}x of native (mean per message): {} ({overall:.2}x; {beyond_floor:.2}x without the floor)",
        if overall <= GOAL_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );
    overall
}
