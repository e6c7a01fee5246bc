//! The write-transaction discipline: every write runs inside a [`WriteTx`], and a
//! connection goes back to its pool only after its COMMIT or ROLLBACK succeeded.
//!
//! sqlx counts transaction depth per connection and only decrements it when COMMIT or
//! ROLLBACK succeed. After a failed COMMIT (SQLITE_FULL, an I/O error, a lost PostgreSQL
//! connection) the pooled connection would otherwise stay "inside" a transaction, and
//! every later "commit" on it would only release a savepoint: writes acknowledged and
//! never stored. So this module issues `BEGIN`/`COMMIT`/`ROLLBACK` itself and, on any
//! error, on an early return, or when the future is cancelled, closes the connection
//! instead of returning it (closing rolls back whatever was open); the pool opens a
//! fresh one for the next write.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

use super::{Backend, StoreError};

/// An open write transaction on one pooled connection. Run statements with
/// `.execute(&mut *tx)`; end it with [`commit`](Self::commit) or
/// [`rollback`](Self::rollback). Dropping it any other way (an error returned with `?`,
/// cancellation) discards the connection.
pub struct WriteTx {
    conn: PoolConnection<Any>,
    /// Set once COMMIT or ROLLBACK succeeded: only then may the connection be reused.
    finished: bool,
}

impl WriteTx {
    /// Starts a transaction on `conn`. SQLite takes the write lock at once (`BEGIN
    /// IMMEDIATE`) so a transaction never has to upgrade a read lock half-way.
    pub(super) async fn begin(
        conn: PoolConnection<Any>,
        backend: Backend,
    ) -> Result<Self, StoreError> {
        let mut tx = Self {
            conn,
            finished: false,
        };
        let begin = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        sqlx::query(begin).execute(&mut *tx.conn).await?;
        Ok(tx)
    }

    /// Makes the transaction durable. On error nothing may be assumed stored and the
    /// connection is discarded.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.finished = true;
        Ok(())
    }

    /// Marks the transaction finished by a `COMMIT` the caller ran as the last
    /// statement of its own query (so a batch's writes and its commit are one round
    /// trip to SQLite's worker thread). Call it only after that query succeeded.
    pub fn committed_by_query(mut self) {
        self.finished = true;
    }

    /// Undoes the transaction on purpose (a no-op outcome such as a duplicate). If the
    /// ROLLBACK itself fails the connection is discarded, which also rolls back.
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        self.finished = true;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.finished {
            crate::metrics::writer_discarded();
            tracing::warn!("write transaction abandoned; discarding its connection");
            self.conn.close_on_drop();
        }
    }
}
