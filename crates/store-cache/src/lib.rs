//! Buffer pools and caches for textstore, each kept only where its benchmark shows a gain.
//!
//! - [`BufferPool`] hands out byte buffers, strings and write batches that return to it when
//!   dropped, in three size classes with bounded retention. Copy-out reads
//!   ([`BufferPool::read`]) and the batches of `textstore import` go through it; after
//!   warm-up neither allocates (the dhat tests).
//! - [`Cached`] wraps any [`DocRead`](store_format::DocRead) with a moka cache of verified documents and a cache of
//!   line and char offset tables, both keyed by id and sequence number, so neither can serve
//!   a version older than the latest. It counts the hottest ids in bounded memory, writes them
//!   on [`Cached::close`] and prefetches them on [`Cached::open`].
//!
//! Invariant: this crate knows the read trait and the format's pure types, not the engine.
//! What it caches is what the reader returned; it never builds a document itself.

mod cached;
mod error;
mod pool;
mod popularity;

pub use cached::{CacheOptions, CacheStats, Cached};
pub use error::Error;
pub use pool::{
    BufferPool, MEDIUM_MAX_BYTES, PoolOptions, PoolStats, PooledBatch, PooledBytes, PooledString,
    SMALL_MAX_BYTES,
};
pub use popularity::Popularity;
