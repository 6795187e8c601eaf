//! Compaction: copying the live records of sealed segments into new segments, so that the
//! old ones can be removed.
//!
//! A compaction has three steps, so that the long one runs without the store:
//!
//! 1. [`Store::plan_compaction`] (with the store, quick): picks the input segments and
//!    notes the live records in them and the oldest sequence number the rest of the store
//!    may hold.
//! 2. [`Compaction::run`] (without the store, on any thread, paced): walks the inputs for the
//!    tombstones that must be kept, copies every live record and kept tombstone, in
//!    sequence order, into new segment files under temporary names, and syncs them. The
//!    inputs are sealed, so their mapped bytes never change while it reads them.
//! 3. [`Store::install_compaction`] (with the store, quick): renames the outputs into place,
//!    points every document whose latest version was copied at its copy (a document written
//!    since the plan keeps its newer record), and writes the retired-segment list, which is
//!    the moment the compaction takes effect. The inputs are removed once no reader holds
//!    their mappings ([`Store::remove_retired`]), or by the next open.
//!
//! Why a crash at any point leaves every document at its latest version is in
//! docs/FORMAT.md ("Compaction").

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use store_format::{
    DocId, Position, RecordKind, SEGMENT_HEADER_LEN, SegmentHeader, decode_record, encode_record,
    record_len,
};

use crate::error::{Error, Result};
use crate::layout::{segment_file_name, unfinished_segment_file_name};
use crate::options::{Durability, MapSettings};
use crate::pace::{Cancelled, Pace};
use crate::progress::Progress;
use crate::scan::Spans;
use crate::segment::SegmentFile;
use crate::segment_map::SegmentMap;
use crate::segments::SegmentIds;
use crate::storage::{Storage, WRITE_BEHIND_STEP_BYTES, WriteBehind, sync_dir};
use crate::store::Store;
use crate::walk;

/// Bytes written to an output per `pwrite`: a step of its write-back, which starts as each
/// is written ([`WriteBehind`]).
const CHUNK_BYTES: usize = WRITE_BEHIND_STEP_BYTES as usize;

/// When compaction runs on its own, and how fast it may go.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionPolicy {
    /// Compact once dead bytes (older versions and tombstones) make up at least this
    /// fraction of the sealed segments' data. `None`: only when asked.
    pub dead_ratio: Option<f64>,
    /// ... and once at least this many dead bytes have appeared since the last compaction,
    /// so that a small store is not rewritten for a few kilobytes, and dead bytes that a
    /// compaction cannot reclaim (tombstones that must stay) do not start another.
    pub min_dead_bytes: u64,
    /// A sealed segment is compacted when at least this fraction of it is dead; the others
    /// are left alone, so a compaction rewrites little live data.
    pub segment_dead_ratio: f64,
    /// Bytes per second a compaction may read and write together. `None`: no limit.
    pub max_bytes_per_sec: Option<u64>,
}

impl Default for CompactionPolicy {
    /// Compact when half the sealed data is dead and at least 64 MiB of it; rewrite segments
    /// at least 30% dead; at most 128 MiB/s of compaction I/O.
    fn default() -> CompactionPolicy {
        CompactionPolicy {
            dead_ratio: Some(0.5),
            min_dead_bytes: 64 << 20,
            segment_dead_ratio: 0.3,
            max_bytes_per_sec: Some(128 << 20),
        }
    }
}

impl CompactionPolicy {
    /// Compaction only when asked ([`Store::compact`]).
    pub fn manual() -> CompactionPolicy {
        CompactionPolicy {
            dead_ratio: None,
            ..CompactionPolicy::default()
        }
    }
}

/// Which segments a plan takes.
#[derive(Debug, Clone, PartialEq)]
pub enum CompactionScope {
    /// Every segment with dead bytes, the active one included (the store first moves writes
    /// to a new segment): what [`Store::compact`] does.
    Everything,
    /// The sealed segments the policy finds dead enough, and only if the policy says the
    /// store is due.
    Due(CompactionPolicy),
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Segments replaced.
    pub segments_in: u64,
    /// Segments written.
    pub segments_out: u64,
    /// Bytes of the replaced segments' files.
    pub bytes_in: u64,
    /// Bytes of the new segments' files.
    pub bytes_out: u64,
    /// Live records copied.
    pub records_copied: u64,
    /// Of those, records whose document was written or deleted while the compaction ran:
    /// their copies are dead on arrival.
    pub records_superseded: u64,
    /// Tombstones copied because an older version of their document may remain elsewhere.
    pub tombstones_kept: u64,
    /// Tombstones dropped because no older version of their document can remain.
    pub tombstones_dropped: u64,
    /// How long the copy took (step 2), pauses for the rate limit included.
    pub copy_time: Duration,
    /// Segments it was due for and left, short of room on the file system for their
    /// copies: a later compaction takes them.
    pub segments_left: u64,
}

