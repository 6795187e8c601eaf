//! What instrumentation costs a read, as a ratio that run-to-run drift does not blur.
//!
//! Two criterion benchmarks of a 110 ns get, run a few seconds apart on a shared virtual
//! machine, differ by up to 6% with no change at all (`plain` against `plain_again` in the
//! `overhead` target), which is more than the 3% being measured. Here the plain and the
//! instrumented gets run in alternating windows of a few milliseconds over the same store
//! and the same ids, each instrumented window is divided by the plain window next to it,
//! and the median of those ratios is reported with its quartiles.
//!
//! Documents of 400 bytes give the cheapest get the store has, where a fixed cost weighs
//! most; 2 KiB is the median document of the synthetic corpus.
//!
//! `cargo bench -p store-metrics --bench overhead_paired [-- ROUNDS]`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_metrics::{Instrumented, Metrics};
use store_mmap::{DocId, DocRead, Durability, Store, StoreOptions, WriteBatch};

const DOCS: u64 = 10_000;
const LOOKUPS: usize = 4096;
/// Passes over the ids per window: about 10 ms of gets.
const PASSES: usize = 20;

fn main() {
    // `cargo bench` passes `--bench`; the one other argument it may carry is the number of
    // rounds.
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .map_or(200, |arg| {
            arg.parse().expect("the argument is a number of rounds")
        });
    println!(
        "overhead_paired: {rounds} rounds of {PASSES} x {LOOKUPS} gets each way, \
         reads timed one in {}",
        store_metrics::DEFAULT_READ_SAMPLE_EVERY
    );
    for doc_bytes in [400, 2048] {
        compare(doc_bytes, rounds);
    }
}

fn compare(doc_bytes: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(
        dir.path(),
        StoreOptions::new().durability(Durability::WriteBack),
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..DOCS {
        let word = format!("document {i} ");
        batch.put(
            DocId::from(i),
            &word.repeat(doc_bytes / word.len() + 1)[..doc_bytes],
        );
    }
    store.put_batch(&batch).unwrap();
    let store = Instrumented::new(store, Arc::new(Metrics::new()));
    let ids: Vec<DocId> = (0..LOOKUPS as u64)
        .map(|i| DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % DOCS))
        .collect();

    let plain = |id| DocRead::get(store.inner(), id).unwrap().unwrap().len();
    let instrumented = |id| DocRead::get(&store, id).unwrap().unwrap().len();
    // Warm the page tables and the caches.
    window(&ids, &plain);
    window(&ids, &instrumented);

    let (mut plain_ns, mut ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which runs first, so that neither always follows the other.
        let (p, i) = if round % 2 == 0 {
            let p = window(&ids, &plain);
            (p, window(&ids, &instrumented))
        } else {
            let i = window(&ids, &instrumented);
            (window(&ids, &plain), i)
        };
        plain_ns.push(p.as_nanos() as f64 / (PASSES * LOOKUPS) as f64);
        ratios.push(i.as_secs_f64() / p.as_secs_f64());
    }
    let gets = store.metrics().snapshot().total(store_metrics::Op::Get);
    assert!(
        gets >= (rounds * PASSES * LOOKUPS) as u64,
        "the instrumented gets were counted"
    );
    println!(
        "{doc_bytes:>5}-byte documents: plain get {:.1} ns (median); \
         instrumented / plain, paired: median {:.4} (quartiles {:.4} .. {:.4})",
        quantile(&plain_ns, 0.5),
        quantile(&ratios, 0.5),
        quantile(&ratios, 0.25),
        quantile(&ratios, 0.75),
    );
}

fn window(ids: &[DocId], get: &dyn Fn(DocId) -> usize) -> Duration {
    let start = Instant::now();
    for _ in 0..PASSES {
        for &id in ids {
            black_box(get(black_box(id)));
        }
    }
    start.elapsed()
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
