//! "Last seen" times, written in batches: everyone whose time is queued goes into one
//! transaction. A connect or disconnect storm changes the time of every user at once
//! (a restart: everyone goes offline, then comes back); one transaction and one fsync
//! each would queue that many writes on SQLite's single write lock, ahead of the
//! message appender's batches.
//!
//! Callers wait until their batch committed and get its outcome, as if they had written
//! alone. A lone write is not delayed: the writer takes whatever is queued when it gets
//! to it.

use std::sync::{Arc, OnceLock};

use socket_hub_protocol::UserId;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Db, StoreError};

/// Writes one batch may carry.
const BATCH: usize = 256;
/// Writes waiting before callers wait to queue.
const QUEUE: usize = 4096;

/// Handle to a batching writer of `users.last_seen_at`; cloning shares it.
#[derive(Clone)]
pub(crate) struct LastSeenWrites {
    db: Db,
    /// Started by the first write (on the caller's runtime); ends when every handle is
    /// dropped.
    queue: Arc<OnceLock<mpsc::Sender<Write>>>,
}

struct Write {
    user_id: UserId,
    at: i64,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl LastSeenWrites {
    pub(crate) fn new(db: Db) -> Self {
        Self {
            db,
            queue: Arc::default(),
        }
    }

    /// Stores `at` (Unix ms) as `user_id`'s last-seen time; returns once it committed.
    pub(crate) async fn write(&self, user_id: UserId, at: i64) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.db.clone(), receiver));
            sender
        });
        let write = Write { user_id, at, done };
        if queue.send(write).await.is_err() {
            return Err(stopped());
        }
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the last-seen writer has stopped".into())
}

async fn run(db: Db, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let outcome = store(&db, &batch).await;
        for write in batch.drain(..) {
            let _ = write.done.send(outcome.clone());
        }
    }
}

/// One transaction for the batch, in queue order (a user queued twice ends with the
/// later time).
async fn store(db: &Db, batch: &[Write]) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for write in batch {
        sqlx::query("UPDATE users SET last_seen_at = $2 WHERE id = $1")
            .bind(write.user_id)
            .bind(write.at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
