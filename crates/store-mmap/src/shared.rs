//! The lock file, and the page in it through which the writer tells readers in other
//! processes how far its commits go.
//!
//! The writer holds an exclusive `flock` on `LOCK` for as long as it is open, and an
//! open-file-description write lock (`F_OFD_SETLK`) on its first byte, which says "a writer"
//! to a second writer that finds the `flock` taken (readers hold it shared for moments, a
//! writer for good). Readers never wait for the writer: a read-only open asks for a shared lock without blocking, and
//! - when that fails, a writer is live: the reader reads nothing past the position the
//!   writer last published in the page (every commit below it is complete, and durable
//!   under `Durability::Sync`), so it never meets a write in progress, and never a byte
//!   the writer may cut (only past that position are files cut);
//! - when it succeeds, no writer is live: the reader holds the shared lock while it reads
//!   the store as the writer's recovery would (in memory, cutting nothing), so that no
//!   writer can start and cut a torn tail under it, and lets go when done. A writer that
//!   starts meanwhile waits for it (`lock_writer`).
//!
//! The page is the file's first 4096 bytes, mapped shared by the writer (read and write)
//! and by every reader (read only). Only the writer stores into it; it holds nothing
//! durable and is rewritten by each writer's open.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TXTSLOCK` |
//! | 8 | 2 | format version |
//! | 10 | 6 | reserved, zero |
//! | 16 | 16 | store uid |
//! | 32 | 8 | published position: segment id << 32 \| offset (0: none yet), atomic |
//! | 40 | 4056 | reserved, zero |
//!
//! Ordering: the writer writes (and syncs) a commit's bytes, then stores the position with
//! `Release`; a reader loads it with `Acquire` and only then reads the bytes below it
//! through its own mapping of the segment. docs/CONCURRENCY.md ("Between processes") gives
//! the whole protocol; the loom model `a_reader_process_never_reads_past_the_published_position`
//! checks it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{Mmap, MmapMut, MmapOptions};
use store_format::Position;

use crate::error::{Error, Result};
use crate::layout::LOCK_FILE;

const MAGIC: [u8; 8] = *b"TXTSLOCK";
const PAGE_LEN: u64 = 4096;
const UID_AT: usize = 16;
const POSITION_AT: usize = 32;
const RESERVED_AT: usize = 40;
/// How long a writer's open waits for readers that hold the shared lock while they read a
/// store that had no writer.
const WRITER_LOCK_PATIENCE: Duration = Duration::from_secs(2);
/// How long a writer's open waits for a lock a writer holds. A live writer holds it for
/// good; but a child process shares every open file description of its parent from its
/// fork until its `exec` closes them, so a program that spawns processes leaves a store it
/// has just closed looking locked for those moments. Opens and closes of one store in a
/// loop, beside a thread spawning `true` again and again, found the lock taken in 258,838
/// of 269,135 tries over 10 s when they did not wait.
const INHERITED_LOCK_PATIENCE: Duration = Duration::from_millis(100);

/// The writer's side: the exclusive lock, and the page it publishes into.
pub(crate) struct WriterLock {
    /// Held for the life of the handle: the `flock` on it keeps every other writer out.
    _file: File,
    page: MmapMut,
}

/// A reader's side: the lock file (for the liveness test) and the writer's page, when the
/// store has them. Both may be missing: a store on a read-only file system.
pub(crate) struct ReaderLock {
    path: PathBuf,
    file: Option<File>,
    page: Option<Mmap>,
}

/// What a reader found about the writer.
pub(crate) enum Writer {
    /// A writer is live and has published this far (`None`: nothing yet this open).
    Live(Option<Position>),
    /// No writer: the reader holds the shared lock until the guard drops.
    Absent(SharedGuard),
}

/// The shared lock a reader holds while it reads a store that has no writer.
pub(crate) struct SharedGuard(Option<File>);

impl Drop for SharedGuard {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            // Unlocking cannot fail on a file this process locked; closing would unlock too.
            let _ = file.unlock();
        }
    }
}

