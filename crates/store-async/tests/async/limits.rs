use std::time::Duration;

use store_async::{AsyncOptions, AsyncStore, Error};

use store_mmap::Durability;

use crate::{gated, id, reopen, until};

/// A call that waits for a permit past its time limit fails without submitting anything; a
/// submitted write that is not acknowledged in time fails saying it may still commit, and it
/// does.
#[tokio::test(flavor = "current_thread")]
async fn timeouts_say_whether_the_write_may_still_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, gate) = gated(dir.path(), Durability::WriteBack);
    let store = AsyncStore::new(handle.clone(), AsyncOptions::new().max_in_flight(1));

    // Holds the only permit: its commit waits at the gate.
    let first = tokio::spawn({
        let store = store.clone();
        async move { store.put(id(1), "first").await }
    });
    until(|| handle.queue_stats().submitted() == 1).await;
    assert_eq!(store.in_flight(), 1);

    let limited = store.with_timeout(Duration::from_millis(30));
    match limited.put(id(2), "never submitted").await {
        Err(Error::Timeout {
            op: "put",
            may_commit: false,
            ..
        }) => {}
        other => panic!("expected a timeout before submission, got {other:?}"),
    }
    assert_eq!(handle.queue_stats().submitted(), 1);

    // A second façade over the same handle has permits of its own, so its put is submitted
    // and then waits behind the gate.
    let other = AsyncStore::new(
        handle.clone(),
        AsyncOptions::new().timeout(Duration::from_millis(30)),
    );
    let err = other.put(id(3), "submitted").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                may_commit: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("may still commit"), "{err}");

    gate.open();
    assert_eq!(first.await.unwrap().unwrap(), 1);
    store.close().await.unwrap();
    let reopened = reopen(dir.path());
    assert_eq!(
        reopened.get(id(1)).unwrap().unwrap().text().as_str(),
        "first"
    );
    assert!(reopened.get(id(2)).unwrap().is_none());
    assert_eq!(
        reopened.get(id(3)).unwrap().unwrap().text().as_str(),
        "submitted"
    );
}

/// With a limit of 2, two writes are submitted and the rest wait for a permit.
#[tokio::test(flavor = "current_thread")]
async fn the_concurrency_limit_holds_calls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, gate) = gated(dir.path(), Durability::WriteBack);
    let store = AsyncStore::new(handle.clone(), AsyncOptions::new().max_in_flight(2));
    let puts: Vec<_> = (0..10)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.put(id(n), format!("{n}")).await })
        })
        .collect();
    until(|| handle.queue_stats().submitted() == 2).await;
    // Let every other task run: none of them gets a permit.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(store.in_flight(), 2);
    assert_eq!(handle.queue_stats().submitted(), 2);

    gate.open();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    assert_eq!(store.in_flight(), 0);
    assert_eq!(handle.queue_stats().submitted(), 10);
    store.close().await.unwrap();
}

/// Calls that finish inside their time limit return their results, whether they write or
/// read on the blocking pool; a panic in work on the blocking pool carries on in the caller.
#[tokio::test(flavor = "current_thread")]
async fn calls_inside_their_time_limit_succeed_and_panics_carry_on() {
    let store = AsyncStore::new(
        store_format::MemoryStore::new(),
        AsyncOptions::new()
            .timeout(Duration::from_secs(60))
            .reads(store_async::Reads::Blocking),
    );
    assert_eq!(store.put(id(1), "in time").await.unwrap(), 1);
    let doc = store.get(id(1)).await.unwrap().unwrap();
    assert_eq!(doc.text(), "in time");
    // A durable write, which the writer thread acknowledges some time after it is queued.
    let dir = tempfile::tempdir().unwrap();
    let durable = crate::open(
        dir.path(),
        store_mmap::StoreOptions::new(),
        AsyncOptions::new().timeout(Duration::from_secs(60)),
    )
    .await;
    assert_eq!(durable.put(id(1), "in time").await.unwrap(), 1);
    durable.close().await.unwrap();

    let panicking = store.clone();
    let joined = tokio::spawn(async move {
        panicking
            .run_blocking("panics", |_| -> Result<(), _> {
                panic!("work that panics")
            })
            .await
    })
    .await;
    let panic = joined.expect_err("the panic was swallowed").into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"work that panics"));
}
