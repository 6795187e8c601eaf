//! Buffer pools and caches for textstore, with what each gains and where it does not (see
//! "What each piece is worth" below).
//!
//! - [`BufferPool`] hands out byte buffers, strings and write batches that return to it when
//!   dropped, in three size classes with bounded retention. Copy-out reads
//!   ([`BufferPool::read`]) and the files, lines and batches of `textstore import` go through
//!   it. After warm-up, pooled reads and pooled batch builds and encodes allocate nothing
//!   (the dhat tests).
//! - [`Cached`] wraps any [`DocRead`](store_format::DocRead) with a moka cache of verified
//!   documents and a cache of line and char offset tables, both keyed by id and sequence
//!   number, so neither can serve a version older than the latest. Documents under
//!   [`CacheOptions::doc_min_bytes`] bypass the document cache, at the price of one more
//!   index lookup (`meta`) per read. It counts the hottest ids in bounded memory, writes them
//!   on [`Cached::close`] and prefetches them on [`Cached::open`].
//!
//! # What each piece is worth
//!
//! `cargo bench -p store-cache --bench pool` and `--bench cache`, on 2 cores:
//!
//! - **Pool against `Vec::with_capacity`** (take, fill, drop), one thread: 29 against 13 ns
//!   at 256 B, 41 against 16 ns at 1 KiB, 73 against 80 ns at 4 KiB, 208 against 632 ns at
//!   16 KiB. Two threads on one pool: 319 against 15 ns at 256 B, 324 against 230 ns at
//!   16 KiB. The allocator's per-thread caches beat a shared pool for small buffers; the
//!   pool wins for large ones on one thread, and its guarantee is a steady state with no
//!   allocation at all (the dhat tests), not speed.
//! - **Document cache**, 10,000 documents, a cache of a fifth of the text, every document
//!   cached (`doc_min_bytes: 0`), gets per second against the plain store: at 2 KiB,
//!   uniform 0.49x (hit ratio 0.63), zipf 0.99 1.19x (hit ratio 1.00), sequential 0.28x
//!   (hit ratio 0.46); at 64 KiB, uniform 2.08x, zipf 23x, sequential 1.28x. A hit skips
//!   the checksum and UTF-8 check of the whole text, which is what a large document costs;
//!   for a small one the lookup costs more than it saves. Hence the default
//!   `doc_min_bytes` of 8 KiB: smaller documents bypass the cache.
//! - **Offset tables**, a 64-line range near the end of a 1 MiB document: 193 µs read
//!   from the store, 100 µs from the document cache and scanned, 0.29 µs through the
//!   table; a 4096-char range: 690 µs, 618 µs, 0.33 µs.
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
    BufferPool, MEDIUM_MAX_BYTES, PoolOptions, PoolStats, Pooled, PooledBatch, PooledBytes,
    PooledString, Reusable, SMALL_MAX_BYTES,
};
pub use popularity::Popularity;
