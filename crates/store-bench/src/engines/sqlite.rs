//! SQLite through rusqlite, with the library built in (`bundled`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use store_mmap::DocId;

use crate::engine::{Engine, Reader};
use crate::error::{Error, Result};

/// A SQLite database with a table of texts; writes go through one connection.
#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
}

const NAME: &str = "SQLite";
const FILE: &str = "docs.sqlite";
const PUT: &str = "INSERT OR REPLACE INTO docs (id, text) VALUES (?1, ?2)";
const GET: &str = "SELECT text FROM docs WHERE id = ?1";

fn key(id: DocId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

impl Sqlite {
    fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
        let conn = Connection::open_with_flags(path, flags).map_err(Error::engine(NAME, "open"))?;
        // WAL lets readers run beside the writer; synchronous = FULL syncs the WAL at every
        // commit, the durability the other engines give (NORMAL would not survive a power
        // loss).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(Error::engine(NAME, "pragma"))?;
        Ok(conn)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine for Sqlite {
    type Reader<'a> = SqliteReader;

    const NAME: &'static str = NAME;

    fn create(dir: &Path) -> Result<Self> {
        let engine = Sqlite::open(dir)?;
        engine
            .writer()
            .execute_batch("CREATE TABLE docs (id BLOB PRIMARY KEY, text TEXT NOT NULL)")
            .map_err(Error::engine(NAME, "create table"))?;
        Ok(engine)
    }

    fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let writer = Sqlite::connect(&path, OpenFlags::default())?;
        Ok(Sqlite {
            path,
            writer: Mutex::new(writer),
        })
    }

    fn settings(&self) -> String {
        "bundled SQLite, journal_mode = WAL, synchronous = FULL (the WAL synced at every \
         commit), table (id BLOB PRIMARY KEY, text TEXT), a connection per reader thread with \
         cached statements; VACUUM after overwrites"
            .to_owned()
    }

    fn put(&self, id: DocId, text: &str) -> Result<()> {
        let conn = self.writer();
        let mut put = conn
            .prepare_cached(PUT)
            .map_err(Error::engine(NAME, "prepare"))?;
        put.execute(params![key(id), text])
            .map_err(Error::engine(NAME, "insert"))?;
        Ok(())
    }

    fn put_batch(&self, docs: &[(DocId, &str)]) -> Result<()> {
        let mut conn = self.writer();
        let txn = conn.transaction().map_err(Error::engine(NAME, "begin"))?;
        {
            let mut put = txn
                .prepare_cached(PUT)
                .map_err(Error::engine(NAME, "prepare"))?;
            for &(id, text) in docs {
                put.execute(params![key(id), text])
                    .map_err(Error::engine(NAME, "insert"))?;
            }
        }
        txn.commit().map_err(Error::engine(NAME, "commit"))
    }

    fn reader(&self) -> Result<Self::Reader<'_>> {
        let conn = Sqlite::connect(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(SqliteReader { conn })
    }

    fn compact(&mut self) -> Result<bool> {
        self.writer()
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(Error::engine(NAME, "vacuum"))?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        let conn = self
            .writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        conn.close()
            .map_err(|(_, err)| Error::engine(NAME, "close")(err))
    }
}

/// A read-only connection of its own.
#[derive(Debug)]
pub struct SqliteReader {
    conn: Connection,
}

impl Reader for SqliteReader {
    const ENGINE: &'static str = NAME;

    fn read<R>(&mut self, id: DocId, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let mut get = self
            .conn
            .prepare_cached(GET)
            .map_err(Error::engine(NAME, "prepare"))?;
        get.query_row(params![key(id)], |row| {
            let text = row.get_ref(0)?.as_bytes().map_err(rusqlite::Error::from)?;
            Ok(f(text))
        })
        .optional()
        .map_err(Error::engine(NAME, "get"))
    }
}
