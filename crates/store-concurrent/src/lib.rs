//! textstore's shareable handle: lock-free readers, one writer thread, group commit.
//!
//! [`ConcurrentStore`] wraps a [`store_mmap::Store`] so that any number of threads can read
//! and write it through clones of one handle. Readers take no lock: they look documents up in
//! a location table and read the records out of the mapped segments on their own thread.
//! Writers put requests on a bounded queue; one writer thread commits whatever is waiting as
//! a single group (one write, one `fdatasync`), publishes it, and completes each request's
//! [`Ticket`].
//!
//! This crate owns every memory-ordering argument of textstore; `docs/CONCURRENCY.md` sets
//! out the protocol, and the loom models (`cargo xtask loom`) check it. It knows nothing of
//! files or formats (that is `store-mmap`), of caches, metrics or async runtimes.
//!
//! Invariants:
//! - A reader never sees a location before the bytes of its record and the segment's end
//!   that covers them.
//! - A reader sees each document at its old or at its new committed version, never a
//!   mixture, and never an older version than one it has already seen.
//! - Every ticket is completed exactly once: with the commit's outcome, or with
//!   [`Error::Closed`] if its request was discarded at shutdown.
//! - A failed commit fails every request in its group and poisons the handle: later writes
//!   fail at once, without being queued. A panic in a call into the engine, a commit or any
//!   other, fails that call in the same way, and the writer thread serves on: reads go on.
//! - Nothing in this crate blocks a reader: the writer thread does all I/O.

#![cfg_attr(
    textstore_loom,
    allow(
        dead_code,
        reason = "loom builds leave out the handle, which uses the rest"
    )
)]

mod error;
mod options;
mod published;
mod sync;
mod table;
mod ticket;

#[cfg(not(textstore_loom))]
mod compactor;
#[cfg(not(textstore_loom))]
mod deferred;
#[cfg(not(textstore_loom))]
mod handle;
#[cfg(not(textstore_loom))]
mod request;
#[cfg(not(textstore_loom))]
mod scrubber;
#[cfg(not(textstore_loom))]
mod stats;
#[cfg(not(textstore_loom))]
mod writer;

#[cfg(all(test, textstore_loom))]
mod loom_models;

#[cfg(not(textstore_loom))]
pub use compactor::CompactionStats;
pub use error::{Error, Result};
#[cfg(not(textstore_loom))]
pub use handle::ConcurrentStore;
pub use options::{ScrubPolicy, WriterOptions};
pub use published::Ids;
#[cfg(not(textstore_loom))]
pub use scrubber::ScrubStats;
#[cfg(not(textstore_loom))]
pub use stats::QueueStats;
pub use store_format::Offer;
pub use ticket::Ticket;
