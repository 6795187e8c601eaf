//! The writer thread: drains the request queue into group commits and publishes them.

use std::collections::HashMap;
use std::time::Instant;

use store_mmap::{
    BatchOp, Compacted, CompactionPolicy, CompactionReport, DocId, Position, Refreshed, Removal,
    SegmentMap, Store,
};

use crate::error::Error;
use crate::published::{Checkpointed, Published, Publisher};
use crate::request::Request;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use crate::sync::{Arc, Mutex, StdArc, lock};
use crate::ticket::{Completer, Helper};

/// State the handle and the writer thread share.
pub(crate) struct Shared {
    pub(crate) published: Arc<Published<SegmentMap>>,
    /// Set once the writer has taken the close request: reads and writes fail from then on.
    pub(crate) closed: AtomicBool,
    /// Set when a commit failed; `poison` holds the error.
    poisoned: AtomicBool,
    poison: Mutex<Option<store_mmap::Error>>,
}

impl Shared {
    pub(crate) fn new(published: Arc<Published<SegmentMap>>) -> Shared {
        Shared {
            published,
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            poison: Mutex::new(None),
        }
    }

    /// The error every write gets once a commit has failed.
    pub(crate) fn poisoned(&self) -> Option<Error> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        let poison = lock(&self.poison);
        let cause = poison
            .as_ref()
            .expect("the cause is set before the flag that says there is one");
        Some(Error::Store(store_mmap::Error::poisoned(cause)))
    }

    fn poison(&self, error: &store_mmap::Error) {
        let mut poison = lock(&self.poison);
        if poison.is_none() {
            *poison = Some(error.clone());
        }
        self.poisoned.store(true, Ordering::Release);
    }
}

/// Group limits, resolved against the store's segment size.
pub(crate) struct Limits {
    pub(crate) max_docs: usize,
    pub(crate) max_bytes: u64,
    pub(crate) max_delay: std::time::Duration,
    pub(crate) compaction: Option<AutoCompaction>,
}

/// The automatic compaction policy, and how to wake the thread that runs it.
pub(crate) type AutoCompaction = (CompactionPolicy, Sender<()>);

/// How long the queue stays empty before the writer has the engine cover every change (an
/// index checkpoint, or a synced journal frame where a journal goes on top of an index
/// file): a store that stops taking writes has everything covered soon after, so that an
/// open after a crash replays nothing.
const IDLE_CHECKPOINT_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The two queues of a handle: writes, which any thread holding the writer's core may
/// commit, and the rest, which only the writer thread serves (after every write queued
/// before them).
pub(crate) struct Queues {
    pub(crate) writes: Receiver<Request>,
    pub(crate) control: Receiver<Request>,
}

/// What the writer thread and the submitters waiting on their writes share: the engine and
/// the publisher behind one lock. Whoever holds it is the writer: the writer thread, or a
/// submitter that found it free while waiting for its write (`Ticket::wait`), which then
/// commits every queued write, its own included, instead of waking the writer thread and
/// sleeping until it is done.
pub(crate) struct WriterCore {
    /// `None` once the writer thread has taken the close request.
    core: Mutex<Option<Core>>,
    shared: Arc<Shared>,
    limits: Limits,
    writes: Receiver<Request>,
    /// The writer thread's queue, looked at only to see whether a request waits on it.
    control: Receiver<Request>,
    /// The writer thread is removing files without the core (`remove_replaced`), so a
    /// request waiting on its queue is not waiting for the core.
    removing: AtomicBool,
}

/// The writer's state, under [`WriterCore`]'s lock.
struct Core {
    engine: Store,
    publisher: Publisher<SegmentMap>,
    /// Whether each id touched by the group being gathered exists once the group commits,
    /// kept only once the group holds a delete (`overlay_live`): only a delete asks, and a
    /// group of puts alone (a bulk ingest's 20,000 puts, for one) then pays no map.
    overlay: HashMap<DocId, bool>,
    overlay_live: bool,
    /// The engine's index generation (a checkpoint installed, or the index rebuilt) when
    /// readers were last shown its index.
    index_generation_seen: u64,
    /// A write taken off the queue that did not fit the last group: the next group's first.
    carried: Option<Request>,
    /// Writes taken off the queue so far, by every holder: what a [`Drain::Queued`]
    /// counts up to.
    taken: u64,
    /// Where each operation of the last commit went, in order (`None`: deleted), as the
    /// engine reported it: what the readers' table is told, without a lookup.
    placed: Vec<(DocId, Option<Position>)>,
}

impl Helper for WriterCore {
    fn help(&self, done: &dyn Fn() -> bool) {
        if self.control_waits() {
            return;
        }
        let Ok(mut core) = self.core.try_lock() else {
            return;
        };
        let Some(core) = core.as_mut() else {
            return;
        };
        let shared = &self.shared;
        on_submitter(shared, core, |core| {
            core.drain_writes(&self.writes, shared, &self.limits, Drain::Own(done));
        });
    }
}

/// Runs a commit on a submitting thread. A panic there leaves the store's state unknown, as
/// one on the writer thread would: the engine and the handle refuse further writes, and the
/// tickets of the requests it dropped fail with `Closed` as their completers drop.
fn on_submitter(shared: &Shared, core: &mut Core, commit: impl FnOnce(&mut Core)) {
    let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(core)));
    if let Err(panic) = committed {
        let error = panicked(&*panic, "a thread committing its write");
        core.engine.poison(error.clone());
        shared.poison(&error);
    }
}

