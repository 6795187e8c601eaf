//! The façade's behaviour over the in-memory double: what it does with any handle, whatever
//! the handle does underneath.

use store_async::{AsyncOptions, AsyncStore, Error, Reads};
use store_format::{ErrorKind, MemoryStore, StoreError, TextRange, WriteBatch};

use crate::id;

/// Every read placement reads the same: inline, on the blocking pool, or by residency.
#[tokio::test(flavor = "current_thread")]
async fn every_read_placement_reads_the_same() {
    for reads in [Reads::Inline, Reads::Blocking, Reads::CheckResidency] {
        let store = AsyncStore::new(MemoryStore::new(), AsyncOptions::new().reads(reads));
        store.put(id(1), "one\ntwo").await.unwrap();
        let mut batch = WriteBatch::new();
        batch.put(id(2), "deux").put(id(3), "trois");
        let last = store.put_batch(batch).await.unwrap();
        assert_eq!(last, 3);
        assert_eq!(store.get(id(2)).await.unwrap().unwrap().text(), "deux");
        assert_eq!(
            store.extract(id(1), TextRange::lines(2, 2)).await.unwrap(),
            "two"
        );
        assert_eq!(store.delete(id(3)).await.unwrap(), Some(4));
        assert_eq!(store.delete(id(3)).await.unwrap(), None);
        assert_eq!(store.get(id(3)).await.unwrap(), None);
        let missing = store
            .extract(id(9), TextRange::bytes(0..1))
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound, "{reads:?}");
        store.prefetch(vec![id(1), id(9)]).await.unwrap();
        store.sync().await.unwrap();
        assert_eq!(store.inner().len(), 2, "{reads:?}");
    }
}

/// A handle's failure comes through as the store's error, with its kind; a closed façade
/// refuses calls with its own.
#[tokio::test(flavor = "current_thread")]
async fn failures_keep_their_kind_and_close_refuses_calls() {
    let store = AsyncStore::new(MemoryStore::new(), AsyncOptions::new());
    store.put(id(1), "x").await.unwrap();
    store.inner().fail_with(Some(ErrorKind::Poisoned));
    let err = store.put(id(2), "y").await.unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Poisoned);
    let read = store.get(id(1)).await.unwrap_err();
    assert_eq!(read.kind(), ErrorKind::Poisoned);
    let sync = store.sync().await.unwrap_err();
    assert_eq!(sync.kind(), ErrorKind::Poisoned);
    store.inner().fail_with(None);

    let counted = store
        .run_blocking("count", |inner| Ok(inner.len()))
        .await
        .unwrap();
    assert_eq!(counted, 1);
    store.close().await.unwrap();
    let closed = store.get(id(1)).await.unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::Closed, "{closed}");
}
