//! Whether the caches pay for themselves.
//!
//! - `get/<pattern>/<size>`: gets over a store of 10,000 documents, plain and through a
//!   document cache that holds a fifth of the text, for uniform, zipf (s = 0.99) and
//!   sequential ids. The hit ratio of each cached run is printed after it.
//! - `lines_of_1mib` and `chars_of_1mib`: a 64-line or 4096-char range near the end of a
//!   1 MiB document, read from the store, from the document cache and scanned, and from the
//!   document cache through the cached offset table.
//!
//! `cargo bench -p store-cache --bench cache`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use store_cache::{CacheOptions, Cached};
use store_mmap::{DocId, DocRead, Durability, Store, StoreOptions, TextRange, WriteBatch};

const DOCS: u64 = 10_000;
const LOOKUPS: usize = 4096;

fn store(dir: &std::path::Path, doc_bytes: usize) -> Store {
    let options = StoreOptions::new()
        .durability(Durability::WriteBack)
        .max_document_bytes(4 << 20);
    let mut store = Store::create(dir, options).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..DOCS {
        let word = format!("word{i} ");
        batch.put(
            DocId::from(i),
            &word.repeat(doc_bytes / word.len() + 1)[..doc_bytes],
        );
        if batch.text_bytes() > 32 << 20 {
            store.put_batch(&batch).unwrap();
            batch.clear();
        }
    }
    store.put_batch(&batch).unwrap();
    store
}

/// The ids a pattern reads, drawn with a fixed seed.
fn ids(pattern: &str) -> Vec<DocId> {
    let mut rng = SmallRng::seed_from_u64(7);
    let zipf = Zipf::new(DOCS as f64, 0.99).unwrap();
    (0..LOOKUPS)
        .map(|i| match pattern {
            "uniform" => rng.random_range(0..DOCS),
            // Ranks 1..=DOCS; rank 1 the most read. Scattered so that hot ids are not
            // neighbours in the segment.
            "zipf" => (zipf.sample(&mut rng) as u64 - 1).wrapping_mul(7919) % DOCS,
            _ => i as u64 % DOCS,
        })
        .map(DocId::from)
        .collect()
}

fn gets(c: &mut Criterion) {
    for doc_bytes in [2 << 10, 64 << 10] {
        let dir = tempfile::tempdir().unwrap();
        let options = CacheOptions {
            doc_bytes: DOCS * doc_bytes as u64 / 5,
            // Every document is cached, whatever its size: this measures the cache itself.
            doc_min_bytes: 0,
            ..CacheOptions::default()
        };
        let cached = Cached::new(store(dir.path(), doc_bytes), &options);
        for pattern in ["uniform", "zipf", "sequential"] {
            let ids = ids(pattern);
            let mut group = c.benchmark_group(format!("get/{pattern}"));
            group.throughput(Throughput::Elements(LOOKUPS as u64));
            group.bench_function(BenchmarkId::new("plain", doc_bytes), |b| {
                b.iter(|| {
                    for &id in &ids {
                        black_box(cached.inner().get(id).unwrap().unwrap().len());
                    }
                })
            });
            let before = cached.stats();
            group.bench_function(BenchmarkId::new("cached", doc_bytes), |b| {
                b.iter(|| {
                    for &id in &ids {
                        black_box(cached.get(id).unwrap().unwrap().len());
                    }
                })
            });
            let after = cached.stats();
            let (hits, misses) = (
                after.hits() - before.hits(),
                after.misses() - before.misses(),
            );
            println!(
                "get/{pattern}/cached/{doc_bytes}: hit ratio {:.3} ({hits} hits, {misses} misses)",
                hits as f64 / (hits + misses) as f64
            );
            group.finish();
        }
    }
}

fn ranges(c: &mut Criterion) {
    // 1 MiB of lines of 60 to 80 bytes, some with multi-byte chars.
    let mut text = String::new();
    let mut n = 0;
    while text.len() < 1 << 20 {
        text.push_str(&format!(
            "{n:>6} línea de texto {}\n",
            "x".repeat(40 + n % 20)
        ));
        n += 1;
    }
    let id = DocId::from(1u64);
    let dir = tempfile::tempdir().unwrap();
    // One store per reader: a store has one handle at a time.
    let cached = |name: &str, table_bytes: u64| {
        let options = StoreOptions::new().max_document_bytes(4 << 20);
        let mut store = Store::create(dir.path().join(name), options).unwrap();
        store.put(id, &text).unwrap();
        let options = CacheOptions {
            table_bytes,
            ..CacheOptions::default()
        };
        Cached::new(store, &options)
    };
    let without_tables = cached("without_tables", 0);
    let with_tables = cached("with_tables", 16 << 20);
    let lines = text.lines().count() as u64;
    let chars = text.chars().count() as u64;
    for (name, range) in [
        ("lines_of_1mib", TextRange::lines(lines - 100, lines - 37)),
        (
            "chars_of_1mib",
            TextRange::chars(chars - 9000..chars - 4904),
        ),
    ] {
        let mut group = c.benchmark_group(name);
        // The store reads (and verifies) the document, then scans it.
        group.bench_function("store", |b| {
            b.iter(|| black_box(with_tables.inner().extract(id, range).unwrap().len()))
        });
        // The document comes from the cache, unverified again, and is scanned.
        group.bench_function("cached_doc_scan", |b| {
            b.iter(|| black_box(without_tables.extract(id, range).unwrap().len()))
        });
        // The document and its table come from the caches.
        group.bench_function("cached_doc_table", |b| {
            b.iter(|| black_box(with_tables.extract(id, range).unwrap().len()))
        });
        group.finish();
    }
    assert_eq!(with_tables.stats().table_builds(), 2);
    assert_eq!(without_tables.stats().table_builds(), 0);
}

criterion_group!(benches, gets, ranges);
criterion_main!(benches);
