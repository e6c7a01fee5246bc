//! `socket-hub-load`: named load scenarios against Socket-Hub or the peer hubs of
//! `bench/peers`, over real sockets on this machine.
//!
//! Scenarios: `idle` (hold N joined connections; RSS per connection), `connect-storm`
//! (N connections at once; time-to-ready), `hot-room` (one room, M members, S senders;
//! deliveries/s and latency) and `many-rooms` (R rooms of K, everyone sends;
//! messages/s and latency). Every message carries the microsecond it was sent on this
//! process's monotonic clock and every receiver is in this process, so latency is end
//! to end with one clock and no skew.
//!
//! The binary is a thin shell over [`run`]; the smoke tests call [`run`] directly
//! against an in-process server.
//!
//! ```text
//! socket-hub-load --target socket-hub --url http://127.0.0.1:8080 \
//!     --scenario hot-room --members 100 --senders 10 --rate 50 --duration-secs 10 --json
//! ```

mod histogram;
mod hold;
mod link;
mod options;
mod probe;
mod report;
mod setup;
mod traffic;

pub use histogram::{Histogram, Quantiles};
pub use hold::worker_main;
pub use options::{Options, Scenario, Target};
pub use probe::{Probe, Sample};
pub use report::{Report, ServerUsage};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line asks for something that cannot run.
    #[error("invalid options: {0}")]
    Invalid(String),
    /// Accounts, rooms or memberships could not be created.
    #[error("setup: {0}")]
    Setup(String),
    /// Connections could not be opened or joined.
    #[error("connect: {0}")]
    Connect(String),
    /// The server said something unexpected, or a send failed.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A worker process misbehaved.
    #[error("worker: {0}")]
    Worker(String),
    /// Local I/O (spawning workers, pipes).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Runs the scenario `options` describe and returns its report (also printing a line
/// when connections are up, since an idle hold lasts a while).
pub async fn run(options: Options) -> Result<Report, LoadError> {
    let options = options.normalized()?;
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let layout = setup::setup(&options, &run_id).await?;
    let probe = options.server_pid.map(Probe::new);
    match options.scenario {
        Scenario::Idle | Scenario::ConnectStorm => hold::run(&options, layout, probe).await,
        Scenario::HotRoom | Scenario::ManyRooms => traffic::run(&options, layout, probe).await,
    }
}
