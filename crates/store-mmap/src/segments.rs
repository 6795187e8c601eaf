//! The segment set: every segment of a store by id, the one receiving writes, the next id,
//! and the segments compactions replaced, which wait for their readers.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::segment::{Retired, SegmentFile};
use crate::segment_map::SegmentMap;

/// [`SegmentSet::sealed_record_bytes`] not known: the set changed since it was summed.
const UNKNOWN: u64 = u64::MAX;

/// Ids a roll leaves free below the writer's new segment, for the outputs of the
/// compactions installed while it receives writes: an output below the segment receiving
/// writes needs no roll at its install. That roll sealed the active segment early (cutting
/// the written space of a spare file it was written over) and made every compaction start
/// a new segment file. A compaction due by its policy copies the little left live in
/// mostly dead segments, one output or two.
pub(crate) const OUTPUT_IDS: u32 = 4;

/// The ids of new segments. Ids are never used twice, and the writer's segment has the
/// highest id of all (docs/FORMAT.md, "Segment ids").
pub(crate) struct SegmentIds {
    state: Mutex<IdState>,
}

struct IdState {
    /// Every id from this on is free.
    next: u32,
    /// Ids below the writer's segment that no segment took yet.
    free_below_writer: std::ops::Range<u32>,
}

impl SegmentIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdState> {
        // Held only around the arithmetic below.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of the writer's next segment, above every id handed out; with
    /// `leave_output_ids`, [`OUTPUT_IDS`] ids are left free below it for compaction outputs
    /// (those still free below the segment before are given up).
    pub(crate) fn writer(&self, leave_output_ids: bool) -> u32 {
        let mut state = self.lock();
        let gap = if leave_output_ids { OUTPUT_IDS } else { 0 };
        let id = state.next + gap;
        state.free_below_writer = state.next..id;
        state.next = id + 1;
        id
    }

    /// The id of a compaction output: below the writer's segment while the ids left there
    /// last, then above every id handed out (the install then moves writes to a new
    /// segment above it).
    pub(crate) fn output(&self) -> u32 {
        let mut state = self.lock();
        match state.free_below_writer.next() {
            Some(id) => id,
            None => {
                let id = state.next;
                state.next += 1;
                id
            }
        }
    }
}

/// The segments of an open store.
///
/// Invariants:
/// - after an open there is always at least one segment, and the one with the highest id
///   receives writes: the writer's segments take ids above every other ([`SegmentIds`]),
///   and a compaction's outputs, which have lower ids than the active segment once
///   installed (ids left free below it, or the install moves writes above them), are
///   complete before they are added;
/// - a retired segment is no longer among the live ones, and its file is removed only once
///   no mapping of it is held in this process and a checkpoint covers the moves of the
///   compaction that replaced it.
pub(crate) struct SegmentSet {
    live: BTreeMap<u32, SegmentFile>,
    /// The ids of new segments, for the writer and for compaction outputs alike (a
    /// compaction runs without the store).
    ids: Arc<SegmentIds>,
    retired: Vec<Retired>,
    /// Retired segments handed to a [`crate::Removal`] that has not been finished: still
    /// named by the retired-segment list, since their removal may not be durable yet.
    removing: Vec<(u32, PathBuf)>,
    /// Files of retired segments kept to be written over as new segments
    /// ([`crate::StoreOptions::spare_files`]), oldest first. Nothing in this process maps
    /// them: a segment's file becomes a spare only once its mapping is gone.
    spares: Vec<(PathBuf, u64)>,
    /// Spare files to remove at the next removal: a compaction asked for space gives them
    /// back.
    released_spares: Vec<PathBuf>,
    /// The record bytes of every live segment but the active one, summed the first time
    /// they are asked for after a change to the set ([`UNKNOWN`] until then). A sealed
    /// segment's end moves only through the set's `&mut` methods (a roll seals the active
    /// segment as it adds the next, a compaction adds and retires, a read-only handle
    /// moves ends to its writer's), and each of those forgets the sum; so the writer's check
    /// after every commit that a compaction is due walks no segment (30 µs a commit at
    /// 4,000 segments when it did).
    sealed_record_bytes: AtomicU64,
}

