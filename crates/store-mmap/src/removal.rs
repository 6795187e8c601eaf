//! Removing the segments compaction retired: once no reader holds a retired segment's
//! mapping and no installed checkpoint points into it, its file is removed, or renamed to a
//! spare file that a later segment is written over ([`crate::StoreOptions::spare_files`]),
//! and the retired-segment list stops naming it. [`Store::begin_removal`] takes the files
//! from the store, [`Removal::run`] removes them on any thread, and
//! [`Store::finish_removal`] takes in what it did.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use store_format::RetiredList;

use crate::error::{Error, Result};
use crate::layout::{RETIRED_FILE, spare_file_name};
use crate::storage::{Storage, sync_dir, write_atomic};
use crate::store::Store;

impl Store {
    /// Removes the retired segments that no reader holds any more and that an installed
    /// checkpoint no longer points into, and the retired-segment list once none is left:
    /// [`Store::begin_removal`], [`Removal::run`] and [`Store::finish_removal`] in one.
    /// Returns how many segments remain, held by readers.
    pub fn remove_retired(&mut self) -> Result<usize> {
        match self.begin_removal() {
            Some(removal) => self.finish_removal(removal.run()),
            None => Ok(self.retired_segments()),
        }
    }

    /// Takes the retired segments that [`Store::remove_retired`] would remove, for a
    /// [`Removal`] that runs without the store. They stay named by the retired-segment list
    /// (a list written meanwhile names them too) until [`Store::finish_removal`] is given
    /// its outcome; `None` when none may go.
    pub fn begin_removal(&mut self) -> Option<Removal> {
        let segments = self.segments.take_removable(self.checkpoints.covered());
        let released_spares = self.segments.take_released_spares();
        (!segments.is_empty() || !released_spares.is_empty()).then(|| Removal {
            dir: self.dir.clone(),
            storage: Arc::clone(&self.options.storage),
            segments,
            spares_wanted: self
                .options
                .spare_files
                .saturating_sub(self.segments.spares().len()),
            released_spares,
        })
    }

    /// Takes in what a [`Removal`] of this store did: the retired-segment list stops naming
    /// the segments whose removal is durable (and goes when none is left); a segment whose
    /// removal failed waits for the next. Returns how many segments remain retired, or the
    /// first failure of the removal.
    pub fn finish_removal(&mut self, removed: Removed) -> Result<usize> {
        let Removed {
            gone,
            spared,
            kept,
            failed,
        } = removed;
        self.segments.removed(&gone, kept);
        self.segments.add_spares(spared);
        if !gone.is_empty() {
            let listed = self.segments.retired_ids();
            self.write_retired_list(listed)?;
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(self.retired_segments()),
        }
    }

    /// Writes the retired-segment list: `segments` (ascending) still to be removed, and the
    /// copies no checkpoint reflects yet; removes it when both are empty.
    pub(crate) fn write_retired_list(&mut self, mut segments: Vec<u32>) -> Result<()> {
        // Compactions retire segments in any order of id.
        segments.sort_unstable();
        segments.dedup();
        let storage = Arc::clone(&self.options.storage);
        let path = self.dir.join(RETIRED_FILE);
        if segments.is_empty() && self.checkpoints.uncovered_copies().is_empty() {
            return match storage.remove(&path) {
                Ok(()) => sync_dir(storage.as_ref(), &self.dir),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(Error::io("remove", &path)(err)),
            };
        }
        let list = RetiredList {
            store_uid: self.meta.store_uid,
            segments,
            copies: self.checkpoints.uncovered_copies().to_vec(),
        };
        write_atomic(storage.as_ref(), &path, &list.encode())
    }

    /// Segments replaced by compaction whose files are not yet known to be gone: waiting
    /// for readers to let go, or being removed.
    pub fn retired_segments(&self) -> usize {
        self.segments.retired_count()
    }
}

/// The files of retired segments that may go, taken from their store
/// ([`Store::begin_removal`]) so that they are removed while the store goes on: the kernel
/// frees a file's cached pages when its last name goes, which took 61–63 ms for a segment of
/// 256 MiB on the reference machine, and a writer that removed segments between commits
/// held every commit back for as long. The first ones, as many as the store keeps spares
/// for ([`crate::StoreOptions::spare_files`]), are renamed to spare files instead.
#[must_use = "the segments stay listed as retired until the removal runs and is finished"]
#[derive(Debug)]
pub struct Removal {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    /// The retired segments, each with whether its file may become a spare.
    segments: Vec<(u32, PathBuf, bool)>,
    /// How many more spare files the store keeps.
    spares_wanted: usize,
    /// Spare files to remove.
    released_spares: Vec<PathBuf>,
}

/// What a [`Removal`] did, for [`Store::finish_removal`] of the store it came from.
#[must_use = "the store lists the segments as retired until it is given this"]
#[derive(Debug)]
pub struct Removed {
    /// Removed or renamed to a spare file, and that made durable by a sync of the directory.
    gone: Vec<u32>,
    /// The spare files those renamed became, and their lengths.
    spared: Vec<(PathBuf, u64)>,
    /// Still there, or removed without the directory sync that makes it durable.
    kept: Vec<(u32, PathBuf)>,
    failed: Option<Error>,
}

