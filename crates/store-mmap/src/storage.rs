//! The file operations the engine performs, behind one trait, and the steps it composes
//! from them: durable renames and directory syncs.
//!
//! Every operation that changes a store's files goes through [`Storage`]: writes, syncs,
//! preallocation, truncation, creation, renames and removals. Reads do not (they come from
//! the mappings, or from `std::fs` for the small metadata and index files), and neither do
//! the two steps that hold no data: creating the store's directory, and the lock file. The operating system's implementation is
//! [`OsStorage`], the default; tests put a fault-injecting one in its place through
//! [`crate::StoreOptions::storage`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// What a sync makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// `fdatasync`: the data and the metadata needed to read it back (the length).
    Data,
    /// `fsync`: the data and all metadata.
    All,
}

/// The file operations that change a store's files.
///
/// Every method gets the path of the file it acts on, for error messages and for
/// implementations that keep per-file state. An implementation must behave like the
/// operating system's calls of the same name, except that it may fail any of them.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates `path`, which must not exist, open for reading and writing.
    fn create_new(&self, path: &Path) -> io::Result<File>;

    /// Writes all of `data` at `offset` (`pwrite`, repeated until done).
    fn write_at(&self, file: &File, path: &Path, data: &[u8], offset: u64) -> io::Result<()>;

    /// Writes all of `bufs`, one after another, starting at `offset` (`pwritev`, repeated
    /// until done). The default writes them one by one with [`Storage::write_at`].
    fn write_vectored_at(
        &self,
        file: &File,
        path: &Path,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<()> {
        let mut at = offset;
        for buf in bufs {
            self.write_at(file, path, buf, at)?;
            at += buf.len() as u64;
        }
        Ok(())
    }

    /// Makes what was written to `file` durable.
    fn sync(&self, file: &File, path: &Path, kind: SyncKind) -> io::Result<()>;

    /// Writes `len` bytes of `file` from `offset` back to the disk and waits for it, without
    /// the file's metadata and without the rest of its data (`sync_file_range`). Nothing is
    /// promised durable: the zeroing thread uses it so that its zeros do not flush a commit
    /// being written. The default does nothing, which is correct, only slower to commit
    /// into afterwards.
    fn write_back_range(&self, file: &File, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let _ = (file, path, offset, len);
        Ok(())
    }

    /// Starts writing `len` bytes of `file` from `offset` back to the disk and returns without
    /// waiting (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). Nothing is promised durable:
    /// a large commit starts the write-back of what it has written while it writes the rest,
    /// so that its final flush finds little left to write. The default does nothing, which
    /// is correct, only slower to flush afterwards.
    fn start_write_back(&self, file: &File, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let _ = (file, path, offset, len);
        Ok(())
    }

    /// Extends `file` from `from` to `to` bytes of allocated, zeroed space.
    fn allocate(&self, file: &File, path: &Path, from: u64, to: u64) -> io::Result<()>;

    /// Sets the length of `file` (`ftruncate`).
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Makes the creation, removal and renaming of entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Bytes available to this process on the file system that holds `file`: what a
    /// compaction's copies are set against before it writes one. The default asks the
    /// file system (`fstatvfs`).
    fn available_bytes(&self, file: &File, path: &Path) -> io::Result<u64> {
        let _ = path;
        let stat = rustix::fs::fstatvfs(file)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

/// The operating system's file operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsStorage;

impl Storage for OsStorage {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    fn write_at(&self, file: &File, _path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(data, offset)
    }

    fn write_vectored_at(
        &self,
        file: &File,
        _path: &Path,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<()> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        let written = pwritev_once(file, bufs, offset)?;
        if written == total {
            return Ok(());
        }
        // A short write: go on from where it stopped, on a copy of the list that can be
        // advanced.
        let mut rest: Vec<IoSlice<'_>> = bufs.to_vec();
        let mut left = &mut rest[..];
        IoSlice::advance_slices(&mut left, written);
        let mut at = offset + written as u64;
        while !left.is_empty() {
            let written = pwritev_once(file, left, at)?;
            at += written as u64;
            IoSlice::advance_slices(&mut left, written);
        }
        Ok(())
    }

    fn sync(&self, file: &File, _path: &Path, kind: SyncKind) -> io::Result<()> {
        match kind {
            SyncKind::Data => file.sync_data(),
            SyncKind::All => file.sync_all(),
        }
    }

    fn write_back_range(&self, file: &File, _path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        sync_file_range(file, offset, len, flags)
    }

    fn start_write_back(&self, file: &File, _path: &Path, offset: u64, len: u64) -> io::Result<()> {
        sync_file_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE)
    }

    /// Preallocates with `fallocate`, so that later writes below `to` cannot fail for lack of
    /// space and `fdatasync` has no size change to flush. File systems without `fallocate`
    /// get a plain size change: writes then report a full disk themselves.
    fn allocate(&self, file: &File, _path: &Path, from: u64, to: u64) -> io::Result<()> {
        use rustix::fs::{FallocateFlags, fallocate};
        match fallocate(file, FallocateFlags::empty(), from, to - from) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::OPNOTSUPP) => file.set_len(to),
            Err(errno) => Err(errno.into()),
        }
    }

    fn set_len(&self, file: &File, _path: &Path, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// `sync_file_range` over `len` bytes of `file` from `offset`, with `flags`.
fn sync_file_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
    #[expect(unsafe_code, reason = "sync_file_range has no safe wrapper in rustix")]
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no
    // memory of this process.
    let done = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One `pwritev`, retried when a signal interrupts it; a write of nothing is an error.
fn pwritev_once(file: &File, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize> {
    loop {
        match rustix::io::pwritev(file, bufs, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Makes the creation, removal or rename of entries in `dir` durable.
pub(crate) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .map_err(Error::io("sync directory", dir))
}

/// How many written bytes of a file written in one go (a compaction's output, an index
/// file) wait before their write-back starts.
pub(crate) const WRITE_BEHIND_STEP_BYTES: u64 = 256 << 10;

/// The write-back of bytes written front to back, started every `step` bytes as they are
/// written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait: RocksDB's
/// `bytes_per_sync`, PostgreSQL's `checkpoint_flush_after`), so that the sync that ends
/// them finds little left to write. Nothing is promised durable before that sync.
///
/// Why: the kernel otherwise keeps every byte dirty until that sync, which then sends them
/// to the disk at once. A large commit waited for all of its bytes in its own `fdatasync`
/// (every [`crate::write::WRITE_BEHIND_BYTES`] of it now starts early); and every commit's
/// `fdatasync` queued behind a compaction output's final `fsync`: one of 170 MB held the
/// durable puts beside it for 25–72 ms, once per compaction (docs/PERFORMANCE.md, "Writing
/// back a compaction's output as it goes"). A file written in one go starts every
/// [`WRITE_BEHIND_STEP_BYTES`], so that a commit waits behind the few steps in flight, which
/// stay few without waiting for them: the engine's own compactions are paced, and an index
/// file is small beside them. A compaction the caller runs unpaced may have more in flight,
/// as many as the block layer queues before it holds back the thread that submits them.
#[derive(Debug)]
pub(crate) struct WriteBehind {
    /// Bytes written between two starts.
    step: u64,
    /// Where the bytes whose write-back has not started begin.
    started: u64,
}

impl WriteBehind {
    /// Bytes written from `offset` on, their write-back started every `step`.
    pub(crate) fn new(offset: u64, step: u64) -> WriteBehind {
        WriteBehind {
            step,
            started: offset,
        }
    }

    /// The bytes up to `end` are written: starts their write-back once a step of them
    /// waits.
    pub(crate) fn written_to(
        &mut self,
        storage: &dyn Storage,
        file: &File,
        path: &Path,
        end: u64,
    ) -> io::Result<()> {
        if end < self.started + self.step {
            return Ok(());
        }
        storage.start_write_back(file, path, self.started, end - self.started)?;
        self.started = end;
        Ok(())
    }
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary sibling (its write-back following the writes, [`WriteBehind`]), sync
/// it, rename it over `path`, sync the directory.
pub(crate) fn write_atomic(storage: &dyn Storage, path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    // A temporary file left by an earlier failed attempt holds nothing anyone reads.
    match storage.remove(&tmp) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io("remove", &tmp)(err));
        }
        _ => {}
    }
    let file = storage
        .create_new(&tmp)
        .map_err(Error::io("create", &tmp))?;
    let mut behind = WriteBehind::new(0, WRITE_BEHIND_STEP_BYTES);
    let mut offset = 0;
    for chunk in contents.chunks(WRITE_BEHIND_STEP_BYTES as usize) {
        storage
            .write_at(&file, &tmp, chunk, offset)
            .map_err(Error::io("write", &tmp))?;
        offset += chunk.len() as u64;
        behind
            .written_to(storage, &file, &tmp, offset)
            .map_err(Error::io("start writing back", &tmp))?;
    }
    storage
        .sync(&file, &tmp, SyncKind::All)
        .map_err(Error::io("sync", &tmp))?;
    drop(file);
    storage
        .rename(&tmp, path)
        .map_err(Error::io("rename into place", path))?;
    sync_dir(storage, path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultStorage;

    /// A file replaced atomically starts the write-back of each whole step as it is written,
    /// in order and without a gap, and leaves the rest to its sync; a small file starts none.
    #[test]
    fn write_atomic_writes_each_step_back_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultStorage::new();
        let path = dir.path().join("index.tsi");
        let step = WRITE_BEHIND_STEP_BYTES;
        let contents: Vec<u8> = (0..4 * step + 100).map(|i| (i % 251) as u8).collect();
        write_atomic(&storage, &path, &contents).unwrap();
        assert_eq!(
            storage.write_backs_of(&path.with_extension("tmp")),
            [(0, step), (step, step), (2 * step, step), (3 * step, step)]
        );
        assert_eq!(std::fs::read(&path).unwrap(), contents);

        write_atomic(&storage, &path, b"small").unwrap();
        assert_eq!(storage.write_backs().len(), 4);
        assert_eq!(std::fs::read(&path).unwrap(), b"small");
    }
}
