//! The errors of the caching layer.

use std::path::PathBuf;

use store_format::{DocId, ErrorKind, RangeError, StoreError};

/// An error of [`crate::Cached`]: one of the reader it wraps, or one of its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The wrapped reader failed.
    #[error(transparent)]
    Store(E),
    /// An extraction asked for a document that does not exist.
    #[error("document {id} does not exist")]
    NotFound {
        /// The document.
        id: DocId,
    },
    /// An extraction asked for a range the document does not have.
    #[error("document {id}: the range does not fit its text")]
    Range {
        /// The document.
        id: DocId,
        /// What is wrong with the range.
        #[source]
        source: RangeError,
    },
    /// The file of hot ids could not be read or written.
    #[error("cannot {action} the hot-id file {}", path.display())]
    HotFile {
        /// What was being done: "read", "write", "rename".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file of hot ids holds something else.
    #[error("{} line {line}: {reason}", path.display())]
    BadHotFile {
        /// The file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
}

impl<E> From<E> for Error<E> {
    fn from(inner: E) -> Error<E> {
        Error::Store(inner)
    }
}

impl<E: StoreError> StoreError for Error<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(inner) => inner.kind(),
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Range { .. } => ErrorKind::InvalidInput,
            Error::HotFile { .. } => ErrorKind::Io,
            Error::BadHotFile { .. } => ErrorKind::Corrupt,
        }
    }
}
