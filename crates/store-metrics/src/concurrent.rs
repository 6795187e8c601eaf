//! The writes of the concurrent handle, counted per call.
//!
//! [`ConcurrentStore`]'s writes return a [`Ticket`] that completes when the write's group
//! commit is durable. Through [`Instrumented`], each write returns a [`Counted`] ticket
//! instead, which counts the write by its outcome when it completes, with its latency from
//! submission to acknowledgement: the queue wait, the group's write and its `fdatasync`. A
//! submission that fails (a closed handle, a full queue for the `try_` calls) is counted
//! at once.
//!
//! A counted ticket dropped before it completes is not counted per call, because its outcome
//! is not known to anyone; its write still goes ahead and is counted in the commit groups the
//! store reports ([`crate::Snapshot::commits`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use store_concurrent::{ConcurrentStore, Result, Ticket};
use store_format::{DocId, WriteBatch};

use crate::instrumented::Instrumented;
use crate::op::{Classify, Op, Outcome};
use crate::registry::Metrics;

/// A write's [`Ticket`] that counts the write when it completes. Wait on it with
/// [`Counted::wait`] or `.await` it.
#[must_use = "a ticket says whether the write committed; drop it explicitly to ignore that"]
pub struct Counted<T: Committed> {
    /// `None` once the outcome is taken.
    ticket: Option<Ticket<T>>,
    metrics: Arc<Metrics>,
    op: Op,
    started: u64,
    written: u64,
}

/// What a write's ticket yields, and the outcome it stands for.
pub trait Committed {
    /// `NotFound` for the delete of a document that did not exist.
    fn outcome(&self) -> Outcome;
}

/// The sequence number of a put or batch.
impl Committed for u64 {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

/// The tombstone's sequence number of a delete, or `None` when there was nothing to delete.
impl Committed for Option<u64> {
    fn outcome(&self) -> Outcome {
        match self {
            Some(_) => Outcome::Ok,
            None => Outcome::NotFound,
        }
    }
}

impl<T: Committed> Counted<T> {
    /// Blocks until the write has committed (or failed), counts it and returns its outcome.
    pub fn wait(mut self) -> Result<T> {
        let ticket = self.ticket.take().expect("a ticket is waited on once");
        let result = ticket.wait();
        self.count(&result);
        result
    }

    /// Whether the outcome is in: [`Counted::wait`] would not block.
    pub fn is_ready(&self) -> bool {
        self.ticket.as_ref().is_none_or(Ticket::is_ready)
    }

    fn count(&self, result: &Result<T>) {
        let (outcome, written) = match result {
            Ok(value) => (value.outcome(), self.written),
            Err(err) => (err.outcome(), 0),
        };
        self.metrics
            .finish_started(self.op, self.started, outcome, 0, written);
    }
}

impl<T: Committed> std::fmt::Debug for Counted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("op", &self.op)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T: Committed + Unpin> Future for Counted<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let ticket = self
            .ticket
            .as_mut()
            .expect("a counted ticket is not polled after it returned Ready");
        match Pin::new(ticket).poll(cx) {
            Poll::Ready(result) => {
                self.ticket = None;
                self.count(&result);
                Poll::Ready(result)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The writes of the concurrent handle, counted per call; its reads are counted through
/// [`store_format::DocRead`], which it implements like every layer.
impl Instrumented<ConcurrentStore> {
    /// [`ConcurrentStore::put`], counted.
    pub fn put(&self, id: DocId, text: impl Into<String>) -> Result<Counted<u64>> {
        let text = text.into();
        let written = text.len() as u64;
        self.submit(Op::Put, written, || self.inner().put(id, text))
    }

    /// [`ConcurrentStore::try_put`], counted; a full queue counts as `queue_full`.
    pub fn try_put(&self, id: DocId, text: impl Into<String>) -> Result<Counted<u64>> {
        let text = text.into();
        let written = text.len() as u64;
        self.submit(Op::Put, written, || self.inner().try_put(id, text))
    }

    /// [`ConcurrentStore::put_batch`], counted as one operation.
    pub fn put_batch(&self, batch: WriteBatch) -> Result<Counted<u64>> {
        let written = batch.text_bytes() as u64;
        self.submit(Op::PutBatch, written, || self.inner().put_batch(batch))
    }

    /// [`ConcurrentStore::try_put_batch`], counted as one operation.
    pub fn try_put_batch(&self, batch: WriteBatch) -> Result<Counted<u64>> {
        let written = batch.text_bytes() as u64;
        self.submit(Op::PutBatch, written, || self.inner().try_put_batch(batch))
    }

    /// [`ConcurrentStore::delete`], counted; the delete of nothing counts as `not_found`.
    pub fn delete(&self, id: DocId) -> Result<Counted<Option<u64>>> {
        self.submit(Op::Delete, 0, || self.inner().delete(id))
    }

    /// [`ConcurrentStore::try_delete`], counted.
    pub fn try_delete(&self, id: DocId) -> Result<Counted<Option<u64>>> {
        self.submit(Op::Delete, 0, || self.inner().try_delete(id))
    }

    /// [`ConcurrentStore::sync`], counted.
    pub fn sync(&self) -> Result<()> {
        let started = self.metrics().start_detached();
        let result = self.inner().sync();
        let outcome = match &result {
            Ok(()) => Outcome::Ok,
            Err(err) => err.outcome(),
        };
        self.metrics()
            .finish_started(Op::Sync, started, outcome, 0, 0);
        result
    }

    fn submit<T: Committed>(
        &self,
        op: Op,
        written: u64,
        submit: impl FnOnce() -> Result<Ticket<T>>,
    ) -> Result<Counted<T>> {
        let started = self.metrics().start_detached();
        match submit() {
            Ok(ticket) => Ok(Counted {
                ticket: Some(ticket),
                metrics: Arc::clone(self.metrics()),
                op,
                started,
                written,
            }),
            Err(err) => {
                self.metrics()
                    .finish_started(op, started, err.outcome(), 0, 0);
                Err(err)
            }
        }
    }
}
