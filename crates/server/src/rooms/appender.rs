//! Group commit: every durable append of this process goes through one writer task that
//! stores whatever is queued as one transaction, so a batch costs one fsync (SQLite) or
//! one commit round trip (PostgreSQL) and a handful of statements, however many rooms
//! and messages it holds.
//!
//! Callers see none of it: [`Appender::append`] queues an owned copy of the message with
//! a oneshot for its outcome and waits. The writer takes the first queued request, then
//! everything already queued (up to [`AppendOptions::batch`]) without waiting, so a lone
//! message is stored at once. Optionally, while messages arrive faster than one at a
//! time (the previous batch held more than one), it also waits up to
//! [`AppendOptions::linger`] for more: fewer, larger batches cost less CPU per message
//! for a little latency, and an idle server still never delays a message. Per batch it
//! runs:
//!
//! 1. `BEGIN` (SQLite: `IMMEDIATE`, so the batch is serialised against other writers and
//!    every read below sees the latest commit);
//! 2. PostgreSQL only: `SELECT … FOR UPDATE` on the batch's rooms in ascending id order.
//!    Another instance's appender waits here for ours (and ours for it), so the checks
//!    below read committed state, and the fixed lock order means two appenders cannot
//!    deadlock;
//! 3. membership of every (room, sender) and idempotency of every `client_msg_id`, in
//!    one query: a non-member fails alone and takes no seq; repeats inside the batch
//!    collapse onto their first occurrence;
//! 4. one `UPDATE rooms … RETURNING` reserving each room's seq range at once;
//! 5. multi-row `INSERT`s, chunked under the bind-parameter limits (on PostgreSQL 4 and
//!    5 are one statement, a data-modifying CTE: see `reserve_and_insert`);
//! 6. `COMMIT`. Only then are outcomes sent. If any statement or the commit fails, every
//!    request of the batch gets that error and nothing is acknowledged; the transaction
//!    goes through [`WriteTx`](crate::store::WriteTx), so its connection is discarded.
//!
//! On SQLite (a file) the writer is a thread of its own with a connection of its own
//! ([`SqliteWriter`]), and a batch is the same transaction run in-process with cached
//! prepared statements, one probe, reservation and insert per message (see
//! [`store_batch_sqlite`]): no statement is a hand-off to another thread, so a batch
//! costs one wakeup of this thread and one fsync. Membership, idempotency and seqs are
//! decided exactly as above, under the write lock `BEGIN IMMEDIATE` takes.
//!
//! A batch that fails with an error other than "unavailable" (a constraint one message
//! broke, a bug) is retried one message at a time, so one bad message cannot fail the
//! messages that happened to share its batch.
//!
//! Backpressure: the queue is bounded ([`AppendOptions::queue`]); when it is full callers
//! wait for room. Every caller is already bounded (a WebSocket session has one send in
//! flight, HTTP requests are bounded by connections), so waiting is the fair answer; a
//! store that cannot keep up shows as ack latency, not as errors.
//!
//! A caller that stops waiting (its connection closed) before its batch starts is
//! skipped; once the batch has begun, its message may be stored unacknowledged, exactly
//! like a message whose ack was lost in transit: the client's retry with the same
//! `client_msg_id` returns the original.
//!
//! The writer (a task, or the SQLite thread) is started by the first append (on the
//! caller's runtime) and ends once every handle is dropped and the queue is drained.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use socket_hub_protocol::{Message, RoomId, Seq, User, UserId};
use tokio::sync::{mpsc, oneshot};

use super::message_store::{Appended, MessageRow, NewMessage};
use super::search_index;
use crate::store::{Backend, Db, SqliteWriter, StoreError, WriteTx, from_millis, now_millis};

/// Bind parameters one statement may carry: under SQLite's 32,766 (and PostgreSQL's
/// 65,535), with room to spare.
const MAX_BIND_PARAMS: usize = 30_000;
/// Columns bound per inserted message.
const INSERT_COLUMNS: usize = 8;
/// Largest batch allowed: its lookups (three parameters per message at most) stay within
/// one statement.
pub const MAX_BATCH: usize = 4096;
const _: () = assert!(MAX_BATCH * 3 <= MAX_BIND_PARAMS);

/// Whether the writer waits for more messages before storing a batch that is not full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Never: batches then form only while the previous one is being written.
    Never,
    /// Up to this long while batches are forming (the previous batch held more than one
    /// message), so a lone message on a quiet server is never delayed.
    WhileBusy(Duration),
    /// Up to this long before every batch: for tests that need concurrent appends to
    /// share one.
    Always(Duration),
}

impl Linger {
    /// The linger from the microseconds configured: 0 never waits.
    pub fn while_busy_us(micros: u64) -> Self {
        match micros {
            0 => Self::Never,
            us => Self::WhileBusy(Duration::from_micros(us)),
        }
    }

