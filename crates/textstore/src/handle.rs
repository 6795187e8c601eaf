//! `Textstore`: the concurrent handle with the layers the features turn on in front of it.

use std::path::{Path, PathBuf};

use store_concurrent::ConcurrentStore;
use store_format::{
    Doc, DocId, DocMeta, DocRead, DocWrite, IntoTicket, Offer, Prefetch, Residency, Text,
    TextRange, WriteBatch,
};
use store_mmap::{BackupReport, CompactionReport, DiskSpace, Refreshed, StoreStats};

use crate::builder::Builder;
use crate::error::{Error, Result};
use crate::feed::{Changes, Scan};

/// The layers in front of the concurrent handle, as the features choose them: the cache
/// first, so that the metrics count every call the program makes, hits included.
#[cfg(all(feature = "cache", feature = "metrics"))]
pub(crate) type Stack = store_metrics::Instrumented<store_cache::Cached<ConcurrentStore>>;
#[cfg(all(feature = "cache", not(feature = "metrics")))]
pub(crate) type Stack = store_cache::Cached<ConcurrentStore>;
#[cfg(all(not(feature = "cache"), feature = "metrics"))]
pub(crate) type Stack = store_metrics::Instrumented<ConcurrentStore>;
#[cfg(all(not(feature = "cache"), not(feature = "metrics")))]
pub(crate) type Stack = ConcurrentStore;

/// A store, shared by every thread that clones it: reads on the caller's thread without a
/// lock, writes committed in groups by one writer thread, each returning a ticket that
/// completes when the write is durable. Open one with [`Textstore::builder`].
///
/// It implements the traits of every layer ([`DocRead`], [`DocWrite`], [`Prefetch`],
/// [`Residency`]), so it goes wherever a layer is expected: under `AsyncStore`, or a layer
/// of a program's own.
#[derive(Clone)]
pub struct Textstore {
    stack: std::sync::Arc<Stack>,
    /// The concurrent handle at the bottom of the stack, for what only it does.
    handle: ConcurrentStore,
}

impl Textstore {
    /// A builder for the store in `dir`: it opens the store, creating it if `dir` is absent
    /// or empty, unless told otherwise.
    pub fn builder(dir: impl Into<PathBuf>) -> Builder {
        Builder::new(dir.into())
    }

    pub(crate) fn new(stack: Stack, handle: ConcurrentStore) -> Textstore {
        Textstore {
            stack: std::sync::Arc::new(stack),
            handle,
        }
    }

    /// The concurrent handle under the layers: its calls skip the cache and the metrics.
    pub fn handle(&self) -> &ConcurrentStore {
        &self.handle
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.handle.dir()
    }

    /// Live documents.
    pub fn len(&self) -> usize {
        self.handle.len()
    }

    /// Whether the store holds no live document.
    pub fn is_empty(&self) -> bool {
        self.handle.is_empty()
    }

    /// The sequence number of the latest write.
    pub fn last_seq(&self) -> u64 {
        self.handle.last_seq()
    }

    /// The store's size and shape, after every write queued before this call.
    pub fn stats(&self) -> Result<StoreStats> {
        Ok(self.handle.stats()?)
    }

    /// The room left on the store's file system.
    pub fn disk_space(&self) -> Result<DiskSpace> {
        Ok(self.handle.disk_space()?)
    }

    /// The ids of the live documents, in no particular order, read lazily from the index:
    /// see [`ConcurrentStore::ids`] for what a walk beside writes sees.
    pub fn ids(&self) -> Result<impl Iterator<Item = Result<DocId>> + use<>> {
        Ok(self.handle.ids()?.map(|found| found.map_err(Error::from)))
    }

