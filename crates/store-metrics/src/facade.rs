//! The [`metrics`] crate facade (feature `metrics`): the same metrics as the Prometheus text,
//! handed to whatever recorder the application installed.

use metrics::Label;

use crate::histogram::HistogramSnapshot;
use crate::prometheus::{Sink, walk};
use crate::snapshot::Snapshot;

/// The quantiles a histogram is published as, with their label values.
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Publishes `snapshot` to the recorder installed for the [`metrics`] facade, under the names
/// [`crate::prometheus()`] uses. Counters are set to their absolute values and gauges to
/// theirs. The facade has no way to hand over a histogram's buckets, so each latency or size
/// histogram becomes a summary: gauges of its p50, p90, p99 and p999 and of its maximum
/// (`quantile="1"`), a `_sum` gauge and a `_count` counter.
///
/// The snapshot holds totals, so publishing is idempotent: call it whenever the exporter is
/// about to read, or on a timer.
pub fn publish(snapshot: &Snapshot) {
    walk(snapshot, &mut Facade { counters: false });
}

struct Facade {
    /// Whether the samples that follow belong to a counter family; any other is published
    /// as gauges (a histogram as gauges of its quantiles).
    counters: bool,
}

fn labels(labels: &[(&str, &str)]) -> Vec<Label> {
    labels
        .iter()
        .map(|&(key, value)| Label::new(key.to_owned(), value.to_owned()))
        .collect()
}

impl Sink for Facade {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let (name, help) = (name.to_owned(), help.to_owned());
        self.counters = kind == "counter";
        if self.counters {
            metrics::describe_counter!(name, help);
        } else {
            metrics::describe_gauge!(name, help);
        }
    }

    fn sample(&mut self, name: &str, labels_: &[(&str, &str)], value: f64) {
        let (name, labels) = (name.to_owned(), labels(labels_));
        if self.counters {
            metrics::counter!(name, labels).absolute(value as u64);
        } else {
            metrics::gauge!(name, labels).set(value);
        }
    }

    fn histogram(
        &mut self,
        name: &str,
        labels_: &[(&str, &str)],
        histogram: &HistogramSnapshot,
        _bounds: std::ops::RangeInclusive<u32>,
        scale: f64,
    ) {
        let quantiles = QUANTILES
            .iter()
            .map(|&(q, label)| (label, histogram.quantile(q)))
            .chain([("1", histogram.max())]);
        for (label, value) in quantiles {
            let mut with_quantile = labels(labels_);
            with_quantile.push(Label::new("quantile", label));
            metrics::gauge!(name.to_owned(), with_quantile).set(value as f64 * scale);
        }
        metrics::gauge!(format!("{name}_sum"), labels(labels_)).set(histogram.sum() as f64 * scale);
        metrics::counter!(format!("{name}_count"), labels(labels_)).absolute(histogram.count());
    }
}
