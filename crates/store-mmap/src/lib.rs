//! The textstore storage engine: an append-only store of document texts in memory-mapped
//! segment files.
//!
//! A store is a directory holding a lock file, a metadata file, numbered segment files and an
//! index (hint) file. [`Store`] is one handle on it: it takes the directory's exclusive lock,
//! recovers from a crash on open, keeps an in-memory index of the latest record of every
//! document, appends commits to the newest segment and serves reads as zero-copy slices of
//! the mapped segments.
//!
//! This crate is the only one that maps files. It does not know about caches, metrics
//! exporters or async runtimes: a [`Store`] reads through [`store_format::DocRead`] and
//! [`store_format::Prefetch`], and writes through `&mut self`; the concurrent handle shares
//! it between threads and writes through [`store_format::DocWrite`].
//!
//! Invariants:
//! - A record becomes visible to readers only after all of its bytes are written (and, under
//!   [`Durability::Sync`], synced): the index entry is published after the write.
//! - Bytes a reader can reach never change: writes go past the committed end, and files
//!   shrink only past it. Each segment is mapped once at its full capacity and never
//!   remapped, so a [`store_format::Text`] stays valid for as long as it is held.
//! - A record's CRC32C and UTF-8 are checked the first time this process reads it, or when
//!   this process wrote, copied or replayed it, and remembered per segment; later reads check
//!   its header. `Store::verify` and the scrub check again and make the next read of a
//!   damaged record fail. Corruption found is an error, never wrong text
//!   ([`ReadVerification`] says exactly what is checked when).
//! - Recovery cuts only an incomplete final commit group; damage followed by intact
//!   committed data stops the open with an error instead of dropping that data.
//! - After a failed write or sync the handle refuses writes until the store is reopened.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "textstore runs on Linux only: the engine relies on open-file-description locks, fallocate, mincore and madvise"
);

mod backup;
mod checkpoint;
mod checkpoint_file;
mod checkpoints;
mod compaction;
mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
mod index;
mod index_file;
mod journal;
mod layout;
mod limit;
mod offline;
mod options;
mod pace;
mod progress;
mod read_only;
mod rebuild;
mod recover;
mod recovery;
mod removal;
mod scan;
mod scrub;
mod segment;
mod segment_map;
mod segments;
mod shared;
mod spans;
mod stats;
mod storage;
mod store;
#[cfg(feature = "fault-injection")]
pub mod sync_point;
mod verified;
mod verify;
mod walk;
mod write;
mod zero;

pub use backup::{Backup, BackupReport};
pub use checkpoint_file::{CheckpointPlan, WrittenCheckpoint};
pub use compaction::{
    Compacted, Compaction, CompactionPolicy, CompactionReport, CompactionScope, Installed,
};
pub use error::{Error, Result};
pub use index::CheckpointedIndex;
pub use options::{
    AccessPattern, DEFAULT_CHECKPOINT_BYTES, DEFAULT_JOURNAL_BYTES, DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_SEGMENT_CAPACITY, DEFAULT_SLOW_SYNC, Durability, MAX_SEGMENT_CAPACITY,
    MIN_SEGMENT_CAPACITY, ReadVerification, StoreOptions,
};
pub use progress::Progress;
pub use read_only::Refreshed;
pub use recover::{DamagedRecord, RecoverReport, recover, recover_with};
pub use recovery::{DroppedTail, IndexLoad, RecoveryReport};
pub use removal::{Removal, Removed};
pub use scan::{Change, Changes, Latest, Scan};
pub use scrub::{Scrub, ScrubReport};
pub use segment_map::SegmentMap;
pub use shared::{PositionCell, load_position, publish_position};
pub use stats::{DiskSpace, StoreStats};
pub use storage::{OsStorage, Storage, SyncKind};
pub use store::{Store, check_changes_since, extract_from};
pub use store_format::{
    BatchOp, CommitEvent, CommitObserver, Doc, DocId, DocMeta, DocRead, ErrorKind, Position,
    Prefetch, RangeError, RangeUnit, StoreError, Text, TextRange, WriteBatch,
};
pub use verify::{VerifyReport, verify_dir, verify_dir_with};
pub use walk::Problem;
pub use write::admit;
