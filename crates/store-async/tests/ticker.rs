//! The runtime-responsiveness test, in a test binary of its own: it bounds how late a
//! ticker wakes, and other tests running beside it (`cargo test` runs the tests of one
//! binary on parallel threads, binaries one after another) would delay it for reasons of
//! their own. Under nextest it also asks for every core (`.config/nextest.toml`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store_async::{AsyncOptions, AsyncStore};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, StoreOptions};

fn id(n: u64) -> DocId {
    DocId::from(n)
}

/// On a runtime with one thread, a ticker that asks to wake every millisecond measures how
/// late it wakes while tasks run thousands of durable puts and gets. Every put waits for an
/// `fdatasync`; if one ran on the runtime thread, the ticker would wait for it.
#[tokio::test(flavor = "current_thread")]
async fn durable_writes_never_stall_the_runtime_thread() {
    // Under the target directory, on the disk the build uses, so that each put waits for a
    // real flush (on a tmpfs, where the system's temporary directory may be, it does not).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let handle = ConcurrentStore::open_or_create(
        dir.path().join("store"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap();
    let store = AsyncStore::new(handle, AsyncOptions::new());

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

    assert_eq!(store.inner().len(), (TASKS * PUTS) as usize);
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
