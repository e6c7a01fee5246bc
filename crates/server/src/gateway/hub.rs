//! This process's live rooms: one task per room that has local connections.
//!
//! A room task owns the room's broker subscription and its local members. It turns
//! whatever the broker delivers (possibly reordered, possibly with holes) into one
//! gap-free, ordered stream, refilling from the store when it sees a hole or a lag, and
//! hands each frame's shared bytes to every member's bounded queue. It exits when its
//! last member leaves, which drops the broker subscription.
//!
//! Presence (the broker's enter, exit and list, which may be remote calls) never runs in
//! a room task: presence workers do it, so a slow broker delays `room_joined` and
//! `join`/`leave` notices, never the room's messages. Workers are picked by room id,
//! so one room's presence changes are applied in order, also across room tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use socket_hub_protocol::{RoomId, Seq, ServerFrame, User};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::early::EarlyChats;
use super::notices::Notices;
use super::outbound::{CloseReason, Outbound, SessionHandle};
use super::seq::{SeqCursor, SeqStep};
use crate::broker::{Broker, Envelope, EnvelopeKind, Received, Subscription, encode};
use crate::error::{Error, Result};
use crate::rooms::MessageStore;

/// Messages read from the store per query when refilling.
const REFILL_PAGE: u32 = 500;
/// Commands a room task buffers; joins and leaves wait for room rather than fail.
const COMMAND_CAPACITY: usize = 256;
/// Presence workers, each serving the rooms whose id maps to it.
const PRESENCE_WORKERS: usize = 8;
/// Presence jobs a worker buffers. A room task waits for room only when its worker is
/// this far behind (a broker that hangs while many connections come and go).
const PRESENCE_QUEUE: usize = 1024;

/// The registry of this process's live rooms.
pub struct Hub {
    // std Mutex: held only for map lookups and inserts, never across an `.await`.
    rooms: Mutex<HashMap<RoomId, mpsc::Sender<Command>>>,
    store: MessageStore,
    broker: Arc<dyn Broker>,
    presence: Vec<mpsc::Sender<PresenceJob>>,
}

enum Command {
    Join {
        session: SessionHandle,
        since: Option<Seq>,
        reply: oneshot::Sender<Result<()>>,
    },
    Leave {
        session_id: u64,
    },
}

/// Work for a presence worker.
enum PresenceJob {
    /// Count the session in, then tell its room task who is online.
    Enter {
        room_id: RoomId,
        join: PendingJoin,
        entered: mpsc::UnboundedSender<Entered>,
    },
    /// Count one connection of `user` out, announcing `leave` if it was the last.
    Exit { room_id: RoomId, user: User },
}

/// A join waiting for presence.
struct PendingJoin {
    session: SessionHandle,
    since: Option<Seq>,
    reply: oneshot::Sender<Result<()>>,
}

/// A worker's answer to `Enter`: the users online in the room, or why the join fails.
struct Entered {
    join: PendingJoin,
    members: Result<Vec<User>>,
}

impl Hub {
    /// A hub with its presence workers running.
    pub fn new(store: MessageStore, broker: Arc<dyn Broker>) -> Arc<Self> {
        let presence = (0..PRESENCE_WORKERS)
            .map(|_| {
                let (tx, rx) = mpsc::channel(PRESENCE_QUEUE);
                tokio::spawn(presence_worker(broker.clone(), rx));
                tx
            })
            .collect();
        Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            store,
            broker,
            presence,
        })
    }

    /// Adds `session` to the room's live stream. The session's writer then gets
    /// `Joined` (with the replay range when `since` is given) before any live message.
    pub(crate) async fn join(
        self: &Arc<Self>,
        room_id: RoomId,
        session: SessionHandle,
        since: Option<Seq>,
    ) -> Result<()> {
        // A room task that is retiring drops commands; a new one is started on retry.
        for _ in 0..8 {
            let commands = self.room(room_id);
            let (reply, answer) = oneshot::channel();
            let command = Command::Join {
                session: session.clone(),
                since,
                reply,
            };
            if commands.send(command).await.is_err() {
                self.forget(room_id, &commands);
                continue;
            }
            match answer.await {
                Ok(result) => return result,
                Err(_) => self.forget(room_id, &commands),
            }
        }
        Err(Error::Internal(format!(
            "room {room_id} task keeps exiting"
        )))
    }

    /// Removes the session from the room's live stream (a no-op when not in it).
    pub(crate) async fn leave(&self, room_id: RoomId, session_id: u64) {
        let commands = self.lock().get(&room_id).cloned();
        if let Some(commands) = commands {
            let _ = commands.send(Command::Leave { session_id }).await;
        }
    }

    /// Rooms with a live task in this process.
    pub fn live_rooms(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, mpsc::Sender<Command>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room(self: &Arc<Self>, room_id: RoomId) -> mpsc::Sender<Command> {
        let mut rooms = self.lock();
        if let Some(commands) = rooms.get(&room_id)
            && !commands.is_closed()
        {
            return commands.clone();
        }
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        rooms.insert(room_id, tx.clone());
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let task = RoomTask {
            room_id,
            hub: Arc::clone(self),
            commands: rx,
            registered: tx.clone(),
            entered_tx,
            entered,
            entering: 0,
            members: Vec::new(),
            notices: Notices::default(),
            early: EarlyChats::default(),
            cursor: SeqCursor::at(0),
            last_joined: None,
        };
        tokio::spawn(task.run());
        tx
    }

    fn forget(&self, room_id: RoomId, commands: &mpsc::Sender<Command>) {
        let mut rooms = self.lock();
        if rooms
            .get(&room_id)
            .is_some_and(|c| c.same_channel(commands))
        {
            rooms.remove(&room_id);
        }
    }

    /// The presence worker of `room_id`.
    fn presence_of(&self, room_id: RoomId) -> &mpsc::Sender<PresenceJob> {
        let index = usize::try_from(room_id.rem_euclid(PRESENCE_WORKERS as i64)).unwrap_or(0);
        &self.presence[index]
    }
}

