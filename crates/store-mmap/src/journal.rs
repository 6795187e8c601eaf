//! The index journal (`index.tsj`, format in `store_format::journal`): the writer appends a
//! frame of the index's changes every [`crate::StoreOptions::journal_bytes`] of commits, so
//! that the replay after a crash covers at most that much, while the index file is
//! rewritten only every [`crate::StoreOptions::checkpoint_bytes`].
//!
//! Why a frame needs no sync of its own: a frame claims only what is already durable (the
//! data before its position is synced before the frame is written, and the index file it
//! goes on top of was synced before it took its name), and an open takes frames in order up
//! to the first that is torn, damaged or of another index file. A frame lost to a power cut
//! costs a longer replay, never a document. The writer syncs the journal every half
//! checkpoint interval all the same ([`Journal::sync`]), under per-commit syncs, so that a
//! power cut replays at most the interval while the index file is rewritten less often. The
//! journal is started afresh (under a temporary name, renamed into place) for each index file
//! and at each writer's open, and removed when an index file replaces the one it goes on top
//! of; a writer that opens after a crash starts it with a copy of the frames its open took.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_format::{
    JOURNAL_HEADER_LEN, JournalBase, JournalFrame, JournalFrames, JournalHeader, Position,
    encode_journal_frame,
};

use crate::error::{Error, Result};
use crate::index::{Index, JournalLayer};
use crate::index_file::MappedIndex;
use crate::layout::JOURNAL_FILE;
use crate::segment::SegmentFile;
use crate::storage::{Storage, SyncKind, sync_dir};

/// The journal file a writer appends to.
pub(crate) struct Journal {
    path: PathBuf,
    /// The file frames go into, and where the next goes; `None` until the next frame starts
    /// a file for the current index file.
    file: Option<(File, u64)>,
    /// The directory was synced since the file took its name, so that a power cut keeps it.
    named_durably: bool,
    /// Frames an open took from the journal a crashed writer left, on top of the same index
    /// file: the next file starts with a copy of them, so that its first frame need not hold
    /// their changes again (sorted, looked up and encoded, that frame took 12–19 ms at
    /// 110,000 changes).
    carry: Option<Arc<JournalLayer>>,
}

impl Journal {
    /// A writer's journal in `dir`: the first frame starts a new file.
    pub(crate) fn new(dir: &Path) -> Journal {
        Journal {
            path: dir.join(JOURNAL_FILE),
            file: None,
            named_durably: false,
            carry: None,
        }
    }

    /// Starts the next file with a copy of the frames of `layer`, which the open took from
    /// the journal on top of the current index file.
    pub(crate) fn carry(&mut self, layer: Arc<JournalLayer>) {
        self.carry = Some(layer);
    }

    /// Appends a frame of `index`'s changes since the last, at `frame`'s position. The
    /// caller has made the data before that position durable. On a failure the journal is
    /// dropped, and the next frame starts a new file holding every change since the index
    /// file.
    pub(crate) fn append(
        &mut self,
        storage: &dyn Storage,
        store_uid: u128,
        index: &mut Index,
        frame: JournalFrame,
    ) -> Result<()> {
        let Some(base) = index.base().map(|base| base_of(base)) else {
            // No index file to go on top of yet: the first checkpoint writes one.
            return Ok(());
        };
        let starts_file = self.file.is_none();
        let changes = index.take_unjournaled(starts_file && self.carry.is_some());
        // A file's first frame of this writer holds the whole segment table, so that an open
        // can take the file without the frames of one it replaced, and without the rows of
        // what the open replayed past the carried frames.
        let (rows, segments) = index.take_journal_rows(starts_file);
        let bytes =
            encode_journal_frame(base.hash_seed, &frame, rows, &segments, changes.into_iter());
        let result = self.write(storage, store_uid, base, &bytes);
        if result.is_err() {
            self.file = None;
            index.journal_everything();
        }
        result
    }

