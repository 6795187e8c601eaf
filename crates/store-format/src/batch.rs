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
    /// Bytes the operation occupies once encoded as a record.
    pub fn encoded_len(&self) -> u64 {
        match self {
            BatchOp::Put { text, .. } => record_len(u32::try_from(text.len()).unwrap_or(u32::MAX)),
            BatchOp::Delete { .. } => record_len(0),
        }
    }

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

    /// An empty batch with room for `ops` operations and `text_bytes` bytes of text, so that
    /// filling it up to there allocates nothing more.
    pub fn with_capacity(ops: usize, text_bytes: usize) -> WriteBatch {
        WriteBatch {
            ops: Vec::with_capacity(ops),
            texts: String::with_capacity(text_bytes),
        }
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

    /// Heap bytes the batch holds allocated, used or not: what keeping it for reuse costs.
    pub fn capacity_bytes(&self) -> usize {
        self.texts.capacity() + self.ops.capacity() * size_of::<Op>()
    }

    /// Removes every operation and keeps the allocated capacity.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.texts.clear();
    }

    /// The operations, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchOp<'_>> + Clone + '_ {
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
        self.iter().map(|op| op.encoded_len()).sum()
    }

    /// Appends the batch to `out` as records; see [`encode_ops`].
    pub fn encode(&self, first_seq: u64, out: &mut Vec<u8>, commit_group_from: Option<usize>) {
        encode_ops(self.iter(), first_seq, out, commit_group_from);
    }
}

/// Appends `ops` to `out` as records with sequence numbers `first_seq`, `first_seq + 1`, ...
///
/// With `commit_group_from: Some(start)`, the last record ends a commit group that began at
/// `out[start..]` (earlier operations of the same group may already be encoded there): it
/// carries the commit flag and the group's length, which makes the group visible to recovery
/// as one unit. With `None` the group stays open for more records.
///
/// The caller has checked every text against the store's size limit, which is below
/// `u32::MAX`, and keeps a group within one segment, so its length fits in 32 bits.
pub fn encode_ops<'a, I>(
    ops: I,
    first_seq: u64,
    out: &mut Vec<u8>,
    commit_group_from: Option<usize>,
) where
    I: Iterator<Item = BatchOp<'a>> + Clone,
{
    let commit_group_len = commit_group_from.map(|start| {
        let before = (out.len() - start) as u64;
        let group = before + ops.clone().map(|op| op.encoded_len()).sum::<u64>();
        u32::try_from(group).expect("a commit group fits in one segment")
    });
    let mut ops = ops.enumerate().peekable();
    while let Some((i, op)) = ops.next() {
        let (kind, id, payload) = match op {
            BatchOp::Put { id, text } => (RecordKind::Put, id, text.as_bytes()),
            BatchOp::Delete { id } => (RecordKind::Tombstone, id, &[][..]),
        };
        let group_len = if ops.peek().is_none() {
            commit_group_len
        } else {
            None
        };
        encode_record(out, kind, id, first_seq + i as u64, payload, group_len);
    }
}
