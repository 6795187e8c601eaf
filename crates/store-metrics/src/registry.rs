//! The collector: per-thread operation counters, shared latency histograms, commit events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store_format::{CommitEvent, CommitObserver, Figures, StoreError};
use thread_local::ThreadLocal;

use crate::histogram::Histogram;
use crate::op::{Op, Outcome};
use crate::snapshot::{CommitStats, OpStats, Snapshot};
use crate::thread_index;

const OPS: usize = Op::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();

/// How many reads in a row a thread lets pass before it times one, by default (a power of two:
/// see [`Metrics::with_read_sample_every`]). Timing every
/// read makes a get of a resident 220 to 280-byte document 44% slower (`get/plain` 211 µs against
/// `get/instrumented_every_read_timed` 304 µs for 4096 gets in `cargo bench -p store-metrics
/// --bench overhead`); timing one in 64 spreads that cost over 64 reads, while the quantiles
/// still rest on thousands of samples a second.
pub const DEFAULT_READ_SAMPLE_EVERY: u32 = 64;

/// Threads whose counters sit in the collector's array, found by their index. Threads beyond
/// these (their indexes are handed out to every thread of the process that touches any
/// collector) have counters found through the `thread_local` crate, which costs a get more.
/// 64 sets of counters take 36 KiB.
const THREAD_SLOTS: usize = 64;

/// Counters only their own thread writes, so an increment is a plain load and store with no
/// locked instruction and no cache line shared with other threads. A snapshot sums every
/// thread's counters, including those of threads that have exited: a thread that takes the
/// index of an exited one carries on its counts.
///
/// A successful operation touches two counters: `finished` of its operation and the bytes it
/// moved. Its success is not counted apart: the successes are what `finished` counts beyond
/// the other outcomes, which only failures and misses touch. `finished` also chooses the
/// reads that are timed, so a read that is not timed reads no other counter to know it.
#[repr(align(64))]
#[derive(Default)]
struct ThreadCounters {
    /// Operations finished, whatever their outcome, by operation.
    finished: [AtomicU64; OPS],
    /// Operations by operation and outcome, except [`Outcome::Ok`] (index 0, unused).
    outcomes: [[AtomicU64; OUTCOMES]; OPS],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// Adds `n` to a counter that only the calling thread writes. Relaxed: a snapshot reads each
/// counter as a statistic on its own.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl ThreadCounters {
    #[inline(always)]
    fn count(&self, op: Op, outcome: Outcome) {
        if outcome != Outcome::Ok {
            bump(&self.outcomes[op.index()][outcome.index()], 1);
        }
        bump(&self.finished[op.index()], 1);
    }
}

/// Collects what every layer reports. Share it in an `Arc`: [`crate::Instrumented`] wrappers
/// record operations into it, and a store given it as its [`CommitObserver`] records commits.
pub struct Metrics {
    /// Counters of the threads whose index is below [`THREAD_SLOTS`].
    slots: Box<[ThreadCounters]>,
    /// Counters of the other threads.
    overflow: ThreadLocal<ThreadCounters>,
    /// The time stamp counter, read without a fence and calibrated once per process (under a
    /// millisecond). `std::time::Instant` goes through the vDSO: with it instrumentation cost
    /// a get 5.6% instead of 2.7% in `overhead_paired`.
    clock: quanta::Clock,
    durations: [Histogram; OPS],
    /// A thread times a read when its count of that operation's finished reads is a multiple
    /// of the sampling interval: when these bits of it are all zero.
    read_sample_mask: u64,
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

