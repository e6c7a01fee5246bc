//! Per-connection token bucket: a sustained rate with room for short bursts.

use std::time::Duration;

use tokio::time::Instant;

/// Frames allowed per second with a burst allowance. Owned by one connection's reader,
/// so it needs no synchronisation. Runs on tokio's clock, so tests can pause time.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes one token at `now`; when the bucket is empty, how long until it holds one.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_sec;
            Err(Duration::from_secs_f64(wait).max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_burst_then_refills_at_rate() {
        let start = Instant::now();
        let mut limit = RateLimit::new(10, 3);
        assert!((0..3).all(|_| limit.take(start).is_ok()));
        let wait = limit.take(start).expect_err("empty");
        assert!((99..=100).contains(&wait.as_millis()), "{wait:?}");
        assert!(limit.take(start + Duration::from_millis(100)).is_ok());
        let wait = limit
            .take(start + Duration::from_millis(150))
            .expect_err("empty");
        assert!((49..=50).contains(&wait.as_millis()), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let mut limit = RateLimit::new(1, 1);
        assert!(limit.take(Instant::now()).is_ok());
        let wait = limit.take(Instant::now()).expect_err("empty");
        tokio::time::sleep(wait).await;
        assert!(limit.take(Instant::now()).is_ok());
    }
}
