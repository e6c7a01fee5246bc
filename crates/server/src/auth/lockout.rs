//! Brute-force lockout: count failures per key and, past a threshold, refuse the key
//! for a while that doubles with every further failure (capped).
//!
//! One abstraction serves every guessable secret: passwords (keyed by username, by
//! client address, and by the pair) and room access codes (keyed by user and room, and
//! by room). The caller checks [`Lockout::check`] *before* any argon2 work, so a locked
//! key costs the server one lookup, then records a failure or resets on success.
//!
//! Where the counts live is a [`FailureCounter`]: the database ([`StoreCounter`], the
//! `lockouts` table, so it holds across instances sharing PostgreSQL) or Redis
//! ([`RedisCounter`], when `REDIS_URL` is set). A counter that cannot answer fails
//! closed (`unavailable`): a brute-force limit that opens when its store hiccups is no
//! limit.
//!
//! A key's failures are forgotten once it has seen none for the policy's window (after
//! any lock it is under has ended). Locked attempts are refused unseen, so they neither
//! count nor extend the lock: an attacker cannot keep a victim locked longer by hammering
//! a locked key, only by new failures after it opens.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Error;
use crate::store::{Db, StoreError, now_millis};

/// When a key locks and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures that lock the key; each one past it doubles the lock.
    pub threshold: u32,
    /// The first lock's length.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
    /// Failures are forgotten after this long without one (and without a lock).
    pub window: Duration,
}

impl Policy {
    /// How long the key is locked after its `failures`-th failure, if at all:
    /// `base * 2^(failures - threshold)`, at most `max`.
    pub fn lock_for(&self, failures: u64) -> Option<Duration> {
        let over = failures.checked_sub(u64::from(self.threshold))?;
        let factor = 1u32 << over.min(30);
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

/// Why a counter could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LockoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lockout counter in Redis: {0}")]
    Redis(String),
}

impl From<LockoutError> for Error {
    fn from(err: LockoutError) -> Self {
        match err {
            LockoutError::Store(err) => Error::Store(err),
            // Fail closed, as a retryable outage rather than a bug.
            LockoutError::Redis(detail) => Error::Store(StoreError::Unavailable(detail)),
        }
    }
}

/// Failure counts per key, shared by every instance that uses the same backend.
#[async_trait]
pub trait FailureCounter: Send + Sync {
    /// How much longer `key` is locked, if it is.
    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, LockoutError>;
    /// Counts one failure of `key`; returns the lock it now carries, if any.
    async fn record_failure(
        &self,
        key: &str,
        policy: &Policy,
    ) -> Result<Option<Duration>, LockoutError>;
    /// Forgets `key`'s failures (a success).
    async fn reset(&self, key: &str) -> Result<(), LockoutError>;
}

/// The counter plus the checks every caller makes; cloning bumps a reference count.
#[derive(Clone)]
pub struct Lockout {
    counter: Arc<dyn FailureCounter>,
}

impl Lockout {
    pub fn new(counter: Arc<dyn FailureCounter>) -> Self {
        Self { counter }
    }