    /// How long to wait for more after a batch of `last_size` messages (0 after idleness).
    fn after(self, last_size: usize) -> Duration {
        match self {
            Self::WhileBusy(linger) if last_size > 1 => linger,
            Self::Always(linger) => linger,
            Self::Never | Self::WhileBusy(_) => Duration::ZERO,
        }
    }
}

/// How the appender batches; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOptions {
    /// Most messages stored in one transaction (1 ..= [`MAX_BATCH`]).
    pub batch: usize,
    /// Appends waiting for the writer before callers have to wait to queue.
    pub queue: usize,
    /// Whether, and how long, the writer waits for more after draining the queue.
    pub linger: Linger,
    /// SQLite: how long the writer must have been idle before it search-indexes the
    /// messages appended since its last indexing (see [`search_index`]).
    pub index_idle: Duration,
}

impl Default for AppendOptions {
    fn default() -> Self {
        Self {
            batch: 512,
            queue: 8192,
            linger: Linger::Never,
            index_idle: search_index::INDEX_IDLE,
        }
    }
}

/// A message to append, owned so it can wait in the queue.
struct Pending {
    room_id: RoomId,
    user: User,
    client_msg_id: Option<String>,
    content: String,
    reply_to: Option<i64>,
    attachments: Option<String>,
}

impl Pending {
    /// The idempotency key, when the sender gave one.
    fn key(&self) -> Option<(RoomId, UserId, &str)> {
        self.client_msg_id
            .as_deref()
            .map(|id| (self.room_id, self.user.id, id))
    }
}

type Outcome = Result<Appended, StoreError>;

struct Request {
    message: Pending,
    reply: oneshot::Sender<Outcome>,
}

/// Handle to the process's batching writer; cloning shares it.
#[derive(Clone)]
pub(super) struct Appender {
    db: Db,
    options: AppendOptions,
    /// The writer's queue, created with the writer task by the first append. Shared by
    /// every clone: the task ends when the last one is dropped.
    queue: Arc<OnceLock<mpsc::Sender<Request>>>,
}

impl Appender {
    pub(super) fn new(db: Db, options: AppendOptions) -> Self {
        let options = AppendOptions {
            batch: options.batch.clamp(1, MAX_BATCH),
            queue: options.queue.max(1),
            linger: options.linger,
            index_idle: options.index_idle,
        };
        Self {
            db,
            options,
            queue: Arc::new(OnceLock::new()),
        }
    }

    /// Queues `new` for the next batch and waits until that batch committed (or failed).
    pub(super) async fn append(&self, new: NewMessage<'_>) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        let request = Request {
            message: Pending {
                room_id: new.room_id,
                user: new.user.clone(),
                client_msg_id: new.client_msg_id.map(str::to_owned),
                content: new.content.to_owned(),
                reply_to: new.reply_to,
                attachments: new.attachments.map(str::to_owned),
            },
            reply,
        };
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.options.queue);
            let options = self.options;
            match self.db.sqlite_writer() {
                Some(writer) => {
                    let runtime = tokio::runtime::Handle::current();
                    let spawned = std::thread::Builder::new()
                        .name("sqlite-append".into())
                        .spawn(move || run_sqlite(writer, receiver, options, &runtime));
                    if let Err(err) = spawned {
                        // The receiver went with the closure: every append answers
                        // `unavailable` (see `stopped`), and the error is logged once.
                        tracing::error!(error = %err, "cannot start the sqlite append thread");
                    }
                }
                None => {
                    tokio::spawn(run(self.db.clone(), receiver, options));
                }
            }
            sender
        });
        if queue.send(request).await.is_err() {
            return Err(stopped());
        }
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The writer is gone (its runtime is shutting down): nothing was acknowledged.
fn stopped() -> StoreError {
    StoreError::Unavailable("the message writer has stopped".into())
}

/// What the writer waits for next.
enum Next {
    /// The next batch: its messages and their callers.
    Batch(Vec<Pending>, Vec<oneshot::Sender<Outcome>>),
    /// Nothing was queued within the idle time asked for.
    Idle,
    /// Every handle is dropped and the queue is drained.
    Closed,
}

