//! Writes: a bulk ingest by document size (256 B to 1 MiB), durable commits of 1 to 500
//! documents, and a put through the concurrent handle by the store's segment count.
//! Creating the store and preparing the documents happen in `iter_batched`'s setup, and the
//! store's removal after the timed routine returns it.
//!
//! `cargo bench -p textstore-benches --bench write`

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_bench::engines::Textstore;
use store_bench::{Corpus, Document, Engine, KeyChooser};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, Durability, Store, StoreOptions};

mod support;

/// Text bytes each ingest writes, whatever the document size, so that the figures compare
/// per-document overhead at equal volume.
const INGEST_BYTES: usize = 16 << 20;

fn ingest_by_document_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest_by_document_size");
    group.sample_size(10);
    for doc_bytes in [256usize, 2 << 10, 16 << 10, 256 << 10, 1 << 20] {
        let count = INGEST_BYTES / doc_bytes;
        let text: String = Corpus::synthetic(1, 1).docs()[0]
            .text
            .chars()
            .cycle()
            .take(doc_bytes)
            .collect();
        let docs: Vec<Document> = (0..count as u64)
            .map(|i| Document {
                id: DocId::from(i),
                text: text.clone(),
            })
            .collect();
        group.throughput(Throughput::Bytes(INGEST_BYTES as u64));
        group.bench_function(BenchmarkId::from_parameter(doc_bytes), |b| {
            b.iter_batched(
                || {
                    let dir = support::bench_dir();
                    let store = Textstore::create(dir.path()).unwrap();
                    (dir, store)
                },
                |(dir, store)| {
                    store.ingest(&docs).unwrap();
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn durable_commits_by_batch_size(c: &mut Criterion) {
    let corpus = Corpus::synthetic(10_000, 3);
    let (_dir, store) = support::filled_store(&corpus);
    let mut group = c.benchmark_group("durable_commit_by_batch_size");
    for batch in [1usize, 10, 100, 500] {
        let choices = KeyChooser::Uniform.indices(corpus.len(), 1 << 16, batch as u64);
        let mut next = 0;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter_batched(
                || {
                    let docs: Vec<(DocId, &str)> = (0..batch)
                        .map(|_| {
                            next = (next + 1) % choices.len();
                            let doc = &corpus.docs()[choices[next] as usize];
                            (doc.id, doc.text.as_str())
                        })
                        .collect();
                    docs
                },
                |docs| store.put_batch(&docs).unwrap(),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// One put through the concurrent handle, its ticket waited for, in a store of 10 to 4,000
/// segments: what a commit costs the writer besides the disk (write-back, so no flush),
/// which must not grow with the store. The segments are small (64 KiB) so that a store of
/// thousands builds in seconds; a store of 256 MiB segments has 4,000 at 1 TiB.
fn put_by_segment_count(c: &mut Criterion) {
    let mut group = c.benchmark_group("put_by_segment_count");
    group.throughput(Throughput::Elements(1));
    let options = || {
        StoreOptions::new()
            .durability(Durability::WriteBack)
            .max_document_bytes(32 << 10)
    };
    for segments in [10u64, 1_000, 4_000] {
        let dir = support::bench_dir();
        let mut store = Store::create(dir.path(), options().segment_capacity(64 << 10)).unwrap();
        let filler = "f".repeat(20_000);
        let mut next_id = 1u64 << 40;
        while store.stats().unwrap().segments() < segments {
            store.put(DocId::from(next_id), &filler).unwrap();
            next_id += 1;
        }
        store.close().unwrap();
        let store = ConcurrentStore::open(
            dir.path(),
            options().segment_capacity(256 << 20),
            WriterOptions::default(),
        )
        .unwrap();
        let text = "p".repeat(2_000);
        let mut k = 0u64;
        group.bench_function(BenchmarkId::from_parameter(segments), |b| {
            b.iter(|| {
                k = (k + 1) % 5_000;
                store
                    .put(DocId::from(k), text.as_str())
                    .unwrap()
                    .wait()
                    .unwrap()
            });
        });
        store.close().unwrap();
    }
    group.finish();
}

criterion_group!(
    benches,
    ingest_by_document_size,
    durable_commits_by_batch_size,
    put_by_segment_count
);
criterion_main!(benches);
