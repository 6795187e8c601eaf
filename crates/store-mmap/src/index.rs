//! The index: the latest record of every live document.
//!
//! Two layers: the **base**, the last checkpoint, an index file mapped and probed in place
//! (`index_file.rs`); and the **delta**, the changes since, in a hash map. A lookup asks the
//! delta first, then (while a checkpoint is being written) the frozen delta that checkpoint
//! is made of, then the base. The delta holds only what was written since the last
//! checkpoint, so the index's memory is that plus the base's mapped pages, which the kernel
//! may evict and which every process reading the store shares.
//!
//! The live counts (documents, record and text bytes, live bytes per segment) are kept
//! exact at every change and stored in each checkpoint's header and each journal frame, so
//! that an open reads them instead of counting.
//!
//! A writer that keeps the index journal (`journal.rs`) also notes which documents changed
//! since its last frame: the next frame holds their entries, so that it costs what changed.

use std::collections::HashMap;
use std::sync::Arc;

use store_format::{
    DocId, IndexEntry, JournalChange, JournalFrame, Position, SegmentLive, record_len,
};

use crate::error::Result;
use crate::index_file::MappedIndex;

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

    pub(crate) fn position(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.offset,
        }
    }

    pub(crate) fn to_file_entry(self, id: DocId) -> IndexEntry {
        IndexEntry {
            id,
            seq: self.seq,
            position: self.position(),
            text_len: self.text_len,
        }
    }
}

impl From<IndexEntry> for Entry {
    fn from(entry: IndexEntry) -> Entry {
        Entry {
            seq: entry.seq,
            segment: entry.position.segment,
            offset: entry.position.offset,
            text_len: entry.text_len,
        }
    }
}

/// Changes since a checkpoint: `None` for a document deleted since.
pub(crate) type Delta = HashMap<DocId, Option<Entry>, foldhash::fast::RandomState>;

/// Live documents by id, and the byte counts derived from them. See the module
/// documentation.
#[derive(Default)]
pub(crate) struct Index {
    base: Option<Arc<MappedIndex>>,
    /// The delta a checkpoint in progress is being written from.
    frozen: Option<Arc<Delta>>,
    delta: Delta,
    live_docs: u64,
    /// Sum of `record_len` over the live entries.
    live_record_bytes: u64,
    /// Sum of `text_len` over the live entries.
    text_bytes: u64,
    /// Sum of `record_len` over the live entries, per segment: what compaction would copy.
    segment_live_bytes: HashMap<u32, u64, foldhash::fast::RandomState>,
    /// The documents changed since the last journal frame (an id may repeat), while a
    /// writer keeps the journal.
    unjournaled: Option<Vec<DocId>>,
}

impl Index {
    /// An index whose base is `base`, with its counts.
    pub(crate) fn on(base: Arc<MappedIndex>) -> Index {
        let header = base.header();
        Index {
            live_docs: header.live_docs,
            live_record_bytes: header.live_record_bytes,
            text_bytes: header.text_bytes,
            segment_live_bytes: base
                .segments()
                .iter()
                .map(|s| (s.segment, s.live_record_bytes))
                .collect(),
            base: Some(base),
            frozen: None,
            delta: Delta::default(),
            unjournaled: None,
        }
    }

    /// Makes room for `changes` more documents in the delta at once.
    pub(crate) fn reserve_delta(&mut self, changes: usize) {
        self.delta.reserve(changes);
    }

    /// Applies a journal frame read at an open: its changes go into the delta, and its
    /// counts, exact as of its position, replace the ones held.
    pub(crate) fn apply_frame(
        &mut self,
        frame: &JournalFrame,
        segments: &[SegmentLive],
        changes: impl ExactSizeIterator<Item = JournalChange>,
    ) {
        for (id, change) in changes {
            self.delta.insert(id, change.map(Entry::from));
        }
        self.live_docs = frame.live_docs;
        self.live_record_bytes = frame.live_record_bytes;
        self.text_bytes = frame.text_bytes;
        self.segment_live_bytes = segments
            .iter()
            .map(|s| (s.segment, s.live_record_bytes))
            .collect();
    }

    /// Starts noting changes for the journal, with every change since the base as the
    /// first frame's: a writer that starts a journal file writes them all into it.
    pub(crate) fn journal_everything(&mut self) {
        let frozen = self.frozen.iter().flat_map(|frozen| frozen.keys());
        self.unjournaled = Some(frozen.chain(self.delta.keys()).copied().collect());
    }

