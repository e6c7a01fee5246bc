//! `socket-hub-load`: drives one room on one or more Socket-Hub instances with real
//! WebSocket clients and reports delivery throughput and latency percentiles.
//!
//! Every message carries the microsecond at which it was sent (on this process's
//! monotonic clock), and every receiver is in this process, so latency is measured
//! end to end (send, store, fan-out, receive) with one clock and no skew.
//!
//! ```text
//! socket-hub-load --url http://127.0.0.1:8081,http://127.0.0.1:8082 \
//!     --receivers 30 --senders 3 --rate 100 --duration-secs 20
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use socket_hub_client::{Auth, Client, Connection, Event};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{ClientFrame, RoomId, ServerFrame};
use tokio::sync::Mutex;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "socket-hub-load", about = "Load generator for Socket-Hub")]
struct Args {
    /// Instance base URLs, comma-separated; clients are spread over them round-robin.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    url: Vec<String>,
    /// Connections that only receive.
    #[arg(long, default_value_t = 30)]
    receivers: usize,
    /// Connections that send (and receive).
    #[arg(long, default_value_t = 3)]
    senders: usize,
    /// Messages per second per sender.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// How long the senders send.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Message content padding, in bytes (on top of the timestamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Instead of sending: open this many connections that join one room and stay
    /// idle, print when they are all up, and hold them for `--duration-secs` (to read
    /// the server's memory per idle connection).
    #[arg(long)]
    idle: Option<usize>,
}

/// Latencies in microseconds, recorded by every receiving connection.
#[derive(Default)]
struct Samples {
    delivery: Mutex<Vec<u64>>,
    ack: Mutex<Vec<u64>>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.url.is_empty() || args.senders == 0 || args.rate == 0 {
        bail!("need at least one --url, one sender and a positive --rate");
    }
    let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    if let Some(count) = args.idle {
        return hold_idle(&args, &run, count).await;
    }
    let clock = Instant::now();
    println!(
        "socket-hub-load: {} instance(s), {} receivers, {} senders x {} msg/s for {} s",
        args.url.len(),
        args.receivers,
        args.senders,
        args.rate,
        args.duration_secs
    );

    let (room_id, sessions) = setup(&args, &run).await?;
    let samples = Arc::new(Samples::default());
    let expected = u64::from(args.rate) * args.duration_secs * args.senders as u64;
    let received = Arc::new(AtomicU64::new(0));

    // Everyone connects and joins before the first message.
    let mut connections = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        let url = &args.url[i % args.url.len()];
        let mut ws = Connection::connect(url, Auth::Header(session.access_token.clone()))
            .await
            .with_context(|| format!("connect to {url}"))?;
        join(&mut ws, room_id).await?;
        connections.push(ws);
    }
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (i, ws) in connections.into_iter().enumerate() {
        if i < args.senders {
            senders.push(ws);
        } else {
            let samples = samples.clone();
            let received = received.clone();
            receivers.push(tokio::spawn(receive(
                ws, clock, expected, samples, received,
            )));
        }
    }
    let started = Instant::now();
    let mut sending = Vec::new();
    for (s, ws) in senders.into_iter().enumerate() {
        let args = (args.rate, args.duration_secs, args.payload);
        sending.push(tokio::spawn(send(
            ws,
            room_id,
            s,
            args,
            clock,
            expected,
            samples.clone(),
        )));
    }
    let mut sent = 0;
    for task in sending {
        sent += task.await??;
    }
    let send_time = started.elapsed();
    for task in receivers {
        task.await??;
    }
    let total_time = started.elapsed();
    report(
        sent,
        received.load(Ordering::Relaxed),
        send_time,
        total_time,
        &samples,
    )
    .await;
    Ok(())
}

/// Opens `count` connections of one user, each joined to one room, and holds them.
async fn hold_idle(args: &Args, run: &str, count: usize) -> Result<()> {
    let url = &args.url[0];
    let mut client = Client::new(url);
    let session = client
        .register(&format!("idle{run}"), "load-test-password")
        .await?;
    let room = client
        .create_room(&format!("idle {run}"), false, None)
        .await?
        .room;
    let started = Instant::now();
    let mut connections = Vec::with_capacity(count);
    for i in 0..count {
        let url = &args.url[i % args.url.len()];
        let mut ws = Connection::connect(url, Auth::Header(session.access_token.clone()))
            .await
            .with_context(|| format!("connection {i}"))?;
        join(&mut ws, room.id)
            .await
            .with_context(|| format!("join {i}"))?;
        connections.push(ws);
    }
    println!(
        "{count} idle connections up in {:.1} s; holding them for {} s",
        started.elapsed().as_secs_f64(),
        args.duration_secs
    );
    tokio::time::sleep(Duration::from_secs(args.duration_secs)).await;
    drop(connections);
    Ok(())
}

/// Joins `room_id` on `ws` and waits for `room_joined`.
async fn join(ws: &mut Connection, room_id: RoomId) -> Result<()> {
    ws.send(&ClientFrame::JoinRoom {
        room_id,
        since_seq: None,
        access_code: None,
    })
    .await?;
    ws.wait_for(Duration::from_secs(30), |f| {
        matches!(f, ServerFrame::RoomJoined { .. }).then_some(())
    })
    .await
    .context("join")?;
    Ok(())
}

