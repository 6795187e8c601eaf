//! Writing an index file: what a checkpoint costs in CPU beyond its merge and its write, by
//! the number of documents (the whole index is written at every checkpoint).
//!
//! `cargo bench -p store-format --bench index`

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_format::{DocId, IndexCheckpoint, IndexEntry, Position, encode_index};

fn entries(docs: u64) -> Vec<IndexEntry> {
    (0..docs)
        .map(|i| IndexEntry {
            id: DocId::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            seq: i + 1,
            position: Position {
                segment: 1 + (i / 100_000) as u32,
                offset: (i % 100_000) as u32 * 2048,
            },
            text_len: 2000,
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_index");
    for docs in [20_000u64, 200_000] {
        let entries = entries(docs);
        let checkpoint = IndexCheckpoint {
            store_uid: 7,
            checkpoint: Position {
                segment: 9,
                offset: 0,
            },
            last_seq: docs,
            hash_seed: 0x5EED,
        };
        group.throughput(Throughput::Elements(docs));
        group.bench_with_input(BenchmarkId::from_parameter(docs), &entries, |b, entries| {
            b.iter_batched(
                || entries.clone(),
                |entries| black_box(encode_index(checkpoint, entries.into_iter())),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
