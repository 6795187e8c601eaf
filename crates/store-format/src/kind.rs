//! What kind of failure an error is, whatever layer raised it.

use std::fmt;

/// The kind of a failure, in the shape of [`std::io::ErrorKind`]: coarse enough that a caller
/// or a metrics layer decides what to do without knowing which layer failed or matching its
/// nested variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document does not exist (an extraction of a missing document).
    NotFound,
    /// The caller asked for something invalid: a document over the size limit, a range the
    /// text does not have, a malformed id, an invalid option.
    InvalidInput,
    /// Stored data failed its checks.
    Corrupt,
    /// The operating system refused a read or a write.
    Io,
    /// The device holding the store is full.
    StorageFull,
    /// An earlier failed write made the store refuse writes until it is reopened.
    Poisoned,
    /// Another process or handle holds the store's writer lock.
    Locked,
    /// A write was asked of a handle opened read-only.
    ReadOnly,
    /// The store or handle is closed.
    Closed,
    /// A submission that does not wait found the write queue full.
    QueueFull,
    /// Anything else: a cancelled or superseded maintenance step, a directory that is not a
    /// store.
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::InvalidInput,
        ErrorKind::Corrupt,
        ErrorKind::Io,
        ErrorKind::StorageFull,
        ErrorKind::Poisoned,
        ErrorKind::Locked,
        ErrorKind::ReadOnly,
        ErrorKind::Closed,
        ErrorKind::QueueFull,
        ErrorKind::Other,
    ];

    /// A short snake-case name, as a metrics label takes it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Io => "io_error",
            ErrorKind::StorageFull => "storage_full",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::Locked => "locked",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::Closed => "closed",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::Other => "other_error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of a store layer: an error that says its [`ErrorKind`]. Every layer's error
/// implements it, so that a layer above classifies any error without knowing its crate.
pub trait StoreError: std::error::Error + Send + Sync + 'static {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::StorageFull.to_string(), "storage_full");
    }
}