impl CompactionReport {
    /// Adds the figures of a compaction that followed this one, a round of a compaction
    /// short of room; what is left is what the later one left. Returns whether the round
    /// got anywhere: it freed bytes, and left fewer segments than the round before (a round
    /// that frees nothing, or writes that keep dead segments coming, would go on forever).
    pub fn add_round(&mut self, later: &CompactionReport) -> bool {
        let progressed = later.bytes_out < later.bytes_in
            && (self.segments_in == 0 || later.segments_left < self.segments_left);
        self.segments_in += later.segments_in;
        self.segments_out += later.segments_out;
        self.bytes_in += later.bytes_in;
        self.bytes_out += later.bytes_out;
        self.records_copied += later.records_copied;
        self.records_superseded += later.records_superseded;
        self.tombstones_kept += later.tombstones_kept;
        self.tombstones_dropped += later.tombstones_dropped;
        self.copy_time += later.copy_time;
        self.segments_left = later.segments_left;
        progressed
    }
}

/// Bytes a compaction's copies take, and bytes the file system has available.
struct CompactionRoom {
    needed_bytes: u64,
    available_bytes: u64,
}

impl CompactionRoom {
    /// The error of a compaction of the store in `dir` that does not fit.
    fn refusal(&self, dir: &std::path::Path) -> Error {
        Error::NoRoomToCompact {
            dir: dir.to_path_buf(),
            needed_bytes: self.needed_bytes,
            available_bytes: self.available_bytes,
        }
    }
}

/// One input segment as the plan saw it.
struct Input {
    map: SegmentMap,
    end: u32,
    /// Whether a part of a commit that goes on in the next segment, ending this one's data,
    /// belongs to a commit that reached its last part. A part that goes on counts only
    /// then; any other was abandoned by a crash: its records are not the store's
    /// (docs/FORMAT.md, "Batches that span segments"), and its tombstones are not copied,
    /// where they would read as deletes.
    last_part_completes: bool,
}

/// One record to copy, and where it is.
#[derive(Debug, Clone, Copy)]
struct ToCopy {
    seq: u64,
    id: DocId,
    kind: RecordKind,
    segment: u32,
    offset: u32,
    payload_len: u32,
}

/// A planned compaction: the inputs and their live records. Run it with
/// [`Compaction::run`] on any thread, then hand the result to
/// [`Store::install_compaction`].
///
/// [`Store::plan_compaction`]: crate::Store::plan_compaction
/// [`Store::install_compaction`]: crate::Store::install_compaction
pub struct Compaction {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    store_uid: u128,
    capacity: u32,
    map_settings: MapSettings,
    ids: Arc<SegmentIds>,
    /// Ascending by segment id.
    inputs: Vec<Input>,
    /// Live puts in the inputs, in sequence order.
    live: Vec<ToCopy>,
    /// Tombstones with a lower sequence number are dropped: every segment outside the inputs
    /// holds only newer records, so no older version of their document can remain.
    tombstone_floor: u64,
    pace: Option<u64>,
    /// Set by another thread to stop the run.
    cancel: Option<Arc<AtomicBool>>,
    /// Told of the bytes copied.
    progress: Option<Arc<dyn Progress>>,
    /// Due by its policy, so the inputs' files may become spares; a compaction asked for
    /// space ([`CompactionScope::Everything`]) gives back every file it can.
    keeps_spares: bool,
    /// Segments it was due for and left, short of room for their copies: their dead bytes
    /// are not ones a compaction cannot reclaim.
    segments_left: u64,
}

/// A compaction whose outputs are written and synced, ready to install.
pub struct Compacted {
    pub(crate) inputs: Vec<u32>,
    pub(crate) keeps_spares: bool,
    pub(crate) outputs: Vec<SegmentFile>,
    /// Every copied put: document, version, and where the copy is.
    pub(crate) moved: Vec<(DocId, u64, Position)>,
    /// The highest sequence number of a tombstone dropped (not one copied twice), or 0:
    /// the change floor once installed.
    pub(crate) dropped_deletes_to: u64,
    pub(crate) report: CompactionReport,
}

impl Drop for Compacted {
    /// A compaction that is never installed leaves no file behind. Installing takes the
    /// outputs out first. Dropped as a panic unwinds, it leaves them to the next open,
    /// which removes them: a storage call here that panicked in its turn would abort the
    /// process.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        for output in &self.outputs {
            let _ = output.remove_file();
        }
    }
}

impl Compaction {
    /// The segments it replaces.
    pub fn inputs(&self) -> Vec<u32> {
        self.inputs.iter().map(|input| input.map.id()).collect()
    }

