//! The capabilities every layer implements or passes through, so that layers stack in any
//! order that makes sense (`AsyncStore<Instrumented<Cached<ConcurrentStore>>>`) and tests
//! substitute a double ([`crate::MemoryStore`]) for any of them:
//! - [`DocRead`]: reads of the latest version;
//! - [`Prefetch`]: asking for documents' bytes ahead of their reads;
//! - [`Residency`]: whether a document's bytes are in memory, so that a read that would wait
//!   on the disk goes where waiting is allowed;
//! - [`DocWrite`]: writes through a shared handle, each returning a [`WriteTicket`] that
//!   completes when the write is durable.
//!
//! Errors say their [`crate::ErrorKind`] through [`StoreError`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::batch::WriteBatch;
use crate::id::DocId;
use crate::kind::StoreError;
use crate::range::TextRange;
use crate::text::{Doc, DocMeta, Text};

/// Reading documents.
pub trait DocRead {
    /// The error of the implementation.
    type Error: StoreError;

    /// The latest committed version of the document, or `None` when it does not exist or is
    /// deleted.
    fn get(&self, id: DocId) -> Result<Option<Doc>, Self::Error>;

    /// The sequence number and text length of the latest version, without reading the text.
    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, Self::Error>;

    /// The part of the latest version that `range` names. A missing document is an error
    /// here (of kind [`crate::ErrorKind::NotFound`]), as is a range the text does not have.
    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, Self::Error>;

    /// Whether the document exists, without reading its text.
    fn contains(&self, id: DocId) -> Result<bool, Self::Error> {
        Ok(self.meta(id)?.is_some())
    }

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

/// Where a document's bytes are: in memory, or on a disk a read would wait for. An async
/// layer reads resident documents inline and sends the others to a blocking pool.
pub trait Residency: DocRead {
    /// The latest version, read only if its bytes are known to be in memory: `None` when
    /// they may not be (read it where blocking is allowed), `Some(None)` for a document that
    /// does not exist. Never waits on the disk.
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>, Self::Error>;

    /// [`DocRead::extract`], made only if the record's bytes are known to be in memory:
    /// `None` when they may not be. A layer that counts or caches reads overrides it so that
    /// it is one extraction, not a get and an extraction.
    fn extract_if_resident(
        &self,
        id: DocId,
        range: TextRange,
    ) -> Result<Option<Text>, Self::Error> {
        match self.get_if_resident(id)? {
            Some(_) => self.extract(id, range).map(Some),
            None => Ok(None),
        }
    }

    /// Looks again at what is in memory, for [`Residency::get_if_resident`]: may ask the
    /// operating system about every mapping, so call it where blocking is allowed, every so
    /// many reads.
    fn refresh_residency(&self) -> Result<(), Self::Error>;

    /// A read that was allowed to block has just brought `id`'s bytes into memory.
    fn note_resident(&self, id: DocId);
}

/// The outcome of a write submitted to a shared handle: wait on it, or `.await` it. Dropping
/// it does not cancel the write.
pub trait WriteTicket: Future<Output = Result<Self::Value, Self::Error>> + Send + Unpin {
    /// What the write yields: a sequence number, or for a delete whether there was a
    /// document to delete.
    type Value: Send + 'static;
    /// The error of the handle.
    type Error: StoreError;

    /// Blocks until the write is durable (or failed).
    fn wait(self) -> Result<Self::Value, Self::Error>;

    /// Whether the outcome is in: [`WriteTicket::wait`] would not block.
    fn is_ready(&self) -> bool;
}

/// A write submitted without waiting for room: queued, with its ticket, or handed back when
/// the queue was full.
#[must_use = "a write handed back was not queued"]
#[derive(Debug)]
pub enum Offer<K, I> {
    /// Queued; the ticket completes when it commits.
    Queued(K),
    /// The queue was full; nothing was queued.
    Full(I),
}

impl<K, I> Offer<K, I> {
    /// Changes the ticket of a queued write.
    pub fn map<L>(self, f: impl FnOnce(K) -> L) -> Offer<L, I> {
        match self {
            Offer::Queued(ticket) => Offer::Queued(f(ticket)),
            Offer::Full(input) => Offer::Full(input),
        }
    }
}

/// What offering a write to `W` gives: the ticket of a write that yields `T`, or the input
/// `I` handed back.
pub type OfferOf<W, T, I> = Offer<<W as DocWrite>::Ticket<T>, I>;

/// Writing documents through a shared handle (`&self`): each write is queued and returns a
/// ticket that completes once the write is durable, so that many threads or tasks write
/// through one handle and their writes commit together.
pub trait DocWrite: DocRead {
    /// The ticket of a write that yields `T`.
    type Ticket<T: Send + 'static>: WriteTicket<Value = T, Error = Self::Error>;