/// The readers' view of `store` as it stands: what a writer publishes from.
pub(crate) fn publisher_of(store: &Store) -> Publisher<SegmentMap> {
    let segments = store.segment_maps().map(|map| (map.id(), map));
    let checkpoint = store
        .checkpointed_index()
        .map(|index| StdArc::new(index) as StdArc<dyn Checkpointed>);
    Publisher::new(
        segments,
        checkpoint,
        store.index_changes(),
        store.last_seq(),
        store.len() as u64,
        store.change_floor(),
    )
}

impl WriterCore {
    pub(crate) fn new(
        engine: Store,
        publisher: Publisher<SegmentMap>,
        shared: Arc<Shared>,
        limits: Limits,
        writes: Receiver<Request>,
        control: Receiver<Request>,
    ) -> WriterCore {
        let index_generation_seen = engine.index_generation();
        WriterCore {
            core: Mutex::new(Some(Core {
                engine,
                publisher,
                overlay: HashMap::new(),
                overlay_live: false,
                index_generation_seen,
                carried: None,
                taken: 0,
                placed: Vec::new(),
            })),
            shared,
            limits,
            writes,
            control,
            removing: AtomicBool::new(false),
        }
    }

    /// Whether a request waits for the writer thread (a sync, a close, a compaction's
    /// install): submitters then leave the core alone. The lock is not fair, and submitters
    /// that keep taking it as it comes free kept the writer thread waiting on it for
    /// hundreds of milliseconds; it takes the core before it takes the request off its
    /// queue, so the request is seen here until the thread holds the core. While the
    /// thread removes files it does not want the core, and commits go on.
    fn control_waits(&self) -> bool {
        !self.control.is_empty() && !self.removing.load(Ordering::Acquire)
    }

    /// Commits `request`, a write whose submitter blocks until it is done, on the calling
    /// thread, when the core is free and no write waits before it; returns it otherwise, for
    /// the queue. The commit is the group a thread helping with the queue would form (the
    /// request, then whatever is queued meanwhile), without the queue's hand-off: no send
    /// that wakes the writer thread, which would then wait on the core this thread holds.
    pub(crate) fn commit_unqueued(&self, request: Request) -> Option<Request> {
        if self.control_waits() {
            return Some(request);
        }
        let Ok(mut core) = self.core.try_lock() else {
            return Some(request);
        };
        let Some(core) = core.as_mut() else {
            return Some(request);
        };
        // A write taken off the queue earlier, or waiting on it, commits first.
        if core.carried.is_some() || !self.writes.is_empty() {
            return Some(request);
        }
        let shared = &self.shared;
        if let Some(poisoned) = shared.poisoned() {
            request.fail(poisoned);
            return None;
        }
        on_submitter(shared, core, |core| {
            let mut group = Group::default();
            core.admit(request, &mut group);
            core.carried = core.gather(&self.writes, &mut group, &self.limits, false);
            core.commit(group, shared, &self.limits);
            // Its own write is done; a write the group left out is not left behind.
            core.drain_writes(&self.writes, shared, &self.limits, Drain::Own(&|| true));
        });
        None
    }
}

/// The writer thread's body. Returns when every handle is gone.
pub(crate) fn run(writer: StdArc<WriterCore>, queues: &Queues) {
    let shared = Arc::clone(&writer.shared);
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&writer, queues)));
    let leftover = match served {
        Ok(Some((engine, done))) => {
            let earlier = shared.poisoned();
            // A panic in the close leaves the files as a crash would, for the next open to
            // recover; the engine it unwinds through has marked itself closed, and its drop
            // does nothing more.
            let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.close()))
                .unwrap_or_else(|panic| {
                    let error = panicked(&*panic, WRITER_THREAD);
                    shared.poison(&error);
                    Err(error)
                })
                .map_err(Error::Store);
            // The first error of the store's life wins over what closing found.
            done.complete(match earlier {
                Some(poisoned) => Err(poisoned),
                None => closed,
            });
            Error::Closed
        }
        Ok(None) => return,
        Err(panic) => {
            let error = panicked(&*panic, "the writer thread");
            // The engine, whose state is unknown now, closes (when the last handle drops it)
            // without sealing or checkpointing anything.
            if let Some(core) = lock(&writer.core).as_mut() {
                core.engine.poison(error.clone());
            }
            shared.poison(&error);
            shared.closed.store(true, Ordering::Release);
            Error::Store(error)
        }
    };
    // Requests that were queued after the close, or after a panic, fail; the thread ends
    // when the last handle drops its senders.
    loop {
        crate::sync::channel::select! {
            recv(queues.writes) -> request => match request {
                Ok(request) => request.fail(leftover.clone()),
                Err(_) => break,
            },
            recv(queues.control) -> request => match request {
                Ok(request) => request.fail(leftover.clone()),
                Err(_) => break,
            },
        }
    }
    for request in queues.writes.try_iter().chain(queues.control.try_iter()) {
        request.fail(leftover.clone());
    }
}

/// The error a panic leaves behind, logged: it poisons the store.
fn panicked(panic: &(dyn std::any::Any + Send), thread: &'static str) -> store_mmap::Error {
    let err = store_mmap::Error::panicked(thread, panic);
    tracing::error!(error = %err, "the store refuses writes until it is reopened");
    err
}

/// Runs `work`, a call into the engine, taking a panic in it as a failed commit is taken:
/// what the engine holds is unknown after it, so the engine and the handle are poisoned
/// (before anyone waiting on the call hears of it) and the panic is the call's error.
/// `thread` names where it ran. The call gets the engine alone: the readers' view, which a
/// panic half-way through its change would leave in a state no reader may see, changes only
/// after the call returns, and a panic there still ends the thread (see [`run`]).
fn on_engine<T>(
    engine: &mut Store,
    shared: &Shared,
    thread: &'static str,
    work: impl FnOnce(&mut Store) -> store_mmap::Result<T>,
) -> store_mmap::Result<T> {
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *engine)));
    done.unwrap_or_else(|panic| {
        let error = panicked(&*panic, thread);
        engine.poison(error.clone());
        shared.poison(&error);
        Err(error)
    })
}

