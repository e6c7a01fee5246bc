//! The command line, shared by the binary and the smoke tests (which build it with
//! `Options::try_parse_from`, so both exercise the same defaults and validation).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::LoadError;

/// Which kind of server is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Socket-Hub's real protocol through the client SDK (REST setup, tokens, acks after
    /// the message is stored).
    SocketHub,
    /// The minimal join/send/broadcast protocol of `bench/peers/README.md`.
    Peer,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `--connections` connections joined to one room, held idle: how long until all
    /// are up, and the server's RSS per connection.
    Idle,
    /// `--connections` connections opened at once: time-to-ready percentiles.
    ConnectStorm,
    /// One room of `--members`, `--senders` of them sending at `--rate` each:
    /// deliveries/s, delivery and ack latency.
    HotRoom,
    /// `--rooms` rooms of `--room-size` members, everyone sending at `--rate`:
    /// messages/s and latency.
    ManyRooms,
}

impl Scenario {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::ConnectStorm => "connect-storm",
            Self::HotRoom => "hot-room",
            Self::ManyRooms => "many-rooms",
        }
    }
}

/// Command line of `socket-hub-load`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "socket-hub-load",
    about = "Load generator for Socket-Hub and the peer hubs in bench/peers (loopback only)"
)]
pub struct Options {
    /// Server kind.
    #[arg(long, value_enum, default_value = "socket-hub")]
    pub target: Target,
    /// Scenario to run.
    #[arg(long, value_enum, default_value = "hot-room")]
    pub scenario: Scenario,
    /// Server base URLs (loopback only), comma-separated; connections are spread over
    /// them round-robin (Socket-Hub clusters). The peer target takes exactly one.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    pub url: Vec<String>,
    /// Connections for `idle` and `connect-storm`.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Members of the `hot-room` room (one connection each, senders included).
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Members of the `hot-room` room that send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Rooms for `many-rooms`.
    #[arg(long, default_value_t = 1000)]
    pub rooms: usize,
    /// Members per room for `many-rooms` (all of them send).
    #[arg(long, default_value_t = 5)]
    pub room_size: usize,
    /// Messages per second per sender (may be fractional).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// How long senders send (traffic scenarios), or how long `idle` holds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Longest wait after the senders stop for outstanding deliveries and acks.
    #[arg(long, default_value_t = 30)]
    pub drain_secs: u64,
    /// Message body padding in bytes (on top of the timestamp).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Distinct users (Socket-Hub accounts; peer user ids); connection `i` is user
    /// `i % users`. 0 means min(connections, 200): registering is deliberately slow
    /// (argon2), so large runs share accounts.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Connection attempts in flight at once; 0 means the scenario's default (all of
    /// them for `connect-storm`, 256 otherwise).
    #[arg(long, default_value_t = 0)]
    pub concurrency: usize,
    /// Processes for `idle` and `connect-storm` (one process may open at most about
    /// 19,500 sockets here); 0 means one per 15,000 connections.
    #[arg(long, default_value_t = 0)]
    pub procs: usize,
    /// Spread client source addresses over 127.0.0.2 .. 127.0.0.(1 + N), so one
    /// address's ephemeral ports do not run out; 0 lets the kernel choose.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u8))]
    pub source_ips: u8,
    /// Server process id: its CPU time (utime + stime) and RSS are read from /proc at
    /// the measured phase's boundaries, which only this tool knows.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also print the result as one JSON line (the last line of stdout).
    #[arg(long)]
    pub json: bool,
    /// Old spelling of `--scenario idle --connections N`.
    #[arg(long, hide = true)]
    pub idle: Option<usize>,
    /// Old spelling: `--receivers R` means a hot room of R + senders members.
    #[arg(long, hide = true)]
    pub receivers: Option<usize>,
    /// Executable re-run for extra processes (defaults to this one; tests pass the
    /// built binary because their own executable is the test harness).
    #[arg(long, hide = true)]
    pub exe: Option<PathBuf>,
    /// Internal: run as a worker process, reading its share from stdin.
    #[arg(long, hide = true)]
    pub worker: bool,
}

/// Upper bound on connections per run: loops stay bounded whatever the flags say.
pub(crate) const MAX_CONNECTIONS: usize = 250_000;

impl Options {
    /// Applies the legacy spellings and checks the numbers before any traffic starts.
    pub fn normalized(mut self) -> Result<Self, LoadError> {
        if let Some(count) = self.idle.take() {
            self.scenario = Scenario::Idle;
            self.connections = count;
        }
        if let Some(receivers) = self.receivers.take() {
            self.members = receivers + self.senders;
        }
        let invalid = |why: &str| Err(LoadError::Invalid(why.to_owned()));
        if self.url.is_empty() {
            return invalid("need a --url");
        }
        if self.target == Target::Peer && self.url.len() != 1 {
            return invalid("the peer target takes exactly one --url");
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100_000.0) {
            return invalid("--rate must be in (0, 100000]");
        }
        if self.duration_secs == 0 || self.duration_secs > 3600 || self.drain_secs > 600 {
            return invalid("--duration-secs must be 1..=3600 and --drain-secs at most 600");
        }
        if self.payload > 3000 {
            return invalid("--payload must be at most 3000 bytes");
        }
        let total = self.total_connections();
        if total == 0 || total > MAX_CONNECTIONS {
            return invalid("the scenario needs between 1 and 250000 connections");
        }
        match self.scenario {
            Scenario::HotRoom if self.senders == 0 || self.senders > self.members => {
                return invalid("--senders must be 1..=--members");
            }
            Scenario::ManyRooms if self.rooms == 0 || self.room_size == 0 => {
                return invalid("--rooms and --room-size must be positive");
            }
            _ => {}
        }
        Ok(self)
    }

    /// Connections the scenario opens.
    pub fn total_connections(&self) -> usize {
        match self.scenario {
            Scenario::Idle | Scenario::ConnectStorm => self.connections,
            Scenario::HotRoom => self.members,
            Scenario::ManyRooms => self.rooms.saturating_mul(self.room_size),
        }
    }

    /// Distinct users after applying the default.
    pub fn user_count(&self) -> usize {
        if self.users == 0 {
            self.total_connections().clamp(1, 200)
        } else {
            self.users.min(self.total_connections()).max(1)
        }
    }

    /// Attempts in flight after applying the scenario's default.
    pub(crate) fn connect_concurrency(&self) -> usize {
        match (self.concurrency, self.scenario) {
            (0, Scenario::ConnectStorm) => self.total_connections(),
            (0, _) => 256,
            (n, _) => n,
        }
    }

    /// Processes after applying the default (traffic scenarios use one, so every
    /// latency is timed on one clock).
    pub(crate) fn process_count(&self) -> usize {
        match self.scenario {
            Scenario::Idle | Scenario::ConnectStorm => {
                let wanted = if self.procs == 0 {
                    self.connections.div_ceil(15_000)
                } else {
                    self.procs
                };
                wanted.clamp(1, self.connections.max(1))
            }
            Scenario::HotRoom | Scenario::ManyRooms => 1,
        }
    }
}
