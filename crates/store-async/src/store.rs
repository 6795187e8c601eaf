//! `AsyncStore`: a shared store handle, awaited instead of blocked on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store_format::{
    Doc, DocId, DocWrite, Offer, Prefetch, Residency, Text, TextRange, WriteBatch, WriteTicket,
};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::options::{AsyncOptions, Reads};
use crate::read_ahead::Sequence;

/// A shared store handle for tokio programs: any layer that reads, writes through tickets,
/// knows what is resident and prefetches (the concurrent handle, or a stack over it). Cheap
/// to clone; every clone is the same store.
///
/// What runs where:
/// - Reads (`get`, `extract`) run inline on the calling task when the record's pages are in
///   memory, and on the blocking pool when they are not, so that a page fault that waits on
///   the disk never stalls a runtime worker ([`Reads`] changes this).
/// - Writes are handed to the store's writer thread without blocking: a full queue makes the
///   call wait for room on the blocking pool. The call then awaits the write's
///   acknowledgement, which the writer thread sends after the group commit and its
///   `fdatasync`; no runtime thread ever writes or syncs.
/// - `sync`, `close`, `prefetch` and read-ahead run on the blocking pool.
///
/// Cancellation: dropping a call's future before its write was handed to the store writes
/// nothing; dropping it afterwards lets the write commit (or fail) unseen. A write is never
/// submitted twice, so no cancellation duplicates one, and a call that returned `Ok` was
/// durable (under the store's `Durability::Sync`) before it returned.
pub struct AsyncStore<S> {
    inner: Arc<Inner<S>>,
    /// This handle's time limit for each call; clones made by [`AsyncStore::with_timeout`]
    /// share everything else.
    timeout: Option<Duration>,
}

impl<S> Clone for AsyncStore<S> {
    fn clone(&self) -> AsyncStore<S> {
        AsyncStore {
            inner: Arc::clone(&self.inner),
            timeout: self.timeout,
        }
    }
}

struct Inner<S> {
    store: S,
    permits: Semaphore,
    options: AsyncOptions,
    sequence: Sequence,
    /// The read-ahead task in flight, if any: one at a time, so gets never pile tasks up.
    read_ahead: Mutex<Option<JoinHandle<()>>>,
    /// Whether that task still runs: what a get asks, without the lock.
    read_ahead_busy: Arc<AtomicBool>,
    /// Reads that asked the remembered residency, to refresh it every
    /// [`RESIDENCY_REFRESH_READS`] of them.
    residency_reads: AtomicU64,
    /// The residency refresh in flight, if any.
    residency_refresh: Mutex<Option<JoinHandle<()>>>,
}

/// Reads between two refreshes of the remembered residency (a `mincore` call per segment,
/// on the blocking pool): often enough that evictions are seen soon under load, rare enough
/// that its cost per read stays a fraction of a get.
const RESIDENCY_REFRESH_READS: u64 = 4096;

