//! Every metric the server exports, named in one place (docs/operations.md lists them).
//!
//! Hot paths (a frame read, a frame written, a stored message) call small functions
//! here that bump handles resolved once, so no per-frame lookup of a name and its
//! labels happens. The handles resolve only after the Prometheus recorder is installed
//! ([`recorder`] does it first), otherwise they would be no-ops forever.
//!
//! Histograms are rendered as Prometheus histograms with fixed buckets (summaries cannot
//! be aggregated across instances), and a background thread runs the recorder's upkeep
//! so samples never pile up between scrapes.
//!
//! This module knows nothing of the crate but the protocol types, so any layer may
//! call it.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, ServerFrame};

/// Upper bounds (seconds) of every latency histogram: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the messages-per-append-batch histogram.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
/// How often the recorder folds recorded samples into its histograms.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// One live chat frame in this many, per connection, has its delivery latency recorded:
/// the first of each connection, then every 16th.
const DELIVERY_SAMPLE_EVERY: u32 = 16;

const APPEND_SECONDS: &str = "socket_hub_store_append_seconds";
const APPEND_BATCH: &str = "socket_hub_store_append_batch_size";
const MESSAGES: &str = "socket_hub_messages_total";
const DELIVERY_SECONDS: &str = "socket_hub_delivery_latency_seconds";
const HTTP_SECONDS: &str = "socket_hub_http_request_duration_seconds";
const FRAMES_IN: &str = "socket_hub_ws_frames_in_total";
const FRAMES_OUT: &str = "socket_hub_ws_frames_out_total";
const CLOSES: &str = "socket_hub_ws_closes_total";
const ERRORS: &str = "socket_hub_errors_total";
const RATE_LIMITED: &str = "socket_hub_rate_limited_total";
const SLOW_CONSUMERS: &str = "socket_hub_slow_consumers_total";
const DELIVERED: &str = "socket_hub_frames_delivered_total";
const REFILLS: &str = "socket_hub_room_refills_total";
const PUBLISH_DROPPED: &str = "socket_hub_publish_dropped_total";
const WRITER_DISCARDED: &str = "socket_hub_store_writer_discarded_total";
const PRESENCE_CHANGES: &str = "socket_hub_presence_changes_total";
const PRESENCE_RECIPIENTS: &str = "socket_hub_presence_recipients_total";

/// The process-wide Prometheus recorder, installed on first use (with its upkeep
/// thread); `None` if another recorder was installed first.
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(APPEND_BATCH.into()), BATCH_BUCKETS))
        .ok()?
        .install_recorder()
        .ok()?;
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "no metrics upkeep thread: histograms drain only when scraped");
    }
    describe();
    Some(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        APPEND_SECONDS,
        Unit::Seconds,
        "Time to store one append batch durably (commit included)"
    );
    describe_histogram!(APPEND_BATCH, Unit::Count, "Messages per append batch");
    describe_counter!(
        MESSAGES,
        "Messages stored (duplicates of a client_msg_id not counted)"
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "From a message's created_at (stamped just before its commit) to the flush that wrote \
         it to a WebSocket; sampled (first live chat of each connection, then every 16th); \
         millisecond resolution, wall clock"
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "HTTP request duration until the response head, by method, matched route and status"
    );
    describe_counter!(FRAMES_IN, "Client frames read after the handshake, by type");
    describe_counter!(FRAMES_OUT, "Server frames written to WebSockets, by type");
    describe_counter!(
        CLOSES,
        "WebSocket connections closed by the server, by close code"
    );
    describe_counter!(
        ERRORS,
        "Error replies by protocol error code and door (ws, http)"
    );
    describe_counter!(
        RATE_LIMITED,
        "Client frames refused by the per-connection rate limit"
    );
    describe_counter!(
        SLOW_CONSUMERS,
        "Connections closed with 1013 for not keeping up, by cause"
    );
    describe_counter!(DELIVERED, "Room frames queued to connections by fan-out");
    describe_counter!(
        REFILLS,
        "Room streams refilled from the store after a gap or lag"
    );
    describe_counter!(
        PUBLISH_DROPPED,
        "Envelopes the broker could not carry (receivers refill)"
    );
    describe_counter!(
        WRITER_DISCARDED,
        "Write transactions discarded by the store writer"
    );
    describe_counter!(
        PRESENCE_CHANGES,
        "Global presence changes (online, away, offline) this process announced"
    );
    describe_counter!(
        PRESENCE_RECIPIENTS,
        "People those presence changes were addressed to (their contacts)"
    );
    describe_gauge!("socket_hub_connections", "Open WebSocket connections");
    describe_gauge!(
        "socket_hub_live_rooms",
        "Rooms with members connected to this process"
    );
}