/// Waits for the next batch: the first queued request, everything queued by then (up to
/// the batch size), and, when `linger` is not zero, what arrives within it. Callers that
/// gave up before their batch began are left out. With `idle`, gives up waiting for the
/// first request after that long (`recv_many` is cancel-safe: nothing is lost).
async fn next_batch(
    queue: &mut mpsc::Receiver<Request>,
    options: AppendOptions,
    linger: Duration,
    idle: Option<Duration>,
) -> Next {
    let mut batch = Vec::with_capacity(options.batch);
    loop {
        let received = match idle {
            Some(idle) => {
                match tokio::time::timeout(idle, queue.recv_many(&mut batch, options.batch)).await {
                    Ok(received) => received,
                    Err(_) => return Next::Idle,
                }
            }
            None => queue.recv_many(&mut batch, options.batch).await,
        };
        if received == 0 {
            return Next::Closed;
        }
        if !linger.is_zero() && batch.len() < options.batch {
            let deadline = tokio::time::Instant::now() + linger;
            while batch.len() < options.batch {
                let room = options.batch - batch.len();
                match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        batch.retain(|request| !request.reply.is_closed());
        if !batch.is_empty() {
            let (messages, replies) = batch
                .into_iter()
                .map(|request| (request.message, request.reply))
                .unzip();
            return Next::Batch(messages, replies);
        }
    }
}

/// The writer task (PostgreSQL, in-memory SQLite): one batch at a time until every
/// handle is dropped. An in-memory SQLite database is search-indexed here, through the
/// sqlx writer, on the same schedule as on the SQLite thread.
async fn run(db: Db, mut queue: mpsc::Receiver<Request>, options: AppendOptions) {
    let indexes = db.backend() == Backend::Sqlite;
    let mut unindexed = 0;
    let mut last_size = 0;
    loop {
        let idle = (unindexed > 0).then_some(options.index_idle);
        let linger = options.linger.after(last_size);
        let (messages, replies) = match next_batch(&mut queue, options, linger, idle).await {
            Next::Batch(messages, replies) => (messages, replies),
            Next::Idle => {
                last_size = 0;
                unindexed = index_in_task(&db, unindexed).await;
                continue;
            }
            Next::Closed => break,
        };
        let started = Instant::now();
        let size = messages.len();
        last_size = size;
        match store_batch(&db, &messages).await {
            Err(err) if retry_one_by_one(&err, size) => {
                for (message, reply) in messages.into_iter().zip(replies) {
                    let single = [message];
                    let outcome = store_batch(&db, &single).await;
                    settle(outcome, Vec::from(single), vec![reply]);
                }
            }
            outcome => settle(outcome, messages, replies),
        }
        crate::metrics::record_append_batch(size, started.elapsed().as_secs_f64());
        if indexes {
            unindexed += size;
            if unindexed >= search_index::INDEX_BACKLOG {
                unindexed = index_in_task(&db, unindexed).await;
            }
        }
    }
}

/// Indexes everything waiting through the sqlx writer; returns what is left to index
/// (all of it again when indexing failed: the next idle time retries).
async fn index_in_task(db: &Db, unindexed: usize) -> usize {
    match search_index::catch_up(db).await {
        Ok(()) => 0,
        Err(err) => {
            tracing::warn!(error = %err, "search indexing failed; will retry");
            unindexed
        }
    }
}

/// The SQLite writer thread: the same loop as [`run`], each batch one in-process
/// transaction on the thread's own connection. It waits for batches on the runtime's
/// handle (a park of this thread, woken by the first append queued). Between batches it
/// keeps the search index in step (see [`search_index`]): a chunk once
/// [`search_index::INDEX_BACKLOG`] messages wait, and the rest after
/// [`AppendOptions::index_idle`] without appends, each chunk its own transaction after
/// the acks of the batches it covers.
fn run_sqlite(
    mut writer: SqliteWriter,
    mut queue: mpsc::Receiver<Request>,
    options: AppendOptions,
    runtime: &tokio::runtime::Handle,
) {
    let mut unindexed = 0;
    let mut last_size = 0;
    loop {
        let idle = (unindexed > 0).then_some(options.index_idle);
        let linger = options.linger.after(last_size);
        let next = next_batch(&mut queue, options, linger, idle);
        let (messages, replies) = match runtime.block_on(next) {
            Next::Batch(messages, replies) => (messages, replies),
            Next::Idle => {
                last_size = 0;
                // Everything left, a chunk per transaction, while nothing is queued; after
                // a failure, again at the next idle time.
                while unindexed > 0 && queue.is_empty() {
                    match index_on_thread(&mut writer, unindexed) {
                        Some(left) => unindexed = left,
                        None => break,
                    }
                }
                continue;
            }
            Next::Closed => break,
        };
        let started = Instant::now();
        let size = messages.len();
        last_size = size;
        match store_batch_sqlite(&mut writer, &messages) {
            Err(err) if retry_one_by_one(&err, size) => {
                for (message, reply) in messages.into_iter().zip(replies) {
                    let single = [message];
                    let outcome = store_batch_sqlite(&mut writer, &single);
                    settle(outcome, Vec::from(single), vec![reply]);
                }
            }
            outcome => settle(outcome, messages, replies),
        }
        crate::metrics::record_append_batch(size, started.elapsed().as_secs_f64());
        unindexed += size;
        if unindexed >= search_index::INDEX_BACKLOG {
            // On failure the count stays: retried after the next idle time or batch.
            unindexed = index_on_thread(&mut writer, unindexed).unwrap_or(unindexed);
        }
    }
}

/// One indexing chunk on the writer thread's connection: `Some` estimate of what is
/// left (0 once the index is current), or `None` when the chunk failed (logged; nothing
/// was indexed, and the caller retries later, never in a tight loop).
fn index_on_thread(writer: &mut SqliteWriter, unindexed: usize) -> Option<usize> {
    let chunk = search_index::INDEX_CHUNK;
    match writer.transaction(|conn| search_index::index_chunk(conn, chunk)) {
        Ok(passed) if passed < chunk => Some(0),
        // A full chunk: more may wait (the count is an estimate: ids also pass events).
        Ok(passed) => Some(
            unindexed
                .saturating_sub(usize::try_from(passed).unwrap_or(usize::MAX))
                .max(1),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "search indexing failed; will retry");
            None
        }
    }
}

/// Whether a failed batch is retried one message at a time: not when the store is
/// unavailable (every message would fail the same way), and not for a batch of one.
fn retry_one_by_one(err: &StoreError, size: usize) -> bool {
    let retry = size > 1 && !matches!(err, StoreError::Unavailable(_));
    if retry {
        tracing::warn!(error = %err, batch = size, "append batch failed; retrying its messages one by one");
    }
    retry
}

/// Answers every request of a batch: each its outcome once committed, or all the error.
fn settle(
    outcome: Result<Plan, StoreError>,
    messages: Vec<Pending>,
    replies: Vec<oneshot::Sender<Outcome>>,
) {
    match outcome {
        Ok(plan) => answer(plan, messages, replies),
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

/// What a committed batch did with each request, in request order.
struct Plan {
    outcomes: Vec<Planned>,
    created_at: i64,
}

enum Planned {
    NotMember,
    /// Stored before this batch: the original.
    Existing(Box<Message>),
    /// Repeats the key of the request at this index, stored by this batch.
    SameAs(usize),
    Stored {
        id: i64,
        seq: Seq,
    },
}

/// Sends each outcome of a committed batch to its caller.
fn answer(plan: Plan, messages: Vec<Pending>, replies: Vec<oneshot::Sender<Outcome>>) {
    let created_at = from_millis(plan.created_at);
    let mut outcomes: Vec<Appended> = Vec::with_capacity(messages.len());
    for (planned, message) in plan.outcomes.into_iter().zip(messages) {
        let outcome = match planned {
            Planned::NotMember => Appended::NotMember,
            Planned::Existing(original) => Appended::Duplicate(*original),
            // `store_batch` only points at an earlier request it stored.
            Planned::SameAs(first) => match outcomes.get(first) {
                Some(Appended::Stored(original)) => Appended::Duplicate(original.clone()),
                _ => Appended::NotMember,
            },
            Planned::Stored { id, seq } => Appended::Stored(Message {
                id,
                room_id: message.room_id,
                seq,
                user: message.user,
                content: message.content,
                client_msg_id: message.client_msg_id,
                created_at,
                ..Message::default()
            }),
        };
        outcomes.push(outcome);
    }
    for (outcome, reply) in outcomes.into_iter().zip(replies) {
        // A caller that stopped waiting just misses its ack; the message stays stored.
        let _ = reply.send(Ok(outcome));
    }
}

/// One transaction for the whole batch; returns what to answer, only after COMMIT
/// succeeded.
async fn store_batch(db: &Db, messages: &[Pending]) -> Result<Plan, StoreError> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        let rooms: BTreeSet<RoomId> = messages.iter().map(|m| m.room_id).collect();
        lock_rooms(&mut tx, Backend::Postgres, &rooms).await?;
    }
    let backend = db.backend();
    let Checks { members, existing } = checks(&mut tx, backend, messages).await?;

    // Decide each request's fate; count what each room stores.
    let mut outcomes = Vec::with_capacity(messages.len());
    let mut first_of_key: HashMap<(RoomId, UserId, &str), usize> = HashMap::new();
    let mut counts: BTreeMap<RoomId, i64> = BTreeMap::new();
    for (index, message) in messages.iter().enumerate() {
        if !members.contains(&(message.room_id, message.user.id)) {
            outcomes.push(Planned::NotMember);
            continue;
        }
        if let Some(key) = message.key() {
            if let Some(original) = existing.get(&(key.0, key.1, key.2.to_owned())) {
                outcomes.push(Planned::Existing(Box::new(original.clone())));
                continue;
            }
            if let Some(&first) = first_of_key.get(&key) {
                outcomes.push(Planned::SameAs(first));
                continue;
            }
            first_of_key.insert(key, index);
        }
        *counts.entry(message.room_id).or_default() += 1;
        // Filled in once the room's range is reserved.
        outcomes.push(Planned::Stored { id: 0, seq: 0 });
    }

    let created_at = now_millis();
    if !counts.is_empty() && backend == Backend::Postgres {
        reserve_and_insert(&mut tx, messages, &mut outcomes, created_at).await?;
    } else if !counts.is_empty() {
        let mut next_seq = reserve_seqs(&mut tx, backend, &counts).await?;
        let mut rows = Vec::with_capacity(messages.len());
        for (planned, message) in outcomes.iter_mut().zip(messages) {
            if let Planned::Stored { seq, .. } = planned {
                let next = next_seq.get_mut(&message.room_id).ok_or_else(|| {
                    StoreError::Database(format!("room {} lost its seq range", message.room_id))
                })?;
                *seq = *next;
                *next += 1;
                rows.push((message, *seq));
            }
        }
        let ids = insert(&mut tx, backend, &rows, created_at).await?;
        for (planned, message) in outcomes.iter_mut().zip(messages) {
            if let Planned::Stored { id, seq } = planned {
                *id = *ids.get(&(message.room_id, *seq)).ok_or_else(|| {
                    StoreError::Database("an inserted message returned no id".into())
                })?;
            }
        }
    }
    tx.commit().await?;
    Ok(Plan {
        outcomes,
        created_at,
    })
}

/// SQLite, on the writer thread's own connection: the batch as one transaction of cached
/// prepared statements run in-process (no hand-off to another thread per statement).
/// Per message: membership (once per (room, sender) of the batch), the stored original
/// of its idempotency key, the room's next seq (`UPDATE … RETURNING` under the write
/// lock that `BEGIN IMMEDIATE` took, so seqs stay gap-free), the insert. A non-member
/// takes no seq; a repeat inside the batch points at its first occurrence. Returned only
/// after the COMMIT succeeded; see [`SqliteWriter::transaction`] for failures.
fn store_batch_sqlite(writer: &mut SqliteWriter, messages: &[Pending]) -> Result<Plan, StoreError> {
    use rusqlite::OptionalExtension as _;
    writer.transaction(|conn| {
        let mut is_member = conn.prepare_cached(
            // A muted member may not send, exactly like a non-member (as in `checks`).
            "SELECT EXISTS (SELECT 1 FROM memberships WHERE room_id = ?1 AND user_id = ?2
                            AND (muted_until IS NULL OR muted_until <= ?3))",
        )?;
        // `client_msg_id IS NOT NULL` lets SQLite use the partial unique index.
        let mut original = conn.prepare_cached(
            "SELECT m.id, m.room_id, m.seq, m.user_id, u.username, m.content,
                    m.client_msg_id, m.created_at, m.attachments
             FROM messages m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = ?1 AND m.user_id = ?2 AND m.client_msg_id = ?3
               AND m.client_msg_id IS NOT NULL",
        )?;
        let mut reserve = conn.prepare_cached(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO messages (room_id, seq, user_id, client_msg_id, content, created_at,
                                   reply_to, attachments)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let created_at = now_millis();
        let mut members: HashMap<(RoomId, UserId), bool> = HashMap::new();
        let mut first_of_key: HashMap<(RoomId, UserId, &str), usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let pair = (message.room_id, message.user.id);
            let member = match members.get(&pair) {
                Some(&member) => member,
                None => {
                    let member: bool =
                        is_member.query_row((pair.0, pair.1, created_at), |row| row.get(0))?;
                    members.insert(pair, member);
                    member
                }
            };
            if !member {
                outcomes.push(Planned::NotMember);
                continue;
            }
            if let Some(key) = message.key() {
                if let Some(&first) = first_of_key.get(&key) {
                    outcomes.push(Planned::SameAs(first));
                    continue;
                }
                let stored = original
                    .query_row(key, |row| {
                        Ok(MessageRow {
                            id: row.get(0)?,
                            room_id: row.get(1)?,
                            seq: row.get(2)?,
                            user_id: row.get(3)?,
                            username: row.get(4)?,
                            content: row.get(5)?,
                            client_msg_id: row.get(6)?,
                            // Only chat messages carry a client_msg_id.
                            event: None,
                            attachments: row.get(8)?,
                            created_at: row.get(7)?,
                        })
                    })
                    .optional()?;
                if let Some(row) = stored {
                    outcomes.push(Planned::Existing(Box::new(Message::from(row))));
                    continue;
                }
                first_of_key.insert(key, index);
            }
            let seq: Seq = reserve.query_row([message.room_id], |row| row.get(0))?;
            insert.execute((
                message.room_id,
                seq,
                message.user.id,
                message.client_msg_id.as_deref(),
                message.content.as_str(),
                created_at,
                message.reply_to,
                message.attachments.as_deref(),
            ))?;
            outcomes.push(Planned::Stored {
                id: conn.last_insert_rowid(),
                seq,
            });
        }
        Ok(Plan {
            outcomes,
            created_at,
        })
    })
}