/// Runs presence jobs in order; the broker calls may be slow, nothing waits on them but
/// the joins they answer.
async fn presence_worker(broker: Arc<dyn Broker>, mut jobs: mpsc::Receiver<PresenceJob>) {
    while let Some(job) = jobs.recv().await {
        match job {
            PresenceJob::Enter {
                room_id,
                join,
                entered,
            } => {
                let user = join.session.user().clone();
                let members = match broker.presence_enter(room_id, &user).await {
                    Ok(first) => {
                        if first {
                            let frame = ServerFrame::Join {
                                room_id,
                                user: user.clone(),
                            };
                            broker.publish(Envelope::ephemeral(room_id, Some(user.id), &frame));
                        }
                        Ok(broker
                            .presence_list(room_id)
                            .await
                            .unwrap_or_else(|_| vec![user.clone()]))
                    }
                    Err(err) => Err(Error::Internal(err.to_string())),
                };
                let counted = members.is_ok();
                if entered.send(Entered { join, members }).is_err() && counted {
                    // The room task is gone (it stops with joins pending only when the
                    // broker closed its subscription): undo. Its join retries.
                    exit(&*broker, room_id, user).await;
                }
            }
            PresenceJob::Exit { room_id, user } => exit(&*broker, room_id, user).await,
        }
    }
}

/// Counts one connection of `user` out of the room; announces `leave` if it was the last.
async fn exit(broker: &dyn Broker, room_id: RoomId, user: User) {
    match broker.presence_exit(room_id, user.id).await {
        Ok(true) => {
            let user_id = user.id;
            let frame = ServerFrame::Leave { room_id, user };
            broker.publish(Envelope::ephemeral(room_id, Some(user_id), &frame));
        }
        Ok(false) => {}
        Err(err) => tracing::warn!(room_id, error = %err, "presence exit failed"),
    }
}

struct RoomTask {
    room_id: RoomId,
    hub: Arc<Hub>,
    commands: mpsc::Receiver<Command>,
    /// The sender the registry holds for this task, kept to recognise it: a retiring
    /// task removes the registry entry only if it is still its own.
    registered: mpsc::Sender<Command>,
    /// Joins whose presence is settled come back here from the presence worker.
    entered_tx: mpsc::UnboundedSender<Entered>,
    entered: mpsc::UnboundedReceiver<Entered>,
    /// Joins handed to the presence worker and not back yet: the task does not retire
    /// while any is out.
    entering: usize,
    /// Local connections in the room, in joining order. A closed connection stays until
    /// its reader's `Leave` arrives, which settles its presence.
    members: Vec<SessionHandle>,
    /// Presence, typing and read notices, sent in bursts.
    notices: Notices,
    /// Chat frames that overtook an earlier seq, held until it arrives.
    early: EarlyChats,
    /// The last seq handed to members; everything up to it has been delivered.
    cursor: SeqCursor,
    /// The last `room_joined` sent: sent again as it is while neither who is online nor
    /// the last seq changed, so a crowd reconnecting at once (many devices per person,
    /// a restart) does not encode the same list of everyone once per connection.
    last_joined: Option<JoinedFrame>,
}