    /// The changes since the last journal frame, each document once, and forgets them.
    /// Empty when the journal is not kept.
    pub(crate) fn take_unjournaled(&mut self) -> Vec<JournalChange> {
        let Some(ids) = self.unjournaled.as_mut() else {
            return Vec::new();
        };
        let mut ids = std::mem::take(ids);
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let change = self
                    .delta
                    .get(&id)
                    .or_else(|| self.frozen.as_ref()?.get(&id))?;
                Some((id, change.map(|entry| entry.to_file_entry(id))))
            })
            .collect()
    }

    /// The live bytes per segment, by segment id: the segment table of an index file or a
    /// journal frame.
    pub(crate) fn segment_table(&self) -> Vec<SegmentLive> {
        let mut rows: Vec<SegmentLive> = self
            .segment_live_bytes
            .iter()
            .map(|(&segment, &live_record_bytes)| SegmentLive {
                segment,
                live_record_bytes,
            })
            .collect();
        rows.sort_unstable_by_key(|row| row.segment);
        rows
    }

    fn note_change(&mut self, id: DocId) {
        if let Some(ids) = self.unjournaled.as_mut() {
            ids.push(id);
        }
    }

    /// The latest entry of `id`. Fails only when a page of the base is damaged.
    pub(crate) fn get(&self, id: DocId) -> Result<Option<Entry>> {
        if let Some(change) = self.delta.get(&id) {
            return Ok(*change);
        }
        if let Some(change) = self.frozen.as_ref().and_then(|frozen| frozen.get(&id)) {
            return Ok(*change);
        }
        match &self.base {
            Some(base) => Ok(base.find(id)?.map(Entry::from)),
            None => Ok(None),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live_docs as usize
    }

    pub(crate) fn live_record_bytes(&self) -> u64 {
        self.live_record_bytes
    }

    pub(crate) fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Heap bytes of the deltas (buckets plus control bytes), for stats.
    pub(crate) fn delta_memory_bytes(&self) -> u64 {
        let slot = (size_of::<(DocId, Option<Entry>)>() + 1) as u64;
        let frozen = self.frozen.as_ref().map_or(0, |f| f.capacity());
        (self.delta.capacity() + frozen) as u64 * slot
    }

    /// Bytes of the mapped base.
    pub(crate) fn base_bytes(&self) -> u64 {
        self.base.as_ref().map_or(0, |base| base.len_bytes())
    }

    /// Changes held in memory since the last checkpoint.
    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len() + self.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// Bytes of live records in `segment`.
    pub(crate) fn segment_live_bytes(&self, segment: u32) -> u64 {
        self.segment_live_bytes.get(&segment).copied().unwrap_or(0)
    }

    /// Records a put. Returns the entry it replaces.
    pub(crate) fn insert(&mut self, id: DocId, entry: Entry) -> Result<Option<Entry>> {
        let old = self.get(id)?;
        if let Some(old) = &old {
            self.forget(old);
        }
        self.live_docs += 1;
        self.live_record_bytes += entry.record_len();
        self.text_bytes += u64::from(entry.text_len);
        *self.segment_live_bytes.entry(entry.segment).or_default() += entry.record_len();
        self.delta.insert(id, Some(entry));
        self.note_change(id);
        Ok(old)
    }

    /// Records a delete. Returns the entry it removes.
    pub(crate) fn remove(&mut self, id: DocId) -> Result<Option<Entry>> {
        let old = self.get(id)?;
        if let Some(old) = &old {
            self.forget(old);
            self.delta.insert(id, None);
            self.note_change(id);
        }
        Ok(old)
    }

    /// Points `id` at a copy of its record, if its latest record is still version `seq`
    /// (a write since the copy was made wins). Returns whether it moved.
    pub(crate) fn relocate(&mut self, id: DocId, seq: u64, to: Position) -> Result<bool> {
        let Some(entry) = self.get(id)? else {
            return Ok(false);
        };
        if entry.seq != seq {
            return Ok(false);
        }
        let len = entry.record_len();
        self.uncount_segment(entry.segment, len);
        *self.segment_live_bytes.entry(to.segment).or_default() += len;
        self.delta.insert(
            id,
            Some(Entry {
                segment: to.segment,
                offset: to.offset,
                ..entry
            }),
        );
        self.note_change(id);
        Ok(true)
    }

    fn forget(&mut self, old: &Entry) {
        self.live_docs -= 1;
        self.live_record_bytes -= old.record_len();
        self.text_bytes -= u64::from(old.text_len);
        self.uncount_segment(old.segment, old.record_len());
    }

    fn uncount_segment(&mut self, segment: u32, len: u64) {
        if let Some(live) = self.segment_live_bytes.get_mut(&segment) {
            *live = live.saturating_sub(len);
            if *live == 0 {
                self.segment_live_bytes.remove(&segment);
            }
        }
    }

    /// Every live document and its entry: the base's pages not shadowed by a change, then
    /// the changes. A damaged page of the base ends the walk with an error.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<(DocId, Entry)>> + '_ {
        let shadowed = |id: &DocId| {
            self.delta.contains_key(id) || self.frozen.as_ref().is_some_and(|f| f.contains_key(id))
        };
        let base = self
            .base
            .iter()
            .flat_map(|base| base.entries())
            .filter_map(move |found| match found {
                Ok(entry) if shadowed(&entry.id) => None,
                Ok(entry) => Some(Ok((entry.id, Entry::from(entry)))),
                Err(err) => Some(Err(err)),
            });
        let frozen = self
            .frozen
            .iter()
            .flat_map(|frozen| frozen.iter())
            .filter(|(id, _)| !self.delta.contains_key(id))
            .filter_map(|(id, entry)| Some(Ok((*id, (*entry)?))));
        let delta = self
            .delta
            .iter()
            .filter_map(|(id, entry)| Some(Ok((*id, (*entry)?))));
        base.chain(frozen).chain(delta)
    }

    /// Freezes the changes so far for a checkpoint: from now on they are read from the
    /// returned snapshot, and new changes gather in a fresh delta. `None` while an earlier
    /// checkpoint is in progress.
    pub(crate) fn freeze(&mut self) -> Option<(Option<Arc<MappedIndex>>, Arc<Delta>)> {
        if self.frozen.is_some() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut self.delta));
        self.frozen = Some(Arc::clone(&frozen));
        Some((self.base.clone(), frozen))
    }

    /// Puts a checkpoint written from the frozen changes into effect: `base` replaces the
    /// old base and the frozen changes, which it holds. A journal kept goes on from the
    /// changes since the freeze, which the next frame, the first on top of `base`, holds.
    pub(crate) fn install(&mut self, base: Arc<MappedIndex>) {
        self.base = Some(base);
        self.frozen = None;
        if self.unjournaled.is_some() {
            self.journal_everything();
        }
    }

    /// Gives up a checkpoint: its frozen changes go back under the newer ones.
    pub(crate) fn thaw(&mut self) {
        if let Some(frozen) = self.frozen.take() {
            let newer = std::mem::take(&mut self.delta);
            self.delta = Arc::unwrap_or_clone(frozen);
            self.delta.extend(newer);
        }
    }

    /// The current base, for readers that probe it themselves.
    pub(crate) fn base(&self) -> Option<&Arc<MappedIndex>> {
        self.base.as_ref()
    }

    /// The changes since the base, oldest layer first: what a reader of the base must see
    /// on top of it.
    pub(crate) fn changes(&self) -> impl Iterator<Item = (DocId, Option<Entry>)> + '_ {
        self.frozen
            .iter()
            .flat_map(|frozen| frozen.iter())
            .chain(self.delta.iter())
            .map(|(id, entry)| (*id, *entry))
    }
}

/// The entries of a checkpoint: `base` with `changes` applied. Runs on any thread; the
/// base's pages are checked as they are read.
pub(crate) fn merged_entries<'a>(
    base: Option<&'a MappedIndex>,
    changes: &'a Delta,
) -> impl Iterator<Item = Result<IndexEntry>> + 'a {
    let kept = base
        .into_iter()
        .flat_map(|base| base.entries())
        .filter(|found| match found {
            Ok(entry) => !changes.contains_key(&entry.id),
            Err(_) => true,
        });
    let changed = changes
        .iter()
        .filter_map(|(id, entry)| Some(Ok(entry.as_ref()?.to_file_entry(*id))));
    kept.chain(changed)
}
