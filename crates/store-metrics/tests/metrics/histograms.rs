use std::time::Duration;

use store_metrics::Histogram;

#[test]
fn quantiles_of_a_known_sequence_are_within_one_bucket() {
    let histogram = Histogram::default();
    for value in 1..=1000u64 {
        histogram.record(value * 1000);
    }
    let s = histogram.snapshot();
    assert_eq!(s.count(), 1000);
    assert_eq!(s.sum(), 1000 * 1001 / 2 * 1000);
    assert_eq!(s.max(), 1_000_000);
    assert_eq!(s.mean(), 500_500.0);
    for (q, exact) in [
        (0.5, 500_000u64),
        (0.9, 900_000),
        (0.99, 990_000),
        (0.999, 999_000),
    ] {
        let reported = s.quantile(q);
        assert!(
            reported >= exact && reported as f64 <= exact as f64 * 1.125,
            "q{q}: {reported} for {exact}"
        );
    }
    assert_eq!(
        s.quantile(1.0),
        1_000_000,
        "the top quantile is the exact maximum"
    );
    // 2^k edges count exactly.
    assert_eq!(s.count_at_most(1 << 19), 524);
    assert_eq!(s.count_at_most(1 << 20), 1000);
}

#[test]
fn small_values_and_empty_histograms_are_exact() {
    let histogram = Histogram::default();
    assert_eq!(histogram.snapshot().quantile(0.99), 0);
    assert_eq!(histogram.snapshot().latency().count, 0);
    for value in [0, 1, 2, 3, 7] {
        histogram.record(value);
    }
    let s = histogram.snapshot();
    assert_eq!(s.quantile(0.2), 1, "0 and 1 share the lowest bucket");
    assert_eq!(s.quantile(0.6), 2);
    assert_eq!(s.quantile(1.0), 7);
    assert_eq!(s.count_at_most(3), 4);
}

#[test]
fn latencies_are_reported_in_nanoseconds_not_rounded_to_milliseconds() {
    let histogram = Histogram::default();
    histogram.record_duration(Duration::from_nanos(150));
    histogram.record_duration(Duration::from_micros(3));
    let latency = histogram.snapshot().latency();
    assert_eq!(latency.count, 2);
    assert_eq!(latency.max, Duration::from_micros(3));
    assert_eq!(latency.mean, Duration::from_nanos(1575));
    assert!(latency.p50 >= Duration::from_nanos(150) && latency.p50 <= Duration::from_nanos(169));
}

#[test]
fn merged_snapshots_hold_both() {
    let (a, b) = (Histogram::default(), Histogram::default());
    a.record(10);
    b.record(1000);
    let mut merged = a.snapshot();
    merged.merge(&b.snapshot());
    assert_eq!(merged.count(), 2);
    assert_eq!(merged.sum(), 1010);
    assert_eq!(merged.max(), 1000);
}