/// Resolves a handle after the recorder exists.
fn counter(name: &'static str, labels: &[(&'static str, String)]) -> Counter {
    recorder();
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::counter!(name, labels)
}

fn histogram(name: &'static str) -> Histogram {
    recorder();
    metrics::histogram!(name)
}

// ---------------------------------------------------------------- store

struct Store {
    append_seconds: Histogram,
    append_batch: Histogram,
    messages: Counter,
    writer_discarded: Counter,
}

static STORE: LazyLock<Store> = LazyLock::new(|| Store {
    append_seconds: histogram(APPEND_SECONDS),
    append_batch: histogram(APPEND_BATCH),
    messages: counter(MESSAGES, &[]),
    writer_discarded: counter(WRITER_DISCARDED, &[]),
});

/// One append batch committed: how many messages it stored and how long it took.
pub fn record_append_batch(size: usize, seconds: f64) {
    let store = &*STORE;
    store.append_batch.record(size as f64);
    store.append_seconds.record(seconds);
}

/// `n` new messages stored.
pub fn messages_stored(n: u64) {
    STORE.messages.increment(n);
}

/// The store writer discarded a write transaction.
pub fn writer_discarded() {
    STORE.writer_discarded.increment(1);
}

// ---------------------------------------------------------------- fan-out

struct FanOut {
    delivered: Counter,
    refills: Counter,
    publish_dropped: Counter,
}

static FAN_OUT: LazyLock<FanOut> = LazyLock::new(|| FanOut {
    delivered: counter(DELIVERED, &[]),
    refills: counter(REFILLS, &[]),
    publish_dropped: counter(PUBLISH_DROPPED, &[]),
});

/// A room queued `n` frames (or bursts of notices) to its members.
pub fn frames_queued(n: u64) {
    FAN_OUT.delivered.increment(n);
}

/// A room refilled its stream from the store.
pub fn room_refilled() {
    FAN_OUT.refills.increment(1);
}

/// The broker dropped an envelope.
pub fn publish_dropped() {
    FAN_OUT.publish_dropped.increment(1);
}

/// This process announced a presence change to `recipients` people.
pub fn presence_change(recipients: usize) {
    counter(PRESENCE_CHANGES, &[]).increment(1);
    counter(PRESENCE_RECIPIENTS, &[]).increment(recipients as u64);
}

// ---------------------------------------------------------------- frames in

const IN_KINDS: [&str; 9] = [
    "auth",
    "join_room",
    "leave_room",
    "message_send",
    "typing",
    "read",
    "ping",
    "presence",
    "invalid",
];

static FRAMES_IN_BY_KIND: LazyLock<Vec<Counter>> = LazyLock::new(|| {
    IN_KINDS
        .iter()
        .map(|kind| counter(FRAMES_IN, &[("type", (*kind).to_owned())]))
        .collect()
});

fn in_index(frame: &ClientFrame) -> usize {
    match frame {
        ClientFrame::Auth { .. } => 0,
        ClientFrame::JoinRoom { .. } => 1,
        ClientFrame::LeaveRoom { .. } => 2,
        ClientFrame::MessageSend { .. } => 3,
        ClientFrame::Typing { .. } => 4,
        ClientFrame::Read { .. } => 5,
        ClientFrame::Ping => 6,
        ClientFrame::Presence { .. } => 7,
    }
}

