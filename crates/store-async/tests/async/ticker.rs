use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store_async::AsyncOptions;
use store_mmap::StoreOptions;

use crate::{id, open};

/// On a runtime with one thread, a ticker that asks to wake every millisecond measures how
/// late it wakes while tasks run thousands of durable puts and gets. Every put waits for an
/// `fdatasync`; if one ran on the runtime thread, the ticker would wait for it.
#[tokio::test(flavor = "current_thread")]
async fn durable_writes_never_stall_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreOptions::new(), AsyncOptions::new()).await;

    let running = Arc::new(AtomicBool::new(true));
    let ticker = tokio::spawn({
        let running = running.clone();
        async move {
            let mut late = Vec::new();
            while running.load(Ordering::Relaxed) {
                let asked = Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                late.push(asked.elapsed().saturating_sub(Duration::from_millis(1)));
            }
            late
        }
    });

    const TASKS: u64 = 8;
    const PUTS: u64 = 250;
    let workers: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..PUTS {
                    let key = t * PUTS + n;
                    store.put(id(key), format!("document {key}")).await.unwrap();
                    let doc = store.get(id(key)).await.unwrap().unwrap();
                    assert_eq!(doc.text().as_str(), format!("document {key}"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    running.store(false, Ordering::Relaxed);
    let mut late = ticker.await.unwrap();

    assert_eq!(store.handle().len(), (TASKS * PUTS) as usize);
    assert!(late.len() >= 20, "the ticker ran only {} times", late.len());
    late.sort_unstable();
    let p99 = late[late.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(5),
        "p99 wake-up delay {p99:?} over {} ticks",
        late.len()
    );
    store.close().await.unwrap();
}
