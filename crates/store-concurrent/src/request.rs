//! What a submitter hands the writer thread: one [`Request`] per message on the queue, and
//! the operations a blocking submitter lends it without a copy ([`BorrowedOps`]).

use store_mmap::{
    Backup, BatchOp, Compacted, Compaction, CompactionReport, CompactionScope, DocId, Refreshed,
    Scrub, StoreStats, Text, WriteBatch,
};

use crate::error::Error;
use crate::ticket::Completer;

/// One message on the queue.
pub(crate) enum Request {
    Put {
        id: DocId,
        text: Text,
        done: Completer<u64>,
    },
    Batch {
        batch: WriteBatch,
        done: Completer<u64>,
    },
    /// Operations borrowed from a submitter that blocks until `done` is completed or
    /// dropped ([`crate::ConcurrentStore::commit_ops`]).
    Borrowed {
        ops: BorrowedOps,
        done: Completer<u64>,
    },
    Delete {
        id: DocId,
        done: Completer<Option<u64>>,
    },
    Sync {
        done: Completer<()>,
    },
    Checkpoint {
        done: Completer<()>,
    },
    /// Bring a read-only store up to its writer's latest commit and publish what changed.
    Refresh {
        done: Completer<Refreshed>,
    },
    /// Plan a compaction (see [`Store::plan_compaction`](store_mmap::Store::plan_compaction)).
    PlanCompaction {
        scope: CompactionScope,
        done: Completer<Option<Compaction>>,
    },
    /// The store's size and shape (see [`Store::stats`](store_mmap::Store::stats)).
    Stats {
        done: Completer<StoreStats>,
    },
    /// Note the store's state for a backup (see [`Store::plan_backup`](store_mmap::Store::plan_backup)).
    PlanBackup {
        done: Completer<Backup>,
    },
    /// Note the next sealed segment a scrub pass checks, the first above `after` (see
    /// [`Store::plan_scrub_after`](store_mmap::Store::plan_scrub_after)).
    PlanScrub {
        after: Option<u32>,
        bytes_per_sec: Option<u64>,
        done: Completer<Option<Scrub>>,
    },
    /// Put a run compaction into effect and publish it.
    InstallCompaction {
        compacted: Compacted,
        done: Completer<CompactionReport>,
    },
    Close {
        done: Completer<()>,
    },
}

impl Request {
    /// The operations of a write request; `None` for requests that are not writes.
    fn writes(&self) -> Option<Writes<'_>> {
        match self {
            Request::Put { id, text, .. } => Some(Writes::One(BatchOp::Put { id: *id, text })),
            Request::Batch { batch, .. } => Some(Writes::Batch(batch)),
            Request::Borrowed { ops, .. } => Some(Writes::Borrowed(ops.get())),
            Request::Delete { id, .. } => Some(Writes::One(BatchOp::Delete { id: *id })),
            Request::Sync { .. }
            | Request::Checkpoint { .. }
            | Request::Refresh { .. }
            | Request::PlanCompaction { .. }
            | Request::Stats { .. }
            | Request::PlanBackup { .. }
            | Request::PlanScrub { .. }
            | Request::InstallCompaction { .. }
            | Request::Close { .. } => None,
        }
    }

    /// Operations and encoded bytes the request adds to a group; `None` for requests that
    /// are not writes.
    pub(crate) fn size(&self) -> Option<(usize, u64)> {
        self.writes()
            .map(|writes| (writes.len(), writes.encoded_len()))
    }

    /// Whether the request is a write: it goes on the write queue, which whoever holds
    /// the writer's core drains.
    pub(crate) fn is_write(&self) -> bool {
        self.writes().is_some()
    }

    /// Whether the request writes, syncs, checkpoints or compacts: what a read-only handle
    /// refuses.
    pub(crate) fn changes_the_store(&self) -> bool {
        !matches!(
            self,
            Request::Refresh { .. }
                | Request::Stats { .. }
                | Request::PlanBackup { .. }
                | Request::PlanScrub { .. }
                | Request::Close { .. }
        )
    }

    /// Operations the request writes (zero for requests that are not writes).
    pub(crate) fn ops(&self) -> usize {
        self.writes().map_or(0, |writes| writes.len())
    }

    /// Appends the operations the request writes to `ops`.
    pub(crate) fn push_ops<'a>(&'a self, ops: &mut Vec<BatchOp<'a>>) {
        match self.writes() {
            Some(Writes::One(op)) => ops.push(op),
            Some(Writes::Batch(batch)) => ops.extend(batch.iter()),
            Some(Writes::Borrowed(borrowed)) => ops.extend_from_slice(borrowed),
            None => {}
        }
    }

    /// Completes a write request whose last operation got sequence number `seq`.
    pub(crate) fn complete(self, seq: u64) {
        match self {
            Request::Put { done, .. }
            | Request::Batch { done, .. }
            | Request::Borrowed { done, .. } => done.complete(Ok(seq)),
            Request::Delete { done, .. } => done.complete(Ok(Some(seq))),
            _ => unreachable!("only writes join a group"),
        }
    }

    /// Completes the request with `error`.
    pub(crate) fn fail(self, error: Error) {
        match self {
            Request::Put { done, .. }
            | Request::Batch { done, .. }
            | Request::Borrowed { done, .. } => done.complete(Err(error)),
            Request::Delete { done, .. } => done.complete(Err(error)),
            Request::Sync { done } | Request::Checkpoint { done } | Request::Close { done } => {
                done.complete(Err(error));
            }
            Request::Refresh { done } => done.complete(Err(error)),
            Request::PlanCompaction { done, .. } => done.complete(Err(error)),
            Request::PlanBackup { done } => done.complete(Err(error)),
            Request::Stats { done } => done.complete(Err(error)),
            Request::PlanScrub { done, .. } => done.complete(Err(error)),
            Request::InstallCompaction { done, .. } => done.complete(Err(error)),
        }
    }
}

