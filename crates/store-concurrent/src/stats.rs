//! What submitters see of the request queue, for metrics and for tuning.

use crate::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the request queue of a [`crate::ConcurrentStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    depth: u64,
    capacity: u64,
    submitted: u64,
    waited_full: u64,
    rejected_full: u64,
}

impl QueueStats {
    /// Requests waiting for the writer thread right now.
    pub fn depth(&self) -> u64 {
        self.depth
    }
    /// Most requests the queue holds.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
    /// Requests queued since the handle was opened.
    pub fn submitted(&self) -> u64 {
        self.submitted
    }
    /// Submissions that found the queue full and blocked until it had room.
    pub fn waited_full(&self) -> u64 {
        self.waited_full
    }
    /// `try_` submissions refused with [`crate::Error::QueueFull`].
    pub fn rejected_full(&self) -> u64 {
        self.rejected_full
    }
    /// The share of submissions that found the queue full (waited or refused), or 0 before
    /// the first one.
    pub fn full_ratio(&self) -> f64 {
        let full = self.waited_full + self.rejected_full;
        let attempts = self.submitted + self.rejected_full;
        if attempts == 0 {
            0.0
        } else {
            full as f64 / attempts as f64
        }
    }
}

/// The counters behind [`QueueStats`], bumped by submitters. Relaxed: each is a statistic
/// on its own, read without relation to any other memory.
#[derive(Default)]
pub(crate) struct QueueCounters {
    submitted: AtomicU64,
    waited_full: AtomicU64,
    rejected_full: AtomicU64,
}

impl QueueCounters {
    pub(crate) fn submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn waited_full(&self) {
        self.waited_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected_full(&self) {
        self.rejected_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, depth: usize, capacity: usize) -> QueueStats {
        QueueStats {
            depth: depth as u64,
            capacity: capacity as u64,
            submitted: self.submitted.load(Ordering::Relaxed),
            waited_full: self.waited_full.load(Ordering::Relaxed),
            rejected_full: self.rejected_full.load(Ordering::Relaxed),
        }
    }
}

impl store_format::VisitStats for QueueStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.gauge(
            "textstore_queue_depth",
            "Requests waiting for the writer thread.",
            self.depth as f64,
        );
        out.gauge(
            "textstore_queue_capacity",
            "Most requests the queue holds.",
            self.capacity as f64,
        );
        out.gauge(
            "textstore_queue_full_ratio",
            "Share of submissions that found the queue full.",
            self.full_ratio(),
        );
        out.counter(
            "textstore_queue_submissions_total",
            "Requests queued.",
            self.submitted,
        );
        out.counter(
            "textstore_queue_waited_full_total",
            "Submissions that blocked on a full queue.",
            self.waited_full,
        );
        out.counter(
            "textstore_queue_rejected_full_total",
            "Submissions refused because the queue was full.",
            self.rejected_full,
        );
    }
}