    /// Replaces the document's text; the ticket yields the write's sequence number. Waits
    /// for room in the queue.
    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Self::Ticket<u64>, Self::Error>;

    /// Commits every operation of `batch` atomically; the ticket yields the sequence number
    /// of its last record (the last written before it, for an empty batch).
    fn put_batch(&self, batch: WriteBatch) -> Result<Self::Ticket<u64>, Self::Error>;

    /// Deletes the document; the ticket yields the tombstone's sequence number, or `None`
    /// when there was no document to delete.
    fn delete(&self, id: DocId) -> Result<Self::Ticket<Option<u64>>, Self::Error>;

    /// [`DocWrite::put`] without waiting for room: a full queue hands the text back.
    fn offer_put(&self, id: DocId, text: Text) -> Result<OfferOf<Self, u64, Text>, Self::Error>;

    /// [`DocWrite::put_batch`] without waiting for room.
    fn offer_batch(&self, batch: WriteBatch)
    -> Result<OfferOf<Self, u64, WriteBatch>, Self::Error>;

    /// [`DocWrite::delete`] without waiting for room.
    fn offer_delete(&self, id: DocId) -> Result<OfferOf<Self, Option<u64>, DocId>, Self::Error>;

    /// Makes every acknowledged write durable, whatever the handle's durability setting.
    fn sync(&self) -> Result<(), Self::Error>;

    /// Commits what is queued, makes it durable and stops taking writes; later calls on this
    /// handle or its clones fail with a [`crate::ErrorKind::Closed`] error.
    fn close(&self) -> Result<(), Self::Error>;
}

/// A ticket of an inner layer whose error a layer above turns into its own (through `From`):
/// what a layer that passes writes through returns.
#[must_use = "a ticket says whether the write committed; drop it explicitly to ignore that"]
pub struct IntoTicket<K, E> {
    inner: K,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<K, E> IntoTicket<K, E> {
    /// Wraps an inner layer's ticket.
    pub fn new(inner: K) -> IntoTicket<K, E> {
        IntoTicket {
            inner,
            error: std::marker::PhantomData,
        }
    }
}

impl<K: std::fmt::Debug, E> std::fmt::Debug for IntoTicket<K, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<K: WriteTicket, E: From<K::Error>> Future for IntoTicket<K, E> {
    type Output = Result<K::Value, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner)
            .poll(cx)
            .map(|r| r.map_err(E::from))
    }
}

impl<K: WriteTicket, E: StoreError + From<K::Error>> WriteTicket for IntoTicket<K, E> {
    type Value = K::Value;
    type Error = E;

    fn wait(self) -> Result<K::Value, E> {
        self.inner.wait().map_err(E::from)
    }

    fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }
}

/// A ticket whose outcome is known when it is made: for handles that write in the caller's
/// thread.
#[derive(Debug)]
#[must_use = "a ticket says whether the write committed; drop it explicitly to ignore that"]
pub struct Ready<T, E>(Option<Result<T, E>>);

impl<T, E> Ready<T, E> {
    /// A ticket that yields `outcome`.
    pub fn new(outcome: Result<T, E>) -> Ready<T, E> {
        Ready(Some(outcome))
    }
}

// The outcome is moved out whole, never pinned in place.
impl<T, E> Unpin for Ready<T, E> {}

impl<T, E> Future for Ready<T, E> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<T, E>> {
        Poll::Ready(
            self.get_mut()
                .0
                .take()
                .expect("a ready ticket is not polled after it returned"),
        )
    }
}

impl<T: Send + 'static, E: StoreError> WriteTicket for Ready<T, E> {
    type Value = T;
    type Error = E;

    fn wait(mut self) -> Result<T, E> {
        self.0.take().expect("a ready ticket is waited on once")
    }

    fn is_ready(&self) -> bool {
        true
    }
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
