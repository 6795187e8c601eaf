//! Write batches: several puts and deletes committed atomically.

use crate::id::DocId;
use crate::record::{RecordKind, encode_record, record_len};

/// A sequence of puts and deletes that commits as a unit: after a crash, either every
/// operation of the batch is visible or none is.
///
/// The texts live in one buffer owned by the batch, so building a batch costs no allocation
/// per document, and [`WriteBatch::clear`] keeps the capacity for reuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<Op>,
    texts: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    id: DocId,
    kind: RecordKind,
    start: usize,
    len: usize,
}

/// One operation of a batch, as [`WriteBatch::iter`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Replace the document's text.
    Put {
        /// The document.
        id: DocId,
        /// Its new text.
        text: &'a str,
    },
    /// Delete the document.
    Delete {
        /// The document.
        id: DocId,
    },
}

impl BatchOp<'_> {
    /// The document the operation is about.
    pub fn id(&self) -> DocId {
        match *self {
            BatchOp::Put { id, .. } | BatchOp::Delete { id } => id,
        }
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a put. A later operation on the same id in the same batch wins.
    pub fn put(&mut self, id: DocId, text: &str) -> &mut WriteBatch {
        let start = self.texts.len();
        self.texts.push_str(text);
        self.ops.push(Op {
            id,
            kind: RecordKind::Put,
            start,
            len: text.len(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, id: DocId) -> &mut WriteBatch {
        self.ops.push(Op {
            id,
            kind: RecordKind::Tombstone,
            start: self.texts.len(),
            len: 0,
        });
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total bytes of text in the batch.
    pub fn text_bytes(&self) -> usize {
        self.texts.len()
    }

    /// Removes every operation and keeps the allocated capacity.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.texts.clear();
    }

    /// Appends the operations of `other`.
    pub fn extend_from(&mut self, other: &WriteBatch) {
        for op in other.iter() {
            match op {
                BatchOp::Put { id, text } => self.put(id, text),
                BatchOp::Delete { id } => self.delete(id),
            };
        }
    }

    /// The operations, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchOp<'_>> + '_ {
        self.ops.iter().map(|op| match op.kind {
            RecordKind::Put => BatchOp::Put {
                id: op.id,
                text: &self.texts[op.start..op.start + op.len],
            },
            RecordKind::Tombstone => BatchOp::Delete { id: op.id },
        })
    }

    /// Bytes the batch occupies once encoded as records.
    pub fn encoded_len(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| record_len(u32::try_from(op.len).unwrap_or(u32::MAX)))
            .sum()
    }

    /// Appends the batch to `out` as records with sequence numbers `first_seq`, `first_seq +
    /// 1`, ... When `ends_group` is true the last record carries the commit flag, which makes
    /// the records written since the previous commit flag visible to recovery as one unit.
    ///
    /// The caller has checked every text against the store's size limit, which is below
    /// `u32::MAX`.
    pub fn encode(&self, first_seq: u64, ends_group: bool, out: &mut Vec<u8>) {
        let last = self.ops.len().wrapping_sub(1);
        for (i, (op, item)) in self.ops.iter().zip(self.iter()).enumerate() {
            let payload = match item {
                BatchOp::Put { text, .. } => text.as_bytes(),
                BatchOp::Delete { .. } => &[],
            };
            let commit = ends_group && i == last;
            encode_record(out, op.kind, commit, op.id, first_seq + i as u64, payload);
        }
    }
}
