//! The Prometheus text exposition format (version 0.0.4).
//!
//! Names follow Prometheus conventions: a `textstore_` prefix, base units (seconds, bytes),
//! `_total` on counters, and histograms with cumulative `le` buckets, `_sum` and `_count`.
//! Latency buckets are powers of two nanoseconds from 128 ns to 34 s, which are exact
//! bucket edges of [`crate::HistogramSnapshot`].

use std::fmt::Write;

use crate::histogram::HistogramSnapshot;
use crate::op::{Op, Outcome};
use crate::snapshot::Snapshot;

/// Powers of two (in nanoseconds) used as latency bucket bounds.
const LATENCY_BOUNDS: std::ops::RangeInclusive<u32> = 7..=35;
/// Powers of two used as bounds of the operations-per-commit histogram.
const COUNT_BOUNDS: std::ops::RangeInclusive<u32> = 0..=16;

/// Renders `snapshot` in the Prometheus text format.
pub fn prometheus(snapshot: &Snapshot) -> String {
    let mut out = Exposition::default();
    walk(snapshot, &mut out);
    out.text
}

/// Where [`walk`] sends each metric: the text exposition, or the `metrics` facade.
pub(crate) trait Sink {
    /// Announces a family of samples.
    fn family(&mut self, name: &str, kind: &str, help: &str);
    /// One sample of a counter or gauge family.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64);
    /// One histogram of a histogram family: cumulative buckets at `2^k` for `k` in `bounds`,
    /// values scaled by `scale` (1e-9 turns nanoseconds into seconds).
    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        histogram: &HistogramSnapshot,
        bounds: std::ops::RangeInclusive<u32>,
        scale: f64,
    );

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value as f64);
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }
}

/// Every metric of `snapshot`, with its name, type, help and labels, in exposition order.
pub(crate) fn walk(snapshot: &Snapshot, out: &mut impl Sink) {
    out.family(
        "textstore_operations_total",
        "counter",
        "Operations by kind and outcome; a failure is never counted as ok.",
    );
    for &op in &Op::ALL {
        for &outcome in &Outcome::ALL {
            out.sample(
                "textstore_operations_total",
                &[("op", op.name()), ("outcome", outcome.name())],
                snapshot.count(op, outcome) as f64,
            );
        }
    }
    out.family(
        "textstore_operation_duration_seconds",
        "histogram",
        &format!(
            "Latency of operations: every write, and one read in {}.",
            snapshot.read_sample_every()
        ),
    );
    for &op in &Op::ALL {
        out.histogram(
            "textstore_operation_duration_seconds",
            &[("op", op.name())],
            snapshot.durations(op),
            LATENCY_BOUNDS,
            1e-9,
        );
    }
    out.counter(
        "textstore_read_bytes_total",
        "Document bytes returned by reads and extractions.",
        snapshot.bytes_read(),
    );
    out.counter(
        "textstore_written_bytes_total",
        "Document bytes accepted by successful writes.",
        snapshot.bytes_written(),
    );

    out.family(
        "textstore_commits_total",
        "counter",
        "Commit groups written, by outcome.",
    );
    out.sample(
        "textstore_commits_total",
        &[("outcome", "ok")],
        snapshot.commits() as f64,
    );
    out.sample(
        "textstore_commits_total",
        &[("outcome", "error")],
        snapshot.failed_commits() as f64,
    );
    out.counter(
        "textstore_commit_bytes_total",
        "Encoded bytes of committed groups.",
        snapshot.commit_bytes(),
    );
    out.family(
        "textstore_commit_operations",
        "histogram",
        "Operations per committed group.",
    );
    out.histogram(
        "textstore_commit_operations",
        &[],
        snapshot.commit_ops(),
        COUNT_BOUNDS,
        1.0,
    );
    for (name, help, histogram) in [
        (
            "textstore_commit_write_duration_seconds",
            "Time to write each commit group.",
            snapshot.commit_write(),
        ),
        (
            "textstore_fsync_duration_seconds",
            "Time of each fdatasync, of commits and of explicit syncs.",
            snapshot.syncs(),
        ),
    ] {
        out.family(name, "histogram", help);
        out.histogram(name, &[], histogram, LATENCY_BOUNDS, 1e-9);
    }
    out.counter(
        "textstore_fsync_failures_total",
        "Syncs that failed.",
        snapshot.failed_syncs(),
    );

    for figure in &snapshot.figures().0 {
        match figure.counter {
            true => out.counter(figure.name, figure.help, figure.value as u64),
            false => out.gauge(figure.name, figure.help, figure.value),
        }
    }
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Sink for Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, label)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                // Label values here are fixed names or numbers: nothing to escape.
                let _ = write!(self.text, "{key}=\"{label}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// The buckets, then `+Inf`, `_sum` and `_count`.
    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        histogram: &HistogramSnapshot,
        bounds: std::ops::RangeInclusive<u32>,
        scale: f64,
    ) {
        let bucket = format!("{name}_bucket");
        for k in bounds {
            let bound = 1u64 << k;
            let le = format!("{}", bound as f64 * scale);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, histogram.count_at_most(bound) as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, histogram.count() as f64);
        self.sample(
            &format!("{name}_sum"),
            labels,
            histogram.sum() as f64 * scale,
        );
        self.sample(&format!("{name}_count"), labels, histogram.count() as f64);
    }
}