    /// Makes [`Compaction::run`] stop with [`Error::CompactionCancelled`], removing what it
    /// wrote, once `flag` is set (checked between chunks of 1 MiB and during pauses).
    pub fn cancel_when(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// Tells `progress` of the run: its total, the bytes of the records to copy, then the
    /// bytes copied as they are written.
    pub fn report_progress(&mut self, progress: Arc<dyn Progress>) {
        self.progress = Some(progress);
    }

    /// Copies the live records and the tombstones that must stay into new segments, under
    /// temporary names, and syncs them. Reads only the inputs' mappings and writes only new
    /// files, so the store keeps serving reads and writes meanwhile. On error, the new files
    /// are removed and the store is as it was.
    pub fn run(self) -> Result<Compacted> {
        let started = Instant::now();
        let mut pace = Pace::new(self.pace, self.cancel.clone()).reporting(self.progress.clone());
        let mut report = CompactionReport {
            segments_in: self.inputs.len() as u64,
            bytes_in: self.inputs.iter().map(|i| u64::from(i.end)).sum(),
            segments_left: self.segments_left,
            ..CompactionReport::default()
        };
        let (tombstones, dropped_deletes_to) = self.kept_tombstones(&mut report)?;
        let copies = merge_by_seq(&self.live, &tombstones);
        let copy_bytes = copies.iter().map(|copy| record_len(copy.payload_len)).sum();
        // The plan set the live records' copies against the room; the tombstones the walk
        // keeps come on top, and a segment of nothing else needed no room there. Copies that
        // no longer fit are refused before one is written, as the plan refuses them.
        let room = CompactionRoom {
            needed_bytes: copies_bytes(copy_bytes, self.capacity),
            available_bytes: self.available_bytes(),
        };
        if room.needed_bytes > room.available_bytes {
            return Err(room.refusal(&self.dir));
        }
        if let Some(progress) = &self.progress {
            progress.start(copy_bytes);
        }
        let mut out = Outputs {
            compaction: &self,
            done: Vec::new(),
            moved: Vec::with_capacity(self.live.len()),
        };
        let written = out.write_all(&copies, &mut pace);
        let Outputs { done, moved, .. } = out;
        // Built before the error is looked at: dropping it removes the outputs written.
        let mut compacted = Compacted {
            inputs: self.inputs(),
            keeps_spares: self.keeps_spares,
            outputs: done,
            moved,
            dropped_deletes_to,
            report,
        };
        written?;
        compacted.report.records_copied = compacted.moved.len() as u64;
        compacted.report.segments_out = compacted.outputs.len() as u64;
        compacted.report.bytes_out = compacted.outputs.iter().map(|o| u64::from(o.end())).sum();
        compacted.report.copy_time = started.elapsed();
        Ok(compacted)
    }

    /// Bytes available on the store's file system; `u64::MAX` where it will not say, as in
    /// the plan.
    fn available_bytes(&self) -> u64 {
        File::open(&self.dir)
            .and_then(|dir| self.storage.available_bytes(&dir, &self.dir))
            .unwrap_or(u64::MAX)
    }

    /// Walks every input for its tombstones and keeps those at or above the floor. Returns
    /// them, and the highest sequence number of those it dropped (0 for none).
    fn kept_tombstones(&self, report: &mut CompactionReport) -> Result<(Vec<ToCopy>, u64)> {
        let mut kept = Vec::new();
        let mut dropped_to = 0;
        for input in &self.inputs {
            let data = &input.map.bytes()[..input.end as usize];
            let mut pos = SEGMENT_HEADER_LEN;
            // The tombstones of the group being walked, which count once its commit record
            // says the group does.
            let mut group = Vec::new();
            while let Some(found) = walk::committed_header(data, pos) {
                let (header, next) =
                    found.map_err(|err| Error::format(input.map.path(), 0, &err))?;
                if header.kind == RecordKind::Tombstone {
                    group.push(ToCopy {
                        seq: header.seq,
                        id: header.id,
                        kind: RecordKind::Tombstone,
                        segment: input.map.id(),
                        offset: pos as u32,
                        payload_len: 0,
                    });
                }
                if header.commit {
                    // A part that goes on in the next segment counts only when it ends the
                    // segment's data and its commit reached its last part; else a crash
                    // abandoned it (writes after recovery may follow it in the segment).
                    let abandoned = header.continues_in_next
                        && (next < data.len() || !input.last_part_completes);
                    if abandoned {
                        group.clear();
                    }
                    for copy in group.drain(..) {
                        if copy.seq >= self.tombstone_floor {
                            kept.push(copy);
                        } else {
                            report.tombstones_dropped += 1;
                            dropped_to = dropped_to.max(copy.seq);
                        }
                    }
                }
                pos = next;
            }
            // Committed bytes end with a commit record; a group left over is damage.
            if let Some(copy) = group.first() {
                return Err(Error::corrupt(
                    input.map.path(),
                    u64::from(copy.offset),
                    "the tombstone's commit group has no commit record before the end of the data",
                ));
            }
        }
        kept.sort_unstable_by_key(|copy| copy.seq);
        // A compaction whose install failed after its outputs took their names leaves its
        // copies beside the originals: one tombstone may be in two inputs. An output holds
        // each record once, so that its records rise in sequence (docs/FORMAT.md).
        let found = kept.len();
        kept.dedup_by_key(|copy| copy.seq);
        report.tombstones_dropped += (found - kept.len()) as u64;
        report.tombstones_kept += kept.len() as u64;
        Ok((kept, dropped_to))
    }

    fn input(&self, segment: u32) -> &Input {
        let at = self
            .inputs
            .binary_search_by_key(&segment, |input| input.map.id())
            .expect("every copy comes from an input");
        &self.inputs[at]
    }
}

/// What [`Store::install_compaction`] changed, for layers that keep their own view of the
/// store (the concurrent handle's readers).
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// What the compaction did.
    pub report: CompactionReport,
    /// Documents whose latest record is now the copy: their positions changed.
    pub moved: Vec<DocId>,
    /// Segments that are no longer part of the store: the inputs, and an empty segment the
    /// store moved writes away from. No document points into them.
    pub retired: Vec<u32>,
}