impl Removal {
    /// Removes the files, or renames them to spare files, and syncs the directory, on any
    /// thread. Every file is tried; a file already gone counts as removed.
    pub fn run(self) -> Removed {
        let mut gone = Vec::new();
        let mut spared = Vec::new();
        let mut kept = Vec::new();
        let mut failed = None;
        for path in &self.released_spares {
            match self.storage.remove(path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                // Left behind, it is a spare again at the next open.
                Err(err) => {
                    failed.get_or_insert_with(|| Error::io("remove", path)(err));
                }
            }
        }
        // The longest files first: a spare is worth the written space it holds. A file with
        // another name too (a backup's hard link, `Store::backup`) is removed: written over,
        // it would change under that name.
        let mut segments: Vec<_> = self
            .segments
            .into_iter()
            .map(|(id, path, may_be_spare)| {
                let meta = std::fs::metadata(&path);
                let only_name = meta.as_ref().is_ok_and(|meta| meta.nlink() == 1);
                let len = meta.map(|meta| meta.len());
                (id, path, may_be_spare && only_name, len)
            })
            .collect();
        segments.sort_by_key(|(_, _, _, len)| std::cmp::Reverse(*len.as_ref().unwrap_or(&0)));
        for (id, path, may_be_spare, len) in segments {
            if let (true, Ok(len)) = (may_be_spare && spared.len() < self.spares_wanted, len) {
                let spare = self.dir.join(spare_file_name(id));
                match self.storage.rename(&path, &spare) {
                    Ok(()) => {
                        spared.push((spare, len));
                        gone.push((id, path));
                        continue;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        gone.push((id, path));
                        continue;
                    }
                    // Removed instead, below.
                    Err(_) => {}
                }
            }
            match self.storage.remove(&path) {
                Ok(()) => gone.push((id, path)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => gone.push((id, path)),
                Err(err) => {
                    failed.get_or_insert_with(|| Error::io("remove", &path)(err));
                    kept.push((id, path));
                }
            }
        }
        if (!gone.is_empty() || !self.released_spares.is_empty())
            && let Err(err) = sync_dir(self.storage.as_ref(), &self.dir)
        {
            // Not durable: the list keeps naming them, and the next removal finds them gone.
            // The spare files are left to the next open, which finds them.
            failed.get_or_insert(err);
            kept.append(&mut gone);
            spared.clear();
        }
        Removed {
            gone: gone.into_iter().map(|(id, _)| id).collect(),
            spared,
            kept,
            failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A removal keeps the longest retired files as spares (they hold the most written
    /// space), as many as it is asked for, and removes the others and the spares let go.
    #[test]
    fn a_removal_keeps_the_longest_files_as_spares() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, len: usize| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![1u8; len]).unwrap();
            path
        };
        let segments = vec![
            (1, file("0000000001.seg", 100), true),
            (2, file("0000000002.seg", 300), true),
            (3, file("0000000003.seg", 500), false),
            (4, file("0000000004.seg", 200), true),
        ];
        let released = file("0000000009.spare", 50);
        let removal = Removal {
            dir: dir.path().to_path_buf(),
            storage: Arc::new(crate::storage::OsStorage),
            segments,
            spares_wanted: 2,
            released_spares: vec![released.clone()],
        };
        let removed = removal.run();
        assert!(removed.failed.is_none(), "{:?}", removed.failed);
        let mut gone = removed.gone.clone();
        gone.sort_unstable();
        assert_eq!(gone, [1, 2, 3, 4]);
        assert_eq!(
            removed.spared,
            [
                (dir.path().join("0000000002.spare"), 300),
                (dir.path().join("0000000004.spare"), 200)
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["0000000002.spare", "0000000004.spare"]);
    }

    /// A removal counts a file already gone as removed (a removal before it unlinked it, and
    /// then its directory sync failed), and a released spare already gone too; neither is a
    /// failure, and the segment does not stay listed.
    #[test]
    fn a_removal_counts_files_already_gone_as_removed() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("0000000002.seg");
        std::fs::write(&kept, [1u8; 100]).unwrap();
        let removal = Removal {
            dir: dir.path().to_path_buf(),
            storage: Arc::new(crate::storage::OsStorage),
            segments: vec![
                (1, dir.path().join("0000000001.seg"), true),
                (2, kept.clone(), false),
            ],
            spares_wanted: 1,
            released_spares: vec![dir.path().join("0000000007.spare")],
        };
        let removed = removal.run();
        assert!(removed.failed.is_none(), "{:?}", removed.failed);
        let mut gone = removed.gone.clone();
        gone.sort_unstable();
        assert_eq!(gone, [1, 2]);
        assert!(removed.kept.is_empty(), "{:?}", removed.kept);
        assert!(!kept.exists());
    }

    /// A file whose rename to a spare fails is removed instead; a released spare whose
    /// removal fails is reported, naming it.
    #[cfg(feature = "fault-injection")]
    #[test]
    fn a_removal_removes_a_file_it_cannot_make_a_spare_and_reports_what_it_cannot_remove() {
        use crate::fault::{Fault, FaultOp, FaultStorage};
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::new());
        let segment = dir.path().join("0000000001.seg");
        std::fs::write(&segment, [1u8; 300]).unwrap();
        let released = dir.path().join("0000000004.spare");
        std::fs::write(&released, [1u8; 50]).unwrap();
        storage.inject_on(
            Fault::Fail(FaultOp::Rename),
            &dir.path().join(spare_file_name(1)),
        );
        storage.inject_on(Fault::Fail(FaultOp::Remove), &released);
        let removal = Removal {
            dir: dir.path().to_path_buf(),
            storage: storage.clone(),
            segments: vec![(1, segment.clone(), true)],
            spares_wanted: 1,
            released_spares: vec![released.clone()],
        };
        let removed = removal.run();
        assert_eq!(storage.injected(Fault::Fail(FaultOp::Rename)), 1);
        assert_eq!(removed.gone, [1]);
        assert!(removed.spared.is_empty(), "{:?}", removed.spared);
        assert!(
            !segment.exists(),
            "the file that could not be a spare was left"
        );
        let failed = removed.failed.expect("the released spare's removal failed");
        assert!(failed.to_string().contains("0000000004.spare"), "{failed}");
        assert!(released.exists());
    }
}
