//! Reads: gets warm (pages in memory) and cold (the store just reopened with its files
//! evicted from the page cache) by corpus size, and mixed gets and puts by thread count.
//!
//! `cargo bench -p textstore-benches --bench read`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_bench::engines::Textstore;
use store_bench::{Corpus, Engine, KeyChooser, Reader};

mod support;

fn warm_gets_by_corpus_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm_get_by_corpus_size");
    group.throughput(Throughput::Elements(1));
    for docs in [1_000usize, 10_000, 50_000] {
        let corpus = Corpus::synthetic(docs, 5);
        let (_dir, store) = support::filled_store(&corpus);
        let choices = KeyChooser::Uniform.indices(docs, 1 << 16, 6);
        let mut reader = store.reader().unwrap();
        let mut next = 0;
        group.bench_function(BenchmarkId::from_parameter(docs), |b| {
            b.iter(|| {
                next = (next + 1) % choices.len();
                let id = corpus.docs()[choices[next] as usize].id;
                reader
                    .read(id, |text| black_box(text.len()))
                    .unwrap()
                    .unwrap()
            });
        });
    }
    group.finish();
}

/// Drops the page cache's copy of every file under `dir` (written back first), so that
/// the next read of them goes to the disk.
fn evict(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let file = std::fs::File::open(&path).unwrap();
            file.sync_all().unwrap();
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
    }
}

fn cold_first_get_by_corpus_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("cold_open_and_get_by_corpus_size");
    group.sample_size(20);
    for docs in [1_000usize, 10_000, 50_000] {
        let corpus = Corpus::synthetic(docs, 5);
        let (dir, store) = support::filled_store(&corpus);
        store.close().unwrap();
        let id = corpus.docs()[docs / 2].id;
        group.bench_function(BenchmarkId::from_parameter(docs), |b| {
            b.iter_batched(
                || evict(dir.path()),
                |()| {
                    let store = Textstore::open(dir.path()).unwrap();
                    let len = store.reader().unwrap().read(id, |text| text.len()).unwrap();
                    assert!(len.is_some());
                    store
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// Operations each thread does per iteration: one in ten a durable put, the rest gets.
const OPS_PER_THREAD: usize = 200;

fn mixed_by_threads(c: &mut Criterion) {
    let corpus = Corpus::synthetic(10_000, 8);
    let (_dir, store) = support::filled_store(&corpus);
    let mut group = c.benchmark_group("mixed_90_get_10_put_by_threads");
    group.sample_size(10);
    for threads in [1usize, 2, 4, 8, 16, 20] {
        let choices =
            KeyChooser::Zipf { exponent: 0.99 }.indices(corpus.len(), OPS_PER_THREAD * threads, 9);
        group.throughput(Throughput::Elements((OPS_PER_THREAD * threads) as u64));
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            // Threads are started before the clock and wait at a barrier, so the figure is
            // the operations, not the thread creation.
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let barrier = Barrier::new(threads + 1);
                    total += std::thread::scope(|scope| {
                        for t in 0..threads {
                            let (store, corpus, barrier) = (&store, &corpus, &barrier);
                            let mine = &choices[t * OPS_PER_THREAD..(t + 1) * OPS_PER_THREAD];
                            scope.spawn(move || {
                                let mut reader = store.reader().unwrap();
                                barrier.wait();
                                for (i, &index) in mine.iter().enumerate() {
                                    let doc = &corpus.docs()[index as usize];
                                    if i % 10 == 0 {
                                        store.put(doc.id, &doc.text).unwrap();
                                    } else {
                                        reader
                                            .read(doc.id, |text| black_box(text.len()))
                                            .unwrap()
                                            .unwrap();
                                    }
                                }
                                barrier.wait();
                            });
                        }
                        barrier.wait();
                        let start = Instant::now();
                        barrier.wait();
                        start.elapsed()
                    });
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    warm_gets_by_corpus_size,
    cold_first_get_by_corpus_size,
    mixed_by_threads
);
criterion_main!(benches);
