//! LMDB through heed: a copy-on-write B+tree in one memory-mapped file.

use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};
use store_mmap::DocId;

use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// An LMDB environment with its unnamed database.
#[derive(Debug)]
pub struct Lmdb {
    env: Env,
    db: Database<'static, Bytes, Bytes>,
}

const NAME: &str = "LMDB (heed)";

/// Address space reserved for the map. LMDB grows the file as it fills; the map only has to
/// be large enough for any corpus a run writes.
const MAP_SIZE: usize = 64 << 30;

fn key(id: DocId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

impl Engine for Lmdb {
    type Reader<'a> = LmdbReader<'a>;

    const NAME: &'static str = NAME;

    fn create(dir: &Path) -> Result<Self> {
        Lmdb::open(dir)
    }

    fn open(dir: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE);
        #[expect(
            unsafe_code,
            reason = "heed's only way to open an environment; LMDB is the issue's named peer"
        )]
        // SAFETY: heed requires that no other process or handle modifies the memory-mapped
        // file while the environment lives. The runner made `dir` for this engine alone, and
        // opens it again only after `close` has waited for the previous environment to end.
        let env = unsafe { options.open(dir) }.map_err(Error::engine(NAME, "open"))?;
        let rtxn = env.read_txn().map_err(Error::engine(NAME, "open"))?;
        let db = env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener
                    .open_database::<Bytes, Bytes>(rtxn, None)
                    .map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(Error::engine(NAME, "open"))?
            .commit()
            .flatten()
            .ok_or_else(|| Error::engine(NAME, "open")("the unnamed database is missing"))?;
        Ok(Lmdb { env, db })
    }

    fn settings(&self) -> String {
        "heed defaults (LMDB syncs every commit with fdatasync), 64 GiB map, a read \
         transaction per get; no compaction in place (freed pages are reused)"
            .to_owned()
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        self.put_batch(&[(id, text)])
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let mut wtxn = self
            .env
            .write_txn()
            .map_err(Error::engine(NAME, "write_txn"))?;
        for &(id, text) in docs {
            self.db
                .put(&mut wtxn, &key(id), text.as_bytes())
                .map_err(Error::engine(NAME, "put"))?;
        }
        wtxn.commit().map_err(Error::engine(NAME, "commit"))
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        Ok(LmdbReader { engine: self })
    }

    fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn close(self) -> Result<()> {
        self.env.force_sync().map_err(Error::engine(NAME, "sync"))?;
        // A reopen in this process must wait for the environment to be closed.
        self.env.prepare_for_closing().wait();
        Ok(())
    }
}

/// Reads in a read transaction per document.
#[derive(Debug)]
pub struct LmdbReader<'a> {
    engine: &'a Lmdb,
}

impl Reader for LmdbReader<'_> {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let rtxn = self
            .engine
            .env
            .read_txn()
            .map_err(Error::engine(NAME, "read_txn"))?;
        let value = self
            .engine
            .db
            .get(&rtxn, &key(id))
            .map_err(Error::engine(NAME, "get"))?;
        Ok(value.map(f))
    }
}
