//! Reads a server process's CPU time and resident memory from `/proc`.
//!
//! The load generator samples these itself because only it knows where the measured
//! phase starts and ends (after registration and connecting, before the first message).

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on every Linux
/// architecture this runs on.
const TICKS_PER_SEC: u64 = 100;

/// One server process to sample.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pid: u32,
}

/// CPU and memory of the probed process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// utime + stime, microseconds (10 ms resolution).
    pub cpu_us: u64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

impl Probe {
    /// A probe for process `pid`.
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// Samples now; `None` if the process is gone or /proc is unreadable.
    pub fn sample(&self) -> Option<Sample> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        Some(Sample {
            cpu_us: parse_cpu_us(&stat)?,
            rss_kib: parse_rss_kib(&status)?,
        })
    }
}

/// utime + stime from a `/proc/<pid>/stat` line, in microseconds.
fn parse_cpu_us(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces and parentheses: fields after it
    // start after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * (1_000_000 / TICKS_PER_SEC))
}

/// `VmRSS` from `/proc/<pid>/status`, in KiB.
fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_hostile_command_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_cpu_us(stat), Some(3_250_000));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_rss_kib(status), Some(12345));
    }

    #[test]
    fn samples_this_process() {
        let sample = Probe::new(std::process::id()).sample().expect("own /proc");
        assert!(sample.rss_kib > 0);
    }
}
