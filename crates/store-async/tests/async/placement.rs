//! Where the façade runs each read, seen through a double that records every call it gets
//! and the thread that made it: resident reads inline on the calling task, the rest on the
//! blocking pool (which then notes the record resident), residency looked at again on the
//! first read and every 4,096th, and gets of consecutive ids reading the next ones ahead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use store_async::{AsyncOptions, AsyncStore, Reads};
use store_format::{
    Doc, DocId, DocMeta, DocRead, DocWrite, MemoryStore, OfferOf, Prefetch, Residency, Text,
    TextRange, WriteBatch,
};

use crate::id;

/// One call the double got: its name, the ids it named, and the thread that made it.
type Call = (&'static str, Vec<DocId>, ThreadId);

/// The in-memory double, resident or not as the test says, recording its reading calls;
/// its gets panic when told to.
#[derive(Default)]
pub(crate) struct Recording {
    store: MemoryStore,
    resident: AtomicBool,
    pub(crate) panic_on_get: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

impl Recording {
    fn record(&self, name: &'static str, ids: &[DocId]) {
        let thread = std::thread::current().id();
        self.calls
            .lock()
            .unwrap()
            .push((name, ids.to_vec(), thread));
    }

    /// The calls of `name` so far.
    fn calls_of(&self, name: &str) -> Vec<(Vec<DocId>, ThreadId)> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(call, ..)| *call == name)
            .map(|(_, ids, thread)| (ids.clone(), *thread))
            .collect()
    }

    fn forget(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl DocRead for Recording {
    type Error = <MemoryStore as DocRead>::Error;

    fn get(&self, id: DocId) -> Result<Option<Doc>, Self::Error> {
        self.record("get", &[id]);
        assert!(
            !self.panic_on_get.load(Ordering::Relaxed),
            "a get that panics"
        );
        self.store.get(id)
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, Self::Error> {
        self.store.meta(id)
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, Self::Error> {
        self.record("extract", &[id]);
        self.store.extract(id, range)
    }
}

impl Residency for Recording {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>, Self::Error> {
        self.record("get_if_resident", &[id]);
        match self.resident.load(Ordering::Relaxed) {
            true => self.store.get(id).map(Some),
            false => Ok(None),
        }
    }

    fn refresh_residency(&self) -> Result<(), Self::Error> {
        self.record("refresh_residency", &[]);
        Ok(())
    }

    fn note_resident(&self, id: DocId) {
        self.record("note_resident", &[id]);
    }
}

impl Prefetch for Recording {
    fn prefetch(&self, ids: &[DocId]) -> Result<(), Self::Error> {
        self.record("prefetch", ids);
        Ok(())
    }
}

impl DocWrite for Recording {
    type Ticket<T: Send + 'static> = <MemoryStore as DocWrite>::Ticket<T>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Self::Ticket<u64>, Self::Error> {
        self.store.put(id, text)
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Self::Ticket<u64>, Self::Error> {
        self.store.put_batch(batch)
    }

    fn delete(&self, id: DocId) -> Result<Self::Ticket<Option<u64>>, Self::Error> {
        self.store.delete(id)
    }

    fn offer_put(&self, id: DocId, text: Text) -> Result<OfferOf<Self, u64, Text>, Self::Error> {
        self.store.offer_put(id, text)
    }

    fn offer_batch(
        &self,
        batch: WriteBatch,
    ) -> Result<OfferOf<Self, u64, WriteBatch>, Self::Error> {
        self.store.offer_batch(batch)
    }

    fn offer_delete(&self, id: DocId) -> Result<OfferOf<Self, Option<u64>, DocId>, Self::Error> {
        self.store.offer_delete(id)
    }

    fn sync(&self) -> Result<(), Self::Error> {
        self.store.sync()
    }

    fn close(&self) -> Result<(), Self::Error> {
        self.store.close()
    }
}

/// Waits, ten seconds at most, for `done`, which a task on the blocking pool brings about.
fn eventually(done: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

async fn recording(options: AsyncOptions) -> AsyncStore<Recording> {
    let store = AsyncStore::new(Recording::default(), options);
    for n in 0..40 {
        store.put(id(n), format!("text {n}")).await.unwrap();
    }
    store
}

/// A façade that checks residency, without read-ahead, over a double whose records are all
/// resident.
async fn checking_residency() -> AsyncStore<Recording> {
    let options = AsyncOptions::new()
        .reads(Reads::CheckResidency)
        .read_ahead(0);
    let store = recording(options).await;
    store.inner().resident.store(true, Ordering::Relaxed);
    store
}

/// Under `Reads::CheckResidency` a resident record is read on the calling thread, in the
/// residency check itself; one that is not is read on the blocking pool, which notes it
/// resident after. `Reads::Inline` reads on the calling thread, `Reads::Blocking` never.
#[tokio::test(flavor = "current_thread")]
async fn each_placement_reads_where_it_says() {
    let caller = std::thread::current().id();
    let store = checking_residency().await;
    let inner = store.inner();
    inner.forget();
    assert_eq!(store.get(id(1)).await.unwrap().unwrap().text(), "text 1");
    assert_eq!(inner.calls_of("get_if_resident"), [(vec![id(1)], caller)]);
    assert!(
        inner.calls_of("get").is_empty(),
        "a resident read went to the pool"
    );
    assert_eq!(
        store.extract(id(2), TextRange::bytes(0..4)).await.unwrap(),
        "text"
    );
    assert_eq!(inner.calls_of("extract"), [(vec![id(2)], caller)]);

    inner.resident.store(false, Ordering::Relaxed);
    inner.forget();
    assert_eq!(store.get(id(3)).await.unwrap().unwrap().text(), "text 3");
    let gets = inner.calls_of("get");
    assert_eq!(gets.len(), 1);
    assert_ne!(
        gets[0].1, caller,
        "a read that may block ran on the calling thread"
    );
    assert_eq!(inner.calls_of("note_resident"), [(vec![id(3)], gets[0].1)]);

    for (reads, inline) in [(Reads::Inline, true), (Reads::Blocking, false)] {
        let placed = AsyncStore::new(
            Recording::default(),
            AsyncOptions::new().reads(reads).read_ahead(0),
        );
        placed.inner().resident.store(true, Ordering::Relaxed);
        assert_eq!(placed.get(id(1)).await.unwrap(), None);
        let gets = placed.inner().calls_of("get");
        assert_eq!(gets.len(), 1, "{reads:?}");
        assert_eq!(gets[0].1 == caller, inline, "{reads:?}");
        assert!(placed.inner().calls_of("get_if_resident").is_empty());
    }
}

/// Residency is looked at again, on the blocking pool, at the first read and at every
/// 4,096th after it.
#[tokio::test(flavor = "current_thread")]
async fn residency_is_refreshed_every_4096_reads() {
    let store = checking_residency().await;
    let inner = store.inner();
    store.get(id(1)).await.unwrap();
    eventually(
        || inner.calls_of("refresh_residency").len() == 1,
        "no refresh at the first read",
    );
    for _ in 1..4096 {
        store.get(id(1)).await.unwrap();
    }
    assert_eq!(
        inner.calls_of("refresh_residency").len(),
        1,
        "refreshed early"
    );
    store.get(id(1)).await.unwrap();
    eventually(
        || inner.calls_of("refresh_residency").len() == 2,
        "no refresh at the 4,097th read",
    );
    assert_ne!(
        inner.calls_of("refresh_residency")[1].1,
        std::thread::current().id()
    );
}

/// Gets of consecutive ids ask for the next ids ahead, on the blocking pool; a prefetch
/// asked for reaches the handle with its ids.
#[tokio::test(flavor = "current_thread")]
async fn consecutive_gets_read_the_next_ids_ahead() {
    let store = recording(AsyncOptions::new().reads(Reads::Blocking).read_ahead(8)).await;
    let inner = store.inner();
    for n in 10..13 {
        store.get(id(n)).await.unwrap();
    }
    eventually(
        || !inner.calls_of("prefetch").is_empty(),
        "no read-ahead after three consecutive gets",
    );
    let ahead: Vec<DocId> = (13..21).map(id).collect();
    assert_eq!(inner.calls_of("prefetch")[0].0, ahead);

    inner.forget();
    store.prefetch(vec![id(1), id(30)]).await.unwrap();
    assert_eq!(inner.calls_of("prefetch")[0].0, [id(1), id(30)]);
}
