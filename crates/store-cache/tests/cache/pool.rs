use store_cache::{BufferPool, PoolOptions};
use store_mmap::{DocId, Store, StoreOptions};

fn pool(class_buffers: [usize; 3], max_retained_bytes: usize) -> BufferPool {
    BufferPool::new(PoolOptions {
        class_buffers,
        batches: 1,
        max_buffer_bytes: 128 << 10,
        max_retained_bytes,
    })
}

/// Every counter, in one line, so that each step of a sequence reads as input => expected:
/// hits, misses, returned, discarded oversize, discarded surplus, retained buffers.
fn counts(pool: &BufferPool) -> [u64; 6] {
    let stats = pool.stats();
    [
        stats.hits(),
        stats.misses(),
        stats.returned(),
        stats.discarded_oversize(),
        stats.discarded_surplus(),
        stats.retained_buffers() as u64,
    ]
}

#[test]
fn a_known_sequence_gives_known_counts() {
    let pool = pool([1, 1, 1], 1 << 20);
    drop(pool.bytes(100));
    assert_eq!(counts(&pool), [0, 1, 1, 0, 0, 1]);
    assert_eq!(pool.stats().retained_bytes(), 100);
    // The kept small buffer serves a small take, and grows to what is asked.
    let mut buf = pool.bytes(500);
    assert!(buf.capacity() >= 500 && buf.is_empty());
    buf.extend_from_slice(&[7; 500]);
    drop(buf);
    assert_eq!(counts(&pool), [1, 1, 2, 0, 0, 1]);
    // Two small buffers at once: the second finds its class full.
    let (a, b) = (pool.bytes(10), pool.bytes(10));
    drop((a, b));
    assert_eq!(counts(&pool), [2, 2, 3, 0, 1, 1]);
    // Over the size limit: never kept.
    drop(pool.bytes(200 << 10));
    assert_eq!(counts(&pool), [2, 3, 3, 1, 1, 1]);
    // A medium take finds no medium buffer and allocates; a string reuses the small buffer.
    let medium = pool.bytes(10 << 10);
    let mut text = pool.string(20);
    text.push_str("kept");
    assert_eq!(counts(&pool), [3, 4, 3, 1, 1, 0]);
    drop((medium, text));
    assert_eq!(counts(&pool), [3, 4, 5, 1, 1, 2]);
    // A buffer taken for good is not returned.
    let owned = pool.string(1).into_inner();
    assert!(owned.is_empty());
    assert_eq!(counts(&pool), [4, 4, 5, 1, 1, 1]);
}

#[test]
fn the_byte_budget_holds_under_concurrent_returns() {
    let budget = 256 << 10;
    let pool = pool([1000, 1000, 1000], budget);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let pool = &pool;
            scope.spawn(move || {
                for round in 0..50 {
                    let held: Vec<_> = (0..20)
                        .map(|i| pool.bytes(100 << ((i + round + thread) % 10)))
                        .collect();
                    drop(held);
                    assert!(pool.stats().retained_bytes() <= budget);
                }
            });
        }
    });
    let stats = pool.stats();
    assert!(stats.retained_bytes() <= budget, "{stats:?}");
    assert!(
        stats.discarded_surplus() > 0 && stats.hits() > 0,
        "{stats:?}"
    );
    // Retained bytes are the capacities actually kept: emptying the pool gives them all back.
    let kept: usize = (0..stats.retained_buffers())
        .map(|_| pool.bytes(0).into_inner().capacity())
        .sum();
    assert_eq!(kept, stats.retained_bytes());
    assert_eq!(pool.stats().retained_bytes(), 0);
}

#[test]
fn prewarmed_buffers_serve_the_first_takes() {
    let pool = pool([4, 4, 4], 1 << 20);
    assert_eq!(pool.prewarm(2048, 6), 4, "the medium class keeps four");
    assert_eq!(pool.prewarm(2048, 1), 0, "the medium class is full");
    let held: Vec<_> = (0..4).map(|_| pool.bytes(2000)).collect();
    assert_eq!(counts(&pool)[..2], [4, 0]);
    drop(pool.bytes(2000));
    assert_eq!(counts(&pool)[..2], [4, 1]);
    drop(held);
}