/// Registers users, creates the room and makes everyone a member.
async fn setup(args: &Args, run: &str) -> Result<(RoomId, Vec<Session>)> {
    let total = args.senders + args.receivers;
    let mut registering = Vec::new();
    for i in 0..total {
        let url = args.url[i % args.url.len()].clone();
        let name = format!("load{run}x{i}");
        registering.push(tokio::spawn(async move {
            let mut client = Client::new(&url);
            let session = client.register(&name, "load-test-password").await?;
            Ok::<_, anyhow::Error>((client, session))
        }));
    }
    let mut users = Vec::new();
    for task in registering {
        users.push(task.await??);
    }
    let room = users[0]
        .0
        .create_room(&format!("load {run}"), false, None)
        .await?
        .room;
    for (client, _) in &users[1..] {
        client.join_room(room.id, None).await?;
    }
    Ok((room.id, users.into_iter().map(|(_, s)| s).collect()))
}

/// Sends at a fixed rate without waiting for acks (acks are timed as they come).
async fn send(
    mut ws: Connection,
    room_id: RoomId,
    sender: usize,
    (rate, duration_secs, payload): (u32, u64, usize),
    clock: Instant,
    expected: u64,
    samples: Arc<Samples>,
) -> Result<u64> {
    let count = u64::from(rate) * duration_secs;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let padding = "x".repeat(payload);
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut delivered = 0u64;
    let mut ack_times = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut delivery_times = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    let deadline = Duration::from_secs(duration_secs + 60);
    while acked < count || delivered < expected {
        if clock.elapsed() > deadline {
            bail!(
                "sender {sender}: timed out with {acked}/{count} acks, {delivered}/{expected} deliveries"
            );
        }
        tokio::select! {
            _ = tick.tick(), if sent < count => {
                let now = micros(clock);
                ws.send(&ClientFrame::MessageSend {
                    room_id,
                    client_msg_id: format!("{sender}-{sent}"),
                    content: format!("{now} {padding}"),
                })
                .await?;
                sent += 1;
            }
            event = ws.next_event() => match event? {
                Event::Frame(ServerFrame::Ack { message, .. }) => {
                    acked += 1;
                    ack_times.push(micros(clock).saturating_sub(sent_at(&message.content)));
                }
                Event::Frame(ServerFrame::Chat { message }) => {
                    delivered += 1;
                    delivery_times.push(micros(clock).saturating_sub(sent_at(&message.content)));
                }
                Event::Frame(ServerFrame::Error { code, message, .. }) => bail!("sender {sender}: {code}: {message}"),
                Event::Frame(_) => {}
                Event::Closed { code, reason } => bail!("sender {sender}: closed {code:?} {reason}"),
            },
        }
    }
    samples.ack.lock().await.extend(ack_times);
    samples.delivery.lock().await.extend(delivery_times);
    Ok(sent)
}

/// Receives until every expected message arrived.
async fn receive(
    mut ws: Connection,
    clock: Instant,
    expected: u64,
    samples: Arc<Samples>,
    received: Arc<AtomicU64>,
) -> Result<()> {
    let mut times = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    let mut last_seq = 0;
    while (times.len() as u64) < expected {
        match ws.event_within(Duration::from_secs(30)).await? {
            Event::Frame(ServerFrame::Chat { message }) => {
                if message.seq != last_seq + 1 {
                    bail!("receiver saw seq {} after {last_seq}", message.seq);
                }
                last_seq = message.seq;
                times.push(micros(clock).saturating_sub(sent_at(&message.content)));
            }
            Event::Frame(_) => {}
            Event::Closed { code, reason } => bail!("receiver closed {code:?} {reason}"),
        }
    }
    received.fetch_add(times.len() as u64, Ordering::Relaxed);
    samples.delivery.lock().await.extend(times);
    Ok(())
}

fn micros(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn sent_at(content: &str) -> u64 {
    content
        .split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

async fn report(sent: u64, received: u64, send_time: Duration, total: Duration, samples: &Samples) {
    let mut delivery = samples.delivery.lock().await.clone();
    let mut ack = samples.ack.lock().await.clone();
    delivery.sort_unstable();
    ack.sort_unstable();
    let deliveries = delivery.len() as u64;
    println!(
        "sent {sent} messages in {:.1} s ({:.0} msg/s)",
        send_time.as_secs_f64(),
        sent as f64 / send_time.as_secs_f64()
    );
    println!(
        "delivered {deliveries} ({} to receivers) in {:.1} s: {:.0} deliveries/s",
        received,
        total.as_secs_f64(),
        deliveries as f64 / total.as_secs_f64()
    );
    println!("delivery latency ms: {}", percentiles(&delivery));
    println!("ack latency ms:      {}", percentiles(&ack));
}

fn percentiles(sorted: &[u64]) -> String {
    if sorted.is_empty() {
        return "no samples".into();
    }
    let at = |p: f64| {
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
    };
    format!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}
