//! Compaction beside the writer: the thread of the automatic policy, and the three steps
//! that both it and `ConcurrentStore::compact` take.
//!
//! The writer thread plans (a quick pass over the index) and installs (renames, re-points,
//! publishes); the copy in between, which reads and writes whole segments, runs on the
//! compacting thread, so group commits go on meanwhile. One compaction runs at a time.

use std::time::{Duration, Instant};

use store_mmap::{CompactionPolicy, CompactionReport, CompactionScope};

use crate::deferred::{Deferred, ThreadSlot};
use crate::error::{Error, Result};
use crate::request::Request;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{Arc, Mutex, lock};
use crate::ticket::ticket;
use crate::writer::AutoCompaction;

/// What compactions of a [`crate::ConcurrentStore`] did since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionStats {
    completed: u64,
    failed: u64,
    bytes_in: u64,
    bytes_out: u64,
    last_error: Option<String>,
}

impl CompactionStats {
    /// Compactions that took effect, automatic and requested.
    pub fn completed(&self) -> u64 {
        self.completed
    }
    /// Compactions that failed (the store unchanged by each); those cancelled or refused
    /// because the store is closing are not counted.
    pub fn failed(&self) -> u64 {
        self.failed
    }
    /// Bytes of the segments replaced.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
    /// Bytes of the segments written in their place.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
    /// The latest failure, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

impl store_format::VisitStats for CompactionStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.counter(
            "textstore_compactions_total",
            "Compactions that took effect.",
            self.completed,
        );
        out.counter(
            "textstore_compactions_failed_total",
            "Compactions that failed, each leaving the store unchanged.",
            self.failed,
        );
        out.counter(
            "textstore_compaction_read_bytes_total",
            "Bytes of the segments compactions replaced.",
            self.bytes_in,
        );
        out.counter(
            "textstore_compaction_written_bytes_total",
            "Bytes of the segments compactions wrote in their place.",
            self.bytes_out,
        );
    }
}

/// The compacting side of a handle.
pub(crate) struct Compactor {
    /// Held for the whole of each compaction.
    gate: Arc<Mutex<()>>,
    /// Set at close: the running compaction is cancelled and no other starts.
    stop: Arc<AtomicBool>,
    /// Wakes the thread (the writer's copy wakes it when the store is due).
    nudge: Sender<()>,
    thread: Arc<ThreadSlot>,
    counters: Arc<Counters>,
}

/// The compactions' statistics, under one lock, so that a snapshot never shows a failure
/// counted without its error or a compaction without its bytes. A compaction takes it once,
/// and a reader of the statistics for as long as a clone takes.
#[derive(Default)]
struct Counters(Mutex<CompactionStats>);

impl Counters {
    fn record(&self, outcome: &Result<Option<CompactionReport>>) {
        match outcome {
            Ok(Some(report)) => {
                let mut stats = lock(&self.0);
                stats.completed += 1;
                stats.bytes_in += report.bytes_in;
                stats.bytes_out += report.bytes_out;
            }
            // Nothing to do, or the store is closing: neither is a failed compaction.
            Ok(None)
            | Err(Error::Closed | Error::Store(store_mmap::Error::CompactionCancelled)) => {}
            Err(err) => {
                tracing::warn!(error = %err, "compaction failed; the store is unchanged");
                let mut stats = lock(&self.0);
                stats.failed += 1;
                stats.last_error = Some(err.to_string());
            }
        }
    }

    /// Notes a failure that is not a compaction's, such as the thread's start.
    fn note_error(&self, error: String) {
        lock(&self.0).last_error = Some(error);
    }

    fn snapshot(&self) -> CompactionStats {
        lock(&self.0).clone()
    }
}

impl Compactor {
    /// Starts the thread of the automatic policy, when the policy has a threshold. Returns
    /// what the writer needs to wake it.
    pub(crate) fn start(
        policy: &CompactionPolicy,
        requests: &Sender<Request>,
    ) -> (Compactor, Option<AutoCompaction>, Option<Deferred>) {
        let (nudge, nudges) = channel::bounded(1);
        let compactor = Compactor {
            gate: Arc::new(Mutex::new(())),
            stop: Arc::new(AtomicBool::new(false)),
            nudge: nudge.clone(),
            thread: Arc::new(ThreadSlot::default()),
            counters: Arc::new(Counters::default()),
        };
        if policy.dead_ratio.is_none() {
            return (compactor, None, None);
        }
        let worker = Worker {
            gate: Arc::clone(&compactor.gate),
            stop: Arc::clone(&compactor.stop),
            counters: Arc::clone(&compactor.counters),
            requests: requests.clone(),
            scope: CompactionScope::Due(policy.clone()),
        };
        let counters = Arc::clone(&compactor.counters);
        let deferred = ThreadSlot::defer(
            &compactor.thread,
            "textstore-compactor",
            move || worker.serve(&nudges),
            move |err| {
                counters.note_error(format!("the compaction thread could not be started: {err}"));
            },
        );
        (compactor, Some((policy.clone(), nudge)), Some(deferred))
    }