impl WriterLock {
    /// Takes the store's exclusive lock, waiting a little for readers that hold it shared,
    /// and maps the page.
    pub(crate) fn take(dir: &Path, store_uid: Option<u128>) -> Result<WriterLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open lock file", &path))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    // A writer holds it for good; a reader of a store without a writer for
                    // the time it reads the tail; a process spawned by either (or by the
                    // last writer) until its `exec`. Only a writer keeps it.
                    let writer = ofd_writer_present(&file)
                        .map_err(Error::io("test the writer's lock on", &path))?;
                    let (patience, poll) = if writer {
                        (INHERITED_LOCK_PATIENCE, Duration::from_millis(1))
                    } else {
                        (WRITER_LOCK_PATIENCE, Duration::from_millis(5))
                    };
                    if started.elapsed() > patience {
                        return Err(Error::Locked { path });
                    }
                    std::thread::sleep(poll);
                }
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(Error::io("lock", &path)(err));
                }
            }
        }
        ofd_lock_writer(&file).map_err(Error::io("lock", &path))?;
        if file.metadata().map_err(Error::io("stat", &path))?.len() < PAGE_LEN {
            file.set_len(PAGE_LEN)
                .map_err(Error::io("size the lock file", &path))?;
        }
        #[expect(
            unsafe_code,
            reason = "mapping the lock file is unsafe; only its lock holder writes it"
        )]
        // SAFETY: the file is at least a page long and never shrinks (no textstore code
        // truncates it); this process holds the exclusive lock, so it is the only writer of
        // the page, and every access to the published fields goes through atomics.
        let page = unsafe {
            MmapOptions::new()
                .len(PAGE_LEN as usize)
                .map_mut(&file)
                .map_err(Error::io("map lock file", &path))?
        };
        let mut lock = WriterLock { _file: file, page };
        // Nothing published by this writer yet: readers that look now wait for it rather
        // than read its predecessor's position (which they also ignore when it lies below
        // what they read, for the moment between the lock and this store).
        lock.position().store(0, Ordering::Release);
        if let Some(uid) = store_uid {
            lock.claim(uid);
        }
        Ok(lock)
    }

    /// Stamps the page for this store and this writer; nothing is published yet.
    pub(crate) fn claim(&mut self, store_uid: u128) {
        self.position().store(0, Ordering::Release);
        self.page[..8].copy_from_slice(&MAGIC);
        self.page[8..10].copy_from_slice(&store_format::FORMAT_VERSION.to_le_bytes());
        self.page[10..16].fill(0);
        self.page[UID_AT..UID_AT + 16].copy_from_slice(&store_uid.to_le_bytes());
        self.page[RESERVED_AT..].fill(0);
    }

    /// Tells readers that every commit below `position` is complete.
    pub(crate) fn publish(&self, position: Position) {
        publish_position(self.position(), position);
    }

    fn position(&self) -> &AtomicU64 {
        atomic_at(&self.page, POSITION_AT)
    }
}

impl ReaderLock {
    /// Opens the lock file read-only and maps its page, where there are such.
    pub(crate) fn open(dir: &Path) -> Result<ReaderLock> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(file) => Some(file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(Error::io("open lock file", &path)(err)),
        };
        let mut lock = ReaderLock {
            path,
            file,
            page: None,
        };
        lock.map_page()?;
        Ok(lock)
    }

    fn map_page(&mut self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let len = file
            .metadata()
            .map_err(Error::io("stat", &self.path))?
            .len();
        if len < PAGE_LEN {
            return Ok(());
        }
        #[expect(
            unsafe_code,
            reason = "mapping the lock file is unsafe; only its lock holder writes it"
        )]
        // SAFETY: read-only mapping of a page the file holds and keeps (the file never
        // shrinks); the writer changes the published fields only through atomics, which is
        // how this process reads them, and the other bytes only before it publishes.
        let page = unsafe {
            MmapOptions::new()
                .len(PAGE_LEN as usize)
                .map(file)
                .map_err(Error::io("map lock file", &self.path))?
        };
        self.page = Some(page);
        Ok(())
    }

    /// The position the page holds, if a writer of this store stamped it: what a refresh
    /// compares with its view's end before anything costlier (no system call).
    pub(crate) fn published(&self, store_uid: u128) -> Option<Position> {
        let page = self.page.as_ref().filter(|page| {
            page[..8] == MAGIC && page[UID_AT..UID_AT + 16] == store_uid.to_le_bytes()
        })?;
        load_position(atomic_at(page, POSITION_AT))
    }

    /// Whether a writer is live, and how far it published; or the shared lock, when none.
    pub(crate) fn writer(&mut self, store_uid: u128) -> Result<Writer> {
        let Some(file) = &self.file else {
            // No lock file (a store copied without it, on a read-only file system): nobody
            // can be writing it.
            return Ok(Writer::Absent(SharedGuard(None)));
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let guard = file
                    .try_clone()
                    .map_err(Error::io("open lock file", &self.path))?;
                Ok(Writer::Absent(SharedGuard(Some(guard))))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if self.page.is_none() {
                    // The writer grew the file after this handle looked.
                    self.map_page()?;
                }
                let page = self.page.as_ref().filter(|page| {
                    page[..8] == MAGIC && page[UID_AT..UID_AT + 16] == store_uid.to_le_bytes()
                });
                match page {
                    Some(page) => Ok(Writer::Live(load_position(atomic_at(page, POSITION_AT)))),
                    // The writer has not stamped its page yet: it is still opening.
                    None => Ok(Writer::Live(None)),
                }
            }
            Err(std::fs::TryLockError::Error(err)) => Err(Error::io("lock", &self.path)(err)),
        }
    }
}

