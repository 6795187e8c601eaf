//! The operations that are counted, and how each one ended.

/// An operation on a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `put`.
    Put,
    /// `put_batch`.
    PutBatch,
    /// `get` (and `read_into`).
    Get,
    /// `extract`.
    Extract,
    /// `delete`.
    Delete,
    /// `sync`.
    Sync,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 6] = [
        Op::Put,
        Op::PutBatch,
        Op::Get,
        Op::Extract,
        Op::Delete,
        Op::Sync,
    ];

    /// The label value, as in `op="put_batch"`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::PutBatch => "put_batch",
            Op::Get => "get",
            Op::Extract => "extract",
            Op::Delete => "delete",
            Op::Sync => "sync",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Reads are frequent and fast, so only a sample of them is timed.
    pub(crate) fn is_read(self) -> bool {
        matches!(self, Op::Get | Op::Extract)
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// The document does not exist (a `get` that returned nothing, a `delete` of nothing, an
    /// `extract` of a missing document).
    NotFound,
    /// It failed.
    Error(ErrorKind),
}

/// Why an operation failed, coarse enough to alert on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller asked for something invalid: a document over the size limit, a range the
    /// text does not have, a malformed id.
    InvalidInput,
    /// Stored data failed its checks.
    Corrupt,
    /// The operating system refused (I/O error, disk full).
    Io,
    /// An earlier failed write made the store refuse writes until it is reopened.
    Poisoned,
    /// The store or handle is closed.
    Closed,
    /// A `try_` submission found the queue full.
    QueueFull,
    /// Anything else (locked, options, ...).
    Other,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::NotFound,
        Outcome::Error(ErrorKind::InvalidInput),
        Outcome::Error(ErrorKind::Corrupt),
        Outcome::Error(ErrorKind::Io),
        Outcome::Error(ErrorKind::Poisoned),
        Outcome::Error(ErrorKind::Closed),
        Outcome::Error(ErrorKind::QueueFull),
        Outcome::Error(ErrorKind::Other),
    ];

    /// The label value, as in `outcome="not_found"`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Error(ErrorKind::InvalidInput) => "invalid_input",
            Outcome::Error(ErrorKind::Corrupt) => "corrupt",
            Outcome::Error(ErrorKind::Io) => "io_error",
            Outcome::Error(ErrorKind::Poisoned) => "poisoned",
            Outcome::Error(ErrorKind::Closed) => "closed",
            Outcome::Error(ErrorKind::QueueFull) => "queue_full",
            Outcome::Error(ErrorKind::Other) => "other_error",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::NotFound => 1,
            Outcome::Error(kind) => 2 + kind as usize,
        }
    }
}

/// Errors that can say which [`Outcome`] they are. Implemented for the errors of every
/// store layer, so that [`crate::Instrumented`] can wrap any of them.
pub trait Classify {
    /// The outcome this error stands for.
    fn outcome(&self) -> Outcome;
}

impl Classify for store_mmap::Error {
    fn outcome(&self) -> Outcome {
        use store_mmap::Error as E;
        match self {
            E::NotFound { .. } => Outcome::NotFound,
            E::DocumentTooLarge { .. } | E::Range { .. } | E::Id(_) => {
                Outcome::Error(ErrorKind::InvalidInput)
            }
            E::Corrupt { .. } => Outcome::Error(ErrorKind::Corrupt),
            E::DiskFull { .. } | E::Io { .. } => Outcome::Error(ErrorKind::Io),
            E::Poisoned { .. } => Outcome::Error(ErrorKind::Poisoned),
            _ => Outcome::Error(ErrorKind::Other),
        }
    }
}

impl Classify for store_concurrent::Error {
    fn outcome(&self) -> Outcome {
        use store_concurrent::Error as E;
        match self {
            E::Store(inner) => inner.outcome(),
            E::Closed => Outcome::Error(ErrorKind::Closed),
            E::QueueFull { .. } => Outcome::Error(ErrorKind::QueueFull),
            _ => Outcome::Error(ErrorKind::Other),
        }
    }
}
