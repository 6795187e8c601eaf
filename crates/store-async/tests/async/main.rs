//! store-async at its boundary: cancelled and timed-out writes checked after a reopen, the
//! concurrency limit, fan-out over several stores, cold and warm reads, where each read runs
//! (inline, on the blocking pool, read ahead), and a runtime thread that a durable write
//! never holds.

mod cancel;
mod compaction;
mod double;
mod limits;
mod placement;
mod reads;
mod runtime;
mod set;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use store_async::{AsyncOptions, AsyncStore};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_format::{CommitEvent, CommitObserver};
use store_mmap::{DocId, Durability, Store, StoreOptions};

pub(crate) fn id(n: u64) -> DocId {
    DocId::from(n)
}

/// The async façade over the concurrent handle, the stack these tests run.
pub(crate) type Async = AsyncStore<ConcurrentStore>;

pub(crate) async fn open(dir: &Path, store: StoreOptions, options: AsyncOptions) -> Async {
    let dir = dir.join("store");
    let handle = tokio::task::spawn_blocking(move || {
        ConcurrentStore::open_or_create(dir, store, WriterOptions::default())
    })
    .await
    .unwrap()
    .unwrap();
    AsyncStore::new(handle, options)
}

/// Reopens the store with the plain engine, as a later process would.
pub(crate) fn reopen(dir: &Path) -> Store {
    Store::open(dir.join("store"), StoreOptions::new()).unwrap()
}

/// Holds the writer thread inside its next commit until opened: the engine reports a commit
/// to its observer before the writer acknowledges it.
#[derive(Default)]
pub(crate) struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    reached: AtomicBool,
}

impl Gate {
    /// Whether a commit has stopped at the gate.
    pub(crate) fn reached(&self) -> bool {
        self.reached.load(Ordering::Acquire)
    }

    pub(crate) fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl CommitObserver for Gate {
    fn commit(&self, _: &CommitEvent) {
        self.reached.store(true, Ordering::Release);
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
    }

    fn sync(&self, _: Duration, _: bool) {}
}

/// A store whose writer stops inside its first commit until the gate opens.
pub(crate) fn gated(dir: &Path, durability: Durability) -> (ConcurrentStore, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let mut store = Store::create(
        dir.join("store"),
        StoreOptions::new().durability(durability),
    )
    .unwrap();
    store.set_observer(gate.clone());
    let handle = ConcurrentStore::from_store(store, WriterOptions::default()).unwrap();
    (handle, gate)
}

/// Yields to the runtime until `done` holds; the condition is set by other tasks or by the
/// writer thread, so this is a join, not a timed wait.
pub(crate) async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::task::yield_now().await;
    }
}
