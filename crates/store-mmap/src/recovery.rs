//! Opening a store: map the segments, load the index checkpoint, replay the data after it,
//! and cut a torn tail.
//!
//! What recovery assumes of the disk, and why each step is safe, is in docs/FORMAT.md
//! ("Recovery").

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_format::{
    DocId, Position, RecordHeader, RecordKind, RetiredList, SEGMENT_HEADER_LEN, StoreMeta,
    WriteLimit,
};

use crate::error::{Error, Result};
use crate::index::{Entry, Index};
use crate::index_file::{MappedIndex, Unusable};
use crate::journal;
use crate::layout::{
    INDEX_FILE, LIMIT_FILE, RETIRED_FILE, UNFINISHED_SUFFIX, is_spare_file_name,
    parse_segment_file_name, parse_spare_file_name, segment_file_name,
};
use crate::options::StoreOptions;
use crate::segment::{Retired, SegmentFile};
use crate::spans;
use crate::storage::sync_dir;
use crate::walk;

/// What an open found and did, for the caller to log or show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// What became of the index checkpoint.
    pub index: IndexLoad,
    /// Frames of the index journal taken: the index's changes since the index file, so that
    /// only the records after the last frame are replayed.
    pub journal_frames: u64,
    /// Changes of documents those frames held.
    pub journal_changes: u64,
    /// Why the journal's frames after the last taken were not (a frame torn by a crash, one
    /// of an older index file): the data after the last frame taken was replayed instead.
    pub journal_stopped: Option<String>,
    /// Records read from the segments after the checkpoint (and the journal's last frame).
    pub records_replayed: u64,
    /// Bytes of those records.
    pub bytes_replayed: u64,
    /// Intact records left by a batch that spanned segments and was cut short before its
    /// last part was written: it was never acknowledged, and none of it is applied
    /// (docs/FORMAT.md, "Batches that span segments").
    pub records_abandoned: u64,
    /// The torn or damaged tail that was cut off, if any.
    pub dropped_tail: Option<DroppedTail>,
    /// A newest segment file whose creation never completed (no valid header, no data),
    /// removed.
    pub removed_segment: Option<PathBuf>,
    /// Segments a finished compaction had replaced, removed before reading (their files
    /// were still there because readers held them or the process stopped first).
    pub retired_segments_removed: u64,
    /// Outputs of a compaction that never finished, removed: they held only copies.
    pub unfinished_compaction_files_removed: u64,
}

/// What became of the index checkpoint on open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexLoad {
    /// There was none (a new store, or one never closed cleanly): every record was replayed.
    #[default]
    Missing,
    /// Loaded; only the records after its checkpoint were replayed.
    Loaded {
        /// Live documents it listed.
        entries: u64,
    },
    /// Present but unusable, so every record was replayed. The data is intact; the index is
    /// only a cache of it.
    Discarded {
        /// Why it was not used.
        reason: String,
    },
}

/// A tail of the newest segment that recovery removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTail {
    /// The segment file.
    pub path: PathBuf,
    /// Where the kept data ends; everything from here on was removed.
    pub offset: u64,
    /// Intact records of the incomplete commit group that were dropped with it. A torn write
    /// is never acknowledged; damage to the last commit of the newest segment looks the same,
    /// which is why the cut is reported (docs/FORMAT.md, "What recovery assumes").
    pub records: u64,
    /// What was wrong at the cut.
    pub reason: String,
}

pub(crate) struct Recovered {
    pub(crate) segments: BTreeMap<u32, SegmentFile>,
    pub(crate) index: Index,
    pub(crate) last_seq: u64,
    pub(crate) next_segment_id: u32,
    pub(crate) report: RecoveryReport,
    /// Compaction outputs whose moves no index checkpoint reflects yet.
    pub(crate) uncovered_copies: Vec<u32>,
    /// Segments a compaction replaced that stay until a checkpoint reflects the moves.
    pub(crate) retired: Vec<Retired>,
    /// Where the index file and the journal's frames taken end: every record before it is
    /// in `index` without a replay.
    pub(crate) checkpoint: Option<Position>,
    /// Bytes of records committed since the index file was planned, by the journal's last
    /// frame and the replay: when the next index file is due.
    pub(crate) bytes_since_index_file: u64,
    /// Whether the open synced the newest segment and the directory already.
    pub(crate) synced: bool,
    /// The spare files the writer keeps ([`StoreOptions::spare_files`]) and their lengths;
    /// none for a reader.
    pub(crate) spares: Vec<(PathBuf, u64)>,
    /// The newest slot of the write-limit file, whichever segment it is for.
    pub(crate) write_limit: Option<WriteLimit>,
}

