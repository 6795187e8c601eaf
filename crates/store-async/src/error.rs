//! The errors of the async façade.

use std::time::Duration;

/// What can go wrong in an async call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed the operation.
    #[error(transparent)]
    Store(#[from] store_concurrent::Error),
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

/// The result of an async call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
