//! `hot-room` and `many-rooms`: every connection joins its room and reads; senders send
//! timestamped messages open-loop at a fixed rate (never waiting for acks), and every
//! delivery and ack is timed on this process's one monotonic clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use socket_hub_protocol::RoomId;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::LoadError;
use crate::histogram::SharedHistogram;
use crate::hold::connect_and_join;
use crate::link::{Incoming, Link, RoomRef, TRAFFIC_READ_BUFFER};
use crate::options::{Options, Scenario};
use crate::probe::Probe;
use crate::report::Report;
use crate::setup::Layout;

/// What every connection task shares.
struct Run {
    clock: Instant,
    delivery: SharedHistogram,
    ack: SharedHistogram,
    padding: String,
    /// Messages each sender sends.
    per_sender: u64,
    period: Duration,
    duration: Duration,
    drain: Duration,
}

/// The phase every connection task waits on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Connecting,
    Go(tokio::time::Instant),
    Abort,
}

/// One connection's counts.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    acked: u64,
    delivered: u64,
    expected: u64,
    errors: u64,
    first_error: Option<String>,
    order_errors: u64,
    last_delivery_us: u64,
    last_ack_us: u64,
    timed_out: bool,
    closed: Option<String>,
}

/// Runs `hot-room` or `many-rooms`.
pub(crate) async fn run(
    options: &Options,
    layout: Layout,
    probe: Option<Probe>,
) -> Result<Report, LoadError> {
    let total = options.total_connections();
    let per_sender = ((options.rate * options.duration_secs as f64).round() as u64).max(1);
    let run = Arc::new(Run {
        clock: Instant::now(),
        delivery: SharedHistogram::new(),
        ack: SharedHistogram::new(),
        padding: "x".repeat(options.payload),
        per_sender,
        period: Duration::from_secs_f64(1.0 / options.rate),
        duration: Duration::from_secs(options.duration_secs),
        drain: Duration::from_secs(options.drain_secs),
    });
    let senders_per_room = match options.scenario {
        Scenario::HotRoom => options.senders,
        _ => options.room_size,
    };
    let is_sender = |c: usize| match options.scenario {
        Scenario::HotRoom => c < options.senders,
        _ => true,
    };
    let layout = Arc::new(layout);
    let (phase_tx, phase) = watch::channel(Phase::Connecting);
    let (ready_tx, mut ready) = mpsc::channel::<Result<(), String>>(1024);
    let permits = Arc::new(Semaphore::new(options.connect_concurrency()));
    let mut tasks = JoinSet::new();
    for c in 0..total {
        let layout = layout.clone();
        let run = run.clone();
        let ready = ready_tx.clone();
        let permits = permits.clone();
        let phase = phase.clone();
        let sender = is_sender(c);
        let expected = senders_per_room as u64 * per_sender;
        tasks.spawn(async move {
            let connected = match permits.acquire_owned().await {
                Ok(_permit) => connect_and_join(&layout, c, TRAFFIC_READ_BUFFER).await,
                Err(_) => Err(LoadError::Connect("closed".into())),
            };
            let link = match connected {
                Ok(link) => {
                    let _ = ready.send(Ok(())).await;
                    link
                }
                Err(e) => {
                    let _ = ready.send(Err(e.to_string())).await;
                    return Counts::default();
                }
            };
            drop(ready);
            let room = layout
                .rooms
                .get(layout.room_of(c))
                .cloned()
                .unwrap_or(RoomRef {
                    id: 0,
                    name: String::new(),
                });
            member(link, c, room, sender, expected, run, phase).await
        });
    }
    drop(ready_tx);
    let mut failed = 0u64;
    let mut errors = Vec::new();
    while let Some(result) = ready.recv().await {
        if let Err(e) = result {
            failed += 1;
            if errors.len() < 5 && !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    let mut report = Report::new(options, &layout);
    report.connections_up = Some(total as u64 - failed);
    report.failed = failed;
    if failed > 0 {
        let _ = phase_tx.send(Phase::Abort);
        while tasks.join_next().await.is_some() {}
        return Err(LoadError::Connect(format!(
            "{failed} of {total} connections failed; first errors: {}",
            errors.join("; ")
        )));
    }
    println!(
        "{total} connections joined ({} room(s)); sending for {} s",
        layout.rooms.len(),
        options.duration_secs
    );

    let me = Probe::new(std::process::id());
    let me_before = me.sample();
    let before = probe.and_then(|p| p.sample());
    let start = tokio::time::Instant::now();
    let _ = phase_tx.send(Phase::Go(start));
    let mut counts = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        counts.push(joined.map_err(|e| LoadError::Protocol(format!("task: {e}")))?);
    }
    let wall = start.elapsed();
    let after = probe.and_then(|p| p.sample());
    if let (Some(a), Some(b)) = (me_before, me.sample()) {
        report.client_cpu_us = Some(b.cpu_us.saturating_sub(a.cpu_us));
    }

    let sum = |f: fn(&Counts) -> u64| counts.iter().map(f).sum::<u64>();
    let sent = sum(|c| c.sent);
    let acked = sum(|c| c.acked);
    let delivered = sum(|c| c.delivered);
    let last_delivery = counts.iter().map(|c| c.last_delivery_us).max().unwrap_or(0);
    let last_ack = counts.iter().map(|c| c.last_ack_us).max().unwrap_or(0);
    report.messages_sent = Some(sent);
    report.messages_acked = Some(acked);
    report.deliveries = Some(delivered);
    report.expected_deliveries = Some(sum(|c| c.expected));
    report.order_errors = sum(|c| c.order_errors);
    report.error_frames = sum(|c| c.errors);
    report.timed_out = counts.iter().filter(|c| c.timed_out).count() as u64;
    report.dropped = counts.iter().filter(|c| c.closed.is_some()).count() as u64;
    report.errors = counts
        .iter()
        .filter_map(|c| c.first_error.clone().or_else(|| c.closed.clone()))
        .take(5)
        .collect();
    report.offered_per_sec = Some(
        options.rate
            * match options.scenario {
                Scenario::HotRoom => options.senders,
                _ => total,
            } as f64,
    );
    report.wall_secs = Some(wall.as_secs_f64());
    report.messages_per_sec = Some(rate(acked, last_ack));
    report.deliveries_per_sec = Some(rate(delivered, last_delivery));
    report.delivery_ms = run.delivery.snapshot().millis();
    report.ack_ms = run.ack.snapshot().millis();
    report.set_server(before, after, None, Some(delivered), Some(acked));
    Ok(report)
}

/// `count` per second over `micros`.
fn rate(count: u64, micros: u64) -> f64 {
    if micros == 0 {
        0.0
    } else {
        count as f64 * 1e6 / micros as f64
    }
}

/// One connection from the start signal on: send (if a sender), receive, time.
async fn member(
    mut link: Link,
    c: usize,
    room: RoomRef,
    sender: bool,
    expected: u64,
    run: Arc<Run>,
    mut phase: watch::Receiver<Phase>,
) -> Counts {
    let mut counts = Counts {
        expected,
        ..Counts::default()
    };
    // Until the start, keep reading so presence frames do not back up. The phase comes
    // first (`biased`), but a room-mate that saw the start may already have sent, and
    // this task can read that message before it sees the start itself (the two
    // branches are polled one after the other, and the thread may be preempted in
    // between): nobody sends before the start, so such a frame is the run's, kept for
    // counting below. (Dropping it made every server, peers included, show a few
    // deliveries "timed out" on a busy machine.)
    let mut early = Vec::new();
    let start = loop {
        let current = *phase.borrow_and_update();
        match current {
            Phase::Go(start) => break start,
            Phase::Abort => return counts,
            Phase::Connecting => {}
        }
        tokio::select! {
            biased;
            changed = phase.changed() => if changed.is_err() { return counts },
            incoming = link.next(room.id) => match incoming {
                Incoming::Closed(why) => {
                    counts.closed = Some(why);
                    return counts;
                }
                Incoming::Msg { .. } | Incoming::Ack { .. } => early.push(incoming),
                Incoming::Error(_) | Incoming::Other => {}
            },
        }
    };
    let planned = if sender { run.per_sender } else { 0 };
    // Senders start at a random point of their first period so they do not tick in step.
    let offset = run.period.mul_f64(rand::random::<f64>());
    let mut tick = tokio::time::interval_at(start + offset, run.period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let deadline = tokio::time::sleep_until(start + run.duration + run.drain);
    tokio::pin!(deadline);
    let mut tally = Tally {
        room_id: room.id,
        run: &run,
        started_us: u64::try_from(
            start
                .into_std()
                .saturating_duration_since(run.clock)
                .as_micros(),
        )
        .unwrap_or(0),
        last_seq: None,
    };
    for incoming in early {
        tally.take(&mut counts, incoming);
    }
    while counts.delivered < expected || counts.acked < planned {
        tokio::select! {
            _ = tick.tick(), if counts.sent < planned => {
                let now = micros(run.clock);
                let id = format!("{now}.{c}.{}", counts.sent);
                let body = format!("{now} {}", run.padding);
                if let Err(e) = link.send(&room, &id, body).await {
                    counts.closed = Some(e.to_string());
                    break;
                }
                counts.sent += 1;
            }
            incoming = link.next(room.id) => {
                if !tally.take(&mut counts, incoming) {
                    break;
                }
            }
            _ = &mut deadline => {
                counts.timed_out = true;
                break;
            }
        }
    }
    link.close().await;
    counts
}

/// What a connection needs to count what it reads.
struct Tally<'a> {
    room_id: RoomId,
    run: &'a Run,
    /// The start, in microseconds on `run.clock`.
    started_us: u64,
    last_seq: Option<i64>,
}

impl Tally<'_> {
    /// Counts one incoming frame; `false` once the connection closed.
    fn take(&mut self, counts: &mut Counts, incoming: Incoming) -> bool {
        match incoming {
            Incoming::Msg { room, sent_at, seq } if room == self.room_id => {
                counts.delivered += 1;
                // One clock read per frame: `started_us` is a fixed offset on the clock.
                let now = micros(self.run.clock);
                self.run.delivery.record(now.saturating_sub(sent_at));
                counts.last_delivery_us = now.saturating_sub(self.started_us);
                if let Some(seq) = seq {
                    if self.last_seq.is_some_and(|last| seq != last + 1) {
                        counts.order_errors += 1;
                    }
                    self.last_seq = Some(seq);
                }
            }
            Incoming::Ack { sent_at } => {
                counts.acked += 1;
                let now = micros(self.run.clock);
                self.run.ack.record(now.saturating_sub(sent_at));
                counts.last_ack_us = now.saturating_sub(self.started_us);
            }
            Incoming::Error(e) => {
                counts.errors += 1;
                counts.first_error.get_or_insert(e);
            }
            Incoming::Msg { .. } | Incoming::Other => {}
            Incoming::Closed(why) => {
                counts.closed = Some(why);
                return false;
            }
        }
        true
    }
}

/// Microseconds since `since`, saturating (so an instant in the future reads 0).
fn micros(since: Instant) -> u64 {
    u64::try_from(Instant::now().saturating_duration_since(since).as_micros()).unwrap_or(u64::MAX)
}