/// How an open may treat the store's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The writer's open: it completes compactions, cuts a torn tail and unused
    /// preallocation, and owns every file.
    Write,
    /// A read-only open: no file is changed. `bound`, when a writer is live, is how far
    /// it has published commits; nothing past it is read. Without a live writer the data is
    /// read as the writer's recovery would, in memory.
    Read { bound: Option<Position> },
}

impl Access {
    fn writes(self) -> bool {
        self == Access::Write
    }
}

pub(crate) fn recover(
    dir: &Path,
    meta: &StoreMeta,
    options: &StoreOptions,
    access: Access,
) -> Result<Recovered> {
    let mut report = RecoveryReport::default();
    let names = list_dir(dir)?;
    let compactions = finish_compactions(dir, &names, meta, options, access, &mut report)?;
    let bound = match access {
        Access::Read { bound } => bound,
        Access::Write => None,
    };
    let spares = if access.writes() {
        keep_spares(dir, &names, options)?
    } else {
        Vec::new()
    };
    let removed = compactions.removed.clone();
    let segment_ids = names
        .iter()
        .filter_map(|name| parse_segment_file_name(name))
        .filter(|id| !removed.contains(id));
    let segments = open_segments(dir, segment_ids, meta, options, access, &mut report)?;
    let lens: Vec<_> = segments
        .values()
        .map(|s| walk::SegmentLen {
            id: s.id(),
            path: s.path(),
            file_len: s.file_len(),
            sealed_before: s.sealed_before(),
        })
        .collect();
    if bound.is_none()
        && let Some(problem) = walk::sealed_length_problems(&lens).first()
    {
        return Err(refuse_problem(dir, problem));
    }
    // Past every id a file of the directory names, in use or not: a spare file is named by
    // the id of the segment it was, and the newest segment may have been removed above
    // (never completed), so a new segment must not take either's id.
    let named = names.iter().filter_map(|name| {
        let stem = name.strip_suffix(UNFINISHED_SUFFIX).unwrap_or(name);
        parse_segment_file_name(stem).or_else(|| parse_spare_file_name(stem))
    });
    let next_segment_id = segments
        .keys()
        .copied()
        .chain(named)
        .max()
        .map_or(1, |id| id + 1);

    // After a crash the writer's open syncs the newest segment and the directory before it
    // serves anything (`Store::assemble`). A journal left behind is the sign of a crash (a
    // close removes it): the sync then runs on a thread of its own while this one reads
    // the journal and the tail, so that the open waits for the disk and the reading once.
    let journaled = journal::present(dir);
    // The listing says whether there is a limit file: a store that never wrote a segment
    // over a spare file has none, and its open tries no read.
    let end = if names.iter().any(|name| name == LIMIT_FILE) {
        TailEnd::read(dir, meta.store_uid, bound)
    } else {
        TailEnd::unlimited(bound)
    };
    let write_limit = end.write_limit();
    let sync_early = access.writes() && journaled;
    let storage = options.storage.as_ref();
    let (index, start, journaled_bytes, tail, synced) = std::thread::scope(|scope| -> Result<_> {
        let sync = sync_early
            .then(|| segments.values().next_back())
            .flatten()
            .map(|newest| {
                scope.spawn(move || -> Result<()> {
                    newest.sync_data()?;
                    sync_dir(storage, dir)
                })
            });
        let read = read_index_and_tail(
            dir,
            meta,
            &segments,
            end,
            journaled,
            &compactions,
            &mut report,
        );
        let synced = match sync {
            Some(thread) => {
                thread
                    .join()
                    .map_err(|panic| Error::panicked("the open's sync thread", &*panic))??;
                true
            }
            None => false,
        };
        let (index, start, journaled_bytes, tail) = read?;
        Ok((index, start, journaled_bytes, tail, synced))
    })?;
    let mut segments = segments;
    let mut last_seq = tail.last_seq;
    let ends = tail.ends;
    if let Some(bound) = bound {
        // What lies past the writer's published commits is not this view's.
        segments.retain(|&id, _| id <= bound.segment);
    }
    let torn = report.dropped_tail.as_ref().map(|tail| tail.path.clone());
    for (id, valid_end) in ends {
        let segment = segments.get_mut(&id).expect("scanned above");
        segment.set_end(u32::try_from(valid_end).expect("segment offsets are 32-bit"));
        // Cut a torn final group, so that its bytes can never be read as records after new
        // data is written before them. Past the data of every other segment lie only zeros
        // (preallocation, or zeros written ahead), which the next commits write over: they
        // stay.
        if access.writes() && torn.as_deref() == Some(segment.path()) {
            segment.trim()?;
        }
        // The limit the walk read up to still holds: the writer goes on from it.
        if let Some(limit) = write_limit.filter(|l| l.segment_id == id)
            && segment.write_limit().is_some()
        {
            segment.set_write_limit(limit.limit);
        }
    }
    // Sequence numbers never go back, even when compaction dropped every record that held the
    // highest (a tombstone below the floor): each segment's header records the last sequence
    // number at its creation.
    let recorded = segments
        .values()
        .filter_map(|segment| segment.sealed_before())
        .map(|sealed| sealed.last_seq)
        .max();
    last_seq = last_seq.max(recorded.unwrap_or(0));
    // The writer keeps the replaced segments aside until a checkpoint reflects the moves;
    // nothing points into them any more.
    let mut retired = Vec::new();
    if access.writes() {
        for id in &compactions.retired {
            if let Some(segment) = segments.remove(id) {
                retired.push(Retired {
                    id: *id,
                    path: segment.path().to_path_buf(),
                    mapping: segment.watch_mapping(),
                    retired_after_plan: 0,
                    may_be_spare: true,
                });
            }
        }
    }
    let bytes_since_index_file = journaled_bytes + report.bytes_replayed;
    Ok(Recovered {
        segments,
        index,
        last_seq,
        next_segment_id,
        report,
        uncovered_copies: compactions.copies,
        retired,
        checkpoint: start,
        bytes_since_index_file,
        synced,
        spares,
        write_limit,
    })
}

