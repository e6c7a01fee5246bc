//! Per-key token buckets with bounded memory: the per-user send and room-creation
//! quotas and the per-address registration throttle.
//!
//! A bucket idle long enough to have refilled is the same as no bucket, so it is
//! dropped when the table fills up; memory is bounded by `max_keys` whatever the
//! number of users or addresses. Buckets live in this process only: with several
//! instances behind a balancer each instance grants its own allowance (documented in
//! `docs/security.md`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use socket_hub_protocol::UserId;

use crate::config::Config;
use crate::error::Error;

/// Every quota of this process, shared by the services that enforce them.
#[derive(Debug)]
pub struct Quotas {
    /// Message sends per user, REST and WebSocket alike (`--user-send-*`).
    pub sends: KeyedLimiter<UserId>,
    /// User searches per user (`--user-search-*`).
    pub searches: KeyedLimiter<UserId>,
    /// Room creations per user (`--room-create-*`).
    pub room_creates: KeyedLimiter<UserId>,
    /// Registrations per client address, an IPv6 /64 (`--register-*`).
    pub registrations: KeyedLimiter<IpAddr>,
}

impl Quotas {
    /// The quotas `config` asks for (validated: every rate is positive).
    pub fn new(config: &Config) -> Self {
        let per_hour = |n: u32| f64::from(n) / 3600.0;
        Self {
            sends: KeyedLimiter::new(
                config.user_send_per_sec,
                config.user_send_burst,
                config.quota_max_keys,
            ),
            searches: KeyedLimiter::new(
                config.user_search_per_sec,
                config.user_search_burst,
                config.quota_max_keys,
            ),
            room_creates: KeyedLimiter::new(
                per_hour(config.room_create_per_hour),
                config.room_create_burst,
                config.quota_max_keys,
            ),
            registrations: KeyedLimiter::new(
                per_hour(config.register_per_hour),
                config.register_burst,
                config.quota_max_keys,
            ),
        }
    }

    /// Takes a registration from `addr`'s allowance.
    pub fn register(&self, addr: IpAddr) -> Result<(), Error> {
        self.registrations.check(&address_key(addr))
    }
}

/// One bucket: `tokens` as of `last`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by `K`, all with the same rate and burst. Runs on tokio's clock.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    per_sec: f64,
    burst: f64,
    max_keys: usize,
    /// A std mutex: held for a hash lookup and a little arithmetic, never across an
    /// `.await`.
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_sec` tokens per second (fractions allowed: `1.0 / 60.0` is one a minute),
    /// at most `burst` saved up, at most `max_keys` buckets held.
    pub fn new(per_sec: f64, burst: u32, max_keys: usize) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst.max(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket, or says how long until it holds one as
    /// [`Error::RateLimited`].
    pub fn check(&self, key: &K) -> Result<(), Error> {
        self.take(key, Instant::now())
            .map_err(|retry_after| Error::RateLimited { retry_after })
    }

    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.last = now;
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_sec;
            Err(Duration::from_secs_f64(wait.min(86_400.0)).max(Duration::from_millis(1)))
        }
    }

    /// Drops every bucket that has refilled (forgetting it changes nothing); if that
    /// frees too little, the least recently used half too (forgiving their debt is the
    /// price of bounded memory; it takes `max_keys / 2` fresh keys to force it).
    fn evict(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let full_after = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * self.per_sec >= self.burst
        };
        buckets.retain(|_, b| !full_after(b));
        if buckets.len() >= self.max_keys - self.max_keys / 8 {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.last).collect();
            ages.sort_unstable();
            if let Some(&cutoff) = ages.get(ages.len() / 2) {
                buckets.retain(|_, b| b.last > cutoff);
            }
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a per-address limit: the address itself for IPv4, its /64 for IPv6 (one
/// subscriber usually holds a whole /64, so per-address would be per-nothing).
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_key() {
        let start = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 2, 10);
        assert!(limiter.take(&1, start).is_ok());
        assert!(limiter.take(&1, start).is_ok());
        let wait = limiter.take(&1, start).expect_err("empty");
        assert!((999..=1000).contains(&wait.as_millis()), "{wait:?}");
        assert!(limiter.take(&2, start).is_ok(), "another key has its own");
        assert!(limiter.take(&1, start + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let start = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 5, 64);
        for key in 0..10_000u32 {
            let _ = limiter.take(&key, start);
            assert!(limiter.len() <= 64);
        }
        // Refilled buckets are dropped first, so keys still in debt keep their debt.
        let limiter = KeyedLimiter::new(1.0, 1, 4);
        assert!(limiter.take(&0, start).is_ok());
        let later = start + Duration::from_secs(2);
        for key in 1..4 {
            assert!(limiter.take(&key, later).is_ok());
        }
        assert!(limiter.take(&4, later).is_ok(), "evicts the refilled key 0");
        assert_eq!(limiter.len(), 4);
        assert!(
            limiter
                .take(&1, later + Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(v4), v4);
    }
}
