//! `Instrumented<S>`: any store layer, with every operation counted and timed.

use std::sync::Arc;

use store_format::{Doc, DocId, DocMeta, DocRead, DocWrite, Text, TextRange, WriteBatch};

use crate::op::{Classify, Op, Outcome};
use crate::registry::Metrics;

/// Wraps a store layer and records each operation into a shared [`Metrics`]: its outcome
/// (a failure is never counted as a success), its latency, and the document bytes it moved.
/// It implements the same read and write traits as what it wraps, so it stacks with other
/// layers.
pub struct Instrumented<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Instrumented<S> {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Instrumented<S> {
        Instrumented { inner, metrics }
    }

    /// The wrapped layer.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped layer, for calls that are not counted.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped layer, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Where the operations are recorded.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

fn outcome_of<T, E: Classify>(result: &Result<T, E>, ok: impl FnOnce(&T) -> Outcome) -> Outcome {
    match result {
        Ok(value) => ok(value),
        Err(err) => err.outcome(),
    }
}

impl<S> DocRead for Instrumented<S>
where
    S: DocRead,
    S::Error: Classify,
{
    type Error = S::Error;

    fn get(&self, id: DocId) -> Result<Option<Doc>, S::Error> {
        let span = self.metrics.start(Op::Get);
        let result = self.inner.get(id);
        let read = match &result {
            Ok(Some(doc)) => doc.len() as u64,
            _ => 0,
        };
        span.finish(outcome_of(&result, found), read, 0);
        result
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>, S::Error> {
        self.inner.meta(id)
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text, S::Error> {
        let span = self.metrics.start(Op::Extract);
        let result = self.inner.extract(id, range);
        let read = result.as_ref().map_or(0, |text| text.len() as u64);
        span.finish(outcome_of(&result, |_| Outcome::Ok), read, 0);
        result
    }

    fn read_into(&self, id: DocId, buf: &mut String) -> Result<bool, S::Error> {
        let span = self.metrics.start(Op::Get);
        let result = self.inner.read_into(id, buf);
        let read = match &result {
            Ok(true) => buf.len() as u64,
            _ => 0,
        };
        span.finish(outcome_of(&result, |&found| exists(found)), read, 0);
        result
    }
}

impl<S> DocWrite for Instrumented<S>
where
    S: DocWrite,
    S::Error: Classify,
{
    type Error = S::Error;

    fn put(&mut self, id: DocId, text: &str) -> Result<u64, S::Error> {
        let span = self.metrics.start(Op::Put);
        let result = self.inner.put(id, text);
        let written = if result.is_ok() { text.len() as u64 } else { 0 };
        span.finish(outcome_of(&result, |_| Outcome::Ok), 0, written);
        result
    }

    fn put_batch(&mut self, batch: &WriteBatch) -> Result<u64, S::Error> {
        let span = self.metrics.start(Op::PutBatch);
        let result = self.inner.put_batch(batch);
        let written = if result.is_ok() {
            batch.text_bytes() as u64
        } else {
            0
        };
        span.finish(outcome_of(&result, |_| Outcome::Ok), 0, written);
        result
    }

    fn delete(&mut self, id: DocId) -> Result<bool, S::Error> {
        let span = self.metrics.start(Op::Delete);
        let result = self.inner.delete(id);
        span.finish(outcome_of(&result, |&existed| exists(existed)), 0, 0);
        result
    }

    fn sync(&mut self) -> Result<(), S::Error> {
        let span = self.metrics.start(Op::Sync);
        let result = self.inner.sync();
        span.finish(outcome_of(&result, |_| Outcome::Ok), 0, 0);
        result
    }
}

fn found(doc: &Option<Doc>) -> Outcome {
    exists(doc.is_some())
}

fn exists(exists: bool) -> Outcome {
    if exists {
        Outcome::Ok
    } else {
        Outcome::NotFound
    }
}
