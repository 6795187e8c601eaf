//! Segment files: mapped once at full capacity, appended with `pwrite`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as AtomicOrdering};

use bytes::Bytes;
use bytestring::ByteString;
use memmap2::{Advice, Mmap, MmapOptions};
use store_format::{
    Doc, DocId, DocMeta, RECORD_HEADER_LEN, RecordHeader, RecordKind, SEGMENT_HEADER_LEN,
    SealedSegment, SegmentHeader, Text, decode_record, decode_record_header, record_len,
};

use crate::error::{Error, Result};
use crate::options::{AccessPattern, MapSettings, ReadVerification};
use crate::storage::{Storage, SyncKind, WriteBehind, sync_dir};
use crate::verified::Verified;

/// A read-only view of one segment's mapping that can be cloned and sent to other threads.
///
/// The view keeps the mapping alive: a segment that the store has dropped (or that
/// compaction has retired) stays readable through every `SegmentMap` and [`Doc`] that still
/// refers to it. It carries the segment's committed end, which only the engine moves, and
/// only past bytes that are completely written: every read is bounded by it, so no caller
/// can make a view touch bytes that are not yet (or no longer) data.
#[derive(Clone)]
pub struct SegmentMap {
    id: u32,
    path: Arc<Path>,
    /// Every record that starts below this offset is complete, and its bytes never change.
    /// Stored `Release` by the engine after the bytes are written; loaded `Acquire` by every
    /// read, so a reader that sees an end sees the bytes below it.
    committed: Arc<AtomicU32>,
    /// The whole mapping as shared bytes: slicing it costs a reference-count increment.
    bytes: Bytes,
    /// The same mapping, for `madvise`.
    map: Arc<Mapping>,
    /// The records this process has checked: see [`ReadVerification::FirstRead`].
    verified: Arc<Verified>,
    /// Which pages were in memory when last looked at: see [`SegmentMap::refresh_residency`].
    resident: Arc<ResidentPages>,
    /// [`ReadVerification::EveryRead`]: the set is not consulted.
    verify_every_read: bool,
    /// What the segment's header records of the segment sealed right before it.
    sealed_before: Option<SealedSegment>,
    /// Where sequence numbers lie in the segment, as bulk reads learned it.
    seq_marks: Arc<SeqMarks>,
}

/// Where sequence numbers lie in one segment: the offset and sequence number of a record
/// about every [`SeqMarks::STRIDE`] bytes, noted by the walks of bulk reads (the change
/// feed), in increasing order of both (a segment's records rise in sequence, and the bytes
/// below its committed end never change). A change feed starts its walk at the last mark at
/// or below the sequence number it follows from, instead of at the segment's start, so a
/// poll for the latest changes walks a stride per segment, not the whole store. Memory: 16
/// bytes per stride of data walked.
#[derive(Default)]
pub(crate) struct SeqMarks {
    marks: std::sync::Mutex<Vec<(u32, u64)>>,
}

impl SeqMarks {
    /// Bytes between two marks.
    pub(crate) const STRIDE: u32 = 64 << 10;

    /// The last mark whose record has a sequence number at or below `seq`: a walk for the
    /// records after `seq` may start there. Also returns where the next mark is due.
    pub(crate) fn start_for(&self, seq: u64) -> Option<(u32, u64)> {
        let marks = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let after = marks.partition_point(|&(_, at)| at <= seq);
        after.checked_sub(1).map(|i| marks[i])
    }

    /// The offsets of the marks below `end`, last first: where walks for the last records
    /// before `end` may start.
    pub(crate) fn offsets_before(&self, end: u32) -> Vec<u32> {
        let marks = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let after = marks.partition_point(|&(offset, _)| offset < end);
        marks[..after]
            .iter()
            .rev()
            .map(|&(offset, _)| offset)
            .collect()
    }

    /// Notes the record at `offset` with sequence number `seq`, if it lies at least a
    /// stride past the last mark. Returns the offset from which the next note is worth it.
    pub(crate) fn note(&self, offset: u32, seq: u64) -> u32 {
        let mut marks = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = marks
            .last()
            .map_or(0, |&(at, _)| at.saturating_add(Self::STRIDE));
        if offset < due {
            return due;
        }
        debug_assert!(
            marks.last().is_none_or(|&(_, at)| at < seq),
            "records rise in sequence"
        );
        marks.push((offset, seq));
        offset.saturating_add(Self::STRIDE)
    }
}

/// Which pages of a segment were in memory when last looked at (`mincore`), one bit per
/// page, so that a reader that must not block can ask without a system call. The bits go
/// stale as the kernel evicts and reads pages; a stale "resident" costs one read that
/// waits for the disk, a stale "absent" one hand-off to a thread that may block. Relaxed
/// operations: the bits are a hint about memory the reader reaches through the mapping.
struct ResidentPages {
    bits: Box<[AtomicU64]>,
}

impl ResidentPages {
    fn new(capacity: u32) -> ResidentPages {
        let pages = (capacity as usize).div_ceil(rustix::param::page_size());
        ResidentPages {
            bits: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn get(&self, page: usize) -> bool {
        self.bits
            .get(page / 64)
            .is_some_and(|w| w.load(AtomicOrdering::Relaxed) & (1 << (page % 64)) != 0)
    }

    fn set(&self, page: usize, resident: bool) {
        if let Some(w) = self.bits.get(page / 64) {
            let bit = 1 << (page % 64);
            if resident {
                w.fetch_or(bit, AtomicOrdering::Relaxed);
            } else {
                w.fetch_and(!bit, AtomicOrdering::Relaxed);
            }
        }
    }
}

impl SegmentMap {
    /// The segment's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How far the segment is committed: every record that starts below it is complete.
    pub fn committed_end(&self) -> u32 {
        self.committed.load(AtomicOrdering::Acquire)
    }

    /// What the segment's header records of the segment the writer sealed right before
    /// creating it; `None` for the first segment and compaction outputs.
    pub fn sealed_before(&self) -> Option<SealedSegment> {
        self.sealed_before
    }

    /// Where sequence numbers lie in the segment (see [`SeqMarks`]).
    pub(crate) fn seq_marks(&self) -> &SeqMarks {
        &self.seq_marks
    }

    /// The whole mapping; bytes past the committed end must not be touched.
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Checks that the record the index points `id` to is a put of `id`.
    fn expect_put(&self, header: &RecordHeader, id: DocId, offset: u32) -> Result<()> {
        if header.id == id && header.kind == RecordKind::Put {
            return Ok(());
        }
        Err(Error::corrupt(
            self.path(),
            u64::from(offset),
            format!(
                "the index expects a put of document {id}, the record holds {:?} of {} at seq {}",
                header.kind, header.id, header.seq
            ),
        ))
    }

    /// The sequence number and text length of the put record of document `id` at `offset`,
    /// from its header alone: the header's fields are checked, its checksum (which covers
    /// the text) is not, and a read of the text verifies it.
    pub fn read_meta(&self, id: DocId, offset: u32) -> Result<DocMeta> {
        let data = &self.bytes[..self.committed_end() as usize];
        let header = decode_record_header(data, offset as usize)
            .map_err(|err| Error::format(self.path(), 0, &err))?;
        self.expect_put(&header, id, offset)?;
        Ok(DocMeta {
            seq: header.seq,
            text_len: u64::from(header.payload_len),
        })
    }

    /// Reads the put record of document `id` at `offset`, looking at no byte at or past the
    /// committed end (bytes past it may be unwritten, and pages past the file's length must
    /// never be touched). The first read of a record
    /// in this process checks every byte of it (CRC32C, id, kind, UTF-8), so damage is an
    /// error and never wrong text; later reads check its header's fields, unless the store
    /// was opened with [`ReadVerification::EveryRead`].
    pub fn read_doc(&self, id: DocId, offset: u32) -> Result<Doc> {
        let (seq, text) = self.checked_text(id, offset)?;
        #[expect(
            unsafe_code,
            reason = "the text was checked as UTF-8 once; it is not checked again"
        )]
        // SAFETY: `checked_text` returns the range of a text that this process checked as
        // UTF-8 (now, or when it first read, wrote, copied or replayed the record: the
        // record's bit is set only then), and the bytes below the committed end of a mapped
        // segment never change: the engine only appends past the end, and the store's lock
        // keeps other writers out (see `SegmentFile::map`). A disk that changes bytes under
        // the mapping breaks that promise for every `Text` already held, checked again or
        // not; the scrub and `Store::verify` exist to find such damage.
        let text = Text::from_byte_string(unsafe {
            ByteString::from_bytes_unchecked(self.bytes.slice(text))
        });
        Ok(Doc::new(seq, text))
    }

