//! textstore for tokio programs: async reads and writes that never block the runtime, and
//! fan-out over several stores.
//!
//! - [`AsyncStore`] wraps any shared handle that reads, writes through tickets and knows
//!   what is resident (the traits of `store_format`): the concurrent handle, or a stack of
//!   layers over it. Its documentation says
//!   which calls run inline on the calling task and which on the blocking pool: in short,
//!   nothing that can wait on the disk runs on a runtime worker, and writes are awaited, never
//!   blocked on. A concurrency limit and per-call timeouts come from [`AsyncOptions`]; a
//!   timeout is its own error, [`Error::Timeout`], which says whether the write may still
//!   commit. Gets of consecutive ids make the store read the next records ahead.
//! - [`StoreSet`] spreads ids over several stores by a hash and runs `get_many` / `put_many`
//!   as one task per store, under a limit, with results in input order.
//!
//! This is the only crate of textstore that depends on tokio, and it depends on
//! `store-format` alone besides. It knows nothing of files or formats; it holds no text of
//! its own, so it can never serve a stale version.
//!
//! ```
//! use store_async::{AsyncOptions, AsyncStore};
//! use store_format::{DocId, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any shared handle: the concurrent handle in a program, the in-memory double here.
//! let store = AsyncStore::new(MemoryStore::new(), AsyncOptions::new().max_in_flight(256));
//! let id = DocId::from(7u64);
//! store.put(id, "durable when this returns").await?;
//! assert_eq!(store.get(id).await?.unwrap().text().as_str(), "durable when this returns");
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

mod error;
mod options;
mod read_ahead;
mod set;
mod store;

pub use error::{Error, Result};
pub use options::{AsyncOptions, Reads};
pub use set::StoreSet;
pub use store::AsyncStore;