impl SegmentSet {
    pub(crate) fn new(
        live: BTreeMap<u32, SegmentFile>,
        next_id: u32,
        retired: Vec<Retired>,
        spares: Vec<(PathBuf, u64)>,
    ) -> SegmentSet {
        SegmentSet {
            live,
            ids: Arc::new(SegmentIds {
                state: Mutex::new(IdState {
                    next: next_id,
                    free_below_writer: next_id..next_id,
                }),
            }),
            retired,
            removing: Vec::new(),
            spares,
            released_spares: Vec::new(),
            sealed_record_bytes: AtomicU64::new(UNKNOWN),
        }
    }

    /// Bytes of records in the sealed segments: every live one but the active one.
    pub(crate) fn sealed_record_bytes(&self) -> u64 {
        // Relaxed: the sum is written only under a shared borrow, during which no segment
        // can change, and forgotten only under an exclusive one.
        let known = self.sealed_record_bytes.load(Ordering::Relaxed);
        if known != UNKNOWN {
            return known;
        }
        let active = self.active().id();
        let sum = self
            .live
            .values()
            .filter(|segment| segment.id() != active)
            .map(SegmentFile::record_bytes)
            .sum();
        self.sealed_record_bytes.store(sum, Ordering::Relaxed);
        sum
    }

    /// Forgets the sum of the sealed segments' record bytes: the set, or an end, changes.
    fn changing(&mut self) {
        *self.sealed_record_bytes.get_mut() = UNKNOWN;
    }

    /// The segment receiving writes.
    pub(crate) fn active(&self) -> &SegmentFile {
        self.live
            .values()
            .next_back()
            .expect("a store always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut SegmentFile {
        self.live
            .values_mut()
            .next_back()
            .expect("a store always has an active segment")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub(crate) fn get(&self, id: u32) -> Option<&SegmentFile> {
        self.live.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut SegmentFile> {
        self.changing();
        self.live.get_mut(&id)
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.live.contains_key(&id)
    }

    /// The live segments by id, for a scan that ranges over them.
    pub(crate) fn live(&self) -> &BTreeMap<u32, SegmentFile> {
        &self.live
    }

    /// Every live segment, oldest first.
    pub(crate) fn iter(&self) -> btree_map::Values<'_, u32, SegmentFile> {
        self.live.values()
    }

    pub(crate) fn iter_mut(&mut self) -> btree_map::ValuesMut<'_, u32, SegmentFile> {
        self.changing();
        self.live.values_mut()
    }

    /// The live segments from id `first` on, oldest first.
    pub(crate) fn from(&self, first: u32) -> impl Iterator<Item = &SegmentFile> {
        self.live.range(first..).map(|(_, segment)| segment)
    }

    /// Every live segment as readers see it.
    pub(crate) fn maps(&self) -> impl Iterator<Item = SegmentMap> + '_ {
        self.live.values().map(|segment| segment.view().clone())
    }

    /// The highest id in use, live or not: what a reader compares a writer's position to.
    pub(crate) fn newest_id(&self) -> Option<u32> {
        self.live.keys().next_back().copied()
    }

    /// Takes the id of the writer's next segment; see [`SegmentIds::writer`].
    pub(crate) fn allocate_id(&self, leave_output_ids: bool) -> u32 {
        self.ids.writer(leave_output_ids)
    }

    /// The ids, for a compaction that creates its outputs without the store.
    pub(crate) fn ids(&self) -> Arc<SegmentIds> {
        Arc::clone(&self.ids)
    }

    /// Adds a segment: a new one receiving writes, or a compaction's complete output.
    pub(crate) fn add(&mut self, segment: SegmentFile) {
        self.changing();
        let previous = self.live.insert(segment.id(), segment);
        debug_assert!(previous.is_none(), "a segment id is used once");
    }

    /// Takes `id` out of the live segments into the retired ones, to be removed (or kept as
    /// a spare file, when `may_be_spare`) once nothing holds its mapping and a checkpoint
    /// planned after `plan` is installed.
    pub(crate) fn retire(&mut self, id: u32, plan: u64, may_be_spare: bool) {
        self.changing();
        if let Some(segment) = self.live.remove(&id) {
            self.retired.push(Retired {
                id,
                path: segment.path().to_path_buf(),
                mapping: segment.watch_mapping(),
                retired_after_plan: plan,
                may_be_spare,
            });
        }
    }

