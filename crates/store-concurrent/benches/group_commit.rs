//! What group commit buys, against the disk's own limit.
//!
//! `durable_put`: puts of 4000-byte documents, each durable before it is acknowledged.
//! `fdatasync_append_4k` is the physical reference: one 4 KiB append plus `fdatasync` on a
//! file in the same directory. `store_1_thread` is the plain engine, `concurrent_1_submitter`
//! the handle with one thread waiting on each ticket, `concurrent_8_submitters` eight threads
//! doing the same, whose puts the writer groups into shared commits. The `commit_ops_`
//! variants put with a borrowed text through `commit_ops`, which commits on the calling
//! thread when nothing is queued.
//!
//! The stores live under `target/` (see `support::bench_dir`).
//!
//! `cargo bench -p store-concurrent --bench group_commit`

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store_concurrent::WriterOptions;
use store_mmap::{BatchOp, DocId, Store, StoreOptions};
use support::{bench_dir, concurrent_store, text};

mod support;

const DOC_BYTES: usize = 4000;

/// Runs `total` operations on `threads` threads and times from the moment all of them are
/// ready until the last one is done. Threads claim work `chunk` operations at a time and call
/// `work(thread, seq, count)` with their running operation count `seq`, so that a thread
/// slowed by something else on its core does not leave the other cores idle at the end.
fn timed_on_threads<F>(threads: u64, total: u64, chunk: u64, work: F) -> Duration
where
    F: Fn(u64, u64, u64) + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let remaining = Arc::new(AtomicU64::new(total));
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (work, remaining, start) = (
                Arc::clone(&work),
                Arc::clone(&remaining),
                Arc::clone(&start),
            );
            thread::spawn(move || {
                start.wait();
                let mut seq = 0;
                loop {
                    let left =
                        remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                            left.checked_sub(chunk.min(left)).filter(|_| left > 0)
                        });
                    let Ok(left) = left else { break };
                    let count = chunk.min(left);
                    work(t, seq, count);
                    seq += count;
                }
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    for handle in handles {
        handle.join().unwrap();
    }
    started.elapsed()
}

fn durable_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_put");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("fdatasync_append_4k", |b| {
        let dir = bench_dir();
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("append"))
            .unwrap();
        let block = vec![b'x'; 4096];
        let mut offset = 0;
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                file.write_all_at(&block, offset).unwrap();
                file.sync_data().unwrap();
                offset += 4096;
            }
            started.elapsed()
        });
    });

    group.bench_function("store_1_thread", |b| {
        let dir = bench_dir();
        let mut store = Store::create(dir.path().join("s"), StoreOptions::new()).unwrap();
        let doc = text(7, DOC_BYTES);
        let mut n = 0u64;
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                store.put(DocId::from(n % 1000), &doc).unwrap();
                n += 1;
            }
            started.elapsed()
        });
    });

    for (borrowed, submitters) in [(false, 1u64), (false, 8), (true, 1), (true, 8)] {
        let name = match (borrowed, submitters) {
            (false, 1) => "concurrent_1_submitter".to_owned(),
            (false, n) => format!("concurrent_{n}_submitters"),
            (true, 1) => "commit_ops_1_submitter".to_owned(),
            (true, n) => format!("commit_ops_{n}_submitters"),
        };
        group.bench_function(name, |b| {
            let dir = bench_dir();
            let store = concurrent_store(&dir, WriterOptions::default());
            let doc = Arc::new(text(7, DOC_BYTES));
            b.iter_custom(|iters| {
                let (store, doc) = (store.clone(), Arc::clone(&doc));
                timed_on_threads(submitters, iters, 1, move |t, seq, count| {
                    for i in seq..seq + count {
                        let id = DocId::from(t * 1_000_000 + i % 1000);
                        if borrowed {
                            let put = BatchOp::Put { id, text: &doc };
                            store.commit_ops(&[put]).unwrap();
                        } else {
                            store.put(id, doc.as_str()).unwrap().wait().unwrap();
                        }
                    }
                })
            });
            store.close().unwrap();
        });
    }
    group.finish();
}

criterion_group!(benches, durable_put);
criterion_main!(benches);
