//! `idle` and `connect-storm`: open many connections, each joined to one room, and
//! hold them. Past one process's open-file limit the connections are split over worker
//! processes (this binary re-run with `--worker`), which report back as JSON lines.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::LoadError;
use crate::histogram::Histogram;
use crate::link::{Dial, HOLD_READ_BUFFER, Link};
use crate::options::{Options, Scenario};
use crate::probe::Probe;
use crate::report::Report;
use crate::setup::Layout;

/// Most distinct error messages kept for the report.
const KEEP_ERRORS: usize = 5;

/// One process's part of the connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Share {
    pub(crate) layout: Layout,
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) concurrency: usize,
    /// A worker releases its connections after this long even if never told to.
    pub(crate) max_hold_secs: u64,
}

/// What a share's connection attempts came to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ShareStats {
    pub(crate) up: u64,
    pub(crate) failed: u64,
    pub(crate) errors: Vec<String>,
    /// Time-to-ready per connection (TCP connect to room joined), µs.
    pub(crate) ready: Histogram,
    /// From the first attempt to the last connection up, seconds.
    pub(crate) elapsed_secs: f64,
}

impl ShareStats {
    fn merge(&mut self, other: ShareStats) {
        self.up += other.up;
        self.failed += other.failed;
        for e in other.errors {
            keep_error(&mut self.errors, e);
        }
        self.ready.merge(&other.ready);
        self.elapsed_secs = self.elapsed_secs.max(other.elapsed_secs);
    }
}

fn keep_error(errors: &mut Vec<String>, error: String) {
    if errors.len() < KEEP_ERRORS && !errors.contains(&error) {
        errors.push(error);
    }
}

/// Lines a worker prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WorkerLine {
    /// Every connection attempt finished; the live ones are being held.
    Up(ShareStats),
    /// Released; `dropped` connections had closed while held.
    Done { dropped: u64 },
}

/// Connections of one share, up and held until released.
pub(crate) struct Held {
    pub(crate) stats: ShareStats,
    release: watch::Sender<bool>,
    tasks: JoinSet<()>,
    dropped: Arc<AtomicU64>,
}

