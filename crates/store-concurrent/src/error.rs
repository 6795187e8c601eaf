//! The concurrent handle's errors.

/// What the concurrent handle can fail with. Engine errors, including the I/O error of a
/// failed group commit (handed to every writer in that group), arrive as [`Error::Store`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed or refused the operation. After a failed commit every later write
    /// gets [`store_mmap::Error::Poisoned`] without being queued.
    #[error(transparent)]
    Store(#[from] store_mmap::Error),
    /// The handle was closed; nothing more can be read or written through it.
    #[error("the store is closed")]
    Closed,
    /// A `try_` submission found the write queue full.
    #[error(
        "the write queue is full ({capacity} requests waiting); retry, or use the blocking call"
    )]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// Options that cannot work.
    #[error("invalid writer option: {reason}")]
    InvalidOptions {
        /// Which option and why.
        reason: String,
    },
}

impl store_format::StoreError for Error {
    fn kind(&self) -> store_format::ErrorKind {
        use store_format::ErrorKind;
        match self {
            Error::Store(inner) => inner.kind(),
            Error::Closed => ErrorKind::Closed,
            Error::QueueFull { .. } => ErrorKind::QueueFull,
            Error::InvalidOptions { .. } => ErrorKind::InvalidInput,
        }
    }
}

/// The concurrent handle's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of a thread of the handle that could not be started: `op` names it, as in
/// "spawn the writer thread for", and `dir` is the store.
#[cfg(not(textstore_loom))]
pub(crate) fn spawn_failed(
    op: &'static str,
    dir: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = dir.to_path_buf();
    move |err| {
        Error::Store(store_mmap::Error::Io {
            op,
            path,
            source: std::sync::Arc::new(err),
        })
    }
}
