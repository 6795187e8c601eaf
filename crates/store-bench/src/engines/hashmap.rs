//! The upper bound: a `HashMap` in memory behind a reader-writer lock, which stores nothing
//! on disk and checks nothing it reads.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{PoisonError, RwLock};

use store_mmap::DocId;

use crate::corpus::Document;
use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

type Map = HashMap<DocId, Box<str>, foldhash::fast::RandomState>;

/// Texts in a `HashMap` under an `RwLock`.
#[derive(Debug, Default)]
pub struct MemoryMap {
    map: RwLock<Map>,
}

const NAME: &str = "HashMap";

impl Engine for MemoryMap {
    type Reader<'a> = &'a MemoryMap;

    const NAME: &'static str = NAME;
    const PERSISTENT: bool = false;
    const HAS_STEADY_STATE: bool = false;

    fn create(_dir: &Path) -> Result<Self> {
        Ok(MemoryMap::default())
    }

    fn open(dir: &Path) -> Result<Self> {
        Err(Error::engine(NAME, "open")(format!(
            "keeps nothing in {} to open",
            dir.display()
        )))
    }

    fn settings(&self) -> String {
        "std HashMap (foldhash) of boxed str under an RwLock; in memory, no durability, no \
         checksums: the upper bound of a get"
            .to_owned()
    }

    fn ingest(&self, docs: &[Document]) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.extend(docs.iter().map(|doc| (doc.id, doc.text.as_str().into())));
        Ok(())
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.insert(id, text.into());
        Ok(())
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.extend(docs.iter().map(|&(id, text)| (id, text.into())));
        Ok(())
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(self)
    }

    fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn close(self) -> Result<()> {
        Ok(())
    }
}

impl Reader for &MemoryMap {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(&id).map(|text| f(text.as_bytes())))
    }
}
