//! The bookkeeping of a writer's index checkpoints: which plan may be installed, how much
//! was committed since the last, which compactions' moves no installed checkpoint holds
//! yet, and the checkpoint the engine is writing on its own thread.

use crate::checkpoint_file::InFlight;

/// A writer's checkpoints since the open.
///
/// Invariants:
/// - plans are numbered from 1 in the order they are made, and only the last one planned
///   may be installed (an older one misses the changes frozen after it);
/// - `covered` is the highest number installed: a segment retired while plan `p` was the
///   last may be removed once `covered > p`, since that checkpoint's file no longer
///   points into it;
/// - the compaction outputs in `uncovered_copies` hold moves no installed checkpoint
///   reflects: they are forgotten only when a checkpoint planned after the last compaction
///   was installed, and until then the retired-segment list names them for an open to walk.
#[derive(Default)]
pub(crate) struct Checkpoints {
    planned: u64,
    installed: u64,
    covered: u64,
    bytes_since: u64,
    /// Bytes committed since the last journal frame.
    unjournaled_bytes: u64,
    uncovered_copies: Vec<u32>,
    /// `planned` when the last compaction was installed.
    copies_covered_after: u64,
    in_flight: Option<InFlight>,
    failures: u64,
}

impl Checkpoints {
    /// The bookkeeping of a store just opened: `since_index_file` bytes of commits past the
    /// index file (a new journal, started by the first frame, holds them all), and the
    /// compaction outputs whose moves it does not hold.
    pub(crate) fn new(since_index_file: u64, uncovered_copies: Vec<u32>) -> Checkpoints {
        Checkpoints {
            bytes_since: since_index_file,
            unjournaled_bytes: since_index_file,
            uncovered_copies,
            ..Checkpoints::default()
        }
    }

    /// Numbers a new plan, which freezes every change so far. Returns its number.
    pub(crate) fn plan(&mut self) -> u64 {
        self.planned += 1;
        self.bytes_since = 0;
        self.planned
    }

    /// Whether plan `generation` may be installed: it is the last one planned.
    pub(crate) fn may_install(&self, generation: u64) -> bool {
        generation == self.planned
    }

    /// Records that plan `generation` is installed. Returns whether that forgot the
    /// uncovered copies, so that the retired-segment list must be written again.
    pub(crate) fn installed(&mut self, generation: u64) -> bool {
        self.installed += 1;
        self.covered = self.covered.max(generation);
        if self.uncovered_copies.is_empty() || generation <= self.copies_covered_after {
            return false;
        }
        self.uncovered_copies.clear();
        true
    }

    /// Records a compaction installed with outputs `copies`. Returns the number of the last
    /// plan, which the segments it retires wait to be covered past.
    pub(crate) fn compaction_installed(&mut self, copies: &[u32]) -> u64 {
        self.uncovered_copies.extend_from_slice(copies);
        self.uncovered_copies.sort_unstable();
        self.uncovered_copies.dedup();
        self.copies_covered_after = self.planned;
        self.planned
    }

    /// Counts `bytes` of records committed.
    pub(crate) fn committed(&mut self, bytes: u64) {
        self.bytes_since += bytes;
        self.unjournaled_bytes = self.unjournaled_bytes.saturating_add(bytes);
    }

    /// Whether a journal frame is due: `every` bytes were committed since the last.
    pub(crate) fn frame_due(&self, every: Option<u64>) -> bool {
        every.is_some_and(|every| self.unjournaled_bytes >= every)
    }

    /// Records a journal frame written (or given up).
    pub(crate) fn framed(&mut self) {
        self.unjournaled_bytes = 0;
    }

    /// Makes a journal frame due at once: a new index file retired the journal, whose
    /// frames covered the commits made while it was written, so that until a frame starts
    /// the next journal an open would replay everything since the new file's position.
    pub(crate) fn journal_restarted(&mut self) {
        self.unjournaled_bytes = u64::MAX;
    }

    /// Bytes committed since the last plan: what a journal frame records, so that an open
    /// knows when the next index file is due.
    pub(crate) fn bytes_since_plan(&self) -> u64 {
        self.bytes_since
    }

    /// Counts a background checkpoint that failed (the data is durable and the older index
    /// file still in place; the next due point retries).
    pub(crate) fn failed(&mut self) {
        self.failures += 1;
    }

    /// Whether a checkpoint is due: when the caller says writes pause (`idle`) or a
    /// compaction's moves wait, as soon as anything changed (`stale`); otherwise once half
    /// of `every` bytes were committed since the last plan.
    pub(crate) fn due(&self, idle: bool, stale: bool, every: Option<u64>) -> bool {
        if idle || !self.uncovered_copies.is_empty() {
            stale
        } else {
            every.is_some_and(|every| self.bytes_since >= every / 2)
        }
    }

    /// Whether anything was committed or a compaction's moves wait for a checkpoint.
    pub(crate) fn behind(&self) -> bool {
        self.bytes_since > 0 || !self.uncovered_copies.is_empty()
    }

    /// The compaction outputs whose moves no installed checkpoint holds, ascending.
    pub(crate) fn uncovered_copies(&self) -> &[u32] {
        &self.uncovered_copies
    }

    /// The highest plan number installed.
    pub(crate) fn covered(&self) -> u64 {
        self.covered
    }

    /// Checkpoints installed since the open.
    pub(crate) fn installed_count(&self) -> u64 {
        self.installed
    }

    /// Background checkpoints that failed since the open.
    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    /// The checkpoint being written on the engine's thread, if any.
    pub(crate) fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    pub(crate) fn start(&mut self, in_flight: InFlight) {
        debug_assert!(
            self.in_flight.is_none(),
            "one checkpoint is written at a time"
        );
        self.in_flight = Some(in_flight);
    }

    pub(crate) fn take_in_flight(&mut self) -> Option<InFlight> {
        self.in_flight.take()
    }
}
