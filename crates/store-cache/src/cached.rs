//! `Cached<R>`: verified documents and their offset tables, kept in moka caches keyed by id
//! and sequence number, over any reader.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::sync::Cache;
use store_format::{
    CharOffsets, Doc, DocId, DocMeta, DocRead, DocWrite, IntoTicket, LineOffsets, Offer, Prefetch,
    Residency, Text, TextRange, WriteBatch,
};

use crate::error::Error;
use crate::popularity::{self, Popularity};

/// What a [`Cached`] keeps.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Bytes of document text the document cache holds; 0 turns it off.
    pub doc_bytes: u64,
    /// Documents shorter than this are read from the reader and not cached: for them a
    /// cache lookup costs more than the read it saves (see the crate docs).
    pub doc_min_bytes: u64,
    /// Bytes of offset tables the table cache holds; 0 turns it off.
    pub table_bytes: u64,
    /// Documents shorter than this resolve line and char ranges by scanning, which costs
    /// less than a table lookup.
    pub table_min_doc_bytes: u64,
    /// Ids whose reads are counted to find the hot ones; 0 turns tracking off.
    pub tracked_ids: usize,
    /// Hot ids written by [`Cached::close`] and prefetched by [`Cached::open`].
    pub hot_ids: usize,
}

impl Default for CacheOptions {
    /// 64 MiB of documents of 8 KiB and more, 16 MiB of tables for documents of 64 KiB and
    /// more, 4096 ids tracked and the 1024 hottest saved.
    fn default() -> CacheOptions {
        CacheOptions {
            doc_bytes: 64 << 20,
            doc_min_bytes: 8 << 10,
            table_bytes: 16 << 20,
            table_min_doc_bytes: 64 << 10,
            tracked_ids: 4096,
            hot_ids: 1024,
        }
    }
}

/// A cache key: a version of a document. A write gives the document a new sequence number,
/// so a cached version is never served after a put or a delete: every read looks up the
/// latest sequence number first, and an older version's key is never asked for again (it
/// ages out of the cache).
type Version = (DocId, u64);

/// An offset table of one version.
#[derive(Clone)]
enum Table {
    Lines(Arc<LineOffsets>),
    Chars(Arc<CharOffsets>),
}

/// A reader with a cache of verified documents, a cache of line and char offset tables for
/// large documents, and a count of the hottest ids.
///
/// A hit skips the read's verification (checksum and UTF-8 over the whole text), which the
/// version passed when it was cached; the text is the reader's own handle, so a cached
/// document over `store-mmap` costs the cache its weight in accounting, not a copy. A held
/// document keeps its segment mapped, as any [`Doc`] does; so when the reader's
/// [`DocRead::placement_epoch`] changes (a compaction retired segments), the cache drops
/// every document it holds, and the retired files can go.
pub struct Cached<R> {
    inner: R,
    docs: Option<Cache<Version, Doc>>,
    doc_min_bytes: u64,
    tables: Option<Cache<(Version, bool), Table>>,
    table_min_doc_bytes: u64,
    popularity: Option<Popularity>,
    hot_ids: usize,
    counters: Counters,
    /// The reader's placement epoch the cached documents were read under; see
    /// [`Cached::drop_moved`].
    epoch: AtomicU64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    table_hits: AtomicU64,
    table_builds: AtomicU64,
}

/// What a [`Cached`] has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    hits: u64,
    misses: u64,
    docs: u64,
    doc_bytes: u64,
    table_hits: u64,
    table_builds: u64,
}

impl store_format::VisitStats for CacheStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.counter(
            "textstore_cache_hits_total",
            "Reads of an existing document served from the cache.",
            self.hits,
        );
        out.counter(
            "textstore_cache_misses_total",
            "Reads of an existing document the cache did not hold.",
            self.misses,
        );
        out.gauge(
            "textstore_cache_documents",
            "Documents the cache holds.",
            self.docs as f64,
        );
        out.gauge(
            "textstore_cache_document_bytes",
            "Text bytes the cache holds.",
            self.doc_bytes as f64,
        );
        out.counter(
            "textstore_cache_table_hits_total",
            "Line and char ranges resolved with a cached offset table.",
            self.table_hits,
        );
        out.counter(
            "textstore_cache_table_builds_total",
            "Offset tables built.",
            self.table_builds,
        );
    }
}

impl CacheStats {
    /// Reads of an existing document served from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }
    /// Reads of an existing document that went to the reader.
    pub fn misses(&self) -> u64 {
        self.misses
    }
    /// Hits over hits and misses; 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        match self.hits + self.misses {
            0 => 0.0,
            reads => self.hits as f64 / reads as f64,
        }
    }
    /// Documents cached now.
    pub fn docs(&self) -> u64 {
        self.docs
    }
    /// Weight of the documents cached now: text bytes plus a fixed cost per entry.
    pub fn doc_bytes(&self) -> u64 {
        self.doc_bytes
    }
    /// Range extractions resolved through a cached table.
    pub fn table_hits(&self) -> u64 {
        self.table_hits
    }
    /// Tables built.
    pub fn table_builds(&self) -> u64 {
        self.table_builds
    }
}