/// The spare files among `names`, as many as the options keep; the writer's open removes
/// the others (the setting was lowered). A spare holds no record of the store: its bytes
/// are those of a retired segment, whatever state a crash left them in, and the header is
/// written afresh when it becomes a segment.
fn keep_spares(
    dir: &Path,
    names: &[String],
    options: &StoreOptions,
) -> Result<Vec<(PathBuf, u64)>> {
    let mut spares: Vec<PathBuf> = names
        .iter()
        .filter(|name| is_spare_file_name(name))
        .map(|name| dir.join(name))
        .collect();
    spares.sort_unstable();
    if spares.len() > options.spare_files {
        for path in spares.drain(options.spare_files..) {
            options
                .storage
                .remove(&path)
                .map_err(Error::io("remove spare segment file", &path))?;
        }
        sync_dir(options.storage.as_ref(), dir)?;
    }
    spares
        .into_iter()
        .map(|path| {
            let len = std::fs::metadata(&path)
                .map_err(Error::io("stat", &path))?
                .len();
            Ok((path, len))
        })
        .collect()
}

/// The index as of the checkpoint (the index file and, when the directory holds a journal
/// (`journaled`), the journal's frames taken) and the scan of the segments after it, with
/// the entries moved to the copies of compactions no checkpoint reflects: the index, the
/// position it reflects, the bytes the journal's last frame counted since the index file,
/// and the scan.
///
/// The open reads no page of slots of the index file, but the replay looks up the version
/// each record replaces: a page that fails its check there makes the file unusable, and
/// the index is rebuilt from the segments, as for a file the open discards at once
/// (`rebuild.rs` says what happens to damage found later).
fn read_index_and_tail(
    dir: &Path,
    meta: &StoreMeta,
    segments: &BTreeMap<u32, SegmentFile>,
    end: TailEnd,
    journaled: bool,
    compactions: &Compactions,
    report: &mut RecoveryReport,
) -> Result<(Index, Option<Position>, u64, TailScan)> {
    let before = report.clone();
    match read_through_index_file(dir, meta, segments, end, journaled, compactions, report) {
        Err(Error::Corrupt { path, what, .. }) if path == dir.join(INDEX_FILE) => {
            *report = before;
            let what = what
                .strip_suffix(crate::index_file::REBUILT_FROM_THE_DATA)
                .unwrap_or(&what);
            let reason = format!("the replay met a damaged page of slots: {what}");
            tracing::warn!(
                dir = %dir.display(),
                reason = %reason,
                "the replay met a damaged page of the index file: the index is rebuilt from the data"
            );
            report.index = IndexLoad::Discarded { reason };
            let mut index = Index::default();
            let tail = scan_tail(dir, segments, &mut index, None, 0, end, report)?;
            move_to_copies(&mut index, segments, compactions)?;
            Ok((index, None, 0, tail))
        }
        read => read,
    }
}