    /// Calls `read(seq, text)` with the text of the put record of document `id` at
    /// `offset`, borrowed from the mapping: the checks of [`SegmentMap::read_doc`] without
    /// the shared handle it returns, so without touching the mapping's reference count (a
    /// cache line every reader thread would share).
    pub fn with_text<R>(
        &self,
        id: DocId,
        offset: u32,
        read: impl FnOnce(u64, &str) -> R,
    ) -> Result<R> {
        let (seq, text) = self.checked_text(id, offset)?;
        #[expect(
            unsafe_code,
            reason = "the text was checked as UTF-8 once; it is not checked again"
        )]
        // SAFETY: as in `read_doc`: the range is a text this process checked as UTF-8, in
        // bytes that never change while the mapping, which `self` holds, lives.
        let text = unsafe { std::str::from_utf8_unchecked(&self.bytes[text]) };
        Ok(read(seq, text))
    }

    /// The sequence number and byte range of the text of the put record of document `id`
    /// at `offset`, checked as [`SegmentMap::read_doc`] says: whole on the first read of the
    /// record in this process, by its header's fields after.
    fn checked_text(&self, id: DocId, offset: u32) -> Result<(u64, std::ops::Range<usize>)> {
        let end = self.committed_end();
        let data = &self.bytes[..end as usize];
        let start = offset as usize + RECORD_HEADER_LEN;
        if !self.verify_every_read && self.verified.contains(offset) {
            let header = decode_record_header(data, offset as usize)
                .map_err(|err| Error::format(self.path(), 0, &err))?;
            self.expect_put(&header, id, offset)?;
            let text_end = start + header.payload_len as usize;
            if text_end > data.len() {
                return Err(Error::corrupt(
                    self.path(),
                    u64::from(offset),
                    format!("the record of document {id} runs past the committed end {end}"),
                ));
            }
            return Ok((header.seq, start..text_end));
        }
        let record = decode_record(data, offset as usize)
            .map_err(|err| Error::format(self.path(), 0, &err))?;
        let header = record.header;
        self.expect_put(&header, id, offset)?;
        if let Err(err) = simdutf8::compat::from_utf8(record.payload) {
            return Err(Error::corrupt(
                self.path(),
                (start + err.valid_up_to()) as u64,
                format!("the text of document {id} is not UTF-8"),
            ));
        }
        self.verified.insert(offset);
        Ok((header.seq, start..start + record.payload.len()))
    }

    /// The set of records this process has checked, shared by every clone of the view.
    pub(crate) fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The same set, held apart from the view.
    pub(crate) fn shared_verified(&self) -> Arc<Verified> {
        Arc::clone(&self.verified)
    }

    /// Whether every page of the record at `offset` is in memory, so that reading it takes no
    /// page fault that waits on the disk. A hint for callers that must not block (an async
    /// runtime's worker): the kernel may evict a page right after, and a damaged header only
    /// makes the answer wrong, never the read, which checks everything.
    ///
    /// One `mincore` call covers the record's first 16 KiB: its header is read only once its
    /// pages are known to be in memory, and a record longer than that takes a second call.
    pub fn is_resident(&self, offset: u32) -> Result<bool> {
        const WINDOW: usize = 16 << 10;
        let end = self.committed_end();
        let start = offset as usize;
        let header_end = start + RECORD_HEADER_LEN;
        if header_end > end as usize {
            // Not a record the read can find: it fails without touching the disk.
            return Ok(true);
        }
        let window_end = (start + WINDOW).min(end as usize);
        let pages = self.resident_pages(start..window_end)?;
        let first_page = (self.map.as_ptr() as usize + start) / rustix::param::page_size();
        let page_of = |at: usize| {
            (self.map.as_ptr() as usize + at - 1) / rustix::param::page_size() - first_page
        };
        if !pages[..=page_of(header_end)]
            .iter()
            .all(|&resident| resident)
        {
            return Ok(false);
        }
        let record_end = self.record_end(end, offset);
        if record_end <= window_end {
            return Ok(pages[..=page_of(record_end)]
                .iter()
                .all(|&resident| resident));
        }
        Ok(pages.iter().all(|&resident| resident)
            && self
                .resident_pages(window_end..record_end)?
                .iter()
                .all(|&resident| resident))
    }

    /// Looks at which committed pages are in memory (one `mincore` call) and remembers it
    /// for [`SegmentMap::was_resident`]. Call it off the path of reads that must not block:
    /// it costs a system call and a byte per page.
    pub fn refresh_residency(&self) -> Result<()> {
        let pages = self.resident_pages(0..self.committed_end() as usize)?;
        for (page, resident) in pages.into_iter().enumerate() {
            self.resident.set(page, resident);
        }
        Ok(())
    }

    /// Whether every page of the record at `offset` was in memory at the last
    /// [`SegmentMap::refresh_residency`] (or [`SegmentMap::note_resident`]): a memory access
    /// per page, no system call. The record's length is read from its header only once the
    /// header's page is believed resident. A hint, as [`SegmentMap::is_resident`] is, and
    /// staler.
    pub fn was_resident(&self, offset: u32) -> bool {
        let end = self.committed_end();
        let page = rustix::param::page_size();
        let start = offset as usize;
        let header_end = start + RECORD_HEADER_LEN;
        if header_end > end as usize {
            return true;
        }
        if !(start / page..=(header_end - 1) / page).all(|p| self.resident.get(p)) {
            return false;
        }
        let record_end = self.record_end(end, offset);
        (header_end / page..=(record_end.max(header_end) - 1) / page).all(|p| self.resident.get(p))
    }

    /// Remembers that the pages of the record at `offset` are in memory: a read of it has
    /// just touched them all.
    pub fn note_resident(&self, offset: u32) {
        let end = self.committed_end();
        let page = rustix::param::page_size();
        let start = offset as usize;
        let record_end = self.record_end(end, offset).max(start + 1);
        for p in start / page..=(record_end - 1) / page {
            self.resident.set(p, true);
        }
    }

    /// Asks the kernel to start reading `len` bytes from `offset` into memory
    /// (`madvise(WILLNEED)`), without waiting for them. Bytes past the committed end are left
    /// out.
    ///
    /// One call is made per 128 KiB: the kernel reads at most its readahead window (or the
    /// device's largest request, if larger) of the range one call names, and drops the rest
    /// (`force_page_cache_ra`), so a long record asked for in one call would be read only in
    /// part.
    pub fn will_need(&self, offset: u32, len: u32) -> Result<()> {
        let stop = (u64::from(offset) + u64::from(len)).min(u64::from(self.committed_end()));
        let mut at = u64::from(offset);
        while at < stop {
            let step = (stop - at).min(WILL_NEED_STEP);
            self.map
                .advise_range(Advice::WillNeed, at as usize, step as usize)
                .map_err(Error::io("madvise(WILLNEED)", self.path()))?;
            at += step;
        }
        Ok(())
    }

    /// Asks the kernel to read the record at `offset` ahead ([`SegmentMap::will_need`]). Its
    /// header is read to learn its length, which may wait for that page.
    pub fn will_need_record(&self, offset: u32) -> Result<()> {
        let len = self
            .record_end(self.committed_end(), offset)
            .saturating_sub(offset as usize);
        self.will_need(offset, u32::try_from(len).unwrap_or(u32::MAX))
    }

    /// Where the record at `offset` ends by its header's length, bounded by `end`.
    fn record_end(&self, end: u32, offset: u32) -> usize {
        let start = offset as usize;
        let Some(len) = self.bytes[..end as usize].get(start + 8..start + 12) else {
            return start;
        };
        let payload_len = u32::from_le_bytes(len.try_into().expect("four bytes"));
        (start as u64 + record_len(payload_len)).min(u64::from(end)) as usize
    }

    /// Whether each page that holds part of `range` of the mapping is in memory, in order.
    fn resident_pages(&self, range: std::ops::Range<usize>) -> Result<Vec<bool>> {
        let page = rustix::param::page_size();
        let base = self.map.as_ptr() as usize;
        let first = (base + range.start) / page * page;
        let last = (base + range.end).div_ceil(page) * page;
        let mut state = vec![0u8; (last - first) / page];
        #[expect(
            unsafe_code,
            reason = "mincore has no safe wrapper in our dependencies"
        )]
        // SAFETY: `[first, last)` lies within this mapping (the range is within it, and the
        // mapping starts on a page boundary and spans whole pages), which `self.map` keeps
        // alive for the call; `state` has one byte for each of its pages, as mincore writes.
        let rc =
            unsafe { libc::mincore(first as *mut libc::c_void, last - first, state.as_mut_ptr()) };
        if rc != 0 {
            return Err(Error::io("mincore", self.path())(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(state.iter().map(|&page| page & 1 == 1).collect())
    }
}

/// The most bytes one `madvise(WILLNEED)` asks for ([`SegmentMap::will_need`]): the
/// kernel's default readahead window. A call reads at most the larger of the window and
/// the device's largest request, which only a window set below its default brings under
/// this.
const WILL_NEED_STEP: u64 = 128 << 10;

/// One segment file, mapped read-only at its full capacity.
///
/// The mapping never changes for the life of the `SegmentFile`, so a [`Bytes`] sliced out of
/// it (and the [`store_format::Text`] handles built on that) stays valid after the store has
/// moved on, rolled to a new segment or been dropped.
pub(crate) struct SegmentFile {
    view: SegmentMap,
    file: File,
    /// Every change to the file goes through it.
    storage: Arc<dyn Storage>,
    map: Arc<Mapping>,
    capacity: u32,
    /// End of the data readers may touch; grows as commits land.
    end: u32,
    /// Bytes of the file that exist on disk; `end <= file_len`.
    file_len: u64,
    /// Bytes of the file below which every byte was written before by an earlier segment
    /// that the file held, past the data too: space whose flush needs no extent conversion,
    /// which the zeroing thread leaves alone. 0 for a file no earlier segment held.
    written_len: u64,
    /// For a file an earlier segment held: the durable write limit, which no record of this
    /// segment passes until a later one is durable (`limit.rs`). The header's length until
    /// the writer writes one.
    write_limit: Option<u32>,
}

/// A segment's mapping, and for a read-only handle the file description that holds its
/// shared lock: the lock tells a writer that this process maps the file, so that the file
/// is not written over as a new segment ([`SegmentFile::reuse`]). It lasts as long as any
/// read of the mapping (a [`Doc`] keeps the mapping alive), not only as long as the handle.
pub(crate) struct Mapping {
    map: Mmap,
    _shared_lock: Option<File>,
}

impl std::ops::Deref for Mapping {
    type Target = Mmap;

    fn deref(&self) -> &Mmap {
        &self.map
    }
}

/// A segment that compaction replaced, kept until no reader holds its mapping.
pub(crate) struct Retired {
    pub(crate) id: u32,
    pub(crate) path: PathBuf,
    pub(crate) mapping: std::sync::Weak<Mapping>,
    /// `checkpoint_plans` when the compaction was installed: the segment may go once a
    /// checkpoint planned after that is installed, since until then the index file on disk
    /// may point into it (and an open moves such entries to the copies).
    pub(crate) retired_after_plan: u64,
    /// Its file may become a spare ([`crate::StoreOptions::spare_files`]): the compaction
    /// that replaced it was due by its policy, not asked for space.
    pub(crate) may_be_spare: bool,
}

/// Keeps a mapping alive for as long as any [`Bytes`] slices it.
struct MapOwner(Arc<Mapping>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0.map
    }
}