    /// Runs one compaction of `scope` on the calling thread, after any that is running.
    pub(crate) fn compact(
        &self,
        requests: &Sender<Request>,
        scope: CompactionScope,
    ) -> Result<Option<CompactionReport>> {
        let outcome = compact_once(&self.gate, &self.stop, requests, scope);
        self.counters.record(&outcome);
        outcome
    }

    /// Cancels a running compaction and ends the thread. Idempotent.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.nudge.try_send(());
        self.thread.stop();
    }

    pub(crate) fn stats(&self) -> CompactionStats {
        self.counters.snapshot()
    }
}

/// The thread of the automatic policy.
struct Worker {
    gate: Arc<Mutex<()>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    requests: Sender<Request>,
    scope: CompactionScope,
}

/// How long the policy's compaction waits after one refused for want of room on the file
/// system, and the longest such wait: each refusal in a row doubles it.
const ROOM_WAIT_FIRST: Duration = Duration::from_secs(5);
/// See [`ROOM_WAIT_FIRST`].
const ROOM_WAIT_MAX: Duration = Duration::from_secs(80);

impl Worker {
    fn serve(self, nudges: &Receiver<()>) {
        // After a compaction refused for want of room, the nudges of the commits that follow
        // pass unanswered until the wait is over: room comes back from outside the store
        // (files removed elsewhere), not from its commits, and a refusal at every commit
        // would count a failure and log a warning at every commit.
        let mut waiting: Option<(Instant, Duration)> = None;
        while nudges.recv().is_ok() {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if waiting.is_some_and(|(until, _)| Instant::now() < until) {
                continue;
            }
            let outcome = compact_once(&self.gate, &self.stop, &self.requests, self.scope.clone());
            waiting = match &outcome {
                Err(Error::Store(store_mmap::Error::NoRoomToCompact { .. })) => {
                    let wait =
                        waiting.map_or(ROOM_WAIT_FIRST, |(_, last)| (last * 2).min(ROOM_WAIT_MAX));
                    Some((Instant::now() + wait, wait))
                }
                _ => None,
            };
            self.counters.record(&outcome);
        }
    }
}

/// Plan on the writer thread, copy here, install on the writer thread.
fn compact_once(
    gate: &Mutex<()>,
    stop: &Arc<AtomicBool>,
    requests: &Sender<Request>,
    scope: CompactionScope,
) -> Result<Option<CompactionReport>> {
    let _running = lock(gate);
    if stop.load(Ordering::Acquire) {
        return Err(Error::Closed);
    }
    let (done, planned) = ticket();
    requests
        .send(Request::PlanCompaction { scope, done })
        .map_err(|_| Error::Closed)?;
    let Some(mut plan) = planned.wait()? else {
        return Ok(None);
    };
    plan.cancel_when(Arc::clone(stop));
    // The copy writes only files of its own, which are removed if they are never installed
    // (or by the next open, after a panic): a panic in it, in the engine or in its storage,
    // fails this compaction alone, as an error would. Left to unwind, it would end the
    // policy's thread, and with it every later compaction, without a word.
    let compacted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan.run()))
        .unwrap_or_else(|panic| {
            Err(store_mmap::Error::panicked(
                "the thread copying a compaction",
                &*panic,
            ))
        })?;
    let (done, installed) = ticket();
    requests
        .send(Request::InstallCompaction { compacted, done })
        .map_err(|_| Error::Closed)?;
    installed.wait().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot taken while compactions fail shows each failure counted with its own
    /// error, never the count of one beside the error of the one before.
    #[test]
    fn a_snapshot_shows_each_failure_with_its_error() {
        const FAILURES: usize = 20_000;
        let counters = Arc::new(Counters::default());
        let failing = {
            let counters = Arc::clone(&counters);
            std::thread::spawn(move || {
                for i in 0..FAILURES {
                    let reason = format!("failure {i}");
                    counters.record(&Err(Error::InvalidOptions { reason }));
                }
            })
        };
        let mut seen = 0;
        while !failing.is_finished() || seen < FAILURES as u64 {
            let stats = counters.snapshot();
            let expected = stats
                .failed()
                .checked_sub(1)
                .map(|last| format!("invalid writer option: failure {last}"));
            assert_eq!(stats.last_error().map(str::to_owned), expected);
            seen = stats.failed();
        }
        failing.join().unwrap();
    }
}
