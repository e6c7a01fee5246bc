//! What the criterion benches drive of the gateway without a socket (not an API: hidden
//! from the docs, and free to change with the benches).

use socket_hub_protocol::{Message, User};
use tokio_util::sync::CancellationToken;

use super::hub::deliver_chat;
use super::outbound::{Queue, SessionHandle};
use crate::broker::Envelope;

/// A room's local members as the room task sees them (session handles), with the
/// receiving ends of their outbound queues as their writers would hold them.
pub struct FanOut {
    members: Vec<SessionHandle>,
    queues: Vec<Queue>,
}

impl FanOut {
    /// A room of `members` connections whose queues hold `capacity` frames each (the
    /// server's default is 256).
    pub fn new(members: usize, capacity: usize) -> Self {
        let (members, queues) = (0..members)
            .map(|i| {
                let id = u64::try_from(i).unwrap_or(u64::MAX);
                let user = User {
                    id: i64::try_from(i).unwrap_or(i64::MAX),
                    username: format!("member{i}"),
                };
                SessionHandle::new(id, user, capacity, CancellationToken::new())
            })
            .unzip();
        Self { members, queues }
    }

    /// Encodes `message` into its `chat` frame once, queues it for every member, then
    /// empties each queue as its writer would. Returns the number of deliveries queued.
    pub fn deliver(&mut self, message: &Message) -> u64 {
        let Envelope { frame, .. } = Envelope::chat(message);
        let delivered = deliver_chat(&self.members, message.room_id, message.seq, &frame);
        for queue in &mut self.queues {
            // One lock for the whole queue, the buffer handed back: as the writer does.
            let mut batch = queue.take_all();
            for item in batch.drain(..) {
                std::hint::black_box(item);
            }
            queue.put_back(batch);
        }
        delivered
    }
}
