//! The index: the latest record of every live document.
//!
//! Layers: the **base**, the last checkpoint, an index file mapped and probed in place
//! (`index_file.rs`); after a crash, the **journal layer**, the changes the journal's frames
//! held, probed in place in the mapped journal (`JournalLayer`); and the **delta**, the
//! changes since, in a hash map. A lookup asks the delta first, then (while a checkpoint is
//! being written) the frozen delta that checkpoint is made of, then the journal layer, then
//! the base. The delta holds only what was written since the last
//! checkpoint, so the index's memory is that plus the base's mapped pages, which the kernel
//! may evict and which every process reading the store shares.
//!
//! The live counts (documents, record and text bytes, live bytes per segment) are kept
//! exact at every change and stored in each checkpoint's header and each journal frame, so
//! that an open reads them instead of counting.
//!
//! A writer that keeps the index journal (`journal.rs`) also notes which documents changed
//! since its last frame: the next frame holds their entries, so that it costs what changed.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use store_format::{
    DocId, IndexEntry, JOURNAL_ENTRY_LEN, JOURNAL_HEADER_LEN, JournalChange, JournalFrame,
    Position, SegmentLive, SegmentRows, decode_journal_entry, journal_entry_id, record_len,
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
    /// The changes the journal's frames held at the open, until a new base holds them.
    journal: Option<Arc<JournalLayer>>,
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
    /// The segments whose live bytes changed since the last journal frame, while a writer
    /// keeps the journal: a frame after a file's first holds only their rows.
    unjournaled_segments: BTreeSet<u32>,
    /// The journal layer's changes are due in the next frame too (the first of a new
    /// journal file after an open that took frames): that file starts with a copy of the
    /// frames that hold them (`Journal::carry`), or, when the copy failed, they are gathered
    /// in file order as the frame is written. Not at the open, where a walk of them in the
    /// table's order took about as long as indexing them.
    unjournaled_layer: bool,
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
            journal: None,
            frozen: None,
            delta: Delta::default(),
            unjournaled: None,
            unjournaled_segments: BTreeSet::new(),
            unjournaled_layer: false,
        }
    }

    /// Puts the journal's frames an open took under the delta: `layer` holds their changes,
    /// and `frame`, the last, the counts as of its position, exact.
    pub(crate) fn set_journal(
        &mut self,
        layer: Arc<JournalLayer>,
        frame: &JournalFrame,
        segments: impl IntoIterator<Item = (u32, u64)>,
    ) {
        self.journal = Some(layer);
        self.live_docs = frame.live_docs;
        self.live_record_bytes = frame.live_record_bytes;
        self.text_bytes = frame.text_bytes;
        self.segment_live_bytes = segments.into_iter().collect();
    }

    /// Starts noting changes for the journal, with every change since the base as the
    /// first frame's: a writer that starts a journal file writes them all into it.
    pub(crate) fn journal_everything(&mut self) {
        let frozen = self.frozen.iter().flat_map(|frozen| frozen.keys().copied());
        let delta = self.delta.keys().copied();
        self.unjournaled = Some(frozen.chain(delta).collect());
        self.unjournaled_layer = self.journal.is_some();
    }

    /// Whether a document changed since the last journal frame.
    pub(crate) fn has_unjournaled(&self) -> bool {
        self.unjournaled
            .as_ref()
            .is_some_and(|ids| self.unjournaled_layer || !ids.is_empty())
    }

    /// The changes since the last journal frame, each document once, and forgets them.
    /// Empty when the journal is not kept. With `layer_carried`, the journal layer's
    /// changes are left out: the frame goes into a file after a copy of the frames that
    /// hold them ([`JournalLayer::taken_frames`]).
    pub(crate) fn take_unjournaled(&mut self, layer_carried: bool) -> Vec<JournalChange> {
        let Some(ids) = self.unjournaled.as_mut() else {
            return Vec::new();
        };
        let mut ids = std::mem::take(ids);
        if std::mem::take(&mut self.unjournaled_layer)
            && !layer_carried
            && let Some(layer) = &self.journal
        {
            ids.reserve(layer.entries());
            ids.extend(layer.ids_in_file_order());
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let change = self.change(id)?;
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

    /// Makes room for `additional` more changes, so that a large commit grows the delta
    /// once rather than rehashing it at every doubling.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.delta.reserve(additional);
        if let Some(ids) = self.unjournaled.as_mut() {
            ids.reserve(additional);
        }
    }

    fn note_change(&mut self, id: DocId) {
        if let Some(ids) = self.unjournaled.as_mut() {
            ids.push(id);
        }
    }

    fn note_segment_change(&mut self, segment: u32) {
        if self.unjournaled.is_some() {
            self.unjournaled_segments.insert(segment);
        }
    }

    /// The segment rows of the next journal frame, and forgets the changes they hold: the
    /// whole table for the first frame of a file (`whole`), otherwise the rows of the
    /// segments whose live bytes changed since the last frame, 0 for one left with none.
    pub(crate) fn take_journal_rows(&mut self, whole: bool) -> (SegmentRows, Vec<SegmentLive>) {
        let changed = std::mem::take(&mut self.unjournaled_segments);
        if whole {
            return (SegmentRows::Whole, self.segment_table());
        }
        let rows = changed
            .into_iter()
            .map(|segment| SegmentLive {
                segment,
                live_record_bytes: self.segment_live_bytes(segment),
            })
            .collect();
        (SegmentRows::Changed, rows)
    }

    /// The change of `id` since the base, if it changed: `Some(None)` for a delete.
    fn change(&self, id: DocId) -> Option<Option<Entry>> {
        if let Some(change) = self.delta.get(&id) {
            return Some(*change);
        }
        if let Some(change) = self.frozen.as_ref().and_then(|frozen| frozen.get(&id)) {
            return Some(*change);
        }
        self.journal.as_ref().and_then(|layer| layer.get(id))
    }

    /// The latest entry of `id`. Fails only when a page of the base is damaged.
    pub(crate) fn get(&self, id: DocId) -> Result<Option<Entry>> {
        if let Some(change) = self.change(id) {
            return Ok(change);
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
        let journal = self.journal.as_ref().map_or(0, |l| l.memory_bytes());
        (self.delta.capacity() + frozen) as u64 * slot + journal
    }

    /// Bytes of the mapped base.
    pub(crate) fn base_bytes(&self) -> u64 {
        self.base.as_ref().map_or(0, |base| base.len_bytes())
    }

    /// Changes held in memory since the last checkpoint.
    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len()
            + self.frozen.as_ref().map_or(0, |f| f.len())
            + self.journal.as_ref().map_or(0, |l| l.len())
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
        self.count_segment(entry.segment, entry.record_len());
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
        self.count_segment(to.segment, len);
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

    fn count_segment(&mut self, segment: u32, len: u64) {
        *self.segment_live_bytes.entry(segment).or_default() += len;
        self.note_segment_change(segment);
    }

    fn uncount_segment(&mut self, segment: u32, len: u64) {
        self.note_segment_change(segment);
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
        let deltas: Vec<&Delta> = self
            .frozen
            .as_deref()
            .into_iter()
            .chain([&self.delta])
            .collect();
        layered_entries(self.base.as_deref(), self.journal.as_deref(), deltas)
    }

    /// Freezes the changes so far for a checkpoint: from now on they are read from the
    /// returned snapshot, and new changes gather in a fresh delta. `None` while an earlier
    /// checkpoint is in progress.
    pub(crate) fn freeze(&mut self) -> Option<Frozen> {
        if self.frozen.is_some() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut self.delta));
        self.frozen = Some(Arc::clone(&frozen));
        Some(Frozen {
            base: self.base.clone(),
            journal: self.journal.clone(),
            changes: frozen,
        })
    }

    /// Puts a checkpoint written from the frozen changes into effect: `base` replaces the
    /// old base and the frozen changes, which it holds. A journal kept goes on from the
    /// changes since the freeze, which the next frame, the first on top of `base`, holds.
    pub(crate) fn install(&mut self, base: Arc<MappedIndex>) {
        self.base = Some(base);
        self.journal = None;
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

    /// The frames an open took from the journal, while they are still a layer of the index
    /// (no index file replaced the one they go on top of since).
    pub(crate) fn journal_layer(&self) -> Option<&Arc<JournalLayer>> {
        self.journal.as_ref()
    }

    /// The current base, for readers that probe it themselves.
    pub(crate) fn base(&self) -> Option<&Arc<MappedIndex>> {
        self.base.as_ref()
    }

    /// Whether a page of the base's file failed a check (`rebuild.rs`).
    pub(crate) fn base_damaged(&self) -> bool {
        self.base.as_ref().is_some_and(|base| base.damage_seen())
    }

    /// The base and the journal layer over it, for readers that probe them themselves and
    /// keep the later changes ([`Index::changes`]) on their own.
    pub(crate) fn checkpointed(&self) -> Option<CheckpointedIndex> {
        Some(CheckpointedIndex {
            base: Arc::clone(self.base.as_ref()?),
            journal: self.journal.clone(),
        })
    }

    /// The changes since the base and the journal layer ([`Index::checkpointed`]), oldest
    /// layer first: what a reader of those must see on top of them.
    pub(crate) fn changes(&self) -> impl Iterator<Item = (DocId, Option<Entry>)> + '_ {
        self.frozen
            .iter()
            .flat_map(|frozen| frozen.iter())
            .chain(self.delta.iter())
            .map(|(id, entry)| (*id, *entry))
    }
}