impl<S> AsyncStore<S>
where
    S: DocWrite + Residency + Prefetch + Send + Sync + 'static,
{
    /// Wraps an open shared handle.
    pub fn new(store: S, options: AsyncOptions) -> AsyncStore<S> {
        AsyncStore {
            timeout: options.timeout,
            inner: Arc::new(Inner {
                store,
                permits: Semaphore::new(options.max_in_flight),
                options,
                sequence: Sequence::default(),
                read_ahead: Mutex::new(None),
                read_ahead_busy: Arc::new(AtomicBool::new(false)),
                residency_reads: AtomicU64::new(0),
                residency_refresh: Mutex::new(None),
            }),
        }
    }

    /// The same store, with `timeout` for each call made through the returned handle (it
    /// shares the concurrency limit with every other handle of the store).
    pub fn with_timeout(&self, timeout: Duration) -> AsyncStore<S> {
        AsyncStore {
            inner: Arc::clone(&self.inner),
            timeout: Some(timeout),
        }
    }

    /// The wrapped handle, for calls that are not async (its reads never block on a writer,
    /// but may wait on the disk).
    pub fn inner(&self) -> &S {
        &self.inner.store
    }

    /// Runs `work` on the wrapped handle on the blocking pool, where it may wait on the disk
    /// or on the writer: for the calls this façade does not wrap (compaction, backup,
    /// stats). The per-call time limit does not apply.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce(&S) -> std::result::Result<T, S::Error> + Send + 'static,
    ) -> Result<T, S::Error> {
        let inner = Arc::clone(&self.inner);
        blocking(op, move || work(&inner.store)).await
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.options.max_in_flight - self.inner.permits.available_permits()
    }

    // ----- reads -------------------------------------------------------------------------

    /// The latest committed version of the document, or `None`.
    pub async fn get(&self, id: DocId) -> Result<Option<Doc>, S::Error> {
        self.read_ahead(id);
        if let Some(found) = self.read_inline(id)? {
            return Ok(found);
        }
        self.call("get", false, async {
            self.read(id, "get", move |store| store.get(id)).await
        })
        .await
    }

    /// The part of the document that `range` names.
    pub async fn extract(&self, id: DocId, range: TextRange) -> Result<Text, S::Error> {
        let inline = match self.inner.options.reads {
            Reads::Inline => Some(self.inner.store.extract(id, range)?),
            Reads::Blocking => None,
            Reads::CheckResidency => {
                self.refresh_residency_now_and_then();
                self.inner.store.extract_if_resident(id, range)?
            }
        };
        if let Some(text) = inline {
            return Ok(text);
        }
        self.call("extract", false, async {
            self.read(id, "extract", move |store| store.extract(id, range))
                .await
        })
        .await
    }

    /// Asks the kernel to read the records of `ids` into memory, on the blocking pool, and
    /// returns once it has been asked (not once the pages are in).
    pub async fn prefetch(&self, ids: Vec<DocId>) -> Result<(), S::Error> {
        let inner = Arc::clone(&self.inner);
        self.call("prefetch", false, async move {
            blocking("prefetch", move || inner.store.prefetch(&ids)).await
        })
        .await
    }

    /// The get made inline, when the placement allows it for `id` now: with
    /// [`Reads::CheckResidency`], when its record was resident at the last look (one lookup
    /// for the check and the read). `None`: read it with [`AsyncStore::read`]. An inline
    /// read takes no permit of the concurrency limit, as it ends before the call could
    /// yield; [`AsyncStore::extract`] does the same with `extract_if_resident`.
    fn read_inline(&self, id: DocId) -> Result<Option<Option<Doc>>, S::Error> {
        let store = &self.inner.store;
        Ok(match self.inner.options.reads {
            Reads::Inline => Some(store.get(id)?),
            Reads::Blocking => None,
            Reads::CheckResidency => {
                self.refresh_residency_now_and_then();
                store.get_if_resident(id)?
            }
        })
    }

    /// Reads `id` on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        id: DocId,
        op: &'static str,
        read: impl FnOnce(&S) -> std::result::Result<T, S::Error> + Send + 'static,
    ) -> Result<T, S::Error> {
        let inner = Arc::clone(&self.inner);
        blocking(op, move || {
            let result = read(&inner.store);
            // The read brought the record's pages in: the next read of it stays inline.
            inner.store.note_resident(id);
            result
        })
        .await
    }

    /// Every [`RESIDENCY_REFRESH_READS`] reads, refreshes the remembered residency on the
    /// blocking pool, unless a refresh is still running.
    fn refresh_residency_now_and_then(&self) {
        // Relaxed: a count, related to no other memory.
        let reads = self.inner.residency_reads.fetch_add(1, Ordering::Relaxed);
        if !reads.is_multiple_of(RESIDENCY_REFRESH_READS) {
            return;
        }
        let mut running = lock(&self.inner.residency_refresh);
        if running.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        // A hint: a failed refresh (a closed store) leaves the old bits, and reads still
        // succeed or fail on their own.
        *running = Some(tokio::task::spawn_blocking(move || {
            let _ = inner.store.refresh_residency();
        }));
    }

    /// Starts a read-ahead if the gets walk consecutive ids and none is running.
    fn read_ahead(&self, id: DocId) {
        if self.inner.options.read_ahead == 0 {
            return;
        }
        // Acquire: pairs with the task's release at its end.
        let idle = !self.inner.read_ahead_busy.load(Ordering::Acquire);
        let Some(ids) = self
            .inner
            .sequence
            .next(id, self.inner.options.read_ahead, idle)
        else {
            return;
        };
        let mut running = lock(&self.inner.read_ahead);
        let inner = Arc::clone(&self.inner);
        let busy = Arc::clone(&self.inner.read_ahead_busy);
        busy.store(true, Ordering::Release);
        // Read-ahead is a hint: an error here (a closed store) shows on the reads themselves.
        *running = Some(tokio::task::spawn_blocking(move || {
            let _ = inner.store.prefetch(&ids);
            busy.store(false, Ordering::Release);
        }));
    }

    // ----- writes ------------------------------------------------------------------------

    /// Puts a document; returns its sequence number once the write is committed.
    pub async fn put(&self, id: DocId, text: impl Into<Text>) -> Result<u64, S::Error> {
        let text = text.into();
        let inner = Arc::clone(&self.inner);
        self.write("put", move || match inner.store.offer_put(id, text)? {
            Offer::Queued(ticket) => Ok(Submitted::Queued(ticket)),
            Offer::Full(text) => Ok(Submitted::Wait(Box::new(move || inner.store.put(id, text)))),
        })
        .await
    }

    /// Puts a batch that commits atomically; returns the sequence number of its last record.
    pub async fn put_batch(&self, batch: WriteBatch) -> Result<u64, S::Error> {
        let inner = Arc::clone(&self.inner);
        self.write("put_batch", move || {
            match inner.store.offer_batch(batch)? {
                Offer::Queued(ticket) => Ok(Submitted::Queued(ticket)),
                Offer::Full(batch) => Ok(Submitted::Wait(Box::new(move || {
                    inner.store.put_batch(batch)
                }))),
            }
        })
        .await
    }

    /// Deletes a document; returns the tombstone's sequence number, or `None` if the document
    /// did not exist.
    pub async fn delete(&self, id: DocId) -> Result<Option<u64>, S::Error> {
        let inner = Arc::clone(&self.inner);
        self.write("delete", move || match inner.store.offer_delete(id)? {
            Offer::Queued(ticket) => Ok(Submitted::Queued(ticket)),
            Offer::Full(id) => Ok(Submitted::Wait(Box::new(move || inner.store.delete(id)))),
        })
        .await
    }

    /// Waits until every write submitted before this call is durable.
    pub async fn sync(&self) -> Result<(), S::Error> {
        let inner = Arc::clone(&self.inner);
        self.call("sync", true, blocking("sync", move || inner.store.sync()))
            .await
    }

    /// Commits every queued write, makes it durable, waits for the read-ahead task and
    /// closes the handle. Every clone is closed by it.
    pub async fn close(&self) -> Result<(), S::Error> {
        let task = lock(&self.inner.read_ahead).take();
        if let Some(task) = task {
            // A read-ahead that panicked left nothing to clean up.
            let _ = task.await;
        }
        self.inner.permits.close();
        let inner = Arc::clone(&self.inner);
        blocking("close", move || inner.store.close()).await
    }

    /// Submits a write with `submit` (inline, without blocking), waiting for queue room on
    /// the blocking pool if needed, then awaits its acknowledgement.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        submit: impl FnOnce() -> std::result::Result<Submitted<S::Ticket<T>>, S::Error>,
    ) -> Result<T, S::Error> {
        let deadline = self.timeout.map(|t| (Instant::now() + t, t));
        let _permit = self.permit(op, deadline).await?;
        // From here on the write may be handed to the store: a timeout may leave it to commit.
        let submitted = async {
            let ticket = match submit()? {
                Submitted::Queued(ticket) => ticket,
                Submitted::Wait(submit) => blocking(op, submit).await?,
            };
            Ok(ticket.await?)
        };
        within(op, deadline, true, submitted).await
    }

    /// Runs `call` under a permit and the time limit.
    async fn call<T>(
        &self,
        op: &'static str,
        may_commit: bool,
        call: impl Future<Output = Result<T, S::Error>>,
    ) -> Result<T, S::Error> {
        let deadline = self.timeout.map(|t| (Instant::now() + t, t));
        let _permit = self.permit(op, deadline).await?;
        within(op, deadline, may_commit, call).await
    }

    async fn permit(
        &self,
        op: &'static str,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<SemaphorePermit<'_>, S::Error> {
        let acquire = async {
            self.inner
                .permits
                .acquire()
                .await
                .map_err(|_| Error::Closed { op })
        };
        within(op, deadline, false, acquire).await
    }
}

/// A write handed to the store, or one to hand over where blocking is allowed.
enum Submitted<K: WriteTicket> {
    Queued(K),
    Wait(Box<dyn FnOnce() -> std::result::Result<K, K::Error> + Send>),
}

/// Runs `work` on the blocking pool. A panic there carries on in the caller.
async fn blocking<T: Send + 'static, E: Send + 'static>(
    op: &'static str,
    work: impl FnOnce() -> std::result::Result<T, E> + Send + 'static,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Error::Store),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(Error::Cancelled { op }),
    }
}

/// Awaits `future` until `deadline`.
async fn within<T, E>(
    op: &'static str,
    deadline: Option<(Instant, Duration)>,
    may_commit: bool,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let Some((at, after)) = deadline else {
        return future.await;
    };
    match tokio::time::timeout_at(at, future).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            op,
            after,
            may_commit,
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The critical sections hold a task handle and cannot panic midway.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