/// PostgreSQL: takes the rooms' row locks in ascending id order (see the module docs).
async fn lock_rooms(
    tx: &mut WriteTx,
    backend: Backend,
    rooms: &BTreeSet<RoomId>,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT id FROM rooms WHERE id IN ({}) ORDER BY id FOR UPDATE",
        placeholders(backend, 1, rooms.len())
    );
    let mut query = sqlx::query(&sql);
    for room in rooms {
        query = query.bind(*room);
    }
    query.fetch_all(&mut **tx).await?;
    Ok(())
}

/// What the batch's checks found: which (room, sender) pairs are memberships, and the
/// already-stored original of each members' idempotency key.
struct Checks {
    members: HashSet<(RoomId, UserId)>,
    existing: HashMap<(RoomId, UserId, String), Message>,
}

/// Membership of every (room, sender) of the batch and, for members, the stored original
/// of every idempotency key, in one statement (one round trip to the database).
///
/// The batch's (room, sender, key) triples are joined as a `VALUES` list, so each is one
/// primary-key probe on `memberships` and one unique-index probe on `messages`.
/// (`room_id IN (…) AND user_id IN (…)` would probe every combination of the two
/// lists: hundreds of thousands of probes for a batch spread over many rooms.)
async fn checks(
    tx: &mut WriteTx,
    backend: Backend,
    messages: &[Pending],
) -> Result<Checks, StoreError> {
    let triples: BTreeSet<(RoomId, UserId, Option<&str>)> = messages
        .iter()
        .map(|m| (m.room_id, m.user.id, m.client_msg_id.as_deref()))
        .collect();
    // The `messages` join only for members, as the outcome of a non-member is decided
    // by membership alone. `client_msg_id IS NOT NULL` lets both databases use the
    // partial unique index `messages_client_msg_id` (checked with EXPLAIN QUERY PLAN
    // on SQLite: a search on that index per row, also inside the LEFT JOIN).
    let sql = format!(
        "SELECT k.column1 AS key_room, k.column2 AS key_user, mb.user_id AS member,
                mb.muted_until, m.id, m.room_id, m.seq, m.user_id, u.username, m.content,
                m.client_msg_id, m.attachments, m.created_at
         FROM ({}) AS k
         LEFT JOIN memberships mb ON mb.room_id = k.column1 AND mb.user_id = k.column2
         LEFT JOIN messages m ON mb.user_id IS NOT NULL
                             AND m.room_id = k.column1 AND m.user_id = k.column2
                             AND m.client_msg_id = k.column3
                             AND m.client_msg_id IS NOT NULL
         LEFT JOIN users u ON u.id = m.user_id",
        values(backend, triples.len(), 3)
    );
    let mut query = sqlx::query_as::<_, CheckRow>(&sql);
    for (room, user, key) in &triples {
        query = query.bind(*room).bind(*user).bind(*key);
    }
    let mut checks = Checks {
        members: HashSet::with_capacity(triples.len()),
        existing: HashMap::new(),
    };
    let now = now_millis();
    for row in query.fetch_all(&mut **tx).await? {
        // A muted member may not send, exactly like a non-member; the caller tells the
        // two apart afterwards.
        if row.member.is_none() || row.muted_until.is_some_and(|until| until > now) {
            continue;
        }
        checks.members.insert((row.key_room, row.key_user));
        if let Some(message) = row.stored()
            && let Some(id) = message.client_msg_id.clone()
        {
            checks
                .existing
                .insert((message.room_id, message.user.id, id), message);
        }
    }
    Ok(checks)
}