/// A client frame was read and parsed.
pub fn frame_in(frame: &ClientFrame) {
    FRAMES_IN_BY_KIND[in_index(frame)].increment(1);
}

/// A client frame that does not parse (malformed JSON, unknown type, binary).
pub fn frame_in_invalid() {
    FRAMES_IN_BY_KIND[IN_KINDS.len() - 1].increment(1);
}

// ---------------------------------------------------------------- frames out

const OUT_KINDS: [&str; 11] = [
    "chat",
    "ack",
    "join",
    "leave",
    "typing",
    "room_joined",
    "room_left",
    "ready",
    "error",
    "pong",
    "other",
];
const OUT_OTHER: usize = OUT_KINDS.len() - 1;

static FRAMES_OUT_BY_KIND: LazyLock<Vec<Counter>> = LazyLock::new(|| {
    OUT_KINDS
        .iter()
        .map(|kind| counter(FRAMES_OUT, &[("type", (*kind).to_owned())]))
        .collect()
});

static DELIVERY: LazyLock<Histogram> = LazyLock::new(|| histogram(DELIVERY_SECONDS));

/// A server frame's type, read from its encoding: serde writes the `type` tag first,
/// so this looks at a dozen bytes and decodes nothing.
fn out_index(frame: &str) -> usize {
    let Some(rest) = frame.strip_prefix(r#"{"type":""#) else {
        return OUT_OTHER;
    };
    let end = rest.bytes().take(16).position(|b| b == b'"');
    let Some(kind) = end.map(|end| &rest[..end]) else {
        return OUT_OTHER;
    };
    OUT_KINDS[..OUT_OTHER]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(OUT_OTHER)
}

/// A chat frame's `created_at` in Unix milliseconds. It is the message's last field, so
/// searching from the end finds it after a few dozen bytes, and a `"` inside content is
/// escaped, so content cannot imitate it.
fn created_at_millis(frame: &str) -> Option<i64> {
    const KEY: &str = r#""created_at":""#;
    let start = frame.rfind(KEY)? + KEY.len();
    let end = start + frame[start..].find('"')?;
    let at = chrono::DateTime::parse_from_rfc3339(&frame[start..end]).ok()?;
    Some(at.timestamp_millis())
}

/// What one connection's writer wrote since its last flush: frame counts by type and,
/// for a sample of live chat frames, when the message was stamped. Counted in plain
/// fields and added to the shared counters once per flush, so a written frame costs a
/// few byte comparisons and no atomic operation.
#[derive(Debug, Default)]
pub struct WriteTally {
    counts: [u32; OUT_KINDS.len()],
    /// Live chat frames this connection has written (picks the sampled ones).
    live_chats: u32,
    /// `created_at` (Unix ms) of the sampled chat frame awaiting its flush.
    sampled_at: Option<i64>,
}

impl WriteTally {
    /// A text frame handed to the socket (unflushed).
    pub fn frame(&mut self, frame: &str) {
        self.counts[out_index(frame)] += 1;
    }

    /// A live chat frame (not a replay from the store) handed to the socket; call it
    /// besides [`Self::frame`].
    pub fn live_chat(&mut self, frame: &str) {
        if self.live_chats.is_multiple_of(DELIVERY_SAMPLE_EVERY) && self.sampled_at.is_none() {
            self.sampled_at = created_at_millis(frame);
        }
        self.live_chats = self.live_chats.wrapping_add(1);
    }

    /// The socket was flushed: publish the counts and the sampled latency.
    pub fn flushed(&mut self) {
        for (kind, count) in self.counts.iter_mut().enumerate() {
            if *count > 0 {
                FRAMES_OUT_BY_KIND[kind].increment(u64::from(*count));
                *count = 0;
            }
        }
        if let Some(created_at) = self.sampled_at.take() {
            let now = chrono::Utc::now().timestamp_micros();
            // Another instance's clock may run ahead: never record a negative latency.
            let micros = (now - created_at * 1000).max(0);
            DELIVERY.record(micros as f64 / 1e6);
        }
    }

