use std::collections::HashMap;

use prometheus_parse::{Scrape, Value};
use store_format::{DocWrite, WriteTicket};
use store_metrics::{Op, Outcome};
use store_mmap::{DocId, DocRead, StoreOptions};

use crate::instrumented;

/// Parses `text` with an independent parser.
fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

#[test]
fn the_export_parses_and_holds_every_metric_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = instrumented(dir.path(), StoreOptions::new());
    for n in 0..20u64 {
        store
            .put(DocId::from(n), "some text")
            .unwrap()
            .wait()
            .unwrap();
    }
    store
        .put(DocId::from(0u64), "a newer version")
        .unwrap()
        .wait()
        .unwrap();
    for n in 0..30u64 {
        let _ = store.get(DocId::from(n)).unwrap();
    }
    let snapshot = metrics
        .snapshot()
        .with_stats(&store.inner().stats().unwrap())
        .with_stats(&store.inner().queue_stats())
        .with_stats(&store.inner().disk_space().unwrap());
    let text = store_metrics::prometheus(&snapshot);
    let scrape = scrape(&text);

    let mut types: HashMap<&str, &str> = HashMap::new();
    for sample in &scrape.samples {
        let kind = match sample.value {
            Value::Counter(_) => "counter",
            Value::Gauge(_) => "gauge",
            Value::Histogram(_) => "histogram",
            Value::Summary(_) => "summary",
            Value::Untyped(_) => "untyped",
        };
        if let Some(previous) = types.insert(&sample.metric, kind) {
            assert_eq!(previous, kind, "{} has one type", sample.metric);
        }
    }
    let expected = [
        ("textstore_operations_total", "counter"),
        ("textstore_operation_duration_seconds", "histogram"),
        ("textstore_read_bytes_total", "counter"),
        ("textstore_written_bytes_total", "counter"),
        ("textstore_commits_total", "counter"),
        ("textstore_commit_bytes_total", "counter"),
        ("textstore_commit_operations", "histogram"),
        ("textstore_commit_write_duration_seconds", "histogram"),
        ("textstore_fsync_duration_seconds", "histogram"),
        ("textstore_fsync_failures_total", "counter"),
        ("textstore_documents", "gauge"),
        ("textstore_text_bytes", "gauge"),
        ("textstore_live_record_bytes", "gauge"),
        ("textstore_dead_record_bytes", "gauge"),
        ("textstore_dead_record_ratio", "gauge"),
        ("textstore_segments", "gauge"),
        ("textstore_spare_files", "gauge"),
        ("textstore_spare_bytes", "gauge"),
        ("textstore_file_bytes", "gauge"),
        ("textstore_allocated_bytes", "gauge"),
        ("textstore_mapped_bytes", "gauge"),
        ("textstore_index_memory_bytes", "gauge"),
        ("textstore_index_file_bytes", "gauge"),
        ("textstore_index_changes", "gauge"),
        ("textstore_checkpoints", "gauge"),
        ("textstore_checkpoint_failures", "gauge"),
        ("textstore_index_rebuilds", "gauge"),
        ("textstore_last_sequence", "gauge"),
        ("textstore_segment_capacity_bytes", "gauge"),
        ("textstore_compaction_copy_bytes", "gauge"),
        ("textstore_filesystem_available_bytes", "gauge"),
        ("textstore_queue_depth", "gauge"),
        ("textstore_queue_capacity", "gauge"),
        ("textstore_queue_full_ratio", "gauge"),
        ("textstore_queue_submissions_total", "counter"),
        ("textstore_queue_waited_full_total", "counter"),
        ("textstore_queue_rejected_full_total", "counter"),
    ];
    for (name, kind) in expected {
        assert_eq!(types.get(name), Some(&kind), "{name} in\n{text}");
    }
    let histograms = expected
        .iter()
        .filter(|(_, kind)| *kind == "histogram")
        .count();
    assert_eq!(
        types.len(),
        expected.len() + 2 * histograms,
        "only the expected families, plus _sum and _count of each histogram"
    );

    let value = |metric: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("{metric} {labels:?}"))
    };
    assert_eq!(
        value(
            "textstore_operations_total",
            &[("op", "get"), ("outcome", "ok")]
        ),
        Value::Counter(20.0)
    );
    assert_eq!(
        value(
            "textstore_operations_total",
            &[("op", "get"), ("outcome", "not_found")]
        ),
        Value::Counter(10.0)
    );
    assert_eq!(value("textstore_documents", &[]), Value::Gauge(20.0));
    assert_eq!(
        value("textstore_commits_total", &[("outcome", "ok")]),
        Value::Counter(snapshot.commits() as f64)
    );
    let Value::Histogram(buckets) = value("textstore_operation_duration_seconds", &[("op", "get")])
    else {
        panic!("a histogram");
    };
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count)
    );
    let last = buckets.last().unwrap();
    assert!(last.less_than.is_infinite());
    assert_eq!(last.count, snapshot.latency(Op::Get).count as f64);
    assert_eq!(last.count, 30.0);
    assert_eq!(snapshot.count(Op::Put, Outcome::Ok), 21);
    // The sum in seconds, and a labelled sample's exact text.
    let sum = value("textstore_operation_duration_seconds_sum", &[("op", "put")]);
    let expected = snapshot.durations(Op::Put).sum() as f64 * 1e-9;
    let Value::Untyped(sum) = sum else {
        panic!("{sum:?}");
    };
    assert!(
        (sum - expected).abs() <= expected * 1e-9,
        "{sum} s against {expected} s"
    );
    assert!(
        text.lines()
            .any(|line| line == "textstore_operations_total{op=\"get\",outcome=\"ok\"} 20"),
        "{text}"
    );
}