    /// Every live document in storage order, zero-copy and lazy, beside writes and
    /// compactions: see [`Scan`] for exactly what it yields.
    pub fn scan(&self) -> Result<Scan<'_>> {
        Ok(Scan::new(self.handle.scan()?))
    }

    /// Every change committed after `since`, in sequence order, up to the last commit now:
    /// what an indexer applies to catch up. Below [`Textstore::change_floor`] (a compaction
    /// dropped a delete there) or past the last commit it fails with an error that says to
    /// rescan: [`Textstore::scan`], then the changes from [`Scan::as_of`].
    pub fn changes_since(&self, since: u64) -> Result<Changes> {
        Ok(Changes::new(self.handle.changes_since(since)?))
    }

    /// The lowest sequence number [`Textstore::changes_since`] starts from.
    pub fn change_floor(&self) -> u64 {
        self.handle.change_floor()
    }

    /// Compacts every segment that holds dead bytes; reads and writes go on meanwhile.
    /// Short of room on the file system for all the copies at once, it goes in rounds and
    /// counts what it could not take in the report's `segments_left`; where it can take
    /// nothing, it fails with an error of kind `StorageFull` before it writes a copy.
    pub fn compact(&self) -> Result<CompactionReport> {
        Ok(self.handle.compact()?)
    }

    /// Writes a consistent copy of the store into `dir`, which must not exist.
    pub fn backup(&self, dir: impl AsRef<Path>) -> Result<BackupReport> {
        Ok(self.handle.backup(dir)?)
    }

    /// Brings a read-only handle up to its writer's latest commit.
    pub fn refresh(&self) -> Result<Refreshed> {
        Ok(self.handle.refresh()?)
    }

    /// The collector every call and commit is recorded into.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> &std::sync::Arc<store_metrics::Metrics> {
        self.stack.metrics()
    }

    /// A snapshot of the metrics with the store's, the queue's (and, with `cache`, the
    /// cache's) figures added: what [`crate::prometheus`] renders.
    #[cfg(feature = "metrics")]
    pub fn snapshot(&self) -> Result<store_metrics::Snapshot> {
        let snapshot = self
            .metrics()
            .snapshot()
            .with_stats(&self.stats()?)
            .with_stats(&self.handle.queue_stats())
            .with_stats(&self.handle.compaction_stats())
            .with_stats(&self.handle.scrub_stats());
        #[cfg(feature = "cache")]
        let snapshot = snapshot.with_stats(&self.cache().stats());
        Ok(snapshot)
    }

    /// The cache in front of the handle.
    #[cfg(feature = "cache")]
    pub fn cache(&self) -> &store_cache::Cached<ConcurrentStore> {
        #[cfg(feature = "metrics")]
        return self.stack.inner();
        #[cfg(not(feature = "metrics"))]
        return &self.stack;
    }
}

impl std::fmt::Debug for Textstore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Textstore")
            .field("dir", &self.dir())
            .field("documents", &self.len())
            .finish()
    }
}

impl DocRead for Textstore {
    type Error = Error;

    fn get(&self, id: DocId) -> Result<Option<Doc>> {
        Ok(self.stack.get(id)?)
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>> {
        Ok(self.stack.meta(id)?)
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        Ok(self.stack.extract(id, range)?)
    }

    fn contains(&self, id: DocId) -> Result<bool> {
        Ok(self.stack.contains(id)?)
    }

    fn placement_epoch(&self) -> u64 {
        self.stack.placement_epoch()
    }

    fn read_into(&self, id: DocId, buf: &mut String) -> Result<bool> {
        Ok(self.stack.read_into(id, buf)?)
    }
}

impl Prefetch for Textstore {
    fn prefetch(&self, ids: &[DocId]) -> Result<()> {
        Ok(self.stack.prefetch(ids)?)
    }
}

impl Residency for Textstore {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>> {
        Ok(self.stack.get_if_resident(id)?)
    }

    fn refresh_residency(&self) -> Result<()> {
        Ok(self.stack.refresh_residency()?)
    }

    fn note_resident(&self, id: DocId) {
        self.stack.note_resident(id);
    }
}

/// The ticket of a write through the stack, yielding `T`.
type StackTicket<T> = <Stack as DocWrite>::Ticket<T>;

impl DocWrite for Textstore {
    type Ticket<T: Send + 'static> = IntoTicket<StackTicket<T>, Error>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Self::Ticket<u64>> {
        Ok(IntoTicket::new(self.stack.put(id, text)?))
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Self::Ticket<u64>> {
        Ok(IntoTicket::new(self.stack.put_batch(batch)?))
    }

    fn delete(&self, id: DocId) -> Result<Self::Ticket<Option<u64>>> {
        Ok(IntoTicket::new(self.stack.delete(id)?))
    }

    fn offer_put(&self, id: DocId, text: Text) -> Result<Offer<Self::Ticket<u64>, Text>> {
        Ok(self.stack.offer_put(id, text)?.map(IntoTicket::new))
    }

    fn offer_batch(&self, batch: WriteBatch) -> Result<Offer<Self::Ticket<u64>, WriteBatch>> {
        Ok(self.stack.offer_batch(batch)?.map(IntoTicket::new))
    }

    fn offer_delete(&self, id: DocId) -> Result<Offer<Self::Ticket<Option<u64>>, DocId>> {
        Ok(self.stack.offer_delete(id)?.map(IntoTicket::new))
    }

    fn sync(&self) -> Result<()> {
        Ok(self.stack.sync()?)
    }

    fn close(&self) -> Result<()> {
        Ok(DocWrite::close(&*self.stack)?)
    }
}