/// One row of [`checks`]: the key, whether its sender is a member, and the stored
/// message with that key if there is one (all `None` otherwise).
#[derive(sqlx::FromRow)]
struct CheckRow {
    key_room: i64,
    key_user: i64,
    member: Option<i64>,
    muted_until: Option<i64>,
    id: Option<i64>,
    room_id: Option<i64>,
    seq: Option<i64>,
    user_id: Option<i64>,
    username: Option<String>,
    content: Option<String>,
    client_msg_id: Option<String>,
    attachments: Option<String>,
    created_at: Option<i64>,
}

impl CheckRow {
    /// The stored original, when the row found one.
    fn stored(self) -> Option<Message> {
        Some(Message::from(MessageRow {
            id: self.id?,
            room_id: self.room_id?,
            seq: self.seq?,
            user_id: self.user_id?,
            username: self.username?,
            content: self.content?,
            client_msg_id: self.client_msg_id,
            event: None,
            attachments: self.attachments,
            created_at: self.created_at?,
        }))
    }
}

/// Reserves `counts[room]` seqs in each room with one statement; returns each room's
/// first new seq. On PostgreSQL the rows are already locked (in id order) by
/// [`lock_rooms`]; on SQLite the transaction holds the write lock.
async fn reserve_seqs(
    tx: &mut WriteTx,
    backend: Backend,
    counts: &BTreeMap<RoomId, i64>,
) -> Result<HashMap<RoomId, Seq>, StoreError> {
    // Parameters: (room, count) pairs for the CASE, then the rooms again for the IN.
    let cases: String = (0..counts.len())
        .map(|i| {
            format!(
                " WHEN {} THEN {}",
                param(backend, 1 + 2 * i),
                param(backend, 2 + 2 * i)
            )
        })
        .collect();
    let sql = format!(
        "UPDATE rooms SET last_seq = last_seq + CASE id{cases} ELSE 0 END
         WHERE id IN ({}) RETURNING id, last_seq",
        placeholders(backend, 1 + 2 * counts.len(), counts.len())
    );
    let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
    for (room, count) in counts {
        query = query.bind(*room).bind(*count);
    }
    for room in counts.keys() {
        query = query.bind(*room);
    }
    let mut first = HashMap::with_capacity(counts.len());
    for (room, last) in query.fetch_all(&mut **tx).await? {
        let count = counts.get(&room).copied().unwrap_or(0);
        first.insert(room, last - count + 1);
    }
    Ok(first)
}