/// What an entry costs beyond its text or table: key, handle and moka's own bookkeeping.
const ENTRY_OVERHEAD_BYTES: u64 = 128;

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes as u64 + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
}

impl<R: DocRead> Cached<R> {
    /// Wraps `inner` with empty caches.
    pub fn new(inner: R, options: &CacheOptions) -> Cached<R> {
        let docs = (options.doc_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(options.doc_bytes)
                .weigher(|_: &Version, doc: &Doc| weight(doc.len()))
                .build()
        });
        let tables = (options.table_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(options.table_bytes)
                .weigher(|_: &(Version, bool), table: &Table| {
                    weight(match table {
                        Table::Lines(lines) => lines.heap_bytes(),
                        Table::Chars(chars) => chars.heap_bytes(),
                    })
                })
                .build()
        });
        Cached {
            docs,
            doc_min_bytes: options.doc_min_bytes,
            tables,
            table_min_doc_bytes: options.table_min_doc_bytes,
            popularity: (options.tracked_ids > 0).then(|| Popularity::new(options.tracked_ids)),
            hot_ids: options.hot_ids,
            counters: Counters::default(),
            epoch: AtomicU64::new(inner.placement_epoch()),
            inner,
        }
    }

    /// The wrapped reader.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader, to write through: a write gives the document a new sequence
    /// number, so nothing cached needs invalidating.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The hottest ids, most read first, at most `n`.
    pub fn hottest(&self, n: usize) -> Vec<DocId> {
        self.popularity
            .as_ref()
            .map_or_else(Vec::new, |popularity| popularity.hottest(n))
    }

    /// What the caches have done.
    pub fn stats(&self) -> CacheStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (docs, doc_bytes) = self.docs.as_ref().map_or((0, 0), |docs| {
            // Counts lag behind recent inserts until moka's pending work runs.
            docs.run_pending_tasks();
            (docs.entry_count(), docs.weighted_size())
        });
        CacheStats {
            hits: load(&self.counters.hits),
            misses: load(&self.counters.misses),
            docs,
            doc_bytes,
            table_hits: load(&self.counters.table_hits),
            table_builds: load(&self.counters.table_builds),
        }
    }

    /// Writes the hottest ids to `hot_file` and returns the reader.
    pub fn close(self, hot_file: &Path) -> Result<R, Error<R::Error>> {
        popularity::save(hot_file, &self.hottest(self.hot_ids))?;
        Ok(self.inner)
    }

    fn record(&self, id: DocId) {
        if let Some(popularity) = &self.popularity {
            popularity.record(id);
        }
    }

    /// Drops every cached document once the reader's records have moved (a compaction took
    /// effect): a cached [`Doc`] keeps its segment mapped, and so would keep a retired
    /// segment's file on disk for as long as the document stays hot. The next read of each
    /// finds it at its new place. Returns the epoch the caller reads under.
    fn drop_moved(&self, docs: &Cache<Version, Doc>) -> u64 {
        let now = self.inner.placement_epoch();
        let seen = self.epoch.load(Ordering::Acquire);
        if seen != now
            && self
                .epoch
                .compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // Key by key rather than `invalidate_all`, which only marks the entries and
            // leaves their documents (and mappings) held until moka's maintenance evicts them.
            for (key, _) in docs.iter() {
                docs.invalidate(&*key);
            }
            docs.run_pending_tasks();
        }
        now
    }

    /// The latest version, from the cache when it holds it.
    fn get_version(&self, id: DocId) -> Result<Option<Doc>, R::Error> {
        self.record(id);
        let Some(docs) = &self.docs else {
            return self.inner.get(id);
        };
        let epoch = self.drop_moved(docs);
        let Some(meta) = self.inner.meta(id)? else {
            return Ok(None);
        };
        if meta.text_len < self.doc_min_bytes {
            return self.inner.get(id);
        }
        if let Some(doc) = docs.get(&(id, meta.seq)) {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(doc));
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let doc = self.inner.get(id)?;
        // Keyed by the version read, which is newer than `meta` if a write came between.
        if let Some(doc) = &doc {
            let key = (id, doc.seq());
            docs.insert(key, doc.clone());
            // Records moved while this one was read: it may be from a retired segment, and
            // the drop in `drop_moved` may have run before the insert.
            if self.inner.placement_epoch() != epoch {
                docs.invalidate(&key);
            }
        }
        Ok(doc)
    }

    /// The offset table of `doc` for `range`, when the range needs one and the document is
    /// large enough to gain from it.
    fn table(&self, id: DocId, doc: &Doc, range: &TextRange) -> Option<Table> {
        let tables = self.tables.as_ref()?;
        let lines = match range {
            TextRange::Lines { .. } => true,
            TextRange::Chars { .. } => false,
            _ => return None,
        };
        if (doc.len() as u64) < self.table_min_doc_bytes {
            return None;
        }
        let key = ((id, doc.seq()), lines);
        if let Some(table) = tables.get(&key) {
            self.counters.table_hits.fetch_add(1, Ordering::Relaxed);
            return Some(table);
        }
        self.counters.table_builds.fetch_add(1, Ordering::Relaxed);
        let table = match lines {
            true => Table::Lines(Arc::new(LineOffsets::new(doc))),
            false => Table::Chars(Arc::new(CharOffsets::new(doc))),
        };
        tables.insert(key, table.clone());
        Some(table)
    }
}