/// A `room_joined` frame and what it was made of.
struct JoinedFrame {
    members: Vec<User>,
    last_seq: Seq,
    frame: Utf8Bytes,
}

impl RoomTask {
    async fn run(mut self) {
        let mut subscription = match self.start().await {
            Ok(subscription) => subscription,
            Err(err) => {
                tracing::warn!(room_id = self.room_id, error = %err, "room failed to start");
                self.fail_pending(err);
                return;
            }
        };
        metrics::gauge!("socket_hub_live_rooms").increment(1.0);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Join { session, since, reply }) => {
                        self.join(PendingJoin { session, since, reply }).await;
                    }
                    Some(Command::Leave { session_id }) => self.remove(session_id, None).await,
                    None => break,
                },
                Some(entered) = self.entered.recv() => self.admit(entered).await,
                () = self.notices.due(), if self.notices.holding() => self.flush_notices(),
                () = self.early.due(), if self.early.holding() => self.refill().await,
                received = subscription.recv() => match received {
                    Some(Received::Envelope(envelope)) => self.on_envelope(envelope).await,
                    Some(Received::Lagged) => self.refill().await,
                    None => {
                        // The broker dropped us (shutting down): members reconnect, and
                        // joins still queued are retried on a new task.
                        tracing::warn!(room_id = self.room_id, "broker closed the room subscription");
                        for member in std::mem::take(&mut self.members) {
                            member.exit_room(self.room_id);
                            member.close(CloseReason::ServiceRestart);
                            self.settle_exit(member.user().clone()).await;
                        }
                        self.hub.forget(self.room_id, &self.registered);
                        break;
                    }
                },
            }
            if self.members.is_empty() && self.entering == 0 && self.retire() {
                break;
            }
        }
        metrics::gauge!("socket_hub_live_rooms").decrement(1.0);
    }

    /// Subscribes before reading the newest seq, so nothing falls in between.
    async fn start(&mut self) -> Result<Subscription> {
        let subscription = self
            .hub
            .broker
            .subscribe(self.room_id)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.cursor = SeqCursor::at(self.hub.store.last_seq(self.room_id).await?);
        Ok(subscription)
    }

    fn fail_pending(&mut self, err: Error) {
        self.hub.forget(self.room_id, &self.registered);
        let message = err.to_string();
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Join { reply, .. } = command {
                let _ = reply.send(Err(Error::Internal(message.clone())));
            }
        }
    }

    /// Leaves the registry if no join is waiting; `false` means keep running.
    fn retire(&mut self) -> bool {
        let mut rooms = self.hub.lock();
        if !self.commands.is_empty() {
            return false;
        }
        if rooms
            .get(&self.room_id)
            .is_some_and(|c| c.same_channel(&self.registered))
        {
            rooms.remove(&self.room_id);
        }
        // Commands sent after this point find the channel closed and start a new task.
        self.commands.close();
        drop(rooms);
        true
    }

    /// Hands the join to the presence worker; it comes back through `entered`.
    async fn join(&mut self, join: PendingJoin) {
        let job = PresenceJob::Enter {
            room_id: self.room_id,
            join,
            entered: self.entered_tx.clone(),
        };
        match self.hub.presence_of(self.room_id).send(job).await {
            Ok(()) => self.entering += 1,
            Err(mpsc::error::SendError(job)) => {
                if let PresenceJob::Enter { join, .. } = job {
                    let _ = join
                        .reply
                        .send(Err(Error::Internal("presence worker stopped".into())));
                }
            }
        }
    }

    /// `room_joined` listing `members` at `last_seq`: the previous frame when it said
    /// exactly that (see `last_joined`).
    fn joined_frame(&mut self, members: Vec<User>, last_seq: Seq) -> Utf8Bytes {
        if let Some(last) = &self.last_joined
            && last.last_seq == last_seq
            && last.members == members
        {
            return last.frame.clone();
        }
        let joined = ServerFrame::RoomJoined {
            room_id: self.room_id,
            members,
            last_seq,
        };
        let frame = encode(&joined);
        if let ServerFrame::RoomJoined { members, .. } = joined {
            self.last_joined = Some(JoinedFrame {
                members,
                last_seq,
                frame: frame.clone(),
            });
        }
        frame
    }

    /// Completes a join whose presence is settled: from here on the member gets the
    /// room's stream, after a replay from `since` up to what the room has delivered.
    async fn admit(&mut self, entered: Entered) {
        self.entering = self.entering.saturating_sub(1);
        let Entered { join, members } = entered;
        let members = match members {
            Ok(members) => members,
            Err(err) => {
                let _ = join.reply.send(Err(err));
                return;
            }
        };
        let last_seq = self.cursor.last();
        let frame = self.joined_frame(members, last_seq);
        let since = join.since.map_or(last_seq, |s| s.clamp(0, last_seq));
        let accepted = join.session.push(Outbound::Joined {
            room_id: self.room_id,
            since,
            last_seq,
            frame,
        });
        if accepted {
            join.session.enter_room(self.room_id);
            self.members.push(join.session);
        } else {
            self.settle_exit(join.session.user().clone()).await;
        }
        let _ = join.reply.send(Ok(()));
    }

    /// Removes a member and settles its presence; `notice` (a `room_left` frame) tells
    /// its writer when the member did not ask to leave.
    async fn remove(&mut self, session_id: u64, notice: Option<Utf8Bytes>) {
        let Some(index) = self.members.iter().position(|m| m.id() == session_id) else {
            return;
        };
        // In order: held notices are for a prefix of the members.
        let session = self.members.remove(index);
        self.notices.member_removed(index);
        session.exit_room(self.room_id);
        if let Some(frame) = notice {
            session.push(Outbound::Left {
                room_id: self.room_id,
                frame,
            });
        }
        self.settle_exit(session.user().clone()).await;
    }

    /// Queues the presence exit for the worker (waiting only if it is far behind).
    async fn settle_exit(&self, user: User) {
        let job = PresenceJob::Exit {
            room_id: self.room_id,
            user,
        };
        if self.hub.presence_of(self.room_id).send(job).await.is_err() {
            tracing::warn!(room_id = self.room_id, "presence worker stopped");
        }
    }

    async fn on_envelope(&mut self, envelope: Envelope) {
        match envelope.kind {
            EnvelopeKind::Chat { seq } => match self.cursor.classify(seq) {
                SeqStep::Stale => {}
                SeqStep::Next => {
                    self.fan_out_chat(seq, envelope.frame);
                    self.fan_out_early();
                }
                // A hole: the missing messages are committed (seq is assigned under the
                // room's write lock) and their envelopes are most likely on their way;
                // the store has them all if they are not (see `early`).
                SeqStep::Gap => {
                    if !self.early.hold(seq, envelope.frame) {
                        self.refill().await;
                    }
                }
            },
            EnvelopeKind::Ephemeral { except_user } => {
                let queued = self
                    .notices
                    .offer(&self.members, envelope.frame, except_user);
                crate::metrics::frames_queued(queued);
            }
            EnvelopeKind::Evict { user_id } => {
                self.flush_notices();
                let evicted: Vec<u64> = self
                    .members
                    .iter()
                    .filter(|m| m.user().id == user_id)
                    .map(SessionHandle::id)
                    .collect();
                for session_id in evicted {
                    self.remove(session_id, Some(envelope.frame.clone())).await;
                }
            }
            EnvelopeKind::EvictAll => {
                self.flush_notices();
                let evicted: Vec<u64> = self.members.iter().map(SessionHandle::id).collect();
                for session_id in evicted {
                    self.remove(session_id, Some(envelope.frame.clone())).await;
                }
            }
        }
    }

    fn fan_out_chat(&mut self, seq: Seq, frame: Utf8Bytes) {
        // Notices that came before the message go before it.
        self.flush_notices();
        let delivered = deliver_chat(&self.members, self.room_id, seq, &frame);
        self.cursor.advance(seq);
        crate::metrics::frames_queued(delivered);
    }

    /// Delivers the held frames that now follow the stream without a hole.
    fn fan_out_early(&mut self) {
        while let Some(frame) = self.early.take(self.cursor.last() + 1) {
            self.fan_out_chat(self.cursor.last() + 1, frame);
        }
    }

    fn flush_notices(&mut self) {
        if self.notices.holding() {
            crate::metrics::frames_queued(self.notices.flush(&self.members));
        }
    }

    /// Delivers everything stored after the cursor, in order.
    async fn refill(&mut self) {
        crate::metrics::room_refilled();
        loop {
            let page = match self
                .hub
                .store
                .after(self.room_id, self.cursor.last(), REFILL_PAGE)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    // The next envelope, lag or wait retries; members resume by seq anyway.
                    tracing::warn!(room_id = self.room_id, error = %err, "refill failed");
                    self.early.restart();
                    return;
                }
            };
            let full = page.len() == REFILL_PAGE as usize;
            for message in page {
                let seq = message.seq;
                self.fan_out_chat(seq, Envelope::chat(&message).frame);
            }
            if !full {
                // Every held frame was committed before it was published, so the store
                // had it: anything still held is behind the cursor now.
                self.early.clear();
                return;
            }
        }
    }
}

