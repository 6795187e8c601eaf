//! textstore as its users run it from several threads: a [`ConcurrentStore`] with its
//! default options.

use std::ops::Range;
use std::path::Path;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{BatchOp, DocId, StoreOptions, TextRange};

use crate::corpus::Document;
use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// textstore's concurrent handle.
pub struct Textstore {
    store: ConcurrentStore,
}

const NAME: &str = "textstore";

impl Textstore {
    /// One durable commit of texts the caller lends: written to the file without a copy
    /// into a batch first, as LMDB's transaction writes them once.
    fn commit_borrowed(&self, ops: &[BatchOp<'_>]) -> Result<()> {
        self.store
            .commit_ops(ops)
            .map_err(Error::engine(NAME, "commit_ops"))?;
        Ok(())
    }
}

impl Engine for Textstore {
    type Reader<'a> = &'a ConcurrentStore;

    const NAME: &'static str = NAME;

    fn create(dir: &Path) -> Result<Self> {
        let store = ConcurrentStore::create(dir, StoreOptions::new(), WriterOptions::default())
            .map_err(Error::engine(NAME, "create"))?;
        Ok(Textstore { store })
    }

    fn open(dir: &Path) -> Result<Self> {
        let store = ConcurrentStore::open(dir, StoreOptions::new(), WriterOptions::default())
            .map_err(Error::engine(NAME, "open"))?;
        Ok(Textstore { store })
    }

    fn settings(&self) -> String {
        "ConcurrentStore with default options: fdatasync per commit, 256 MiB segments, \
         group commit, automatic compaction (dead ratio 0.5, at least 64 MiB dead); batches \
         (the bulk ingest in one) go through commit_ops, which writes the caller's texts \
         without copying them first and spans segments when it must"
            .to_owned()
    }

    fn ingest(&self, docs: &[Document]) -> Result<()> {
        let ops: Vec<BatchOp<'_>> = docs
            .iter()
            .map(|doc| BatchOp::Put {
                id: doc.id,
                text: &doc.text,
            })
            .collect();
        self.commit_borrowed(&ops)
    }

    /// A durable put with the text borrowed, as LMDB's and redb's are: `commit_ops` blocks
    /// until the commit is durable, and commits on the calling thread when no other is.
    fn put(&self, id: DocId, text: &str) -> Result<()> {
        self.commit_borrowed(&[BatchOp::Put { id, text }])
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let ops: Vec<BatchOp<'_>> = docs
            .iter()
            .map(|&(id, text)| BatchOp::Put { id, text })
            .collect();
        self.commit_borrowed(&ops)
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(&self.store)
    }

    fn compact(&mut self) -> Result<bool> {
        self.store
            .compact()
            .map_err(Error::engine(NAME, "compact"))?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        self.store.close().map_err(Error::engine(NAME, "close"))
    }
}

impl Reader for &ConcurrentStore {
    const ENGINE: &'static str = NAME;

    /// A borrowed read, as LMDB's and redb's inside their read transactions.
    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.read_with(id, |text| f(text.as_bytes()))
            .map_err(Error::engine(NAME, "get"))
    }

    fn extract<R>(
        &mut self,
        id: DocId,
        range: Range<usize>,
        f: impl FnOnce(&str) -> R,
    ) -> Result<Option<R>> {
        // Borrowed, like the read: the range resolved on the text in the mapping.
        let range = TextRange::bytes(range.start as u64..range.end as u64);
        let sliced = self
            .read_with(id, |text| range.resolve(text).map(|bytes| f(&text[bytes])))
            .map_err(Error::engine(NAME, "extract"))?;
        match sliced {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(value)),
            Some(Err(err)) => Err(Error::engine(NAME, "extract")(err)),
        }
    }
}
