//! The shareable handle.

use std::path::{Path, PathBuf};

use store_format::{DocWrite, Offer, Residency};

use store_mmap::{
    BackupReport, BatchOp, Changes, CompactionReport, CompactionScope, DiskSpace, Doc, DocId,
    DocMeta, DocRead, Position, Prefetch, RecoveryReport, Scan, SegmentMap, Store, StoreOptions,
    StoreStats, Text, TextRange, WriteBatch,
};

use crate::compactor::{CompactionStats, Compactor};
use crate::deferred::Deferred;
use crate::error::{Error, Result, spawn_failed};
use crate::options::WriterOptions;
use crate::published::{Found, Ids};
use crate::request::{BorrowedOps, Request};
use crate::scrubber::{ScrubStats, Scrubber};
use crate::stats::{QueueCounters, QueueStats};
use crate::sync::atomic::Ordering;
use crate::sync::channel::{self, Sender, TrySendError};
use crate::sync::{Arc, StdArc, thread};
use crate::ticket::{Completer, Helper, Ticket, ticket};
use crate::writer::{Limits, Queues, Shared, WriterCore, publisher_of, run};

/// The error of a lookup that found a position in a segment the handle does not map: a
/// broken invariant, reported instead of a panic.
fn missing_segment(dir: &Path, id: DocId, position: Position) -> store_mmap::Error {
    store_mmap::Error::Corrupt {
        path: dir.to_path_buf(),
        offset: u64::from(position.offset),
        what: format!(
            "document {id} is published in segment {}, which the handle does not map",
            position.segment
        ),
    }
}

/// Aborts the process if dropped: held across a wait after which memory lent to another
/// thread may be freed, so that an unwinding wait cannot free it early.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        std::process::abort();
    }
}

/// A store that any number of threads read and write through clones of one handle.
///
/// Reads run on the calling thread, take no lock and never wait for a write or a sync: they
/// see every commit published before they start, and each document either at its old or at
/// its new version, never in between. Writes are queued (a bounded queue: submitters block
/// while it is full) to one writer thread, which commits whatever is waiting as one group,
/// with one write and one `fdatasync`, then publishes it to readers and completes the
/// [`Ticket`] of every write in it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use store_concurrent::{ConcurrentStore, WriterOptions};
/// use store_mmap::{DocId, StoreOptions};
///
/// let store = ConcurrentStore::create(dir.path(), StoreOptions::default(), WriterOptions::default())?;
/// let id = DocId::from_key("notes/today.md");
/// let writer = store.clone();
/// std::thread::spawn(move || writer.put(id, "committed from another thread")?.wait())
///     .join()
///     .unwrap()?;
/// assert_eq!(store.get(id)?.unwrap().text().as_str(), "committed from another thread");
/// store.close()?;
/// # Ok(())
/// # }
/// ```
///
/// Dropping the last clone closes the store like [`ConcurrentStore::close`] does, without
/// reporting errors: every write whose ticket was completed with `Ok` is durable, and
/// every write still queued is committed first.
#[derive(Clone)]
pub struct ConcurrentStore {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    /// Stopped before the close request is sent: its thread holds a sender, and the writer
    /// thread ends only once every sender is gone.
    compactor: Compactor,
    /// Stopped with the compactor, for the same reason.
    scrubber: Scrubber,
    /// Declared before `_writer`: dropping the senders is what lets the writer thread end,
    /// and `_writer` joins it on drop. Writes go on `writes`, everything else on `control`.
    writes: Sender<Request>,
    control: Sender<Request>,
    /// The writer's core, which a submitter waiting for its write may take.
    helper: StdArc<WriterCore>,
    _writer: WriterThread,
    dir: PathBuf,
    max_document_bytes: u64,
    queue_capacity: usize,
    queue: QueueCounters,
    recovery: RecoveryReport,
    /// Opened with [`ConcurrentStore::open_read_only`]: requests that change the store fail
    /// at submission.
    read_only: bool,
}

struct WriterThread(Option<thread::JoinHandle<()>>);

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // The thread catches its own panics; a join error cannot carry anything new.
            let _ = thread.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.compactor.stop();
        self.scrubber.stop();
        if !self.shared.closed.load(Ordering::Acquire) {
            // Queued behind every write already sent, so all of them commit first.
            let (done, _ticket) = ticket();
            let _ = self.control.send(Request::Close { done });
        }
    }
}

/// Whether a submission may block on a full queue.
#[derive(Clone, Copy)]
enum Block {
    Yes,
    No,
}