impl Store {
    /// Compacts every segment that holds dead bytes, waits for it, and writes an index
    /// checkpoint. Writes through this handle wait meanwhile; the concurrent handle's
    /// `compact` lets them go on.
    ///
    /// Where the file system lacks room for all the copies at once, it goes in rounds, the
    /// segments that free the most for what they copy first, each round's replaced segments
    /// removed before the next. It fails with [`Error::NoRoomToCompact`] where not even one
    /// segment's copies fit, and leaves segments (counted in the report's `segments_left`)
    /// where the rounds stop making room.
    ///
    /// The replaced segments are removed now if nothing holds their mappings, or else by a
    /// later [`Store::remove_retired`], checkpoint, close or open: a [`Doc`] read before
    /// stays valid.
    ///
    /// [`Doc`]: store_format::Doc
    pub fn compact(&mut self) -> Result<CompactionReport> {
        self.compact_with(None)
    }

    /// [`Store::compact`], telling `progress` of the copy (see
    /// [`Compaction::report_progress`]).
    pub fn compact_with(
        &mut self,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<CompactionReport> {
        let mut report = CompactionReport::default();
        // In rounds, where the file system lacks room for all the copies at once: each
        // round's checkpoint removes the segments it replaced (those nothing holds), which
        // makes room for the next.
        loop {
            let round = match self.compact_round(progress.as_ref()) {
                Ok(Some(round)) => round,
                Ok(None) => break,
                // Rounds were done, and what is left does not fit: the report says how many
                // segments are left.
                Err(Error::NoRoomToCompact { .. }) if report.segments_in > 0 => break,
                Err(err) => return Err(err),
            };
            let progressed = report.add_round(&round);
            if round.segments_left == 0 || !progressed {
                break;
            }
            self.checkpoint()?;
        }
        // Also when nothing was left to compact: an earlier compaction's replaced segments
        // go once a checkpoint reflects its moves.
        self.checkpoint()?;
        Ok(report)
    }

    /// One round of [`Store::compact_with`]: plans, runs and installs a compaction of
    /// everything that fits; `None` where nothing is left to compact.
    fn compact_round(
        &mut self,
        progress: Option<&Arc<dyn Progress>>,
    ) -> Result<Option<CompactionReport>> {
        let Some(mut plan) = self.plan_compaction(&CompactionScope::Everything)? else {
            return Ok(None);
        };
        if let Some(progress) = progress {
            plan.report_progress(Arc::clone(progress));
        }
        Ok(Some(self.install_compaction(plan.run()?)?.report))
    }

    /// Whether `policy` asks for a compaction now. Asks nothing of the file system: the
    /// writer asks after every commit, and the plan sets the copies against the room.
    pub fn compaction_due(&self, policy: &CompactionPolicy) -> bool {
        let Some(ratio) = policy.dead_ratio else {
            return false;
        };
        let (data, dead) = self.sealed_bytes();
        data > 0
            && dead as f64 >= ratio * data as f64
            && dead.saturating_sub(self.stuck_dead_bytes) >= policy.min_dead_bytes
    }

    /// Picks the segments to compact and notes their live records; `None` when there is
    /// nothing to do. With [`CompactionScope::Everything`], moves writes to a new segment
    /// first when the active one holds dead bytes. Fails with [`Error::NoRoomToCompact`]
    /// where the file system lacks room for the copies, which a compaction writes before it
    /// removes what they replace: without the room it would fill the disk the commits need,
    /// fail, and free nothing.
    pub fn plan_compaction(&mut self, scope: &CompactionScope) -> Result<Option<Compaction>> {
        self.check_writable()?;
        let pace = match scope {
            CompactionScope::Everything => {
                if self.dead_bytes_of(self.active()) > 0 {
                    self.roll()?;
                }
                None
            }
            CompactionScope::Due(policy) => {
                if !self.compaction_due(policy) {
                    return Ok(None);
                }
                policy.max_bytes_per_sec
            }
        };
        let picked = self.compaction_inputs(scope);
        if picked.is_empty() {
            return Ok(None);
        }
        // Where the copies of all it is due for need more room than it may take, a
        // compaction takes the segments that free the most for what they copy, and leaves
        // the rest to the next one. The policy's takes half the room, leaving the rest to
        // the commits that go on while it copies; one asked for takes all but what the
        // index file written after it needs.
        let room = self.compaction_room(&picked);
        let budget = match scope {
            CompactionScope::Everything => {
                room.available_bytes.saturating_sub(self.index.base_bytes())
            }
            CompactionScope::Due(_) => room.available_bytes / 2,
        };
        let all = picked;
        let picked = self.inputs_within(all.clone(), budget);
        let segments_left = all
            .iter()
            .filter(|id| picked.binary_search(id).is_err())
            .count() as u64;
        // The other segments of a commit that spans a taken one come along, fitting or not.
        if picked.is_empty() || self.copies_of(&picked) > room.available_bytes {
            return Err(room.refusal(self.dir()));
        }
        let mut tombstone_floor = self.last_seq + 1;
        for segment in self.segments.iter() {
            if picked.binary_search(&segment.id()).is_err()
                && let Some(first) = segment.first_seq()?
            {
                tombstone_floor = tombstone_floor.min(first);
            }
        }
        let mut live = self.look_up_repairing(|store| store.live_records_in(&picked))?;
        live.sort_unstable_by_key(|copy| copy.seq);
        // Which parts of commits that span segments count, for the inputs' tombstones.
        let maps: Vec<SegmentMap> = self.segments.iter().map(|s| s.view().clone()).collect();
        let ends = self.segments.iter().map(|s| (s.id(), s.end())).collect();
        let spans = Spans::new(&maps, &ends);
        let inputs = picked
            .iter()
            .map(|id| {
                let segment = self
                    .segments
                    .get(*id)
                    .expect("picked among the live segments");
                Ok(Input {
                    map: segment.view().clone(),
                    end: segment.end(),
                    last_part_completes: spans.completes(*id, segment.end())?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(Compaction {
            dir: self.dir.clone(),
            storage: Arc::clone(&self.options.storage),
            store_uid: self.meta.store_uid,
            capacity: self.meta.segment_capacity,
            map_settings: self.options.map_settings(),
            ids: self.segments.ids(),
            inputs,
            live,
            tombstone_floor,
            pace,
            cancel: None,
            progress: None,
            keeps_spares: matches!(scope, CompactionScope::Due(_)),
            segments_left,
        }))
    }

    /// The latest record of every document that lies in one of the segments `picked`.
    fn live_records_in(&self, picked: &[u32]) -> Result<Vec<ToCopy>> {
        let mut live = Vec::new();
        for found in self.index.entries() {
            let (id, entry) = found?;
            if picked.binary_search(&entry.segment).is_ok() {
                live.push(ToCopy {
                    seq: entry.seq,
                    id,
                    kind: RecordKind::Put,
                    segment: entry.segment,
                    offset: entry.offset,
                    payload_len: entry.text_len,
                });
            }
        }
        Ok(live)
    }

    /// Puts a run compaction into effect: renames its outputs into place, points every
    /// document whose copied version is still its latest at the copy, and retires the
    /// inputs by writing the retired-segment list. Quick: no record is read or copied.
    ///
    /// On error the store is unchanged and the outputs are removed, except when writing
    /// the retired-segment list fails: then the copies are in use and the inputs stay, dead,
    /// for a later compaction.
    pub fn install_compaction(&mut self, mut done: Compacted) -> Result<Installed> {
        self.check_writable()?;
        // The moves below look up every copied document's entry.
        self.repair_damaged_index()?;
        let mut outputs = std::mem::take(&mut done.outputs);
        let remove_outputs = |outputs: &[SegmentFile]| {
            for output in outputs {
                let _ = output.remove_file();
            }
        };
        let active = self.active().id();
        if let Some(&segment) = done
            .inputs
            .iter()
            .find(|id| **id == active || !self.segments.contains(**id))
        {
            remove_outputs(&outputs);
            return Err(Error::CompactionConflict { segment });
        }
        // The plan counted as dead every record that a later commit replaced, and the
        // retired list below makes that final. Under write-back such a commit may not be
        // durable yet: it must be before the list is, or a power cut would take it away
        // together with the input holding the version it replaced.
        if self.options.durability != Durability::Sync
            && let Err(err) = self.sync()
        {
            remove_outputs(&outputs);
            return Err(err);
        }
        // Before the compaction can take effect: a change feed must refuse to start below a
        // delete it dropped. Raised on disk and not installed (a crash, a failure below),
        // the floor only makes feeds refuse earlier than they must.
        if done.dropped_deletes_to > self.change_floor() {
            self.meta.change_floor = Some(done.dropped_deletes_to);
            if let Err(err) = self.write_meta() {
                remove_outputs(&outputs);
                return Err(err);
            }
        }
        let mut retired = Vec::new();
        // Only the newest segment may end in a torn write, so the active segment stays the
        // newest: writes move past the outputs' ids before the outputs take their names.
        if outputs.last().is_some_and(|output| output.id() > active) {
            let was_empty = self.active().record_bytes() == 0;
            if let Err(err) = self.roll() {
                remove_outputs(&outputs);
                return Err(err);
            }
            if was_empty {
                retired.push(active);
            }
            // The roll published the new segment's start before the outputs take their
            // names below it: a reader that sees them (through the retired list, written
            // next) sees them within the bound it reads after the list.
        }
        let renamed = outputs
            .iter_mut()
            .try_for_each(|output| output.rename(self.dir.join(segment_file_name(output.id()))))
            .and_then(|()| sync_dir(self.options.storage.as_ref(), &self.dir));
        if let Err(err) = renamed {
            // An output that took its segment name and cannot be removed either is a
            // segment on disk, which an open reads: the store keeps it as one, as after a
            // list that fails to be written (below), so that a later compaction counts the
            // versions it holds before it drops a tombstone. Forgotten, it would bring back
            // documents whose deletes that compaction dropped.
            for output in outputs {
                let named = output.path() == self.dir.join(segment_file_name(output.id()));
                if output.remove_file().is_err() && named && output.path().exists() {
                    self.segments.add(output);
                }
            }
            let _ = sync_dir(self.options.storage.as_ref(), &self.dir);
            return Err(err);
        }
        let output_ids: Vec<u32> = outputs.iter().map(SegmentFile::id).collect();
        for output in outputs {
            self.segments.add(output);
        }
        // The commit point: from here on an open removes the inputs before reading anything,
        // and moves the index entries that point into them to the copies, until a checkpoint
        // planned after this reflects the moves. A list that fails to be written leaves the
        // index as it was: the outputs are segments holding versions the inputs hold too,
        // and documents are still read from the inputs, as the caller (and a layer that
        // shows readers the index) was told nothing moved.
        retired.extend_from_slice(&done.inputs);
        retired.sort_unstable();
        let plan = self.checkpoints.compaction_installed(&output_ids);
        let mut listed = self.segments.retired_ids();
        listed.extend_from_slice(&retired);
        self.write_retired_list(listed)?;
        let mut report = std::mem::take(&mut done.report);
        let mut moved = Vec::with_capacity(done.moved.len());
        let mut copies = done.moved.drain(..);
        let mut unmoved = Vec::new();
        for (id, seq, position) in copies.by_ref() {
            match self.index.relocate(id, seq, position) {
                Ok(true) => moved.push(id),
                Ok(false) => report.records_superseded += 1,
                // A page of the index file that fails its check: the entries are rebuilt
                // below instead.
                Err(_) => {
                    unmoved.push((id, seq));
                    break;
                }
            }
        }
        unmoved.extend(copies.map(|(id, seq, _)| (id, seq)));
        for &id in &retired {
            self.segments.retire(id, plan, done.keeps_spares);
        }
        if !unmoved.is_empty() {
            // Rebuilt from the live segments, the inputs no longer among them, the index
            // holds every move; the copies whose documents were written again since are
            // the ones it does not point to.
            self.rebuild_index()?;
            for (id, seq) in unmoved {
                if self.index.get(id)?.is_some_and(|entry| entry.seq == seq) {
                    moved.push(id);
                } else {
                    report.records_superseded += 1;
                }
            }
        }
        if !done.keeps_spares {
            self.segments.release_spares();
        }
        if report.segments_left == 0 {
            self.stuck_dead_bytes = self.sealed_bytes().1;
        }
        self.placement_epoch += 1;
        tracing::info!(
            dir = %self.dir.display(),
            segments_in = report.segments_in,
            segments_out = report.segments_out,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            records_copied = report.records_copied,
            tombstones_dropped = report.tombstones_dropped,
            copy_millis = report.copy_time.as_millis() as u64,
            change_floor = self.change_floor(),
            "compaction installed"
        );
        Ok(Installed {
            report,
            moved,
            retired,
        })
    }

    /// Widens `picked` (sorted) so that segments a commit spans are replaced together: a
    /// multi-segment commit counts only while its last part is there (docs/FORMAT.md,
    /// "Batches that span segments"), so its segments go all at once or not at all. Segments
    /// linked to the active one stay until it is sealed.
    fn whole_commits(&self, picked: Vec<u32>, active: u32) -> Vec<u32> {
        // Links run from a segment to the one created after it, in increasing id order, so
        // one pass in that order gathers each chain of linked segments.
        let mut chains: Vec<Vec<u32>> = Vec::new();
        for segment in self.segments.iter() {
            let Some(before) = segment.sealed_before().filter(|b| b.commit_continues) else {
                continue;
            };
            if !self.segments.contains(before.segment_id) {
                continue;
            }
            match chains
                .iter_mut()
                .find(|chain| chain.last() == Some(&before.segment_id))
            {
                Some(chain) => chain.push(segment.id()),
                None => chains.push(vec![before.segment_id, segment.id()]),
            }
        }
        let mut picked: BTreeSet<u32> = picked.into_iter().collect();
        for chain in chains {
            if chain.contains(&active) {
                for id in &chain {
                    picked.remove(id);
                }
            } else if chain.iter().any(|id| picked.contains(id)) {
                picked.extend(chain);
            }
        }
        picked.into_iter().collect()
    }

    /// Data bytes and dead bytes of the sealed segments, without a walk over them: the
    /// writer asks after every commit. Every live record lies in a live segment, and no
    /// segment holds more live bytes than records, so the sealed segments' dead bytes are
    /// their record bytes less every live byte outside the active segment.
    fn sealed_bytes(&self) -> (u64, u64) {
        let data = self.segments.sealed_record_bytes();
        let live = self
            .index
            .live_record_bytes()
            .saturating_sub(self.index.segment_live_bytes(self.active().id()));
        let sealed = (data, data.saturating_sub(live));
        debug_assert_eq!(
            sealed,
            self.sealed_bytes_by_segment(),
            "{}",
            self.dir.display()
        );
        sealed
    }

    /// [`Self::sealed_bytes`], segment by segment.
    fn sealed_bytes_by_segment(&self) -> (u64, u64) {
        let active = self.active().id();
        self.segments
            .iter()
            .filter(|segment| segment.id() != active)
            .fold((0, 0), |(data, dead), segment| {
                (
                    data + segment.record_bytes(),
                    dead + self.dead_bytes_of(segment),
                )
            })
    }

    /// The segments a compaction of `scope` replaces: the sealed ones it picks, with every
    /// other segment of a commit that spans them, and none that shares a commit with the
    /// writer's segment.
    fn compaction_inputs(&self, scope: &CompactionScope) -> Vec<u32> {
        let active = self.active().id();
        let picked: Vec<u32> = self
            .segments
            .iter()
            .filter(|segment| segment.id() != active)
            .filter(|segment| {
                let dead = self.dead_bytes_of(segment);
                let data = segment.record_bytes();
                match scope {
                    CompactionScope::Everything => dead > 0 || data == 0,
                    CompactionScope::Due(policy) => {
                        data == 0 || dead as f64 >= policy.segment_dead_ratio * data as f64
                    }
                }
            })
            .map(SegmentFile::id)
            .collect();
        self.whole_commits(picked, active)
    }

    /// What the copies of a compaction of `inputs` take (their live records, and a header
    /// for each new segment), against the room on the file system. The tombstones it must
    /// keep come on top, 48 bytes each: only the run's walk finds them, and it sets them
    /// against the room again before it writes. A file system that will not say counts as
    /// roomy: the compaction then finds out for itself, and fails without a change to the
    /// store.
    fn compaction_room(&self, inputs: &[u32]) -> CompactionRoom {
        CompactionRoom {
            needed_bytes: self.copies_of(inputs),
            available_bytes: self.active().free_disk_bytes().unwrap_or(u64::MAX),
        }
    }

    /// Bytes of the new segments that hold the live records of `inputs`.
    fn copies_of(&self, inputs: &[u32]) -> u64 {
        let live = inputs
            .iter()
            .map(|&segment| self.index.segment_live_bytes(segment))
            .sum();
        self.copies_bytes(live)
    }

    /// [`copies_bytes`] in this store's segments.
    fn copies_bytes(&self, live: u64) -> u64 {
        copies_bytes(live, self.segment_capacity())
    }

    /// Of `inputs`, those a compaction takes within `budget` bytes of copies: the most dead
    /// first (each frees the most for what it copies), then every other that still fits,
    /// with the other segments of commits that span them.
    fn inputs_within(&self, inputs: Vec<u32>, budget: u64) -> Vec<u32> {
        let dead_share = |id: u32| {
            let segment = self
                .segments
                .get(id)
                .expect("compaction inputs are live segments");
            let data = segment.record_bytes();
            if data == 0 {
                1.0
            } else {
                self.dead_bytes_of(segment) as f64 / data as f64
            }
        };
        let mut by_dead_share: Vec<(f64, u32)> =
            inputs.iter().map(|&id| (dead_share(id), id)).collect();
        by_dead_share.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut taken = Vec::new();
        let mut live = 0;
        for (_, id) in by_dead_share {
            let with = live + self.index.segment_live_bytes(id);
            if self.copies_bytes(with) <= budget {
                taken.push(id);
                live = with;
            }
        }
        taken.sort_unstable();
        self.whole_commits(taken, self.active().id())
    }

    /// Bytes of the segment's records that no read can reach: older versions and
    /// tombstones.
    fn dead_bytes_of(&self, segment: &SegmentFile) -> u64 {
        segment
            .record_bytes()
            .saturating_sub(self.index.segment_live_bytes(segment.id()))
    }
}

/// Bytes of the new segments of `capacity` bytes that hold `records` bytes of copied
/// records. No record, no new segment: a compaction of dead segments alone needs no room,
/// and is what frees some on a full disk.
fn copies_bytes(records: u64, capacity: u32) -> u64 {
    let outputs = records.div_ceil(crate::write::segment_room(capacity));
    records + outputs * SEGMENT_HEADER_LEN as u64
}

fn merge_by_seq(a: &[ToCopy], b: &[ToCopy]) -> Vec<ToCopy> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].seq < b[j].seq {
            merged.push(a[i]);
            i += 1;
        } else {
            merged.push(b[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    merged
}

/// The output segments of one run.
struct Outputs<'c> {
    compaction: &'c Compaction,
    done: Vec<SegmentFile>,
    moved: Vec<(DocId, u64, Position)>,
}

impl Outputs<'_> {
    /// Packs the copies, in order, into as many segments as they need.
    fn write_all(&mut self, copies: &[ToCopy], pace: &mut Pace) -> Result<()> {
        let room = u64::from(self.compaction.capacity) - SEGMENT_HEADER_LEN as u64;
        let mut start = 0;
        while start < copies.len() {
            let mut len = 0u64;
            let mut stop = start;
            while stop < copies.len() && len + record_len(copies[stop].payload_len) <= room {
                len += record_len(copies[stop].payload_len);
                stop += 1;
            }
            self.write_segment(&copies[start..stop], len, pace)?;
            start = stop;
        }
        Ok(())
    }

    /// Writes one output segment holding `copies` (`len` bytes of records).
    fn write_segment(&mut self, copies: &[ToCopy], len: u64, pace: &mut Pace) -> Result<()> {
        let c = self.compaction;
        let id = c.ids.output();
        let path = c.dir.join(unfinished_segment_file_name(id));
        let header = SegmentHeader {
            segment_id: id,
            store_uid: c.store_uid,
            capacity: c.capacity,
            sealed_before: None,
        };
        let mut segment = SegmentFile::create_at(&c.storage, path, header, c.map_settings)?;
        // Registered first, so that an error below removes the file.
        let result = (|| {
            segment.reserve_exact(len)?;
            let mut buf = Vec::with_capacity(CHUNK_BYTES.min(len as usize) + 4096);
            let mut offset = segment.end();
            let mut behind = WriteBehind::new(u64::from(offset), WRITE_BEHIND_STEP_BYTES);
            for copy in copies {
                let input = c.input(copy.segment);
                let data = &input.map.bytes()[..input.end as usize];
                let record = decode_record(data, copy.offset as usize)
                    .map_err(|err| Error::format(input.map.path(), 0, &err))?;
                if record.header.id != copy.id || record.header.seq != copy.seq {
                    return Err(Error::corrupt(
                        input.map.path(),
                        u64::from(copy.offset),
                        format!(
                            "compaction expected document {} at seq {}, the record holds {} at seq {}",
                            copy.id, copy.seq, record.header.id, record.header.seq
                        ),
                    ));
                }
                if copy.kind == RecordKind::Put
                    && let Err(err) = simdutf8::compat::from_utf8(record.payload)
                {
                    return Err(Error::corrupt(
                        input.map.path(),
                        u64::from(copy.offset) + 48 + err.valid_up_to() as u64,
                        format!("the text of document {} is not UTF-8", copy.id),
                    ));
                }
                // This process checked the bytes it copies: the copy needs no check on
                // its first read.
                segment.view().verified().insert(offset);
                let rec_len = record_len(copy.payload_len) as u32;
                encode_record(
                    &mut buf,
                    copy.kind,
                    copy.id,
                    copy.seq,
                    record.payload,
                    Some(rec_len),
                );
                if copy.kind == RecordKind::Put {
                    self.moved.push((
                        copy.id,
                        copy.seq,
                        Position {
                            segment: id,
                            offset,
                        },
                    ));
                }
                offset += rec_len;
                if buf.len() >= CHUNK_BYTES {
                    flush(&mut segment, &mut buf, &mut behind, pace)?;
                }
            }
            flush(&mut segment, &mut buf, &mut behind, pace)?;
            segment.sync_all()
        })();
        match result {
            Ok(()) => {
                self.done.push(segment);
                Ok(())
            }
            Err(err) => {
                let _ = segment.remove_file();
                Err(err)
            }
        }
    }
}

/// Appends `buf` to the segment and empties it, within the pace, with the output's
/// write-back following its writes.
fn flush(
    segment: &mut SegmentFile,
    buf: &mut Vec<u8>,
    behind: &mut WriteBehind,
    pace: &mut Pace,
) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    segment.write_at_end(buf)?;
    segment.publish(u32::try_from(buf.len()).expect("a chunk fits in a segment"));
    // No reader reaches an output before it is installed; its copies are complete.
    segment.commit_end();
    segment.write_behind(behind, u64::from(segment.end()))?;
    pace.done(buf.len() as u64);
    // Each byte written was read once from an input.
    let spent = pace.spend(2 * buf.len() as u64);
    buf.clear();
    spent.map_err(|Cancelled| Error::CompactionCancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_sequence_order() {
        let copy = |seq| ToCopy {
            seq,
            id: DocId::from(seq),
            kind: RecordKind::Put,
            segment: 1,
            offset: 64,
            payload_len: 0,
        };
        let a: Vec<_> = [1, 4, 5, 9].into_iter().map(copy).collect();
        let b: Vec<_> = [2, 3, 10].into_iter().map(copy).collect();
        let seqs: Vec<u64> = merge_by_seq(&a, &b).iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 9, 10]);
    }

    /// Rounds of a compaction short of room add up, and a round counts as getting somewhere
    /// only when it frees bytes and, after the first, leaves fewer segments than the round
    /// before: `compact` stops at the first that does not.
    #[test]
    fn rounds_add_up_and_stop_when_one_gets_nowhere() {
        let round = |n: u64, bytes_out: u64, left: u64| CompactionReport {
            segments_in: n,
            segments_out: n + 1,
            bytes_in: 1000 * n,
            bytes_out,
            records_copied: 10 * n,
            records_superseded: n,
            tombstones_kept: 2 * n,
            tombstones_dropped: 3 * n,
            copy_time: Duration::from_millis(n),
            segments_left: left,
        };
        let mut total = CompactionReport::default();
        assert!(
            total.add_round(&round(2, 500, 5)),
            "a first round that frees bytes"
        );
        assert!(
            total.add_round(&round(3, 2000, 2)),
            "fewer left, bytes freed"
        );
        assert_eq!(
            total,
            CompactionReport {
                segments_in: 5,
                segments_out: 7,
                bytes_in: 5000,
                bytes_out: 2500,
                records_copied: 50,
                records_superseded: 5,
                tombstones_kept: 10,
                tombstones_dropped: 15,
                copy_time: Duration::from_millis(5),
                segments_left: 2,
            }
        );
        assert!(
            !total.add_round(&round(1, 900, 2)),
            "as many left as before"
        );
        assert!(!total.add_round(&round(1, 1000, 1)), "nothing freed");
        assert!(
            total.add_round(&round(1, 999, 0)),
            "one byte freed, one fewer left"
        );
        assert_eq!(total.segments_left, 0);
    }
}