    /// Refuses with `rate_limited` (and the longest remaining lock as `Retry-After`) when
    /// any of `keys` is locked.
    pub async fn check(&self, keys: &[&str]) -> Result<(), Error> {
        let mut longest: Option<Duration> = None;
        for key in keys {
            if let Some(wait) = self.counter.locked_for(key).await? {
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        match longest {
            Some(retry_after) => Err(Error::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts a failure against each key under its policy.
    pub async fn fail(&self, keys: &[(&str, &Policy)]) -> Result<(), Error> {
        for (key, policy) in keys {
            if let Some(lock) = self.counter.record_failure(key, policy).await? {
                tracing::warn!(key, lock_ms = millis(lock), "brute-force lockout");
            }
        }
        Ok(())
    }

    /// Forgets the failures of each key.
    pub async fn reset(&self, keys: &[&str]) -> Result<(), Error> {
        for key in keys {
            self.counter.reset(key).await?;
        }
        Ok(())
    }
}

/// Counts in the database's `lockouts` table: one row per key with failures, the end of
/// its lock and when the row may be forgotten.
pub struct StoreCounter {
    db: Db,
}

impl StoreCounter {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    locked_until: i64,
}

#[async_trait]
impl FailureCounter for StoreCounter {
    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, LockoutError> {
        let now = now_millis();
        let row: Option<Row> = sqlx::query_as(
            "SELECT locked_until FROM lockouts WHERE lock_key = $1 AND locked_until > $2",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(self.db.reader())
        .await
        .map_err(StoreError::from)?;
        Ok(row.and_then(|row| remaining(row.locked_until, now)))
    }

    async fn record_failure(
        &self,
        key: &str,
        policy: &Policy,
    ) -> Result<Option<Duration>, LockoutError> {
        let now = now_millis();
        let window = millis(policy.window);
        let mut tx = self.db.begin().await?;
        // Atomic on both backends: concurrent failures each count.
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO lockouts (lock_key, failures, locked_until, expires_at, created_at)
             VALUES ($1, 1, 0, $2, $3)
             ON CONFLICT (lock_key) DO UPDATE SET
                 failures = CASE WHEN lockouts.expires_at <= $3 THEN 1
                                 ELSE lockouts.failures + 1 END,
                 expires_at = $2
             RETURNING failures",
        )
        .bind(key)
        .bind(now + window)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let lock = policy.lock_for(u64::try_from(failures).unwrap_or(0));
        if let Some(lock) = lock {
            let until = now + millis(lock);
            sqlx::query(
                "UPDATE lockouts SET locked_until = $2, expires_at = $3 WHERE lock_key = $1",
            )
            .bind(key)
            .bind(until)
            .bind(until + window)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        // Keeps the table as small as the keys under watch.
        sqlx::query("DELETE FROM lockouts WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await?;
        Ok(lock)
    }

    async fn reset(&self, key: &str) -> Result<(), LockoutError> {
        let mut tx = self.db.begin().await?;
        sqlx::query("DELETE FROM lockouts WHERE lock_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await?;
        Ok(())
    }
}

/// Counts in Redis: one hash per key (`<prefix>lockout:<key>`, fields `n` and `until`)
/// that expires by itself, updated by one script so concurrent failures each count.
pub struct RedisCounter {
    commands: ConnectionManager,
    prefix: String,
}

/// KEYS[1] the hash; ARGV: now, threshold, base, max, window (ms). Returns the lock (ms).
const RECORD_FAILURE: &str = r"
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local lock = 0
if n >= threshold then
  local over = n - threshold
  if over > 30 then over = 30 end
  lock = base * (2 ^ over)
  if lock > max then lock = max end
  redis.call('HSET', KEYS[1], 'until', now + lock)
end
redis.call('PEXPIRE', KEYS[1], window + lock)
return lock
";

impl RedisCounter {
    /// A counter on the Redis at `url`; connects lazily and reconnects by itself.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, LockoutError> {
        let client = redis::Client::open(url).map_err(|e| LockoutError::Redis(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let commands = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LockoutError::Redis(e.to_string()))?;
        Ok(Self {
            commands,
            prefix: format!("{prefix}lockout:"),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl FailureCounter for RedisCounter {
    async fn locked_for(&self, key: &str) -> Result<Option<Duration>, LockoutError> {
        let until: Option<i64> = redis::cmd("HGET")
            .arg(self.key(key))
            .arg("until")
            .query_async(&mut self.commands.clone())
            .await
            .map_err(|e| LockoutError::Redis(e.to_string()))?;
        Ok(until.and_then(|until| remaining(until, now_millis())))
    }

    async fn record_failure(
        &self,
        key: &str,
        policy: &Policy,
    ) -> Result<Option<Duration>, LockoutError> {
        let lock: i64 = redis::cmd("EVAL")
            .arg(RECORD_FAILURE)
            .arg(1)
            .arg(self.key(key))
            .arg(now_millis())
            .arg(policy.threshold)
            .arg(millis(policy.base))
            .arg(millis(policy.max))
            .arg(millis(policy.window))
            .query_async(&mut self.commands.clone())
            .await
            .map_err(|e| LockoutError::Redis(e.to_string()))?;
        Ok((lock > 0).then(|| Duration::from_millis(lock.unsigned_abs())))
    }

    async fn reset(&self, key: &str) -> Result<(), LockoutError> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.commands.clone())
            .await
            .map_err(|e| LockoutError::Redis(e.to_string()))?;
        Ok(())
    }
}

/// Time left until `until` (Unix ms), if any.
fn remaining(until: i64, now: i64) -> Option<Duration> {
    (until > now).then(|| Duration::from_millis((until - now).unsigned_abs()))
}

fn millis(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_past_the_threshold_up_to_the_cap() {
        let policy = Policy {
            threshold: 3,
            base: Duration::from_secs(30),
            max: Duration::from_secs(300),
            window: Duration::from_secs(3600),
        };
        assert_eq!(policy.lock_for(2), None);
        assert_eq!(policy.lock_for(3), Some(Duration::from_secs(30)));
        assert_eq!(policy.lock_for(4), Some(Duration::from_secs(60)));
        assert_eq!(policy.lock_for(6), Some(Duration::from_secs(240)));
        assert_eq!(policy.lock_for(7), Some(Duration::from_secs(300)));
        assert_eq!(policy.lock_for(1_000), Some(Duration::from_secs(300)));
    }
}
