//! This process's live rooms: one task per room that has local connections.
//!
//! A room task owns the room's broker subscription and its local members. It turns
//! whatever the broker delivers (possibly reordered, possibly with holes) into one
//! gap-free, ordered stream, refilling from the store when it sees a hole or a lag, and
//! hands each frame's shared bytes to every member's bounded queue. It exits when its
//! last member leaves, which drops the broker subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use socket_hub_protocol::{RoomId, Seq, ServerFrame, User, UserId};
use tokio::sync::{mpsc, oneshot};

use super::outbound::{Outbound, SessionHandle};
use crate::broker::{Broker, Envelope, EnvelopeKind, Received, Subscription};
use crate::error::{Error, Result};
use crate::rooms::MessageStore;

/// Messages read from the store per query when refilling.
const REFILL_PAGE: u32 = 500;
/// Commands a room task buffers; joins and leaves wait for room rather than fail.
const COMMAND_CAPACITY: usize = 256;

/// The registry of this process's live rooms.
pub struct Hub {
    // std Mutex: held only for map lookups and inserts, never across an `.await`.
    rooms: Mutex<HashMap<RoomId, mpsc::Sender<Command>>>,
    store: MessageStore,
    broker: Arc<dyn Broker>,
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

impl Hub {
    pub fn new(store: MessageStore, broker: Arc<dyn Broker>) -> Arc<Self> {
        Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            store,
            broker,
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
        let task = RoomTask {
            room_id,
            hub: Arc::clone(self),
            commands: rx,
            registered: tx.clone(),
            members: Vec::new(),
            last_seq: 0,
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
}

struct RoomTask {
    room_id: RoomId,
    hub: Arc<Hub>,
    commands: mpsc::Receiver<Command>,
    /// The sender the registry holds for this task, kept to recognise it: a retiring
    /// task removes the registry entry only if it is still its own.
    registered: mpsc::Sender<Command>,
    /// Local connections in the room. A closed connection stays until its reader's
    /// `Leave` arrives, which settles its presence.
    members: Vec<SessionHandle>,
    /// Highest seq handed to members; everything up to it has been delivered.
    last_seq: Seq,
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
                        let result = self.join(session, since).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Leave { session_id }) => self.remove(session_id, None).await,
                    None => break,
                },
                received = subscription.recv() => match received {
                    Some(Received::Envelope(envelope)) => self.on_envelope(envelope).await,
                    Some(Received::Lagged) => self.refill().await,
                    None => {
                        // The broker dropped us (shutting down): members reconnect.
                        tracing::warn!(room_id = self.room_id, "broker closed the room subscription");
                        for member in std::mem::take(&mut self.members) {
                            member.close(socket_hub_protocol::CloseCode::SERVICE_RESTART);
                            self.settle_exit(member.user().clone()).await;
                        }
                    }
                },
            }
            if self.members.is_empty() && self.retire() {
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
        self.last_seq = self.hub.store.last_seq(self.room_id).await?;
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

    async fn join(&mut self, session: SessionHandle, since: Option<Seq>) -> Result<()> {
        let broker = &self.hub.broker;
        let user = session.user().clone();
        let first = broker
            .presence_enter(self.room_id, &user)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let members = broker
            .presence_list(self.room_id)
            .await
            .unwrap_or_else(|_| vec![user.clone()]);
        let frame = encode(&ServerFrame::RoomJoined {
            room_id: self.room_id,
            members,
            last_seq: self.last_seq,
        });
        let since = since.map_or(self.last_seq, |s| s.clamp(0, self.last_seq));
        let accepted = session.push(Outbound::Joined {
            room_id: self.room_id,
            since,
            last_seq: self.last_seq,
            frame,
        });
        if !accepted {
            let _ = broker.presence_exit(self.room_id, user.id).await;
            return Ok(());
        }
        self.members.push(session);
        if first {
            self.announce(
                ServerFrame::Join {
                    room_id: self.room_id,
                    user: user.clone(),
                },
                user.id,
            )
            .await;
        }
        Ok(())
    }

    /// Removes a member and settles its presence; `notice` (a `room_left` frame) tells
    /// its writer when the member did not ask to leave.
    async fn remove(&mut self, session_id: u64, notice: Option<Utf8Bytes>) {
        let Some(index) = self.members.iter().position(|m| m.id() == session_id) else {
            return;
        };
        let session = self.members.swap_remove(index);
        if let Some(frame) = notice {
            session.push(Outbound::Left {
                room_id: self.room_id,
                frame,
            });
        }
        self.settle_exit(session.user().clone()).await;
    }

    async fn settle_exit(&self, user: User) {
        match self.hub.broker.presence_exit(self.room_id, user.id).await {
            Ok(true) => {
                let user_id = user.id;
                self.announce(
                    ServerFrame::Leave {
                        room_id: self.room_id,
                        user,
                    },
                    user_id,
                )
                .await;
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(room_id = self.room_id, error = %err, "presence exit failed")
            }
        }
    }

    /// Publishes a presence change to every process's members except `user_id`'s own.
    async fn announce(&self, frame: ServerFrame, user_id: UserId) {
        let envelope = Envelope {
            room_id: self.room_id,
            kind: EnvelopeKind::Ephemeral {
                except_user: Some(user_id),
            },
            frame: encode(&frame),
        };
        if let Err(err) = self.hub.broker.publish(envelope).await {
            tracing::warn!(room_id = self.room_id, error = %err, "presence publish failed");
        }
    }

    async fn on_envelope(&mut self, envelope: Envelope) {
        match envelope.kind {
            EnvelopeKind::Chat { seq } if seq <= self.last_seq => {}
            EnvelopeKind::Chat { seq } if seq == self.last_seq + 1 => {
                self.fan_out_chat(seq, envelope.frame);
            }
            // A hole: the missing messages are committed (seq is assigned under the
            // room's write lock), so the store has them all.
            EnvelopeKind::Chat { .. } => self.refill().await,
            EnvelopeKind::Ephemeral { except_user } => {
                let mut delivered = 0u64;
                for member in &self.members {
                    if Some(member.user().id) != except_user
                        && member.push(Outbound::Frame(envelope.frame.clone()))
                    {
                        delivered += 1;
                    }
                }
                metrics::counter!("socket_hub_frames_delivered_total").increment(delivered);
            }
            EnvelopeKind::Evict { user_id } => {
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
        }
    }

    fn fan_out_chat(&mut self, seq: Seq, frame: Utf8Bytes) {
        let mut delivered = 0u64;
        for member in &self.members {
            let item = Outbound::Chat {
                room_id: self.room_id,
                seq,
                frame: frame.clone(),
            };
            if member.push(item) {
                delivered += 1;
            }
        }
        self.last_seq = seq;
        metrics::counter!("socket_hub_frames_delivered_total").increment(delivered);
    }

    /// Delivers everything stored after `last_seq`, in order.
    async fn refill(&mut self) {
        metrics::counter!("socket_hub_room_refills_total").increment(1);
        loop {
            let page = match self
                .hub
                .store
                .after(self.room_id, self.last_seq, REFILL_PAGE)
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    // The next envelope or lag retries; members resume by seq anyway.
                    tracing::warn!(room_id = self.room_id, error = %err, "refill failed");
                    return;
                }
            };
            let full = page.len() == REFILL_PAGE as usize;
            for message in page {
                let seq = message.seq;
                self.fan_out_chat(seq, encode(&ServerFrame::Chat { message }));
            }
            if !full {
                return;
            }
        }
    }
}

/// Encodes a frame once into shareable bytes.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}
