//! What the async façade costs per operation, against the same calls on the concurrent
//! handle in the same run, and what `StoreSet::get_many` gains from fanning out over 1, 2
//! and 4 stores.
//!
//! `cargo bench -p store-async --bench async_ops`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_async::{AsyncOptions, AsyncStore, Reads, StoreSet};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, Durability, StoreOptions};

const DOCS: u64 = 10_000;
const MANY: usize = 256;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A store of `DOCS` documents of about 2 KiB, written back by the OS: the puts measured
/// here time the hand-off to the writer and the acknowledgement, not the disk.
fn store(dir: &std::path::Path, options: AsyncOptions) -> AsyncStore<ConcurrentStore> {
    let handle = ConcurrentStore::create(
        dir,
        StoreOptions::new().durability(Durability::WriteBack),
        WriterOptions::default(),
    )
    .unwrap();
    let text = "word ".repeat(400);
    let tickets: Vec<_> = (0..DOCS)
        .map(|n| handle.put(DocId::from(n), text.clone()).unwrap())
        .collect();
    for ticket in tickets {
        ticket.wait().unwrap();
    }
    AsyncStore::new(handle, options)
}

fn ids(count: usize) -> Vec<DocId> {
    (0..count as u64)
        .map(|i| DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % DOCS))
        .collect()
}

fn per_op(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let checked = store(&dir.path().join("a"), AsyncOptions::new());
    let blocking = AsyncStore::new(
        checked.inner().clone(),
        AsyncOptions::new().reads(Reads::Blocking),
    );
    let inline = AsyncStore::new(
        checked.inner().clone(),
        AsyncOptions::new().reads(Reads::Inline),
    );
    let ids = ids(4096);

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("sync", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            black_box(checked.inner().get(ids[i]).unwrap())
        })
    });
    for (name, store) in [
        ("async", &checked),
        ("async_inline_unchecked", &inline),
        ("async_on_blocking_pool", &blocking),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % ids.len();
                let id = ids[i];
                async move { black_box(store.get(id).await.unwrap()) }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    let text = "word ".repeat(400);
    group.bench_function("sync", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            black_box(
                checked
                    .inner()
                    .put(ids[i], text.clone())
                    .unwrap()
                    .wait()
                    .unwrap(),
            )
        })
    });
    group.bench_function("async", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % ids.len();
            let (id, text) = (ids[i], text.clone());
            let store = &checked;
            async move { black_box(store.put(id, text).await.unwrap()) }
        })
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let ids = ids(MANY);
    let mut group = c.benchmark_group("get_many");
    group.throughput(Throughput::Elements(MANY as u64));
    for stores in [1, 2, 4] {
        // Each store holds every document, so that each id is found in whichever store the
        // set routes it to.
        let set = StoreSet::new(
            (0..stores)
                .map(|s| {
                    store(
                        &dir.path().join(format!("{stores}-{s}")),
                        AsyncOptions::new(),
                    )
                })
                .collect(),
            stores,
        );
        group.bench_with_input(BenchmarkId::from_parameter(stores), &set, |b, set| {
            b.to_async(&rt)
                .iter(|| async { black_box(set.get_many(&ids).await) })
        });
    }
    group.finish();
}

criterion_group!(benches, per_op, fan_out);
criterion_main!(benches);
