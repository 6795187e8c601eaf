//! The interface every measured engine implements: textstore, its peers, and the in-memory
//! upper bound.
//!
//! Every write method is one durable commit: when it returns, what it wrote survives a power
//! loss (an engine that cannot promise that says so in [`Engine::settings`]). Reads go
//! through a [`Reader`], made on the thread that reads, so that engines whose read handles
//! are tied to a thread (SQLite connections) can be measured as their users use them.

use std::ops::Range;
use std::path::Path;

use store_mmap::DocId;

use crate::corpus::Document;
use crate::error::{Error, Result};

/// A storage engine under measurement.
pub trait Engine: Sync + Sized {
    /// A read handle.
    type Reader<'a>: Reader
    where
        Self: 'a;

    /// The engine's name in reports.
    const NAME: &'static str;

    /// Whether the engine keeps its data in files, so that reopening it and its space on
    /// disk mean something.
    const PERSISTENT: bool = true;

    /// Whether the engine writes otherwise once it has rewritten documents for a while (it
    /// reclaims their old versions' space: compaction, freed pages), so that its batched
    /// puts in steady state measure something its batched puts into a fresh store do not.
    /// One file per document writes each version as the first, and its gigabytes of
    /// rewrites take minutes.
    const HAS_STEADY_STATE: bool = true;

    /// A new, empty engine with its files in `dir` (which exists and is empty).
    fn create(dir: &Path) -> Result<Self>;

    /// The engine whose files are in `dir`, as a restarted program opens it.
    fn open(dir: &Path) -> Result<Self>;

    /// The settings the engine runs with, for the report: durability, cache sizes, and
    /// anything changed from the engine's defaults.
    fn settings(&self) -> String;

    /// Writes every document in one durable commit.
    fn ingest(&self, docs: &[Document]) -> Result<()> {
        let pairs: Vec<(DocId, &str)> =
            docs.iter().map(|doc| (doc.id, doc.text.as_str())).collect();
        self.put_batch(&pairs)
    }

    /// Writes one document in one durable commit.
    fn put(&self, id: DocId, text: &str) -> Result<()>;

    /// Writes `docs` in one durable commit.
    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()>;

    /// A read handle for the calling thread.
    fn reader(&self) -> Result<Self::Reader<'_>>;

    /// Reclaims the space of overwritten versions, if the engine can. `Ok(false)`: it has no
    /// such operation (its space is what it is).
    fn compact(&mut self) -> Result<bool>;

    /// Closes the engine, making everything durable, and releases its files.
    fn close(self) -> Result<()>;
}

/// A read handle of an [`Engine`].
pub trait Reader {
    /// The name of the engine the handle reads, for errors.
    const ENGINE: &'static str;

    /// Calls `f` with the latest text of `id`, without copying it where the engine can hand
    /// out its own memory; `None` if the document does not exist.
    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;

    /// The bytes `range` of the latest text of `id`, checked to be UTF-8 (a range of a
    /// text on char boundaries always is). Engines with their own range extraction override
    /// this; the rest read the document and slice it.
    fn extract<R>(
        &mut self,
        id: DocId,
        range: Range<usize>,
        f: impl FnOnce(&str) -> R,
    ) -> Result<Option<R>> {
        let sliced = self.read(id, |bytes| {
            bytes
                .get(range.clone())
                .and_then(|part| std::str::from_utf8(part).ok())
                .map(f)
        })?;
        match sliced {
            None => Ok(None),
            Some(Some(value)) => Ok(Some(value)),
            Some(None) => Err(Error::WrongResult {
                engine: Self::ENGINE,
                what: format!("document {id}: bytes {range:?} are not a UTF-8 part of its text"),
            }),
        }
    }
}