/// The byte range of the writer's open-file-description lock: the first byte.
fn writer_range(kind: libc::c_short) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    }
}

/// Takes the writer's lock on the first byte (the caller already holds the exclusive
/// `flock`, so no other writer can hold it). It lives as long as `file`'s description.
fn ofd_lock_writer(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut lock = writer_range(libc::F_WRLCK as libc::c_short);
    #[expect(unsafe_code, reason = "fcntl has no safe wrapper for OFD locks")]
    // SAFETY: the descriptor is open while `file` is borrowed, and `lock` is a valid,
    // initialised `struct flock` that the call only reads.
    let done = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) };
    if done == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether another open file description holds the writer's lock: a writer is open.
fn ofd_writer_present(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut lock = writer_range(libc::F_RDLCK as libc::c_short);
    #[expect(unsafe_code, reason = "fcntl has no safe wrapper for OFD locks")]
    // SAFETY: as in `ofd_lock_writer`; F_OFD_GETLK writes the conflicting lock, if any,
    // into `lock`, which this function owns.
    let done = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if done == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(i32::from(lock.l_type) != libc::F_UNLCK)
}

fn atomic_at(page: &[u8], at: usize) -> &AtomicU64 {
    let bytes = &page[at..at + 8];
    assert!(
        (bytes.as_ptr() as usize).is_multiple_of(8),
        "the page is mapped at a page boundary"
    );
    #[expect(
        unsafe_code,
        reason = "the published fields are atomics in memory shared with other processes"
    )]
    // SAFETY: the 8 bytes are in bounds, aligned (checked above), and live as long as the
    // borrowed page; every process accesses them only through atomic operations.
    unsafe {
        &*bytes.as_ptr().cast::<AtomicU64>()
    }
}

/// A 64-bit atomic cell that holds a published position: the page's, or a model's.
///
/// The protocol between the writer and readers in other processes is [`publish_position`]
/// and [`load_position`] over such a cell; it is public so that the loom model in
/// `store-concurrent` checks these very functions over loom's atomics.
pub trait PositionCell {
    /// Stores `value` with `order`.
    fn store_u64(&self, value: u64, order: Ordering);
    /// Loads the value with `order`.
    fn load_u64(&self, order: Ordering) -> u64;
}

impl PositionCell for AtomicU64 {
    fn store_u64(&self, value: u64, order: Ordering) {
        self.store(value, order);
    }

    fn load_u64(&self, order: Ordering) -> u64 {
        self.load(order)
    }
}

/// The writer's side: every commit below `position` is written (and synced, under
/// `Durability::Sync`). `Release`: a reader that loads the position sees those bytes.
pub fn publish_position(cell: &impl PositionCell, position: Position) {
    cell.store_u64(encode(position), Ordering::Release);
}

/// A reader's side: how far the writer published (`None`: nothing yet). `Acquire`: pairs
/// with [`publish_position`], so the bytes below the position are visible after it.
pub fn load_position(cell: &impl PositionCell) -> Option<Position> {
    decode(cell.load_u64(Ordering::Acquire))
}

fn encode(position: Position) -> u64 {
    u64::from(position.segment) << 32 | u64::from(position.offset)
}

