//! Writes: a bulk ingest by document size (256 B to 1 MiB), durable commits of 1 to 500
//! documents, durable commits into a new segment file or a spare one, the open after a
//! crash in either, and a put through the concurrent handle by the store's segment count.
//! Creating the store and preparing the documents happen in `iter_batched`'s setup, and the
//! store's removal after the timed routine returns it.
//!
//! `cargo bench -p textstore-benches --bench write`

use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use store_bench::engines::Textstore;
use store_bench::{Corpus, Document, Engine, KeyChooser};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{
    BatchOp, CompactionPolicy, CompactionScope, DocId, Durability, Store, StoreOptions,
};

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

/// Durable commits of 1 and 100 documents of the synthetic corpus (16 MiB of live text,
/// overwritten round and round) into segments of 64 MiB in steady state: after every roll
/// a compaction due by its policy replaces the segment just sealed, outside the timed
/// commits. With `spare_file` the store keeps the replaced file as a spare and writes the
/// next segment over it (docs/FORMAT.md, "Spare files"); with `new_file` it removes it, and
/// each segment is a new file, preallocated (and zeroed ahead of commits of at most 64 KiB).
fn durable_commit_by_segment_space(c: &mut Criterion) {
    let corpus = Corpus::synthetic(5_000, 3);
    let docs = corpus.docs();
    let mut group = c.benchmark_group("durable_commit_by_segment_space");
    group.sample_size(10);
    for batch in [1usize, 100] {
        group.throughput(Throughput::Elements(batch as u64));
        for (space, spare_files) in [("new_file", 0), ("spare_file", 1)] {
            let dir = support::bench_dir();
            let options = StoreOptions::new()
                .segment_capacity(64 << 20)
                .max_document_bytes(1 << 20)
                .spare_files(spare_files);
            let mut store = Store::create(dir.path(), options).unwrap();
            let mut writes = Overwrites::of(docs);
            // Two segments written and replaced first, so that a spare file exists from
            // the first timed commit on.
            for _ in 0..2 {
                writes.fill_segment(&mut store, batch);
                compact_sealed(&mut store);
            }
            let param = format!("{batch}/{space}");
            group.bench_function(BenchmarkId::from_parameter(param), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let active = store.active_segment();
                        let start = Instant::now();
                        writes.commit(&mut store, batch);
                        timed += start.elapsed();
                        if store.active_segment() != active {
                            compact_sealed(&mut store);
                        }
                    }
                    timed
                });
            });
            store.close().unwrap();
        }
    }
    group.finish();
}

/// The open after a crash of a store whose newest segment, of the default 256 MiB, holds ten
/// commits of 100 documents: in a new file (`new_file`), in a file written over a spare
/// (`spare_file`), and in the same with its write limit removed (`spare_file_no_limit`), so
/// that the open walks the earlier segment's bytes to the end of the file, as it must without
/// a limit. The directory is copied as a kill leaves it, once; each timed open is read-only,
/// which walks the segments as the writer's open does (in memory, without its syncs) and
/// changes no file, so the same copy serves every iteration.
fn open_after_crash_by_segment_space(c: &mut Criterion) {
    let corpus = Corpus::synthetic(20_000, 7);
    let docs = corpus.docs();
    let mut group = c.benchmark_group("open_after_crash_by_segment_space");
    group.sample_size(20);
    for (space, spare_files, keep_limit) in [
        ("new_file", 0, true),
        ("spare_file", 1, true),
        ("spare_file_no_limit", 1, false),
    ] {
        let dir = support::bench_dir();
        let store_dir = dir.path().join("store");
        let options = || StoreOptions::new().spare_files(spare_files);
        let mut store =
            Store::create(&store_dir, options().durability(Durability::WriteBack)).unwrap();
        let mut writes = Overwrites::of(docs);
        // Two segments written and the first replaced, then a roll: onto the spare file the
        // compaction kept, or onto a new file.
        for _ in 0..2 {
            writes.fill_segment(&mut store, 1000);
        }
        store.sync().unwrap();
        compact_sealed(&mut store);
        store.close().unwrap();
        let mut store = Store::open(&store_dir, options()).unwrap();
        writes.fill_segment(&mut store, 1000);
        for _ in 0..10 {
            writes.commit(&mut store, 100);
        }
        let crashed = dir.path().join("crashed");
        std::fs::create_dir(&crashed).unwrap();
        for entry in std::fs::read_dir(&store_dir).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, crashed.join(path.file_name().unwrap())).unwrap();
        }
        drop(store);
        if !keep_limit {
            std::fs::remove_file(crashed.join("limit.tsl")).unwrap();
        }
        // The copy is of a crashed writer (the journal it leaves is read), and its newest
        // segment is the file wanted.
        let opened = Store::open_read_only(&crashed, options()).unwrap();
        assert!(
            opened.recovery().journal_frames > 0,
            "{:?}",
            opened.recovery()
        );
        let newest = crashed.join(format!("{:010}.seg", opened.active_segment()));
        let header = std::fs::read(&newest).unwrap();
        assert_eq!(
            header[52] & 0b10 != 0,
            spare_files > 0,
            "{}",
            newest.display()
        );
        drop(opened);
        group.bench_function(BenchmarkId::from_parameter(space), |b| {
            b.iter_with_large_drop(|| Store::open_read_only(&crashed, options()).unwrap());
        });
    }
    group.finish();
}

/// Overwrites of a corpus's documents, round and round, each commit going on from where the
/// last stopped.
struct Overwrites<'a> {
    docs: &'a [Document],
    next: usize,
}

impl<'a> Overwrites<'a> {
    fn of(docs: &'a [Document]) -> Overwrites<'a> {
        Overwrites { docs, next: 0 }
    }

    /// One commit of the next `count` documents.
    fn commit(&mut self, store: &mut Store, count: usize) {
        let ops: Vec<BatchOp<'_>> = (0..count)
            .map(|_| {
                let doc = &self.docs[self.next % self.docs.len()];
                self.next += 1;
                BatchOp::Put {
                    id: doc.id,
                    text: doc.text.as_str(),
                }
            })
            .collect();
        store.commit_ops(ops).unwrap();
    }

    /// Commits of `count` documents until the store moves writes to a new segment.
    fn fill_segment(&mut self, store: &mut Store, count: usize) {
        let active = store.active_segment();
        while store.active_segment() == active {
            self.commit(store, count);
        }
    }
}

/// The compaction the concurrent handle's policy would run after a roll (the sealed
/// segments are mostly dead), and the checkpoint that lets the replaced segments go.
fn compact_sealed(store: &mut Store) {
    let policy = CompactionPolicy {
        min_dead_bytes: 1,
        ..CompactionPolicy::default()
    };
    if let Some(plan) = store
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
    {
        store.install_compaction(plan.run().unwrap()).unwrap();
    }
    store.checkpoint().unwrap();
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
    durable_commit_by_segment_space,
    open_after_crash_by_segment_space,
    put_by_segment_count
);
criterion_main!(benches);