/// Where the writer thread's calls into the engine outside a commit run, as a panic names it.
const WRITER_THREAD: &str = "the writer thread";

/// Serves both queues until a close request (returned with the engine, for the caller to
/// close) or until every sender is gone (`None`; the engine is closed here).
fn serve(writer: &WriterCore, queues: &Queues) -> Option<(Store, Completer<()>)> {
    let shared = &writer.shared;
    let mut select = crate::sync::channel::Select::new();
    let control_ready = select.recv(&queues.control);
    select.recv(&queues.writes);
    loop {
        // Readiness only: a write is taken off its queue by whoever holds the core, so
        // that writes commit in the order they were queued, whichever thread commits them.
        let ready = match select.ready_timeout(IDLE_CHECKPOINT_AFTER) {
            Ok(ready) => ready,
            Err(_) => {
                let removal = lock(&writer.core).as_mut().and_then(|core| {
                    core.idle(shared);
                    core.engine.begin_removal()
                });
                // A failure is retried at the next idle spell or turn.
                let _ = remove_replaced(writer, removal);
                continue;
            }
        };
        if ready != control_ready {
            let removal = lock(&writer.core).as_mut().and_then(|core| {
                core.drain_writes(&queues.writes, shared, &writer.limits, Drain::Queued);
                core.engine.begin_removal()
            });
            // A failure is retried after a later turn.
            let _ = remove_replaced(writer, removal);
            continue;
        }
        // The core first, the request after: while the request waits on its queue,
        // submitters leave the core to this thread (`WriterCore::control_waits`).
        let mut guard = lock(&writer.core);
        let request = match queues.control.try_recv() {
            Ok(request) => request,
            Err(TryRecvError::Empty) => continue,
            Err(TryRecvError::Disconnected) => {
                // Every handle is gone without a close (they close on drop, so this is a
                // handle that failed to send); close the engine quietly.
                if let Some(core) = guard.as_mut() {
                    core.drain_writes(&queues.writes, shared, &writer.limits, Drain::Queued);
                }
                if let Some(core) = guard.take() {
                    let _ = core.engine.close();
                }
                return None;
            }
        };
        let core = guard
            .as_mut()
            .expect("only the writer thread takes the core");
        // Every write queued before the request commits first.
        core.drain_writes(&queues.writes, shared, &writer.limits, Drain::Queued);
        match request {
            Request::Close { done } => {
                // Taken before the engine closes, so that no read starts on a store that has
                // released its lock.
                shared.closed.store(true, Ordering::Release);
                let core = guard.take().expect("the core is taken once");
                return Some((core.engine, done));
            }
            Request::Checkpoint { done } => {
                // Complete once the segments it lets go are removed, as the engine's own
                // checkpoint is; commits go on meanwhile.
                let written = core.unless_poisoned(shared, Store::write_checkpoint);
                let removal = core.engine.begin_removal();
                drop(guard);
                let removed = remove_replaced(writer, removal);
                done.complete(written.and(removed));
            }
            request => {
                core.serve_control(request, shared);
                let removal = core.engine.begin_removal();
                drop(guard);
                // A failure is retried after a later turn.
                let _ = remove_replaced(writer, removal);
            }
        }
    }
}

/// Records in `overlay` whether each document `request` writes exists once it commits.
fn note_outcome(overlay: &mut HashMap<DocId, bool>, request: &Request) {
    let mut note = |op: &BatchOp<'_>| {
        overlay.insert(op.id(), matches!(op, BatchOp::Put { .. }));
    };
    match request {
        Request::Put { id, .. } => {
            overlay.insert(*id, true);
        }
        Request::Delete { id, .. } => {
            overlay.insert(*id, false);
        }
        Request::Batch { batch, .. } => batch.iter().for_each(|op| note(&op)),
        Request::Borrowed { ops, .. } => ops.get().iter().for_each(note),
        _ => unreachable!("only writes join a group"),
    }
}

