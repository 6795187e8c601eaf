//! fjall: a log-structured merge tree in pure Rust.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use store_mmap::DocId;

use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// A fjall database with one keyspace of texts.
pub struct Fjall {
    db: Database,
    docs: Keyspace,
}

const NAME: &str = "fjall";

fn key(id: DocId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

impl Engine for Fjall {
    type Reader<'a> = &'a Fjall;

    const NAME: &'static str = NAME;

    fn create(dir: &Path) -> Result<Self> {
        Fjall::open(dir)
    }

    fn open(dir: &Path) -> Result<Self> {
        let db = Database::builder(dir)
            .open()
            .map_err(Error::engine(NAME, "open"))?;
        let docs = db
            .keyspace("docs", KeyspaceCreateOptions::default)
            .map_err(Error::engine(NAME, "keyspace"))?;
        Ok(Fjall { db, docs })
    }

    fn settings(&self) -> String {
        "fjall defaults (LZ4 block compression, default cache), every commit persisted with \
         PersistMode::SyncData (fdatasync of the journal); major_compact() after overwrites"
            .to_owned()
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        self.docs
            .insert(key(id), text.as_bytes())
            .map_err(Error::engine(NAME, "insert"))?;
        self.db
            .persist(PersistMode::SyncData)
            .map_err(Error::engine(NAME, "persist"))
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        for &(id, text) in docs {
            batch.insert(&self.docs, key(id), text.as_bytes());
        }
        batch.commit().map_err(Error::engine(NAME, "commit"))
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(self)
    }

    fn compact(&mut self) -> Result<bool> {
        self.docs
            .major_compact()
            .map_err(Error::engine(NAME, "major_compact"))?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(Error::engine(NAME, "persist"))
    }
}

impl Reader for &Fjall {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let value = self.docs.get(key(id)).map_err(Error::engine(NAME, "get"))?;
        Ok(value.map(|value| f(&value)))
    }
}
