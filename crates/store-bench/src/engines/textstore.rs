//! textstore as its users run it from several threads: a [`ConcurrentStore`] with its
//! default options.

use std::ops::Range;
use std::path::Path;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, StoreOptions, TextRange, WriteBatch};

use crate::corpus::Document;
use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// textstore's concurrent handle.
pub struct Textstore {
    store: ConcurrentStore,
}

const NAME: &str = "textstore";

impl Textstore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let ticket = self
            .store
            .put_batch(batch)
            .map_err(Error::engine(NAME, "put_batch"))?;
        ticket.wait().map_err(Error::engine(NAME, "put_batch"))?;
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
         group commit, automatic compaction (dead ratio 0.5, at least 64 MiB dead); a bulk \
         ingest is one put_batch, which spans segments"
            .to_owned()
    }

    fn ingest(&self, docs: &[Document]) -> Result<()> {
        let text_bytes = docs.iter().map(|doc| doc.text.len()).sum();
        let mut batch = WriteBatch::with_capacity(docs.len(), text_bytes);
        for doc in docs {
            batch.put(doc.id, &doc.text);
        }
        self.commit(batch)
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        let ticket = self
            .store
            .put(id, text)
            .map_err(Error::engine(NAME, "put"))?;
        ticket.wait().map_err(Error::engine(NAME, "put"))?;
        Ok(())
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for &(id, text) in docs {
            batch.put(id, text);
        }
        self.commit(batch)
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
