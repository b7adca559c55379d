//! What every report says about the machine it ran on: the build, the CPUs and the
//! load average, so a reader can tell a quiet run from a busy one.

/// The 1/5/15-minute load averages, when the system tells them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The report's first line: `switchboard-bench NAME: release build, 2 CPUs, load average …`.
pub fn print_header(name: &str) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let build = if cfg!(debug_assertions) {
        "debug (numbers are not meaningful; use --release)"
    } else {
        "release"
    };
    println!(
        "switchboard-bench {name}: {build} build, {cpus} CPUs, load average {}",
        load_average()
    );
}
