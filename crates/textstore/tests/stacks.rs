//! The layers stacked in the orders a program would stack them, over the real engine and over
//! the in-memory double, each stack driven through the traits alone: if a layer stopped
//! implementing or passing through a capability, these would not compile; if it passed one
//! through wrongly, they would fail.

use std::sync::Arc;

use store_async::{AsyncOptions, AsyncStore, StoreSet};
use store_cache::{CacheOptions, Cached};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_format::{
    DocId, DocRead, DocWrite, ErrorKind, MemoryStore, Prefetch, Residency, StoreError, TextRange,
    WriteBatch, WriteTicket,
};
use store_metrics::{Instrumented, Metrics, Op, Outcome};
use store_mmap::{Store, StoreOptions};

fn id(n: u64) -> DocId {
    DocId::from(n)
}

/// A cache that keeps every document, however short, so that a test sees its hits.
fn cache_all() -> CacheOptions {
    CacheOptions {
        doc_min_bytes: 0,
        ..CacheOptions::default()
    }
}

/// What every stack must do, through the traits alone: writes that come back, a newer
/// version that replaces an older, batches, deletes, extraction, errors by kind.
fn exercise<S: DocWrite + Residency + Prefetch>(store: &S) {
    store.put(id(1), "one\ntwo\nthree").unwrap().wait().unwrap();
    let first = store.get(id(1)).unwrap().unwrap();
    assert_eq!(first.text(), "one\ntwo\nthree");
    let newer = store.put(id(1), "uno\ndos").unwrap().wait().unwrap();
    assert!(newer > first.seq());
    assert_eq!(store.get(id(1)).unwrap().unwrap().text(), "uno\ndos");
    assert_eq!(store.extract(id(1), TextRange::lines(2, 2)).unwrap(), "dos");

    let mut batch = WriteBatch::new();
    batch.put(id(2), "two").put(id(3), "three").delete(id(1));
    store.put_batch(batch).unwrap().wait().unwrap();
    assert!(!store.contains(id(1)).unwrap());
    assert_eq!(store.meta(id(3)).unwrap().unwrap().text_len, 5);
    assert!(store.delete(id(2)).unwrap().wait().unwrap().is_some());
    assert_eq!(store.delete(id(2)).unwrap().wait().unwrap(), None);

    let missing = store.extract(id(9), TextRange::bytes(0..1)).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let range = store.extract(id(3), TextRange::bytes(0..99)).unwrap_err();
    assert_eq!(range.kind(), ErrorKind::InvalidInput, "{range}");

    store.prefetch(&[id(3), id(9)]).unwrap();
    store.refresh_residency().unwrap();
    if let Some(found) = store.get_if_resident(id(3)).unwrap() {
        assert_eq!(found.unwrap().text(), "three");
    }
    store.sync().unwrap();
}

