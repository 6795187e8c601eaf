//! Point reads by corpus size: the cost of `get` and `extract` must not grow with the number
//! of documents (one hash probe plus one record checksum).
//!
//! `cargo bench -p store-mmap --bench lookup`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_mmap::{DocId, Durability, Store, StoreOptions, TextRange, WriteBatch};

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];
const LOOKUPS: usize = 4096;

/// A deterministic document of 200 to 455 bytes.
fn text(i: u64) -> String {
    let words = [
        "lorem", "ipsum", "dolor", "sit", "amet", "größe", "naïve", "東京",
    ];
    let len = 200 + (i.wrapping_mul(2_654_435_761) % 256) as usize;
    let mut out = String::with_capacity(len + 8);
    let mut k = i;
    while out.len() < len {
        out.push_str(words[(k % words.len() as u64) as usize]);
        out.push(' ');
        k = k
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            >> 7;
    }
    out
}

fn build(dir: &std::path::Path, docs: u64) -> Store {
    let options = StoreOptions::new().durability(Durability::WriteBack);
    let mut store = Store::create(dir, options.clone()).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..docs {
        batch.put(DocId::from(i), &text(i));
        if batch.len() == 10_000 {
            store.put_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.put_batch(&batch).unwrap();
    store.close().unwrap();
    // Reopen so that reads go through a store as an application would find it.
    Store::open(dir, options).unwrap()
}

/// Pseudo-random ids spread over the whole corpus, computed outside the timed loop.
fn lookup_ids(docs: u64) -> Vec<DocId> {
    (0..LOOKUPS as u64)
        .map(|i| DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % docs))
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(1));
    for docs in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = build(dir.path(), docs);
        let ids = lookup_ids(docs);
        // Touch every page once so the figure is the warm lookup cost, not disk reads.
        for &id in &ids {
            black_box(store.get(id).unwrap());
        }
        group.bench_with_input(BenchmarkId::new("get", docs), &ids, |b, ids| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % ids.len();
                black_box(store.get(ids[i]).unwrap().unwrap())
            });
        });
        group.bench_with_input(
            BenchmarkId::new("extract_chars_8_64", docs),
            &ids,
            |b, ids| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % ids.len();
                    black_box(store.extract(ids[i], TextRange::chars(8..64)).unwrap())
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("miss", docs), &docs, |b, &docs| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                black_box(store.get(DocId::from(docs + i)).unwrap())
            });
        });
        drop(store);
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
