//! What the numbers mean for the operator: a health status and concrete advice.

use std::fmt;
use std::time::Duration;

use store_format::ErrorKind;

use crate::op::Outcome;
use crate::snapshot::Snapshot;

/// How urgent a piece of advice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Something costs space or speed and has a remedy.
    Warning,
    /// Data or writes are at risk.
    Critical,
}

impl Severity {
    /// Lower-case name, for JSON and text.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One finding, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// How urgent it is.
    pub severity: Severity,
    /// A stable identifier, such as `compaction_recommended`.
    pub code: &'static str,
    /// The finding and the remedy, with the figures behind them.
    pub message: String,
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity.name(), self.message)
    }
}

/// Where the advice starts. The defaults suit a store of documents written once and read
/// often.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Thresholds {
    /// Dead record bytes over all record bytes above which compaction is recommended.
    pub dead_ratio: f64,
    /// Dead bytes below which compaction is not worth recommending, whatever the ratio.
    pub dead_bytes_min: u64,
    /// Share of submissions that found the queue full above which the queue is too small.
    pub queue_full_ratio: f64,
    /// 99th percentile `fdatasync` time above which the disk is called slow.
    pub slow_sync: Duration,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            dead_ratio: 0.3,
            dead_bytes_min: 16 << 20,
            queue_full_ratio: 0.05,
            slow_sync: Duration::from_millis(20),
        }
    }
}

/// A status and the advice it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The most urgent severity found, or `None` when nothing was.
    pub status: Option<Severity>,
    /// Every finding, most urgent first.
    pub advice: Vec<Advice>,
}

/// Judges `snapshot` against `thresholds`.
pub fn health(snapshot: &Snapshot, thresholds: &Thresholds) -> Health {
    let mut advice = Vec::new();
    let mut add = |severity, code, message: String| {
        advice.push(Advice {
            severity,
            code,
            message,
        })
    };
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);

    let failed_writes = snapshot.failed_commits() + snapshot.failed_syncs();
    let poisoned = snapshot.count_all(Outcome::Error(ErrorKind::Poisoned));
    if failed_writes > 0 || poisoned > 0 {
        add(
            Severity::Critical,
            "writes_failed",
            format!(
                "{failed_writes} commits or syncs failed and {poisoned} writes were refused \
                 since: the store accepts no writes until it is reopened; check the disk \
                 (space, errors in the kernel log)"
            ),
        );
    }
    let corrupt = snapshot.count_all(Outcome::Error(ErrorKind::Corrupt));
    if corrupt > 0 {
        add(
            Severity::Critical,
            "corruption_found",
            format!(
                "{corrupt} reads found records that fail their checks: run `textstore verify` \
                 and restore the damaged documents"
            ),
        );
    }
    if let (Some(dead_ratio), Some(dead_bytes)) = (
        snapshot.figure("textstore_dead_record_ratio"),
        snapshot.figure("textstore_dead_record_bytes"),
    ) && dead_ratio > thresholds.dead_ratio
        && dead_bytes >= thresholds.dead_bytes_min as f64
    {
        add(
            Severity::Warning,
            "compaction_recommended",
            format!(
                "{:.0}% of record bytes ({:.1} MiB) are old versions or deleted documents: \
                 compaction would reclaim them",
                dead_ratio * 100.0,
                mib(dead_bytes as u64)
            ),
        );
    }
    // The writer's next segment may take a whole segment's capacity, and a compaction
    // writes its copies before it removes the segments it replaces.
    if let (Some(available), Some(capacity), Some(copies)) = (
        snapshot.figure("textstore_filesystem_available_bytes"),
        snapshot.figure("textstore_segment_capacity_bytes"),
        snapshot.figure("textstore_compaction_copy_bytes"),
    ) && available < capacity + copies
    {
        let copies_part = if copies > 0.0 {
            format!(
                ", and {:.1} MiB of live records that a compaction copies before it removes \
                 the segments they lie in",
                mib(copies as u64)
            )
        } else {
            String::new()
        };
        add(
            Severity::Warning,
            "disk_space_low",
            format!(
                "the store's file system has {:.1} MiB available, less than the {:.1} MiB its \
                 writes may take before compaction frees any: a new segment of {:.1} \
                 MiB{copies_part}; free space or move the store",
                mib(available as u64),
                mib((capacity + copies) as u64),
                mib(capacity as u64),
            ),
        );
    }
    if let (Some(full_ratio), Some(capacity)) = (
        snapshot.figure("textstore_queue_full_ratio"),
        snapshot.figure("textstore_queue_capacity"),
    ) && full_ratio > thresholds.queue_full_ratio
    {
        add(
            Severity::Warning,
            "queue_often_full",
            format!(
                "{:.1}% of submissions found the write queue full (capacity {}): raise \
                 `max_batch_docs` / `max_batch_bytes` so that each commit takes more of the \
                 queue, or `queue_capacity` to absorb bursts",
                full_ratio * 100.0,
                capacity
            ),
        );
    }
    let syncs = snapshot.syncs();
    let sync_p99 = Duration::from_nanos(syncs.quantile(0.99));
    if syncs.count() > 0 && sync_p99 > thresholds.slow_sync {
        add(
            Severity::Warning,
            "slow_sync",
            format!(
                "99% of fdatasync calls take up to {sync_p99:?}: the disk bounds the commit \
                 rate; larger groups (put_batch, the concurrent handle) spread each sync over \
                 more documents"
            ),
        );
    }
    let commits = snapshot.commit_ops();
    if commits.count() >= 100 && commits.mean() < 1.5 && syncs.count() >= commits.count() {
        add(
            Severity::Info,
            "one_document_per_sync",
            format!(
                "{} commits synced {:.2} operations each on average: grouping writes \
                 (put_batch, or several threads on the concurrent handle) pays one fdatasync \
                 per group instead of per document",
                commits.count(),
                commits.mean()
            ),
        );
    }
    let invalid = snapshot.count_all(Outcome::Error(ErrorKind::InvalidInput));
    if invalid > 0 {
        add(
            Severity::Info,
            "invalid_requests",
            format!("{invalid} requests were refused as invalid (size limit, range, id)"),
        );
    }
    advice.sort_by_key(|a| std::cmp::Reverse(a.severity));
    Health {
        status: advice.first().map(|a| a.severity),
        advice,
    }
}