impl ConcurrentStore {
    /// Creates a store in `dir` (see [`Store::create`]) and starts its writer thread.
    pub fn create(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        writer: WriterOptions,
    ) -> Result<ConcurrentStore> {
        writer.check()?;
        ConcurrentStore::launch(Store::create(dir, options)?, writer)
    }

    /// Opens a store (see [`Store::open`]) and starts its writer thread.
    pub fn open(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        writer: WriterOptions,
    ) -> Result<ConcurrentStore> {
        writer.check()?;
        ConcurrentStore::launch(Store::open(dir, options)?, writer)
    }

    /// Opens the store in `dir`, creating it when `dir` is absent or empty.
    pub fn open_or_create(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        writer: WriterOptions,
    ) -> Result<ConcurrentStore> {
        writer.check()?;
        ConcurrentStore::launch(Store::open_or_create(dir, options)?, writer)
    }

    /// Opens a store for reading only (see [`Store::open_read_only`]), beside its writer in
    /// this or another process or with none. Reads are the same lock-free reads as the
    /// writer's handle; [`ConcurrentStore::refresh`] brings in what the writer committed
    /// since. Writes, syncs, checkpoints and compactions fail with
    /// [`store_mmap::Error::ReadOnly`]; the scrub runs as on the writer's handle.
    pub fn open_read_only(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        writer: WriterOptions,
    ) -> Result<ConcurrentStore> {
        writer.check()?;
        // The writer compacts; a reader's compaction thread would only fail.
        let writer = WriterOptions {
            compaction: store_mmap::CompactionPolicy {
                dead_ratio: None,
                ..writer.compaction
            },
            ..writer
        };
        ConcurrentStore::launch(Store::open_read_only(dir, options)?, writer)
    }

    /// Brings a read-only handle up to its writer's latest commit (see
    /// [`Store::refresh`]): a commit that returned to the writer before this call is
    /// visible to every reader of this handle when it returns. On the writer's own handle
    /// there is nothing to bring in.
    pub fn refresh(&self) -> Result<store_mmap::Refreshed> {
        let (done, ticket) = ticket();
        self.send(Request::Refresh { done }, Block::Yes)?;
        ticket.wait()
    }

    /// Hands an open store to a new writer thread.
    pub fn from_store(store: Store, writer: WriterOptions) -> Result<ConcurrentStore> {
        writer.check()?;
        ConcurrentStore::launch(store, writer)
    }

