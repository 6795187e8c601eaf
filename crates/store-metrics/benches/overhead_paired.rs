//! What instrumentation costs a read, as a ratio that run-to-run drift does not blur.
//!
//! Two criterion benchmarks of the same get, run a few seconds apart on a shared virtual
//! machine, differ by up to 6% with no change at all (`plain` against `plain_again` in the
//! `overhead` target), which is more than the 3% being measured. Here criterion measures the
//! ratio itself: one iteration reads every id plainly and then through `Instrumented` (or the
//! other way round, alternating), over the same store and the same ids, and a sample's value
//! is its instrumented time divided by its plain time. Criterion's estimates and confidence
//! interval are then those of the ratio: `1.0260` means instrumentation costs 2.6%.
//!
//! Two reads, each plain and instrumented:
//! - `instrumented_over_plain_get`: a get whose text the caller reads, every byte (the sum
//!   `textstore-bench` takes of what every engine returns): the read a program makes, and
//!   the one the benchmark's get workloads measure.
//! - `instrumented_over_plain_fetch`: a get whose handle is dropped unread (its length
//!   only), the cheapest read there is, where a fixed cost weighs most.
//!
//! Documents of 400 bytes give the cheapest get the store has; 2 KiB is the median document
//! of the synthetic corpus.
//!
//! `cargo bench -p store-metrics --bench overhead_paired`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use store_metrics::{Instrumented, Metrics};
use store_mmap::{DocId, DocRead, Durability, Store, StoreOptions, WriteBatch};

const DOCS: u64 = 10_000;
const LOOKUPS: usize = 4096;

/// A measurement whose value is a ratio of two times that the benchmark measures itself,
/// through `iter_custom`: the value of `iters` iterations is `iters` times the ratio, so
/// that criterion's per-iteration estimates are ratios.
struct Ratio;

impl Measurement for Ratio {
    type Intermediate = ();
    type Value = f64;

    fn start(&self) {
        panic!("a ratio has two times: measure it with `iter_custom`");
    }

    fn end(&self, _: ()) -> f64 {
        panic!("a ratio has two times: measure it with `iter_custom`");
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self
    }
}

impl ValueFormatter for Ratio {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "x plain"
    }

    fn scale_throughputs(&self, _: f64, _: &Throughput, _: &mut [f64]) -> &'static str {
        "x plain"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ratio"
    }
}

fn store(dir: &std::path::Path, doc_bytes: usize) -> Store {
    let mut store =
        Store::create(dir, StoreOptions::new().durability(Durability::WriteBack)).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..DOCS {
        let word = format!("document {i} ");
        batch.put(
            DocId::from(i),
            &word.repeat(doc_bytes / word.len() + 1)[..doc_bytes],
        );
    }
    store.put_batch(&batch).unwrap();
    store
}

fn overhead(c: &mut Criterion<Ratio>) {
    let ids: Vec<DocId> = (0..LOOKUPS as u64)
        .map(|i| DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % DOCS))
        .collect();
    for (name, doc_bytes) in [("400B", 400), ("2KiB", 2048)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Instrumented::new(store(dir.path(), doc_bytes), Arc::new(Metrics::new()));
        let mut group = c.benchmark_group("instrumented_over_plain_get");
        paired(
            &mut group,
            name,
            &ids,
            |id| consume(&DocRead::get(store.inner(), id).unwrap().unwrap()),
            |id| consume(&DocRead::get(&store, id).unwrap().unwrap()),
        );
        group.finish();
        let mut group = c.benchmark_group("instrumented_over_plain_fetch");
        paired(
            &mut group,
            name,
            &ids,
            |id| DocRead::get(store.inner(), id).unwrap().unwrap().len() as u64,
            |id| DocRead::get(&store, id).unwrap().unwrap().len() as u64,
        );
        group.finish();
        let gets = store.metrics().snapshot().total(store_metrics::Op::Get);
        assert!(gets > 0, "the instrumented gets were counted");
    }
}

/// Measures `instrumented`'s time over `plain`'s, each getting every id once per iteration.
fn paired(
    group: &mut BenchmarkGroup<'_, Ratio>,
    name: &str,
    ids: &[DocId],
    plain: impl Fn(DocId) -> u64,
    instrumented: impl Fn(DocId) -> u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (mut plain_time, mut instrumented_time) = (Duration::ZERO, Duration::ZERO);
            for iter in 0..iters {
                // Alternate which runs first, so that neither always follows the other.
                if iter % 2 == 0 {
                    plain_time += pass(ids, &plain);
                    instrumented_time += pass(ids, &instrumented);
                } else {
                    instrumented_time += pass(ids, &instrumented);
                    plain_time += pass(ids, &plain);
                }
            }
            iters as f64 * instrumented_time.as_secs_f64() / plain_time.as_secs_f64()
        })
    });
}

/// Reads every byte of a text, as `textstore-bench`'s get workloads do with what every
/// engine returns: a sum the compiler vectorises.
fn consume(text: &str) -> u64 {
    text.bytes().map(u64::from).sum()
}

/// Gets every id once. Generic, so that each reader is compiled into its own loop as an
/// application's would be.
fn pass(ids: &[DocId], get: impl Fn(DocId) -> u64) -> Duration {
    let start = Instant::now();
    for &id in ids {
        black_box(get(black_box(id)));
    }
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Ratio);
    targets = overhead
}
criterion_main!(benches);
