use std::collections::HashMap;
use std::time::Duration;

use store_async::AsyncOptions;
use store_mmap::StoreOptions;

use crate::{id, open, reopen};

/// Puts raced against timers of random length, so that their futures are dropped at every
/// stage: waiting for a permit, queued, committing. A quarter race no timer and always
/// finish; a quarter race a timer that has already expired and never do. After a reopen
/// every put that returned `Ok` is there with its text, nothing else is, and no put was
/// written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_puts_never_lose_an_acknowledged_write_or_write_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        StoreOptions::new(),
        AsyncOptions::new().max_in_flight(16),
    )
    .await;

    const PUTS: u64 = 2000;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut tasks = Vec::new();
    for n in 0..PUTS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = match n % 4 {
            0 => None,
            1 => Some(Duration::ZERO),
            _ => Some(Duration::from_micros(seed % 3000)),
        };
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let put = store.put(id(n), format!("text of {n}"));
            let Some(wait) = wait else {
                return Some(put.await.unwrap());
            };
            tokio::select! {
                put = put => Some(put.unwrap()),
                () = tokio::time::sleep(wait) => None,
            }
        }));
    }
    let mut acknowledged = HashMap::new();
    for (n, task) in tasks.into_iter().enumerate() {
        if let Some(seq) = task.await.unwrap() {
            acknowledged.insert(n as u64, seq);
        }
    }
    store.close().await.unwrap();

    let reopened = reopen(dir.path());
    for (&n, &seq) in &acknowledged {
        let doc = reopened
            .get(id(n))
            .unwrap()
            .expect("acknowledged put is present");
        assert_eq!(doc.text().as_str(), format!("text of {n}"));
        assert_eq!(doc.seq(), seq);
    }
    let mut present = 0;
    for doc_id in reopened.ids().map(Result::unwrap) {
        let n = doc_id.as_u128() as u64;
        assert!(n < PUTS, "unexpected document {doc_id}");
        let doc = reopened.get(doc_id).unwrap().unwrap();
        assert_eq!(doc.text().as_str(), format!("text of {n}"));
        present += 1;
    }
    assert!(present >= acknowledged.len());
    // A put written twice would have left its first version dead.
    assert_eq!(reopened.stats().unwrap().dead_bytes(), 0);
    // Both outcomes occurred, so the drops did hit puts in flight.
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < PUTS as usize,
        "{}",
        acknowledged.len()
    );
}