    /// How many chat frames are counted but not yet flushed (for tests).
    #[cfg(test)]
    fn pending_chats(&self) -> u32 {
        self.counts[0]
    }
}

// ---------------------------------------------------------------- closes, errors, limits

const CLOSE_CODES: [u16; 9] = [
    1000,
    CloseCode::GOING_AWAY,
    CloseCode::INVALID_PAYLOAD,
    CloseCode::POLICY_VIOLATION,
    CloseCode::TOO_BIG,
    CloseCode::SERVICE_RESTART,
    CloseCode::TRY_AGAIN_LATER,
    CloseCode::UNAUTHORIZED,
    CloseCode::KEEPALIVE_TIMEOUT,
];

static CLOSES_BY_CODE: LazyLock<Vec<Counter>> = LazyLock::new(|| {
    CLOSE_CODES
        .iter()
        .map(|code| counter(CLOSES, &[("code", code.to_string())]))
        .collect()
});

/// The server closed a WebSocket with `code` (counted before the close frame is sent).
pub fn connection_closed(code: u16) {
    match CLOSE_CODES.iter().position(|c| *c == code) {
        Some(index) => CLOSES_BY_CODE[index].increment(1),
        None => counter(CLOSES, &[("code", code.to_string())]).increment(1),
    }
}

const ERROR_CODES: [ErrorCode; 21] = [
    ErrorCode::MalformedJson,
    ErrorCode::UnknownType,
    ErrorCode::InvalidInput,
    ErrorCode::ContentTooLong,
    ErrorCode::FrameTooLarge,
    ErrorCode::RateLimited,
    ErrorCode::Unauthorized,
    ErrorCode::TokenExpired,
    ErrorCode::RefreshReused,
    ErrorCode::InvalidCredentials,
    ErrorCode::WrongAccessCode,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::Conflict,
    ErrorCode::NotJoined,
    ErrorCode::TooManyRooms,
    ErrorCode::Internal,
    ErrorCode::Unavailable,
    ErrorCode::Gone,
    ErrorCode::FileTooLarge,
    ErrorCode::QuotaExceeded,
];

/// Which door an error left by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An `error` frame on a WebSocket.
    WebSocket,
    /// A problem response to an HTTP request.
    Http,
}

static ERRORS_BY_CODE: LazyLock<Vec<[Counter; 2]>> = LazyLock::new(|| {
    ERROR_CODES
        .iter()
        .map(|code| {
            let label = |via: &str| {
                counter(
                    ERRORS,
                    &[("code", code.as_str().to_owned()), ("via", via.to_owned())],
                )
            };
            [label("ws"), label("http")]
        })
        .collect()
});

/// An error reply with `code` went out by `via`.
pub fn error_sent(code: ErrorCode, via: Via) {
    let index = ERROR_CODES.iter().position(|c| *c == code);
    if let Some(index) = index {
        ERRORS_BY_CODE[index][via as usize].increment(1);
    }
}

/// Counts `frame` if it is an `error` frame (the gateway's one place for replies).
pub fn reply_sent(frame: &ServerFrame) {
    if let ServerFrame::Error { code, .. } = frame {
        error_sent(*code, Via::WebSocket);
    }
}

struct Limits {
    rate_limited: Counter,
    queue_full: Counter,
    write_timeout: Counter,
}

static LIMITS: LazyLock<Limits> = LazyLock::new(|| Limits {
    rate_limited: counter(RATE_LIMITED, &[]),
    queue_full: counter(SLOW_CONSUMERS, &[("cause", "queue_full".into())]),
    write_timeout: counter(SLOW_CONSUMERS, &[("cause", "write_timeout".into())]),
});

/// The rate limit refused a client frame.
pub fn rate_limited() {
    LIMITS.rate_limited.increment(1);
}

/// Why a slow consumer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowCause {
    /// Its outbound queue was full.
    QueueFull,
    /// A socket write did not finish within the write timeout.
    WriteTimeout,
}

