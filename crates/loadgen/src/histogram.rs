//! Fixed-size log-linear latency histograms (about 1.5% resolution).
//!
//! A hot room delivers millions of messages per run; keeping every sample would cost
//! hundreds of megabytes, so latencies go into shared buckets instead, and worker
//! processes send their buckets (sparse) to the parent, which merges them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Values below this are exact.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above `LINEAR` (6 bits of mantissa).
const SUB: u64 = 64;
/// Largest power of two tracked: 2^37 µs is about 38 hours.
const MAX_EXP: u64 = 37;
const BUCKETS: usize = (LINEAR + (MAX_EXP - 6) * SUB) as usize;

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = u64::from(63 - value.leading_zeros()).min(MAX_EXP);
    let value = value.min((1 << (MAX_EXP + 1)) - 1);
    let top = value >> (exp - 6); // in [64, 128)
    (LINEAR + (exp - 7) * SUB + (top - SUB)) as usize
}

/// The middle of bucket `index`'s range.
fn value_at(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let exp = (index - LINEAR) / SUB + 7;
    let top = (index - LINEAR) % SUB + SUB;
    let width = 1u64 << (exp - 6);
    (top << (exp - 6)) + width / 2
}

/// A histogram many tasks record into at once.
pub(crate) struct SharedHistogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

impl SharedHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, value: u64) {
        if let Some(bucket) = self.buckets.get(index(value)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A histogram owned by one place: merged, queried, sent between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Sparse", into = "Sparse")]
pub struct Histogram {
    buckets: Vec<u64>,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            max: 0,
        }
    }
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, value: u64) {
        if let Some(bucket) = self.buckets.get_mut(index(value)) {
            *bucket += 1;
        }
        self.max = self.max.max(value);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.max = self.max.max(other.max);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The value at quantile `q` (0..=1), within the bucket resolution; the exact
    /// maximum for `q = 1`.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        if q >= 1.0 {
            return self.max;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value_at(i).min(self.max);
            }
        }
        self.max
    }

    /// p50/p99/p999/max in milliseconds, for reports; `None` without samples.
    pub fn millis(&self) -> Option<Quantiles> {
        (self.count() > 0).then(|| Quantiles {
            p50: self.quantile(0.50) as f64 / 1000.0,
            p90: self.quantile(0.90) as f64 / 1000.0,
            p99: self.quantile(0.99) as f64 / 1000.0,
            p999: self.quantile(0.999) as f64 / 1000.0,
            max: self.max as f64 / 1000.0,
            samples: self.count(),
        })
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub samples: u64,
}

impl std::fmt::Display for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}  ({} samples)",
            self.p50, self.p90, self.p99, self.p999, self.max, self.samples
        )
    }
}

/// Wire form: only the non-empty buckets.
#[derive(Serialize, Deserialize)]
struct Sparse {
    buckets: Vec<(u32, u64)>,
    max: u64,
}

impl From<Histogram> for Sparse {
    fn from(h: Histogram) -> Self {
        Self {
            buckets: h
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .filter_map(|(i, c)| Some((u32::try_from(i).ok()?, *c)))
                .collect(),
            max: h.max,
        }
    }
}

impl From<Sparse> for Histogram {
    fn from(s: Sparse) -> Self {
        let mut h = Histogram {
            max: s.max,
            ..Histogram::default()
        };
        for (i, count) in s.buckets {
            if let Some(bucket) = h.buckets.get_mut(i as usize) {
                *bucket += count;
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i >= last, "index not monotonic at {v}");
            assert!(i < BUCKETS);
            last = i;
            if v < 1 << 37 {
                let mid = value_at(i) as f64;
                assert!(
                    (mid - v as f64).abs() <= (v as f64) * 0.016 + 1.0,
                    "{v} -> {mid}"
                );
            }
        }
    }

    #[test]
    fn quantiles_merge_and_survive_the_wire() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 1..=1000 {
            a.record(v * 1000);
        }
        b.record(5_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        assert_eq!(a.quantile(1.0), 5_000_000);
        let p50 = a.quantile(0.5) as f64;
        assert!((p50 - 501_000.0).abs() < 501_000.0 * 0.02, "{p50}");
        let json = serde_json::to_string(&a).expect("serializes");
        let back: Histogram = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, a);
    }

    #[test]
    fn shared_matches_owned() {
        let shared = SharedHistogram::new();
        let mut owned = Histogram::default();
        for v in [0, 1, 127, 128, 129, 10_000, 3_000_000] {
            shared.record(v);
            owned.record(v);
        }
        assert_eq!(shared.snapshot(), owned);
    }
}
