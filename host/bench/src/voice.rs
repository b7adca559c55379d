//! `switchboard-bench voice`: how many calls a second the voice service sets up
//! ([`call_setup`], next to `sipp -sn uas`), and what its media relay costs per
//! packet ([`relay`], next to a bare UDP forwarder). Every baseline is measured in
//! the same run on the same machine, and nothing here asserts a timing. The command
//! fails only when it cannot measure: sipp missing, a server that does not start,
//! sockets that cannot be bound.
//!
//! This module holds the report's frame; the options and the CPU clocks both parts
//! read from `/proc` are in [`measure`].

pub(crate) mod call_setup;
mod measure;
mod relay;

pub use measure::VoiceBenchArgs;

use crate::machine::{load_average, print_header};

/// Runs the parts asked for and prints the report.
pub async fn run(mut args: VoiceBenchArgs) -> anyhow::Result<()> {
    print_header("voice");
    println!();
    args.rates.sort_unstable();
    args.rates.dedup();
    let mut goals = Vec::new();
    if !args.no_sipp {
        let setup = call_setup::run(&args).await?;
        goals.push(setup.goal());
        println!();
    }
    if !args.no_relay {
        let relay = relay::run(&args).await?;
        goals.extend(relay.goal());
        println!();
    }
    println!("Goals");
    for (what, value, met) in &goals {
        println!(
            "    {what:<48} {value:>14}   {}",
            if *met { "met" } else { "MISSED" }
        );
    }
    println!("    load average at the end {}", load_average());
    Ok(())
}
