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

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary sibling, sync it, rename it over `path`, sync the directory.
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
    storage
        .write_at(&file, &tmp, contents, 0)
        .map_err(Error::io("write", &tmp))?;
    storage
        .sync(&file, &tmp, SyncKind::All)
        .map_err(Error::io("sync", &tmp))?;
    drop(file);
    storage
        .rename(&tmp, path)
        .map_err(Error::io("rename into place", path))?;
    sync_dir(storage, path.parent().unwrap_or(Path::new(".")))
}
