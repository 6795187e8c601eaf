//! The change feed an indexer polls: the cost of `changes_since` for the last few changes
//! must not grow with the data before them.
//!
//! `cargo bench -p store-mmap --bench changes`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use store_mmap::{DocId, Durability, Store, StoreOptions, WriteBatch};

/// Records in the store: 100-byte texts, in 16 MiB segments (about 145k records each).
const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];
/// The changes each poll reads back.
const NEW: u64 = 100;

fn build(dir: &std::path::Path, records: u64) -> Store {
    let options = StoreOptions::new()
        .durability(Durability::WriteBack)
        .segment_capacity(16 << 20)
        .max_document_bytes(4096);
    let mut store = Store::create(dir, options).unwrap();
    let text = "x".repeat(100);
    let mut batch = WriteBatch::new();
    for i in 0..records {
        batch.put(DocId::from(i % 50_000), &text);
        if batch.len() == 10_000 {
            store.put_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.put_batch(&batch).unwrap();
    store
}

fn poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("changes_since");
    for records in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = build(dir.path(), records);
        let since = store.last_seq() - NEW;
        group.bench_with_input(
            BenchmarkId::new("last_100", records),
            &since,
            |b, &since| {
                b.iter(|| {
                    let mut bytes = 0;
                    for change in store.changes_since(since).unwrap() {
                        if let store_mmap::Change::Put { doc, .. } = change.unwrap() {
                            bytes += doc.len();
                        }
                    }
                    assert_eq!(bytes, NEW as usize * 100);
                    black_box(bytes)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, poll);
criterion_main!(benches);
