//! The `metrics` facade receives the same numbers as the Prometheus text.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use store_format::{DocWrite, WriteTicket};
use store_metrics::{Op, Outcome};
use store_mmap::{DocId, DocRead, StoreOptions};

use crate::instrumented;

/// A metric's kind, name and labels, and the value it should hold.
type Case = (
    MetricKind,
    &'static str,
    &'static [(&'static str, &'static str)],
    DebugValue,
);

/// The value the recorder holds for `name` with exactly `labels`.
fn value<'a>(
    values: &'a [(CompositeKey, DebugValue)],
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> &'a DebugValue {
    let found: Vec<&DebugValue> = values
        .iter()
        .filter(|(key, _)| {
            let (k, key) = (key.kind(), key.key());
            let mut have: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let mut want = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            k == kind && key.name() == name && have == want
        })
        .map(|(_, value)| value)
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} is published once");
    found[0]
}

#[test]
fn publish_hands_every_figure_to_the_installed_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = instrumented(dir.path(), StoreOptions::new());
    for n in 0..5u64 {
        store
            .put(DocId::from(n), "twelve bytes")
            .unwrap()
            .wait()
            .unwrap();
    }
    for n in 0..8u64 {
        let _ = store.get(DocId::from(n)).unwrap();
    }
    let snapshot = metrics
        .snapshot()
        .with_stats(&store.inner().stats().unwrap());
    assert_eq!(snapshot.count(Op::Get, Outcome::NotFound), 3);

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || store_metrics::publish(&snapshot));
    let values: Vec<(CompositeKey, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key, value))
        .collect();

    let counter = MetricKind::Counter;
    let gauge = MetricKind::Gauge;
    let ops = "textstore_operations_total";
    let cases: [Case; 8] = [
        (
            counter,
            ops,
            &[("op", "put"), ("outcome", "ok")],
            DebugValue::Counter(5),
        ),
        (
            counter,
            ops,
            &[("op", "get"), ("outcome", "ok")],
            DebugValue::Counter(5),
        ),
        (
            counter,
            ops,
            &[("op", "get"), ("outcome", "not_found")],
            DebugValue::Counter(3),
        ),
        (
            counter,
            ops,
            &[("op", "get"), ("outcome", "corrupt")],
            DebugValue::Counter(0),
        ),
        (
            counter,
            "textstore_read_bytes_total",
            &[],
            DebugValue::Counter(60),
        ),
        (
            counter,
            "textstore_written_bytes_total",
            &[],
            DebugValue::Counter(60),
        ),
        (
            gauge,
            "textstore_documents",
            &[],
            DebugValue::Gauge(5.0.into()),
        ),
        (
            counter,
            "textstore_operation_duration_seconds_count",
            &[("op", "get")],
            DebugValue::Counter(8),
        ),
    ];
    for (kind, name, labels, expected) in cases {
        assert_eq!(
            value(&values, kind, name, labels),
            &expected,
            "{name} {labels:?}"
        );
    }

    // A histogram becomes a summary: its quantiles are the snapshot's, in seconds.
    let durations = snapshot.durations(Op::Put);
    for (q, label) in [(0.5, "0.5"), (0.99, "0.99")] {
        let expected = durations.quantile(q) as f64 * 1e-9;
        let published = value(
            &values,
            gauge,
            "textstore_operation_duration_seconds",
            &[("op", "put"), ("quantile", label)],
        );
        assert_eq!(
            published,
            &DebugValue::Gauge(expected.into()),
            "put p{label}"
        );
        assert!(expected > 0.0, "puts were timed");
    }
    let max = value(
        &values,
        gauge,
        "textstore_operation_duration_seconds",
        &[("op", "put"), ("quantile", "1")],
    );
    assert_eq!(
        max,
        &DebugValue::Gauge((durations.max() as f64 * 1e-9).into())
    );
    let sum = value(
        &values,
        gauge,
        "textstore_operation_duration_seconds_sum",
        &[("op", "put")],
    );
    assert_eq!(
        sum,
        &DebugValue::Gauge((durations.sum() as f64 * 1e-9).into())
    );
}
