//! The writes of a shared handle, counted per call.
//!
//! A [`DocWrite`] handle's writes return a ticket that completes when the write's group
//! commit is durable. Through [`Instrumented`], each write returns a [`Counted`] ticket
//! instead, which counts the write by its outcome when it completes, with its latency from
//! submission to acknowledgement: the queue wait, the group's write and its `fdatasync`. A
//! submission that fails (a closed handle, a full queue) is counted at once.
//!
//! A counted ticket dropped before it completes is not counted per call, because its outcome
//! is not known to anyone; its write still goes ahead and is counted in the commit groups the
//! store reports ([`crate::Snapshot::commits`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use store_format::{DocId, DocWrite, Offer, Text, WriteBatch, WriteTicket};

use crate::instrumented::Instrumented;
use crate::op::{Op, Outcome};
use crate::registry::Metrics;

/// A write's ticket that counts the write when it completes. Wait on it with
/// [`WriteTicket::wait`] or `.await` it.
#[must_use = "a ticket says whether the write committed; drop it explicitly to ignore that"]
pub struct Counted<K: WriteTicket> {
    /// `None` once the outcome is taken.
    ticket: Option<K>,
    metrics: Arc<Metrics>,
    op: Op,
    started: u64,
    written: u64,
    /// The outcome a success stands for: a delete of nothing is `NotFound`.
    outcome: fn(&K::Value) -> Outcome,
}

fn done<T>(_: &T) -> Outcome {
    Outcome::Ok
}

fn deleted(tombstone: &Option<u64>) -> Outcome {
    match tombstone {
        Some(_) => Outcome::Ok,
        None => Outcome::NotFound,
    }
}

impl<K: WriteTicket> Counted<K> {
    fn count(&self, result: &Result<K::Value, K::Error>) {
        let (outcome, written) = match result {
            Ok(value) => ((self.outcome)(value), self.written),
            Err(err) => (Outcome::of_error(err), 0),
        };
        self.metrics
            .finish_started(self.op, self.started, outcome, 0, written);
    }
}

impl<K: WriteTicket> WriteTicket for Counted<K> {
    type Value = K::Value;
    type Error = K::Error;

    /// Blocks until the write has committed (or failed), counts it and returns its outcome.
    fn wait(mut self) -> Result<K::Value, K::Error> {
        let ticket = self.ticket.take().expect("a ticket is waited on once");
        let result = ticket.wait();
        self.count(&result);
        result
    }

    fn is_ready(&self) -> bool {
        self.ticket.as_ref().is_none_or(WriteTicket::is_ready)
    }
}

impl<K: WriteTicket> std::fmt::Debug for Counted<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("op", &self.op)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<K: WriteTicket> Future for Counted<K> {
    type Output = Result<K::Value, K::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
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

impl<S: DocWrite> Instrumented<S> {
    fn submit<K: WriteTicket<Error = S::Error>>(
        &self,
        op: Op,
        written: u64,
        outcome: fn(&K::Value) -> Outcome,
        submit: impl FnOnce() -> Result<K, S::Error>,
    ) -> Result<Counted<K>, S::Error> {
        let started = self.metrics().start_detached();
        match submit() {
            Ok(ticket) => Ok(self.counted(ticket, op, started, written, outcome)),
            Err(err) => {
                self.metrics()
                    .finish_started(op, started, Outcome::of_error(&err), 0, 0);
                Err(err)
            }
        }
    }

    /// Like [`Instrumented::submit`] for a write that may be handed back: one handed back
    /// is not counted (it was not done, and the caller submits it again).
    fn offer<K: WriteTicket<Error = S::Error>, I>(
        &self,
        op: Op,
        written: u64,
        outcome: fn(&K::Value) -> Outcome,
        submit: impl FnOnce() -> Result<Offer<K, I>, S::Error>,
    ) -> Result<Offer<Counted<K>, I>, S::Error> {
        let started = self.metrics().start_detached();
        match submit() {
            Ok(offer) => {
                Ok(offer.map(|ticket| self.counted(ticket, op, started, written, outcome)))
            }
            Err(err) => {
                self.metrics()
                    .finish_started(op, started, Outcome::of_error(&err), 0, 0);
                Err(err)
            }
        }
    }

    fn counted<K: WriteTicket>(
        &self,
        ticket: K,
        op: Op,
        started: u64,
        written: u64,
        outcome: fn(&K::Value) -> Outcome,
    ) -> Counted<K> {
        Counted {
            ticket: Some(ticket),
            metrics: Arc::clone(self.metrics()),
            op,
            started,
            written,
            outcome,
        }
    }

    fn timed(&self, op: Op, run: impl FnOnce() -> Result<(), S::Error>) -> Result<(), S::Error> {
        let started = self.metrics().start_detached();
        let result = run();
        let outcome = match &result {
            Ok(()) => Outcome::Ok,
            Err(err) => Outcome::of_error(err),
        };
        self.metrics().finish_started(op, started, outcome, 0, 0);
        result
    }
}

/// Every write counted per call, by the outcome its ticket delivers; a batch counts as one
/// operation.
impl<S: DocWrite> DocWrite for Instrumented<S> {
    type Ticket<T: Send + 'static> = Counted<S::Ticket<T>>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Self::Ticket<u64>, S::Error> {
        let text = text.into();
        let written = text.len() as u64;
        self.submit(Op::Put, written, done, || self.inner().put(id, text))
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Self::Ticket<u64>, S::Error> {
        let written = batch.text_bytes() as u64;
        self.submit(Op::PutBatch, written, done, || {
            self.inner().put_batch(batch)
        })
    }

    fn delete(&self, id: DocId) -> Result<Self::Ticket<Option<u64>>, S::Error> {
        self.submit(Op::Delete, 0, deleted, || self.inner().delete(id))
    }

    fn offer_put(&self, id: DocId, text: Text) -> Result<Offer<Self::Ticket<u64>, Text>, S::Error> {
        let written = text.len() as u64;
        self.offer(Op::Put, written, done, || self.inner().offer_put(id, text))
    }

    fn offer_batch(
        &self,
        batch: WriteBatch,
    ) -> Result<Offer<Self::Ticket<u64>, WriteBatch>, S::Error> {
        let written = batch.text_bytes() as u64;
        self.offer(Op::PutBatch, written, done, || {
            self.inner().offer_batch(batch)
        })
    }

    fn offer_delete(&self, id: DocId) -> Result<Offer<Self::Ticket<Option<u64>>, DocId>, S::Error> {
        self.offer(Op::Delete, 0, deleted, || self.inner().offer_delete(id))
    }

    fn sync(&self) -> Result<(), S::Error> {
        self.timed(Op::Sync, || self.inner().sync())
    }

    /// Not counted: closing is not an operation on documents.
    fn close(&self) -> Result<(), S::Error> {
        self.inner().close()
    }
}
