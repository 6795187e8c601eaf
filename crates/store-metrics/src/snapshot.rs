//! What the collector holds at one moment, plus the stats of the layers it watches.

use store_format::{Figures, VisitStats};

use crate::histogram::{HistogramSnapshot, Latency};
use crate::op::{Op, Outcome};

/// Counts and latencies of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpStats {
    pub(crate) op: Op,
    pub(crate) counts: [u64; Outcome::ALL.len()],
    pub(crate) durations: HistogramSnapshot,
}

/// What commits did, from the engine's [`store_format::CommitObserver`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CommitStats {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) ops: HistogramSnapshot,
    pub(crate) bytes: u64,
    pub(crate) write: HistogramSnapshot,
    pub(crate) syncs: HistogramSnapshot,
    pub(crate) syncs_failed: u64,
}

/// A copy of everything collected, with the figures of whichever layers' stats the caller
/// added (the store's size, the write queue, the cache, compactions, the scrub: anything
/// that implements [`VisitStats`]). Render it with [`crate::prometheus`], [`Snapshot::to_json`], or judge it with
/// [`crate::health`].
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub(crate) ops: Vec<OpStats>,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) read_sample_every: u64,
    pub(crate) commits: CommitStats,
    pub(crate) figures: Figures,
}

impl Snapshot {
    /// Adds the figures of a layer's stats: the store's size and shape, the write queue's,
    /// the cache's, and so on. A figure added twice is shown twice.
    pub fn with_stats(mut self, stats: &dyn VisitStats) -> Snapshot {
        stats.visit(&mut self.figures);
        self
    }

    /// The figures added with [`Snapshot::with_stats`], in the order they were shown.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// The value of the figure named `name`, if it was added.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures.get(name)
    }

    fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    /// How many `op`s ended with `outcome`.
    pub fn count(&self, op: Op, outcome: Outcome) -> u64 {
        self.op(op).counts[outcome.index()]
    }

    /// How many `op`s ran, whatever their outcome.
    pub fn total(&self, op: Op) -> u64 {
        self.op(op).counts.iter().sum()
    }

    /// How many operations of any kind ended with `outcome`.
    pub fn count_all(&self, outcome: Outcome) -> u64 {
        Op::ALL.iter().map(|&op| self.count(op, outcome)).sum()
    }

    /// How many `op`s failed.
    pub fn errors(&self, op: Op) -> u64 {
        self.total(op) - self.count(op, Outcome::Ok) - self.count(op, Outcome::NotFound)
    }

    /// The latencies recorded for `op`, in nanoseconds: every write, and one read in
    /// [`Snapshot::read_sample_every`].
    pub fn durations(&self, op: Op) -> &HistogramSnapshot {
        &self.op(op).durations
    }

    /// Count, mean and quantiles of the timed `op`s.
    pub fn latency(&self, op: Op) -> Latency {
        self.durations(op).latency()
    }

    /// One read in this many is timed.
    pub fn read_sample_every(&self) -> u64 {
        self.read_sample_every
    }

    /// Document bytes returned by reads and extractions.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Document bytes accepted by successful writes.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Commit groups written.
    pub fn commits(&self) -> u64 {
        self.commits.ok
    }

    /// Commit groups that failed (and poisoned the store).
    pub fn failed_commits(&self) -> u64 {
        self.commits.failed
    }

    /// Operations per committed group.
    pub fn commit_ops(&self) -> &HistogramSnapshot {
        &self.commits.ops
    }

    /// Encoded bytes of the committed groups.
    pub fn commit_bytes(&self) -> u64 {
        self.commits.bytes
    }

    /// Time to write each commit group, in nanoseconds.
    pub fn commit_write(&self) -> &HistogramSnapshot {
        &self.commits.write
    }

    /// Time of each `fdatasync`, of commits and of explicit syncs, in nanoseconds.
    pub fn syncs(&self) -> &HistogramSnapshot {
        &self.commits.syncs
    }

    /// Syncs that failed.
    pub fn failed_syncs(&self) -> u64 {
        self.commits.syncs_failed
    }

    /// Everything, as JSON: counts by operation and outcome, latency summaries in seconds,
    /// commits, and the figures that were added (under `stats`, by name).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let latency = |h: &HistogramSnapshot| {
            let l = h.latency();
            json!({
                "count": l.count,
                "mean_seconds": l.mean.as_secs_f64(),
                "p50_seconds": l.p50.as_secs_f64(),
                "p90_seconds": l.p90.as_secs_f64(),
                "p99_seconds": l.p99.as_secs_f64(),
                "p999_seconds": l.p999.as_secs_f64(),
                "max_seconds": l.max.as_secs_f64(),
            })
        };
        let mut ops = Map::new();
        for stats in &self.ops {
            let outcomes: Map<String, Value> = Outcome::ALL
                .iter()
                .map(|&o| (o.name().to_owned(), json!(stats.counts[o.index()])))
                .collect();
            ops.insert(
                stats.op.name().to_owned(),
                json!({ "outcomes": outcomes, "latency": latency(&stats.durations) }),
            );
        }
        let mut value = json!({
            "operations": ops,
            "read_sample_every": self.read_sample_every,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "commits": {
                "ok": self.commits.ok,
                "failed": self.commits.failed,
                "bytes": self.commits.bytes,
                "ops_mean": self.commits.ops.mean(),
                "ops_p50": self.commits.ops.quantile(0.5),
                "ops_max": self.commits.ops.max(),
                "write": latency(&self.commits.write),
                "sync": latency(&self.commits.syncs),
                "syncs_failed": self.commits.syncs_failed,
            },
        });
        if !self.figures.0.is_empty() {
            value["stats"] = self
                .figures
                .0
                .iter()
                .map(|f| (f.name.to_owned(), json!(f.value)))
                .collect::<Map<String, Value>>()
                .into();
        }
        value
    }
}