#[test]
fn the_layers_stack_over_the_double_in_either_order() {
    let metrics = Arc::new(Metrics::new());
    let cached_instrumented = Cached::new(
        Instrumented::new(MemoryStore::new(), metrics.clone()),
        &cache_all(),
    );
    exercise(&cached_instrumented);
    // Below the cache, the metrics see only the reads that reach them: the cache's misses.
    let below = metrics.snapshot();
    let cache = cached_instrumented.stats();
    assert!(cache.hits() > 0, "{cache:?}");
    let below_gets = below.count(Op::Get, Outcome::Ok) + below.count(Op::Get, Outcome::NotFound);
    // Each miss, and `get_if_resident`, which the cache asks the reader (knowing whether it
    // holds the latest version would take a look at the record's header).
    assert_eq!(below_gets, cache.misses() + 1);
    assert_eq!(cached_instrumented.inner().inner().reads(), below_gets);

    let metrics = Arc::new(Metrics::new());
    let instrumented_cached = Instrumented::new(
        Cached::new(MemoryStore::new(), &cache_all()),
        metrics.clone(),
    );
    exercise(&instrumented_cached);
    // Above the cache, every call the program makes is counted, hits included.
    let above = metrics.snapshot();
    // Two gets and the resident read; the extractions count as themselves.
    assert_eq!(above.count(Op::Get, Outcome::Ok), 3);
    assert_eq!(above.count(Op::Extract, Outcome::Ok), 1);
    assert_eq!(above.count(Op::Put, Outcome::Ok), 2);
    assert_eq!(above.count(Op::PutBatch, Outcome::Ok), 1);
    assert_eq!(above.count(Op::Delete, Outcome::Ok), 1);
    assert_eq!(above.count(Op::Delete, Outcome::NotFound), 1);
    assert_eq!(above.count(Op::Extract, Outcome::NotFound), 1);
    assert_eq!(
        above.count(Op::Extract, Outcome::Error(ErrorKind::InvalidInput)),
        1
    );

    // Failures of any kind come up through both layers with their kind.
    instrumented_cached
        .inner()
        .inner()
        .fail_with(Some(ErrorKind::Io));
    let err = instrumented_cached.get(id(3)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(
        metrics
            .snapshot()
            .count(Op::Get, Outcome::Error(ErrorKind::Io)),
        1
    );
}

#[test]
fn the_cache_warms_from_the_hot_file_through_the_metrics_layer_over_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot-ids");
    let mut store = Store::create(dir.path().join("store"), StoreOptions::new()).unwrap();
    for n in 0..20 {
        store.put(id(n), &format!("document {n}")).unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let cached = Cached::new(Instrumented::new(store, metrics.clone()), &cache_all());
    for _ in 0..3 {
        for n in 0..5 {
            assert_eq!(
                cached.get(id(n)).unwrap().unwrap().text().as_str(),
                format!("document {n}")
            );
        }
    }
    assert_eq!(cached.stats().hits(), 10);
    assert_eq!(metrics.snapshot().count(Op::Get, Outcome::Ok), 5);
    let store = cached.close(&hot).unwrap().into_inner();

    // `open` prefetches through `Instrumented`, which passes `Prefetch` on to the engine.
    let (warm, prefetched) = Cached::open(
        Instrumented::new(store, metrics.clone()),
        &cache_all(),
        &hot,
    )
    .unwrap();
    assert_eq!(prefetched, 5);
    assert_eq!(
        warm.get(id(4)).unwrap().unwrap().text().as_str(),
        "document 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_over_metrics_over_cache_over_the_concurrent_handle() {
    let dir = tempfile::tempdir().unwrap();
    let handle = ConcurrentStore::create(
        dir.path().join("store"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap();
    let metrics = Arc::new(Metrics::new());
    let stack = Instrumented::new(Cached::new(handle.clone(), &cache_all()), metrics.clone());
    let store = AsyncStore::new(stack, AsyncOptions::new());

    for n in 0..50 {
        store.put(id(n), format!("text {n}")).await.unwrap();
    }
    for n in 0..50 {
        let doc = store.get(id(n)).await.unwrap().unwrap();
        assert_eq!(doc.text().as_str(), format!("text {n}"));
    }
    assert!(store.delete(id(0)).await.unwrap().is_some());
    assert_eq!(store.get(id(0)).await.unwrap(), None);
    let extracted = store.extract(id(7), TextRange::bytes(5..6)).await.unwrap();
    assert_eq!(extracted, "7");
    let report = store
        .run_blocking("compact", |stack| {
            stack.inner().inner().compact().map_err(Into::into)
        })
        .await
        .unwrap();
    assert!(report.records_copied <= 50, "{report:?}");
    assert_eq!(
        store.get(id(7)).await.unwrap().unwrap().text().as_str(),
        "text 7"
    );

    let s = metrics.snapshot();
    assert_eq!(s.count(Op::Put, Outcome::Ok), 50);
    assert_eq!(s.count(Op::Delete, Outcome::Ok), 1);
    assert_eq!(s.count(Op::Get, Outcome::Ok), 51);
    assert_eq!(s.count(Op::Get, Outcome::NotFound), 1);
    store.close().await.unwrap();
    let closed = store.put(id(1), "late").await.unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::Closed, "{closed}");
    assert_eq!(handle.len(), 49);
}

#[tokio::test(flavor = "current_thread")]
async fn async_and_the_store_set_over_the_double() {
    let stores: Vec<_> = (0..3)
        .map(|_| AsyncStore::new(MemoryStore::new(), AsyncOptions::new()))
        .collect();
    let set = StoreSet::new(stores, 2);
    let docs: Vec<(DocId, String)> = (0..30).map(|n| (id(n), format!("doc {n}"))).collect();
    let written = set.put_many(docs).await;
    assert!(written.iter().all(Result::is_ok));
    let ids: Vec<DocId> = (0..31).map(id).collect();
    let read = set.get_many(&ids).await;
    for (n, found) in read.into_iter().enumerate() {
        let found = found.unwrap();
        match n {
            30 => assert_eq!(found, None),
            n => assert_eq!(found.unwrap().text().as_str(), format!("doc {n}")),
        }
    }
    let held: usize = set.stores().iter().map(|s| s.inner().len()).sum();
    assert_eq!(held, 30);
    assert!(
        set.stores().iter().all(|s| s.inner().len() < 30),
        "ids spread over the stores"
    );

    let one = &set.stores()[0];
    one.inner().fail_with(Some(ErrorKind::StorageFull));
    let err = one.put(id(99), "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
}

#[test]
fn the_facade_names_one_error_whatever_layer_failed() {
    let dir = tempfile::tempdir().unwrap();
    let store = textstore::Textstore::builder(dir.path().join("store"))
        .store_options(StoreOptions::new().max_document_bytes(8))
        .open()
        .unwrap();
    let too_large = store.put(id(1), "more than eight bytes").unwrap_err();
    assert_eq!(too_large.kind(), ErrorKind::InvalidInput);
    assert!(
        matches!(
            too_large.engine(),
            Some(store_mmap::Error::DocumentTooLarge { limit: 8, .. })
        ),
        "the engine's own error, one level down: {too_large:?}"
    );
    let missing = store.extract(id(2), TextRange::bytes(0..1)).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(
        missing
            .to_string()
            .starts_with(&format!("document {} ", id(2))),
        "{missing}"
    );

    let locked = textstore::Textstore::builder(dir.path().join("store"))
        .open()
        .expect_err("one writer at a time");
    assert_eq!(locked.kind(), ErrorKind::Locked);
    let reader = textstore::Textstore::builder(dir.path().join("store"))
        .read_only()
        .open()
        .unwrap();
    let refused = reader.put(id(3), "x").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ReadOnly, "{refused}");
    store.close().unwrap();
    let closed = store.put(id(3), "x").unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::Closed);
    reader.close().unwrap();
    let gone = textstore::Textstore::builder(dir.path().join("absent"))
        .must_exist()
        .open()
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::Other, "{gone}");
    // Its `Debug` is that of the error it wraps.
    assert_eq!(format!("{gone:?}"), format!("{:?}", gone.inner()));
}

/// The façade's handle answers each call as its stack and the concurrent handle under it
/// do: counts, the header, membership, copies, residency, the placement epoch, a backup
/// and its `Debug`.
#[test]
fn the_facade_answers_as_the_stack_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = textstore::Textstore::builder(dir.path().join("store"))
        .store_options(
            StoreOptions::new()
                .segment_capacity(16 << 10)
                .max_document_bytes(2000),
        )
        .open()
        .unwrap();
    assert!(store.is_empty());
    let text = |n: u64| format!("{n} {}", "x".repeat(900));
    for n in 0..20 {
        store.put(id(n), text(n)).unwrap().wait().unwrap();
    }
    assert_eq!(store.len(), 20);
    assert!(!store.is_empty());
    assert_eq!(store.stats().unwrap().documents(), 20);
    assert!(format!("{store:?}").contains("documents: 20"), "{store:?}");
    let meta = store.meta(id(3)).unwrap().unwrap();
    assert_eq!(meta.text_len, text(3).len() as u64);
    assert!(store.contains(id(3)).unwrap());
    assert!(!store.contains(id(99)).unwrap());
    let mut buf = String::new();
    assert!(store.read_into(id(3), &mut buf).unwrap());
    assert_eq!(buf, text(3));
    assert!(!store.read_into(id(99), &mut buf).unwrap());

    // Residency goes to the concurrent handle at the bottom.
    assert!(!store.handle().was_resident(id(4)).unwrap());
    store.note_resident(id(4));
    assert!(store.handle().was_resident(id(4)).unwrap());
    // A document on other pages than the noted one's.
    assert!(!store.handle().was_resident(id(15)).unwrap());
    store.refresh_residency().unwrap();
    assert!(
        store.handle().was_resident(id(15)).unwrap(),
        "written pages are in memory"
    );
    let resident = store.get_if_resident(id(15)).unwrap().unwrap().unwrap();
    assert_eq!(resident.text(), text(15).as_str());

    let report = store.backup(dir.path().join("backup")).unwrap();
    assert_eq!(report.documents, 20, "{report:?}");

    // Rounds of overwrites and compactions until two segments have been retired.
    for round in 0..20u64 {
        if DocRead::placement_epoch(store.handle()) >= 2 {
            break;
        }
        for n in 0..20 {
            store
                .put(id(n), format!("{round} {}", text(n)))
                .unwrap()
                .wait()
                .unwrap();
        }
        store.compact().unwrap();
    }
    let epoch = DocRead::placement_epoch(store.handle());
    assert!(epoch >= 2, "{epoch}");
    assert_eq!(DocRead::placement_epoch(&store), epoch);
    #[cfg(feature = "metrics")]
    {
        store.sync().unwrap();
        let syncs = store.metrics().snapshot().count(Op::Sync, Outcome::Ok);
        assert_eq!(syncs, 1, "the sync went through the metrics layer");
    }
    store.close().unwrap();
}