/// [`read_index_and_tail`] through the index file, when it can be used.
fn read_through_index_file(
    dir: &Path,
    meta: &StoreMeta,
    segments: &BTreeMap<u32, SegmentFile>,
    end: TailEnd,
    journaled: bool,
    compactions: &Compactions,
    report: &mut RecoveryReport,
) -> Result<(Index, Option<Position>, u64, TailScan)> {
    let bound = end.published();
    let mut journaled_bytes = 0;
    let (mut index, last_seq, start) = match load_index(dir, meta, segments, bound)? {
        Checkpoint::Loaded { base } => {
            report.index = IndexLoad::Loaded {
                entries: base.header().live_docs,
            };
            let (last_seq, position) = (base.header().last_seq, base.header().checkpoint);
            let base = Arc::new(base);
            let mut index = Index::on(Arc::clone(&base));
            let journal = if journaled {
                journal::load(dir, meta.store_uid, &base, segments, bound, &mut index)?
            } else {
                journal::JournalLoad::default()
            };
            report.journal_frames = journal.frames;
            report.journal_changes = journal.changes;
            report.journal_stopped = journal.stopped;
            match journal.last {
                Some(frame) => {
                    journaled_bytes = frame.bytes_since_base;
                    (index, frame.last_seq, Some(frame.position))
                }
                None => (index, last_seq, Some(position)),
            }
        }
        Checkpoint::Missing => (Index::default(), 0, None),
        Checkpoint::Ahead => {
            // The writer checkpointed commits it published after this view read its
            // bound: the caller reads the bound again (a read-only open retries).
            return Err(Error::io("catch up with", dir.join(INDEX_FILE))(
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the index checkpoint is newer than the writer's position read before it",
                ),
            ));
        }
        Checkpoint::Unusable(reason) => {
            report.index = IndexLoad::Discarded { reason };
            (Index::default(), 0, None)
        }
    };

    let tail = scan_tail(dir, segments, &mut index, start, last_seq, end, report)?;
    move_to_copies(&mut index, segments, compactions)?;
    Ok((index, start, journaled_bytes, tail))
}

/// What a scan of the tail found.
pub(crate) struct TailScan {
    /// The highest sequence number met (or the one given, if higher).
    pub(crate) last_seq: u64,
    /// Where each scanned segment's data ends.
    pub(crate) ends: Vec<(u32, usize)>,
    /// The ids whose entry the scan changed (an id may repeat).
    pub(crate) changed: Vec<DocId>,
}

/// How far a scan of the tail reads the newest segment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TailEnd {
    /// Up to a live writer's published position: nothing past it is this view's.
    Published(Position),
    /// Up to the data's end, wherever a crash or a close left it. Where an earlier
    /// segment's bytes may follow the data (a file written over as the segment), no
    /// further than the segment's write limit, when the limit is for it.
    Data(Option<WriteLimit>),
}

impl TailEnd {
    /// Up to `bound`, a live writer's published position, or without one up to the data,
    /// bounded by the write limit that the store `store_uid` in `dir` records (read only
    /// then: past a live writer's position nothing is read, limit or not).
    pub(crate) fn read(dir: &Path, store_uid: u128, bound: Option<Position>) -> TailEnd {
        match bound {
            Some(bound) => TailEnd::Published(bound),
            None => TailEnd::Data(crate::limit::read(dir, store_uid)),
        }
    }

    /// Up to `bound`, or without one up to the data, with no write limit to bound it.
    fn unlimited(bound: Option<Position>) -> TailEnd {
        bound.map_or(TailEnd::Data(None), TailEnd::Published)
    }

    /// The write limit read, whichever segment it is for.
    fn write_limit(self) -> Option<WriteLimit> {
        match self {
            TailEnd::Published(_) => None,
            TailEnd::Data(limit) => limit,
        }
    }

    fn published(self) -> Option<Position> {
        match self {
            TailEnd::Published(position) => Some(position),
            TailEnd::Data(_) => None,
        }
    }

    /// The write limit of segment `id`, if it has one to read up to.
    fn write_limit_of(self, id: u32) -> Option<usize> {
        self.write_limit()
            .filter(|limit| limit.segment_id == id)
            .map(|limit| limit.limit as usize)
    }
}

