//! One error for every layer.

use std::fmt;

use store_format::{ErrorKind, StoreError};

/// What a call failed with, whichever layer failed it: the error that says what happened,
/// without the layers it came up through. [`Error::kind`] classifies it; [`Error::engine`]
/// gives the engine's own error, with its path, offset or id, when the engine raised it.
pub struct Error(Box<dyn StoreError>);

/// The result of a textstore call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(inner: impl StoreError) -> Error {
        Error(Box::new(inner))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }

    /// The engine's error, when the engine raised this one: for the path, offset, id or
    /// limit it names.
    pub fn engine(&self) -> Option<&store_mmap::Error> {
        self.inner().downcast_ref()
    }

    /// The error that says what happened, as the layer that raised it typed it.
    pub fn inner(&self) -> &(dyn std::error::Error + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The message of the layer that raised it; what lies behind it is `source()`'s.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl StoreError for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

impl From<store_mmap::Error> for Error {
    fn from(err: store_mmap::Error) -> Error {
        Error::new(err)
    }
}

impl From<store_concurrent::Error> for Error {
    fn from(err: store_concurrent::Error) -> Error {
        match err {
            store_concurrent::Error::Store(engine) => Error::new(engine),
            other => Error::new(other),
        }
    }
}

#[cfg(feature = "cache")]
impl From<store_cache::Error<store_concurrent::Error>> for Error {
    fn from(err: store_cache::Error<store_concurrent::Error>) -> Error {
        match err {
            store_cache::Error::Store(inner) => Error::from(inner),
            other => Error::new(other),
        }
    }
}

#[cfg(feature = "async")]
impl From<store_async::Error<Error>> for Error {
    fn from(err: store_async::Error<Error>) -> Error {
        match err {
            store_async::Error::Store(inner) => inner,
            other => Error::new(other),
        }
    }
}