impl<R: Prefetch> Cached<R> {
    /// Wraps `inner` and prefetches the ids `hot_file` holds, the hottest of the last
    /// [`Cached::close`]; a missing file holds none. Returns the cache and how many ids it
    /// prefetched.
    pub fn open(
        inner: R,
        options: &CacheOptions,
        hot_file: &Path,
    ) -> Result<(Cached<R>, usize), Error<R::Error>> {
        let ids = popularity::load(hot_file)?;
        inner.prefetch(&ids).map_err(Error::Store)?;
        Ok((Cached::new(inner, options), ids.len()))
    }
}

impl<R: DocRead> DocRead for Cached<R> {
    type Error = Error<R::Error>;

    fn get(&self, id: DocId) -> Result<Option<Doc>, Self::Error> {
        self.get_version(id).map_err(Error::Store)
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, Self::Error> {
        self.inner.meta(id).map_err(Error::Store)
    }

    fn placement_epoch(&self) -> u64 {
        self.inner.placement_epoch()
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, Self::Error> {
        let doc = self.get(id)?.ok_or(Error::NotFound { id })?;
        let resolved = match self.table(id, &doc, &range) {
            Some(Table::Lines(lines)) => range.resolve_with(&doc, Some(&lines), None),
            Some(Table::Chars(chars)) => range.resolve_with(&doc, None, Some(&chars)),
            None => range.resolve(&doc),
        };
        let range = resolved.map_err(|source| Error::Range { id, source })?;
        Ok(doc.text().slice(range))
    }
}

impl<R: Prefetch> Prefetch for Cached<R> {
    fn prefetch(&self, ids: &[DocId]) -> Result<(), Self::Error> {
        self.inner.prefetch(ids).map_err(Error::Store)
    }
}

/// Asks the reader: knowing whether the cache holds the latest version would take a look at
/// the record's header, which may itself wait on the disk.
impl<R: Residency> Residency for Cached<R> {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>, Self::Error> {
        self.record(id);
        self.inner.get_if_resident(id).map_err(Error::Store)
    }

    fn extract_if_resident(
        &self,
        id: DocId,
        range: TextRange,
    ) -> Result<Option<Text>, Self::Error> {
        self.record(id);
        self.inner
            .extract_if_resident(id, range)
            .map_err(Error::Store)
    }

    fn refresh_residency(&self) -> Result<(), Self::Error> {
        self.inner.refresh_residency().map_err(Error::Store)
    }

    fn note_resident(&self, id: DocId) {
        self.inner.note_resident(id);
    }
}

/// Writes go to the reader unchanged: the cache is keyed by version, and every read asks the
/// reader for the latest version first, so a write never leaves a stale document served.
impl<R: DocWrite> DocWrite for Cached<R> {
    type Ticket<T: Send + 'static> = IntoTicket<R::Ticket<T>, Error<R::Error>>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Self::Ticket<u64>, Self::Error> {
        self.inner
            .put(id, text)
            .map(IntoTicket::new)
            .map_err(Error::Store)
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Self::Ticket<u64>, Self::Error> {
        self.inner
            .put_batch(batch)
            .map(IntoTicket::new)
            .map_err(Error::Store)
    }

    fn delete(&self, id: DocId) -> Result<Self::Ticket<Option<u64>>, Self::Error> {
        self.inner
            .delete(id)
            .map(IntoTicket::new)
            .map_err(Error::Store)
    }

    fn offer_put(
        &self,
        id: DocId,
        text: Text,
    ) -> Result<Offer<Self::Ticket<u64>, Text>, Self::Error> {
        self.inner
            .offer_put(id, text)
            .map(|offer| offer.map(IntoTicket::new))
            .map_err(Error::Store)
    }

    fn offer_batch(
        &self,
        batch: WriteBatch,
    ) -> Result<Offer<Self::Ticket<u64>, WriteBatch>, Self::Error> {
        self.inner
            .offer_batch(batch)
            .map(|offer| offer.map(IntoTicket::new))
            .map_err(Error::Store)
    }

    fn offer_delete(
        &self,
        id: DocId,
    ) -> Result<Offer<Self::Ticket<Option<u64>>, DocId>, Self::Error> {
        self.inner
            .offer_delete(id)
            .map(|offer| offer.map(IntoTicket::new))
            .map_err(Error::Store)
    }

    fn sync(&self) -> Result<(), Self::Error> {
        self.inner.sync().map_err(Error::Store)
    }

    fn close(&self) -> Result<(), Self::Error> {
        self.inner.close().map_err(Error::Store)
    }
}
