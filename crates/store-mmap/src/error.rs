//! The engine's errors.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use store_format::{DocId, ErrorKind, FormatError, IdError, RangeError, StoreError};

/// Everything the engine can fail with. Messages are one sentence naming the file, offset,
/// id or value at fault.
///
/// Errors are `Clone` so that one failed group commit can hand the same error to every
/// writer whose operations it carried.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document does not exist (or is deleted).
    #[error("document {id} not found")]
    NotFound {
        /// The id asked for.
        id: DocId,
    },
    /// A text is longer than the store's limit.
    #[error("document {id} is {len} bytes, over the store's limit of {limit} bytes")]
    DocumentTooLarge {
        /// The document.
        id: DocId,
        /// Its length in bytes.
        len: u64,
        /// The store's `max_document_bytes`.
        limit: u64,
    },
    /// The range cannot be extracted from the document.
    #[error("document {id}: the range does not fit its text")]
    Range {
        /// The document.
        id: DocId,
        /// What is wrong with the range.
        #[source]
        source: RangeError,
    },
    /// The text is not a document id.
    #[error(transparent)]
    Id(#[from] IdError),
    /// Another handle or process holds the store's write lock, and kept it for 100 ms (a
    /// process spawned while a store is open shares its lock until its `exec`; the open
    /// waits that long for such a process to let go).
    #[error("store {path} is locked by another process or handle")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// `create` was asked for a directory that already holds something.
    #[error("cannot create a store at {path}: the directory exists and is not empty")]
    AlreadyExists {
        /// The directory.
        path: PathBuf,
    },
    /// The directory is not a textstore store.
    #[error("{path} is not a textstore store: {reason}")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// Bytes on disk fail their checks.
    #[error("corruption in {path} at offset {offset}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset within the file.
        offset: u64,
        /// What failed.
        what: String,
    },
    /// The file system has no room left. Nothing of the failed write is visible.
    #[error("no space left on the device holding {path}")]
    DiskFull {
        /// The file that could not grow.
        path: PathBuf,
    },
    /// A compaction, asked for or due by its policy, found the file system without room for
    /// its copies, which it writes before it removes the segments they replace. No copy
    /// was written.
    #[error(
        "compacting {dir} needs {needed_bytes} bytes for its copies and the file system has \
         {available_bytes} available; no copy was written"
    )]
    NoRoomToCompact {
        /// The store's directory.
        dir: PathBuf,
        /// Bytes the copies take: the live records of the segments it would replace, and a
        /// header for each new segment; refused by the run, also the tombstones it must keep.
        needed_bytes: u64,
        /// Bytes available on the file system.
        available_bytes: u64,
    },
    /// An I/O operation failed.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: Arc<io::Error>,
    },
    /// An earlier write or sync failed, so what is on disk is uncertain; the store refuses
    /// writes until it is reopened, when recovery re-establishes a known state.
    #[error("the store refuses writes after an earlier failure; reopen it")]
    Poisoned {
        /// The first failure.
        #[source]
        cause: Arc<Error>,
    },
    /// A thread of the store panicked, in the store's code or in its [`crate::Storage`].
    /// Where what it was doing leaves the store's state unknown (a commit, or any call
    /// into the store on its writing thread), the store is poisoned and refuses writes
    /// until it is reopened; where the work was on files of its own (a compaction's copy,
    /// a checkpoint's write), that work fails alone and the store is unchanged.
    #[error("{thread} panicked: {message}")]
    Panicked {
        /// Which thread.
        thread: &'static str,
        /// The panic's message, when it had one.
        message: String,
    },
    /// A compaction's input segment was replaced by another compaction after it was
    /// planned; its copies are discarded and the store is unchanged.
    #[error(
        "segment {segment} was replaced by another compaction after this one was planned; nothing was changed"
    )]
    CompactionConflict {
        /// The segment.
        segment: u32,
    },
    /// A compaction was cancelled before it took effect (its store is closing); its copies
    /// are removed and the store is unchanged.
    #[error("the compaction was cancelled before it took effect; nothing was changed")]
    CompactionCancelled,
    /// A checkpoint written for an earlier plan was offered for installation; the store
    /// keeps its index as it is.
    #[error("the checkpoint was planned before another one; it was not installed")]
    CheckpointConflict,
    /// A change feed was asked to start below the change floor: a compaction dropped a
    /// delete above `since`, so the feed would miss it. Scan the store again and follow the
    /// changes from the scan's sequence number.
    #[error(
        "changes since seq {since} are older than the compaction floor (seq {floor}): rescan, then follow the changes from the scan's seq"
    )]
    ChangesCompacted {
        /// The sequence number asked for.
        since: u64,
        /// The lowest one a feed can start from.
        floor: u64,
    },
    /// A change feed was asked to start past the store's last commit: the caller's position
    /// comes from another store, or from commits lost in a crash (written with
    /// [`crate::Durability::WriteBack`] and never synced), whose sequence numbers later
    /// commits take again.
    #[error(
        "changes since seq {since} were asked of a store whose last commit is seq {last_seq}: the position is from another store or from commits lost in a crash; rescan"
    )]
    ChangesAhead {
        /// The sequence number asked for.
        since: u64,
        /// The store's last commit.
        last_seq: u64,
    },
    /// The handle was opened read-only.
    #[error("store {path} is open read-only: {what} needs the writer's handle")]
    ReadOnly {
        /// The store's directory.
        path: PathBuf,
        /// What was asked.
        what: &'static str,
    },
    /// Options that cannot work.
    #[error("invalid option: {reason}")]
    InvalidOptions {
        /// Which option and why.
        reason: String,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| {
            if source.kind() == io::ErrorKind::StorageFull {
                Error::DiskFull { path }
            } else {
                Error::Io {
                    op,
                    path,
                    source: Arc::new(source),
                }
            }
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl ToString) -> Error {
        Error::Corrupt {
            path: path.into(),
            offset,
            what: what.to_string(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, base: u64, err: &FormatError) -> Error {
        Error::corrupt(path, base + err.offset(), err)
    }

    /// True for errors that say the data on disk is damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// The error a caught panic leaves: `thread` says whose, and the message is the
    /// panic's, when it carried a string (`panic!` with a message always does).
    pub fn panicked(thread: &'static str, panic: &(dyn std::any::Any + Send)) -> Error {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| String::from("(its payload is not a message)"));
        Error::Panicked { thread, message }
    }

    /// The error a store that failed with `cause` gives every write after it.
    pub fn poisoned(cause: &Error) -> Error {
        match cause {
            // Poisoned by a failure that itself came from a poisoned store: one level says it.
            Error::Poisoned { .. } => cause.clone(),
            _ => Error::Poisoned {
                cause: Arc::new(cause.clone()),
            },
        }
    }
}

impl StoreError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::DocumentTooLarge { .. }
            | Error::Range { .. }
            | Error::Id(_)
            | Error::InvalidOptions { .. }
            | Error::ChangesCompacted { .. }
            | Error::ChangesAhead { .. } => ErrorKind::InvalidInput,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::DiskFull { .. } | Error::NoRoomToCompact { .. } => ErrorKind::StorageFull,
            Error::Io { .. } => ErrorKind::Io,
            Error::Poisoned { .. } => ErrorKind::Poisoned,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::AlreadyExists { .. }
            | Error::NotAStore { .. }
            | Error::CompactionConflict { .. }
            | Error::CompactionCancelled
            | Error::CheckpointConflict
            // The failure of the call it happened in; the calls after it, where it
            // poisoned the store, fail as `Poisoned`.
            | Error::Panicked { .. } => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn io_error(kind: io::ErrorKind) -> Error {
        Error::io("write", "/store/0000000001.seg")(io::Error::from(kind))
    }

    #[test]
    fn an_io_error_names_its_operation_and_file_and_a_full_disk_is_its_own_error() {
        let err = io_error(io::ErrorKind::PermissionDenied);
        assert_eq!(err.to_string(), "cannot write /store/0000000001.seg");
        assert_eq!(err.kind(), ErrorKind::Io);
        let full = io_error(io::ErrorKind::StorageFull);
        assert!(matches!(&full, Error::DiskFull { path } if path.ends_with("0000000001.seg")));
        assert_eq!(full.kind(), ErrorKind::StorageFull);
    }

    #[test]
    fn only_damaged_bytes_are_corruption() {
        let corrupt = Error::corrupt("/store/index.tsi", 4096, "a bad checksum");
        assert!(corrupt.is_corruption());
        assert_eq!(corrupt.kind(), ErrorKind::Corrupt);
        assert_eq!(
            corrupt.to_string(),
            "corruption in /store/index.tsi at offset 4096: a bad checksum"
        );
        for err in [
            io_error(io::ErrorKind::UnexpectedEof),
            io_error(io::ErrorKind::StorageFull),
            Error::poisoned(&corrupt),
        ] {
            assert!(!err.is_corruption(), "{err:?}");
        }
    }

    #[test]
    fn a_store_poisoned_again_names_the_first_failure_once() {
        let first = io_error(io::ErrorKind::Other);
        let poisoned = Error::poisoned(&first);
        let again = Error::poisoned(&poisoned);
        for err in [&poisoned, &again] {
            assert_eq!(err.kind(), ErrorKind::Poisoned);
            let cause = err.source().expect("a poisoned store names its cause");
            assert_eq!(cause.to_string(), first.to_string());
            assert!(
                matches!(err, Error::Poisoned { cause } if matches!(**cause, Error::Io { .. })),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_panic_keeps_its_message_when_it_has_one() {
        let message = |payload: Box<dyn std::any::Any + Send>| {
            Error::panicked("the writer thread", &*payload).to_string()
        };
        assert_eq!(
            message(Box::new("a literal")),
            "the writer thread panicked: a literal"
        );
        assert_eq!(
            message(Box::new(String::from("a formatted 7"))),
            "the writer thread panicked: a formatted 7"
        );
        assert_eq!(
            message(Box::new(7_u32)),
            "the writer thread panicked: (its payload is not a message)"
        );
        assert_eq!(
            Error::panicked("the writer thread", &"x").kind(),
            ErrorKind::Other
        );
    }
}
