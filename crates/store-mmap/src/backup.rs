//! Online backup: a consistent point-in-time copy of a store that opens as a store.
//!
//! Like compaction, a backup is taken in two steps so that the long one runs without the
//! store: [`Store::plan_backup`] (quick, with the store, between two commits) notes every
//! segment with its committed end and encodes the index as of that moment; then
//! [`Backup::write_to`] (on any thread) builds the copy:
//!
//! - sealed segments are hard links: they never change again, so sharing their inode costs
//!   no space and no copying. Where a link cannot be made (another file system, or the
//!   segment was replaced by a compaction since the plan and its file removed), the bytes
//!   are copied from the mapping, which the plan keeps alive;
//! - the segment receiving writes is copied up to its end at the plan: bytes below that end
//!   never change, whatever is committed after it;
//! - the metadata file is copied, and the index file written as of the plan is the backup's
//!   manifest: it names every live document's record and the position it covers, so the
//!   backup opens without replaying anything.
//!
//! Every file is synced and the directory too; the index file is written last, so a backup
//! cut short never looks finished (an open of it replays, or refuses a missing segment).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::{INDEX_FILE, META_FILE, segment_file_name};
use crate::progress::Progress;
use crate::segment_map::SegmentMap;
use crate::storage::{Storage, SyncKind, sync_dir, write_atomic};
use crate::store::Store;

/// A backup as of one moment of its store, ready to be written with [`Backup::write_to`].
pub struct Backup {
    storage: Arc<dyn Storage>,
    meta: Vec<u8>,
    /// Every segment, its committed end at the plan, and whether it is sealed.
    segments: Vec<(SegmentMap, u32, bool)>,
    index: Vec<u8>,
    documents: u64,
}

/// What a backup wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// Live documents in the backup.
    pub documents: u64,
    /// Segments linked to the store's own files.
    pub segments_linked: u64,
    /// Segments copied (the active one, and any that could not be linked).
    pub segments_copied: u64,
    /// Bytes copied.
    pub bytes_copied: u64,
}

impl Store {
    /// Writes a consistent copy of the store as of now into `dir`, which must be absent or
    /// empty, and which opens as a store. See [`Store::plan_backup`] for backups taken
    /// while writes go on.
    pub fn backup(&mut self, dir: impl AsRef<Path>) -> Result<BackupReport> {
        self.plan_backup()?.write_to(dir)
    }

    /// Notes the state of the store for a backup: every segment and its committed end, and
    /// the index as of now. Costs one pass over the index; no record is read.
    pub fn plan_backup(&mut self) -> Result<Backup> {
        let active = self.active().id();
        Ok(Backup {
            storage: Arc::clone(&self.options.storage),
            meta: self.meta.encode().to_vec(),
            segments: self
                .segments
                .iter()
                .map(|segment| {
                    (
                        segment.view().clone(),
                        segment.end(),
                        segment.id() != active,
                    )
                })
                .collect(),
            index: self.look_up_repairing(Store::index_snapshot)?,
            documents: self.len() as u64,
        })
    }
}

impl Backup {
    /// Builds the copy in `dir` (absent or empty). Reads only mappings and sealed files of
    /// the store, so its handle keeps reading and writing meanwhile.
    pub fn write_to(self, dir: impl AsRef<Path>) -> Result<BackupReport> {
        self.write_to_with(dir, &())
    }

    /// [`Backup::write_to`], telling `progress` the bytes of segments linked or copied.
    pub fn write_to_with(
        self,
        dir: impl AsRef<Path>,
        progress: &dyn Progress,
    ) -> Result<BackupReport> {
        let dir = dir.as_ref();
        let storage = self.storage.as_ref();
        if dir.exists() {
            let empty = std::fs::read_dir(dir)
                .map_err(Error::io("list", dir))?
                .next()
                .is_none();
            if !empty {
                return Err(Error::AlreadyExists { path: dir.into() });
            }
        }
        std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let mut report = BackupReport {
            documents: self.documents,
            ..BackupReport::default()
        };
        progress.start(
            self.segments
                .iter()
                .map(|(_, end, _)| u64::from(*end))
                .sum(),
        );
        for (map, end, sealed) in &self.segments {
            let to = dir.join(segment_file_name(map.id()));
            if *sealed && std::fs::hard_link(map.path(), &to).is_ok() {
                report.segments_linked += 1;
                progress.advance(u64::from(*end));
                continue;
            }
            copy_file(storage, &to, &map.bytes()[..*end as usize])?;
            progress.advance(u64::from(*end));
            report.segments_copied += 1;
            report.bytes_copied += u64::from(*end);
        }
        copy_file(storage, &dir.join(META_FILE), &self.meta)?;
        sync_dir(storage, dir)?;
        write_atomic(storage, &dir.join(INDEX_FILE), &self.index)?;
        Ok(report)
    }
}

/// Writes `bytes` to a new file at `to` and syncs it.
fn copy_file(storage: &dyn Storage, to: &Path, bytes: &[u8]) -> Result<()> {
    let to: PathBuf = to.to_path_buf();
    let file = storage.create_new(&to).map_err(Error::io("create", &to))?;
    storage
        .write_at(&file, &to, bytes, 0)
        .map_err(Error::io("write", &to))?;
    storage
        .sync(&file, &to, SyncKind::All)
        .map_err(Error::io("sync", &to))
}
