//! A lock-free log-linear latency histogram: many receiver tasks record into it at once.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two; relative error of a reported value is below 1/64.
const SUB_BITS: u32 = 6;
/// Values below this are recorded exactly.
const LINEAR_LIMIT: u64 = 1 << SUB_BITS;
/// Powers of two covered above the linear part (2^6 ns .. 2^46 ns, about 19 hours).
const OCTAVES: usize = 40;
/// Total bucket count.
const BUCKETS: usize = (OCTAVES + 1) << SUB_BITS;

/// Nanosecond latencies counted in log-linear buckets, safe to share between threads.
pub(crate) struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Bucket index of a value in nanoseconds (saturating at the last bucket).
fn bucket_of(value: u64) -> usize {
    if value < LINEAR_LIMIT {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let sub = (value >> (exponent - SUB_BITS)) & (LINEAR_LIMIT - 1);
    let octave = (exponent - SUB_BITS + 1) as usize;
    ((octave << SUB_BITS) + sub as usize).min(BUCKETS - 1)
}

/// Midpoint of a bucket in nanoseconds.
fn value_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < LINEAR_LIMIT {
        return bucket;
    }
    let octave = bucket >> SUB_BITS;
    let sub = bucket & (LINEAR_LIMIT - 1);
    let shift = octave - 1;
    let low = (LINEAR_LIMIT + sub) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Counts one latency.
    pub(crate) fn record(&self, nanos: u64) {
        if let Some(bucket) = self.buckets.get(bucket_of(nanos)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Number of latencies recorded.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The latency at quantile `q` (0..=1) in nanoseconds, or `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(value_of(index));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_two_percent() {
        for value in [0u64, 1, 63, 64, 65, 1000, 12_345, 987_654, 5_000_000_000] {
            let back = value_of(bucket_of(value));
            let error = back.abs_diff(value) as f64 / value.max(1) as f64;
            assert!(error < 0.02, "{value} -> {back}");
        }
    }

    #[test]
    fn quantiles_follow_the_recorded_values() {
        let histogram = Histogram::default();
        for value in 1..=1000u64 {
            histogram.record(value * 1000);
        }
        let p50 = histogram.quantile(0.5).unwrap();
        let p99 = histogram.quantile(0.99).unwrap();
        assert!((490_000..=510_000).contains(&p50), "{p50}");
        assert!((975_000..=1_005_000).contains(&p99), "{p99}");
        assert_eq!(histogram.count(), 1000);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
