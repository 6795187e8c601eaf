//! Tests of the concurrent handle at its public boundary, on real files.

mod basics;
mod compaction;
mod faults;
mod feed;
mod panics;
mod read_only;
mod scrub;
mod shutdown;
mod stress;

// The model, texts and faults the engine's fault model draws too.
#[path = "../../../store-mmap/tests/support/model.rs"]
mod model_support;

use std::path::Path;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, StoreOptions};

pub(crate) fn id(n: u64) -> DocId {
    DocId::from(n)
}

pub(crate) fn create(dir: &Path, writer: WriterOptions) -> ConcurrentStore {
    ConcurrentStore::create(dir.join("store"), StoreOptions::new(), writer).unwrap()
}

/// A compaction policy as eager as it gets: any dead byte makes a store due.
pub(crate) fn eager_compaction() -> store_mmap::CompactionPolicy {
    store_mmap::CompactionPolicy {
        dead_ratio: Some(0.2),
        min_dead_bytes: 1,
        segment_dead_ratio: 0.2,
        max_bytes_per_sec: None,
    }
}

/// Reopens the store with the plain engine, as a later process would.
pub(crate) fn reopen(dir: &Path) -> store_mmap::Store {
    store_mmap::Store::open(dir.join("store"), StoreOptions::new()).unwrap()
}
