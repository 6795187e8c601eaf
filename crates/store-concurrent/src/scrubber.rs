//! The scrub beside the writer: a thread that checks the sealed segments and the index
//! file's pages again, pass after pass, at a paced rate, so that damage that reaches the
//! disk after a record's or a page's first read is found and the next read that reaches it
//! fails (and the writer thread rebuilds a damaged index file at its next commit or pause,
//! or a read-only handle's at its next refresh).
//!
//! The writer thread plans each segment of a pass (it notes the next sealed segment, and
//! the index file with the first, a quick step); the check runs here, through the mappings,
//! with no lock: what it changes is the set of checked records of each segment and of
//! checked pages of the index file, which readers consult with relaxed loads (see
//! `store_mmap::SegmentMap::read_doc`).

use std::time::Duration;

use crate::options::ScrubPolicy;

use crate::deferred::{Deferred, ThreadSlot};
use crate::request::Request;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{Arc, Mutex, lock};
use crate::ticket::ticket;

/// What the scrub of a [`crate::ConcurrentStore`] did since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubStats {
    passes: u64,
    bytes: u64,
    records_ok: u64,
    damaged_ranges: u64,
    last_problem: Option<String>,
}

impl ScrubStats {
    /// Passes over every sealed segment and the index file completed.
    pub fn passes(&self) -> u64 {
        self.passes
    }
    /// Bytes of records and of index file pages checked.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Records that passed their check.
    pub fn records_ok(&self) -> u64 {
        self.records_ok
    }
    /// Damaged ranges and index file pages found; every record in them, and every lookup
    /// that reaches such a page, fails its next read.
    pub fn damaged_ranges(&self) -> u64 {
        self.damaged_ranges
    }
    /// The latest damage found, if any: the file, the range and what failed; or why the
    /// scrub thread could not be started.
    pub fn last_problem(&self) -> Option<&str> {
        self.last_problem.as_deref()
    }
}

impl store_format::VisitStats for ScrubStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.counter(
            "textstore_scrub_passes_total",
            "Scrub passes over every sealed segment.",
            self.passes,
        );
        out.counter(
            "textstore_scrub_bytes_total",
            "Bytes of records and index file pages the scrub checked.",
            self.bytes,
        );
        out.counter(
            "textstore_scrub_damaged_ranges_total",
            "Damaged ranges and index file pages the scrub found.",
            self.damaged_ranges,
        );
    }
}

/// The scrub's statistics, under one lock, so that a snapshot never shows damage counted
/// without the problem it found. The scrub takes it once a segment, a reader of the
/// statistics for as long as a clone takes.
#[derive(Default)]
struct Counters(Mutex<ScrubStats>);

/// The scrubbing side of a handle.
pub(crate) struct Scrubber {
    stop: Arc<AtomicBool>,
    /// Closed at stop, which ends the pause between passes at once.
    wake: Mutex<Option<Sender<()>>>,
    thread: Arc<ThreadSlot>,
    counters: Arc<Counters>,
}

impl Scrubber {
    /// Starts the thread when the policy has a rate.
    pub(crate) fn start(
        policy: ScrubPolicy,
        requests: &Sender<Request>,
    ) -> (Scrubber, Option<Deferred>) {
        let (wake, woken) = channel::bounded(1);
        let scrubber = Scrubber {
            stop: Arc::new(AtomicBool::new(false)),
            wake: Mutex::new(Some(wake)),
            thread: Arc::new(ThreadSlot::default()),
            counters: Arc::new(Counters::default()),
        };
        let Some(bytes_per_sec) = policy.bytes_per_sec else {
            return (scrubber, None);
        };
        let worker = Worker {
            stop: Arc::clone(&scrubber.stop),
            counters: Arc::clone(&scrubber.counters),
            requests: requests.clone(),
            bytes_per_sec,
            pause: policy.pause_between_passes,
        };
        let counters = Arc::clone(&scrubber.counters);
        let deferred = ThreadSlot::defer(
            &scrubber.thread,
            "textstore-scrub",
            move || worker.serve(&woken),
            move |err| {
                lock(&counters.0).last_problem =
                    Some(format!("the scrub thread could not be started: {err}"));
            },
        );
        (scrubber, Some(deferred))
    }

    /// Cancels a running pass and ends the thread. Idempotent.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        drop(lock(&self.wake).take());
        self.thread.stop();
    }

    pub(crate) fn stats(&self) -> ScrubStats {
        lock(&self.counters.0).clone()
    }
}

/// The scrub thread.
struct Worker {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    requests: Sender<Request>,
    bytes_per_sec: u64,
    pause: Duration,
}

/// The handle stopped the scrub.
struct Stopped;

impl Worker {
    fn serve(self, woken: &Receiver<()>) {
        while self.pass().is_ok() {
            lock(&self.counters.0).passes += 1;
            // Until the pause is over, or the sender is dropped at stop.
            if woken
                .recv_timeout(self.pause)
                .is_err_and(|err| err.is_disconnected())
            {
                return;
            }
        }
    }

    /// One pass over the sealed segments and the index file, planned a segment at a time
    /// (the index file with the first, or alone when none is sealed): the thread holds
    /// only the segment it checks, so a segment that a compaction replaces while the pass
    /// is under way can be removed without waiting for the pass to end.
    fn pass(&self) -> Result<(), Stopped> {
        let mut after = None;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Err(Stopped);
            }
            let (done, planned) = ticket();
            let request = Request::PlanScrub {
                after,
                bytes_per_sec: Some(self.bytes_per_sec),
                done,
            };
            self.requests.send(request).map_err(|_| Stopped)?;
            let Some(plan) = planned.wait().map_err(|_| Stopped)? else {
                return Ok(());
            };
            after = plan.segment();
            let report = plan.cancel_when(Arc::clone(&self.stop)).run();
            // A plan of the index file alone (no segment sealed yet) ends the pass.
            let last = after.is_none();
            {
                let mut stats = lock(&self.counters.0);
                stats.bytes += report.bytes;
                stats.records_ok += report.records_ok;
                stats.damaged_ranges += report.problems.len() as u64;
                if let Some(problem) = report.problems.last() {
                    stats.last_problem = Some(problem.to_string());
                }
            }
            if report.cancelled {
                return Err(Stopped);
            }
            if last {
                return Ok(());
            }
        }
    }
}