fn decode(value: u64) -> Option<Position> {
    (value != 0).then_some(Position {
        segment: (value >> 32) as u32,
        offset: value as u32,
    })
}
/// A read-only handle's state.
pub(crate) struct Follower {
    pub(crate) lock: ReaderLock,
    /// Every commit below this position is applied to the view.
    pub(crate) seen: Option<Position>,
    /// The retired-segment list as the view was loaded: a change means a compaction took
    /// effect, which a refresh loads whole.
    pub(crate) retired_list: Option<Vec<u8>>,
    /// Whether the view was loaded with a writer live.
    pub(crate) writer_was_live: bool,
    /// Device and inode of the index file this view does not use: one its load discarded
    /// (a header that fails its check, say), or one whose damaged page made the view
    /// rebuild its index from the data (`rebuild.rs`). A refresh reloads the view once the
    /// writer has put another file in its place, and not before: a load of the same file
    /// would read every record again.
    pub(crate) unused_index_file: Option<(u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: u128 = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;

    fn lock_file(dir: &Path) -> File {
        File::open(dir.join(LOCK_FILE)).unwrap()
    }

    /// A second writer tells a live writer (who holds the byte lock for good) from a reader
    /// holding the `flock` shared (who holds no byte lock) by the byte lock alone: taken for a
    /// writer, a reader would make it give up after 100 ms instead of waiting two seconds.
    #[test]
    fn only_a_writer_holds_the_byte_lock() {
        let dir = tempfile::tempdir().unwrap();
        let writer = WriterLock::take(dir.path(), Some(UID)).unwrap();
        let other = lock_file(dir.path());
        assert!(
            ofd_writer_present(&other).unwrap(),
            "the writer's lock unseen"
        );
        drop(writer);
        assert!(
            !ofd_writer_present(&other).unwrap(),
            "the lock outlived its writer"
        );

        let reader = lock_file(dir.path());
        reader.lock_shared().unwrap();
        assert!(
            !ofd_writer_present(&other).unwrap(),
            "a reader taken for a writer"
        );
        assert!(matches!(
            ReaderLock::open(dir.path()).unwrap().writer(UID).unwrap(),
            Writer::Absent(_)
        ));
    }

    /// The page a writer stamps: its magic, version and store uid, reserved bytes zero
    /// whatever an earlier writer left there, and no position until it publishes one, which
    /// a reader of this store then loads and a reader of another store does not.
    #[test]
    fn the_page_is_stamped_for_its_store_and_publishes_its_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), vec![0xa5; PAGE_LEN as usize]).unwrap();
        let writer = WriterLock::take(dir.path(), Some(UID)).unwrap();
        let page = std::fs::read(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(page.len(), PAGE_LEN as usize);
        assert_eq!(page[..8], MAGIC);
        assert_eq!(page[8..10], store_format::FORMAT_VERSION.to_le_bytes());
        assert_eq!(page[UID_AT..UID_AT + 16], UID.to_le_bytes());
        for range in [
            10..UID_AT,
            POSITION_AT..RESERVED_AT,
            RESERVED_AT..page.len(),
        ] {
            assert!(
                page[range.clone()].iter().all(|&b| b == 0),
                "bytes {range:?}"
            );
        }

        let mut reader = ReaderLock::open(dir.path()).unwrap();
        assert_eq!(reader.published(UID), None);
        assert!(matches!(reader.writer(UID).unwrap(), Writer::Live(None)));
        let position = Position {
            segment: 3,
            offset: 0x0102_0304,
        };
        writer.publish(position);
        assert_eq!(reader.published(UID), Some(position));
        assert!(matches!(reader.writer(UID).unwrap(), Writer::Live(Some(p)) if p == position));
        assert_eq!(reader.published(UID ^ 1), None, "another store's page");
        assert!(matches!(
            reader.writer(UID ^ 1).unwrap(),
            Writer::Live(None)
        ));
    }

    /// A reader that opened the lock file before the writer grew it to a page maps the page
    /// once it finds the writer live.
    #[test]
    fn a_reader_maps_the_page_a_writer_grew_after_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"").unwrap();
        let mut reader = ReaderLock::open(dir.path()).unwrap();
        assert_eq!(reader.published(UID), None);
        let writer = WriterLock::take(dir.path(), Some(UID)).unwrap();
        let position = Position {
            segment: 1,
            offset: 64,
        };
        writer.publish(position);
        assert!(matches!(reader.writer(UID).unwrap(), Writer::Live(Some(p)) if p == position));
        assert_eq!(reader.published(UID), Some(position));
    }

    /// A store without a lock file (copied without it, or on a read-only file system) has
    /// no writer; a lock file that cannot be opened is an error that names it, never taken
    /// for a missing one.
    #[test]
    fn no_lock_file_means_no_writer_and_an_unopenable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = ReaderLock::open(dir.path()).unwrap();
        assert_eq!(reader.published(UID), None);
        assert!(matches!(
            reader.writer(UID).unwrap(),
            Writer::Absent(SharedGuard(None))
        ));

        let path = dir.path().join(LOCK_FILE);
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let err = ReaderLock::open(dir.path())
            .err()
            .expect("a symlink loop opened");
        assert!(err.to_string().contains(LOCK_FILE), "{err}");
    }
}
