//! Argon2id hashing for passwords and room access codes, run off the async runtime
//! because each hash deliberately takes tens of milliseconds of CPU and 19 MiB of
//! memory. At most one hash per core runs at a time: a burst of logins queues instead of
//! taking every blocking thread and hundreds of megabytes at once. The queue itself is
//! bounded ([`Hasher`]) and keeps places that only verifications (logins, access codes)
//! may take, so a registration flood is refused before it can stop logins.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::Error;

/// What an argon2 computation is for, which decides the queue places it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Checking a secret someone presents (login, a room's access code): may use the
    /// places reserved for it, so a flood of creations never stops people signing in.
    Verify,
    /// Hashing a new secret (registration, a private room's creation): shared places only.
    Create,
}

/// How long a client refused by a full queue is asked to wait: a queue's worth of
/// hashes takes about this long to drain on a small machine.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The bounded argon2 queue. At most one hash per core runs at a time; at most `queue`
/// hashes run or wait, of which `reserved` only for [`Lane::Verify`]. A request that
/// finds no place is refused at once (`rate_limited` with `Retry-After`) instead of
/// waiting behind an unbounded line. Cloning bumps a reference count.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    /// Hashes computing now: one per core (each takes 19 MiB and a core for tens of ms).
    running: Semaphore,
    /// Queue places any lane may take.
    shared: Semaphore,
    /// Queue places only verifications may take.
    reserved: Semaphore,
}

impl Hasher {
    /// A queue of `queue` places, `reserved` of them for verifications (`reserved <
    /// queue`, checked by the config).
    pub fn new(queue: usize, reserved: usize) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            inner: Arc::new(Inner {
                running: Semaphore::new(workers),
                shared: Semaphore::new(queue.saturating_sub(reserved).max(1)),
                reserved: Semaphore::new(reserved),
            }),
        }
    }

    /// A place in the queue for `lane`, or `rate_limited` when there is none.
    fn admit(&self, lane: Lane) -> Result<SemaphorePermit<'_>, Error> {
        let inner = &self.inner;
        let place = inner.shared.try_acquire().or_else(|err| match lane {
            Lane::Verify => inner.reserved.try_acquire(),
            Lane::Create => Err(err),
        });
        place.map_err(|_| Error::RateLimited {
            retry_after: FULL_RETRY_AFTER,
        })
    }

    /// Runs one argon2 computation on the blocking pool, once admitted and within the
    /// concurrency bound.
    async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _place = self.admit(lane)?;
        let _running = self
            .inner
            .running
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("hash permit: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("hash task: {e}")))
    }

    /// Hashes `secret` with argon2id and a random salt (PHC string format).
    pub async fn hash(&self, secret: String) -> Result<String, Error> {
        self.run(Lane::Create, move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
        })
        .await?
    }

    /// Whether `secret` matches `hash`; a malformed stored hash never matches.
    pub async fn verify(&self, secret: String, hash: String) -> Result<bool, Error> {
        self.run(Lane::Verify, move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .await
    }
}

impl Default for Hasher {
    /// The defaults of `--hash-queue` and `--hash-queue-reserved`.
    fn default() -> Self {
        Self::new(64, 16)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hash_verifies_only_its_secret() {
        let hasher = super::Hasher::default();
        let hash = hasher.hash("correct horse".into()).await.expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), hash.clone())
                .await
                .expect("runs")
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), hash)
                .await
                .expect("runs")
        );
    }
}
