//! The errors of the async façade.

use std::time::Duration;

use store_format::{ErrorKind, StoreError};

/// What can go wrong in an async call over a handle whose error is `E`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The store refused or failed the operation.
    #[error(transparent)]
    Store(E),
    /// The handle was closed before the call could start.
    #[error("{op}: the store is closed")]
    Closed {
        /// The operation.
        op: &'static str,
    },
    /// The call ran out of time. `may_commit` says whether the write can still commit: it is
    /// false only when the call timed out before its write was handed to the store (waiting
    /// for a concurrency permit), so that retrying it cannot write twice. Reads never commit.
    #[error(
        "{op} timed out after {after:?}{}",
        if *may_commit { "; the write was submitted and may still commit" } else { "; nothing was submitted" }
    )]
    Timeout {
        /// The operation: `get`, `put`, ...
        op: &'static str,
        /// The time limit it was given.
        after: Duration,
        /// Whether a write was submitted and may commit after the timeout.
        may_commit: bool,
    },
    /// The task serving the call was cancelled, because the runtime is shutting down.
    #[error("{op} was cancelled: the runtime is shutting down")]
    Cancelled {
        /// The operation.
        op: &'static str,
    },
}

impl<E> From<E> for Error<E> {
    fn from(err: E) -> Error<E> {
        Error::Store(err)
    }
}

impl<E: StoreError> StoreError for Error<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(err) => err.kind(),
            Error::Closed { .. } => ErrorKind::Closed,
            Error::Timeout { .. } | Error::Cancelled { .. } => ErrorKind::Other,
        }
    }
}

/// The result of an async call over a handle whose error is `E`.
pub type Result<T, E> = std::result::Result<T, Error<E>>;
