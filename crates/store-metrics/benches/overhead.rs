//! What instrumentation costs a read: `get` on a store, plain and through `Instrumented`
//! (with reads timed one in 64, the default, and every one), in the same run. `plain_again`
//! repeats the plain case after the instrumented one, so that a drift between them shows.
//! That drift is often larger than the overhead: `overhead_paired` measures the ratio.
//!
//! `cargo bench -p store-metrics --bench overhead`

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use store_metrics::{Instrumented, Metrics};
use store_mmap::{DocId, DocRead, Durability, Store, StoreOptions, WriteBatch};

const DOCS: u64 = 10_000;
const LOOKUPS: usize = 4096;

fn store(dir: &std::path::Path) -> Store {
    let mut store =
        Store::create(dir, StoreOptions::new().durability(Durability::WriteBack)).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..DOCS {
        batch.put(DocId::from(i), &format!("document {i} ").repeat(20));
    }
    store.put_batch(&batch).unwrap();
    store
}

fn gets(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<DocId> = (0..LOOKUPS as u64)
        .map(|i| DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % DOCS))
        .collect();
    let sampled = Instrumented::new(store(&dir.path().join("s")), Arc::new(Metrics::new()));
    // A second store with the same documents: a store has one handle at a time.
    let every = Instrumented::new(
        store(&dir.path().join("e")),
        Arc::new(Metrics::with_read_sample_every(1)),
    );

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    // Both plain cases call the trait method, the same code `Instrumented` calls: the
    // inherent `Store::get` is a second copy of it, whose placement alone moved the plain
    // figure by 4 to 7%.
    run(&mut group, "plain", &ids, |id| {
        DocRead::get(sampled.inner(), id).unwrap().unwrap().len()
    });
    run(&mut group, "instrumented", &ids, |id| {
        DocRead::get(&sampled, id).unwrap().unwrap().len()
    });
    run(&mut group, "plain_again", &ids, |id| {
        DocRead::get(sampled.inner(), id).unwrap().unwrap().len()
    });
    run(&mut group, "instrumented_every_read_timed", &ids, |id| {
        DocRead::get(&every, id).unwrap().unwrap().len()
    });
    group.finish();
}

/// Gets every id. Generic, so that each reader is compiled into its loop as an
/// application's would be: called through `&dyn Fn`, the instrumented reader paid a call
/// frame of its own with five more saved registers than the plain one.
fn run<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    name: &str,
    ids: &[DocId],
    reader: impl Fn(DocId) -> usize,
) {
    group.bench_function(name, |b| {
        b.iter(|| {
            for &id in ids {
                black_box(reader(id));
            }
        })
    });
}

criterion_group!(benches, gets);
criterion_main!(benches);