impl SegmentFile {
    /// Creates a new, empty segment file and makes its existence durable.
    pub(crate) fn create(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        header: SegmentHeader,
        settings: MapSettings,
    ) -> Result<SegmentFile> {
        let path = dir.join(crate::layout::segment_file_name(header.segment_id));
        let segment = SegmentFile::create_at(storage, path, header, settings)?;
        sync_dir(storage.as_ref(), dir)?;
        Ok(segment)
    }

    /// Creates a new, empty segment file at `path` with a durable header, leaving the
    /// directory entry unsynced: compaction writes its outputs under a temporary name and
    /// syncs the directory once they are renamed into place.
    pub(crate) fn create_at(
        storage: &Arc<dyn Storage>,
        path: PathBuf,
        header: SegmentHeader,
        settings: MapSettings,
    ) -> Result<SegmentFile> {
        let file = storage
            .create_new(&path)
            .map_err(Error::io("create segment", &path))?;
        storage
            .write_at(&file, &path, &header.encode(), 0)
            .map_err(Error::io("write segment header", &path))?;
        storage
            .sync(&file, &path, SyncKind::All)
            .map_err(Error::io("sync", &path))?;
        let storage = Arc::clone(storage);
        SegmentFile::map(
            storage,
            path,
            file,
            header,
            SEGMENT_HEADER_LEN as u64,
            settings,
            None,
        )
    }

