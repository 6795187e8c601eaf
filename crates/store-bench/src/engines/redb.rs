//! redb: a copy-on-write B-tree in one file, in pure Rust.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};
use store_mmap::DocId;

use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// A redb database with one table of texts.
#[derive(Debug)]
pub struct Redb {
    db: Database,
}

const NAME: &str = "redb";
const TABLE: TableDefinition<'static, u128, &[u8]> = TableDefinition::new("docs");
const FILE: &str = "docs.redb";

impl Engine for Redb {
    type Reader<'a> = RedbReader<'a>;

    const NAME: &'static str = NAME;

    fn create(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join(FILE)).map_err(Error::engine(NAME, "create"))?;
        let txn = db
            .begin_write()
            .map_err(Error::engine(NAME, "begin_write"))?;
        txn.open_table(TABLE)
            .map_err(Error::engine(NAME, "open_table"))?;
        txn.commit().map_err(Error::engine(NAME, "commit"))?;
        Ok(Redb { db })
    }

    fn open(dir: &Path) -> Result<Self> {
        let db = Database::open(dir.join(FILE)).map_err(Error::engine(NAME, "open"))?;
        Ok(Redb { db })
    }

    fn settings(&self) -> String {
        "redb defaults: Durability::Immediate (fsync per commit), default cache; a read \
         transaction and an open_table per get; compact() after overwrites"
            .to_owned()
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        self.put_batch(&[(id, text)])
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(Error::engine(NAME, "begin_write"))?;
        {
            let mut table = txn
                .open_table(TABLE)
                .map_err(Error::engine(NAME, "open_table"))?;
            for &(id, text) in docs {
                table
                    .insert(id.as_u128(), text.as_bytes())
                    .map_err(Error::engine(NAME, "insert"))?;
            }
        }
        txn.commit().map_err(Error::engine(NAME, "commit"))
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(RedbReader { engine: self })
    }

    fn compact(&mut self) -> Result<bool> {
        self.db.compact().map_err(Error::engine(NAME, "compact"))?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}

/// Reads in a read transaction per document.
#[derive(Debug)]
pub struct RedbReader<'a> {
    engine: &'a Redb,
}

impl Reader for RedbReader<'_> {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let txn = self
            .engine
            .db
            .begin_read()
            .map_err(Error::engine(NAME, "begin_read"))?;
        let table = txn
            .open_table(TABLE)
            .map_err(Error::engine(NAME, "open_table"))?;
        let value = table
            .get(id.as_u128())
            .map_err(Error::engine(NAME, "get"))?;
        Ok(value.map(|guard| f(guard.value())))
    }
}
