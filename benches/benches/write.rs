//! Writes: a bulk ingest by document size (256 B to 1 MiB), and durable commits of 1 to 500
//! documents. Creating the store and preparing the documents happen in `iter_batched`'s
//! setup, and the store's removal after the timed routine returns it.
//!
//! `cargo bench -p textstore-benches --bench write`

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_bench::engines::Textstore;
use store_bench::{Corpus, Document, Engine, KeyChooser};
use store_mmap::DocId;

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

criterion_group!(
    benches,
    ingest_by_document_size,
    durable_commits_by_batch_size
);
criterion_main!(benches);
