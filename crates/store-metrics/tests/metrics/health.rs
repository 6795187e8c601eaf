//! The health advice at each of its thresholds: a snapshot made of chosen figures, commits,
//! syncs and outcomes, and the codes of the advice it gets. Each threshold is tried just
//! below, at and just above its line, so that the comparison's direction and strictness are
//! both pinned.

use std::time::Duration;

use store_format::{CommitEvent, CommitObserver, ErrorKind, StatsVisitor, VisitStats};
use store_metrics::{Metrics, Op, Outcome, Severity, Thresholds, health};

/// Figures an engine would report, by name.
struct Figures(Vec<(&'static str, f64)>);

impl VisitStats for Figures {
    fn visit(&self, out: &mut dyn StatsVisitor) {
        for &(name, value) in &self.0 {
            out.gauge(name, "", value);
        }
    }
}

/// What goes into one case's collector.
#[derive(Default)]
struct Case {
    figures: Vec<(&'static str, f64)>,
    /// Commits: operations each, whether it succeeded, and its sync's time (`None`: none).
    commits: Vec<(u64, bool, Option<Duration>)>,
    outcomes: Vec<Outcome>,
}

/// The codes of the advice `case` gets, most urgent first.
fn codes(case: Case) -> Vec<&'static str> {
    let metrics = Metrics::new();
    for (ops, ok, sync) in case.commits {
        let event = CommitEvent::new(ops, ops * 100, Duration::from_micros(10), sync, ok);
        metrics.commit(&event);
    }
    for outcome in case.outcomes {
        metrics.record(Op::Put, outcome, None);
    }
    let snapshot = metrics.snapshot().with_stats(&Figures(case.figures));
    let health = health(&snapshot, &Thresholds::default());
    assert_eq!(
        health.status,
        health.advice.first().map(|advice| advice.severity)
    );
    health.advice.iter().map(|advice| advice.code).collect()
}

fn synced(n: usize, ops: u64, sync: Duration) -> Vec<(u64, bool, Option<Duration>)> {
    vec![(ops, true, Some(sync)); n]
}

const MIB: f64 = (1 << 20) as f64;

#[test]
fn each_threshold_is_crossed_only_past_its_line() {
    let ms = Duration::from_millis;
    let cases: Vec<(&str, Case, Vec<&str>)> = vec![
        ("nothing", Case::default(), vec![]),
        (
            "a failed commit without a sync",
            Case {
                commits: vec![(1, false, None)],
                ..Case::default()
            },
            vec!["writes_failed"],
        ),
        (
            "a write refused as poisoned",
            Case {
                outcomes: vec![Outcome::Error(ErrorKind::Poisoned)],
                ..Case::default()
            },
            vec!["writes_failed"],
        ),
        (
            "a corrupt read",
            Case {
                outcomes: vec![Outcome::Error(ErrorKind::Corrupt)],
                ..Case::default()
            },
            vec!["corruption_found"],
        ),
        (
            "an invalid request",
            Case {
                outcomes: vec![Outcome::Error(ErrorKind::InvalidInput)],
                ..Case::default()
            },
            vec!["invalid_requests"],
        ),
        (
            "dead bytes at the ratio",
            Case {
                figures: vec![
                    ("textstore_dead_record_ratio", 0.3),
                    ("textstore_dead_record_bytes", 64.0 * MIB),
                ],
                ..Case::default()
            },
            vec![],
        ),
        (
            "dead bytes past the ratio, at the least bytes",
            Case {
                figures: vec![
                    ("textstore_dead_record_ratio", 0.31),
                    ("textstore_dead_record_bytes", 16.0 * MIB),
                ],
                ..Case::default()
            },
            vec!["compaction_recommended"],
        ),
        (
            "room for exactly a segment and the copies",
            Case {
                figures: vec![
                    ("textstore_filesystem_available_bytes", 300.0 * MIB),
                    ("textstore_segment_capacity_bytes", 256.0 * MIB),
                    ("textstore_compaction_copy_bytes", 44.0 * MIB),
                ],
                ..Case::default()
            },
            vec![],
        ),
        (
            "the queue full at the ratio",
            Case {
                figures: vec![
                    ("textstore_queue_full_ratio", 0.05),
                    ("textstore_queue_capacity", 1024.0),
                ],
                ..Case::default()
            },
            vec![],
        ),
        (
            "the queue full past the ratio",
            Case {
                figures: vec![
                    ("textstore_queue_full_ratio", 0.06),
                    ("textstore_queue_capacity", 1024.0),
                ],
                ..Case::default()
            },
            vec!["queue_often_full"],
        ),
        (
            "syncs under the slow line",
            Case {
                commits: synced(10, 10, ms(5)),
                ..Case::default()
            },
            vec![],
        ),
        (
            "syncs past the slow line",
            Case {
                commits: synced(10, 10, ms(100)),
                ..Case::default()
            },
            vec!["slow_sync"],
        ),
        (
            "99 commits of one document",
            Case {
                commits: synced(99, 1, ms(1)),
                ..Case::default()
            },
            vec![],
        ),
        (
            "100 commits of one document",
            Case {
                commits: synced(100, 1, ms(1)),
                ..Case::default()
            },
            vec!["one_document_per_sync"],
        ),
        (
            "100 commits of 1.5 documents",
            Case {
                commits: [synced(50, 1, ms(1)), synced(50, 2, ms(1))].concat(),
                ..Case::default()
            },
            vec![],
        ),
        (
            "100 commits of one document, not synced each",
            Case {
                commits: vec![(1, true, None); 100],
                ..Case::default()
            },
            vec![],
        ),
        (
            "a failed write and a full queue",
            Case {
                commits: vec![(1, false, Some(ms(1)))],
                figures: vec![
                    ("textstore_queue_full_ratio", 0.5),
                    ("textstore_queue_capacity", 8.0),
                ],
                ..Case::default()
            },
            vec!["writes_failed", "queue_often_full"],
        ),
    ];
    for (name, case, expected) in cases {
        assert_eq!(codes(case), expected, "{name}");
    }
}

/// Advice reads as its severity's name, then its message.
#[test]
fn advice_reads_as_its_severity_then_its_message() {
    let metrics = Metrics::new();
    metrics.record(Op::Get, Outcome::Error(ErrorKind::Corrupt), None);
    let health = health(&metrics.snapshot(), &Thresholds::default());
    let advice = &health.advice[0];
    assert_eq!(advice.severity, Severity::Critical);
    assert_eq!(advice.to_string(), format!("critical: {}", advice.message));
    let names = [Severity::Info, Severity::Warning, Severity::Critical].map(Severity::name);
    assert_eq!(names, ["info", "warning", "critical"]);
}
