//! The read side of a segment: [`SegmentMap`], the clonable view of a segment's mapping
//! that every read goes through, bounded by the committed end the writer publishes, and
//! what it keeps per segment for readers (the records checked, the pages in memory, where
//! sequence numbers lie).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as AtomicOrdering};

use bytes::Bytes;
use bytestring::ByteString;
use memmap2::{Advice, Mmap};
use store_format::{
    Doc, DocId, DocMeta, RECORD_HEADER_LEN, RecordHeader, RecordKind, SealedSegment, Text,
    decode_record, decode_record_header, record_len,
};

use crate::error::{Error, Result};
use crate::options::{MapSettings, ReadVerification};
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
    /// The view of segment `id` at `path` through `map`, its mapping at its full
    /// `capacity`, committed up to `end`.
    pub(crate) fn new(
        id: u32,
        path: PathBuf,
        map: Arc<Mapping>,
        capacity: u32,
        end: u32,
        settings: MapSettings,
        sealed_before: Option<SealedSegment>,
    ) -> SegmentMap {
        SegmentMap {
            id,
            path: path.into(),
            committed: Arc::new(AtomicU32::new(end)),
            bytes: Bytes::from_owner(MapOwner(Arc::clone(&map))),
            map,
            verified: Arc::new(Verified::new(capacity)),
            resident: Arc::new(ResidentPages::new(capacity)),
            verify_every_read: settings.verification == ReadVerification::EveryRead,
            sealed_before,
            seq_marks: Arc::default(),
        }
    }

    /// Moves the committed end to `end`, past bytes that are completely written: the
    /// `Release` store that every read's `Acquire` load pairs with.
    pub(crate) fn set_committed_end(&self, end: u32) {
        self.committed.store(end, AtomicOrdering::Release);
    }

    /// Names the file by its new path, once the engine has renamed it.
    pub(crate) fn set_path(&mut self, to: PathBuf) {
        self.path = to.into();
    }
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

/// A segment's mapping, and for a read-only handle the file description that holds its
/// shared lock: the lock tells a writer that this process maps the file, so that the file
/// is not written over as a new segment ([`SegmentFile::reuse`](crate::segment::SegmentFile::reuse)). It lasts as long as any
/// read of the mapping (a [`Doc`] keeps the mapping alive), not only as long as the handle.
pub(crate) struct Mapping {
    map: Mmap,
    _shared_lock: Option<File>,
}

impl Mapping {
    /// `map`, with the shared lock a read-only handle holds on its file, if any.
    pub(crate) fn new(map: Mmap, shared_lock: Option<File>) -> Mapping {
        Mapping {
            map,
            _shared_lock: shared_lock,
        }
    }
}

impl std::ops::Deref for Mapping {
    type Target = Mmap;

    fn deref(&self) -> &Mmap {
        &self.map
    }
}

/// Keeps a mapping alive for as long as any [`Bytes`] slices it.
struct MapOwner(Arc<Mapping>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
