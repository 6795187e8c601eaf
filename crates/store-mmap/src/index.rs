//! The in-memory index: the latest record of every live document.

use std::collections::HashMap;

use store_format::{DocId, IndexEntry, Position, record_len};

/// Where the latest record of a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) segment: u32,
    pub(crate) offset: u32,
    pub(crate) text_len: u32,
}

impl Entry {
    pub(crate) fn record_len(&self) -> u64 {
        record_len(self.text_len)
    }
}

/// Live documents by id, and the byte counts derived from them.
///
/// Lookups are one hash probe, whatever the number of documents. The hasher is foldhash with
/// a per-process random seed: fast on 16-byte keys, and sequential ids do not cluster.
#[derive(Default)]
pub(crate) struct Index {
    map: HashMap<DocId, Entry, foldhash::fast::RandomState>,
    /// Sum of `record_len` over the live entries.
    live_record_bytes: u64,
    /// Sum of `text_len` over the live entries.
    text_bytes: u64,
    /// Sum of `record_len` over the live entries, per segment: what compaction would copy.
    segment_live_bytes: HashMap<u32, u64, foldhash::fast::RandomState>,
}

impl Index {
    pub(crate) fn with_capacity(capacity: usize) -> Index {
        Index {
            map: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            ..Index::default()
        }
    }

    pub(crate) fn get(&self, id: DocId) -> Option<&Entry> {
        self.map.get(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn live_record_bytes(&self) -> u64 {
        self.live_record_bytes
    }

    pub(crate) fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Heap bytes the table occupies (buckets plus control bytes), for stats.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let slot = size_of::<(DocId, Entry)>() + 1;
        (self.map.capacity() * slot) as u64
    }

    /// Bytes of live records in `segment`.
    pub(crate) fn segment_live_bytes(&self, segment: u32) -> u64 {
        self.segment_live_bytes.get(&segment).copied().unwrap_or(0)
    }

    /// Records a put. Returns the entry it replaces.
    pub(crate) fn insert(&mut self, id: DocId, entry: Entry) -> Option<Entry> {
        self.live_record_bytes += entry.record_len();
        self.text_bytes += u64::from(entry.text_len);
        *self.segment_live_bytes.entry(entry.segment).or_default() += entry.record_len();
        let old = self.map.insert(id, entry);
        if let Some(old) = &old {
            self.forget(old);
        }
        old
    }

    /// Records a delete. Returns the entry it removes.
    pub(crate) fn remove(&mut self, id: DocId) -> Option<Entry> {
        let old = self.map.remove(&id);
        if let Some(old) = &old {
            self.forget(old);
        }
        old
    }

    /// Points `id` at a copy of its record, if its latest record is still version `seq`
    /// (a write since the copy was made wins). Returns whether it moved.
    pub(crate) fn relocate(&mut self, id: DocId, seq: u64, segment: u32, offset: u32) -> bool {
        let Some(entry) = self.map.get_mut(&id) else {
            return false;
        };
        if entry.seq != seq {
            return false;
        }
        let len = entry.record_len();
        let old_segment = std::mem::replace(&mut entry.segment, segment);
        entry.offset = offset;
        self.uncount_segment(old_segment, len);
        *self.segment_live_bytes.entry(segment).or_default() += len;
        true
    }

    fn forget(&mut self, old: &Entry) {
        self.live_record_bytes -= old.record_len();
        self.text_bytes -= u64::from(old.text_len);
        self.uncount_segment(old.segment, old.record_len());
    }

    fn uncount_segment(&mut self, segment: u32, len: u64) {
        if let Some(live) = self.segment_live_bytes.get_mut(&segment) {
            *live -= len;
            if *live == 0 {
                self.segment_live_bytes.remove(&segment);
            }
        }
    }

    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = DocId> + '_ {
        self.map.keys().copied()
    }

    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = (DocId, &Entry)> + '_ {
        self.map.iter().map(|(id, entry)| (*id, entry))
    }

    /// The entries in the index file's form.
    pub(crate) fn to_file_entries(&self) -> impl ExactSizeIterator<Item = IndexEntry> + '_ {
        self.map.iter().map(|(id, e)| IndexEntry {
            id: *id,
            seq: e.seq,
            position: Position {
                segment: e.segment,
                offset: e.offset,
            },
            text_len: e.text_len,
        })
    }
}