    /// Writes segment `header` over the spare file `spare` (a retired segment's file, kept
    /// for its written space) and gives the file the segment's name, durably. `Ok(None)`,
    /// changing nothing, when a process maps the file: a read-only handle holds a shared
    /// lock on every segment file it maps, and the writer takes the file only with the
    /// exclusive lock, which it holds until the header and the name are in place. A reader
    /// that opens the file by its old name after that finds another segment's header, and
    /// the name gone ([`SegmentFile::open`]).
    ///
    /// The bytes past the header stay those of the earlier segment until commits write over
    /// them; `header` must say so (`reuses_file`), and every record among them is at or below
    /// the floor it records, since every record ever written was when the header was made.
    pub(crate) fn reuse(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        spare: &Path,
        header: SegmentHeader,
        settings: MapSettings,
    ) -> Result<Option<SegmentFile>> {
        debug_assert!(header.sealed_before.is_some_and(|s| s.reuses_file));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(spare)
            .map_err(Error::io("open spare segment file", spare))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(Error::io("lock spare segment file", spare)(err));
            }
        }
        let file_len = file.metadata().map_err(Error::io("stat", spare))?.len();
        if file_len < SEGMENT_HEADER_LEN as u64 || file_len > u64::from(header.capacity) {
            return Err(Error::corrupt(
                spare,
                0,
                format!(
                    "a spare segment file of {file_len} bytes, outside {SEGMENT_HEADER_LEN}..={}",
                    header.capacity
                ),
            ));
        }
        storage
            .write_at(&file, spare, &header.encode(), 0)
            .map_err(Error::io("write segment header", spare))?;
        storage
            .sync(&file, spare, SyncKind::Data)
            .map_err(Error::io("sync", spare))?;
        let path = dir.join(crate::layout::segment_file_name(header.segment_id));
        storage
            .rename(spare, &path)
            .map_err(Error::io("rename", spare))?;
        sync_dir(storage.as_ref(), dir)?;
        file.unlock().map_err(Error::io("unlock", &path))?;
        let mut segment = SegmentFile::map(
            Arc::clone(storage),
            path,
            file,
            header,
            file_len,
            settings,
            None,
        )?;
        segment.set_end(SEGMENT_HEADER_LEN as u32);
        Ok(Some(segment))
    }

    /// Opens an existing segment file and checks its header against the store; for
    /// writing too when `writable`.
    pub(crate) fn open(
        storage: &Arc<dyn Storage>,
        path: PathBuf,
        id: u32,
        store_uid: u128,
        settings: MapSettings,
        writable: bool,
    ) -> Result<SegmentFile> {
        #[cfg(feature = "fault-injection")]
        if !writable {
            crate::sync_point::reached(crate::sync_point::SyncPoint::ReaderOpensSegment, &path);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(Error::io("open segment", &path))?;
        SegmentFile::open_file(storage, path, file, id, store_uid, settings, writable)
    }

    /// [`SegmentFile::open`] of `file`, opened by `path`: what follows the open, apart so
    /// that a test can give the file to a new segment in between, as the writer may.
    fn open_file(
        storage: &Arc<dyn Storage>,
        path: PathBuf,
        file: File,
        id: u32,
        store_uid: u128,
        settings: MapSettings,
        writable: bool,
    ) -> Result<SegmentFile> {
        // A reader's shared lock, before it reads anything: while it is held, the writer does
        // not write the file over as a new segment ([`SegmentFile::reuse`]).
        let shared_lock = if writable {
            None
        } else {
            file.lock_shared()
                .map_err(Error::io("lock segment file shared", &path))?;
            Some(file.try_clone().map_err(Error::io("duplicate", &path))?)
        };
        let file_len = file.metadata().map_err(Error::io("stat", &path))?.len();
        let mut raw = [0u8; SEGMENT_HEADER_LEN];
        let got = read_prefix(&file, &mut raw).map_err(Error::io("read segment header", &path))?;
        let header =
            SegmentHeader::decode(&raw[..got]).map_err(|err| Error::format(&path, 0, &err))?;
        if header.store_uid != store_uid {
            return Err(Error::corrupt(
                &path,
                16,
                format!(
                    "segment belongs to store {:032x}, not this store {store_uid:032x}",
                    header.store_uid
                ),
            ));
        }
        if header.segment_id != id && !writable && !names_file(&path, &file) {
            // The writer gave the file to a new segment after this open found it by its old
            // name: the segment it looked for is gone.
            return Err(Error::io("open segment", &path)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the file now holds segment {}, under another name",
                    header.segment_id
                ),
            )));
        }
        if header.segment_id != id {
            return Err(Error::corrupt(
                &path,
                12,
                format!(
                    "segment header says id {}, the file name says {id}",
                    header.segment_id
                ),
            ));
        }
        if file_len > u64::from(header.capacity) {
            return Err(Error::corrupt(
                &path,
                u64::from(header.capacity),
                format!(
                    "file is {file_len} bytes, over the segment capacity {}",
                    header.capacity
                ),
            ));
        }
        let storage = Arc::clone(storage);
        SegmentFile::map(storage, path, file, header, file_len, settings, shared_lock)
    }

    fn map(
        storage: Arc<dyn Storage>,
        path: PathBuf,
        file: File,
        header: SegmentHeader,
        file_len: u64,
        settings: MapSettings,
        shared_lock: Option<File>,
    ) -> Result<SegmentFile> {
        let (id, capacity) = (header.segment_id, header.capacity);
        #[expect(
            unsafe_code,
            reason = "mapping a file is unsafe; the store's lock keeps it sound"
        )]
        // SAFETY: the mapping is read-only and the engine never changes bytes a reader can
        // reach: it appends past `end` with pwrite, and shrinks the file only beyond `end`
        // (recovery of a torn tail, sealing), and `end` only moves past bytes once they are
        // completely written. Other writers are kept out by the store's exclusive lock (the
        // `LOCK` file), which every writing handle takes before mapping; a process that
        // ignores the lock and writes the files breaks this promise, as documented in
        // docs/FORMAT.md. A file is written over as a new segment (`reuse`) only once this
        // process maps it no more (a retired segment goes to the spares when its mapping is
        // gone) and under its exclusive `flock`, which the shared `flock` each read-only
        // handle holds on a file it maps, for as long as the mapping lives, excludes. Pages
        // past the file's length are never touched: every read is bounded by
        // `end <= file_len`.
        let map = unsafe {
            MmapOptions::new()
                .len(capacity as usize)
                .map(&file)
                .map_err(Error::io("map segment", &path))?
        };
        // A new mapping's advice is already `Normal`: only the others cost a system call.
        let advice = match settings.access {
            AccessPattern::Normal => None,
            AccessPattern::Sequential => Some(Advice::Sequential),
            AccessPattern::Random => Some(Advice::Random),
        };
        if let Some(advice) = advice {
            map.advise(advice).map_err(Error::io("madvise", &path))?;
        }
        let map = Arc::new(Mapping {
            map,
            _shared_lock: shared_lock,
        });
        let bytes = Bytes::from_owner(MapOwner(Arc::clone(&map)));
        let end = u32::try_from(file_len.max(SEGMENT_HEADER_LEN as u64)).unwrap_or(capacity);
        // A file an earlier segment held is written up to its length; any other is written
        // up to its data, and preallocated (unwritten) past it.
        let reuses_file = header.sealed_before.is_some_and(|s| s.reuses_file);
        let written_len = if reuses_file { file_len } else { 0 };
        Ok(SegmentFile {
            view: SegmentMap {
                id,
                path: path.into(),
                committed: Arc::new(AtomicU32::new(end)),
                bytes,
                map: Arc::clone(&map),
                verified: Arc::new(Verified::new(capacity)),
                resident: Arc::new(ResidentPages::new(capacity)),
                verify_every_read: settings.verification == ReadVerification::EveryRead,
                sealed_before: header.sealed_before,
                seq_marks: Arc::default(),
            },
            file,
            storage,
            map,
            capacity,
            end,
            file_len,
            written_len,
            write_limit: reuses_file.then_some(SEGMENT_HEADER_LEN as u32),
        })
    }

    /// What the header records of the segment sealed before this one was created.
    pub(crate) fn sealed_before(&self) -> Option<SealedSegment> {
        self.view.sealed_before
    }

    pub(crate) fn id(&self) -> u32 {
        self.view.id
    }

    /// Renames the file (through the storage) and keeps the view's path in step. The
    /// directory is not synced.
    pub(crate) fn rename(&mut self, to: PathBuf) -> Result<()> {
        self.storage
            .rename(self.path(), &to)
            .map_err(Error::io("rename", self.path()))?;
        self.view.path = to.into();
        Ok(())
    }

    /// Tells whether any reader still holds the mapping, once this handle is gone.
    pub(crate) fn watch_mapping(&self) -> std::sync::Weak<Mapping> {
        Arc::downgrade(&self.map)
    }

    /// Sequence number of the first record, the lowest of the segment (records of a
    /// segment are in increasing sequence order); `None` when it holds none.
    pub(crate) fn first_seq(&self) -> Result<Option<u64>> {
        if self.end as usize <= SEGMENT_HEADER_LEN {
            return Ok(None);
        }
        decode_record_header(self.data(), SEGMENT_HEADER_LEN)
            .map(|header| Some(header.seq))
            .map_err(|err| Error::format(self.path(), 0, &err))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.view.path
    }

    /// A shareable view of the mapping.
    pub(crate) fn view(&self) -> &SegmentMap {
        &self.view
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    pub(crate) fn end(&self) -> u32 {
        self.end
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The bytes readers may look at: the header and every committed record.
    pub(crate) fn data(&self) -> &[u8] {
        &self.view.bytes[..self.end as usize]
    }

    /// The whole file as it is on disk, for recovery scans past the committed end.
    pub(crate) fn file_bytes(&self) -> &[u8] {
        &self.view.bytes[..self.file_len as usize]
    }

    /// Where the file's last stretch of data ends, at or after `from`: past it the file
    /// system holds only holes (preallocated space never written, which reads as zeros), so
    /// that a recovery scan of the newest segment need not fault in and compare megabytes of
    /// zeros. The file's length where the file system does not say (no `SEEK_HOLE`), or when
    /// the file alternates between data and holes more than a few times.
    pub(crate) fn data_end_after(&self, from: usize) -> usize {
        use rustix::fs::{SeekFrom, seek};
        let len = self.file_len;
        let mut at = (from as u64).min(len);
        if at == len {
            // Nothing past the start (a segment trimmed at a close): nothing to ask.
            return len as usize;
        }
        for _ in 0..16 {
            let hole = match seek(&self.file, SeekFrom::Hole(at)) {
                Ok(hole) if hole < len => hole,
                _ => return len as usize,
            };
            match seek(&self.file, SeekFrom::Data(hole)) {
                Ok(data) if data < len => at = data,
                Ok(_) | Err(rustix::io::Errno::NXIO) => return hole as usize,
                Err(_) => return len as usize,
            }
        }
        len as usize
    }

    /// The mapping's first `end` bytes (at most the capacity), whatever length this handle
    /// last saw the file at: for a reader of a store whose live writer published that
    /// everything below `end` is written.
    pub(crate) fn bytes_to(&self, end: u32) -> &[u8] {
        &self.view.bytes[..(end.min(self.capacity)) as usize]
    }

    /// Looks at the file's length again: a reader's segment that the writer has grown, or
    /// sealed and trimmed, since this handle opened it.
    pub(crate) fn restat(&mut self) -> Result<()> {
        let len = self
            .file
            .metadata()
            .map_err(Error::io("stat", self.path()))?
            .len();
        self.file_len = len.min(u64::from(self.capacity));
        Ok(())
    }

    /// The durable write limit of a segment whose file an earlier segment held; `None` for
    /// any other segment, which needs none.
    pub(crate) fn write_limit(&self) -> Option<u32> {
        self.write_limit
    }

    /// Records that `limit` is durable as the segment's write limit.
    pub(crate) fn set_write_limit(&mut self, limit: u32) {
        debug_assert!(self.write_limit.is_some(), "only a reused file has a limit");
        self.write_limit = Some(limit);
    }

    /// Moves the committed end; recovery uses it once it has verified the records before.
    /// Sets where the segment's data ends (recovery, or a reader catching up with its
    /// writer): every byte below it is complete, and readers may reach it.
    pub(crate) fn set_end(&mut self, end: u32) {
        debug_assert!(
            u64::from(end) <= self.file_len,
            "end {end} file_len {} {}",
            self.file_len,
            self.path().display()
        );
        self.end = end;
        self.commit_end();
    }

    /// Asks the kernel to read the segment's data ahead, header and all.
    pub(crate) fn prefetch(&self) -> Result<()> {
        self.view.will_need(0, self.end)
    }

    /// Writes `data` at the committed end. The bytes are not visible to readers until
    /// [`Self::publish`]; the caller has reserved the space with [`Self::reserve`].
    pub(crate) fn write_at_end(&self, data: &[u8]) -> Result<()> {
        debug_assert!(u64::from(self.end) + data.len() as u64 <= self.file_len);
        self.storage
            .write_at(&self.file, self.path(), data, u64::from(self.end))
            .map_err(Error::io("write", self.path()))
    }

    /// Writes `bufs`, one after another, at `offset`, at or past the committed end. Like
    /// [`Self::write_at_end`], the bytes are not visible until published.
    pub(crate) fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>], offset: u64) -> Result<()> {
        debug_assert!(offset >= u64::from(self.end));
        debug_assert!(offset + bufs.iter().map(|b| b.len() as u64).sum::<u64>() <= self.file_len);
        self.storage
            .write_vectored_at(&self.file, self.path(), bufs, offset)
            .map_err(Error::io("write", self.path()))
    }

    /// Starts the write-back of what was written up to `end`, not yet synced, once a step
    /// of it waits ([`WriteBehind`]): for a large commit, and for a compaction's output.
    pub(crate) fn write_behind(&self, behind: &mut WriteBehind, end: u64) -> Result<()> {
        behind
            .written_to(self.storage.as_ref(), &self.file, self.path(), end)
            .map_err(Error::io("start writing back", self.path()))
    }

    /// What the zeroing thread needs to zero this segment's preallocated space ahead of the
    /// writer; `None` when the file descriptor cannot be duplicated.
    pub(crate) fn zero_target(&self) -> Option<crate::zero::ZeroTarget> {
        Some(crate::zero::ZeroTarget {
            segment: self.id(),
            file: self.file.try_clone().ok()?,
            path: self.path().to_path_buf(),
            storage: Arc::clone(&self.storage),
            end: u64::from(self.end),
            written: self.written_len,
            allocated: self.file_len,
        })
    }

    /// Bytes free for this process on the segment's file system.
    pub(crate) fn free_disk_bytes(&self) -> Result<u64> {
        self.storage
            .available_bytes(&self.file, self.path())
            .map_err(Error::io("statvfs", self.path()))
    }

    /// Makes `len` more bytes, already written, visible to readers.
    pub(crate) fn publish(&mut self, len: u32) {
        self.end += len;
    }

    /// Lets readers reach every byte written so far: the commit that wrote them is complete
    /// (and durable, when the store syncs each commit). Until then, the bytes past the last
    /// committed end may still be cut back, and no read touches them.
    pub(crate) fn commit_end(&self) {
        self.view.committed.store(self.end, AtomicOrdering::Release);
    }

    /// Bytes of the segment's records: everything past its header up to the end.
    pub(crate) fn record_bytes(&self) -> u64 {
        u64::from(self.end) - SEGMENT_HEADER_LEN as u64
    }

    /// Bytes still free in the segment.
    pub(crate) fn remaining(&self) -> u64 {
        u64::from(self.capacity) - u64::from(self.end)
    }

    /// Ensures the file has allocated space for `len` more bytes past the end, growing it by
    /// a step that is small for a small store and a small fraction of a large one.
    pub(crate) fn reserve(&mut self, len: u64) -> Result<()> {
        let needed = u64::from(self.end) + len;
        if needed <= self.file_len {
            return Ok(());
        }
        let step = (u64::from(self.end) / 64).clamp(1 << 20, 16 << 20);
        let target = needed
            .saturating_add(step)
            .min(u64::from(self.capacity))
            .max(needed);
        let allocated = match self.allocate(target) {
            // The growth step does not fit, the commit itself may: a nearly full disk still
            // takes writes until it is truly full.
            Err(err) if err.kind() == std::io::ErrorKind::StorageFull && target > needed => {
                self.allocate(needed).map(|()| needed)
            }
            result => result.map(|()| target),
        };
        self.file_len = allocated.map_err(Error::io("preallocate", self.path()))?;
        Ok(())
    }

    /// Ensures the file has allocated space for exactly `len` more bytes past the end: for a
    /// segment whose final size is known (a compaction output).
    pub(crate) fn reserve_exact(&mut self, len: u64) -> Result<()> {
        let needed = u64::from(self.end) + len;
        if needed > self.file_len {
            self.allocate(needed)
                .map_err(Error::io("preallocate", self.path()))?;
            self.file_len = needed;
        }
        Ok(())
    }

    /// Makes every byte written, and the file's length, durable (`fsync`).
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.storage
            .sync(&self.file, self.path(), SyncKind::All)
            .map_err(Error::io("sync", self.path()))
    }

    /// Removes the file (through the storage). The mapping stays readable.
    pub(crate) fn remove_file(&self) -> Result<()> {
        self.storage
            .remove(self.path())
            .map_err(Error::io("remove", self.path()))
    }

    /// Preallocates the file from its length up to `to` bytes.
    fn allocate(&self, to: u64) -> std::io::Result<()> {
        self.storage
            .allocate(&self.file, self.path(), self.file_len, to)
    }

    /// `fdatasync`: every byte written so far is durable.
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.storage
            .sync(&self.file, self.path(), SyncKind::Data)
            .map_err(Error::io("sync", self.path()))
    }

    /// Gives back the space allocated past the committed end and makes the new length
    /// durable. Recovery uses it to cut a torn tail and unused preallocation.
    pub(crate) fn trim(&mut self) -> Result<()> {
        if self.file_len == u64::from(self.end) {
            return Ok(());
        }
        self.storage
            .set_len(&self.file, self.path(), u64::from(self.end))
            .map_err(Error::io("truncate", self.path()))?;
        self.file_len = u64::from(self.end);
        self.written_len = self.written_len.min(self.file_len);
        self.storage
            .sync(&self.file, self.path(), SyncKind::All)
            .map_err(Error::io("sync", self.path()))
    }

    /// Makes every committed byte durable and gives back unused preallocation: the segment
    /// will receive no more writes (it is full, or the store is closing).
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.sync_data()?;
        self.trim()
    }

    /// Undoes a write that failed or whose sync failed: moves the end back to
    /// `committed_end`, where the segment's last durable commit ended, and cuts the file
    /// there, so that the write's bytes cannot surface as a committed group on the next open.
    /// Best effort: the store is poisoned either way, and an open makes durable what it
    /// finds (or cuts it, when it is torn).
    pub(crate) fn discard_since(&mut self, committed_end: u32) -> Result<()> {
        debug_assert!(committed_end <= self.end);
        debug_assert!(committed_end >= self.view.committed_end());
        self.end = committed_end;
        self.trim()
    }
}

