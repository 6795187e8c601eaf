//! What a writer costs readers: two reader threads doing random gets, alone and while a
//! writer commits durable batches back to back.
//!
//! The two cases are measured in alternating windows of the same run, and each "with a
//! writer" window is compared to the "alone" window next to it. Throughput on a shared
//! virtual machine drifts by more than the effect being measured between runs a few seconds
//! apart; pairing adjacent windows cancels that drift, which comparing two criterion
//! benchmarks run one after the other does not.
//!
//! The writer is a thread that submits batches of 100 puts of 2000-byte documents over the
//! ids the readers read, waits for each to be durable, and submits the next: one
//! `fdatasync` per batch, as fast as the disk allows. The readers therefore also read
//! records written moments earlier, into pages they have not mapped yet.
//!
//! `cargo bench -p store-concurrent --bench readers_during_writes [-- ROUNDS]`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, WriteBatch};
use support::{bench_dir, concurrent_store, text};

mod support;

/// Documents the readers choose from.
const CORPUS: u64 = 20_000;
const DOC_BYTES: usize = 2000;
const BATCH_DOCS: u64 = 100;
const READERS: u64 = 2;
/// Length of one measurement window.
const WINDOW: Duration = Duration::from_millis(400);

fn main() {
    // `cargo bench` passes `--bench`; the one other argument it may carry is the number of
    // rounds.
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or(30, |arg| {
            arg.parse().expect("the argument is a number of rounds")
        });
    let dir = bench_dir();
    let store = concurrent_store(&dir, WriterOptions::default());
    for start in (0..CORPUS).step_by(1000) {
        let mut batch = WriteBatch::new();
        for i in start..start + 1000 {
            batch.put(DocId::from(i), &text(i, DOC_BYTES));
        }
        store.put_batch(batch).unwrap().wait().unwrap();
    }
    // One window of each kind to warm the page tables and the caches.
    read_for(&store, WINDOW);
    with_writer(&store, None, || read_for(&store, WINDOW));

    println!("readers_during_writes: {rounds} rounds of {WINDOW:?} windows, {READERS} readers");
    for pace in [None, Some(Duration::from_millis(10))] {
        compare(&store, rounds, pace);
    }
    store.close().unwrap();
}

/// Measures `rounds` pairs of windows, alone and with a writer that commits a batch every
/// `pace` (or back to back), and prints the comparison.
fn compare(store: &ConcurrentStore, rounds: usize, pace: Option<Duration>) {
    let mut alone = Vec::with_capacity(rounds);
    let mut during = Vec::with_capacity(rounds);
    let (mut commits, mut writing) = (0, Duration::ZERO);
    for round in 0..rounds {
        // Alternate which case goes first, so that neither always follows the other.
        let mut measure_during = || {
            let (window, batches, elapsed) = with_writer(store, pace, || read_for(store, WINDOW));
            writing += elapsed;
            commits += batches;
            during.push(window);
        };
        if round % 2 == 0 {
            alone.push(read_for(store, WINDOW));
            measure_during();
        } else {
            measure_during();
            alone.push(read_for(store, WINDOW));
        }
    }
    let writer = commits as f64 / writing.as_secs_f64();
    match pace {
        None => println!("writer committing back to back:"),
        Some(pace) => println!("writer committing one batch every {pace:?}:"),
    }
    println!(
        "  writer: {writer:.0} durable batches/s, {:.0} documents/s, {:.1} MB/s",
        writer * BATCH_DOCS as f64,
        writer * (BATCH_DOCS as usize * DOC_BYTES) as f64 / 1e6
    );
    report("M gets/s", 1e-6, &alone, &during, Window::gets_per_second);
    report(
        "M gets/reader-CPU-s",
        1e-6,
        &alone,
        &during,
        Window::gets_per_cpu_second,
    );
    report(
        "readers' CPU share",
        1.0,
        &alone,
        &during,
        Window::cpu_share,
    );
}

