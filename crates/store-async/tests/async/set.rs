use store_async::{AsyncOptions, AsyncStore, StoreSet};
use store_format::{DocId, MemoryStore};
use store_mmap::StoreOptions;

use crate::{id, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_set_spreads_ids_and_answers_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for shard in 0..3 {
        stores.push(
            open(
                &dir.path().join(format!("{shard}")),
                StoreOptions::new(),
                AsyncOptions::new(),
            )
            .await,
        );
    }
    let set = StoreSet::new(stores, 2);

    let docs: Vec<_> = (0..300)
        .rev()
        .map(|n| (id(n), format!("doc {n}")))
        .collect();
    let results = set.put_many(docs.clone()).await;
    assert_eq!(results.len(), 300);
    for result in &results {
        result.as_ref().unwrap();
    }
    // Every id is in the store its shard names, and only there.
    for (doc_id, text) in &docs {
        let shard = set.shard(*doc_id);
        for (i, store) in set.stores().iter().enumerate() {
            let found = store.inner().get(*doc_id).unwrap();
            assert_eq!(
                found.map(|d| d.text().as_str().to_owned()).as_ref(),
                (i == shard).then_some(text)
            );
        }
    }
    // The ids spread over all three stores.
    for store in set.stores() {
        assert!(store.inner().len() > 50, "{}", store.inner().len());
    }

    let ids: Vec<_> = [5, 299, 1000, 0, 17].into_iter().map(id).collect();
    let got = set.get_many(&ids).await;
    let texts: Vec<Option<String>> = got
        .into_iter()
        .map(|r| r.unwrap().map(|d| d.text().as_str().to_owned()))
        .collect();
    assert_eq!(
        texts,
        vec![
            Some("doc 5".to_owned()),
            Some("doc 299".to_owned()),
            None,
            Some("doc 0".to_owned()),
            Some("doc 17".to_owned()),
        ]
    );
    for store in set.stores() {
        store.close().await.unwrap();
    }
}

/// Ids that differ only in their high 64 bits spread over the stores too: both halves of an
/// id go into its shard.
#[tokio::test(flavor = "current_thread")]
async fn ids_that_differ_only_in_their_high_half_spread_too() {
    let stores = (0..3)
        .map(|_| AsyncStore::new(MemoryStore::new(), AsyncOptions::new()))
        .collect();
    let set = StoreSet::new(stores, 2);
    assert_eq!(set.stores().len(), 3);
    let mut per_store = [0u32; 3];
    for k in 0..300u128 {
        per_store[set.shard(DocId::from_u128(k << 64 | 7))] += 1;
    }
    assert!(per_store.iter().all(|&n| n > 50), "{per_store:?}");
}

/// A panic in one store's part of a fan-out carries on in the caller, rather than that
/// store's items being reported as cancelled.
#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_a_fan_out_carries_on_in_the_caller() {
    use std::sync::atomic::Ordering;
    let options = AsyncOptions::new().reads(store_async::Reads::Blocking);
    let stores = (0..2)
        .map(|_| AsyncStore::new(crate::placement::Recording::default(), options.clone()))
        .collect();
    let set = StoreSet::new(stores, 2);
    for store in set.stores() {
        store.inner().panic_on_get.store(true, Ordering::Relaxed);
    }
    let ids: Vec<DocId> = (0..10).map(id).collect();
    let joined = tokio::spawn(async move { set.get_many(&ids).await.len() }).await;
    let panic = joined.expect_err("the panic was swallowed").into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"a get that panics"));
}
