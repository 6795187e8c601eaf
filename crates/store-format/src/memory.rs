//! `MemoryStore`: the traits over a `BTreeMap`, for tests of the layers above a store and
//! for programs that want the interface without files.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::{BatchOp, WriteBatch};
use crate::id::DocId;
use crate::kind::{ErrorKind, StoreError};
use crate::range::{RangeError, TextRange};
use crate::text::{Doc, DocMeta, Text};
use crate::traits::{DocRead, DocWrite, Offer, Prefetch, Ready, Residency};

/// A store held in memory: every read and write of the traits, applied at once under a
/// mutex, every document resident. Writes are durable when their ticket is made (there is
/// no disk). It counts the reads that reach it, so a test can see what a layer above served
/// itself, and it can be told to fail, so a test can see how a layer above handles errors.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    reads: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    docs: BTreeMap<DocId, Doc>,
    last_seq: u64,
    closed: bool,
    /// Every call fails with this kind while it is set.
    failing: Option<ErrorKind>,
}

/// An error of [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// An extraction asked for a document that does not exist.
    #[error("document {id} not found")]
    NotFound {
        /// The document.
        id: DocId,
    },
    /// An extraction asked for a range the document does not have.
    #[error("document {id}: the range does not fit its text")]
    Range {
        /// The document.
        id: DocId,
        /// What is wrong with the range.
        #[source]
        source: RangeError,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// [`MemoryStore::fail_with`] asked every call to fail.
    #[error("a failure of kind {kind} was asked for")]
    Injected {
        /// The kind asked for.
        kind: ErrorKind,
    },
}

impl StoreError for MemoryError {
    fn kind(&self) -> ErrorKind {
        match self {
            MemoryError::NotFound { .. } => ErrorKind::NotFound,
            MemoryError::Range { .. } => ErrorKind::InvalidInput,
            MemoryError::Closed => ErrorKind::Closed,
            MemoryError::Injected { kind } => *kind,
        }
    }
}

type Result<T> = std::result::Result<T, MemoryError>;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Reads ([`DocRead::get`], [`DocRead::extract`], [`DocRead::read_into`] and their
    /// resident forms) that reached this store.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Makes every later call fail with an error of `kind`, until called with `None`.
    pub fn fail_with(&self, kind: Option<ErrorKind>) {
        self.state().failing = kind;
    }

    /// Live documents.
    pub fn len(&self) -> usize {
        self.state().docs.len()
    }

    /// Whether there is no live document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic under this lock leaves the map whole: every change is one insert or remove.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, for a call that may go on: fails when the store is closed or told to fail.
    fn usable(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        let state = self.state();
        if let Some(kind) = state.failing {
            return Err(MemoryError::Injected { kind });
        }
        if state.closed {
            return Err(MemoryError::Closed);
        }
        Ok(state)
    }

    fn read(&self, id: DocId) -> Result<Option<Doc>> {
        let state = self.usable()?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(state.docs.get(&id).cloned())
    }

    fn apply(&self, ops: &[BatchOp<'_>]) -> Result<(u64, bool)> {
        let mut state = self.usable()?;
        let mut existed = false;
        for op in ops {
            state.last_seq += 1;
            let seq = state.last_seq;
            match *op {
                BatchOp::Put { id, text } => {
                    state.docs.insert(id, Doc::new(seq, Text::from(text)));
                }
                BatchOp::Delete { id } => existed = state.docs.remove(&id).is_some(),
            }
        }
        Ok((state.last_seq, existed))
    }
}

impl DocRead for MemoryStore {
    type Error = MemoryError;

    fn get(&self, id: DocId) -> Result<Option<Doc>> {
        self.read(id)
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>> {
        let state = self.usable()?;
        Ok(state.docs.get(&id).map(|doc| DocMeta {
            seq: doc.seq(),
            text_len: doc.len() as u64,
        }))
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        let doc = self.read(id)?.ok_or(MemoryError::NotFound { id })?;
        doc.text()
            .extract(range)
            .map_err(|source| MemoryError::Range { id, source })
    }
}

/// Everything is in memory already: there is nothing to bring in.
impl Prefetch for MemoryStore {
    fn prefetch(&self, _ids: &[DocId]) -> Result<()> {
        self.usable().map(drop)
    }
}

/// Everything is in memory: every read is resident.
impl Residency for MemoryStore {
    fn get_if_resident(&self, id: DocId) -> Result<Option<Option<Doc>>> {
        self.read(id).map(Some)
    }

    fn refresh_residency(&self) -> Result<()> {
        self.usable().map(drop)
    }

    fn note_resident(&self, _id: DocId) {}
}

impl DocWrite for MemoryStore {
    type Ticket<T: Send + 'static> = Ready<T, MemoryError>;

    fn put(&self, id: DocId, text: impl Into<Text>) -> Result<Ready<u64, MemoryError>> {
        let text = text.into();
        let (seq, _) = self.apply(&[BatchOp::Put { id, text: &text }])?;
        Ok(Ready::new(Ok(seq)))
    }

    fn put_batch(&self, batch: WriteBatch) -> Result<Ready<u64, MemoryError>> {
        let ops: Vec<BatchOp<'_>> = batch.iter().collect();
        let (seq, _) = self.apply(&ops)?;
        Ok(Ready::new(Ok(seq)))
    }

    fn delete(&self, id: DocId) -> Result<Ready<Option<u64>, MemoryError>> {
        let (seq, existed) = self.apply(&[BatchOp::Delete { id }])?;
        Ok(Ready::new(Ok(existed.then_some(seq))))
    }

    fn offer_put(&self, id: DocId, text: Text) -> Result<Offer<Ready<u64, MemoryError>, Text>> {
        self.put(id, text).map(Offer::Queued)
    }

    fn offer_batch(&self, batch: WriteBatch) -> Result<Offer<Ready<u64, MemoryError>, WriteBatch>> {
        self.put_batch(batch).map(Offer::Queued)
    }

    fn offer_delete(&self, id: DocId) -> Result<Offer<Ready<Option<u64>, MemoryError>, DocId>> {
        self.delete(id).map(Offer::Queued)
    }

    fn sync(&self) -> Result<()> {
        self.usable().map(drop)
    }

    fn close(&self) -> Result<()> {
        self.usable()?.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::WriteTicket;

    #[test]
    fn writes_read_back_and_versions_grow() {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        let a = DocId::from(1u64);
        let first = store.put(a, "one two").unwrap().wait().unwrap();
        let second = store.put(a, "three").unwrap().wait().unwrap();
        assert!(second > first);
        assert_eq!(store.get(a).unwrap().unwrap().text(), "three");
        assert_eq!(store.meta(a).unwrap().unwrap().seq, second);
        let mut batch = WriteBatch::new();
        batch.put(DocId::from(2u64), "b");
        batch.delete(a);
        store.put_batch(batch).unwrap().wait().unwrap();
        assert!(!store.contains(a).unwrap());
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
        assert_eq!(store.delete(a).unwrap().wait().unwrap(), None);
        assert_eq!(
            store
                .extract(DocId::from(2u64), TextRange::bytes(0..1))
                .unwrap(),
            "b"
        );
        assert_eq!(
            store.extract(a, TextRange::bytes(0..1)).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(store.reads(), 3);
    }

    #[test]
    fn injected_failures_and_close_say_their_kind() {
        let store = MemoryStore::new();
        store.fail_with(Some(ErrorKind::Corrupt));
        let err = store.get(DocId::from(1u64)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        store.fail_with(None);
        store.close().unwrap();
        let err = store.put(DocId::from(1u64), "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
    }
}