/// PostgreSQL: reserves every room's seq range and inserts the batch's stored messages
/// in one statement, a data-modifying CTE: one round trip instead of two. The rooms'
/// rows are already locked in id order ([`lock_rooms`]), so the `UPDATE` waits for
/// nobody and two instances still cannot deadlock.
///
/// Each row carries its 1-based position among its room's rows of the batch; its seq is
/// the room's `last_seq` before the batch plus that position. Within a room positions and
/// seqs go up together, so the smallest seq returned for a room is its first new seq.
async fn reserve_and_insert(
    tx: &mut WriteTx,
    messages: &[Pending],
    outcomes: &mut [Planned],
    created_at: i64,
) -> Result<(), StoreError> {
    const COLUMNS: usize = 7;
    const _: () = assert!(MAX_BATCH * COLUMNS < MAX_BIND_PARAMS);
    let mut position: HashMap<RoomId, i64> = HashMap::new();
    let mut rows: Vec<(&Pending, i64)> = Vec::with_capacity(messages.len());
    for (planned, message) in outcomes.iter().zip(messages) {
        if let Planned::Stored { .. } = planned {
            let n = position.entry(message.room_id).or_default();
            *n += 1;
            rows.push((message, *n));
        }
    }
    let mut sql = String::with_capacity(rows.len() * 40 + 640);
    sql.push_str(
        "WITH k (room_id, pos, user_id, client_msg_id, content, reply_to, attachments) AS (",
    );
    sql.push_str(&values_from(Backend::Postgres, 2, rows.len(), COLUMNS));
    sql.push_str(
        "), r AS (
           UPDATE rooms SET last_seq = rooms.last_seq + c.n
           FROM (SELECT room_id, count(*) AS n FROM k GROUP BY room_id) AS c
           WHERE rooms.id = c.room_id
           RETURNING rooms.id, rooms.last_seq - c.n AS base)
         INSERT INTO messages (room_id, seq, user_id, client_msg_id, content, created_at,
                               reply_to, attachments)
         SELECT k.room_id, r.base + k.pos, k.user_id, k.client_msg_id, k.content, $1,
                k.reply_to, k.attachments
         FROM k JOIN r ON r.id = k.room_id
         RETURNING id, room_id, seq",
    );
    let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql).bind(created_at);
    for (message, position) in &rows {
        query = query
            .bind(message.room_id)
            .bind(*position)
            .bind(message.user.id)
            .bind(message.client_msg_id.as_deref())
            .bind(message.content.as_str())
            .bind(message.reply_to)
            .bind(message.attachments.as_deref());
    }
    let inserted = query.fetch_all(&mut **tx).await?;
    let mut first: HashMap<RoomId, Seq> = HashMap::with_capacity(position.len());
    let mut ids: HashMap<(RoomId, Seq), i64> = HashMap::with_capacity(inserted.len());
    for (id, room, seq) in inserted {
        let low = first.entry(room).or_insert(seq);
        *low = (*low).min(seq);
        ids.insert((room, seq), id);
    }
    let mut rows = rows.into_iter();
    for planned in outcomes.iter_mut() {
        if let Planned::Stored { id, seq } = planned {
            let (message, position) = rows
                .next()
                .ok_or_else(|| StoreError::Database("a stored message lost its row".into()))?;
            let room_first = first.get(&message.room_id).copied().ok_or_else(|| {
                StoreError::Database(format!("room {} lost its seq range", message.room_id))
            })?;
            *seq = room_first + position - 1;
            *id = *ids
                .get(&(message.room_id, *seq))
                .ok_or_else(|| StoreError::Database("an inserted message returned no id".into()))?;
        }
    }
    Ok(())
}

