//! Argon2id hashing for passwords and room access codes, run off the async runtime
//! because each hash deliberately takes tens of milliseconds of CPU and 19 MiB of
//! memory. At most one hash per core runs at a time: a burst of logins queues instead of
//! taking every blocking thread and hundreds of megabytes at once.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use crate::error::Error;

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
});

/// Runs one argon2 computation on the blocking pool, within the concurrency bound.
async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| Error::Internal(format!("hash permit: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))
}

/// Hashes `secret` with argon2id and a random salt (PHC string format).
pub async fn hash(secret: String) -> Result<String, Error> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
    })
    .await?
}

/// Whether `secret` matches `hash`; a malformed stored hash never matches.
pub async fn verify(secret: String, hash: String) -> Result<bool, Error> {
    bounded(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
    .await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hash_verifies_only_its_secret() {
        let hash = super::hash("correct horse".into()).await.expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            super::verify("correct horse".into(), hash.clone())
                .await
                .expect("runs")
        );
        assert!(
            !super::verify("wrong horse".into(), hash)
                .await
                .expect("runs")
        );
    }
}
