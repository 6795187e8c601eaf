//! Returning many oversized and surplus buffers leaves the pool holding no more than its
//! byte budget, as the heap itself shows.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use store_cache::{BufferPool, PoolOptions};

/// The test's entry point. The file has no test harness (`harness = false`): the harness
/// runs a test on a thread of its own while its main thread keeps its books, and the
/// allocations of that bookkeeping would land in the count.
fn main() {
    retention_stays_under_the_budget();
    eprintln!("retention_stays_under_the_budget: ok");
}

fn retention_stays_under_the_budget() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let budget = 1 << 20;
    let pool = BufferPool::new(PoolOptions {
        class_buffers: [64, 16, 4],
        batches: 2,
        max_buffer_bytes: 256 << 10,
        max_retained_bytes: budget,
    });
    let baseline = dhat::HeapStats::get().curr_bytes;
    // Hold many buffers at once, so that they all come back together: sizes from 16 bytes
    // to 1 MiB, a quarter of them over the 256 KiB limit.
    for round in 0..4 {
        let held: Vec<_> = (0..200usize)
            .map(|i| {
                let mut buf = pool.bytes(16 << ((i + round) % 17));
                buf.push(1);
                buf
            })
            .collect();
        drop(held);
        let stats = pool.stats();
        dhat::assert!(stats.retained_bytes() <= budget, "{:?}", stats);
        let held_by_pool = dhat::HeapStats::get().curr_bytes - baseline;
        dhat::assert!(
            held_by_pool <= budget,
            "the heap holds {} bytes",
            held_by_pool
        );
    }
    let stats = pool.stats();
    dhat::assert!(stats.discarded_oversize() > 0, "{:?}", stats);
    dhat::assert!(stats.discarded_surplus() > 0, "{:?}", stats);
    dhat::assert!(stats.retained_buffers() <= 64 + 16 + 4 + 2);
}