#[test]
fn batches_come_back_cleared_with_their_capacity() {
    let pool = pool([1, 1, 1], 1 << 20);
    let mut batch = pool.batch();
    batch
        .put(DocId::from(1u64), &"x".repeat(5000))
        .delete(DocId::from(2u64));
    drop(batch);
    let batch = pool.batch();
    assert!(batch.is_empty());
    assert!(batch.capacity_bytes() >= 5000);
    assert_eq!(counts(&pool)[..3], [1, 1, 1]);
    drop(batch);
    assert_eq!(pool.stats().retained_buffers(), 1, "the batch is kept");
}

/// Each class keeps the buffers of its own capacities, up to the class's edge (1 KiB,
/// 64 KiB), and a buffer of exactly the largest size kept is kept; the stats reach an
/// exporter with both kinds of discard counted.
#[test]
fn buffers_are_kept_by_class_up_to_each_edge() {
    // One small and one medium buffer kept, no large one.
    let pool = pool([1, 1, 0], 1 << 20);
    let give = |capacity: usize| drop(pool.bytes(capacity));
    give(1 << 10);
    give(64 << 10);
    assert_eq!(
        counts(&pool),
        [0, 2, 2, 0, 0, 2],
        "each edge is its class's"
    );
    give((64 << 10) + 1);
    assert_eq!(
        counts(&pool)[3..],
        [0, 1, 2],
        "one past the medium edge is large"
    );
    // A small take is served by the small buffer, and a medium one by the medium buffer.
    let small = pool.bytes(1);
    assert_eq!(small.capacity(), 1 << 10);
    let medium = pool.bytes((1 << 10) + 1);
    assert_eq!(medium.capacity(), 64 << 10);
    drop((small, medium));

    let exact = self::pool([1, 1, 1], 1 << 20);
    drop(exact.bytes(128 << 10));
    assert_eq!(
        counts(&exact)[2..],
        [1, 0, 0, 1],
        "the largest size kept is kept"
    );
    drop(exact.bytes((128 << 10) + 1));
    assert_eq!(counts(&exact)[3], 1, "one byte over is not");

    let stats = pool.stats();
    let figures = store_format::Figures::of(&stats);
    assert_eq!(
        figures.get("textstore_pool_hits_total"),
        Some(stats.hits() as f64)
    );
    assert_eq!(
        figures.get("textstore_pool_misses_total"),
        Some(stats.misses() as f64)
    );
    assert_eq!(figures.get("textstore_pool_discarded_total"), Some(1.0));
    assert_eq!(
        figures.get("textstore_pool_retained_bytes"),
        Some(stats.retained_bytes() as f64)
    );
    let both = store_format::Figures::of(&exact.stats());
    assert_eq!(both.get("textstore_pool_discarded_total"), Some(1.0));
}

#[test]
fn pooled_reads_copy_the_latest_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), StoreOptions::new()).unwrap();
    let pool = BufferPool::default();
    store.put(DocId::from(1u64), "first").unwrap();
    store.put(DocId::from(1u64), "second, longer").unwrap();
    store.put(DocId::from(2u64), "").unwrap();
    let text = pool.read(&store, DocId::from(1u64)).unwrap().unwrap();
    assert_eq!(text.as_str(), "second, longer");
    assert_eq!(
        pool.read(&store, DocId::from(2u64))
            .unwrap()
            .unwrap()
            .as_str(),
        ""
    );
    assert!(pool.read(&store, DocId::from(3u64)).unwrap().is_none());
    store.delete(DocId::from(1u64)).unwrap();
    assert!(pool.read(&store, DocId::from(1u64)).unwrap().is_none());
    assert_eq!(&*store.get(DocId::from(2u64)).unwrap().unwrap(), "");
}