/// A connection was closed (1013) for not keeping up.
pub fn slow_consumer(cause: SlowCause) {
    match cause {
        SlowCause::QueueFull => LIMITS.queue_full.increment(1),
        SlowCause::WriteTimeout => LIMITS.write_timeout.increment(1),
    }
}

// ---------------------------------------------------------------- HTTP

/// One HTTP request answered. `route` is the matched route template (`None`: no route
/// matched, e.g. the web client's files), never the raw path, so labels stay few.
pub fn http_request(method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
    recorder();
    let method = match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    metrics::histogram!(
        HTTP_SECONDS,
        "method" => method,
        "route" => route.unwrap_or("fallback").to_owned(),
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// Registers every labelled handle now, so `/metrics` lists them (at zero) from the
/// start and the first frame does not pay for it.
pub fn register_all() {
    LazyLock::force(&STORE);
    LazyLock::force(&FAN_OUT);
    LazyLock::force(&FRAMES_IN_BY_KIND);
    LazyLock::force(&FRAMES_OUT_BY_KIND);
    LazyLock::force(&DELIVERY);
    LazyLock::force(&CLOSES_BY_CODE);
    LazyLock::force(&ERRORS_BY_CODE);
    LazyLock::force(&LIMITS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_types_are_read_from_the_tag() {
        assert_eq!(
            OUT_KINDS[out_index(r#"{"type":"chat","message":{}}"#)],
            "chat"
        );
        assert_eq!(
            OUT_KINDS[out_index(r#"{"type":"room_joined","room_id":1}"#)],
            "room_joined"
        );
        assert_eq!(OUT_KINDS[out_index(r#"{"type":"pong"}"#)], "pong");
        assert_eq!(OUT_KINDS[out_index(r#"{"type":"brand_new"}"#)], "other");
        assert_eq!(
            OUT_KINDS[out_index(r#"{"room_id":1,"type":"chat"}"#)],
            "other"
        );
        assert_eq!(OUT_KINDS[out_index(r#"{"type":"#)], "other");
    }

    #[test]
    fn every_client_frame_type_has_its_label() {
        let frame: ClientFrame = serde_json::from_str(
            r#"{"type":"message_send","room_id":1,"client_msg_id":"c","content":"x"}"#,
        )
        .expect("frame");
        assert_eq!(IN_KINDS[in_index(&frame)], "message_send");
        assert_eq!(IN_KINDS[in_index(&ClientFrame::Ping)], "ping");
    }

    #[test]
    fn created_at_is_found_even_when_content_imitates_it() {
        let message = socket_hub_protocol::Message {
            id: 1,
            room_id: 2,
            seq: 3,
            user: socket_hub_protocol::User {
                id: 4,
                username: "ada".into(),
            },
            content: r#""created_at":"1999-01-01T00:00:00Z""#.into(),
            client_msg_id: None,
            event: None,
            attachments: Vec::new(),
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).expect("date"),
            ..Default::default()
        };
        let frame = socket_hub_protocol::frames::encode_chat(&message);
        assert_eq!(created_at_millis(&frame), Some(1_700_000_000_123));
        assert_eq!(created_at_millis(r#"{"type":"chat"}"#), None);
    }

    #[test]
    fn the_tally_samples_the_first_live_chat_then_every_sixteenth() {
        let chat = r#"{"type":"chat","message":{"created_at":"2026-01-01T00:00:00.000Z"}}"#;
        let mut tally = WriteTally::default();
        tally.frame(chat);
        tally.live_chat(chat);
        assert!(tally.sampled_at.is_some());
        assert_eq!(tally.pending_chats(), 1);
        tally.flushed();
        assert_eq!((tally.pending_chats(), tally.sampled_at), (0, None));
        for _ in 1..DELIVERY_SAMPLE_EVERY {
            tally.live_chat(chat);
            assert!(tally.sampled_at.is_none());
        }
        tally.live_chat(chat);
        assert!(tally.sampled_at.is_some());
    }
}
