//! A lock-free log-linear histogram of `u64` values (nanoseconds, or counts).
//!
//! Each power of two is split into eight buckets, so a reported quantile is at most 12.5%
//! above the true value (values below 8 are exact). Buckets are half-open from below,
//! `(lower, upper]`, so that every power of two is the inclusive upper edge of a bucket and
//! Prometheus' cumulative `le` buckets at powers of two are exact.
//!
//! Recording is three relaxed atomic operations on shared counters and takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUBS: usize = 1 << SUB_BITS;
/// Values `0..=u64::MAX` map to this many buckets.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUBS;

/// Index of the bucket of `value`: the bucket whose `(lower, upper]` range holds it.
fn index(value: u64) -> usize {
    let v = value.saturating_sub(1);
    if v < SUBS as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUBS - 1);
    (exp - SUB_BITS + 1) as usize * SUBS + sub
}

/// Inclusive upper edge of bucket `i`.
fn upper(i: usize) -> u64 {
    if i < SUBS {
        return i as u64 + 1;
    }
    let exp = (i / SUBS) as u32 + SUB_BITS - 1;
    let sub = (i % SUBS) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    ((SUBS as u64 + sub) << (exp - SUB_BITS)).saturating_add(width)
}

/// Values recorded by any number of threads.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, value: u64) {
        // Relaxed: each counter is a statistic on its own; a snapshot taken while values
        // arrive may see a value in a bucket before its sum, never a torn number.
        self.buckets[index(value)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    /// Records a duration in nanoseconds (saturating at `u64::MAX`, 584 years).
    pub fn record_duration(&self, duration: Duration) {
        self.record(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The values recorded so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A copy of a [`Histogram`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    buckets: Vec<u64>,
    sum: u64,
    max: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: vec![0; BUCKETS],
            sum: 0,
            max: 0,
        }
    }
}

impl HistogramSnapshot {
    /// Number of values.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the values.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Largest value, exact; 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the values, exact; 0 when empty.
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum as f64 / n as f64,
        }
    }

    /// The `q` quantile (0 < q ≤ 1): the upper edge of the bucket that holds the value of
    /// rank ⌈q·count⌉, capped by the maximum, so at most 12.5% above the true value and
    /// never above the largest one. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    /// Number of values at most `bound`, exact when `bound` is a power of two or below 8.
    pub fn count_at_most(&self, bound: u64) -> u64 {
        self.buckets
            .iter()
            .enumerate()
            .take_while(|&(i, _)| upper(i) <= bound)
            .map(|(_, &n)| n)
            .sum()
    }

    /// The standard summary, for durations in nanoseconds.
    pub fn latency(&self) -> Latency {
        Latency {
            count: self.count(),
            mean: Duration::from_nanos(self.mean().round() as u64),
            p50: Duration::from_nanos(self.quantile(0.5)),
            p90: Duration::from_nanos(self.quantile(0.9)),
            p99: Duration::from_nanos(self.quantile(0.99)),
            p999: Duration::from_nanos(self.quantile(0.999)),
            max: Duration::from_nanos(self.max),
        }
    }

    /// Adds `other`'s values to these.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }
}

/// Count, mean and quantiles of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Number of timed operations.
    pub count: u64,
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        assert_eq!(index(0), 0);
        assert_eq!(index(1), 0);
        for value in (1..5000u64).chain([u64::MAX / 2, u64::MAX - 1, u64::MAX]) {
            let i = index(value);
            assert!(
                value <= upper(i),
                "{value} above bucket {i} ending {}",
                upper(i)
            );
            if i > 0 {
                assert!(value > upper(i - 1), "{value} belongs below bucket {i}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        for k in 3..63 {
            let power = 1u64 << k;
            assert_eq!(upper(index(power)), power, "2^{k} is an upper edge");
        }
    }
}
