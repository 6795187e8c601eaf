//! What group commit buys, against the disk's own limit, and what writers cost readers.
//!
//! `durable_put`: puts of 4000-byte documents, each durable before it is acknowledged.
//! `fdatasync_append_4k` is the physical reference: one 4 KiB append plus `fdatasync` on a
//! file in the same directory. `store_1_thread` is the plain engine, `concurrent_1_submitter`
//! the handle with one thread waiting on each ticket, `concurrent_8_submitters` eight threads
//! doing the same, whose puts the writer groups into shared commits.
//!
//! `readers_during_writes`: two reader threads doing random gets, alone and while another
//! thread commits durable batches of 100 puts back to back.
//!
//! The stores live under `target/`, on the disk the project is built on: a tmpfs `/tmp`
//! would make `fdatasync` free and the figures meaningless.
//!
//! `cargo bench -p store-concurrent --bench group_commit`

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, Store, StoreOptions, WriteBatch};

const DOC_BYTES: usize = 4000;
const READ_CORPUS: u64 = 20_000;

fn bench_dir() -> tempfile::TempDir {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&target).unwrap();
    tempfile::tempdir_in(target).unwrap()
}

/// A durable store with the default writer settings.
fn concurrent_store(dir: &tempfile::TempDir) -> ConcurrentStore {
    ConcurrentStore::create(
        dir.path().join("s"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap()
}

fn text(i: u64) -> String {
    let digits = i.to_string();
    let mut out = String::with_capacity(DOC_BYTES);
    while out.len() + digits.len() < DOC_BYTES {
        out.push_str(&digits);
        out.push(' ');
    }
    out
}

/// Runs `per_thread(thread, count)` on `threads` threads, splitting `total` operations, and
/// times from the moment all of them are ready until the last one is done.
fn timed_on_threads<F>(threads: u64, total: u64, per_thread: F) -> Duration
where
    F: Fn(u64, u64) + Send + Sync + 'static,
{
    let per_thread = Arc::new(per_thread);
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (per_thread, start) = (Arc::clone(&per_thread), Arc::clone(&start));
            let count = total / threads + u64::from(t < total % threads);
            thread::spawn(move || {
                start.wait();
                per_thread(t, count);
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
        let doc = text(7);
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

    for submitters in [1u64, 8] {
        let name = if submitters == 1 {
            "concurrent_1_submitter".to_owned()
        } else {
            format!("concurrent_{submitters}_submitters")
        };
        group.bench_function(name, |b| {
            let dir = bench_dir();
            let store = concurrent_store(&dir);
            let doc = Arc::new(text(7));
            b.iter_custom(|iters| {
                let (store, doc) = (store.clone(), Arc::clone(&doc));
                timed_on_threads(submitters, iters, move |t, count| {
                    for i in 0..count {
                        let id = DocId::from(t * 1_000_000 + i % 1000);
                        store.put(id, doc.as_str()).unwrap().wait().unwrap();
                    }
                })
            });
            store.close().unwrap();
        });
    }
    group.finish();
}

fn readers_during_writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("readers_during_writes");
    group.throughput(Throughput::Elements(1));
    let dir = bench_dir();
    let store = concurrent_store(&dir);
    let short = |i: u64| text(i)[..2000].to_owned();
    for start in (0..READ_CORPUS).step_by(1000) {
        let mut batch = WriteBatch::new();
        for i in start..start + 1000 {
            batch.put(DocId::from(i), &short(i));
        }
        store.put_batch(batch).unwrap().wait().unwrap();
    }

    let reads = |store: ConcurrentStore, iters: u64| {
        timed_on_threads(2, iters, move |t, count| {
            let mut n = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..count {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                let doc = store.get(DocId::from(n % READ_CORPUS)).unwrap().unwrap();
                black_box(doc.len());
            }
        })
    };

    group.bench_function("2_readers_no_writer", |b| {
        b.iter_custom(|iters| reads(store.clone(), iters));
    });

    group.bench_function("2_readers_1_writer", |b| {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut commits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = WriteBatch::new();
                    for i in 0..100 {
                        let id = (commits * 100 + i) % READ_CORPUS;
                        batch.put(DocId::from(id), &short(id + commits));
                    }
                    store.put_batch(batch).unwrap().wait().unwrap();
                    commits += 1;
                }
                commits
            })
        };
        b.iter_custom(|iters| reads(store.clone(), iters));
        stop.store(true, Ordering::Relaxed);
        let commits = writer.join().unwrap();
        assert!(commits > 0, "the writer committed while the readers ran");
    });
    group.finish();
    store.close().unwrap();
}

criterion_group!(benches, durable_put, readers_during_writes);
criterion_main!(benches);
