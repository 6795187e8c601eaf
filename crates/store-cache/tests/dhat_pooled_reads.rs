//! After warm-up, copy-out reads into pooled strings allocate nothing.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

mod support;

use store_cache::BufferPool;
use store_mmap::DocId;

/// The test's entry point. The file has no test harness (`harness = false`): the harness
/// runs a test on a thread of its own while its main thread keeps its books, and the
/// allocations of that bookkeeping would land in the count.
fn main() {
    pooled_copy_out_reads_allocate_nothing();
    eprintln!("pooled_copy_out_reads_allocate_nothing: ok");
}

fn pooled_copy_out_reads_allocate_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let dir = tempfile::tempdir().unwrap();
    let store = support::store(dir.path());
    let pool = BufferPool::default();
    let lengths: Vec<usize> = (0..support::DOCS).map(|i| support::text(i).len()).collect();
    let read_all = || {
        for i in 0..support::DOCS {
            let text = pool.read(&store, DocId::from(i)).unwrap().unwrap();
            assert_eq!(text.len(), lengths[i as usize]);
        }
    };
    // Warm-up: the class buffers grow to the largest document of their class.
    read_all();
    read_all();
    let hits_before = pool.stats().hits();
    let blocks = support::blocks_allocated_by(|| {
        for _ in 0..10 {
            read_all();
        }
    });
    dhat::assert_eq!(blocks, 0, "10,000 pooled reads allocated {} blocks", blocks);
    // Every one of those reads took a kept buffer.
    dhat::assert_eq!(pool.stats().hits() - hits_before, 10 * support::DOCS);
    // The same reads without the pool allocate one string each.
    let plain = support::blocks_allocated_by(|| {
        for i in 0..support::DOCS {
            let mut text = String::new();
            assert!(store.read_into(DocId::from(i), &mut text).unwrap());
        }
    });
    dhat::assert_eq!(plain, support::DOCS);
}