/// Every live document of the layers `base`, `journal` and `deltas` (oldest first), each at
/// its entry in the newest layer that holds it: the base's entries no layer above changed,
/// then the journal's, then each delta's that no later delta changed. A damaged page of the
/// base ends the walk with an error.
fn layered_entries<'a>(
    base: Option<&'a MappedIndex>,
    journal: Option<&'a JournalLayer>,
    deltas: Vec<&'a Delta>,
) -> impl Iterator<Item = Result<(DocId, Entry)>> + 'a {
    // Each filter owns a copy of the list: it is one or two references.
    let in_deltas = |deltas: &[&Delta], id: &DocId| deltas.iter().any(|d| d.contains_key(id));
    let above_base = deltas.clone();
    let kept =
        base.into_iter()
            .flat_map(|base| base.entries())
            .filter_map(move |found| match found {
                Ok(entry)
                    if in_deltas(&above_base, &entry.id)
                        || journal.is_some_and(|layer| layer.get(entry.id).is_some()) =>
                {
                    None
                }
                Ok(entry) => Some(Ok((entry.id, Entry::from(entry)))),
                Err(err) => Some(Err(err)),
            });
    let above_journal = deltas.clone();
    let journaled = journal
        .into_iter()
        .flat_map(|layer| layer.iter())
        .filter(move |(id, _)| !in_deltas(&above_journal, id))
        .filter_map(|(id, entry)| Some(Ok((id, entry?))));
    let changed = (0..deltas.len()).flat_map(move |i| {
        let deltas = deltas.clone();
        let delta = deltas[i];
        delta
            .iter()
            .filter(move |(id, _)| !in_deltas(&deltas[i + 1..], id))
            .filter_map(|(id, entry)| Some(Ok((*id, (*entry)?))))
    });
    kept.chain(journaled).chain(changed)
}

