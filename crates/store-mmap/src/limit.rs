//! The write limit of a segment written over a spare file (`limit.tsl`, slots encoded by
//! [`store_format::WriteLimit`]).
//!
//! Past such a segment's data lie the earlier segment's bytes, to the end of the file. An
//! open after a crash must know that no committed record of this segment lies among them,
//! past damage: without a limit it walks them all, checksums and all (30 ms for a 256 MiB
//! file, against 0.15 ms for a new file, docs/PERFORMANCE.md). The writer keeps a durable
//! limit ahead of its records instead: before a commit's records reach past the limit, a
//! new limit is written and synced, so no record of the segment starts or ends at or past
//! the durable limit, whatever a crash leaves. The open walks the file up to it.
//!
//! The limit is a hint that only shortens a walk: a file that is missing, damaged, or of
//! another store or segment makes the open walk the whole file, as it would without one;
//! and a limit the data runs past (a file copied from a live store before its segment) is
//! found out at the walk's end, which then goes on over the whole file
//! ([`crate::walk::scan_below`]).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use store_format::{WRITE_LIMIT_FILE_LEN, WriteLimit};

use crate::error::{Error, Result};
use crate::layout::LIMIT_FILE;
use crate::storage::{Storage, SyncKind, sync_dir};

/// The most a limit moves ahead of the records that need it: a walk after a crash reads at
/// most this much of the earlier segment's bytes past the data, plus the last commit.
const MAX_STEP_BYTES: u32 = 16 << 20;

/// How far past `needed` (the end of the records about to be written) the next limit goes, in
/// a segment of `capacity` bytes: a sixteenth of the segment, at most [`MAX_STEP_BYTES`], so
/// that a limit is written once every 16 MiB of commits in a segment of the default size.
pub(crate) fn next_limit(needed: u64, capacity: u32) -> u32 {
    let step = (capacity / 16).min(MAX_STEP_BYTES);
    u32::try_from(
        needed
            .saturating_add(u64::from(step))
            .min(u64::from(capacity)),
    )
    .expect("capped at the capacity")
}

/// The newest limit the store's write-limit file records, if the file is there and a slot
/// of it decodes for this store. Never an error: without a limit, the walk reads the whole
/// file.
pub(crate) fn read(dir: &Path, store_uid: u128) -> Option<WriteLimit> {
    let bytes = std::fs::read(dir.join(LIMIT_FILE)).ok()?;
    WriteLimit::newest(&bytes, store_uid)
}

/// The writer's handle on the write-limit file; it opens the file at the first limit it
/// writes.
pub(crate) struct LimitFile {
    path: PathBuf,
    file: Option<File>,
    /// The generation of the newest slot in the file (0: none).
    generation: u64,
}

impl LimitFile {
    /// The write-limit file of the store in `dir`, whose newest slot is `newest` (as
    /// [`read`] found it at the open).
    pub(crate) fn new(dir: &Path, newest: Option<WriteLimit>) -> LimitFile {
        LimitFile {
            path: dir.join(LIMIT_FILE),
            file: None,
            generation: newest.map_or(0, |limit| limit.generation),
        }
    }

    /// Makes `limit` segment `segment_id`'s durable write limit: writes it into the slot
    /// that does not hold the newest limit, and syncs it. On a failure the slot may be torn
    /// or lost; the other one still holds the limit before, which the segment's records do
    /// not pass.
    pub(crate) fn write(
        &mut self,
        storage: &dyn Storage,
        store_uid: u128,
        segment_id: u32,
        limit: u32,
    ) -> Result<()> {
        let slot = WriteLimit {
            store_uid,
            segment_id,
            generation: self.generation + 1,
            limit,
        };
        self.open(storage)?;
        let file = self.file.as_ref().expect("opened above");
        storage
            .write_at(file, &self.path, &slot.encode(), slot.offset() as u64)
            .map_err(Error::io("write the write limit", &self.path))?;
        storage
            .sync(file, &self.path, SyncKind::Data)
            .map_err(Error::io("sync", &self.path))?;
        self.generation = slot.generation;
        Ok(())
    }

    /// Opens the file for writing; creates it when missing, and preallocates it (making its
    /// name durable) when it is shorter than its two slots.
    fn open(&mut self, storage: &dyn Storage) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => storage
                .create_new(&self.path)
                .map_err(Error::io("create", &self.path))?,
            Err(err) => return Err(Error::io("open", &self.path)(err)),
        };
        let len = file
            .metadata()
            .map_err(Error::io("stat", &self.path))?
            .len();
        // Both slots' blocks at once: a slot's write never needs a new block, so a disk that
        // fills up later fails no limit. A file shorter than that was just created, or left
        // so by an earlier open whose preallocation found the disk full (or by a crash in
        // between): it gets its blocks now, before a slot is written past its end.
        if len < WRITE_LIMIT_FILE_LEN as u64 {
            storage
                .allocate(&file, &self.path, len, WRITE_LIMIT_FILE_LEN as u64)
                .map_err(Error::io("preallocate", &self.path))?;
            storage
                .sync(&file, &self.path, SyncKind::All)
                .map_err(Error::io("sync", &self.path))?;
            let dir = self
                .path
                .parent()
                .expect("the file is in the store's directory");
            sync_dir(storage, dir)?;
        }
        self.file = Some(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit moves a sixteenth of the segment ahead, at most 16 MiB, and never past the
    /// segment's end: what bounds the walk after a crash (README, "Opening").
    #[test]
    fn the_next_limit_moves_a_sixteenth_of_the_segment_ahead_at_most_16_mib() {
        const MIB: u32 = 1 << 20;
        for (needed, capacity, limit) in [
            (100, 256 * MIB, 100 + 16 * MIB),
            (100, 1024 * MIB, 100 + 16 * MIB),
            (100, 64 * MIB, 100 + 4 * MIB),
            (u64::from(60 * MIB), 64 * MIB, 64 * MIB),
            (u64::from(64 * MIB), 64 * MIB, 64 * MIB),
        ] {
            assert_eq!(
                next_limit(needed, capacity),
                limit,
                "{needed} in a segment of {capacity}"
            );
        }
    }
}