    fn write(
        &mut self,
        storage: &dyn Storage,
        store_uid: u128,
        base: JournalBase,
        frame: &[u8],
    ) -> Result<()> {
        if self.file.is_none() {
            let tmp = self.path.with_extension("tsj.tmp");
            match storage.remove(&tmp) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &tmp)(err));
                }
                _ => {}
            }
            let file = storage
                .create_new(&tmp)
                .map_err(Error::io("create", &tmp))?;
            let header = JournalHeader { store_uid, base }.encode();
            storage
                .write_at(&file, &tmp, &header, 0)
                .map_err(Error::io("write", &tmp))?;
            let mut end = JOURNAL_HEADER_LEN as u64;
            // Taken whatever happens next: a failure makes the caller journal everything
            // again, the carried changes included.
            if let Some(carried) = self.carry.take() {
                let frames = carried.taken_frames();
                storage
                    .write_at(&file, &tmp, frames, end)
                    .map_err(Error::io("write", &tmp))?;
                end += frames.len() as u64;
            }
            storage
                .rename(&tmp, &self.path)
                .map_err(Error::io("rename into place", &self.path))?;
            self.file = Some((file, end));
            self.named_durably = false;
        }
        let (file, end) = self.file.as_mut().expect("started above");
        storage
            .write_at(file, &self.path, frame, *end)
            .map_err(Error::io("append a frame to", &self.path))?;
        *end += frame.len() as u64;
        Ok(())
    }

    /// Makes every frame appended so far durable, and the file's name the first time. Each
    /// frame claims only data already durable, so a synced frame is one a power cut keeps
    /// and an open takes. Nothing to do before the first frame of an index file. On a
    /// failure the journal is dropped, as when a frame fails to append: a failed sync may
    /// leave pages the kernel no longer holds dirty, so no later sync could vouch for them,
    /// and the next frame starts a new file holding every change since the index file.
    pub(crate) fn sync(&mut self, storage: &dyn Storage, index: &mut Index) -> Result<()> {
        let Some((file, _)) = &self.file else {
            return Ok(());
        };
        let mut synced = storage
            .sync(file, &self.path, SyncKind::Data)
            .map_err(Error::io("sync", &self.path));
        if synced.is_ok() && !self.named_durably {
            let dir = self
                .path
                .parent()
                .expect("the journal lies in the store's directory");
            synced = sync_dir(storage, dir);
            self.named_durably = synced.is_ok();
        }
        if synced.is_err() {
            self.file = None;
            index.journal_everything();
        }
        synced
    }

    /// Forgets the file: a new index file replaced the one its frames go on top of. The
    /// file is removed so that an open does not read it; if the removal is lost in a crash,
    /// the open finds it names another index file and leaves it.
    pub(crate) fn retire(&mut self, storage: &dyn Storage) -> Result<()> {
        self.file = None;
        // The carried frames go on top of the index file just replaced.
        self.carry = None;
        match storage.remove(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &self.path)(err))
            }
            _ => Ok(()),
        }
    }
}

/// Whether `dir` holds a journal: a writer that closed removed it.
pub(crate) fn present(dir: &Path) -> bool {
    dir.join(JOURNAL_FILE).exists()
}

/// What names `base` to its journal.
fn base_of(base: &MappedIndex) -> JournalBase {
    let header = base.header();
    JournalBase {
        hash_seed: header.hash_seed,
        checkpoint: header.checkpoint,
        last_seq: header.last_seq,
    }
}

/// What an open took from the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JournalLoad {
    /// The last frame taken, if any: the replay starts at its position.
    pub(crate) last: Option<JournalFrame>,
    /// Frames taken.
    pub(crate) frames: u64,
    /// Changes those frames held.
    pub(crate) changes: u64,
    /// Why the frames after the last taken were not, when the journal holds more.
    pub(crate) stopped: Option<String>,
}

