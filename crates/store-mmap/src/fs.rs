//! File-system steps the engine composes: durable renames, directory syncs, preallocation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Makes the creation, removal or rename of entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync directory", dir))
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary sibling, sync it, rename it over `path`, sync the directory.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))?;
    file.write_all(contents).map_err(Error::io("write", &tmp))?;
    file.sync_all().map_err(Error::io("sync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io("rename into place", path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(dir)
}

/// Extends `file` to `len` bytes of allocated, zeroed space, so that later writes below
/// `len` cannot fail for lack of space and `fdatasync` has no size change to flush.
///
/// File systems without `fallocate` get a plain size change: writes then report a full disk
/// themselves, which the caller turns into [`Error::DiskFull`] as well.
pub(crate) fn allocate(file: &File, path: &Path, from: u64, len: u64) -> Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    match fallocate(file, FallocateFlags::empty(), from, len - from) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => file.set_len(len).map_err(Error::io("extend", path)),
        Err(errno) => Err(Error::io("preallocate", path)(errno.into())),
    }
}
