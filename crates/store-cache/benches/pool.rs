//! A pooled buffer against a fresh allocation, at the sizes of a document's text: take a
//! buffer, fill it, drop it. On two threads, each thread runs the same loop on one shared
//! pool and the time is the wall time of both.
//!
//! `cargo bench -p store-cache --bench pool`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_cache::BufferPool;

const SIZES: [usize; 4] = [256, 1 << 10, 4 << 10, 16 << 10];

fn pooled(pool: &BufferPool, text: &[u8]) {
    let mut buf = pool.bytes(text.len());
    buf.extend_from_slice(text);
    black_box(&*buf);
}

fn plain(text: &[u8]) {
    let mut buf = Vec::with_capacity(text.len());
    buf.extend_from_slice(text);
    black_box(&buf);
}

/// Runs `op` `iters` times on each of `threads` threads at once; the wall time of all. One
/// thread runs on the bench's own, so that no spawn is timed.
fn on_threads(threads: usize, iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        for _ in 0..iters {
            op();
        }
        return start.elapsed();
    }
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..iters {
                    op();
                }
            });
        }
    });
    start.elapsed()
}

fn pool_vs_alloc(c: &mut Criterion) {
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("take_fill_drop/{threads}_threads"));
        for size in SIZES {
            let text = vec![b'x'; size];
            let pool = BufferPool::default();
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(BenchmarkId::new("pool", size), &text, |b, text| {
                b.iter_custom(|iters| on_threads(threads, iters, &|| pooled(&pool, text)))
            });
            group.bench_with_input(BenchmarkId::new("alloc", size), &text, |b, text| {
                b.iter_custom(|iters| on_threads(threads, iters, &|| plain(text)))
            });
            let stats = pool.stats();
            assert!(stats.hits() > stats.misses(), "{stats:?}");
        }
        group.finish();
    }
}

criterion_group!(benches, pool_vs_alloc);
criterion_main!(benches);