    /// The segments retired and not yet removed.
    pub(crate) fn retired(&self) -> &[Retired] {
        &self.retired
    }

    /// Retired segments whose files are not known to be gone: waiting, or being removed.
    pub(crate) fn retired_count(&self) -> usize {
        self.retired.len() + self.removing.len()
    }

    /// Ids of the retired segments, being removed included, ascending: what the
    /// retired-segment list names.
    pub(crate) fn retired_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.retired.iter().map(|r| r.id).collect();
        ids.extend(self.removing.iter().map(|&(id, _)| id));
        ids.sort_unstable();
        ids
    }

    /// Takes the retired segments that nothing in this process maps and that a checkpoint
    /// planned after their retirement covers (`covered`), to be removed: they stay listed
    /// until [`SegmentSet::removed`] hears how that went.
    /// Each comes with whether its file may become a spare.
    pub(crate) fn take_removable(&mut self, covered: u64) -> Vec<(u32, PathBuf, bool)> {
        let mut taken = Vec::new();
        self.retired.retain(|retired| {
            if retired.mapping.strong_count() > 0 || retired.retired_after_plan >= covered {
                return true;
            }
            taken.push((retired.id, retired.path.clone(), retired.may_be_spare));
            false
        });
        self.removing
            .extend(taken.iter().map(|(id, path, _)| (*id, path.clone())));
        taken
    }

    /// A removal of segments taken by [`SegmentSet::take_removable`] ended: the `gone` ones
    /// are removed durably; the `kept` ones wait again, to be tried at the next removal.
    pub(crate) fn removed(&mut self, gone: &[u32], kept: Vec<(u32, PathBuf)>) {
        self.removing
            .retain(|(id, _)| !gone.contains(id) && !kept.iter().any(|(k, _)| k == id));
        self.retired
            .extend(kept.into_iter().map(|(id, path)| Retired {
                id,
                path,
                // Nothing maps it (it was taken unheld), and a checkpoint covers it.
                mapping: std::sync::Weak::new(),
                retired_after_plan: 0,
                may_be_spare: false,
            }));
    }

    /// The spare files and their lengths, oldest first.
    pub(crate) fn spares(&self) -> &[(PathBuf, u64)] {
        &self.spares
    }

    /// Takes the spare file at `at` out of the set, to write it over or to let it go.
    pub(crate) fn take_spare(&mut self, at: usize) -> (PathBuf, u64) {
        self.spares.remove(at)
    }

    /// Adds spare files that a removal made of retired segments.
    pub(crate) fn add_spares(&mut self, spares: Vec<(PathBuf, u64)>) {
        self.spares.extend(spares);
    }

    /// Lets every spare file go, to be removed at the next removal.
    pub(crate) fn release_spares(&mut self) {
        let released = self.spares.drain(..).map(|(path, _)| path);
        self.released_spares.extend(released);
    }

    /// Takes the spare files let go, for a removal.
    pub(crate) fn take_released_spares(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.released_spares)
    }

    /// Replaces the live segments with those of a fresh load (a read-only handle reloading
    /// its view); the retired ones are a writer's and stay empty. A segment this set
    /// already maps stays as it is, its end moved to the fresh load's: views of it handed
    /// out before (a layer's published segment list, a `Doc`) share its committed end, so
    /// they keep reaching every record the handle reads from now on. Segment ids are never
    /// reused, so one id is one file, and its committed bytes never change.
    pub(crate) fn replace_live(&mut self, live: BTreeMap<u32, SegmentFile>) -> Result<()> {
        self.changing();
        let mut old = std::mem::take(&mut self.live);
        for (id, fresh) in live {
            let segment = match old.remove(&id) {
                Some(mut kept) => {
                    kept.restat()?;
                    kept.set_end(fresh.end().max(kept.end()));
                    kept
                }
                None => fresh,
            };
            self.live.insert(id, segment);
        }
        Ok(())
    }
}
