//! A durable write never holds the runtime thread: its commit, flush included, runs on
//! another thread while the runtime goes on with its other tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store_async::{AsyncOptions, AsyncStore};
use store_mmap::Durability;

use crate::{gated, id, until};

/// On a runtime with one thread, every put's commit stops inside the engine, after its
/// flush, until a gate opens, and only a task of this runtime opens it. A put that committed
/// on the runtime thread would stop that thread with it: the opening task would never run,
/// and the watchdog thread would open the gate after a minute and fail the test.
#[tokio::test(flavor = "current_thread")]
async fn a_durable_put_never_holds_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, gate) = gated(dir.path(), Durability::Sync);
    let store = AsyncStore::new(handle, AsyncOptions::new());

    let finished = Arc::new(AtomicBool::new(false));
    let rescued = Arc::new(AtomicBool::new(false));
    let watchdog = std::thread::spawn({
        let (finished, rescued, gate) = (finished.clone(), rescued.clone(), gate.clone());
        move || {
            for _ in 0..600 {
                if finished.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            rescued.store(true, Ordering::Release);
            gate.open();
        }
    });

    let text = |n: u64| format!("document {n}");
    let puts: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.put(id(n), text(n)).await })
        })
        .collect();
    until(|| gate.reached()).await;
    gate.open();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    finished.store(true, Ordering::Release);
    watchdog.join().unwrap();
    assert!(
        !rescued.load(Ordering::Acquire),
        "the puts held the runtime thread until the watchdog opened the gate"
    );
    for n in 0..8 {
        let doc = store.get(id(n)).await.unwrap().unwrap();
        assert_eq!(doc.text().as_str(), text(n));
    }
    store.close().await.unwrap();
}
