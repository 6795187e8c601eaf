//! Writing an index checkpoint file: what a checkpoint holds ([`CheckpointPlan`]), the merge
//! of the old file with the changes into a new one written under a temporary name, synced
//! and renamed into place, and the thread the engine writes it on. How the store plans and
//! installs checkpoints is in `checkpoint.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use store_format::{IndexCheckpoint, IndexEntry, Position, encode_index};

use crate::error::{Error, Result};
use crate::index::Frozen;
use crate::index_file::{MappedIndex, Unusable};
use crate::layout::INDEX_FILE;
use crate::storage::{Storage, write_atomic};

/// A checkpoint to write: the state of the index at a position up to which the data is
/// durable. Made by `Store::plan_checkpoint`.
pub struct CheckpointPlan {
    pub(crate) dir: PathBuf,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) header: IndexCheckpoint,
    pub(crate) frozen: Frozen,
    pub(crate) generation: u64,
}

/// A checkpoint written and in place on disk, to be installed in the store it was planned
/// for.
pub struct WrittenCheckpoint {
    pub(crate) index: Arc<MappedIndex>,
    pub(crate) generation: u64,
}

impl CheckpointPlan {
    /// Where the checkpoint ends: every record before it is reflected.
    pub fn position(&self) -> Position {
        self.header.checkpoint
    }

    /// Writes the new index file and renames it into place. Any thread; the store goes on
    /// taking writes meanwhile. The file is complete and durable when this returns, so the
    /// next open uses it even if `Store::install_checkpoint` never runs.
    pub fn write(self) -> Result<WrittenCheckpoint> {
        let entries: Vec<IndexEntry> = self.frozen.merged_entries().collect::<Result<_>>()?;
        let file = encode_index(self.header, entries.into_iter());
        let path = self.dir.join(INDEX_FILE);
        write_atomic(self.storage.as_ref(), &path, &file)?;
        let index = MappedIndex::open(&path, self.header.store_uid).map_err(|why| {
            let reason = match why {
                Unusable::Missing => "it is missing".to_owned(),
                Unusable::Rejected(reason) => reason,
            };
            Error::corrupt(
                &path,
                0,
                format!("the index file just written cannot be opened: {reason}"),
            )
        })?;
        Ok(WrittenCheckpoint {
            index: Arc::new(index),
            generation: self.generation,
        })
    }
}

/// The checkpoint the engine writes on a thread of its own.
pub(crate) struct InFlight {
    thread: JoinHandle<Result<WrittenCheckpoint>>,
}

impl InFlight {
    pub(crate) fn start(plan: CheckpointPlan) -> Result<InFlight> {
        let path = plan.dir.join(INDEX_FILE);
        let thread = std::thread::Builder::new()
            .name("textstore-checkpoint".to_owned())
            .spawn(move || plan.write())
            .map_err(Error::io("start the checkpoint thread for", &path))?;
        Ok(InFlight { thread })
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub(crate) fn join(self) -> Result<WrittenCheckpoint> {
        self.thread
            .join()
            .unwrap_or_else(|panic| Err(Error::panicked("the checkpoint thread", &*panic)))
    }
}
