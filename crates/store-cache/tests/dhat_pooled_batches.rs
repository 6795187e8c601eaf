//! After warm-up, building write batches from the pool and encoding them into pooled
//! buffers allocates nothing.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

mod support;

use store_cache::BufferPool;
use store_mmap::DocId;

/// The test's entry point. The file has no test harness (`harness = false`): the harness
/// runs a test on a thread of its own while its main thread keeps its books, and the
/// allocations of that bookkeeping would land in the count.
fn main() {
    pooled_batch_encodes_allocate_nothing();
    eprintln!("pooled_batch_encodes_allocate_nothing: ok");
}

fn pooled_batch_encodes_allocate_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let pool = BufferPool::default();
    let texts: Vec<String> = (0..100).map(support::text).collect();
    let mut encoded = 0;
    let mut encode_all = || {
        for chunk in 0..10u64 {
            let mut batch = pool.batch();
            for i in chunk * 10..chunk * 10 + 10 {
                batch.put(DocId::from(i), &texts[i as usize]);
            }
            batch.delete(DocId::from(1000 + chunk));
            let mut out = pool.bytes(batch.encoded_len() as usize);
            batch.encode(chunk * 11, &mut out, Some(0));
            assert_eq!(out.len() as u64, batch.encoded_len());
            encoded += out.len();
        }
    };
    encode_all();
    let blocks = support::blocks_allocated_by(|| {
        for _ in 0..100 {
            encode_all();
        }
    });
    dhat::assert_eq!(
        blocks,
        0,
        "1,000 pooled batch encodes allocated {} blocks",
        blocks
    );
    dhat::assert!(encoded > 101 * texts.iter().map(String::len).sum::<usize>());
}
