//! `switchboard-bench plugin-call` (also part 1 of `switchboard-bench ingest`): what
//! one connector call costs in the sandbox, against the same work done natively.
//!
//! Two real connectors run in one [`PluginHost`] with default limits, as the server
//! runs them: `sms-twilio` handles a signed Twilio inbound-SMS webhook (form fields,
//! `X-Twilio-Signature`), `whatsapp-cloud` a signed WhatsApp Cloud API notification
//! (JSON, `X-Hub-Signature-256`). Every call is [`PluginHost::handle_webhook`]: a
//! fresh instance from the pre-linked component, the signature check and parsing in
//! the guest, the events lifted back to the host and checked against the output
//! caps. Baselines: the same work written natively ([`sms_twilio`],
//! [`whatsapp_cloud`]), returning the same values — checked before anything is
//! timed. A third row, a fresh instance plus `describe`, is the floor every call
//! pays whatever the connector does.
//!
//! The sides alternate in blocks, so drift on a busy machine hits all of them.
//! Nothing here asserts a timing.

mod shapes;
mod sms_twilio;
mod whatsapp_cloud;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use switchboard_plugin_host::{HttpRequest, Limits, LoadSpec, PluginHost, WebhookOutcome};

use crate::machine::{load_average, print_header};
use crate::sample::{Summary, random_hex, us};
use crate::twilio::{self, Webhook, inbound_params, sender_number, twilio_config};

/// Where the goal puts the sandboxed call: within this many times native, at p50.
const GOAL_RATIO: f64 = 4.0;
/// Blocks the timed calls are split into; the sides alternate block by block.
const BLOCKS: usize = 10;

/// `switchboard-bench plugin-call` options.
#[derive(Args, Debug)]
pub struct PluginCallArgs {
    /// Where built plugins are (the sms-twilio and whatsapp-cloud folders are used).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Calls timed per connector and side.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
}

/// Runs the measurement alone and prints the report.
pub async fn run(args: PluginCallArgs) -> anyhow::Result<()> {
    check_built(&args.plugins_dir)?;
    print_header("plugin-call");
    println!();
    let costs = measure(&args.plugins_dir, args.iterations as usize).await?;
    print(&costs);
    println!("   load average at the end {}", load_average());
    Ok(())
}