/// What a checkpoint is written from: the base, the journal layer and the changes frozen
/// above them.
pub(crate) struct Frozen {
    pub(crate) base: Option<Arc<MappedIndex>>,
    pub(crate) journal: Option<Arc<JournalLayer>>,
    pub(crate) changes: Arc<Delta>,
}

impl Frozen {
    /// The entries of the checkpoint: the base with the journal layer's changes and then
    /// the frozen ones applied. Runs on any thread; the base's pages are checked as they are
    /// read.
    pub(crate) fn merged_entries(&self) -> impl Iterator<Item = Result<IndexEntry>> + '_ {
        layered_entries(
            self.base.as_deref(),
            self.journal.as_deref(),
            vec![&*self.changes],
        )
        .map(|found| found.map(|(id, entry)| entry.to_file_entry(id)))
    }
}

/// The checkpointed part of a store's index, for layers that probe it themselves: the
/// index file, and after a crash the changes of the journal's frames the open took, which
/// stay until the next index file holds them. Shares the mapping; holds no lock.
#[derive(Clone)]
pub struct CheckpointedIndex {
    pub(crate) base: Arc<MappedIndex>,
    pub(crate) journal: Option<Arc<JournalLayer>>,
}

impl CheckpointedIndex {
    /// Where the document's record was as of the checkpoint. Fails only on a damaged page of
    /// the file, naming it.
    pub fn find(&self, id: DocId) -> Result<Option<Position>> {
        if let Some(change) = self.journal.as_ref().and_then(|layer| layer.get(id)) {
            return Ok(change.map(|entry| entry.position()));
        }
        Ok(self.base.find(id)?.map(|entry| entry.position))
    }

