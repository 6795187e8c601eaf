//! What compaction reclaims, and what it costs the readers and the writer that run beside
//! it.
//!
//! Space: 20,000 documents of 2,000 bytes are ingested; then every other one is
//! overwritten with a new text of the same size; then the store is compacted. After each
//! step the store directory's allocated bytes (what `du` counts: every file, preallocation
//! included) are divided by the bytes of live text.
//!
//! Cost: in each round, half the documents are overwritten (not measured), then two windows
//! are measured, in alternating order: one where two reader threads do random gets and a
//! writer thread does durable single puts, and one where the same threads run while the
//! store compacts (`ConcurrentStore::compact`, no rate limit). Gets per second and the
//! 99th percentile of get and put latency are compared between the two windows of each
//! round, which cancels the drift of a shared machine.
//!
//! `cargo bench -p store-concurrent --bench compaction [-- ROUNDS]`

use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{CompactionPolicy, DocId, WriteBatch};
use support::{bench_dir, concurrent_store, text};

mod support;

const DOCS: u64 = 20_000;
const DOC_BYTES: usize = 2000;
const READERS: usize = 2;
/// Length of a window without compaction.
const WINDOW: Duration = Duration::from_millis(300);

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or(10, |arg| {
            arg.parse().expect("the argument is a number of rounds")
        });
    let dir = bench_dir();
    let path = dir.path().join("s");
    let store = concurrent_store(
        &dir,
        WriterOptions::default().compaction(CompactionPolicy::manual()),
    );

    println!("compaction: {DOCS} documents of {DOC_BYTES} bytes");
    let live = DOCS * DOC_BYTES as u64;
    overwrite(&store, 1, 1);
    store.checkpoint().unwrap();
    let fresh = allocated_bytes(&path);
    overwrite(&store, 2, 2);
    store.checkpoint().unwrap();
    let churned = allocated_bytes(&path);
    let report = store.compact().unwrap();
    let compacted = allocated_bytes(&path);
    println!("  space amplification (allocated bytes of the store directory / live text bytes):");
    println!(
        "    after ingest:                    {:.3}",
        fresh as f64 / live as f64
    );
    println!(
        "    after overwriting 50%:           {:.3}",
        churned as f64 / live as f64
    );
    println!(
        "    after compaction:                {:.3}",
        compacted as f64 / live as f64
    );
    println!(
        "    compaction: {} segments -> {}, {} records copied in {:?}",
        report.segments_in, report.segments_out, report.records_copied, report.copy_time
    );

    let mut rounds_out = Vec::with_capacity(rounds);
    for round in 0..rounds {
        overwrite(&store, 2, 3 + round as u64);
        let (alone, during) = if round % 2 == 0 {
            let alone = measure(&store, None);
            let during = measure(&store, Some(&store));
            (alone, during)
        } else {
            let during = measure(&store, Some(&store));
            (measure(&store, None), during)
        };
        rounds_out.push((alone, during));
    }
    store.close().unwrap();
    print_costs(&rounds_out);
}

/// Puts a new version of every `step`-th document (all of them for 1, half for 2), in
/// batches of 500.
fn overwrite(store: &ConcurrentStore, step: u64, version: u64) {
    for start in (0..DOCS).step_by(500) {
        let mut batch = WriteBatch::new();
        for i in (start..start + 500).step_by(step as usize) {
            batch.put(DocId::from(i), &text(i * 1_000 + version, DOC_BYTES));
        }
        store.put_batch(batch).unwrap().wait().unwrap();
    }
}

/// Allocated bytes of every file of the directory, as `du` counts them.
fn allocated_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

/// What one window measured.
struct Window {
    gets: u64,
    elapsed: Duration,
    get_latency: Histogram<u64>,
    put_latency: Histogram<u64>,
}

/// Runs the readers and the writer for [`WINDOW`], or for as long as a compaction of
/// `compacting` takes.
fn measure(store: &ConcurrentStore, compacting: Option<&ConcurrentStore>) -> Window {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(READERS + 2));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, stop, start) = (store.clone(), stop.clone(), start.clone());
            thread::spawn(move || {
                let mut latency = Histogram::<u64>::new(3).unwrap();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ r as u64;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let began = Instant::now();
                    black_box(store.get(DocId::from(x % DOCS)).unwrap());
                    latency.record(began.elapsed().as_nanos() as u64).unwrap();
                }
                latency
            })
        })
        .collect();
    let writer = {
        let (store, stop, start) = (store.clone(), stop.clone(), start.clone());
        thread::spawn(move || {
            let mut latency = Histogram::<u64>::new(3).unwrap();
            let mut i = 0u64;
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                let id = DocId::from(DOCS + i % 1000);
                let began = Instant::now();
                store.put(id, text(i, DOC_BYTES)).unwrap().wait().unwrap();
                latency.record(began.elapsed().as_nanos() as u64).unwrap();
                i += 1;
            }
            latency
        })
    };
    start.wait();
    let began = Instant::now();
    match compacting {
        Some(store) => {
            let report = store.compact().unwrap();
            assert!(report.segments_in > 0, "nothing to compact: {report:?}");
        }
        None => thread::sleep(WINDOW),
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = began.elapsed();
    let mut get_latency = Histogram::<u64>::new(3).unwrap();
    for reader in readers {
        get_latency.add(reader.join().unwrap()).unwrap();
    }
    Window {
        gets: get_latency.len(),
        elapsed,
        get_latency,
        put_latency: writer.join().unwrap(),
    }
}

fn print_costs(rounds: &[(Window, Window)]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let gets = |w: &Window| w.gets as f64 / w.elapsed.as_secs_f64() / 1e6;
    let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99) as f64 / 1e3;
    let line = |what: &str, f: &dyn Fn(&Window) -> f64| {
        let alone = median(rounds.iter().map(|(a, _)| f(a)).collect());
        let during = median(rounds.iter().map(|(_, d)| f(d)).collect());
        let ratio = median(rounds.iter().map(|(a, d)| f(d) / f(a)).collect());
        println!("    {what:<28} {alone:>10.3} {during:>12.3} {ratio:>14.3}");
    };
    println!(
        "  {} rounds; medians of {READERS} readers doing random gets and a writer doing durable puts:",
        rounds.len()
    );
    println!(
        "    {:<28} {:>10} {:>12} {:>14}",
        "", "alone", "compacting", "ratio, paired"
    );
    line("M gets/s", &gets);
    line("get p99, µs", &|w| p99(&w.get_latency));
    line("put p99, µs", &|w| p99(&w.put_latency));
    line("put max, µs", &|w| w.put_latency.max() as f64 / 1e3);
    let durations: Vec<f64> = rounds
        .iter()
        .map(|(_, d)| d.elapsed.as_secs_f64() * 1e3)
        .collect();
    println!(
        "    compaction of half the documents' segments: median {:.0} ms",
        median(durations)
    );
}