/// Fails with a hint when a connector the measurement needs is not built.
pub fn check_built(plugins_dir: &Path) -> anyhow::Result<()> {
    for id in [twilio::PLUGIN_ID, whatsapp_cloud::PLUGIN_ID] {
        let dir = plugins_dir.join(id);
        if !dir.join("plugin.toml").exists() {
            bail!(
                "{} is not a built plugin; run `bash plugins/build.sh` or pass --plugins-dir",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The native side of one connector.
type Native = fn(&HashMap<String, String>, &HttpRequest) -> Result<WebhookOutcome, String>;

/// One connector under test.
struct Connector {
    id: &'static str,
    /// What one request is, for the report.
    what: String,
    config: HashMap<String, String>,
    request: HttpRequest,
    native: Native,
}

/// What one connector's calls cost.
pub struct CallCost {
    id: &'static str,
    what: String,
    wasm: Summary,
    floor: Summary,
    native: Summary,
}

fn connectors() -> Vec<Connector> {
    let url = format!("https://switchboard.example.com{}", twilio::HOOK_PATH);
    let sid = format!("SM{}", random_hex(16));
    let from = sender_number(42);
    let twilio_request =
        Webhook::new(&url, &sid, &from).to_request(&url, "switchboard.example.com");
    let wamid = format!(
        "wamid.HBgLMTYzMTU1NTExODEVAgASGBQz{}",
        random_hex(10).to_uppercase()
    );
    let whatsapp_request = whatsapp_cloud::request(&wamid, "16315551181");
    vec![
        Connector {
            id: twilio::PLUGIN_ID,
            what: format!(
                "signed inbound SMS ({} form fields, {} bytes)",
                inbound_params(&sid, &from).len(),
                twilio_request.body.len()
            ),
            config: twilio_config(),
            request: twilio_request,
            native: sms_twilio::handle_webhook,
        },
        Connector {
            id: whatsapp_cloud::PLUGIN_ID,
            what: format!(
                "signed text message (JSON, {} bytes)",
                whatsapp_request.body.len()
            ),
            config: whatsapp_cloud::config(),
            request: whatsapp_request,
            native: whatsapp_cloud::handle_webhook,
        },
    ]
}

/// Loads both connectors into one plugin host with default limits, checks that
/// each side returns the same outcome, then times `iterations` calls per
/// connector and side.
pub async fn measure(plugins_dir: &Path, iterations: usize) -> anyhow::Result<Vec<CallCost>> {
    let host = PluginHost::new(
        Limits::default(),
        Arc::new(switchboard::offline::OfflineServices::wall_clock()),
    )
    .map_err(|e| anyhow::anyhow!("starting the plugin host: {e:#}"))?;
    let mut connectors = connectors();
    for c in &mut connectors {
        let mut spec = LoadSpec::from_dir(&plugins_dir.join(c.id))?;
        spec.config = c.config.clone();
        // Both sides see the config the plugin sees (defaults filled in).
        c.config = PluginHost::resolve_config(&spec.manifest, &spec.config)?;
        host.load(spec)
            .with_context(|| format!("loading {}", c.id))?;
        // Both sides must return the same thing before either is timed.
        let wasm = match host.handle_webhook(c.id, &c.request).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => bail!("{} refused the benchmark webhook: {e:?}", c.id),
            Err(e) => bail!("{} failed on the benchmark webhook: {e}", c.id),
        };
        let native = (c.native)(&c.config, &c.request)
            .map_err(|e| anyhow::anyhow!("native {}: {e}", c.id))?;
        if wasm.events.len() != 1 || format!("{wasm:?}") != format!("{native:?}") {
            bail!(
                "{}: the native baseline and the connector disagree\n  wasm:   {wasm:?}\n  native: {native:?}",
                c.id
            );
        }
    }

    let warm_up = (iterations / 10).clamp(10, 200);
    for c in &connectors {
        for _ in 0..warm_up {
            let _ = std::hint::black_box((c.native)(&c.config, &c.request));
            let _ = host.handle_webhook(c.id, &c.request).await;
            let _ = host.describe_channel(c.id).await;
        }
    }

    let mut times: Vec<[Vec<Duration>; 3]> = connectors
        .iter()
        .map(|_| std::array::from_fn(|_| Vec::with_capacity(iterations)))
        .collect();
    for block in 0..BLOCKS {
        let n = iterations * (block + 1) / BLOCKS - iterations * block / BLOCKS;
        for (c, [wasm, floor, native]) in connectors.iter().zip(&mut times) {
            for _ in 0..n {
                let started = Instant::now();
                let out = (c.native)(&c.config, std::hint::black_box(&c.request));
                let elapsed = started.elapsed();
                if std::hint::black_box(out).is_err() {
                    bail!("native {} failed during the run", c.id);
                }
                native.push(elapsed);
            }
            for i in 0..n {
                let started = Instant::now();
                let out = host.handle_webhook(c.id, &c.request).await;
                let elapsed = started.elapsed();
                match std::hint::black_box(out) {
                    Ok(Ok(o)) if o.events.len() == 1 => {}
                    Ok(Ok(o)) => bail!("{} call {i}: {} events instead of 1", c.id, o.events.len()),
                    Ok(Err(e)) => bail!("{} call {i}: the connector refused: {e:?}", c.id),
                    Err(e) => bail!("{} call {i}: {e}", c.id),
                }
                wasm.push(elapsed);
            }
            for i in 0..n {
                let started = Instant::now();
                let out = host.describe_channel(c.id).await;
                let elapsed = started.elapsed();
                if let Err(e) = std::hint::black_box(out) {
                    bail!("{} describe {i}: {e}", c.id);
                }
                floor.push(elapsed);
            }
        }
    }

    Ok(connectors
        .into_iter()
        .zip(times)
        .map(|(c, [mut wasm, mut floor, mut native])| CallCost {
            id: c.id,
            what: c.what,
            wasm: Summary::of(&mut wasm),
            floor: Summary::of(&mut floor),
            native: Summary::of(&mut native),
        })
        .collect())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Prints the measurement as part 1 of a report.
pub fn print(costs: &[CallCost]) {
    let calls = costs.first().map_or(0, |c| c.wasm.count);
    println!(
        "1. Connector call cost: handle-webhook on a fresh instance in a PluginHost (default limits) vs the same work natively,"
    );
    println!("   {calls} calls per connector and side, alternating in {BLOCKS} blocks");
    println!(
        "   {:<46} {:>9} {:>9} {:>9}",
        "", "p50 µs", "p99 µs", "mean µs"
    );
    let row = |name: &str, s: &Summary| {
        println!(
            "   {:<46} {:>9.1} {:>9.1} {:>9.1}",
            name,
            us(s.p50),
            us(s.p99),
            us(s.mean)
        );
    };
    for c in costs {
        println!("   {}: {}", c.id, c.what);
        row("  wasm: fresh instance + handle-webhook", &c.wasm);
        row("  native: the same work in Rust", &c.native);
        println!(
            "   {:<46} {:>8.1}x {:>8.1}x {:>8.1}x",
            "  ratio wasm/native",
            ratio(c.wasm.p50, c.native.p50),
            ratio(c.wasm.p99, c.native.p99),
            ratio(c.wasm.mean, c.native.mean)
        );
        row("  floor: fresh instance + describe", &c.floor);
    }
    let verdicts: Vec<String> = costs
        .iter()
        .map(|c| {
            let r = ratio(c.wasm.p50, c.native.p50);
            format!(
                "{} {:.1}x {}",
                c.id,
                r,
                if r <= GOAL_RATIO { "met" } else { "MISSED" }
            )
        })
        .collect();
    println!(
        "   goal wasm p50 within {GOAL_RATIO}x of native: {}",
        verdicts.join(", ")
    );
    if backtraces_captured() {
        println!(
            "   note: RUST_BACKTRACE/RUST_LIB_BACKTRACE is on; errors that capture a backtrace cost more (unset it to compare)"
        );
    }
}

/// Whether `std::backtrace::Backtrace::capture` does real work in this process.
fn backtraces_captured() -> bool {
    let on = |name: &str| std::env::var(name).ok().map(|v| v != "0");
    on("RUST_LIB_BACKTRACE")
        .or_else(|| on("RUST_BACKTRACE"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both connectors, built, against their native baselines: `measure` refuses
    /// to time anything unless each side returns the same outcome.
    #[tokio::test]
    async fn native_baselines_match_the_connectors() {
        let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist");
        check_built(&dist).expect("run `bash plugins/build.sh`");
        let costs = measure(&dist, 10).await.unwrap();
        assert_eq!(costs.len(), 2);
        assert!(
            costs
                .iter()
                .all(|c| c.wasm.count == 10 && c.native.count == 10)
        );
    }
}