/// Removes the files of replaced segments that no reader holds any more (taken at the end
/// of a turn of the writer thread), without the core: the unlink of a file whose pages are
/// cached frees them, which took 61–63 ms for a segment of 256 MiB, and commits went on
/// hold for as long when it ran under the core. A segment whose removal failed waits for
/// the next one, and the next open removes what is left.
fn remove_replaced(writer: &WriterCore, removal: Option<Removal>) -> crate::error::Result<()> {
    let Some(removal) = removal else {
        return Ok(());
    };
    writer.removing.store(true, Ordering::Release);
    let removed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| removal.run()));
    writer.removing.store(false, Ordering::Release);
    let mut core = lock(&writer.core);
    let Some(core) = core.as_mut() else {
        return Ok(());
    };
    // A removal that panicked may have removed or renamed any of its files: its panic,
    // raised again where the engine's calls are caught, poisons the engine, which still
    // lists them, and the next open sorts them out.
    core.on_engine(&writer.shared, |engine| match removed {
        Ok(removed) => engine.finish_removal(removed).map(drop),
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// How far a holder of the writer's core commits the write queue before it lets go.
enum Drain<'a> {
    /// The writes queued when the drain began, and those its groups gathered meanwhile:
    /// the writer thread's turn, before it looks at its control queue again. A drain until
    /// the queue is empty would never end while submitters keep it full, and a sync, a
    /// close or a compaction's install would wait for as long.
    Queued,
    /// Until `done()`: the submitter's own write has its outcome.
    Own(&'a dyn Fn() -> bool),
}

/// The write requests of one group commit and what they add up to.
#[derive(Default)]
struct Group {
    requests: Vec<Request>,
    docs: usize,
    bytes: u64,
}

impl Group {
    fn push(&mut self, request: Request) {
        let (docs, bytes) = request.size().expect("only writes join a group");
        self.docs += docs;
        self.bytes += bytes;
        self.requests.push(request);
    }
}

impl Core {
    /// Commits queued writes, a group at a time in queue order, until `until` says the
    /// holder has done its part and no write is carried over, or the queue is empty.
    ///
    /// The core is never let go of with a write carried: that write is off the queue, so
    /// nothing would wake the writer thread for it.
    fn drain_writes(
        &mut self,
        writes: &Receiver<Request>,
        shared: &Shared,
        limits: &Limits,
        until: Drain<'_>,
    ) {
        let queued_by = self.taken + writes.len() as u64;
        // Only the writer thread waits for a group to fill (`max_delay`); a submitter
        // committing its own write does not.
        let wait = matches!(until, Drain::Queued);
        loop {
            let done = match until {
                Drain::Queued => self.taken >= queued_by,
                Drain::Own(done) => done(),
            };
            if self.carried.is_none() && done {
                return;
            }
            let first = match self.carried.take() {
                Some(request) => request,
                None => match writes.try_recv() {
                    Ok(request) => {
                        self.taken += 1;
                        request
                    }
                    Err(_) => return,
                },
            };
            let mut group = Group::default();
            self.admit(first, &mut group);
            self.carried = self.gather(writes, &mut group, limits, wait);
            self.commit(group, shared, limits);
        }
    }

    /// Serves a request that is not a write.
    fn serve_control(&mut self, request: Request, shared: &Shared) {
        match request {
            Request::Sync { done } => done.complete(self.unless_poisoned(shared, Store::sync)),
            Request::Refresh { done } => done.complete(self.refresh(shared)),
            // A plan's lookups may rebuild a damaged index file (`store_mmap`'s
            // `rebuild.rs`): readers are shown the new index before the plan returns.
            Request::PlanCompaction { scope, done } => {
                let plan = self.unless_poisoned(shared, |engine| engine.plan_compaction(&scope));
                self.show_new_index();
                done.complete(plan);
            }
            Request::PlanBackup { done } => {
                let plan = self.on_engine(shared, |engine| engine.plan_backup());
                self.show_new_index();
                done.complete(plan);
            }
            Request::Stats { done } => {
                done.complete(self.on_engine(shared, |engine| engine.stats()));
            }
            Request::PlanScrub {
                after,
                bytes_per_sec,
                done,
            } => {
                done.complete(Ok(self.engine.plan_scrub_after(after, bytes_per_sec)));
            }
            Request::InstallCompaction { compacted, done } => {
                done.complete(self.install(compacted, shared));
            }
            Request::Close { .. } | Request::Checkpoint { .. } => {
                unreachable!("served by the writer thread's loop, which lets go of the core")
            }
            Request::Put { .. }
            | Request::Batch { .. }
            | Request::Borrowed { .. }
            | Request::Delete { .. } => unreachable!("served by the queue it came on"),
        }
    }

    /// Runs `action` on the engine (see [`on_engine`]).
    fn on_engine<T>(
        &mut self,
        shared: &Shared,
        action: impl FnOnce(&mut Store) -> store_mmap::Result<T>,
    ) -> crate::error::Result<T> {
        on_engine(&mut self.engine, shared, WRITER_THREAD, action).map_err(Error::Store)
    }

    /// Runs `action` on the engine (see [`on_engine`]), unless an earlier commit failed.
    fn unless_poisoned<T>(
        &mut self,
        shared: &Shared,
        action: impl FnOnce(&mut Store) -> store_mmap::Result<T>,
    ) -> crate::error::Result<T> {
        match shared.poisoned() {
            Some(poisoned) => Err(poisoned),
            None => self.on_engine(shared, action),
        }
    }

    /// Adds a write to the group, or completes it at once when it writes nothing (the
    /// delete of a document that does not exist).
    fn admit(&mut self, request: Request, group: &mut Group) {
        if let Request::Delete { id, .. } = &request {
            if !self.overlay_live {
                self.overlay_live = true;
                for earlier in &group.requests {
                    note_outcome(&mut self.overlay, earlier);
                }
            }
            // A lookup that fails (a damaged page of the index file) writes the tombstone:
            // harmless if the document was already gone.
            let exists = match self.overlay.get(id) {
                Some(exists) => *exists,
                None => self.engine.contains(*id).unwrap_or(true),
            };
            if !exists {
                if let Request::Delete { done, .. } = request {
                    done.complete(Ok(None));
                }
                return;
            }
        }
        if self.overlay_live {
            note_outcome(&mut self.overlay, &request);
        }
        group.push(request);
    }

    /// Takes waiting requests into the group until it is full, the queue is empty (and,
    /// when the caller may `wait`, `max_delay` has passed), or a request cannot join; that
    /// one is returned.
    fn gather(
        &mut self,
        requests: &Receiver<Request>,
        group: &mut Group,
        limits: &Limits,
        wait: bool,
    ) -> Option<Request> {
        let deadline = Instant::now() + limits.max_delay;
        while group.docs < limits.max_docs && group.bytes < limits.max_bytes {
            let request = match requests.try_recv() {
                Ok(request) => request,
                Err(TryRecvError::Empty) if wait && !limits.max_delay.is_zero() => {
                    match requests.recv_deadline(deadline) {
                        Ok(request) => request,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                            return None;
                        }
                    }
                }
                Err(_) => return None,
            };
            self.taken += 1;
            let fits = request.size().is_some_and(|(docs, bytes)| {
                group.docs + docs <= limits.max_docs && group.bytes + bytes <= limits.max_bytes
            });
            if !fits {
                return Some(request);
            }
            self.admit(request, group);
        }
        None
    }

    /// Writes the group as one commit, publishes it and completes its requests.
    fn commit(&mut self, group: Group, shared: &Shared, limits: &Limits) {
        self.overlay.clear();
        self.overlay_live = false;
        let Group { requests, docs, .. } = group;
        if requests.is_empty() {
            return;
        }
        // After a failed commit, or one that panicked and left the engine in a state no one
        // knows, nothing more goes into the engine: writes queued before then fail too.
        if let Some(poisoned) = shared.poisoned() {
            for request in requests {
                request.fail(poisoned.clone());
            }
            return;
        }
        let mut ops = Vec::with_capacity(docs);
        for request in &requests {
            request.push_ops(&mut ops);
        }
        self.placed.clear();
        let committed = if ops.is_empty() {
            // Only empty batches: nothing to write, and they complete with the latest seq.
            Ok(shared.published.last_seq())
        } else {
            // A panic in the engine fails the commit like an error, and each submitter of
            // the group hears of the panic.
            let placed = &mut self.placed;
            on_engine(
                &mut self.engine,
                shared,
                "the thread committing a group",
                |engine| {
                    engine.commit_ops_placed(ops.iter().copied(), |id, at| placed.push((id, at)))
                },
            )
        };
        let last_seq = match committed {
            Ok(last_seq) => last_seq,
            Err(error) => {
                shared.poison(&error);
                // Borrowed texts are given back with their requests: no copy outlives them.
                drop(ops);
                for request in requests {
                    request.fail(Error::Store(error.clone()));
                }
                return;
            }
        };
        self.publish(last_seq);
        self.nudge_compaction(limits);
        // The i-th operation of the group got `last_seq - ops.len() + 1 + i`.
        let mut seq = last_seq - ops.len() as u64;
        drop(ops);
        for request in requests {
            seq += request.ops() as u64;
            request.complete(seq);
        }
    }

    /// Puts a compaction into effect and shows readers the new segments and positions
    /// before it takes the replaced segments out of their list (see `published`).
    fn install(
        &mut self,
        compacted: Compacted,
        shared: &Shared,
    ) -> crate::error::Result<CompactionReport> {
        let installed =
            self.unless_poisoned(shared, |engine| engine.install_compaction(compacted))?;
        self.publisher.begin_replacement();
        self.publish_new_segments();
        for &id in &installed.moved {
            self.publisher.set(id, location(&self.engine, id));
        }
        for &id in &installed.retired {
            self.publisher.retire_segment(id);
        }
        self.publisher.end_replacement(self.engine.change_floor());
        Ok(installed.report)
    }

    /// Wakes the compaction thread when the policy finds the store due.
    fn nudge_compaction(&self, limits: &Limits) {
        if let Some((policy, nudge)) = &limits.compaction
            && self.engine.compaction_due(policy)
        {
            // Full: a nudge is already waiting, which is all the thread needs.
            let _ = nudge.try_send(());
        }
    }

    /// Adds to the readers' list every segment of the engine it does not hold yet.
    fn publish_new_segments(&mut self) {
        for map in self.engine.segment_maps() {
            if !self.publisher.has_segment(map.id()) {
                self.publisher.add_segment(map.id(), map);
            }
        }
    }

    /// Makes the last commit visible to readers, in the order `published` documents.
    fn publish(&mut self, last_seq: u64) {
        if self.placed.is_empty() {
            return;
        }
        // The engine moved the segments' committed ends as the commit completed. A commit
        // that rolled to a new segment, or spanned several, shows every segment it wrote to
        // before any document points into it.
        if !self.publisher.has_segment(self.engine.active_segment()) {
            self.publish_new_segments();
        }
        if !self.publish_checkpoint() {
            self.publisher.reserve(self.placed.len());
            for &(id, at) in &self.placed {
                self.publisher.set(id, at);
            }
        }
        self.publisher.finish(last_seq, self.engine.len() as u64);
    }

    /// Shows readers the engine's new index (a checkpoint it installed, or the index it
    /// rebuilt from the data), with the changes since it, if it took one since the last
    /// look. Returns whether it did: the table it publishes holds every change, the last
    /// commit's included.
    fn publish_checkpoint(&mut self) -> bool {
        if self.engine.index_generation() == self.index_generation_seen {
            return false;
        }
        self.install_engine_index();
        true
    }

    /// Shows readers the engine's index as it is: its checkpoint (none, for an index
    /// rebuilt from the data) and the changes since.
    fn install_engine_index(&mut self) {
        let store = &self.engine;
        self.index_generation_seen = store.index_generation();
        let checkpoint = store
            .checkpointed_index()
            .map(|index| StdArc::new(index) as StdArc<dyn Checkpointed>);
        self.publisher
            .install_index(checkpoint, store.index_changes());
    }

    /// Brings a read-only engine up to date and shows readers its new state: new segments
    /// and ends first, then the index (a new checkpoint, or the same with a new table of
    /// changes), then the segments it no longer holds (see `published`).
    fn refresh(&mut self, shared: &Shared) -> crate::error::Result<Refreshed> {
        let mut changed = Vec::new();
        let refreshed = self.unless_poisoned(shared, |engine| engine.refresh_with(&mut changed))?;
        if refreshed == Refreshed::Unchanged {
            return Ok(refreshed);
        }
        // A reload may bring a writer's compaction: outputs in, inputs out.
        self.publisher.begin_replacement();
        self.publish_new_segments();
        if let Refreshed::Appended { .. } = refreshed {
            // The same checkpoint: the table takes the documents the commits changed.
            for id in changed {
                self.publisher.set(id, location(&self.engine, id));
            }
        } else {
            self.install_engine_index();
        }
        let store = &self.engine;
        for id in self.publisher.segment_ids() {
            if !store.segment_maps().any(|map| map.id() == id) {
                self.publisher.retire_segment(id);
            }
        }
        self.publisher.finish(store.last_seq(), store.len() as u64);
        self.publisher.end_replacement(store.change_floor());
        Ok(refreshed)
    }

    /// The queue stayed empty for a while: installs a checkpoint the engine finished
    /// writing, and has the engine cover every change since the last (a checkpoint, or a
    /// synced journal frame where a journal goes on top of an index file), so that a
    /// crash while idle replays nothing. A read-only engine writes nothing: it rebuilds
    /// its view of a damaged index file in memory, so that its readers read again without
    /// waiting for a refresh.
    fn idle(&mut self, shared: &Shared) {
        if shared.poisoned().is_some() {
            return;
        }
        if self.engine.is_read_only() {
            // A rebuild that fails (damage in the data itself) leaves the reads failing
            // as they did; the next pause or refresh tries again.
            let _ = self.on_engine(shared, Store::repair_index);
            self.show_new_index();
            return;
        }
        // A checkpoint that fails is retried at the next idle spell or due point; the data
        // is durable either way.
        let _ = self.on_engine(shared, |engine| engine.tend_checkpoint(true));
        self.show_new_index();
    }

    /// Publishes the engine's new index, if it took one (see `publish_checkpoint`), as a
    /// publication of its own.
    fn show_new_index(&mut self) {
        if self.publish_checkpoint() {
            let store = &self.engine;
            self.publisher.finish(store.last_seq(), store.len() as u64);
        }
    }
}

/// Where a document just written or moved is: the engine's changes since its checkpoint
/// hold it, so the lookup reads no page of the index file and cannot fail. The one
/// exception is a compaction's install that met a damaged page and rebuilt the index from
/// the data: its moves are then read from the index file just written, and a page of it
/// damaged in that moment panics here, which poisons the handle (no reader is shown a
/// wrong place).
fn location(store: &Store, id: DocId) -> Option<Position> {
    store
        .location(id)
        .expect("a document just written or moved is among the index's changes")
}

#[cfg(all(test, not(textstore_loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::AtomicU64;
    use std::task::{Context, Wake, Waker};
    use std::time::Duration;

    use store_mmap::fault::{Fault, FaultOp, FaultStorage};
    use store_mmap::{StoreOptions, Text, WriteBatch};

    use super::*;
    use crate::request::BorrowedOps;
    use crate::sync::channel;
    use crate::ticket::{Ticket, ticket};

    /// A writer's core on a new store, with no writer thread: the test is the only holder.
    struct Fixture {
        _dir: tempfile::TempDir,
        core: StdArc<WriterCore>,
        writes: Sender<Request>,
        control: Sender<Request>,
        groups: StdArc<Groups>,
    }

    /// The operations of each group the engine committed, in order.
    #[derive(Default)]
    struct Groups(Mutex<Vec<u64>>);

    impl store_format::CommitObserver for Groups {
        fn commit(&self, commit: &store_format::CommitEvent) {
            lock(&self.0).push(commit.ops);
        }

        fn sync(&self, _: Duration, _: bool) {}
    }

    impl Fixture {
        fn new(max_docs: usize) -> Fixture {
            Fixture::with(Fixture::limits(max_docs), StoreOptions::new())
        }

        /// Groups of at most `max_docs` documents, of any size, gathered without waiting.
        fn limits(max_docs: usize) -> Limits {
            Limits {
                max_docs,
                max_bytes: u64::MAX,
                max_delay: Duration::ZERO,
                compaction: None,
            }
        }

        fn with(limits: Limits, options: StoreOptions) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::create(dir.path().join("store"), options).unwrap();
            let groups = StdArc::new(Groups::default());
            store.set_observer(StdArc::clone(&groups) as StdArc<_>);
            let publisher = publisher_of(&store);
            let shared = Arc::new(Shared::new(Arc::clone(publisher.shared())));
            let (writes, writes_queue) = channel::unbounded();
            let (control, control_queue) = channel::unbounded();
            let core = WriterCore::new(
                store,
                publisher,
                shared,
                limits,
                writes_queue,
                control_queue,
            );
            Fixture {
                _dir: dir,
                core: StdArc::new(core),
                writes,
                control,
                groups,
            }
        }

        /// The operations of each group committed so far.
        fn groups(&self) -> Vec<u64> {
            lock(&self.groups.0).clone()
        }

        fn helper(&self) -> StdArc<dyn Helper> {
            StdArc::clone(&self.core) as StdArc<dyn Helper>
        }

        fn last_seq(&self) -> u64 {
            self.core.shared.published.last_seq()
        }
    }

    fn put(key: u64) -> (Request, Ticket<u64>) {
        let (done, ticket) = ticket();
        let text = Text::from(format!("text {key}"));
        let id = DocId::from(key);
        (Request::Put { id, text, done }, ticket)
    }

    /// A submitter that finds the core free commits the queue up to its own write (and the
    /// write its last group left out), not every write queued after it: its wait is bounded
    /// by the queue ahead of it, and the writes behind it go to the next holder, in order.
    #[test]
    fn a_helping_submitter_commits_up_to_its_own_write_and_leaves_nothing_carried() {
        let fixture = Fixture::new(2);
        let (own, own_ticket) = put(1);
        // Two operations: they do not fit in a group beside `own`, so the group that
        // commits `own` takes this batch off the queue and leaves it out.
        let (batch_done, batch_ticket) = ticket();
        let mut batch = WriteBatch::new();
        batch.put(DocId::from(2u64), "two");
        batch.put(DocId::from(3u64), "three");
        let batch = Request::Batch {
            batch,
            done: batch_done,
        };
        let (later, later_tickets): (Vec<_>, Vec<_>) = (4..=6).map(put).unzip();
        for request in [own, batch].into_iter().chain(later) {
            fixture.writes.send(request).unwrap();
        }

        assert_eq!(own_ticket.helped_by(fixture.helper()).wait().unwrap(), 1);
        assert_eq!(
            fixture.groups(),
            [1, 2],
            "the batch joined a group it overfills"
        );
        assert!(
            batch_ticket.is_ready(),
            "the write left out of the group was left behind"
        );
        assert_eq!(batch_ticket.wait().unwrap(), 3);
        assert!(
            later_tickets.iter().all(|ticket| !ticket.is_ready()),
            "the helping submitter committed writes queued after its own"
        );
        assert_eq!(fixture.writes.len(), 3);

        // The last of them commits the rest, in queue order.
        let mut later_tickets = later_tickets;
        let last = later_tickets.pop().unwrap();
        assert_eq!(last.helped_by(fixture.helper()).wait().unwrap(), 6);
        let seqs: Vec<u64> = later_tickets
            .into_iter()
            .map(|t| t.wait().unwrap())
            .collect();
        assert_eq!(seqs, [4, 5]);
        assert!(fixture.writes.is_empty());
    }

    /// A panic in one holder's commit poisons the handle, and the writes queued before it
    /// are refused by the next holder, not committed into an engine in an unknown state:
    /// each of them fails with the poison, which names the panic.
    #[test]
    fn writes_queued_before_a_panicking_commit_are_refused_after_it() {
        let storage = StdArc::new(FaultStorage::new());
        let options = StoreOptions::new().storage(StdArc::clone(&storage) as StdArc<_>);
        let fixture = Fixture::with(Fixture::limits(1), options);
        let (first, first_ticket) = put(1);
        let (queued, queued_ticket) = put(2);
        fixture.writes.send(first).unwrap();
        fixture.writes.send(queued).unwrap();

        let panic = Fault::Panic(FaultOp::Sync);
        storage.inject(panic, 0);
        let panicked = first_ticket.helped_by(fixture.helper()).wait();
        assert_eq!(storage.injected(panic), 1);
        assert!(
            matches!(
                panicked,
                Err(Error::Store(store_mmap::Error::Panicked { .. }))
            ),
            "{panicked:?}"
        );
        assert!(fixture.core.shared.poisoned().is_some());
        assert!(
            !queued_ticket.is_ready(),
            "the helper went past its own write"
        );

        // The next holder.
        let refused = queued_ticket.helped_by(fixture.helper()).wait();
        match refused {
            Err(Error::Store(store_mmap::Error::Poisoned { cause })) => match &*cause {
                store_mmap::Error::Panicked { message, .. } => {
                    assert!(message.starts_with("injected panic: Sync"), "{message}");
                }
                other => panic!("poisoned by {other:?}, not the panic"),
            },
            other => panic!("a write queued before the panic was not refused: {other:?}"),
        }
        assert_eq!(fixture.last_seq(), 0);
    }

    /// Queues six puts of one size into groups of at most `max_bytes(size)` bytes, and has
    /// the first one's submitter help until its put is committed; returns the tickets of
    /// the other five.
    fn six_puts_committed_by_the_first(
        max_bytes: fn(u64) -> u64,
    ) -> (Fixture, std::vec::IntoIter<Ticket<u64>>) {
        let (requests, tickets): (Vec<_>, Vec<_>) = (1..=6).map(put).unzip();
        let each = requests[0].size().unwrap().1;
        let limits = Limits {
            max_bytes: max_bytes(each),
            ..Fixture::limits(4096)
        };
        let fixture = Fixture::with(limits, StoreOptions::new());
        for request in requests {
            fixture.writes.send(request).unwrap();
        }
        let mut tickets = tickets.into_iter();
        let own = tickets.next().unwrap();
        assert_eq!(own.helped_by(fixture.helper()).wait().unwrap(), 1);
        (fixture, tickets)
    }

    /// A group stops at its byte limit: once full it takes no more writes off the queue.
    #[test]
    fn a_group_holds_no_more_bytes_than_its_limit() {
        let (fixture, tickets) = six_puts_committed_by_the_first(|each| 2 * each);
        // The group took the second put beside the first, and the rest stay queued.
        let ready: Vec<bool> = tickets.map(|ticket| ticket.is_ready()).collect();
        assert_eq!(ready, [true, false, false, false, false]);
        assert_eq!(fixture.writes.len(), 4);
        assert_eq!(fixture.groups(), [2]);
    }

    /// A write that would take a group past its byte limit starts the next group, and a
    /// helping submitter commits that one too before it lets go of the core.
    #[test]
    fn a_write_past_the_byte_limit_starts_the_next_group() {
        let (fixture, mut tickets) = six_puts_committed_by_the_first(|each| 2 * each + each / 2);
        assert_eq!(fixture.groups(), [2, 2, 2]);
        assert!(tickets.all(|ticket| ticket.is_ready()));
        assert!(fixture.writes.is_empty());
    }

    /// The writer thread waits up to `max_delay` for a group to fill; a submitter helping
    /// with the queue does not wait at all.
    #[test]
    fn only_the_writer_threads_groups_wait_to_fill() {
        let limits = Limits {
            max_delay: Duration::from_secs(30),
            ..Fixture::limits(2)
        };
        let fixture = Fixture::with(limits, StoreOptions::new());
        let (first, first_ticket) = put(1);
        fixture.writes.send(first).unwrap();
        let started = Instant::now();
        assert_eq!(first_ticket.helped_by(fixture.helper()).wait().unwrap(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a helping submitter waited for its group to fill"
        );

        let (second, second_ticket) = put(2);
        let (third, third_ticket) = put(3);
        fixture.writes.send(second).unwrap();
        let late = fixture.writes.clone();
        std::thread::scope(|scope| {
            // Sent while the writer thread's group waits for a second write.
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                late.send(third).unwrap();
            });
            let mut core = lock(&fixture.core.core);
            let core = core.as_mut().unwrap();
            let (writes, shared, limits) = (
                &fixture.core.writes,
                &fixture.core.shared,
                &fixture.core.limits,
            );
            core.drain_writes(writes, shared, limits, Drain::Queued);
        });
        assert_eq!(fixture.groups(), [1, 2]);
        assert_eq!(second_ticket.wait().unwrap(), 2);
        assert_eq!(third_ticket.wait().unwrap(), 3);
    }

    /// A delete looks at what the writes before it in its group leave, whatever they came
    /// as: here a put of texts lent by a blocked submitter (`commit_ops`).
    #[test]
    fn a_delete_sees_a_lent_put_of_its_group() {
        let fixture = Fixture::new(4096);
        let id = DocId::from(5u64);
        let text = String::from("lent");
        let ops = [BatchOp::Put { id, text: &text }];
        let (lent_done, lent_ticket) = ticket();
        // SAFETY: `ops` and `text` outlive the request, which the waits below see completed.
        #[expect(unsafe_code, reason = "lending borrowed texts to the writer's core")]
        let lent = unsafe { BorrowedOps::lend(&ops) };
        let lent = Request::Borrowed {
            ops: lent,
            done: lent_done,
        };
        let (delete_done, delete_ticket) = ticket();
        fixture.writes.send(lent).unwrap();
        let delete = Request::Delete {
            id,
            done: delete_done,
        };
        fixture.writes.send(delete).unwrap();

        let deleted = delete_ticket.helped_by(fixture.helper()).wait().unwrap();
        assert_eq!(deleted, Some(2), "the delete did not see the lent put");
        assert_eq!(lent_ticket.wait().unwrap(), 1);
        let core = lock(&fixture.core.core);
        assert!(!core.as_ref().unwrap().engine.contains(id).unwrap());
    }

    /// Queues a new write each time one of its writes completes, as submitters that put
    /// again as soon as their write is done keep a queue from emptying; up to `limit`.
    struct Resubmitter {
        writes: Sender<Request>,
        sent: AtomicU64,
        limit: u64,
    }

    impl Resubmitter {
        fn submit(self: &StdArc<Self>) {
            let key = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
            if key > self.limit {
                return;
            }
            let (request, mut ticket) = put(key);
            let waker = Waker::from(StdArc::clone(self));
            let polled = Pin::new(&mut ticket).poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending());
            self.writes.send(request).unwrap();
        }
    }

    impl Wake for Resubmitter {
        fn wake(self: StdArc<Self>) {
            self.submit();
        }
    }

    /// The writer thread's turn at the write queue commits the writes queued when it began,
    /// not writes queued during it: a queue that submitters keep full would otherwise hold
    /// the thread, and every sync, close or install waiting for it, for as long.
    #[test]
    fn the_writer_threads_turn_ends_at_the_writes_queued_when_it_began() {
        let fixture = Fixture::new(4096);
        let resubmitter = StdArc::new(Resubmitter {
            writes: fixture.writes.clone(),
            sent: AtomicU64::new(0),
            limit: 1_000,
        });
        for _ in 0..3 {
            resubmitter.submit();
        }
        let writes = &fixture.core.writes;
        let limits = &fixture.core.limits;
        let shared = &fixture.core.shared;
        let mut core = lock(&fixture.core.core);
        let core = core.as_mut().unwrap();

        core.drain_writes(writes, shared, limits, Drain::Queued);
        assert_eq!(
            fixture.last_seq(),
            3,
            "the turn took writes queued during it"
        );
        assert_eq!(writes.len(), 3, "each commit's completion queued a write");

        core.drain_writes(writes, shared, limits, Drain::Queued);
        assert_eq!(fixture.last_seq(), 6);
        // The writes still queued fail as the queue is dropped: no more after them.
        resubmitter.sent.store(resubmitter.limit, Ordering::Relaxed);
    }

    /// While a request waits for the writer thread, a submitter does not take the core,
    /// neither to help nor to commit unqueued: the lock is not fair, and the writer thread
    /// would wait on it for as long as submitters keep taking it.
    #[test]
    fn submitters_leave_the_core_to_the_writer_thread_while_a_request_waits_for_it() {
        let fixture = Fixture::new(4096);
        let (stats_done, _stats) = ticket();
        fixture
            .control
            .send(Request::Stats { done: stats_done })
            .unwrap();

        let (queued, queued_ticket) = put(1);
        fixture.writes.send(queued).unwrap();
        fixture.core.help(&|| false);
        assert!(!queued_ticket.is_ready(), "a submitter took the core");
        let (unqueued, _unqueued_ticket) = put(2);
        let unqueued = fixture.core.commit_unqueued(unqueued);
        assert!(unqueued.is_some(), "a write was committed unqueued");
        assert_eq!(fixture.last_seq(), 0);

        // Once the writer thread has the request, submitters commit again.
        let served = fixture.core.control.try_recv().unwrap();
        drop(served);
        assert_eq!(queued_ticket.helped_by(fixture.helper()).wait().unwrap(), 1);
    }
}