    /// Pages of the checkpoint, each a small group of documents: the index file's pages,
    /// then the journal's changes in groups of about a hundred. What
    /// [`CheckpointedIndex::page_ids`] takes.
    pub fn page_count(&self) -> u64 {
        self.base.header().page_count() + self.journal.as_ref().map_or(0, |l| l.group_count())
    }

    /// The live documents of one page (about a hundred), its check first: for a walk of
    /// every id that holds the checkpoint, not a borrow of it. A document the journal
    /// changed is in the journal's pages, not the file's.
    pub fn page_ids(&self, page: u64) -> Result<Vec<DocId>> {
        let file_pages = self.base.header().page_count();
        match &self.journal {
            None => self.base.page_ids(page),
            Some(layer) if page < file_pages => {
                let mut ids = self.base.page_ids(page)?;
                ids.retain(|id| layer.get(*id).is_none());
                Ok(ids)
            }
            Some(layer) => Ok(layer.group_ids(page - file_pages)),
        }
    }
}

/// The changes of the frames an open took, probed in place in the mapped journal: a table of
/// 8-byte slots (twice as many as changes) holds, for each document, where its latest entry
/// lies and 32 bits of its hash. An open so costs 16 bytes a change instead of a 48-byte hash
/// map entry, whose fresh pages it would fault in one by one; a lookup that misses reads the
/// journal only when a slot's hash bits match. The engine's own changes since the open go to
/// its hash map above this layer.
pub(crate) struct JournalLayer {
    map: memmap2::Mmap,
    /// Where each frame's entries start in `map`, and how many, in file order.
    runs: Box<[(u64, usize)]>,
    /// The high 32 bits of a document's hash, and the offset in `map` of its latest entry
    /// plus one in the low 32 bits; 0 for an empty slot. Linear probing from the hash's low
    /// bits.
    slots: Box<[u64]>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl JournalLayer {
    /// A layer over `map` holding the entries of `runs` (where a frame's entries start, and
    /// how many), in the order written: a later entry of a document replaces an earlier
    /// one. `changes` counts them all.
    pub(crate) fn new(map: memmap2::Mmap, changes: usize, runs: &[(u64, usize)]) -> JournalLayer {
        let slots = (changes * 2).next_power_of_two().max(16);
        let mut layer = JournalLayer {
            map,
            runs: runs.into(),
            slots: vec![0u64; slots].into_boxed_slice(),
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
        };
        for &(first, count) in runs {
            for i in 0..count {
                let at = first as usize + i * JOURNAL_ENTRY_LEN;
                let id = journal_entry_id(&layer.map[at..at + JOURNAL_ENTRY_LEN]);
                let (slot, tag) = layer.probe(id);
                if layer.slots[slot] == 0 {
                    layer.len += 1;
                }
                let at = u64::try_from(at + 1).expect("a 64-bit target");
                debug_assert!(at <= u64::from(u32::MAX), "checked below 4 GiB");
                layer.slots[slot] = tag << 32 | at;
            }
        }
        layer
    }

    /// The slot that holds `id`, or the empty slot where it would go, and `id`'s hash bits.
    /// The table is never more than half full, so the probe ends.
    fn probe(&self, id: DocId) -> (usize, u64) {
        let mask = self.slots.len() - 1;
        let want = id.to_le_bytes();
        let hash = self.hasher.hash_one(id);
        let tag = hash >> 32;
        let mut slot = hash as usize & mask;
        loop {
            let value = self.slots[slot];
            if value == 0 {
                return (slot, tag);
            }
            let at = JournalLayer::offset(value);
            if value >> 32 == tag && self.map[at..at + 16] == want {
                return (slot, tag);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Where the entry of an occupied slot starts in the journal.
    fn offset(value: u64) -> usize {
        (value & u64::from(u32::MAX)) as usize - 1
    }

    /// The change of `id` the frames hold, if any: `Some(None)` for a delete.
    pub(crate) fn get(&self, id: DocId) -> Option<Option<Entry>> {
        let (slot, _) = self.probe(id);
        match self.slots[slot] {
            0 => None,
            value => Some(self.change_at(JournalLayer::offset(value)).1),
        }
    }

    fn change_at(&self, at: usize) -> (DocId, Option<Entry>) {
        let (id, change): JournalChange =
            decode_journal_entry(&self.map[at..at + JOURNAL_ENTRY_LEN]);
        (id, change.map(Entry::from))
    }

    /// Every document the frames changed, once, at its latest change.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (DocId, Option<Entry>)> + '_ {
        self.slots
            .iter()
            .filter(|&&value| value != 0)
            .map(|&value| self.change_at(JournalLayer::offset(value)))
    }

    /// Documents the frames changed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The frames the open took, byte for byte: from the end of the journal's header to the
    /// end of the last one taken. Frames are self-contained and name the index file they go
    /// on top of, so a new journal on the same index file may start with a copy of them.
    pub(crate) fn taken_frames(&self) -> &[u8] {
        let end = self
            .runs
            .last()
            .map_or(JOURNAL_HEADER_LEN, |&(first, count)| {
                first as usize + count * JOURNAL_ENTRY_LEN
            });
        &self.map[JOURNAL_HEADER_LEN..end]
    }

    /// Entries of the frames, a document once for each frame that changed it.
    pub(crate) fn entries(&self) -> usize {
        self.runs.iter().map(|&(_, count)| count).sum()
    }

    /// The document of every entry of the frames, in the order written: a sequential read
    /// of the journal, where [`JournalLayer::iter`] reads it in the table's order.
    pub(crate) fn ids_in_file_order(&self) -> impl Iterator<Item = DocId> + '_ {
        self.runs.iter().flat_map(move |&(first, count)| {
            (0..count).map(move |i| {
                let at = first as usize + i * JOURNAL_ENTRY_LEN;
                journal_entry_id(&self.map[at..at + JOURNAL_ENTRY_LEN])
            })
        })
    }

    /// Groups of slots [`JournalLayer::group_ids`] takes: about a hundred documents each at
    /// most, a page's worth for a walk of every id.
    pub(crate) fn group_count(&self) -> u64 {
        self.slots.len().div_ceil(Self::GROUP) as u64
    }

    /// The live documents of group `group`.
    pub(crate) fn group_ids(&self, group: u64) -> Vec<DocId> {
        let start = (group as usize)
            .saturating_mul(Self::GROUP)
            .min(self.slots.len());
        let end = (start + Self::GROUP).min(self.slots.len());
        self.slots[start..end]
            .iter()
            .filter(|&&value| value != 0)
            .map(|&value| self.change_at(JournalLayer::offset(value)))
            .filter_map(|(id, entry)| entry.map(|_| id))
            .collect()
    }

    /// Slots per group: the table is at most half full, so about a hundred documents.
    const GROUP: usize = 204;

    /// Heap bytes of the table (the mapped journal is the page cache's).
    pub(crate) fn memory_bytes(&self) -> u64 {
        (self.slots.len() * size_of::<u64>()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_delta_takes_a_commit_without_growing() {
        let mut index = Index::default();
        index.reserve(5000);
        let capacity = index.delta.capacity();
        assert!(capacity >= 5000);
        for k in 0..5000u32 {
            let entry = Entry {
                seq: u64::from(k) + 1,
                segment: 1,
                offset: 64 * k,
                text_len: 10,
            };
            index.insert(DocId::from(u64::from(k)), entry).unwrap();
        }
        assert_eq!(index.delta.capacity(), capacity);
        assert_eq!(index.len(), 5000);
        assert_eq!(
            index.get(DocId::from(4999u64)).unwrap().unwrap().offset,
            64 * 4999
        );
    }
}