/// Multi-row inserts of `(message, seq)`; returns each new row's id by (room, seq).
async fn insert(
    tx: &mut WriteTx,
    backend: Backend,
    rows: &[(&Pending, Seq)],
    created_at: i64,
) -> Result<HashMap<(RoomId, Seq), i64>, StoreError> {
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(MAX_BIND_PARAMS / INSERT_COLUMNS) {
        let sql = format!(
            "INSERT INTO messages (room_id, seq, user_id, client_msg_id, content, created_at,
                                   reply_to, attachments)
             {} RETURNING id, room_id, seq",
            values(backend, chunk.len(), INSERT_COLUMNS)
        );
        let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
        for (message, seq) in chunk {
            query = query
                .bind(message.room_id)
                .bind(*seq)
                .bind(message.user.id)
                .bind(message.client_msg_id.as_deref())
                .bind(message.content.as_str())
                .bind(created_at)
                .bind(message.reply_to)
                .bind(message.attachments.as_deref());
        }
        for (id, room, seq) in query.fetch_all(&mut **tx).await? {
            ids.insert((room, seq), id);
        }
    }
    Ok(ids)
}

/// `VALUES (…), (…)`: `rows` rows of `width` parameters, numbered from 1. Written into
/// one string: a batch's statements carry thousands of parameters.
fn values(backend: Backend, rows: usize, width: usize) -> String {
    values_from(backend, 1, rows, width)
}

