//! Segment files: mapped once at full capacity, appended with `pwrite`. Reads go through
//! their views, [`SegmentMap`] (`segment_map.rs`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, MmapOptions};
use store_format::{SEGMENT_HEADER_LEN, SealedSegment, SegmentHeader, decode_record_header};

use crate::error::{Error, Result};
use crate::options::{AccessPattern, MapSettings};
use crate::segment_map::{Mapping, SegmentMap};
use crate::storage::{Storage, SyncKind, WriteBehind, sync_dir};

/// One segment file, mapped read-only at its full capacity.
///
/// The mapping never changes for the life of the `SegmentFile`, so a [`Bytes`](bytes::Bytes) sliced out of
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
        let map = Arc::new(Mapping::new(map, shared_lock));
        let end = u32::try_from(file_len.max(SEGMENT_HEADER_LEN as u64)).unwrap_or(capacity);
        // A file an earlier segment held is written up to its length; any other is written
        // up to its data, and preallocated (unwritten) past it.
        let reuses_file = header.sealed_before.is_some_and(|s| s.reuses_file);
        let written_len = if reuses_file { file_len } else { 0 };
        Ok(SegmentFile {
            view: SegmentMap::new(
                id,
                path,
                Arc::clone(&map),
                capacity,
                end,
                settings,
                header.sealed_before,
            ),
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
        self.view.sealed_before()
    }

    pub(crate) fn id(&self) -> u32 {
        self.view.id()
    }

    /// Renames the file (through the storage) and keeps the view's path in step. The
    /// directory is not synced.
    pub(crate) fn rename(&mut self, to: PathBuf) -> Result<()> {
        self.storage
            .rename(self.path(), &to)
            .map_err(Error::io("rename", self.path()))?;
        self.view.set_path(to);
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
        self.view.path()
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
        &self.view.bytes()[..self.end as usize]
    }

    /// The whole file as it is on disk, for recovery scans past the committed end.
    pub(crate) fn file_bytes(&self) -> &[u8] {
        &self.view.bytes()[..self.file_len as usize]
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
        &self.view.bytes()[..(end.min(self.capacity)) as usize]
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
        self.view.set_committed_end(self.end);
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
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as AtomicOrdering};

    use store_format::{DocId, RECORD_HEADER_LEN, RecordKind, record_len};

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