/// The operations of a write request, borrowed from it.
enum Writes<'a> {
    /// A put or a delete.
    One(BatchOp<'a>),
    Batch(&'a WriteBatch),
    Borrowed(&'a [BatchOp<'a>]),
}

impl Writes<'_> {
    fn len(&self) -> usize {
        match self {
            Writes::One(_) => 1,
            Writes::Batch(batch) => batch.len(),
            Writes::Borrowed(ops) => ops.len(),
        }
    }

    fn encoded_len(&self) -> u64 {
        match self {
            Writes::One(op) => op.encoded_len(),
            Writes::Batch(batch) => batch.encoded_len(),
            Writes::Borrowed(ops) => ops.iter().map(BatchOp::encoded_len).sum(),
        }
    }
}

/// A slice of operations whose texts a submitter lends the writer thread for one commit.
///
/// The submitter keeps the slice and its texts alive, and does not return, until the
/// request's completer is completed or dropped (`ConcurrentStore::commit_ops` waits on its
/// ticket, and aborts the process should that wait unwind). The writer thread reads the
/// slice only while it holds the request, and completes the request only once every
/// operation it copied out of it is gone (`WriterLoop::commit` drops them first).
pub(crate) struct BorrowedOps(std::ptr::NonNull<[BatchOp<'static>]>);

// SAFETY: the slice is only read, and `BatchOp` is `Send + Sync` (ids and `&str`); the
// submitter keeps it alive while another thread reads it (see the type's documentation).
#[expect(unsafe_code, reason = "lending borrowed texts to the writer thread")]
unsafe impl Send for BorrowedOps {}

impl BorrowedOps {
    /// Lends `ops`.
    ///
    /// # Safety
    /// The caller keeps `ops` alive and unchanged until the request that carries the result
    /// has been completed or dropped.
    #[expect(unsafe_code, reason = "lending borrowed texts to the writer thread")]
    pub(crate) unsafe fn lend(ops: &[BatchOp<'_>]) -> BorrowedOps {
        let ptr = std::ptr::NonNull::from(ops);
        // SAFETY: only the lifetime changes; `lend`'s caller keeps the texts alive for as
        // long as the request, which is the longest any borrow handed out by `get` lives.
        BorrowedOps(unsafe {
            std::mem::transmute::<
                std::ptr::NonNull<[BatchOp<'_>]>,
                std::ptr::NonNull<[BatchOp<'static>]>,
            >(ptr)
        })
    }

    /// The operations, for as long as the request is held.
    #[expect(unsafe_code, reason = "lending borrowed texts to the writer thread")]
    pub(crate) fn get(&self) -> &[BatchOp<'_>] {
        // SAFETY: the submitter keeps the slice alive until the request is completed or
        // dropped, which cannot happen while `self` is borrowed.
        unsafe { self.0.as_ref() }
    }
}