    /// A collector that times one read in `every` (1: every read), rounded up to a power of
    /// two so that the choice is a mask rather than a division. Every read is counted whatever
    /// this is; only the latency histogram is sampled.
    pub fn with_read_sample_every(every: u32) -> Metrics {
        Metrics {
            slots: (0..THREAD_SLOTS)
                .map(|_| ThreadCounters::default())
                .collect(),
            overflow: ThreadLocal::new(),
            clock: quanta::Clock::new(),
            durations: Default::default(),
            read_sample_mask: u64::from(every.max(1)).next_power_of_two() - 1,
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
    ///
    /// Inlined with everything a successful read goes through, and no call out of line: in
    /// `overhead_paired`, two calls to out-of-line code that did nothing, made one read in 64,
    /// cost 4.5 points on their own (9.5% against 5.0% with the same code inlined).
    #[inline(always)]
    pub fn start(&self, op: Op) -> Span<'_> {
        let counters = self.counters();
        let timed = !op.is_read()
            || counters.finished[op.index()].load(Ordering::Relaxed) & self.read_sample_mask == 0;
        Span {
            metrics: self,
            counters,
            op,
            started: if timed { self.now() } else { 0 },
        }
    }

    /// Starts an operation whose span outlives a borrow of the collector (a write of the
    /// concurrent handle, finished when its ticket is waited on): the clock reading to give
    /// [`Metrics::finish_started`].
    pub(crate) fn start_detached(&self) -> u64 {
        self.now()
    }

    /// Counts an operation begun with [`Metrics::start_detached`], or a span that failed, on
    /// the calling thread.
    pub(crate) fn finish_started(
        &self,
        op: Op,
        started: u64,
        outcome: Outcome,
        read: u64,
        written: u64,
    ) {
        let span = Span {
            metrics: self,
            counters: self.counters(),
            op,
            started,
        };
        span.finish(outcome, read, written);
    }

    /// Counts one operation that the caller timed (or not) itself.
    pub fn record(&self, op: Op, outcome: Outcome, duration: Option<Duration>) {
        self.counters().count(op, outcome);
        if let Some(duration) = duration {
            self.durations[op.index()].record_duration(duration);
        }
    }

    /// The calling thread's counters: its index and one array lookup. A thread's first call,
    /// and every call of a thread beyond the array, is out of line.
    #[inline(always)]
    fn counters(&self) -> &ThreadCounters {
        match self.slots.get(thread_index::current()) {
            Some(counters) => counters,
            None => self.unslotted_counters(),
        }
    }

    #[cold]
    #[inline(never)]
    fn unslotted_counters(&self) -> &ThreadCounters {
        match self.slots.get(thread_index::assign()) {
            Some(counters) => counters,
            None => self.overflow.get_or_default(),
        }
    }

    /// A clock reading (the time stamp counter where the CPU has a stable one), never 0,
    /// which marks an untimed span.
    #[inline]
    fn now(&self) -> u64 {
        self.clock.raw().max(1)
    }

    #[inline]
    fn record_since(&self, op: Op, started: u64) {
        let elapsed = self.clock.delta(started, self.clock.raw());
        self.durations[op.index()].record_duration(elapsed);
    }

    /// What has been collected so far. The layers' stats (the store's size, the queue, the
    /// cache) are added by the caller, who holds them: see [`Snapshot::with_stats`].
    pub fn snapshot(&self) -> Snapshot {
        let mut counts = [[0u64; OUTCOMES]; OPS];
        let (mut bytes_read, mut bytes_written) = (0, 0);
        for thread in self.slots.iter().chain(self.overflow.iter()) {
            for (op, row) in counts.iter_mut().enumerate() {
                // Read before the other outcomes, which `count` adds to before it adds to
                // `finished`: a failure finishing meanwhile leaves the successes one short
                // for this snapshot, and is never counted as one. The subtraction saturates because relaxed
                // loads promise no order.
                let finished = thread.finished[op].load(Ordering::Relaxed);
                let mut others = 0u64;
                for (outcome, count) in row.iter_mut().enumerate().skip(1) {
                    let n = thread.outcomes[op][outcome].load(Ordering::Relaxed);
                    *count += n;
                    others += n;
                }
                row[Outcome::Ok.index()] += finished.saturating_sub(others);
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
            read_sample_every: self.read_sample_mask + 1,
            commits: CommitStats {
                ok: self.commits_ok.load(Ordering::Relaxed),
                failed: self.commits_failed.load(Ordering::Relaxed),
                ops: self.commit_ops.snapshot(),
                bytes: self.commit_bytes.load(Ordering::Relaxed),
                write: self.commit_write.snapshot(),
                syncs: self.syncs.snapshot(),
                syncs_failed: self.syncs_failed.load(Ordering::Relaxed),
            },
            figures: Figures::default(),
        }
    }
}

/// One operation in progress; see [`Metrics::start`].
#[must_use = "an operation is counted when its span is finished"]
pub struct Span<'a> {
    metrics: &'a Metrics,
    counters: &'a ThreadCounters,
    op: Op,
    /// The clock when the operation started, or 0 when it is not timed.
    started: u64,
}

impl Span<'_> {
    /// Counts the operation with `outcome`, and the document bytes it returned to the caller
    /// (`read`) or took from the caller (`written`).
    #[inline(always)]
    pub fn finish(self, outcome: Outcome, read: u64, written: u64) {
        if self.started != 0 {
            self.metrics.record_since(self.op, self.started);
        }
        self.counters.count(self.op, outcome);
        // A read's byte count is added unconditionally (adding a zero costs less than a
        // branch); a write's is a constant zero on a read's path, where the branch folds away
        // (an atomic's load and store of the same value would not).
        bump(&self.counters.bytes_read, read);
        if written > 0 {
            bump(&self.counters.bytes_written, written);
        }
    }
}

impl Span<'_> {
    /// Counts the operation as failed with `err`. The classification is out of line and takes
    /// the span's fields as arguments, which travel in registers: a span passed whole would be
    /// written to the stack on the path of every successful read too.
    #[inline(always)]
    pub(crate) fn fail<E: StoreError>(self, err: &E) {
        failed(self.metrics, self.op, self.started, err);
    }
}

#[cold]
#[inline(never)]
fn failed<E: StoreError>(metrics: &Metrics, op: Op, started: u64, err: &E) {
    metrics.finish_started(op, started, Outcome::of_error(err), 0, 0);
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
