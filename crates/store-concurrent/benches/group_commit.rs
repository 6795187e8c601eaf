//! What group commit buys, against the disk's own limit, and what writers cost readers.
//!
//! `durable_put`: puts of 4000-byte documents, each durable before it is acknowledged.
//! `fdatasync_append_4k` is the physical reference: one 4 KiB append plus `fdatasync` on a
//! file in the same directory. `store_1_thread` is the plain engine, `concurrent_1_submitter`
//! the handle with one thread waiting on each ticket, `concurrent_8_submitters` eight threads
//! doing the same, whose puts the writer groups into shared commits.
//!
//! `readers_during_writes`: two reader threads doing random gets, alone, and while another
//! thread commits durable batches of 100 puts (2000 bytes each), one every 2 ms or back to
//! back.
//!
//! The stores live under `target/`, on the disk the project is built on: a tmpfs `/tmp`
//! would make `fdatasync` free and the figures meaningless.
//!
//! `cargo bench -p store-concurrent --bench group_commit`

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
                timed_on_threads(submitters, iters, 1, move |t, seq, count| {
                    for i in seq..seq + count {
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
        timed_on_threads(2, iters, 1024, move |t, seq, count| {
            let mut n = (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ seq.wrapping_mul(0xD1B5_4A32_D192_ED03)
                | 1;
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

    // Flat out, the writer thread and its submitter take CPU time that, on a two-core
    // machine, the readers would otherwise use; paced at one commit every 2 ms (50,000
    // documents and 100 MB a second) the comparison shows what the readers lose to the
    // writer's presence rather than to a shared core.
    for (name, pace) in [
        (
            "2_readers_1_writer_paced_2ms",
            Some(Duration::from_millis(2)),
        ),
        ("2_readers_1_writer_flat_out", None),
    ] {
        group.bench_function(name, |b| {
            let stop = Arc::new(AtomicBool::new(false));
            let writer = spawn_writer(store.clone(), Arc::clone(&stop), pace);
            b.iter_custom(|iters| reads(store.clone(), iters));
            stop.store(true, Ordering::Relaxed);
            let commits = writer.join().unwrap();
            assert!(commits > 0, "the writer committed while the readers ran");
        });
    }
    group.finish();
    store.close().unwrap();
}

/// A thread that commits durable batches of 100 puts (2000 bytes each) until `stop`, one
/// every `pace` or back to back. Returns the number of commits.
fn spawn_writer(
    store: ConcurrentStore,
    stop: Arc<AtomicBool>,
    pace: Option<Duration>,
) -> thread::JoinHandle<u64> {
    // The batches are built here, so that the thread spends its time on the commit path and
    // not on generating text.
    let batches: Vec<WriteBatch> = (0..16u64)
        .map(|k| {
            let mut batch = WriteBatch::new();
            for i in 0..100 {
                let id = (k * 100 + i) % READ_CORPUS;
                batch.put(DocId::from(id), &text(id + k + 1)[..2000]);
            }
            batch
        })
        .collect();
    thread::spawn(move || {
        let mut commits = 0u64;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let batch = batches[(commits % 16) as usize].clone();
            store.put_batch(batch).unwrap().wait().unwrap();
            commits += 1;
            if let Some(pace) = pace {
                next += pace;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }
        commits
    })
}

criterion_group!(benches, durable_put, readers_during_writes);
criterion_main!(benches);
