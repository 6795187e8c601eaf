//! The read and write traits every layer implements, so that layers stack
//! (`Instrumented<Cached<Store>>`) and tests can substitute doubles.

use crate::batch::WriteBatch;
use crate::id::DocId;
use crate::range::TextRange;
use crate::text::{Doc, DocMeta, Text};

/// Reading documents.
pub trait DocRead {
    /// The error of the implementation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The latest committed version of the document, or `None` when it does not exist or is
    /// deleted.
    fn get(&self, id: DocId) -> Result<Option<Doc>, Self::Error>;

    /// The sequence number and text length of the latest version, without reading the text.
    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, Self::Error>;

    /// The part of the latest version that `range` names. A missing document is an error
    /// here (the implementation's "not found"), as is a range the text does not have.
    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, Self::Error>;

    /// A number that changes whenever records may have moved to new places: a compaction
    /// took effect and retired the segments it replaced. A layer that holds [`Doc`]s
    /// between reads (a cache) drops them when it changes, since a held `Doc` keeps its
    /// segment mapped and so keeps a retired segment's file on disk. Implementations whose
    /// records never move keep the default, 0; a layer over another passes its inner one's
    /// through.
    fn placement_epoch(&self) -> u64 {
        0
    }

    /// Copies the latest version into `buf` (cleared first) and returns whether the document
    /// exists. Use this when the caller wants to own or modify the text; [`DocRead::get`]
    /// copies nothing.
    fn read_into(&self, id: DocId, buf: &mut String) -> Result<bool, Self::Error> {
        buf.clear();
        Ok(match self.get(id)? {
            Some(doc) => {
                buf.push_str(&doc);
                true
            }
            None => false,
        })
    }
}

/// Asking the storage under a reader to bring documents into memory ahead of their reads.
pub trait Prefetch: DocRead {
    /// Asks for the records of `ids` to be read into memory and returns without waiting for
    /// them; absent ids are skipped. A hint: a later read is correct whether or not it was
    /// followed. Finding where a record lies may itself read from the disk, so call this
    /// where blocking is allowed.
    fn prefetch(&self, ids: &[DocId]) -> Result<(), Self::Error>;
}

/// Writing documents.
pub trait DocWrite {
    /// The error of the implementation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Replaces the document's text; returns the sequence number of the write.
    fn put(&mut self, id: DocId, text: &str) -> Result<u64, Self::Error>;

    /// Commits every operation of `batch` atomically; returns the sequence number of its last
    /// record, or the last sequence number written before it when the batch is empty.
    fn put_batch(&mut self, batch: &WriteBatch) -> Result<u64, Self::Error>;

    /// Deletes the document; returns whether it existed.
    fn delete(&mut self, id: DocId) -> Result<bool, Self::Error>;

    /// Makes every acknowledged write durable.
    fn sync(&mut self) -> Result<(), Self::Error>;
}

/// What a write path reports about its disk work, for a metrics layer above it. The engine
/// calls it on the writing thread right after the work, so an implementation must be cheap
/// and must not block; it sees failures as well as successes.
pub trait CommitObserver: Send + Sync {
    /// One commit group was written (and synced, when the store syncs each commit).
    fn commit(&self, commit: &CommitEvent);

    /// An explicit sync of the data written so far ran for `duration`; `ok` is whether it
    /// succeeded.
    fn sync(&self, duration: std::time::Duration, ok: bool);
}

/// One commit group, as [`CommitObserver::commit`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitEvent {
    /// Operations (puts and deletes) in the group.
    pub ops: u64,
    /// Encoded bytes of the group.
    pub bytes: u64,
    /// Time spent writing the bytes.
    pub write: std::time::Duration,
    /// Time spent in the sync that made the group durable; `None` when the store leaves
    /// syncing to the operating system.
    pub sync: Option<std::time::Duration>,
    /// Whether the group was committed. A failed group is not visible and poisons the store.
    pub ok: bool,
}

impl CommitEvent {
    /// A commit group of `ops` operations and `bytes` encoded bytes.
    pub fn new(
        ops: u64,
        bytes: u64,
        write: std::time::Duration,
        sync: Option<std::time::Duration>,
        ok: bool,
    ) -> CommitEvent {
        CommitEvent {
            ops,
            bytes,
            write,
            sync,
            ok,
        }
    }
}