/// Scans the segments from `start` (every segment when `None`) up to `end`, and applies
/// their records to `index`; records up to sequence number `reflected` are already in it.
/// Every segment is scanned and every damage found before the caller changes any file: an
/// open that refuses leaves the store exactly as it was.
pub(crate) fn scan_tail(
    dir: &Path,
    segments: &BTreeMap<u32, SegmentFile>,
    index: &mut Index,
    start: Option<Position>,
    reflected: u64,
    end: TailEnd,
    report: &mut RecoveryReport,
) -> Result<TailScan> {
    let bound = end.published();
    let mut last_seq = reflected;
    let last_id = match bound {
        Some(bound) => Some(bound.segment),
        None => segments.keys().next_back().copied(),
    };
    let first_replayed = start.map_or(0, |p| p.segment);
    let mut replay = Replay {
        index,
        reflected,
        deleted: HashMap::default(),
        changed: Vec::new(),
    };
    let mut scans = Vec::new();
    for (&id, segment) in segments.range(first_replayed..=last_id.unwrap_or(u32::MAX)) {
        // Records after the start in its segment are writes made after it; any other
        // segment's records are above what its header records of its sealed predecessor
        // (a compaction output records nothing: it holds copies of older records).
        let (from, floor) = match start {
            Some(p) if p.segment == id => (p.offset as usize, reflected),
            _ => (
                SEGMENT_HEADER_LEN,
                segment.sealed_before().map_or(0, |sealed| sealed.last_seq),
            ),
        };
        let is_last = Some(id) == last_id;
        let bytes = match bound {
            // The writer wrote everything below its published position before publishing
            // it, so the file holds those bytes whatever length this handle last saw.
            Some(bound) if bound.segment == id => segment.bytes_to(bound.offset),
            // The newest segment may end in preallocated space that was never written: the
            // holes past its last data read as zeros, which the walk would only skip. A
            // sealed segment is read whole, holes and all: zeros there are damage.
            None if is_last => &segment.file_bytes()[..segment.data_end_after(from)],
            _ => segment.file_bytes(),
        };
        if from > bytes.len() {
            return Err(refuse(
                dir,
                segment.path(),
                bytes.len() as u64,
                format!(
                    "the segment holds {} bytes, but the index checkpoint records that its first {from} bytes were committed: data was cut off",
                    bytes.len()
                ),
            ));
        }
        // Past the newest segment's data, a file that held an earlier segment holds that
        // segment's bytes; up to a published position, and in a sealed segment (cut at its
        // data when it was sealed), every byte is this segment's.
        let earlier_life = bound.is_none()
            && is_last
            && segment
                .sealed_before()
                .is_some_and(|sealed| sealed.reuses_file);
        let scan = match end.write_limit_of(id).filter(|_| earlier_life) {
            Some(limit) => walk::scan_below(bytes, from, floor, limit),
            None => walk::scan(bytes, from, floor, earlier_life),
        };
        // Below a published position every byte was committed: nothing there is torn.
        let tail = match bound {
            Some(_) if is_last => SegmentTail::Published,
            None if is_last => SegmentTail::Newest,
            _ => SegmentTail::Sealed,
        };
        let end = data_end(dir, segment, &scan, tail)?;
        scans.push((id, segment, from, scan, end));
    }
    let groups: Vec<spans::SegmentGroups<'_>> = scans
        .iter()
        .map(|(id, segment, from, scan, end)| {
            spans::SegmentGroups::of(
                *id,
                segment.path(),
                segment.sealed_before().map(|sealed| sealed.segment_id),
                *from,
                scan,
                end.valid_end,
            )
        })
        .collect();
    let resolved = spans::resolve(&groups);
    if let Some(problem) = resolved.problems.first() {
        return Err(refuse_problem(dir, problem));
    }
    let mut ends = Vec::new();
    for (id, segment, from, scan, end) in &scans {
        for scanned in scan.records.iter().take_while(|r| r.offset < end.valid_end) {
            // The walk checked the record whole: its first read needs no check.
            segment
                .view()
                .verified()
                .insert(u32::try_from(scanned.offset).expect("segment offsets are 32-bit"));
            let header = scanned.header();
            // Sequence numbers stay above every record on disk, applied or not: later
            // records of the same segment must be above them.
            last_seq = last_seq.max(header.seq);
            if resolved.is_abandoned(*id, scanned.offset) {
                report.records_abandoned += 1;
                continue;
            }
            replay.apply(*id, scanned.offset, header)?;
            report.records_replayed += 1;
        }
        report.bytes_replayed += (end.valid_end - from) as u64;
        if end.dropped_tail.is_some() {
            report.dropped_tail = end.dropped_tail.clone();
        }
        ends.push((*id, end.valid_end));
    }
    let changed = replay.changed;
    Ok(TailScan {
        last_seq,
        ends,
        changed,
    })
}