/// Queues one chat frame, encoded once, for every member: per member a reference-count
/// bump and a non-blocking push, no allocation and no JSON. Returns how many took it.
pub(super) fn deliver_chat(
    members: &[SessionHandle],
    room_id: RoomId,
    seq: Seq,
    frame: &Utf8Bytes,
) -> u64 {
    let mut delivered = 0u64;
    for member in members {
        let item = Outbound::Chat {
            room_id,
            seq,
            frame: frame.clone(),
        };
        if member.push(item) {
            delivered += 1;
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use socket_hub_protocol::Message;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::broker::local::LocalBroker;
    use crate::gateway::outbound::Queue;
    use crate::store::{Db, DbOptions};

    const ROOM: RoomId = 7;
    const WAIT: Duration = Duration::from_secs(10);

    /// A hub over a fresh SQLite file (one user, room [`ROOM`], nothing stored) with one
    /// member joined; the file stays with the returned directory.
    async fn joined() -> (Arc<Hub>, Arc<LocalBroker>, Queue, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hub.db").display().to_string();
        let db = Db::open(&format!("sqlite://{path}"), &DbOptions::default())
            .await
            .expect("open");
        let conn = rusqlite::Connection::open(&path).expect("second connection");
        conn.execute_batch(
            "INSERT INTO users (id, username, username_key, password_hash, created_at)
                 VALUES (1, 'ada', 'ada', 'x', 0);
             INSERT INTO rooms (id, name, is_private, owner_id, created_at)
                 VALUES (7, 'general', 0, 1, 0);",
        )
        .expect("seed");
        let broker = Arc::new(LocalBroker::new());
        let hub = Hub::new(MessageStore::new(db), broker.clone());
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, queue) = SessionHandle::new(1, user, 256, CancellationToken::new());
        hub.join(ROOM, session, None).await.expect("join");
        (hub, broker, queue, path, dir)
    }

    fn chat(seq: Seq) -> Envelope {
        Envelope::chat(&Message {
            room_id: ROOM,
            seq,
            content: format!("message {seq}"),
            ..Message::default()
        })
    }

    /// The seqs of the next `count` chat frames the member's writer would get.
    async fn chats(queue: &mut Queue, count: usize) -> Vec<Seq> {
        let mut seqs = Vec::new();
        while seqs.len() < count {
            let item = tokio::time::timeout(WAIT, queue.recv())
                .await
                .expect("a chat frame in time")
                .expect("queue open");
            if let Outbound::Chat { seq, frame, .. } = item {
                assert!(frame.as_str().contains(&format!("message {seq}")));
                seqs.push(seq);
            }
        }
        seqs
    }

    #[tokio::test]
    async fn envelopes_that_overtake_each_other_go_out_in_order_without_the_store() {
        // Nothing is stored: a read of the store would deliver nothing, so only
        // holding the early frames gets all three through.
        let (_hub, broker, mut queue, _path, _dir) = joined().await;
        broker.publish(chat(2));
        broker.publish(chat(3));
        broker.publish(chat(1));
        assert_eq!(chats(&mut queue, 3).await, vec![1, 2, 3]);
        broker.publish(chat(5));
        broker.publish(chat(4));
        assert_eq!(chats(&mut queue, 2).await, vec![4, 5]);
    }

    #[tokio::test]
    async fn a_hole_that_stays_open_is_filled_from_the_store() {
        let (_hub, broker, mut queue, path, _dir) = joined().await;
        // Seq 1 is committed but its envelope never comes (its sender vanished
        // between the commit and the publish).
        rusqlite::Connection::open(&path)
            .expect("second connection")
            .execute_batch(
                "INSERT INTO messages (room_id, seq, user_id, content, created_at)
                     VALUES (7, 1, 1, 'message 1', 0), (7, 2, 1, 'message 2', 0);
                 UPDATE rooms SET last_seq = 2 WHERE id = 7;",
            )
            .expect("store two messages");
        broker.publish(chat(2));
        assert_eq!(chats(&mut queue, 2).await, vec![1, 2]);
        // The stream goes on live after the refill.
        broker.publish(chat(3));
        assert_eq!(chats(&mut queue, 1).await, vec![3]);
    }
}
