//! A run's result: printed for people, and as one JSON line for `bench/run`.

use serde::{Deserialize, Serialize};

use crate::histogram::Quantiles;
use crate::options::Options;
use crate::probe::Sample;
use crate::setup::Layout;

/// Everything one scenario run measured. Fields a scenario does not measure are `None`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    /// Connections the scenario opens.
    pub connections: usize,
    pub users: usize,
    pub rooms: usize,
    /// Processes that held the connections.
    pub procs: usize,
    /// Seconds spent before the measured phase (accounts, rooms).
    pub setup_secs: f64,
    pub connections_up: Option<u64>,
    /// Connection attempts that failed.
    pub failed: u64,
    /// Connections the server closed during the measured phase.
    pub dropped: u64,
    /// A few distinct error messages, for diagnosis.
    pub errors: Vec<String>,
    /// Seconds from the first connection attempt until every attempt finished.
    pub up_secs: Option<f64>,
    /// Time-to-ready per connection: TCP connect until the room join is confirmed.
    pub ready_ms: Option<Quantiles>,
    /// Messages per second the senders were told to send, all together.
    pub offered_per_sec: Option<f64>,
    pub messages_sent: Option<u64>,
    pub messages_acked: Option<u64>,
    pub deliveries: Option<u64>,
    pub expected_deliveries: Option<u64>,
    /// Acks per second, from the start until the last ack.
    pub messages_per_sec: Option<f64>,
    /// Deliveries per second, from the start until the last delivery.
    pub deliveries_per_sec: Option<f64>,
    /// Seconds from the start signal until every connection finished.
    pub wall_secs: Option<f64>,
    /// Send until a member received it (every member, the sender included).
    pub delivery_ms: Option<Quantiles>,
    /// Send until the sender's ack (Socket-Hub: stored durably; peers: broadcast queued).
    pub ack_ms: Option<Quantiles>,
    /// Deliveries out of `seq` order or with a gap (Socket-Hub only).
    pub order_errors: u64,
    /// `error` frames received (e.g. rate limited).
    pub error_frames: u64,
    /// Connections still missing deliveries or acks when the drain time ran out.
    pub timed_out: u64,
    /// The server process, when `--server-pid` was given.
    pub server: Option<ServerUsage>,
    /// This process's own CPU over the measured phase (traffic scenarios), µs: when it
    /// nears the phase's wall time × cores, the load generator was the bottleneck.
    pub client_cpu_us: Option<u64>,
}

/// The server process's cost over the measured phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerUsage {
    /// CPU time (user + system) spent in the measured phase, µs (10 ms resolution).
    pub cpu_us: u64,
    pub rss_kib_before: u64,
    pub rss_kib_after: u64,
    /// RSS at the end of an idle hold.
    pub rss_kib_end: Option<u64>,
    /// (RSS after − RSS before) / connections up.
    pub rss_bytes_per_connection: Option<f64>,
    pub cpu_us_per_connection: Option<f64>,
    pub cpu_us_per_delivery: Option<f64>,
    pub cpu_us_per_message: Option<f64>,
}

impl Report {
    /// A report with the run's shape filled in.
    pub(crate) fn new(options: &Options, layout: &Layout) -> Self {
        Self {
            scenario: options.scenario.name().to_owned(),
            target: match options.target {
                crate::Target::SocketHub => "socket-hub".into(),
                crate::Target::Peer => "peer".into(),
            },
            connections: options.total_connections(),
            users: layout.users,
            rooms: layout.rooms.len(),
            procs: 1,
            setup_secs: layout.setup_secs,
            ..Self::default()
        }
    }

    /// Fills `server` from samples at the phase's start and end.
    pub(crate) fn set_server(
        &mut self,
        before: Option<Sample>,
        after: Option<Sample>,
        connections: Option<u64>,
        deliveries: Option<u64>,
        messages: Option<u64>,
    ) {
        let (Some(before), Some(after)) = (before, after) else {
            return;
        };
        let cpu_us = after.cpu_us.saturating_sub(before.cpu_us);
        let per = |n: Option<u64>| n.filter(|n| *n > 0).map(|n| cpu_us as f64 / n as f64);
        self.server = Some(ServerUsage {
            cpu_us,
            rss_kib_before: before.rss_kib,
            rss_kib_after: after.rss_kib,
            rss_kib_end: None,
            rss_bytes_per_connection: connections
                .filter(|n| *n > 0)
                .map(|n| (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / n as f64),
            cpu_us_per_connection: per(connections),
            cpu_us_per_delivery: per(deliveries),
            cpu_us_per_message: per(messages),
        });
    }

    /// The one-line JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "== {} against {}: {} connections, {} users, {} room(s), {} process(es); setup {:.1} s",
            self.scenario,
            self.target,
            self.connections,
            self.users,
            self.rooms,
            self.procs,
            self.setup_secs
        )?;
        if let (Some(up), Some(secs)) = (self.connections_up, self.up_secs) {
            writeln!(
                f,
                "connections up:   {up} in {secs:.2} s ({} failed)",
                self.failed
            )?;
        }
        if let Some(q) = &self.ready_ms {
            writeln!(f, "time-to-ready ms: {q}")?;
        }
        if let (Some(sent), Some(acked)) = (self.messages_sent, self.messages_acked) {
            writeln!(
                f,
                "messages:         {sent} sent, {acked} acked; {:.0} msg/s (offered {:.0})",
                self.messages_per_sec.unwrap_or(0.0),
                self.offered_per_sec.unwrap_or(0.0)
            )?;
        }
        if let (Some(got), Some(expected)) = (self.deliveries, self.expected_deliveries) {
            writeln!(
                f,
                "deliveries:       {got} of {expected}; {:.0} deliveries/s",
                self.deliveries_per_sec.unwrap_or(0.0)
            )?;
        }
        if let Some(q) = &self.delivery_ms {
            writeln!(f, "delivery ms:      {q}")?;
        }
        if let Some(q) = &self.ack_ms {
            writeln!(f, "ack ms:           {q}")?;
        }
        if let Some(s) = &self.server {
            write!(
                f,
                "server:           {:.2} s CPU; RSS {} -> {} KiB",
                s.cpu_us as f64 / 1e6,
                s.rss_kib_before,
                s.rss_kib_after
            )?;
            if let Some(end) = s.rss_kib_end {
                write!(f, " (end of hold {end} KiB)")?;
            }
            writeln!(f)?;
            if let Some(b) = s.rss_bytes_per_connection {
                writeln!(f, "                  {:.0} B RSS per connection", b)?;
            }
            if let Some(us) = s.cpu_us_per_delivery {
                writeln!(f, "                  {us:.2} µs CPU per delivery")?;
            }
            if let Some(us) = s.cpu_us_per_message {
                writeln!(f, "                  {us:.1} µs CPU per message")?;
            }
        }
        if let (Some(cpu), Some(wall)) = (self.client_cpu_us, self.wall_secs) {
            writeln!(
                f,
                "load generator:   {:.2} s CPU over {wall:.2} s (its own, all cores)",
                cpu as f64 / 1e6
            )?;
        }
        let problems =
            self.failed + self.dropped + self.order_errors + self.error_frames + self.timed_out;
        if problems > 0 {
            writeln!(
                f,
                "problems:         {} failed, {} dropped, {} out of order, {} error frames, {} timed out",
                self.failed, self.dropped, self.order_errors, self.error_frames, self.timed_out
            )?;
            for e in &self.errors {
                writeln!(f, "                  {e}")?;
            }
        }
        Ok(())
    }
}