/// As [`values`], the parameters numbered from `first`.
fn values_from(backend: Backend, first: usize, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(8 + rows * (2 + width * 7));
    sql.push_str("VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        push_placeholders(&mut sql, backend, first + row * width, width);
        sql.push(')');
    }
    sql
}

/// `count` parameters numbered from `first`, comma-separated.
fn placeholders(backend: Backend, first: usize, count: usize) -> String {
    let mut sql = String::with_capacity(count * 7);
    push_placeholders(&mut sql, backend, first, count);
    sql
}

fn push_placeholders(sql: &mut String, backend: Backend, first: usize, count: usize) {
    use std::fmt::Write as _;
    for n in first..first + count {
        if n > first {
            sql.push_str(", ");
        }
        // Parameter `n` (1-based) as the backend binds it fastest. SQLite gets
        // positional `?`: sqlx binds `$n` by name there, and SQLite looks each name up
        // by walking the list of names, which is quadratic in a statement with
        // thousands of parameters (most of a batch's CPU time before this). Callers
        // bind in order either way.
        match backend {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                let _ = write!(sql, "${n}");
            }
        }
    }
}

/// Parameter `n` (1-based); see [`push_placeholders`].
fn param(backend: Backend, n: usize) -> String {
    let mut sql = String::with_capacity(6);
    push_placeholders(&mut sql, backend, n, 1);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingers_only_while_batches_are_forming() {
        let ms = Duration::from_millis(1);
        assert_eq!(Linger::while_busy_us(0), Linger::Never);
        assert_eq!(Linger::while_busy_us(1000), Linger::WhileBusy(ms));
        for last in [0, 1] {
            assert_eq!(
                Linger::WhileBusy(ms).after(last),
                Duration::ZERO,
                "after {last}"
            );
        }
        assert_eq!(Linger::WhileBusy(ms).after(2), ms);
        assert_eq!(Linger::Always(ms).after(0), ms);
        assert_eq!(Linger::Never.after(100), Duration::ZERO);
    }

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(placeholders(Backend::Postgres, 3, 3), "$3, $4, $5");
        assert_eq!(placeholders(Backend::Postgres, 1, 0), "");
        assert_eq!(values(Backend::Postgres, 2, 2), "VALUES ($1, $2), ($3, $4)");
        assert_eq!(values(Backend::Sqlite, 2, 1), "VALUES (?), (?)");
        assert_eq!(
            values_from(Backend::Postgres, 2, 2, 2),
            "VALUES ($2, $3), ($4, $5)"
        );
    }
}