/// Moves every index entry that points into a segment a compaction replaced to the copy of
/// its record in one of that compaction's outputs: the index file may predate the
/// compaction, and the replay reads records into the replaced segments like any other.
fn move_to_copies(
    index: &mut Index,
    segments: &BTreeMap<u32, SegmentFile>,
    compactions: &Compactions,
) -> Result<()> {
    for id in &compactions.copies {
        let Some(segment) = segments.get(id) else {
            continue;
        };
        let scan = walk::scan(segment.file_bytes(), SEGMENT_HEADER_LEN, 0, false);
        for scanned in &scan.records {
            let header = scanned.header();
            if header.kind != RecordKind::Put {
                continue;
            }
            let Some(entry) = index.get(header.id)? else {
                continue;
            };
            if entry.seq == header.seq && compactions.retired.contains(&entry.segment) {
                let offset = u32::try_from(scanned.offset).expect("segment offsets are 32-bit");
                index.relocate(
                    header.id,
                    header.seq,
                    Position {
                        segment: *id,
                        offset,
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Applies replayed records so that each document ends at its record with the highest
/// sequence number, whatever order the records come in: compaction copies old records into
/// new segments, so segment order is not sequence order.
struct Replay<'i> {
    index: &'i mut Index,
    /// Every record up to this sequence number is reflected in the loaded checkpoint
    /// (0 without one): such a record met again is an older version or a copy.
    reflected: u64,
    /// Sequence numbers of the tombstones applied so far, so that an older put met later
    /// stays deleted.
    deleted: HashMap<DocId, u64, foldhash::fast::RandomState>,
    /// The ids whose entry a record changed, in the order applied.
    changed: Vec<DocId>,
}

impl Replay<'_> {
    fn apply(&mut self, segment: u32, offset: usize, header: &RecordHeader) -> Result<()> {
        if header.seq <= self.reflected {
            return Ok(());
        }
        let id = header.id;
        let latest = self
            .index
            .get(id)?
            .map(|e| e.seq)
            .max(self.deleted.get(&id).copied());
        if latest.is_some_and(|seq| seq >= header.seq) {
            return Ok(());
        }
        self.changed.push(id);
        match header.kind {
            RecordKind::Tombstone => {
                self.index.remove(id)?;
                self.deleted.insert(id, header.seq);
            }
            _ => {
                self.deleted.remove(&id);
                self.index.insert(
                    id,
                    Entry {
                        seq: header.seq,
                        segment,
                        offset: u32::try_from(offset).expect("segment offsets are 32-bit"),
                        text_len: header.payload_len,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// What compactions left, as the retired-segment list names it.
#[derive(Default)]
struct Compactions {
    /// Segments replaced whose moves no checkpoint reflects yet.
    retired: Vec<u32>,
    /// Outputs whose moves no checkpoint reflects yet.
    copies: Vec<u32>,
    /// Replaced segments the writer's open removed.
    removed: Vec<u32>,
}

/// Completes what compactions left: the writer removes the outputs of a compaction that
/// never finished (temporary files holding only copies), and the segments a finished
/// compaction replaced (named by the retired-segment list, which is written only once the
/// copies are durable) once a checkpoint reflects every move (the list names no copies).
/// Replaced segments that stay are read like any other, and their entries moved to the
/// copies after. A read-only open changes nothing.
fn finish_compactions(
    dir: &Path,
    names: &[String],
    meta: &StoreMeta,
    options: &StoreOptions,
    access: Access,
    report: &mut RecoveryReport,
) -> Result<Compactions> {
    let storage = options.storage.as_ref();
    let remove = |path: &Path| match storage.remove(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(Error::io("remove", path)(err)),
    };
    let mut removed = false;
    if access.writes() {
        for name in names {
            let unfinished = name
                .strip_suffix(UNFINISHED_SUFFIX)
                .and_then(parse_segment_file_name)
                .is_some();
            if unfinished && remove(&dir.join(name))? {
                report.unfinished_compaction_files_removed += 1;
                removed = true;
            }
        }
    }
    let list_path = dir.join(RETIRED_FILE);
    let raw = match std::fs::read(&list_path) {
        Ok(raw) => Some(raw),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(Error::io("read", &list_path)(err)),
    };
    let mut compactions = Compactions::default();
    if let Some(raw) = raw {
        let list = RetiredList::decode(&raw).map_err(|err| Error::format(&list_path, 0, &err))?;
        if list.store_uid != meta.store_uid {
            return Err(Error::corrupt(
                &list_path,
                16,
                format!(
                    "the retired-segment list belongs to store {:032x}, not this store {:032x}",
                    list.store_uid, meta.store_uid
                ),
            ));
        }
        if access.writes() && list.copies.is_empty() {
            for id in &list.segments {
                if remove(&dir.join(segment_file_name(*id)))? {
                    report.retired_segments_removed += 1;
                }
            }
            compactions.removed = list.segments.clone();
            // The segments' removal is durable before the list that names them goes.
            sync_dir(storage, dir)?;
            remove(&list_path)?;
            removed = true;
        } else {
            compactions = Compactions {
                retired: list.segments,
                copies: list.copies,
                removed: Vec::new(),
            };
        }
    }
    if removed {
        sync_dir(storage, dir)?;
    }
    Ok(compactions)
}

fn open_segments(
    dir: &Path,
    ids: impl Iterator<Item = u32>,
    meta: &StoreMeta,
    options: &StoreOptions,
    access: Access,
    report: &mut RecoveryReport,
) -> Result<BTreeMap<u32, SegmentFile>> {
    let mut ids: Vec<u32> = ids.collect();
    ids.sort_unstable();
    if let Access::Read { bound: Some(bound) } = access {
        // Segments past the published commits are the writer's, possibly half-made.
        ids.retain(|&id| id <= bound.segment);
    }
    let mut segments = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let path = dir.join(segment_file_name(id));
        match SegmentFile::open(
            &options.storage,
            path.clone(),
            id,
            meta.store_uid,
            options.map_settings(),
            access.writes(),
        ) {
            Ok(segment) => {
                segments.insert(id, segment);
            }
            Err(err) if err.is_corruption() && i + 1 == ids.len() && is_unfinished(&path)? => {
                // The newest segment was being created when the process stopped: its header
                // is incomplete and it holds no record (records are written only after the
                // header is synced).
                if access.writes() {
                    options
                        .storage
                        .remove(&path)
                        .map_err(Error::io("remove", &path))?;
                    sync_dir(options.storage.as_ref(), dir)?;
                }
                report.removed_segment = Some(path);
            }
            Err(err) => return Err(err),
        }
    }
    Ok(segments)
}

/// The names of the entries of `dir` that are UTF-8 (every name textstore gives a file is).
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn is_unfinished(path: &Path) -> Result<bool> {
    let len = std::fs::metadata(path)
        .map_err(Error::io("stat", path))?
        .len();
    Ok(len <= SEGMENT_HEADER_LEN as u64)
}

/// What the index file offers an open.
enum Checkpoint {
    /// The mapped index file, checked as far as an open checks it.
    Loaded { base: MappedIndex },
    /// There is no index file.
    Missing,
    /// The checkpoint lies past the bound a read-only open read before it.
    Ahead,
    /// The file cannot be used, for this reason; the data is replayed instead.
    Unusable(String),
}

/// Maps the index checkpoint and checks its position against the segments.
///
/// The checkpoint is written only once the data it covers is durable, and segment files
/// never shrink below their committed data; so a checkpoint that lies past the end of a
/// segment that exists is evidence that committed data was cut off, and fails the open
/// (the outer error). One whose segment no longer exists is stale, and is discarded. The
/// slots are not read here: each page is checked when a lookup first touches it.
fn load_index(
    dir: &Path,
    meta: &StoreMeta,
    segments: &BTreeMap<u32, SegmentFile>,
    bound: Option<Position>,
) -> Result<Checkpoint> {
    let path = dir.join(INDEX_FILE);
    let base = match MappedIndex::open(&path, meta.store_uid) {
        Ok(base) => base,
        Err(Unusable::Missing) => return Ok(Checkpoint::Missing),
        Err(Unusable::Rejected(reason)) => return Ok(Checkpoint::Unusable(reason)),
    };
    let cp = base.header().checkpoint;
    if bound.is_some_and(|bound| cp > bound) {
        return Ok(Checkpoint::Ahead);
    }
    let Some(cp_segment) = segments.get(&cp.segment) else {
        return Ok(Checkpoint::Unusable(format!(
            "its checkpoint names segment {}, which does not exist",
            cp.segment
        )));
    };
    if (cp.offset as usize) < SEGMENT_HEADER_LEN {
        return Ok(Checkpoint::Unusable(format!(
            "its checkpoint at offset {} is inside the header of segment {}",
            cp.offset, cp.segment
        )));
    }
    if u64::from(cp.offset) > cp_segment.file_len() {
        return Err(refuse(
            dir,
            cp_segment.path(),
            cp_segment.file_len(),
            format!(
                "the segment is {} bytes, but the index checkpoint records that its first {} bytes were committed: data was cut off",
                cp_segment.file_len(),
                cp.offset
            ),
        ));
    }
    Ok(Checkpoint::Loaded { base })
}

/// The error of an open that finds damage to committed data: what is wrong, and how to get
/// the rest back. The open has changed nothing when it returns this.
fn refuse(dir: &Path, path: &Path, offset: u64, what: String) -> Error {
    Error::corrupt(
        path,
        offset,
        format!(
            "{what}. Nothing was changed. `textstore recover {} NEW_DIR` (or `store_mmap::recover`) copies every intact record into a new store",
            dir.display()
        ),
    )
}

/// [`refuse`] for a damaged byte range a walk found.
fn refuse_problem(dir: &Path, problem: &walk::Problem) -> Error {
    refuse(
        dir,
        &problem.path,
        problem.offset,
        format!(
            "bytes {}..{}: {}",
            problem.offset, problem.end, problem.what
        ),
    )
}

/// Where a scanned segment's data ends, and what is cut after it.
struct DataEnd {
    valid_end: usize,
    dropped_tail: Option<DroppedTail>,
}

/// What the end of a scanned segment may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentTail {
    /// A newer segment follows: the segment was synced and trimmed to its data when it was
    /// sealed, and every byte of it is committed.
    Sealed,
    /// The scan ends at a position the writer published (a reader's view, or the writer's
    /// rebuild of its index), which it did once every byte below it was written: every
    /// byte scanned is committed.
    Published,
    /// The newest segment, read to the end of its data: the last write may be torn.
    Newest,
}

/// Applies the rule of docs/FORMAT.md ("What recovery assumes") to one scanned segment.
///
/// Anything but complete commit groups is damage in a sealed segment (one with a newer
/// segment after it), which was synced and trimmed to its data before the next segment was
/// created, and below a position the writer published. In the newest segment read to its
/// end, the bytes after the last complete group are a torn final write only when no
/// complete group follows them; then they are cut. Otherwise committed data lies beyond the
/// damage, and the open fails without changing a byte.
fn data_end(
    dir: &Path,
    segment: &SegmentFile,
    scan: &walk::SegmentScan<'_>,
    tail: SegmentTail,
) -> Result<DataEnd> {
    let committed_to_the_end = match tail {
        SegmentTail::Sealed => Some(
            "the segment is sealed (a newer segment follows it), so every byte up to its end was committed",
        ),
        SegmentTail::Published => Some(
            "the writer published a position past them, which it does once every byte below it is written",
        ),
        SegmentTail::Newest => None,
    };
    if let (Some(committed), Some(from)) = (committed_to_the_end, scan.unwritten_from) {
        return Err(refuse(
            dir,
            segment.path(),
            from as u64,
            format!("bytes {from}..{} are zero; {committed}", scan.len),
        ));
    }
    if scan.is_clean() {
        return Ok(DataEnd {
            valid_end: scan.clean_end,
            dropped_tail: None,
        });
    }
    let broken = scan.broken_range();
    let follows = match (&scan.committed_after, committed_to_the_end) {
        (Some(group), _) => Some(format!(
            "an intact commit group follows at offsets {}..{}, so this is damage to committed data, not a torn write",
            group.start, group.end
        )),
        (None, committed) => committed.map(str::to_owned),
    };
    if let Some(follows) = follows {
        return Err(refuse(
            dir,
            segment.path(),
            broken.start as u64,
            format!(
                "bytes {}..{} are damaged ({}); {follows}",
                broken.start,
                broken.end,
                scan.broken_reason(),
            ),
        ));
    }
    Ok(DataEnd {
        valid_end: scan.clean_end,
        dropped_tail: Some(DroppedTail {
            path: segment.path().to_path_buf(),
            offset: scan.clean_end as u64,
            records: scan.records_after_clean_end() as u64,
            reason: scan.broken_reason(),
        }),
    })
}
