//! What the voice benchmarks share: their arguments, the loopback address they run
//! on, and CPU time read from `/proc`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Every socket of the benchmark is on loopback.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `switchboard-bench voice` options.
#[derive(Args, Debug)]
pub struct VoiceBenchArgs {
    /// Where built plugins are (routing-default is installed when present).
    #[arg(long, default_value = "plugins/dist")]
    pub plugins_dir: PathBuf,
    /// Call setup rates to try, calls per second, lowest first. The server stops at its
    /// first failed step; the sipp baseline runs every step.
    #[arg(long, value_delimiter = ',', default_value = "100,250,500,750,1000,1500,2000",
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub rates: Vec<u32>,
    /// Seconds of calls at each rate.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub step_seconds: u32,
    /// Concurrent bridged calls in the relay runs (three UDP sockets each).
    #[arg(long, value_delimiter = ',', default_value = "100,500",
          value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub calls: Vec<u32>,
    /// Seconds measured in each relay run, after a 1 s warm-up.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// The sipp binary (Debian/Ubuntu: apt-get install sip-tester).
    #[arg(long, default_value = "sipp")]
    pub sipp: PathBuf,
    /// Skip part 1 (call setup with sipp).
    #[arg(long)]
    pub no_sipp: bool,
    /// Skip part 2 (relay cost).
    #[arg(long)]
    pub no_relay: bool,
}

// ---------------------------------------------------------------------------
// CPU time from /proc
// ---------------------------------------------------------------------------

/// CPU time of this whole process so far (`/proc/self/stat`, in USER_HZ ticks).
pub fn process_cpu() -> Option<ThreadCpu> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (user, sys) = stat_times(&stat)?;
    Some(ThreadCpu {
        total: ticks(user + sys),
        user: ticks(user),
        system: ticks(sys),
    })
}

/// `utime` and `stime` of a `/proc/.../stat` line, in ticks.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime 14, stime 15.
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// The calling thread's id, from `/proc/thread-self` (`pid/task/tid`).
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU time of a set of threads: on-CPU nanoseconds from `schedstat`, and the
/// user/kernel split from `stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu {
    /// User plus system time.
    pub total: Duration,
    user: Duration,
    system: Duration,
}

impl ThreadCpu {
    pub fn of(tids: &[u32]) -> ThreadCpu {
        let mut cpu = ThreadCpu::default();
        for tid in tids {
            let base = format!("/proc/self/task/{tid}");
            if let Some(ns) = std::fs::read_to_string(format!("{base}/schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            {
                cpu.total += Duration::from_nanos(ns);
            }
            if let Some((user, sys)) = std::fs::read_to_string(format!("{base}/stat"))
                .ok()
                .and_then(|s| stat_times(&s))
            {
                cpu.user += ticks(user);
                cpu.system += ticks(sys);
            }
        }
        cpu
    }

    pub fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            total: self.total.saturating_sub(earlier.total),
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// The kernel's share of the time, from the tick-based split.
    pub fn system_share(&self) -> f64 {
        let both = (self.user + self.system).as_secs_f64();
        if both > 0.0 {
            self.system.as_secs_f64() / both
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_skip_a_command_name_with_spaces() {
        let line =
            "4242 (tokio runtime worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 12 0 0 20 0 9 0";
        assert_eq!(stat_times(line), Some((37, 12)));
    }
}