/// One line per case and one for their ratio, paired by round: medians and quartiles.
fn report(what: &str, scale: f64, alone: &[Window], during: &[Window], f: fn(&Window) -> f64) {
    let summary = |values: &[f64]| {
        format!(
            "median {:.3} (quartiles {:.3} .. {:.3})",
            quantile(values, 0.5),
            quantile(values, 0.25),
            quantile(values, 0.75)
        )
    };
    let alone: Vec<f64> = alone.iter().map(|w| f(w) * scale).collect();
    let during: Vec<f64> = during.iter().map(|w| f(w) * scale).collect();
    let ratios: Vec<f64> = during.iter().zip(&alone).map(|(d, a)| d / a).collect();
    println!("  {what}");
    println!("    readers alone:          {}", summary(&alone));
    println!("    readers with a writer:  {}", summary(&during));
    println!("    with / alone, paired:   {}", summary(&ratios));
}

/// What the readers did in one window.
#[derive(Clone, Copy)]
struct Window {
    gets: u64,
    elapsed: Duration,
    /// CPU time the reader threads got, summed.
    reader_cpu: Duration,
}

impl Window {
    fn gets_per_second(&self) -> f64 {
        self.gets as f64 / self.elapsed.as_secs_f64()
    }

    fn gets_per_cpu_second(&self) -> f64 {
        self.gets as f64 / self.reader_cpu.as_secs_f64()
    }

    /// The share of the cores the readers got while they ran.
    fn cpu_share(&self) -> f64 {
        self.reader_cpu.as_secs_f64() / (READERS as f64 * self.elapsed.as_secs_f64())
    }
}

/// CPU time of the calling thread so far, from the scheduler's own account (the first field
/// of `/proc/thread-self/schedstat`, in nanoseconds).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("the scheduler statistics of this thread are readable (Linux)");
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .expect("schedstat starts with the thread's CPU time in nanoseconds");
    Duration::from_nanos(nanos)
}

/// Runs the readers for `window`.
fn read_for(store: &ConcurrentStore, window: Duration) -> Window {
    let start = Arc::new(Barrier::new(READERS as usize + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|t| {
            let (store, start) = (store.clone(), Arc::clone(&start));
            thread::spawn(move || {
                let mut n = (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut gets = 0u64;
                start.wait();
                let cpu_before = thread_cpu_time();
                let deadline = Instant::now() + window;
                while Instant::now() < deadline {
                    for _ in 0..256 {
                        n ^= n << 13;
                        n ^= n >> 7;
                        n ^= n << 17;
                        let doc = store.get(DocId::from(n % CORPUS)).unwrap().unwrap();
                        black_box(doc.len());
                    }
                    gets += 256;
                }
                (gets, thread_cpu_time() - cpu_before)
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let mut window = Window {
        gets: 0,
        elapsed: Duration::ZERO,
        reader_cpu: Duration::ZERO,
    };
    for reader in readers {
        let (gets, cpu) = reader.join().unwrap();
        window.gets += gets;
        window.reader_cpu += cpu;
    }
    window.elapsed = started.elapsed();
    window
}

/// Runs `measure` while a writer commits durable batches, one every `pace` or back to
/// back; returns what
/// `measure` returned, the number of batches committed meanwhile and how long it ran. The
/// writer has committed its first batch before `measure` starts.
fn with_writer<R>(
    store: &ConcurrentStore,
    pace: Option<Duration>,
    measure: impl FnOnce() -> R,
) -> (R, u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, committed) = (store.clone(), Arc::clone(&stop), Arc::clone(&committed));
        // Built here, so that the thread spends its time on the commit path and not on
        // generating text.
        let batches: Vec<WriteBatch> = (0..16u64)
            .map(|k| {
                let mut batch = WriteBatch::new();
                for i in 0..BATCH_DOCS {
                    let id = (k * BATCH_DOCS + i) * 7 % CORPUS;
                    batch.put(DocId::from(id), &text(id + k + 1, DOC_BYTES));
                }
                batch
            })
            .collect();
        thread::spawn(move || {
            let mut next = Instant::now();
            for batch in batches.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                store.put_batch(batch.clone()).unwrap().wait().unwrap();
                committed.fetch_add(1, Ordering::Relaxed);
                if let Some(pace) = pace {
                    next += pace;
                    thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            }
        })
    };
    while committed.load(Ordering::Relaxed) == 0 {
        thread::yield_now();
    }
    let before = committed.load(Ordering::Relaxed);
    let started = Instant::now();
    let result = measure();
    let elapsed = started.elapsed();
    let batches = committed.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(batches > 0, "the writer committed while the readers ran");
    (result, batches, elapsed)
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
