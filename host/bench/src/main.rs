//! `switchboard-bench`: Switchboard's benchmarks, outside the production binary.
//!
//! Every figure is printed next to a baseline measured in the same run on the same
//! machine, as a ratio; nothing here is a timed assertion. Everything runs on
//! loopback. The server under test is wired in-process the way `switchboard serve`
//! wires it (application layer, voice, HTTP edge), on a scratch database.
//!
//! ```sh
//! cargo run --release -p switchboard-bench             # connector call cost + end-to-end ingest
//! cargo run --release -p switchboard-bench -- plugin-call  # connector call cost alone (seconds)
//! cargo run --release -p switchboard-bench -- routing  # routing decisions/s, enqueue-to-offer latency
//! cargo run --release -p switchboard-bench -- voice    # call setup rate (sipp), relay CPU per packet
//! cargo run --release -p switchboard-bench -- login    # /healthz during a login storm
//! cargo run --release -p switchboard-bench -- email    # e-mail parse cost, mailbox to timeline, memory
//! cargo run --release -p switchboard-bench -- reports  # reports over a generated history, export, ingest cost
//! cargo run --release -p switchboard-bench -- crm      # CRM enrichment's added latency: cache hit, miss, no CRM
//! cargo run --release -p switchboard-bench -- failover # kill -9 of the routing leader -> the next offer (3 nodes)
//! cargo run --release -p switchboard-bench -- cluster-overhead  # webhooks/s through one node vs three
//! ```
//!
//! Log lines go to standard error and only at `warn` and above by default
//! (`SWITCHBOARD_LOG` to change), so they do not interleave with the report on
//! standard output; a clean run logs nothing. The benchmarks set the server up the
//! way an operator would (the voice queue exists, trunks are configured), so a
//! warning is worth reading, and failures are counted in the report itself.

mod cluster;
mod crm;
mod email;
mod ingest;
mod login;
mod machine;
mod plugin_call;
mod reports;
mod routing;
mod rss;
mod sample;
mod twilio;
mod voice;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Switchboard benchmarks, each against a baseline measured in the same run",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    ingest: ingest::BenchArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Plugin call cost and end-to-end ingest (the default).
    Ingest(ingest::BenchArgs),
    /// Connector call cost alone: sms-twilio and whatsapp-cloud on a fresh instance vs native.
    PluginCall(plugin_call::PluginCallArgs),
    /// Routing decisions per second and enqueue-to-offer latency, Wasm policy vs native.
    Routing(routing::RoutingBenchArgs),
    /// Call setup rate (sipp) and media relay CPU per packet, each against a baseline.
    Voice(voice::VoiceBenchArgs),
    /// /healthz latency during a storm of wrong logins, against the idle server.
    Login(login::LoginBenchArgs),
    /// E-mail: parse cost sandbox vs native, mailbox-to-timeline vs the mail server, memory of a large message.
    Email(email::EmailArgs),
    /// Reports at scale: a generated history, each report over 30 days, the export's memory, ingest with facts vs without.
    Reports(reports::ReportsArgs),
    /// CRM enrichment: added latency on the provider's answer and webhook-to-offer, cache hit / miss / no CRM.
    Crm(crm::CrmBenchArgs),
    /// Several nodes: kill -9 of the routing leader to the new leader's next offer, over 10 kills.
    Failover(cluster::FailoverArgs),
    /// Several nodes: webhooks per second through one node against three on this machine.
    ClusterOverhead(cluster::OverheadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = std::env::var("SWITCHBOARD_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Some(Command::Ingest(args)) => ingest::run(args).await,
            Some(Command::PluginCall(args)) => plugin_call::run(args).await,
            Some(Command::Routing(args)) => routing::run(args).await,
            Some(Command::Voice(args)) => voice::run(args).await,
            Some(Command::Login(args)) => login::run(args).await,
            Some(Command::Email(args)) => email::run(args).await,
            Some(Command::Reports(args)) => reports::run(args).await,
            Some(Command::Crm(args)) => crm::run(args).await,
            Some(Command::Failover(args)) => cluster::failover(args).await,
            Some(Command::ClusterOverhead(args)) => cluster::overhead(args).await,
            None => ingest::run(cli.ingest).await,
        }
    })
}
