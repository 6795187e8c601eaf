//! Bulk reads through the façade: a scan of the live documents and the change feed, with
//! the façade's [`Error`].

use store_format::{Doc, DocId};
use store_mmap::Change;

use crate::error::{Error, Result};

/// Every live document in storage order, zero-copy and lazy: from [`crate::Textstore::scan`].
///
/// Beside writes and compactions it yields every document that was live when it started and
/// was not changed before the scan passed it, exactly once; a document changed during the
/// scan appears at most once, at its version from the start, or not at all. Follow it with
/// [`crate::Textstore::changes_since`] from [`Scan::as_of`] to see every later change.
pub struct Scan<'a> {
    inner: store_mmap::Scan<'a>,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(inner: store_mmap::Scan<'a>) -> Scan<'a> {
        Scan { inner }
    }

    /// The sequence number the scan is as of: the last commit when it started.
    pub fn as_of(&self) -> u64 {
        self.inner.as_of()
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(DocId, Doc)>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.map_err(Error::from))
    }
}

/// Every change committed after a sequence number, in sequence order, up to the last commit
/// when the feed started: from [`crate::Textstore::changes_since`].
///
/// Applied in order to what a reader knew as of the start, the changes give the store as of
/// [`Changes::upto`]: every delete is there, and every document's latest version; a version
/// a later change of the same document superseded may be missing once compaction dropped
/// it.
pub struct Changes {
    inner: store_mmap::Changes,
}

impl Changes {
    pub(crate) fn new(inner: store_mmap::Changes) -> Changes {
        Changes { inner }
    }

    /// The sequence number the feed starts after.
    pub fn since(&self) -> u64 {
        self.inner.since()
    }

    /// The last sequence number the feed reaches.
    pub fn upto(&self) -> u64 {
        self.inner.upto()
    }
}

impl Iterator for Changes {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.map_err(Error::from))
    }
}
