//! Timing: throughput over a timed loop, latency percentiles from a histogram.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Result;

/// Latency percentiles of one workload, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Operations timed.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest.
    pub max_us: f64,
}

/// Operation latencies in nanoseconds, from 1 ns to an hour at 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            histogram: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("the bounds are valid"),
        }
    }
}

impl Latencies {
    /// Records one operation's duration.
    pub fn record(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos.max(1));
    }

    /// Adds another set of latencies.
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds always add");
    }

    /// The percentiles, or `None` if nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.histogram.is_empty() {
            return None;
        }
        let us = |quantile: f64| self.histogram.value_at_quantile(quantile) as f64 / 1000.0;
        Some(Percentiles {
            count: self.histogram.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: self.histogram.max() as f64 / 1000.0,
        })
    }
}

/// Operations done and the time they took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Operations completed.
    pub ops: u64,
    /// Time they took.
    pub elapsed: Duration,
}

impl Throughput {
    /// Operations per second.
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Several threads' timed loops as one: every thread's operations over the longest thread's
/// time, and every operation's latency. The first thread's error, if any.
pub fn combine_threads(
    threads: impl IntoIterator<Item = Result<(Throughput, Latencies)>>,
) -> Result<(Throughput, Latencies)> {
    let (mut ops, mut longest, mut latencies) = (0, Duration::ZERO, Latencies::default());
    for thread in threads {
        let (throughput, times) = thread?;
        ops += throughput.ops;
        longest = longest.max(throughput.elapsed);
        latencies.merge(&times);
    }
    Ok((
        Throughput {
            ops,
            elapsed: longest,
        },
        latencies,
    ))
}

/// Operations between two looks at the clock in [`run_for`]: few enough that the loop stops
/// close to its deadline, many enough that reading the clock costs nothing measurable.
const CHUNK: usize = 256;

/// Calls `op(i)` for i = 0, 1, 2, ... until `duration` has passed (and at least once),
/// without timing single calls: the figure a timer per operation would distort for
/// operations of a few hundred nanoseconds.
pub fn run_for(duration: Duration, mut op: impl FnMut(usize) -> Result<()>) -> Result<Throughput> {
    let start = Instant::now();
    let mut ops = 0usize;
    loop {
        for i in ops..ops + CHUNK {
            op(i)?;
        }
        ops += CHUNK;
        if start.elapsed() >= duration {
            break;
        }
    }
    Ok(Throughput {
        ops: ops as u64,
        elapsed: start.elapsed(),
    })
}

/// Calls `op(i)` until `duration` has passed or `max_ops` calls are done (at least once),
/// timing each call.
pub fn time_each(
    duration: Duration,
    max_ops: usize,
    mut op: impl FnMut(usize) -> Result<()>,
) -> Result<(Throughput, Latencies)> {
    let mut latencies = Latencies::default();
    let start = Instant::now();
    let mut ops = 0;
    while ops == 0 || (ops < max_ops && start.elapsed() < duration) {
        let before = Instant::now();
        op(ops)?;
        latencies.record(before.elapsed());
        ops += 1;
    }
    let throughput = Throughput {
        ops: ops as u64,
        elapsed: start.elapsed(),
    };
    Ok((throughput, latencies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_operations_over_seconds() {
        let per_sec = |ops, millis| {
            Throughput {
                ops,
                elapsed: Duration::from_millis(millis),
            }
            .per_sec()
        };
        assert_eq!(per_sec(500, 2000), 250.0);
        assert_eq!(per_sec(3, 4), 750.0);
        assert_eq!(per_sec(0, 10), 0.0);
        // No time at all is taken as a nanosecond, never a division by zero.
        assert!((per_sec(2, 0) - 2e9).abs() < 1.0);
    }

    #[test]
    fn percentiles_are_in_microseconds() {
        let mut latencies = Latencies::default();
        assert_eq!(latencies.percentiles(), None);
        for _ in 0..99 {
            latencies.record(Duration::from_micros(2));
        }
        latencies.record(Duration::from_millis(3));
        let p = latencies.percentiles().unwrap();
        assert_eq!(p.count, 100);
        // Three significant digits: within a thousandth of the value recorded.
        let near = |got: f64, want: f64| (got - want).abs() <= want / 1000.0;
        assert!(near(p.p50_us, 2.0) && near(p.p99_us, 2.0), "{p:?}");
        assert!(near(p.max_us, 3000.0), "{p:?}");
    }

    #[test]
    fn a_timed_loop_calls_each_index_once_in_whole_chunks() {
        let mut calls = Vec::new();
        let throughput = run_for(Duration::ZERO, |i| {
            calls.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, (0..CHUNK).collect::<Vec<_>>());
        assert_eq!(throughput.ops, CHUNK as u64);

        let mut calls = Vec::new();
        let (throughput, latencies) = time_each(Duration::from_secs(3600), 5, |i| {
            calls.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, [0, 1, 2, 3, 4]);
        assert_eq!(throughput.ops, 5);
        assert_eq!(latencies.percentiles().map(|p| p.count), Some(5));
    }
}
