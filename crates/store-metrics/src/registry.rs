//! The collector: per-thread operation counters, shared latency histograms, commit events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store_format::{CommitEvent, CommitObserver};
use thread_local::ThreadLocal;

use crate::histogram::Histogram;
use crate::op::{Op, Outcome};
use crate::snapshot::{CommitStats, OpStats, Snapshot};

const OPS: usize = Op::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();

/// How many reads in a row a thread lets pass before it times one, by default. Timing a read
/// costs two clock reads (49 ns on the machine the benchmarks ran on), about half a get of a
/// resident document (105 ns, `cargo bench -p store-metrics --bench overhead`); timing one in
/// 64 spreads that to under 1 ns a read, while the quantiles still rest on thousands of
/// samples a second.
pub const DEFAULT_READ_SAMPLE_EVERY: u32 = 64;

/// Counters only their own thread writes, so an increment is a plain load and store with no
/// locked instruction and no cache line shared with other threads. A snapshot sums every
/// thread's counters, including those of threads that have exited.
#[repr(align(64))]
#[derive(Default)]
struct ThreadCounters {
    counts: [[AtomicU64; OUTCOMES]; OPS],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Reads since this thread last timed one.
    reads_untimed: AtomicU64,
}

/// Adds `n` to a counter that only the calling thread writes. Relaxed: a snapshot reads each
/// counter as a statistic on its own.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// Collects what every layer reports. Share it in an `Arc`: [`crate::Instrumented`] wrappers
/// record operations into it, and a store given it as its [`CommitObserver`] records commits.
pub struct Metrics {
    threads: ThreadLocal<ThreadCounters>,
    durations: [Histogram; OPS],
    read_sample_every: u64,
    commits_ok: AtomicU64,
    commits_failed: AtomicU64,
    commit_ops: Histogram,
    commit_bytes: AtomicU64,
    commit_write: Histogram,
    syncs: Histogram,
    syncs_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A collector that times every write and one read in [`DEFAULT_READ_SAMPLE_EVERY`].
    pub fn new() -> Metrics {
        Metrics::with_read_sample_every(DEFAULT_READ_SAMPLE_EVERY)
    }

    /// A collector that times one read in `every` (1: every read). Every read is counted
    /// whatever this is; only the latency histogram is sampled.
    pub fn with_read_sample_every(every: u32) -> Metrics {
        Metrics {
            threads: ThreadLocal::new(),
            durations: Default::default(),
            read_sample_every: u64::from(every.max(1)),
            commits_ok: AtomicU64::new(0),
            commits_failed: AtomicU64::new(0),
            commit_ops: Histogram::default(),
            commit_bytes: AtomicU64::new(0),
            commit_write: Histogram::default(),
            syncs: Histogram::default(),
            syncs_failed: AtomicU64::new(0),
        }
    }

    /// Starts one operation: [`Span::finish`] counts it with its outcome, and records its
    /// latency if it is timed (every write, a sample of reads).
    pub fn start(&self, op: Op) -> Span<'_> {
        let counters = self.threads.get_or_default();
        let timed = if op.is_read() {
            let untimed = counters.reads_untimed.load(Ordering::Relaxed) + 1;
            let timed = untimed >= self.read_sample_every;
            counters
                .reads_untimed
                .store(if timed { 0 } else { untimed }, Ordering::Relaxed);
            timed
        } else {
            true
        };
        Span {
            metrics: self,
            counters,
            op,
            started: timed.then(Instant::now),
        }
    }

    /// Counts one operation that the caller timed (or not) itself.
    pub fn record(&self, op: Op, outcome: Outcome, duration: Option<Duration>) {
        let counters = self.threads.get_or_default();
        bump(&counters.counts[op.index()][outcome.index()], 1);
        if let Some(duration) = duration {
            self.durations[op.index()].record_duration(duration);
        }
    }

    /// What has been collected so far. Store and queue gauges are added by the caller, who
    /// holds the store: see [`Snapshot::with_store`] and [`Snapshot::with_queue`].
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = [[0u64; OUTCOMES]; OPS];
        let (mut bytes_read, mut bytes_written) = (0, 0);
        for thread in self.threads.iter() {
            for (op, row) in thread.counts.iter().enumerate() {
                for (outcome, count) in row.iter().enumerate() {
                    counts[op][outcome] += count.load(Ordering::Relaxed);
                }
            }
            bytes_read += thread.bytes_read.load(Ordering::Relaxed);
            bytes_written += thread.bytes_written.load(Ordering::Relaxed);
        }
        let ops = Op::ALL
            .iter()
            .map(|&op| OpStats {
                op,
                counts: counts[op.index()],
                durations: self.durations[op.index()].snapshot(),
            })
            .collect();
        Snapshot {
            ops,
            bytes_read,
            bytes_written,
            read_sample_every: self.read_sample_every,
            commits: CommitStats {
                ok: self.commits_ok.load(Ordering::Relaxed),
                failed: self.commits_failed.load(Ordering::Relaxed),
                ops: self.commit_ops.snapshot(),
                bytes: self.commit_bytes.load(Ordering::Relaxed),
                write: self.commit_write.snapshot(),
                syncs: self.syncs.snapshot(),
                syncs_failed: self.syncs_failed.load(Ordering::Relaxed),
            },
            store: None,
            queue: None,
        }
    }
}

/// One operation in progress; see [`Metrics::start`].
#[must_use = "an operation is counted when its span is finished"]
pub struct Span<'a> {
    metrics: &'a Metrics,
    counters: &'a ThreadCounters,
    op: Op,
    started: Option<Instant>,
}

impl Span<'_> {
    /// Counts the operation with `outcome`, and the document bytes it returned to the caller
    /// (`read`) or took from the caller (`written`).
    pub fn finish(self, outcome: Outcome, read: u64, written: u64) {
        let duration = self.started.map(|started| started.elapsed());
        bump(&self.counters.counts[self.op.index()][outcome.index()], 1);
        if read > 0 {
            bump(&self.counters.bytes_read, read);
        }
        if written > 0 {
            bump(&self.counters.bytes_written, written);
        }
        if let Some(duration) = duration {
            self.metrics.durations[self.op.index()].record_duration(duration);
        }
    }
}

impl CommitObserver for Metrics {
    fn commit(&self, commit: &CommitEvent) {
        if commit.ok {
            self.commits_ok.fetch_add(1, Ordering::Relaxed);
            self.commit_ops.record(commit.ops);
            self.commit_bytes.fetch_add(commit.bytes, Ordering::Relaxed);
        } else {
            self.commits_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.commit_write.record_duration(commit.write);
        if let Some(sync) = commit.sync {
            // A failed commit that got as far as its sync failed there.
            self.sync(sync, commit.ok);
        }
    }

    fn sync(&self, duration: Duration, ok: bool) {
        self.syncs.record_duration(duration);
        if !ok {
            self.syncs_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
