//! The bookkeeping of a writer's index checkpoints: which plan may be installed, how much
//! was committed since the last, which compactions' moves no installed checkpoint holds
//! yet, and the checkpoint the engine is writing on its own thread.

use crate::checkpoint_file::InFlight;

/// With a synced journal, commits of at least this many times the index file's size pass
/// between two rewrites of it: a checkpoint writes the whole file (about 47 bytes a
/// document), so this bounds what checkpoints add to the bytes written at 1/64, however
/// large the documents. The half interval alone (16 MiB by default) rewrote the 950 KB
/// index of 20k pages of the Rust documentation every 13 commits of 100 of them.
pub(crate) const INDEX_REWRITE_FACTOR: u64 = 64;

/// The most changes the journal holds before the index file is rewritten, whatever the
/// interval: an open after a crash indexes each (16 bytes and about 75 ns a change), and
/// 16 MiB of the smallest records, which the byte interval alone let through, are 233k.
pub(crate) const MAX_JOURNAL_CHANGES: u64 = 1 << 18;

/// What the index journal does in the index file's place, which decides when the file is
/// rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalRole {
    /// No journal, or no index file for it to go on top of: the index file alone bounds
    /// the replay, and a pause checkpoints it.
    None,
    /// Under write-back: frames go into the page cache at the caller's syncs, and a pause
    /// syncs the data and a frame, but nothing syncs the journal in between, so the index
    /// file still bounds what a power cut replays: it is rewritten every half interval.
    AtPauses,
    /// Under per-commit syncs: the journal is synced every half interval, so it bounds
    /// what a power cut replays, and the index file waits for its share of commits.
    Synced,
}

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
    /// Documents changed since the last plan, each time counted: the changes a journal on
    /// top of the next index file would hold, which an open after a crash indexes.
    changes_since: u64,
    /// Bytes committed since the last journal frame.
    unjournaled_bytes: u64,
    /// Bytes committed past the newest state a power cut keeps: the last synced journal
    /// frame, or the index file when no frame of its journal was synced yet.
    unsynced_bytes: u64,
    uncovered_copies: Vec<u32>,
    /// `planned` when the last compaction was installed.
    copies_covered_after: u64,
    in_flight: Option<InFlight>,
    failures: u64,
    /// Times the index was rebuilt from the data after a page of its file failed a check.
    rebuilds: u64,
}

impl Checkpoints {
    /// The bookkeeping of a store just opened: `since_index_file` bytes of commits past the
    /// index file (a new journal, started by the first frame, holds them all), and the
    /// compaction outputs whose moves it does not hold.
    /// `changes_since_index_file` counts the changes the open found past the index file
    /// (the journal's and the replayed records').
    pub(crate) fn new(
        since_index_file: u64,
        changes_since_index_file: u64,
        uncovered_copies: Vec<u32>,
    ) -> Checkpoints {
        Checkpoints {
            bytes_since: since_index_file,
            changes_since: changes_since_index_file,
            unjournaled_bytes: since_index_file,
            unsynced_bytes: since_index_file,
            uncovered_copies,
            ..Checkpoints::default()
        }
    }