/// Whether `path` still names the file `file` has open (the same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => (named.dev(), named.ino()) == (open.dev(), open.ino()),
        _ => false,
    }
}

fn read_prefix(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::StoreOptions;
    use crate::storage::OsStorage;

    /// The operating system's storage and the default mapping settings.
    fn os() -> (Arc<dyn Storage>, MapSettings) {
        (Arc::new(OsStorage), StoreOptions::new().map_settings())
    }

    fn header(id: u32, reuses_file: bool) -> SegmentHeader {
        SegmentHeader {
            segment_id: id,
            store_uid: 7,
            capacity: 1 << 20,
            sealed_before: Some(SealedSegment {
                segment_id: id - 1,
                len_bytes: 64,
                last_seq: 0,
                commit_continues: false,
                reuses_file,
            }),
        }
    }

    /// A new segment holding `records` (kind, document, text), one commit each, sequence
    /// numbers from 1, committed: the segment and each record's offset.
    fn segment_of(dir: &Path, records: &[(RecordKind, u64, &[u8])]) -> (SegmentFile, Vec<u32>) {
        let (storage, settings) = os();
        let mut segment = SegmentFile::create(&storage, dir, header(2, false), settings).unwrap();
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        for (seq, &(kind, id, text)) in (1..).zip(records) {
            offsets.push(segment.end() + buf.len() as u32);
            let len = record_len(text.len() as u32) as u32;
            store_format::encode_record(&mut buf, kind, DocId::from(id), seq, text, Some(len));
        }
        segment.reserve(buf.len() as u64).unwrap();
        segment.write_at_end(&buf).unwrap();
        segment.publish(buf.len() as u32);
        segment.commit_end();
        (segment, offsets)
    }

    /// The place and reason of a corruption error.
    fn corrupt_at(err: &Error) -> (u64, String) {
        match err {
            Error::Corrupt { offset, what, .. } => (*offset, what.clone()),
            other => panic!("not corruption: {other}"),
        }
    }

    /// Every read checks that the record at the offset it is given is a put of the
    /// document it asks for, whether this process checked the record before or not: a put
    /// of another document, or the document's own tombstone, is damage at that offset.
    #[test]
    fn a_read_refuses_a_record_that_is_not_a_put_of_its_document() {
        let dir = tempfile::tempdir().unwrap();
        let records: [(RecordKind, u64, &[u8]); 2] = [
            (RecordKind::Put, 1, b"alpha"),
            (RecordKind::Tombstone, 2, b""),
        ];
        let (segment, at) = segment_of(dir.path(), &records);
        let view = segment.view();
        let (one, two) = (DocId::from(1u64), DocId::from(2u64));
        let expects = |id: DocId| format!("the index expects a put of document {id}");
        for checked_before in [false, true] {
            assert_eq!(view.verified().contains(at[0]), checked_before);
            let err = view.read_doc(two, at[0]).expect_err("a put of document 1");
            let (offset, what) = corrupt_at(&err);
            assert_eq!(offset, u64::from(at[0]));
            assert!(what.starts_with(&expects(two)), "{what}");
            let err = view.with_text(two, at[0], |_, _| ()).expect_err("the same");
            assert!(corrupt_at(&err).1.starts_with(&expects(two)), "{err}");
            let err = view.read_meta(two, at[0]).expect_err("the same");
            assert!(corrupt_at(&err).1.starts_with(&expects(two)), "{err}");
            assert_eq!(view.read_doc(one, at[0]).unwrap().text().as_str(), "alpha");
        }
        for checked_before in [false, true] {
            if checked_before {
                view.verified().insert(at[1]);
            }
            let err = view.read_doc(two, at[1]).expect_err("a tombstone");
            assert_eq!(
                corrupt_at(&err),
                (
                    u64::from(at[1]),
                    format!(
                        "{}, the record holds Tombstone of {two} at seq 2",
                        expects(two)
                    )
                )
            );
        }
    }

    /// A record whose checksum holds but whose text is not UTF-8 (written so by something
    /// other than the engine) is damage at the first byte that is not, and is not taken as
    /// checked.
    #[test]
    fn a_text_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, at) = segment_of(dir.path(), &[(RecordKind::Put, 1, b"ab\xffcd")]);
        let view = segment.view();
        for _ in 0..2 {
            let err = view
                .read_doc(DocId::from(1u64), at[0])
                .expect_err("not UTF-8");
            let (offset, what) = corrupt_at(&err);
            assert_eq!(offset, u64::from(at[0]) + RECORD_HEADER_LEN as u64 + 2);
            assert!(what.contains("is not UTF-8"), "{what}");
            assert!(!view.verified().contains(at[0]));
        }
    }

    /// Marks are noted a stride apart at the least, and answer for the walks that start at
    /// them: the last mark at or below a sequence number, and every mark below an offset,
    /// last first.
    #[test]
    fn sequence_marks_lie_a_stride_apart_and_answer_by_sequence_and_by_offset() {
        const S: u32 = SeqMarks::STRIDE;
        let marks = SeqMarks::default();
        assert_eq!(marks.start_for(u64::MAX), None);
        assert!(marks.offsets_before(u32::MAX).is_empty());

        assert_eq!(marks.note(64, 5), 64 + S, "the first record is marked");
        assert_eq!(marks.note(100, 6), 64 + S, "within a stride: no mark");
        assert_eq!(
            marks.note(64 + S - 1, 7),
            64 + S,
            "one byte short of a stride"
        );
        assert_eq!(marks.note(64 + S, 9), 64 + 2 * S, "a stride on: a mark");
        assert_eq!(marks.note(3 * S, 20), 4 * S);

        assert_eq!(marks.start_for(4), None, "no record at or below");
        assert_eq!(marks.start_for(5), Some((64, 5)));
        assert_eq!(
            marks.start_for(8),
            Some((64, 5)),
            "seq 6 and 7 were not marked"
        );
        assert_eq!(marks.start_for(9), Some((64 + S, 9)));
        assert_eq!(marks.start_for(19), Some((64 + S, 9)));
        assert_eq!(marks.start_for(u64::MAX), Some((3 * S, 20)));

        assert!(marks.offsets_before(64).is_empty());
        assert_eq!(marks.offsets_before(65), [64]);
        assert_eq!(marks.offsets_before(64 + S), [64]);
        assert_eq!(marks.offsets_before(64 + S + 1), [64 + S, 64]);
        assert_eq!(marks.offsets_before(u32::MAX), [3 * S, 64 + S, 64]);
    }

    /// One bit per page: setting or clearing a page's bit leaves every other page's, in its
    /// word and in the others, and a page past the segment reads as absent.
    #[test]
    fn resident_pages_keep_one_bit_per_page() {
        let page = rustix::param::page_size();
        let pages = ResidentPages::new(u32::try_from(200 * page).unwrap());
        assert!((0..200).all(|p| !pages.get(p)));
        for p in [0, 63, 64, 70, 199] {
            pages.set(p, true);
        }
        let set: Vec<usize> = (0..200).filter(|&p| pages.get(p)).collect();
        assert_eq!(set, [0, 63, 64, 70, 199]);
        pages.set(70, false);
        pages.set(1, false);
        let set: Vec<usize> = (0..200).filter(|&p| pages.get(p)).collect();
        assert_eq!(set, [0, 63, 64, 199]);
        assert!(!pages.get(256), "past the segment");
        pages.set(256, true);
        assert!(!pages.get(256));
    }

    /// The zeroing thread zeroes a segment's preallocated space past its data, and leaves
    /// alone the space a file that an earlier segment held has written: after a reopen
    /// too, and once a cut gives part of it back.
    #[test]
    fn only_a_file_an_earlier_segment_held_counts_as_written_past_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, settings) = os();
        let mut fresh =
            SegmentFile::create(&storage, dir.path(), header(2, false), settings).unwrap();
        fresh.reserve(256 << 10).unwrap();
        assert_eq!(fresh.zero_target().unwrap().written, 0);
        drop(fresh);
        let path = dir.path().join(crate::layout::segment_file_name(2));
        let reopened = SegmentFile::open(&storage, path.clone(), 2, 7, settings, true).unwrap();
        assert!(reopened.file_len() > 64);
        assert_eq!(reopened.zero_target().unwrap().written, 0);
        drop(reopened);

        let spare = dir.path().join(crate::layout::spare_file_name(2));
        std::fs::rename(&path, &spare).unwrap();
        let spare_len = std::fs::metadata(&spare).unwrap().len();
        let reused = SegmentFile::reuse(&storage, dir.path(), &spare, header(3, true), settings)
            .unwrap()
            .expect("no process maps the spare");
        assert_eq!(reused.end(), 64);
        assert_eq!(reused.zero_target().unwrap().written, spare_len);
        drop(reused);
        let path = dir.path().join(crate::layout::segment_file_name(3));
        let mut reopened = SegmentFile::open(&storage, path, 3, 7, settings, true).unwrap();
        assert_eq!(reopened.zero_target().unwrap().written, spare_len);
        reopened.set_end(4096);
        reopened.trim().unwrap();
        assert_eq!(reopened.zero_target().unwrap().written, 4096);
    }

    /// Preallocation that only sets a file's length (sparse: a test may claim gigabytes),
    /// counts its calls, and refuses, as a full disk does, to grow a file past `room`.
    #[derive(Debug)]
    struct Room {
        room: AtomicU64,
        allocations: AtomicU32,
    }

    impl Storage for Room {
        fn create_new(&self, path: &Path) -> std::io::Result<File> {
            OsStorage.create_new(path)
        }

        fn write_at(
            &self,
            file: &File,
            path: &Path,
            data: &[u8],
            offset: u64,
        ) -> std::io::Result<()> {
            OsStorage.write_at(file, path, data, offset)
        }

        fn sync(&self, file: &File, path: &Path, kind: SyncKind) -> std::io::Result<()> {
            OsStorage.sync(file, path, kind)
        }

        fn allocate(&self, file: &File, _path: &Path, _from: u64, to: u64) -> std::io::Result<()> {
            self.allocations.fetch_add(1, AtomicOrdering::Relaxed);
            if to > self.room.load(AtomicOrdering::Relaxed) {
                return Err(std::io::ErrorKind::StorageFull.into());
            }
            file.set_len(to)
        }

        fn set_len(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
            OsStorage.set_len(file, path, len)
        }

        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            OsStorage.rename(from, to)
        }

        fn remove(&self, path: &Path) -> std::io::Result<()> {
            OsStorage.remove(path)
        }

        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            OsStorage.sync_dir(dir)
        }
    }

    /// A segment preallocates a step past what a write needs: 1 MiB while its data is
    /// under 64 MiB, a 64th of its data above that, 16 MiB at most, and never past its
    /// capacity. Space already there costs no call; with no room for the step, it takes
    /// just what the write needs, and with no room for that, the disk is full.
    #[test]
    fn preallocation_grows_a_step_past_each_write() {
        const MIB: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let room = Arc::new(Room {
            room: AtomicU64::new(u64::MAX),
            allocations: AtomicU32::new(0),
        });
        let storage: Arc<dyn Storage> = Arc::clone(&room) as Arc<dyn Storage>;
        let settings = StoreOptions::new().map_settings();
        let capacity = u32::MAX - 4095;
        let segment_header = SegmentHeader {
            capacity,
            ..header(2, false)
        };
        let mut segment =
            SegmentFile::create(&storage, dir.path(), segment_header, settings).unwrap();
        let calls = || room.allocations.load(AtomicOrdering::Relaxed);
        segment.reserve_exact(0).unwrap();
        assert_eq!(calls(), 0, "the header's bytes are there");
        // Data of `data` bytes, and a write of `len` more bytes to make room for: the file's
        // length after.
        let mut reserve_at = |data: u64, len: u64| {
            if data > segment.file_len() {
                segment
                    .reserve_exact(data - u64::from(segment.end()))
                    .unwrap();
            }
            segment.set_end(u32::try_from(data).unwrap());
            segment.reserve(len).map(|()| segment.file_len())
        };
        assert_eq!(reserve_at(64, 100).unwrap(), 64 + 100 + MIB);
        assert_eq!(calls(), 1);
        assert_eq!(
            reserve_at(64, MIB + 100).unwrap(),
            64 + 100 + MIB,
            "already there"
        );
        assert_eq!(calls(), 1);
        assert_eq!(
            reserve_at(64 * MIB, 10).unwrap(),
            65 * MIB + 10,
            "1 MiB at 64 MiB"
        );
        assert_eq!(
            reserve_at(80 * MIB, 10).unwrap(),
            81 * MIB + MIB / 4 + 10,
            "a 64th"
        );
        assert_eq!(
            reserve_at(2048 * MIB, 10).unwrap(),
            2064 * MIB + 10,
            "16 MiB at most"
        );
        let near = u64::from(capacity) - MIB / 2;
        assert_eq!(
            reserve_at(near, 10).unwrap(),
            u64::from(capacity),
            "the capacity"
        );

        // Room for the write, not for the step: the write's bytes alone.
        segment.set_end(100 * MIB as u32);
        segment.trim().unwrap();
        room.room.store(100 * MIB + 10, AtomicOrdering::Relaxed);
        let before = calls();
        segment.reserve(10).unwrap();
        assert_eq!(segment.file_len(), 100 * MIB + 10);
        assert_eq!(calls(), before + 2, "the step, then the write");
        // No room for the write: a full disk, after the step and the write were tried.
        let err = segment.reserve(20).expect_err("no room");
        assert!(matches!(err, Error::DiskFull { .. }), "{err}");
        assert_eq!(segment.file_len(), 100 * MIB + 10);
        assert_eq!(calls(), before + 4);
        // At the capacity the step is the write: one call.
        room.room.store(u64::MAX, AtomicOrdering::Relaxed);
        segment
            .reserve_exact(u64::from(capacity - 8) - u64::from(segment.end()))
            .unwrap();
        segment.set_end(capacity - 8);
        room.room.store(0, AtomicOrdering::Relaxed);
        let before = calls();
        let err = segment.reserve(8).expect_err("no room");
        assert!(matches!(err, Error::DiskFull { .. }), "{err}");
        assert_eq!(calls(), before + 1);
    }

    /// Where the newest segment's data ends, for the recovery scan: the start of the hole
    /// after the last stretch of data, past any hole between stretches (a write the disk
    /// lost before committed data that it kept); the file's length when there is no hole
    /// or nothing past the start; and the start itself when it lies in the last hole. Never
    /// past the length the handle saw, whatever the file grew to since.
    #[test]
    fn the_data_ends_at_the_hole_after_its_last_stretch() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, settings) = os();
        let mut segment =
            SegmentFile::create(&storage, dir.path(), header(2, false), settings).unwrap();
        let path = segment.path().to_path_buf();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let kib = |n: u64| n << 10;
        file.write_all_at(&[1u8; 8 << 10], 0).unwrap();
        file.set_len(kib(512)).unwrap();
        file.write_all_at(&[2u8; 4 << 10], kib(512)).unwrap();
        file.set_len(kib(1024)).unwrap();
        segment.restat().unwrap();
        assert_eq!(segment.file_len(), kib(1024));
        assert_eq!(
            segment.data_end_after(64) as u64,
            kib(516),
            "past the first hole"
        );
        assert_eq!(segment.data_end_after(kib(514) as usize) as u64, kib(516));
        assert_eq!(
            segment.data_end_after(kib(600) as usize) as u64,
            kib(600),
            "in the last hole"
        );
        assert_eq!(segment.data_end_after(kib(1024) as usize) as u64, kib(1024));
        assert_eq!(
            segment.data_end_after(kib(2048) as usize) as u64,
            kib(1024),
            "past the end"
        );

        // The file grows past the length this handle saw: the answer stays within it.
        file.write_all_at(&[4u8; 512 << 10], kib(1024)).unwrap();
        assert_eq!(segment.data_end_after(64) as u64, kib(516));
        file.write_all_at(&[4u8; 4 << 10], kib(1020)).unwrap();
        assert_eq!(segment.data_end_after(64) as u64, kib(1024));

        // Written to its end: no hole.
        file.write_all_at(&[3u8; 508 << 10], kib(516)).unwrap();
        assert_eq!(segment.data_end_after(64) as u64, kib(1024));
    }

    /// A spare file shorter than a segment's header, or longer than the new segment's
    /// capacity, is not a retired segment's file: taking it is refused by name and size,
    /// and the file stays as it was. One of exactly the header's length is taken.
    #[test]
    fn a_spare_of_a_length_no_segment_has_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, settings) = os();
        let spare = dir.path().join(crate::layout::spare_file_name(2));
        let capacity = u64::from(header(3, true).capacity);
        for len in [SEGMENT_HEADER_LEN as u64 - 1, capacity + 1] {
            std::fs::write(&spare, vec![7u8; len as usize]).unwrap();
            let err = SegmentFile::reuse(&storage, dir.path(), &spare, header(3, true), settings)
                .err()
                .expect("no segment is that long");
            let (offset, what) = corrupt_at(&err);
            assert_eq!(offset, 0);
            assert!(
                what.starts_with(&format!("a spare segment file of {len} bytes")),
                "{what}"
            );
            assert!(
                err.to_string().contains(&spare.display().to_string()),
                "{err}"
            );
            assert_eq!(std::fs::read(&spare).unwrap(), vec![7u8; len as usize]);
        }
        std::fs::write(&spare, vec![7u8; SEGMENT_HEADER_LEN]).unwrap();
        let taken = SegmentFile::reuse(&storage, dir.path(), &spare, header(3, true), settings)
            .unwrap()
            .expect("no process maps the spare");
        assert_eq!(taken.file_len(), SEGMENT_HEADER_LEN as u64);
        assert!(!spare.exists());
    }

    /// A reader that opened a segment's file by its name just before the writer took the
    /// file as a spare for a new segment finds, once its shared lock is granted, another
    /// segment's header and the name gone: the segment it looked for was removed, which
    /// the view's load retries past. The same header under a name that still names the file
    /// is damage.
    #[test]
    fn a_reader_that_opened_a_file_the_writer_then_took_finds_its_segment_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, settings) = os();
        let mut old =
            SegmentFile::create(&storage, dir.path(), header(2, false), settings).unwrap();
        old.reserve(4096).unwrap();
        drop(old);
        let path = dir.path().join(crate::layout::segment_file_name(2));
        let opened_by_name = File::open(&path).unwrap();

        let spare = dir.path().join(crate::layout::spare_file_name(2));
        std::fs::rename(&path, &spare).unwrap();
        let taken = SegmentFile::reuse(&storage, dir.path(), &spare, header(5, true), settings)
            .unwrap()
            .expect("the reader holds no lock yet");
        let err = SegmentFile::open_file(
            &storage,
            path.clone(),
            opened_by_name,
            2,
            7,
            settings,
            false,
        )
        .err()
        .expect("segment 2 is gone");
        assert!(crate::read_only::vanished(&err), "{err}");
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            cause.is_some_and(|c| c.contains("now holds segment 5")),
            "{err:?}"
        );
        drop(taken);

        // The new segment's file under the old name again: a header that disagrees with the
        // name that reaches the file is damage, not a race.
        let taken_path = dir.path().join(crate::layout::segment_file_name(5));
        std::fs::rename(&taken_path, &path).unwrap();
        let err = SegmentFile::open(&storage, path, 2, 7, settings, false)
            .err()
            .expect("the header names segment 5");
        assert!(err.is_corruption(), "{err}");
    }
}
