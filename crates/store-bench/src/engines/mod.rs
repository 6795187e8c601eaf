//! The engines a run measures: textstore, the in-memory upper bound, one file per document,
//! and (with the `peers` feature) LMDB, redb, fjall and SQLite.

mod files;
mod hashmap;
mod textstore;

#[cfg(feature = "peers")]
mod fjall;
#[cfg(feature = "peers")]
mod lmdb;
#[cfg(feature = "peers")]
mod redb;
#[cfg(feature = "peers")]
mod sqlite;

pub use files::{FilePerDoc, FileReader};
pub use hashmap::MemoryMap;
pub use textstore::Textstore;

#[cfg(feature = "peers")]
pub use self::{
    fjall::Fjall,
    lmdb::{Lmdb, LmdbReader},
    redb::{Redb, RedbReader},
    sqlite::{Sqlite, SqliteReader},
};
