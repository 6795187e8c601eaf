//! textstore: an embeddable, crash-safe, append-only store for the texts of documents.
//!
//! Put a text under a 128-bit id, get the latest version back without a copy, extract a byte,
//! char or line range of it, delete it; any number of threads read while one writer thread
//! commits their writes in groups. This crate is the one to depend on: [`Textstore`] is the
//! concurrent handle, with the layers its features turn on stacked in front of it:
//!
//! | feature | what it adds |
//! |---|---|
//! | `cache` | a cache of verified documents and offset tables ([`CacheOptions`]) |
//! | `metrics` | counts, latencies and the Prometheus text of every call ([`Textstore::metrics`]) |
//! | `async` | [`Builder::open_async`]: the handle for tokio programs |
//! | `serde` | [`DocId`] serializes as its ULID text and deserializes from what [`DocId::parse`] accepts |
//!
//! Every call fails with one [`Error`], whose [`Error::kind`] says what kind of failure it is
//! whatever layer raised it. The split crates (`store-mmap`, `store-concurrent`,
//! `store-cache`, `store-metrics`, `store-async`) stay available for programs that want one
//! layer alone.
//!
//! ```
//! use textstore::{DocId, DocRead, DocWrite, Textstore, TextRange, WriteTicket};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Textstore::builder(dir.path().join("docs")).open()?;
//! let id = DocId::from_key("guide/intro.md");
//! store.put(id, "Hello, textstore.\nSecond line.")?.wait()?;
//! assert_eq!(store.get(id)?.unwrap().text(), "Hello, textstore.\nSecond line.");
//! assert_eq!(store.extract(id, TextRange::lines(2, 2))?, "Second line.");
//! store.close()?;
//! # Ok::<(), textstore::Error>(())
//! ```

#![forbid(unsafe_code)]

mod builder;
mod error;
mod feed;
mod handle;

pub use builder::Builder;
pub use error::{Error, Result};
pub use feed::{Changes, Scan};
pub use handle::Textstore;

pub use store_concurrent::{ConcurrentStore, Ticket, WriterOptions};
pub use store_format::{
    Doc, DocId, DocMeta, DocRead, DocWrite, ErrorKind, Offer, Prefetch, Residency, StoreError,
    Text, TextRange, VisitStats, WriteBatch, WriteTicket,
};
pub use store_mmap::{
    Change, CompactionReport, DiskSpace, Durability, Refreshed, StoreOptions, StoreStats,
};

#[cfg(feature = "async")]
pub use store_async::{AsyncOptions, AsyncStore};
#[cfg(feature = "cache")]
pub use store_cache::{CacheOptions, CacheStats};
#[cfg(feature = "metrics")]
pub use store_metrics::{Metrics, Snapshot, prometheus};

/// The README's Rust examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