    /// Numbers a new plan, which freezes every change so far. Returns its number.
    pub(crate) fn plan(&mut self) -> u64 {
        self.planned += 1;
        self.bytes_since = 0;
        self.changes_since = 0;
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
        // The new index file is durable at its plan's position; its journal starts unsynced.
        self.unsynced_bytes = self.bytes_since;
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

    /// Counts `bytes` of records committed, changing `changes` documents.
    pub(crate) fn committed(&mut self, bytes: u64, changes: u64) {
        self.bytes_since += bytes;
        self.changes_since += changes;
        self.unjournaled_bytes = self.unjournaled_bytes.saturating_add(bytes);
        self.unsynced_bytes = self.unsynced_bytes.saturating_add(bytes);
    }

    /// Whether the journal is due a sync, so that a power cut replays at most `every`
    /// bytes: half of it was committed since the last (the half before the sync was
    /// journalled, and frames go to the page cache every few kilobytes).
    pub(crate) fn journal_sync_due(&self, every: Option<u64>) -> bool {
        every.is_some_and(|every| self.unsynced_bytes >= every / 2)
    }

    /// Whether anything was committed past the newest state a power cut keeps.
    pub(crate) fn journal_behind(&self) -> bool {
        self.unsynced_bytes > 0
    }

    /// Records a sync of the journal, with every frame appended before it.
    pub(crate) fn journal_synced(&mut self) {
        self.unsynced_bytes = 0;
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

    /// Counts an index rebuilt from the data (`rebuild.rs`).
    pub(crate) fn index_rebuilt(&mut self) {
        self.rebuilds += 1;
    }

    /// Indexes rebuilt from the data since the open.
    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// Whether a checkpoint is due: when a compaction's moves wait, as soon as anything
    /// changed (`stale`); otherwise once half of `every` bytes were committed since the
    /// last plan, or, when the caller says writes pause (`idle`) and no journal covers the
    /// pause, as soon as anything changed.
    ///
    /// Where the journal covers a pause (`journal`), a pause syncs a frame of the changes
    /// instead (`Store::tend_checkpoint`): rewriting the index file at every pause wrote the
    /// whole file (47 MB for a million documents) for each put of a writer that pauses
    /// between puts. Where it is synced in the index file's place ([`JournalRole::Synced`]),
    /// an index file of `index_bytes` is rewritten no sooner than [`INDEX_REWRITE_FACTOR`]
    /// times its size of commits, or once [`MAX_JOURNAL_CHANGES`] changes wait, whichever
    /// comes first.
    pub(crate) fn due(
        &self,
        idle: bool,
        stale: bool,
        every: Option<u64>,
        journal: JournalRole,
        index_bytes: u64,
    ) -> bool {
        if !self.uncovered_copies.is_empty() {
            return stale;
        }
        let Some(every) = every else {
            return idle && stale;
        };
        match journal {
            JournalRole::None if idle => return stale,
            JournalRole::None | JournalRole::AtPauses => return self.bytes_since >= every / 2,
            JournalRole::Synced => {}
        }
        let interval = (every / 2).max(index_bytes.saturating_mul(INDEX_REWRITE_FACTOR));
        self.bytes_since >= interval || self.changes_since >= MAX_JOURNAL_CHANGES
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

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Option<u64> = Some(32 << 20);

    fn role(synced: bool) -> JournalRole {
        if synced {
            JournalRole::Synced
        } else {
            JournalRole::None
        }
    }

    fn after(bytes: u64, changes: u64) -> Checkpoints {
        let mut checkpoints = Checkpoints::default();
        checkpoints.committed(bytes, changes);
        checkpoints
    }

    /// With a synced journal the index file waits for 64 times its size of commits, or for
    /// the most changes an open should index, whichever comes first; without one, half
    /// the interval decides, as it does while the index file is small.
    #[test]
    fn a_synced_journal_lets_the_index_file_wait_for_its_share_of_commits() {
        let index_bytes = 1 << 20;
        let share = index_bytes * INDEX_REWRITE_FACTOR;
        let half = (32 << 20) / 2;
        assert!(share > half);
        let due = |c: &Checkpoints, synced| c.due(false, true, EVERY, role(synced), index_bytes);
        assert!(
            due(&after(half, 100), false),
            "no journal sync: half the interval"
        );
        assert!(
            !due(&after(half, 100), true),
            "the index file's share not reached"
        );
        assert!(!due(&after(share - 1, 100), true));
        assert!(due(&after(share, 100), true));
        assert!(
            due(&after(1 << 20, MAX_JOURNAL_CHANGES), true),
            "too many changes for an open to index"
        );
        assert!(!due(&after(1 << 20, MAX_JOURNAL_CHANGES - 1), true));
        // A small index file: half the interval still rules.
        let small = |c: &Checkpoints| c.due(false, true, EVERY, JournalRole::Synced, 4096);
        assert!(small(&after(half, 100)));
        assert!(!small(&after(half - 1, 100)));
        // No interval: checkpoints only on request, idle or after a compaction.
        assert!(!after(u64::MAX / 2, u64::MAX / 2).due(false, true, None, JournalRole::Synced, 0));
        assert!(after(1, 1).due(true, true, None, JournalRole::Synced, index_bytes));
    }

    /// A pause rewrites the index file as soon as anything changed only where no synced
    /// journal stands in for it: with one, the file still waits for its share, and a
    /// compaction's moves still want a checkpoint at once.
    #[test]
    fn a_pause_rewrites_the_index_file_only_without_a_synced_journal() {
        let index_bytes = 1 << 20;
        let half = (32 << 20) / 2;
        let idle = |c: &Checkpoints, journal, every| c.due(true, true, every, journal, index_bytes);
        assert!(
            idle(&after(100, 1), JournalRole::None, EVERY),
            "no journal: at once"
        );
        assert!(
            !idle(&after(100, 1), JournalRole::Synced, EVERY),
            "a synced journal: its share"
        );
        assert!(idle(
            &after(index_bytes * INDEX_REWRITE_FACTOR, 1),
            JournalRole::Synced,
            EVERY
        ));
        assert!(
            !idle(&after(100, 1), JournalRole::AtPauses, EVERY),
            "write-back: a frame at the pause"
        );
        assert!(!idle(&after(half - 1, 1), JournalRole::AtPauses, EVERY));
        assert!(
            idle(&after(half, 1), JournalRole::AtPauses, EVERY),
            "the half interval"
        );
        assert!(
            idle(&after(100, 1), JournalRole::Synced, None),
            "no interval: at a pause"
        );
        assert!(
            !after(0, 0).due(true, false, EVERY, JournalRole::None, index_bytes),
            "nothing changed"
        );
        let mut moved = after(100, 1);
        moved.compaction_installed(&[7]);
        assert!(
            idle(&moved, JournalRole::Synced, EVERY),
            "a compaction's moves wait"
        );
    }

    /// The journal is synced every half interval of commits past the last sync, and an
    /// installed index file counts from its plan: its journal starts unsynced.
    #[test]
    fn the_journal_sync_falls_due_every_half_interval_past_the_durable_state() {
        let mut checkpoints = Checkpoints::default();
        checkpoints.committed(10 << 20, 10);
        assert!(!checkpoints.journal_sync_due(EVERY));
        checkpoints.committed(6 << 20, 10);
        assert!(checkpoints.journal_sync_due(EVERY));
        checkpoints.journal_synced();
        assert!(!checkpoints.journal_sync_due(EVERY));
        assert!(!checkpoints.journal_sync_due(None));
        // A plan, then 20 MiB more before its file is installed: those are past the new
        // file's position, which is all a power cut keeps of it until its journal syncs.
        let generation = checkpoints.plan();
        checkpoints.committed(20 << 20, 10);
        checkpoints.journal_synced();
        checkpoints.installed(generation);
        assert!(checkpoints.journal_sync_due(EVERY));
    }
}