impl Held {
    /// Closes every held connection; returns how many had closed on their own before.
    pub(crate) async fn release(mut self) -> u64 {
        let _ = self.release.send(true);
        let all_closed = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(30), all_closed)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Opens the share's connections (at most `concurrency` attempts in flight), joins each
/// to its room, and returns once every attempt succeeded or failed.
pub(crate) async fn connect_share(share: Share) -> Held {
    let layout = Arc::new(share.layout);
    let (release, released) = watch::channel(false);
    let (report_tx, mut reports) = mpsc::channel::<Result<Duration, String>>(1024);
    let permits = Arc::new(Semaphore::new(share.concurrency.max(1)));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for c in share.first..share.first + share.count {
        let layout = layout.clone();
        let permits = permits.clone();
        let report = report_tx.clone();
        let mut released = released.clone();
        let dropped = dropped.clone();
        tasks.spawn(async move {
            let Ok(permit) = permits.acquire_owned().await else {
                return;
            };
            let t0 = Instant::now();
            let result = connect_and_join(&layout, c, HOLD_READ_BUFFER).await;
            drop(permit);
            let mut link = match result {
                Ok(link) => {
                    let _ = report.send(Ok(t0.elapsed())).await;
                    link
                }
                Err(e) => {
                    let _ = report.send(Err(e.to_string())).await;
                    return;
                }
            };
            drop(report);
            // Keep reading while held: pings get answered and presence frames do not
            // pile up in the server's queues.
            let room = layout.rooms.get(layout.room_of(c)).map_or(0, |r| r.id);
            loop {
                tokio::select! {
                    _ = released.changed() => break,
                    incoming = link.next(room) => {
                        if let crate::link::Incoming::Closed(_) = incoming {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
            link.close().await;
        });
    }
    drop(report_tx);
    let mut stats = ShareStats::default();
    while let Some(result) = reports.recv().await {
        match result {
            Ok(took) => {
                stats.up += 1;
                stats
                    .ready
                    .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
            }
            Err(e) => {
                stats.failed += 1;
                keep_error(&mut stats.errors, e);
            }
        }
    }
    stats.elapsed_secs = started.elapsed().as_secs_f64();
    Held {
        stats,
        release,
        tasks,
        dropped,
    }
}

/// Connects connection `c` of `layout` and joins it to its room.
pub(crate) async fn connect_and_join(
    layout: &Layout,
    c: usize,
    read_buffer: usize,
) -> Result<Link, LoadError> {
    let (url, addr) = layout.endpoint(c);
    let (token, user) = layout.identity(c);
    let dial = Dial {
        target: layout.target,
        url,
        addr,
        token,
        user,
        index: c,
        source_ips: layout.source_ips,
        read_buffer,
    };
    let mut link = Link::connect(&dial).await?;
    let room = layout
        .rooms
        .get(layout.room_of(c))
        .ok_or_else(|| LoadError::Setup(format!("no room for connection {c}")))?;
    link.join(room).await?;
    Ok(link)
}

/// Runs `idle` or `connect-storm` over one or more processes.
pub(crate) async fn run(
    options: &Options,
    layout: Layout,
    probe: Option<Probe>,
) -> Result<Report, LoadError> {
    let total = options.connections;
    let procs = options.process_count();
    let concurrency = options.connect_concurrency();
    let max_hold_secs = options.duration_secs + 120;
    let shares: Vec<Share> = (0..procs)
        .map(|p| {
            let first = total * p / procs;
            let last = total * (p + 1) / procs;
            Share {
                layout: layout.clone(),
                first,
                count: last - first,
                concurrency: concurrency.div_ceil(procs),
                max_hold_secs,
            }
        })
        .collect();

    let before = probe.and_then(|p| p.sample());
    let started = Instant::now();
    let (stats, release) = if procs == 1 {
        let share = shares
            .into_iter()
            .next()
            .ok_or_else(|| LoadError::Invalid("no share".into()))?;
        let held = connect_share(share).await;
        (held.stats.clone(), Release::Local(held))
    } else {
        let mut workers = Vec::with_capacity(procs);
        for share in &shares {
            workers.push(Worker::spawn(options, share).await?);
        }
        let mut stats = ShareStats::default();
        for worker in &mut workers {
            stats.merge(worker.up().await?);
        }
        (stats, Release::Workers(workers))
    };
    let up_secs = started.elapsed().as_secs_f64();
    let after = probe.and_then(|p| p.sample());
    let mut report = Report::new(options, &layout);
    report.procs = procs;
    report.connections_up = Some(stats.up);
    report.failed = stats.failed;
    report.errors = stats.errors.clone();
    report.up_secs = Some(up_secs);
    report.ready_ms = stats.ready.millis();
    report.set_server(before, after, Some(stats.up), None, None);
    println!(
        "{} of {total} connections up in {up_secs:.2} s ({} failed){}",
        stats.up,
        stats.failed,
        if options.scenario == Scenario::Idle {
            format!("; holding them for {} s", options.duration_secs)
        } else {
            String::new()
        }
    );
    if options.scenario == Scenario::Idle {
        tokio::time::sleep(Duration::from_secs(options.duration_secs)).await;
        // RSS again at the end of the hold: the figure after the server settled.
        if let (Some(server), Some(sample)) =
            (report.server.as_mut(), probe.and_then(|p| p.sample()))
        {
            server.rss_kib_end = Some(sample.rss_kib);
        }
    }
    report.dropped = release.release().await?;
    Ok(report)
}

/// How held connections are let go.
enum Release {
    Local(Held),
    Workers(Vec<Worker>),
}

impl Release {
    async fn release(self) -> Result<u64, LoadError> {
        match self {
            Release::Local(held) => Ok(held.release().await),
            Release::Workers(workers) => {
                let mut dropped = 0;
                for worker in workers {
                    dropped += worker.finish().await?;
                }
                Ok(dropped)
            }
        }
    }
}

/// A worker process holding one share.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn spawn(options: &Options, share: &Share) -> Result<Self, LoadError> {
        let exe = match &options.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        };
        let mut child = Command::new(exe)
            .arg("--worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| LoadError::Worker("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LoadError::Worker("no stdout".into()))?;
        let mut line =
            serde_json::to_string(share).map_err(|e| LoadError::Worker(e.to_string()))?;
        line.push('\n');
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await?;
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// The worker's `up` line.
    async fn up(&mut self) -> Result<ShareStats, LoadError> {
        match self.line().await? {
            WorkerLine::Up(stats) => Ok(stats),
            other => Err(LoadError::Worker(format!("expected up, got {other:?}"))),
        }
    }

    /// Lets the worker release its connections and waits for it to exit.
    async fn finish(mut self) -> Result<u64, LoadError> {
        drop(self.stdin.take());
        let dropped = match self.line().await? {
            WorkerLine::Done { dropped } => dropped,
            other => return Err(LoadError::Worker(format!("expected done, got {other:?}"))),
        };
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    return Err(LoadError::Worker(format!("worker exited with {status}")));
                }
            }
            Err(_) => {
                let _ = self.child.kill().await;
            }
        }
        Ok(dropped)
    }

    async fn line(&mut self) -> Result<WorkerLine, LoadError> {
        // Bounded: connecting a share is bounded per connection, and releasing too.
        let line = tokio::time::timeout(Duration::from_secs(3600), self.stdout.next_line())
            .await
            .map_err(|_| LoadError::Worker("worker silent for an hour".into()))??
            .ok_or_else(|| LoadError::Worker("worker exited early".into()))?;
        serde_json::from_str(&line).map_err(|e| LoadError::Worker(format!("{e}: {line}")))
    }
}

/// The `--worker` side: reads its share from stdin, connects, reports, holds until
/// stdin closes (or its share's time runs out), releases, reports again.
pub async fn worker_main() -> Result<(), LoadError> {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    stdin.read_line(&mut line).await?;
    let share: Share =
        serde_json::from_str(&line).map_err(|e| LoadError::Worker(format!("bad share: {e}")))?;
    let max_hold = Duration::from_secs(share.max_hold_secs);
    let held = connect_share(share).await;
    print_line(&WorkerLine::Up(held.stats.clone()))?;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        max_hold,
        tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut rest),
    )
    .await;
    let dropped = held.release().await;
    print_line(&WorkerLine::Done { dropped })
}

fn print_line(line: &WorkerLine) -> Result<(), LoadError> {
    let text = serde_json::to_string(line).map_err(|e| LoadError::Worker(e.to_string()))?;
    println!("{text}");
    Ok(())
}
