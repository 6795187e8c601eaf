//! The operations that are counted, and how each one ended.

use store_format::{ErrorKind, StoreError};

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
    /// It failed, with an error of this kind (never [`ErrorKind::NotFound`], which is the
    /// outcome above).
    Error(ErrorKind),
}

/// The error kinds counted apart: every kind of [`ErrorKind::ALL`] but the first,
/// [`ErrorKind::NotFound`], an outcome of its own; a kind a later version adds counts as
/// [`ErrorKind::Other`].
const FAILURES: &[ErrorKind] = ErrorKind::ALL.split_at(1).1;
const _: () = assert!(matches!(ErrorKind::ALL[0], ErrorKind::NotFound));
const _: () = assert!(FAILURES.len() + 2 == Outcome::ALL.len());

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 12] = [
        Outcome::Ok,
        Outcome::NotFound,
        Outcome::Error(FAILURES[0]),
        Outcome::Error(FAILURES[1]),
        Outcome::Error(FAILURES[2]),
        Outcome::Error(FAILURES[3]),
        Outcome::Error(FAILURES[4]),
        Outcome::Error(FAILURES[5]),
        Outcome::Error(FAILURES[6]),
        Outcome::Error(FAILURES[7]),
        Outcome::Error(FAILURES[8]),
        Outcome::Error(FAILURES[9]),
    ];

    /// The outcome of a call that failed with `err`.
    pub fn of_error(err: &impl StoreError) -> Outcome {
        match err.kind() {
            ErrorKind::NotFound => Outcome::NotFound,
            kind => Outcome::Error(kind),
        }
    }

    /// The label value, as in `outcome="not_found"`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Error(kind) => kind.name(),
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::NotFound | Outcome::Error(ErrorKind::NotFound) => 1,
            Outcome::Error(kind) => {
                2 + FAILURES
                    .iter()
                    .position(|&k| k == kind)
                    .unwrap_or(FAILURES.len() - 1)
            }
        }
    }
}