    /// Publishes the state of `store` to readers and starts the writer thread on it.
    fn launch(store: Store, writer: WriterOptions) -> Result<ConcurrentStore> {
        let publisher = publisher_of(&store);
        let shared = Arc::new(Shared::new(Arc::clone(publisher.shared())));
        let dir = store.dir().to_path_buf();
        let max_document_bytes = store.max_document_bytes();
        let recovery = store.recovery().clone();
        let read_only = store.is_read_only();
        let (writes, writes_queue) = channel::bounded(writer.queue_capacity);
        let (control, control_queue) = channel::unbounded();
        let (compactor, compaction, compaction_thread) =
            Compactor::start(&writer.compaction, &control);
        let (scrubber, scrub_thread) = Scrubber::start(writer.scrub, &control);
        // Spawned by the writer thread once it runs, so that the open spawns one thread.
        let helpers: Vec<Deferred> = compaction_thread.into_iter().chain(scrub_thread).collect();
        let limits = Limits {
            max_docs: writer.max_batch_docs,
            max_bytes: writer.max_batch_bytes,
            max_delay: writer.max_delay,
            compaction,
        };
        let core = StdArc::new(WriterCore::new(
            store,
            publisher,
            Arc::clone(&shared),
            limits,
            writes_queue.clone(),
            control_queue.clone(),
        ));
        let helper = StdArc::clone(&core);
        let queues = Queues {
            writes: writes_queue,
            control: control_queue,
        };
        let thread = thread::Builder::new()
            .name("textstore-writer".to_owned())
            .spawn(move || {
                for helper in helpers {
                    helper.spawn();
                }
                run(core, &queues);
            })
            .map_err(spawn_failed("spawn the writer thread for", &dir))?;
        Ok(ConcurrentStore {
            inner: Arc::new(Handle {
                shared,
                compactor,
                scrubber,
                writes,
                control,
                helper,
                _writer: WriterThread(Some(thread)),
                dir,
                max_document_bytes,
                queue_capacity: writer.queue_capacity,
                queue: QueueCounters::default(),
                recovery,
                read_only,
            }),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What the open found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Sequence number of the latest published commit.
    pub fn last_seq(&self) -> u64 {
        self.inner.shared.published.last_seq()
    }

    /// Number of live documents as of the latest published commit.
    pub fn len(&self) -> usize {
        self.inner.shared.published.live_docs() as usize
    }

    /// Heap bytes of the readers' location table (24 bytes a slot, at most three quarters
    /// of the slots in use).
    pub fn table_memory_bytes(&self) -> usize {
        self.inner.shared.published.table_memory_bytes()
    }

    /// True when no document is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // ----- reads -------------------------------------------------------------------------

    /// The latest committed version of the document, or `None`. Zero-copy, lock-free.
    pub fn get(&self, id: DocId) -> Result<Option<Doc>> {
        self.read_record(id, |segment, offset| segment.read_doc(id, offset))
    }

    /// Calls `read(text)` with the latest text of `id`, borrowed from the mapping while the
    /// segment is held, and returns what it returns; `None` when the document does not
    /// exist. The same checks as [`ConcurrentStore::get`], without the shared handle: no
    /// reference count is touched, so reader threads share no cache line.
    pub fn read_with<R>(&self, id: DocId, read: impl FnOnce(&str) -> R) -> Result<Option<R>> {
        self.read_record(id, |segment, offset| {
            segment.with_text(id, offset, |_, text| read(text))
        })
    }

    /// The latest version, read only when its record's pages were in memory when residency
    /// was last looked at ([`ConcurrentStore::was_resident`]): one lookup for the check and
    /// the read, for callers that must not block. `Ok(None)`: not known to be resident, so
    /// read it where blocking is allowed; `Ok(Some(None))`: no such document.
    pub fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>> {
        let found = self.read_record(id, |segment, offset| {
            segment
                .was_resident(offset)
                .then(|| segment.read_doc(id, offset))
                .transpose()
        })?;
        Ok(match found {
            None => Some(None),
            Some(None) => None,
            Some(Some(doc)) => Some(Some(doc)),
        })
    }

    /// Finds the latest record of `id` and reads it with `read(segment, offset)`.
    fn read_record<R>(
        &self,
        id: DocId,
        read: impl FnOnce(&SegmentMap, u32) -> store_mmap::Result<R>,
    ) -> Result<Option<R>> {
        self.check_open()?;
        match self.inner.shared.published.read(id, read) {
            Found::Absent => Ok(None),
            Found::Read(found) => Ok(Some(found?)),
            Found::Failed(err) => Err(Error::Store(err)),
            Found::MissingSegment(position) => {
                Err(Error::Store(missing_segment(&self.inner.dir, id, position)))
            }
        }
    }

    /// Whether the document exists.
    pub fn contains(&self, id: DocId) -> Result<bool> {
        self.check_open()?;
        match self.inner.shared.published.read(id, |_, _| ()) {
            Found::Read(()) => Ok(true),
            Found::Failed(err) => Err(Error::Store(err)),
            Found::Absent | Found::MissingSegment(_) => Ok(false),
        }
    }

    /// The part of the document that `range` names, sharing the mapped memory.
    pub fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        Ok(store_mmap::extract_from(id, self.get(id)?, range)?)
    }

    /// Copies the latest version into `buf` (cleared first); returns whether it exists.
    pub fn read_into(&self, id: DocId, buf: &mut String) -> Result<bool> {
        DocRead::read_into(self, id, buf)
    }

    /// The ids of the live documents, in no particular order, read lazily: a page of the
    /// index file at a time, then the changes since it. Every document live at this call
    /// and not written or deleted during the walk appears exactly once; one written or
    /// deleted meanwhile may appear or not (twice, if it was in the index file and written
    /// again). A damaged page of the index file is an error item.
    pub fn ids(&self) -> Result<Ids> {
        self.check_open()?;
        Ok(self.inner.shared.published.ids())
    }

    /// Every live document in storage order, zero-copy and lazy, safe beside writes and
    /// compactions: see [`store_mmap::Scan`] for what it yields. Follow it with
    /// [`ConcurrentStore::changes_since`] from [`store_mmap::Scan::as_of`].
    pub fn scan(&self) -> Result<Scan<'_>> {
        self.check_open()?;
        let published = &self.inner.shared.published;
        // The last commit first: every segment holding a record up to it is in the list
        // loaded next, at a committed end that covers the record.
        let as_of = published.last_seq();
        let segments = published.stable_segments();
        let dir = &self.inner.dir;
        let latest = move |id| {
            let found = published.read(id, |segment: &SegmentMap, offset| {
                let meta = segment.read_meta(id, offset)?;
                let position = Position {
                    segment: segment.id(),
                    offset,
                };
                Ok((position, meta.seq))
            });
            match found {
                Found::Absent => Ok(None),
                Found::Read(found) => found.map(Some),
                Found::Failed(err) => Err(err),
                Found::MissingSegment(position) => Err(missing_segment(dir, id, position)),
            }
        };
        Ok(Scan::over(segments, as_of, Box::new(latest)))
    }

    /// Every change committed after `since`, in sequence order, up to the last commit now:
    /// see [`store_mmap::Changes`]. Fails with [`store_mmap::Error::ChangesCompacted`]
    /// below the change floor and [`store_mmap::Error::ChangesAhead`] past the last
    /// commit; the caller then scans again.
    pub fn changes_since(&self, since: u64) -> Result<Changes> {
        self.check_open()?;
        let published = &self.inner.shared.published;
        let last_seq = published.last_seq();
        let segments = published.stable_segments();
        // After the list: a list from after a compaction comes with that compaction's floor.
        let floor = published.change_floor();
        let changes = Changes::over(segments, since);
        // A commit's segment ends move before `last_seq` does: a position taken from a feed
        // a moment ago may be past the published `last_seq`, never past the segments.
        store_mmap::check_changes_since(since, floor, last_seq.max(changes.reached()))?;
        Ok(changes)
    }

    /// The lowest sequence number [`ConcurrentStore::changes_since`] starts from (see
    /// `Store::change_floor`).
    pub fn change_floor(&self) -> u64 {
        self.inner.shared.published.change_floor()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    // ----- writes ------------------------------------------------------------------------

    /// Queues a put, blocking while the queue is full. The ticket yields the write's
    /// sequence number once it is committed (durable under `Durability::Sync`).
    ///
    /// The text is taken as a [`Text`]: a `String` or a [`Text`] read from a store is moved
    /// to the writer thread as it is, a `&str` is copied once; from there it goes to the file
    /// without another copy.
    pub fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Ticket<u64>> {
        self.submit_put(id, text.into(), Block::Yes)
    }

    /// Like [`ConcurrentStore::put`], but fails with [`Error::QueueFull`] instead of
    /// blocking.
    pub fn try_put(&self, id: DocId, text: impl Into<Text>) -> Result<Ticket<u64>> {
        self.submit_put(id, text.into(), Block::No)
    }

    /// Queues a batch that commits atomically. The ticket yields the sequence number of its
    /// last record.
    pub fn put_batch(&self, batch: WriteBatch) -> Result<Ticket<u64>> {
        self.submit_batch(batch, Block::Yes)
    }

    /// Commits `ops` atomically, like [`ConcurrentStore::put_batch`], with texts borrowed from
    /// the caller: nothing is copied before the write to the file. Blocks until the commit is
    /// done (durable under `Durability::Sync`), which is what lets the writer thread read the
    /// caller's memory; it joins a group commit like any other batch. Returns the sequence
    /// number of the last record.
    pub fn commit_ops(&self, ops: &[BatchOp<'_>]) -> Result<u64> {
        for &op in ops {
            self.check_op(op)?;
        }
        let (done, ticket) = ticket();
        // SAFETY: `ops` outlives the request: this function returns only once the ticket
        // resolves, which happens when the request is completed or dropped, and the guard
        // aborts the process rather than return early should the wait unwind.
        #[expect(unsafe_code, reason = "lending borrowed texts to the writer thread")]
        let lent = unsafe { BorrowedOps::lend(ops) };
        let guard = AbortOnUnwind;
        let ticket = ticket.helped_by(self.helper());
        // Straight to the file when nothing is queued and no other thread is committing.
        let request = Request::Borrowed { ops: lent, done };
        let result = self
            .admit(&request)
            .and_then(|()| match self.inner.helper.commit_unqueued(request) {
                None => Ok(()),
                Some(request) => self.send(request, Block::Yes),
            })
            .and_then(|()| ticket.wait());
        std::mem::forget(guard);
        result
    }

    /// Like [`ConcurrentStore::put_batch`], but fails with [`Error::QueueFull`] instead of
    /// blocking.
    pub fn try_put_batch(&self, batch: WriteBatch) -> Result<Ticket<u64>> {
        self.submit_batch(batch, Block::No)
    }

    /// Queues a put if the queue has room; when it is full, hands the text back instead of
    /// blocking or failing, so that the caller can wait for room where blocking is allowed
    /// (an async runtime's blocking pool) and submit it there.
    pub fn offer_put(&self, id: DocId, text: Text) -> Result<Offer<Ticket<u64>, Text>> {
        self.check_op(BatchOp::Put { id, text: &text })?;
        let (done, ticket) = self.write_ticket();
        match self.offer(Request::Put { id, text, done })? {
            None => Ok(Offer::Queued(ticket)),
            Some(Request::Put { text, .. }) => Ok(Offer::Full(text)),
            Some(_) => unreachable!("the queue hands back the request it was offered"),
        }
    }

    /// [`ConcurrentStore::offer_put`] for a batch.
    pub fn offer_batch(&self, batch: WriteBatch) -> Result<Offer<Ticket<u64>, WriteBatch>> {
        self.check_batch(&batch)?;
        let (done, ticket) = self.write_ticket();
        match self.offer(Request::Batch { batch, done })? {
            None => Ok(Offer::Queued(ticket)),
            Some(Request::Batch { batch, .. }) => Ok(Offer::Full(batch)),
            Some(_) => unreachable!("the queue hands back the request it was offered"),
        }
    }

    /// Queues a delete. The ticket yields the tombstone's sequence number, or `None` when
    /// the document did not exist (then nothing is written).
    pub fn delete(&self, id: DocId) -> Result<Ticket<Option<u64>>> {
        self.submit_delete(id, Block::Yes)
    }

    /// Like [`ConcurrentStore::delete`], but fails with [`Error::QueueFull`] instead of
    /// blocking.
    pub fn try_delete(&self, id: DocId) -> Result<Ticket<Option<u64>>> {
        self.submit_delete(id, Block::No)
    }

    /// [`ConcurrentStore::offer_put`] for a delete.
    pub fn offer_delete(&self, id: DocId) -> Result<Offer<Ticket<Option<u64>>, DocId>> {
        let (done, ticket) = self.write_ticket();
        match self.offer(Request::Delete { id, done })? {
            None => Ok(Offer::Queued(ticket)),
            Some(_) => Ok(Offer::Full(id)),
        }
    }

    /// Waits until every write queued before this call is durable, syncing if the store's
    /// durability setting does not already.
    pub fn sync(&self) -> Result<()> {
        let (done, ticket) = ticket();
        self.send(Request::Sync { done }, Block::Yes)?;
        ticket.wait()
    }

    /// The store's size and shape after every write queued before this call (see
    /// [`Store::stats`]).
    pub fn stats(&self) -> Result<StoreStats> {
        let (done, ticket) = ticket();
        self.send(Request::Stats { done }, Block::Yes)?;
        ticket.wait()
    }

    /// The room left on the store's file system (see [`store_mmap::DiskSpace`]); read on
    /// the calling thread.
    pub fn disk_space(&self) -> Result<DiskSpace> {
        Ok(DiskSpace::of(self.dir())?)
    }

    /// Writes the index checkpoint after every write queued before this call, bounding the
    /// replay after a crash (see [`Store::checkpoint`]).
    pub fn checkpoint(&self) -> Result<()> {
        let (done, ticket) = ticket();
        self.send(Request::Checkpoint { done }, Block::Yes)?;
        ticket.wait()
    }

    /// Compacts every segment that holds dead bytes (see [`Store::compact`]), then writes
    /// the index checkpoint. Reads and writes go on meanwhile: only planning and installing
    /// run on the writer thread, and neither reads a record. Waits for an automatic
    /// compaction that is running to finish first. The replaced segments' files are gone
    /// when it returns, but for those a reader still holds (a `Doc`, a read under way): the
    /// writer removes each of them after the reader lets go, at its next commit or within a
    /// second of idleness. Where the file system lacks room for all the copies at once, it
    /// goes in rounds, as [`Store::compact`] does.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.check_open()?;
        let mut report = CompactionReport::default();
        // In rounds, as `Store::compact`, where the file system lacks room for all the
        // copies at once: each round's checkpoint removes the segments it replaced (those
        // no reader holds), which makes room for the next.
        loop {
            let round = match self
                .inner
                .compactor
                .compact(&self.inner.control, CompactionScope::Everything)
            {
                Ok(Some(round)) => round,
                Ok(None) => break,
                Err(Error::Store(store_mmap::Error::NoRoomToCompact { .. }))
                    if report.segments_in > 0 =>
                {
                    break;
                }
                Err(err) => return Err(err),
            };
            let progressed = report.add_round(&round);
            self.checkpoint()?;
            if round.segments_left == 0 || !progressed {
                return Ok(report);
            }
        }
        self.checkpoint()?;
        Ok(report)
    }

    /// Writes a consistent copy of the store, as of the moment the writer thread reaches
    /// this request, into `dir` (absent or empty); it opens as a store. Writes go on
    /// meanwhile: the writer thread only notes the segments and encodes the index, and the
    /// linking and copying run on the calling thread (see [`Store::plan_backup`]).
    pub fn backup(&self, dir: impl AsRef<Path>) -> Result<BackupReport> {
        let (done, ticket) = ticket();
        self.send(Request::PlanBackup { done }, Block::Yes)?;
        Ok(ticket.wait()?.write_to(dir)?)
    }

    /// What compactions did since the store was opened.
    pub fn compaction_stats(&self) -> CompactionStats {
        self.inner.compactor.stats()
    }

    /// What the scrub did since the store was opened.
    pub fn scrub_stats(&self) -> ScrubStats {
        self.inner.scrubber.stats()
    }

    /// Commits every write queued before this call, syncs, writes the index checkpoint and
    /// releases the store's lock. Returns the first error of the store's life (a failed
    /// commit), if any. Afterwards every call on every clone fails with [`Error::Closed`],
    /// but the writes, syncs and checkpoints of a poisoned handle, which name the poison.
    pub fn close(&self) -> Result<()> {
        self.inner.compactor.stop();
        self.inner.scrubber.stop();
        let (done, ticket) = ticket();
        self.send(Request::Close { done }, Block::Yes)?;
        ticket.wait()
    }

    /// A ticket for a write: its waiter may commit the queued writes itself.
    fn write_ticket<T>(&self) -> (Completer<T>, Ticket<T>) {
        let (done, ticket) = ticket();
        (done, ticket.helped_by(self.helper()))
    }

    /// What a write's ticket may call on to commit the queue while it waits.
    fn helper(&self) -> StdArc<dyn Helper> {
        StdArc::clone(&self.inner.helper) as StdArc<dyn Helper>
    }

    fn submit_put(&self, id: DocId, text: Text, block: Block) -> Result<Ticket<u64>> {
        self.check_op(BatchOp::Put { id, text: &text })?;
        let (done, ticket) = self.write_ticket();
        self.send(Request::Put { id, text, done }, block)?;
        Ok(ticket)
    }

    fn submit_batch(&self, batch: WriteBatch, block: Block) -> Result<Ticket<u64>> {
        self.check_batch(&batch)?;
        let (done, ticket) = self.write_ticket();
        self.send(Request::Batch { batch, done }, block)?;
        Ok(ticket)
    }

    fn submit_delete(&self, id: DocId, block: Block) -> Result<Ticket<Option<u64>>> {
        let (done, ticket) = self.write_ticket();
        self.send(Request::Delete { id, done }, block)?;
        Ok(ticket)
    }

    fn check_batch(&self, batch: &WriteBatch) -> Result<()> {
        for op in batch.iter() {
            self.check_op(op)?;
        }
        Ok(())
    }

    /// Rejects what the engine would reject, before it takes a place in the queue.
    fn check_op(&self, op: BatchOp<'_>) -> Result<()> {
        Ok(store_mmap::admit(op, self.inner.max_document_bytes)?)
    }

    /// Queues `request`. Writes, syncs and checkpoints fail at once after a failed commit;
    /// a close still goes through, to release the store.
    fn send(&self, request: Request, block: Block) -> Result<()> {
        let Some(request) = self.offer(request)? else {
            return Ok(());
        };
        let queue = &self.inner.queue;
        match block {
            Block::Yes => {
                queue.waited_full();
                self.queue_of(&request)
                    .send(request)
                    .map_err(|_| Error::Closed)?;
                queue.submitted();
                Ok(())
            }
            Block::No => {
                // Dropped with the error, which completes its unread ticket.
                drop(request);
                queue.rejected_full();
                Err(Error::QueueFull {
                    capacity: self.inner.queue_capacity,
                })
            }
        }
    }

    /// Queues `request` if the queue has room, and hands it back if it is full.
    fn offer(&self, request: Request) -> Result<Option<Request>> {
        self.admit(&request)?;
        match self.queue_of(&request).try_send(request) {
            Ok(()) => {
                self.inner.queue.submitted();
                Ok(None)
            }
            Err(TrySendError::Full(request)) => Ok(Some(request)),
            Err(TrySendError::Disconnected(_)) => Err(Error::Closed),
        }
    }

    /// Whether the handle takes `request` now: writes, syncs and checkpoints fail at once
    /// after a failed commit, and a close still goes through, to release the store. The
    /// failure is named even once the handle is closed: a panic on the writer thread closes
    /// it, and "closed" would hide the cause from a caller that closed nothing.
    fn admit(&self, request: &Request) -> Result<()> {
        if !matches!(request, Request::Close { .. })
            && let Some(poisoned) = self.inner.shared.poisoned()
        {
            return Err(poisoned);
        }
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.inner.read_only && request.changes_the_store() {
            return Err(Error::Store(store_mmap::Error::ReadOnly {
                path: self.inner.dir.clone(),
                what: "a change",
            }));
        }
        Ok(())
    }

    /// The queue a request goes on: writes on the write queue, the rest on the control
    /// queue, which the writer thread serves after every write queued before.
    fn queue_of(&self, request: &Request) -> &Sender<Request> {
        if request.is_write() {
            &self.inner.writes
        } else {
            &self.inner.control
        }
    }

    // ----- residency ---------------------------------------------------------------------

    /// Whether reading the document now would take no page fault that waits on the disk: its
    /// record's pages are all in memory, or it does not exist. A hint (`mincore`) for callers
    /// that must not block, such as an async runtime's worker; see
    /// [`store_mmap::SegmentMap::is_resident`].
    pub fn is_resident(&self, id: DocId) -> Result<bool> {
        self.check_open()?;
        match self
            .inner
            .shared
            .published
            .read(id, |segment, offset| segment.is_resident(offset))
        {
            Found::Read(resident) => Ok(resident?),
            Found::Failed(err) => Err(Error::Store(err)),
            Found::Absent | Found::MissingSegment(_) => Ok(true),
        }
    }

    /// Whether the record of `id` was in memory when residency was last looked at
    /// ([`ConcurrentStore::refresh_residency`], or a read noted with
    /// [`ConcurrentStore::note_resident`]): the check of [`ConcurrentStore::is_resident`]
    /// without its system call, and staler. See [`store_mmap::SegmentMap::was_resident`].
    pub fn was_resident(&self, id: DocId) -> Result<bool> {
        self.check_open()?;
        match self
            .inner
            .shared
            .published
            .read(id, |segment, offset| segment.was_resident(offset))
        {
            Found::Read(resident) => Ok(resident),
            Found::Failed(err) => Err(Error::Store(err)),
            Found::Absent | Found::MissingSegment(_) => Ok(true),
        }
    }

    /// Looks at which pages of every segment are in memory (a `mincore` call per segment)
    /// for [`ConcurrentStore::was_resident`]. Call it where blocking is allowed.
    pub fn refresh_residency(&self) -> Result<()> {
        self.check_open()?;
        let mut result = Ok(());
        self.inner.shared.published.for_each_segment(|segment| {
            if result.is_ok() {
                result = segment.refresh_residency();
            }
        });
        Ok(result?)
    }

    /// Remembers that the record of `id` is in memory: a read of it has just touched it.
    pub fn note_resident(&self, id: DocId) {
        let _ = self
            .inner
            .shared
            .published
            .read(id, |segment, offset| segment.note_resident(offset));
    }

    /// Asks the kernel to read the records of `ids` into memory (`madvise(WILLNEED)`) and
    /// returns without waiting for them. Reading each record's header to learn its length may
    /// wait on the disk: call this where blocking is allowed. Absent ids are skipped.
    pub fn will_need(&self, ids: &[DocId]) -> Result<()> {
        self.check_open()?;
        for &id in ids {
            if let Found::Read(advised) = self
                .inner
                .shared
                .published
                .read(id, |segment, offset| segment.will_need_record(offset))
            {
                advised?;
            }
        }
        Ok(())
    }

    /// The request queue: how deep it is now and how often submitters found it full.
    pub fn queue_stats(&self) -> QueueStats {
        self.inner
            .queue
            .snapshot(self.inner.writes.len(), self.inner.queue_capacity)
    }
}

impl Prefetch for ConcurrentStore {
    fn prefetch(&self, ids: &[DocId]) -> Result<()> {
        self.will_need(ids)
    }
}

/// Residency as the segments' pages were last seen (`mincore` on refresh, and every read
/// allowed to block notes what it touched): a read the answer says is resident takes no page
/// fault that waits on the disk, unless the kernel evicted the pages since, which a refresh
/// every few thousand reads bounds.
impl Residency for ConcurrentStore {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>> {
        ConcurrentStore::get_if_resident(self, id)
    }

    /// One lookup: the document read if resident, then the range cut from it.
    fn extract_if_resident(&self, id: DocId, range: TextRange) -> Result<Option<Text>> {
        match ConcurrentStore::get_if_resident(self, id)? {
            Some(doc) => Ok(Some(store_mmap::extract_from(id, doc, range)?)),
            None => Ok(None),
        }
    }

    fn refresh_residency(&self) -> Result<()> {
        ConcurrentStore::refresh_residency(self)
    }

    fn note_resident(&self, id: DocId) {
        ConcurrentStore::note_resident(self, id);
    }
}

impl DocWrite for ConcurrentStore {
    type Ticket<T: Send + 'static> = Ticket<T>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Ticket<u64>> {
        ConcurrentStore::put(self, id, text)
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Ticket<u64>> {
        ConcurrentStore::put_batch(self, batch)
    }

    fn delete(&self, id: DocId) -> Result<Ticket<Option<u64>>> {
        ConcurrentStore::delete(self, id)
    }

    fn offer_put(&self, id: DocId, text: Text) -> Result<Offer<Ticket<u64>, Text>> {
        ConcurrentStore::offer_put(self, id, text)
    }

    fn offer_batch(&self, batch: WriteBatch) -> Result<Offer<Ticket<u64>, WriteBatch>> {
        ConcurrentStore::offer_batch(self, batch)
    }

    fn offer_delete(&self, id: DocId) -> Result<Offer<Ticket<Option<u64>>, DocId>> {
        ConcurrentStore::offer_delete(self, id)
    }

    fn sync(&self) -> Result<()> {
        ConcurrentStore::sync(self)
    }

    fn close(&self) -> Result<()> {
        ConcurrentStore::close(self)
    }
}

impl DocRead for ConcurrentStore {
    type Error = Error;

    fn get(&self, id: DocId) -> Result<Option<Doc>> {
        ConcurrentStore::get(self, id)
    }

    /// Reads the record's header, not its text: see [`store_mmap::SegmentMap::read_meta`].
    fn meta(&self, id: DocId) -> Result<Option<DocMeta>> {
        self.read_record(id, |segment, offset| segment.read_meta(id, offset))
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        ConcurrentStore::extract(self, id, range)
    }

    /// Counts the segments compactions retired.
    fn placement_epoch(&self) -> u64 {
        self.inner.shared.published.retired()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::sync::Arc;

    use store_mmap::fault::{Fault, FaultOp, FaultStorage};
    use store_mmap::{DocId, Store, StoreOptions};

    use super::ConcurrentStore;
    use crate::error::Error;
    use crate::options::WriterOptions;

    #[test]
    fn a_failed_commit_fails_its_whole_group_and_poisons_the_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let storage = Arc::new(FaultStorage::new());
        let options = StoreOptions::new().storage(storage.clone());
        // A delay long enough that the three puts below form one group.
        let writer = WriterOptions::default().max_delay(Duration::from_millis(300));
        let store = ConcurrentStore::create(&path, options, writer).unwrap();
        let id = DocId::from;

        store.put(id(1), "before").unwrap().wait().unwrap();
        // The next sync of a file is the group's `fdatasync`: it fails.
        storage.inject(Fault::Fail(FaultOp::Sync), 0);
        let group: Vec<_> = (2..5u64)
            .map(|n| store.put(id(n), "lost").unwrap())
            .collect();
        for ticket in group {
            let err = ticket.wait().unwrap_err();
            assert!(
                matches!(&err, Error::Store(store_mmap::Error::Io { .. })),
                "every submitter of the group gets the I/O error: {err}"
            );
        }
        // Later writes fail at once; nothing was published; committed data stays readable.
        let err = store.put(id(5), "after").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Store(store_mmap::Error::Poisoned { cause })
                    if matches!(&**cause, store_mmap::Error::Io { source, .. } if source.to_string().contains("injected"))
            ),
            "the poisoned error keeps the first failure as its source: {err:?}"
        );
        assert_eq!(
            store_format::StoreError::kind(&err),
            store_format::ErrorKind::Poisoned
        );
        assert!(matches!(
            store.sync(),
            Err(Error::Store(store_mmap::Error::Poisoned { .. }))
        ));
        assert_eq!(store.get(id(2)).unwrap(), None);
        assert_eq!(store.get(id(1)).unwrap().unwrap().text().as_str(), "before");
        let err = store.close().unwrap_err();
        assert!(
            matches!(&err, Error::Store(store_mmap::Error::Poisoned { .. })),
            "close reports the failure: {err}"
        );

        let reopened = Store::open(&path, StoreOptions::new()).unwrap();
        assert_eq!(reopened.len(), 1);
        assert_eq!(
            reopened.get(id(1)).unwrap().unwrap().text().as_str(),
            "before"
        );
    }
}