/// Reads the journal on top of `base` into `index`: every frame in order up to the first
/// that is torn, damaged, of another index file, past `bound` (what a read-only view may
/// read), or that names a position or a segment the store does not hold. The index's counts
/// are the last frame's.
pub(crate) fn load(
    dir: &Path,
    store_uid: u128,
    base: &Arc<MappedIndex>,
    segments: &BTreeMap<u32, SegmentFile>,
    bound: Option<Position>,
    index: &mut Index,
) -> Result<JournalLoad> {
    let path = dir.join(JOURNAL_FILE);
    let mut load = JournalLoad::default();
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(load),
        Err(err) => return Err(Error::io("open", &path)(err)),
    };
    let len = file.metadata().map_err(Error::io("stat", &path))?.len();
    if len < JOURNAL_HEADER_LEN as u64 {
        load.stopped = Some(format!("it is {len} bytes, shorter than its header"));
        return Ok(load);
    }
    #[expect(
        unsafe_code,
        reason = "mapping a file is unsafe; a journal's bytes never change once written"
    )]
    // SAFETY: the mapping is read-only and covers the length read above. A journal is only
    // ever appended to, past what any reader mapped, and replaced by renaming a new file
    // over it; no textstore process rewrites or truncates one in place (docs/FORMAT.md,
    // "index.tsj"). `populate` maps the pages the page cache holds in one call instead of
    // one fault each.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .len(len as usize)
            .populate()
            .map(&file)
    }
    .map_err(Error::io("map", &path))?;
    let wanted = base_of(base);
    match JournalHeader::decode(&map) {
        Ok(header) if header.store_uid == store_uid && header.base == wanted => {}
        Ok(_) => {
            load.stopped = Some("it goes on top of another index file".to_owned());
            return Ok(load);
        }
        Err(err) => {
            load.stopped = Some(err.to_string());
            return Ok(load);
        }
    }
    let holds = |p: Position| {
        segments
            .get(&p.segment)
            .is_some_and(|s| u64::from(p.offset) <= s.file_len())
    };
    // Every frame is checked before any is applied, so that the delta is sized once.
    let mut taken = Vec::new();
    let mut at = wanted.checkpoint;
    for frame in JournalFrames::new(&map, wanted.hash_seed) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                load.stopped = Some(err.to_string());
                break;
            }
        };
        let position = frame.frame.position;
        if bound.is_some_and(|bound| position > bound) {
            break;
        }
        // The puts of a frame mostly name one or two segments: each is looked up once in a
        // row.
        let mut known = None;
        let missing = frame.put_segments().find(|&segment| {
            let held = known == Some(segment) || segments.contains_key(&segment);
            if held {
                known = Some(segment);
            }
            !held
        });
        let past_u32 = frame.end() > u64::from(u32::MAX);
        let problem = if past_u32 {
            Some("the journal is longer than 4 GiB".to_owned())
        } else if position < at {
            Some(format!("its position {position:?} is before {at:?}"))
        } else if !holds(position) {
            Some(format!("its position {position:?} is past the data"))
        } else {
            missing.map(|segment| {
                let document = frame
                    .changes()
                    .find_map(|(_, entry)| entry.filter(|e| e.position.segment == segment))
                    .map(|entry| entry.id.to_string())
                    .unwrap_or_default();
                format!("document {document} is in segment {segment}, which does not exist")
            })
        };
        if let Some(problem) = problem {
            load.stopped = Some(format!("the frame at offset {}: {problem}", frame.offset));
            break;
        }
        at = position;
        taken.push(frame);
    }
    // Where each frame's entries lie, so that the mapping can move into the layer.
    let runs: Vec<(u64, usize)> = taken
        .iter()
        .map(|frame| (frame.entries_offset(), frame.changes().len()))
        .collect();
    let changes: usize = runs.iter().map(|&(_, n)| n).sum();
    load.frames = taken.len() as u64;
    load.changes = changes as u64;
    // The segment table as of the last frame: the index file's, brought forward by each
    // frame's rows.
    let mut table: BTreeMap<u32, u64> = base
        .segments()
        .iter()
        .map(|row| (row.segment, row.live_record_bytes))
        .collect();
    for frame in &taken {
        frame.apply_rows(&mut table);
    }
    let last = taken.pop().map(|frame| frame.frame);
    drop(taken);
    if let Some(frame) = last {
        load.last = Some(frame);
        let layer = JournalLayer::new(map, changes, &runs);
        index.set_journal(Arc::new(layer), &frame, table);
    }
    Ok(load)
}
