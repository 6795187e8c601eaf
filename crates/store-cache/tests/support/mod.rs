//! What the dhat heap tests share: a store to read, and the count of heap blocks a piece
//! of code allocates. Each test is its own file because dhat allows one profiler per
//! process.

#![allow(dead_code, reason = "each dhat test file uses a part of these helpers")]

use store_mmap::{DocId, Durability, Store, StoreOptions, WriteBatch};

/// Documents in the test store.
pub(crate) const DOCS: u64 = 1000;

/// A store of [`DOCS`] documents of 100 to 4,000 bytes, some with multi-byte characters.
pub(crate) fn store(dir: &std::path::Path) -> Store {
    let mut store =
        Store::create(dir, StoreOptions::new().durability(Durability::WriteBack)).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..DOCS {
        batch.put(DocId::from(i), &text(i));
    }
    store.put_batch(&batch).unwrap();
    store
}

/// The text of document `i`.
pub(crate) fn text(i: u64) -> String {
    let word = if i.is_multiple_of(3) {
        "größe "
    } else {
        "size "
    };
    word.repeat(20 + (i as usize * 37) % 780)
}

/// Heap blocks allocated while `run` runs, counted by the dhat profiler of the test.
pub(crate) fn blocks_allocated_by(run: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    run();
    dhat::HeapStats::get().total_blocks - before
}
