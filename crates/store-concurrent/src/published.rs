//! The state readers see, and the order in which the writer publishes it.
//!
//! Readers find a document in three steps: the segment list, the index (the location table
//! of the changes since the engine's checkpoint, then the checkpoint itself), then the
//! record's bytes in that segment's mapping, bounded by the segment's committed end, which
//! the segment's view carries and only the engine moves. The writer publishes a commit in
//! the opposite order:
//!
//! 1. the record bytes are written (and synced) by the engine;
//! 2. the engine moves each segment's committed end past the commit (`Release`, in the
//!    segment's view), once every part of the commit is written;
//! 3. a segment the commit rolled to is added to the segment list (an [`AtomicArc`] store);
//! 4. the location table points the commit's ids at their records (`Release`, see
//!    [`crate::table`]);
//! 5. `last_seq` and the document count move (`Release` / `Relaxed`).
//!
//! A reader that finds a position in step 4 acquired everything before it, so the end its
//! segment's view loads covers the record, and the bytes are complete: a reader never sees
//! an entry before its bytes. (The view's own `Acquire` load makes the same promise to a
//! reader that reached the view another way.) A reader loads the segment list *before* the table. A position it finds names
//! either a segment in that list, or a segment added after the list was loaded, in which
//! case one reload finds it. Retiring a segment (compaction) happens only after no table
//! entry points into it; a reader that loaded the list before the retirement still holds the
//! segment through the list, so its mapping stays alive for as long as the read needs it.
//!
//! The table and the checkpoint it sits on are published together, as one [`Layers`]: a new
//! checkpoint (the engine wrote one) comes with a new table holding the changes since it,
//! so a reader sees either the old pair or the new one, each of which places every
//! document. A checkpoint is an immutable mapped file, so it needs no ordering of its own.
//!
//! A compaction's install (outputs added, entries moved, inputs retired) and a read-only
//! handle's reload are *replacements*: the writer counts one up before it and one up after
//! it, so the count is odd meanwhile. A bulk reader (a scan, a change feed) that needs a
//! list holding each record once loads the count, the list, and the count again, and keeps
//! the list only if both counts are the same even number: the list is then from before or
//! after every replacement, never from the middle of one, where a record and its copy are
//! both listed. The change floor is stored before the count goes even again, so a reader
//! that keeps a list from after a compaction sees the floor that compaction set.
//!
//! `docs/CONCURRENCY.md` gives the whole protocol; `loom_models` checks it.

use store_mmap::{DocId, Position};

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, AtomicArc, StdArc};
use crate::table::{LocationTable, Lookup};

/// One segment as readers see it: the engine's view of it, which carries how far it is
/// committed.
pub(crate) struct SegmentSlot<S> {
    id: u32,
    segment: S,
}

/// The segments readers may reach, sorted by id. Replaced whole when one is added or retired.
pub(crate) struct SegmentList<S> {
    slots: Vec<Arc<SegmentSlot<S>>>,
}

impl<S> SegmentList<S> {
    fn find(&self, id: u32) -> Option<&Arc<SegmentSlot<S>>> {
        self.slots
            .binary_search_by_key(&id, |slot| slot.id)
            .ok()
            .map(|i| &self.slots[i])
    }
}

/// The checkpointed part of the index, as readers probe it: the engine's mapped index file,
/// or a model of it in tests.
pub(crate) trait Checkpointed: Send + Sync {
    /// Where the document's record was as of the checkpoint.
    fn find(&self, id: DocId) -> store_mmap::Result<Option<Position>>;
    /// Pages of the checkpoint, each a small group of documents.
    fn page_count(&self) -> u64;
    /// The documents of page `page`.
    fn page_ids(&self, page: u64) -> store_mmap::Result<Vec<DocId>>;
}

impl Checkpointed for store_mmap::CheckpointedIndex {
    fn find(&self, id: DocId) -> store_mmap::Result<Option<Position>> {
        store_mmap::CheckpointedIndex::find(self, id)
    }

    fn page_count(&self) -> u64 {
        store_mmap::CheckpointedIndex::page_count(self)
    }

    fn page_ids(&self, page: u64) -> store_mmap::Result<Vec<DocId>> {
        store_mmap::CheckpointedIndex::page_ids(self, page)
    }
}

/// A checkpoint and the table of the changes since it, published together.
pub(crate) struct Layers {
    table: LocationTable,
    checkpoint: Option<StdArc<dyn Checkpointed>>,
}

impl Layers {
    fn position(&self, id: DocId) -> store_mmap::Result<Option<Position>> {
        match self.table.get(id) {
            Lookup::Live(position) => Ok(Some(position)),
            Lookup::Deleted => Ok(None),
            Lookup::Unchanged => match &self.checkpoint {
                Some(checkpoint) => checkpoint.find(id),
                None => Ok(None),
            },
        }
    }
}

/// What a reader's lookup found.
#[derive(Debug)]
pub(crate) enum Found<R> {
    /// No such document, or it is deleted.
    Absent,
    /// What the read callback returned.
    Read(R),
    /// The table names a segment that the segment list does not hold: a broken invariant,
    /// reported instead of a panic.
    MissingSegment(Position),
    /// The checkpoint could not be read (a damaged page of the index file).
    Failed(store_mmap::Error),
}

/// State shared by the writer thread and every reader.
pub(crate) struct Published<S> {
    segments: AtomicArc<SegmentList<S>>,
    layers: AtomicArc<Layers>,
    last_seq: AtomicU64,
    live_docs: AtomicU64,
    /// Segments retired so far: the placement epoch of `DocRead`.
    retired: AtomicU64,
    /// Replacements of segments begun and ended: odd while one is under way.
    replacing: AtomicU64,
    /// The engine's change floor (see `Store::change_floor`).
    change_floor: AtomicU64,
}

impl<S> Published<S> {
    /// Looks `id` up and, if it is live, calls `read(segment, offset)` while the segment is
    /// held. The segment's committed end bounds every byte the read may touch.
    pub(crate) fn read<R>(&self, id: DocId, read: impl FnOnce(&S, u32) -> R) -> Found<R> {
        // The list first, then the table: see the module documentation.
        let segments = self.segments.load();
        let position = match self.layers.load().position(id) {
            Ok(Some(position)) => position,
            Ok(None) => return Found::Absent,
            Err(err) => return Found::Failed(err),
        };
        let read_in = |slot: &SegmentSlot<S>| Found::Read(read(&slot.segment, position.offset));
        if let Some(slot) = segments.find(position.segment) {
            return read_in(slot);
        }
        // The commit that wrote the record rolled to a segment added after our load.
        match self.segments.load().find(position.segment) {
            Some(slot) => read_in(slot),
            None => Found::MissingSegment(position),
        }
    }

    /// Segments retired so far. A reader that loads a count (`Acquire`) and then looks
    /// documents up finds them where they were moved before that retirement, never in the
    /// retired segment.
    pub(crate) fn retired(&self) -> u64 {
        self.retired.load(Ordering::Acquire)
    }

    /// Calls `visit(segment)` for every segment in the list, oldest first.
    pub(crate) fn for_each_segment(&self, mut visit: impl FnMut(&S)) {
        let segments = self.segments.load();
        for slot in &segments.slots {
            visit(&slot.segment);
        }
    }

    /// The segments, as of a moment outside every replacement: each record in one of them
    /// at most once (see the module documentation).
    pub(crate) fn stable_segments(&self) -> Vec<S>
    where
        S: Clone,
    {
        loop {
            let before = self.replacing.load(Ordering::Acquire);
            if before.is_multiple_of(2) {
                let segments = self.segments.load();
                // Acquire on the list: a list stored inside a replacement carries the odd
                // count stored before it, so this load sees that count or a later one.
                if self.replacing.load(Ordering::Acquire) == before {
                    return segments
                        .slots
                        .iter()
                        .map(|slot| slot.segment.clone())
                        .collect();
                }
            }
            crate::sync::thread::yield_now();
        }
    }

    /// The change floor as of the last replacement that ended.
    pub(crate) fn change_floor(&self) -> u64 {
        self.change_floor.load(Ordering::Acquire)
    }

    /// Sequence number of the latest published commit.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Number of live documents as of the latest published commit.
    pub(crate) fn live_docs(&self) -> u64 {
        self.live_docs.load(Ordering::Relaxed)
    }

    /// Heap bytes of the current location table.
    pub(crate) fn table_memory_bytes(&self) -> usize {
        self.layers.load().table.memory_bytes()
    }

    /// The live documents as published now, lazily: the checkpoint's that the table does
    /// not mark changed, then the table's live ones.
    pub(crate) fn ids(&self) -> Ids {
        Ids {
            layers: Arc::clone(&*self.layers.load()),
            page: 0,
            pending: Vec::new().into_iter(),
            slot: 0,
        }
    }
}

/// Every live document of one published checkpoint and its table of changes, read a page
/// of the checkpoint at a time: the walk holds that pair, which stays valid whatever the
/// writer publishes next.
pub struct Ids {
    layers: Arc<Layers>,
    /// The next page of the checkpoint to read.
    page: u64,
    /// The rest of the page read last.
    pending: std::vec::IntoIter<DocId>,
    /// The next slot of the table, once the checkpoint is done.
    slot: usize,
}

impl Iterator for Ids {
    type Item = store_mmap::Result<DocId>;

    fn next(&mut self) -> Option<Self::Item> {
        let layers = &*self.layers;
        loop {
            if let Some(id) = self.pending.next() {
                if layers.table.get(id) == Lookup::Unchanged {
                    return Some(Ok(id));
                }
                continue;
            }
            match &layers.checkpoint {
                Some(checkpoint) if self.page < checkpoint.page_count() => {
                    let page = self.page;
                    self.page += 1;
                    match checkpoint.page_ids(page) {
                        Ok(ids) => self.pending = ids.into_iter(),
                        Err(err) => {
                            // A damaged page ends the checkpoint's part of the walk.
                            self.page = u64::MAX;
                            return Some(Err(err));
                        }
                    }
                }
                _ => break,
            }
        }
        while self.slot < layers.table.slot_count() {
            let slot = self.slot;
            self.slot += 1;
            if let Some((id, Some(_))) = layers.table.entry_at(slot) {
                return Some(Ok(id));
            }
        }
        None
    }
}

/// The writer thread's side of [`Published`]: the only code that stores into it.
pub(crate) struct Publisher<S> {
    shared: Arc<Published<S>>,
    /// Claimed slots (live or deleted) of the current table.
    claimed: usize,
}

impl<S> Publisher<S> {
    /// Publishes a first state: `segments` (id, segment) in ascending id order, the
    /// engine's checkpoint, the documents changed since it (a position, or `None` for a
    /// deletion), and the number of live documents.
    pub(crate) fn new(
        segments: impl IntoIterator<Item = (u32, S)>,
        checkpoint: Option<StdArc<dyn Checkpointed>>,
        changes: impl Iterator<Item = (DocId, Option<Position>)>,
        last_seq: u64,
        live_docs: u64,
        change_floor: u64,
    ) -> Publisher<S> {
        let slots: Vec<_> = segments
            .into_iter()
            .map(|(id, segment)| Arc::new(SegmentSlot { id, segment }))
            .collect();
        debug_assert!(slots.windows(2).all(|w| w[0].id < w[1].id));
        let (layers, claimed) = Layers::of(checkpoint, changes);
        let shared = Arc::new(Published {
            segments: AtomicArc::new(Arc::new(SegmentList { slots })),
            layers: AtomicArc::new(Arc::new(layers)),
            last_seq: AtomicU64::new(last_seq),
            live_docs: AtomicU64::new(live_docs),
            retired: AtomicU64::new(0),
            replacing: AtomicU64::new(0),
            change_floor: AtomicU64::new(change_floor),
        });
        Publisher { shared, claimed }
    }

    /// Publishes a checkpoint of the engine with the changes since it, in place of the old
    /// checkpoint and its table. Readers that loaded the old pair keep using it; it
    /// places every document too.
    pub(crate) fn install_index(
        &mut self,
        checkpoint: Option<StdArc<dyn Checkpointed>>,
        changes: impl Iterator<Item = (DocId, Option<Position>)>,
    ) {
        let (layers, claimed) = Layers::of(checkpoint, changes);
        self.claimed = claimed;
        self.shared.layers.store(Arc::new(layers));
    }

    /// The state to hand to readers.
    pub(crate) fn shared(&self) -> &Arc<Published<S>> {
        &self.shared
    }

    /// Step 3: makes a new segment reachable: one the writer rolled to (above every id in
    /// the list) or a compaction's output (below the segment receiving writes).
    pub(crate) fn add_segment(&self, id: u32, segment: S) {
        let current = self.shared.segments.load();
        let at = match current.slots.binary_search_by_key(&id, |slot| slot.id) {
            Ok(_) => unreachable!("segment {id} is added once"),
            Err(at) => at,
        };
        let mut slots = current.slots.clone();
        slots.insert(at, Arc::new(SegmentSlot { id, segment }));
        self.shared.segments.store(Arc::new(SegmentList { slots }));
    }

    /// Removes a segment no table entry points into any more. Readers that loaded the list
    /// before keep it alive until they drop their guard; the segment is dropped after that.
    pub(crate) fn retire_segment(&self, id: u32) {
        let current = self.shared.segments.load();
        let slots = current
            .slots
            .iter()
            .filter(|slot| slot.id != id)
            .cloned()
            .collect();
        self.shared.segments.store(Arc::new(SegmentList { slots }));
        // Release: every table entry was moved out of the segment before this, so a reader
        // that acquires the new count finds the moved positions.
        self.shared.retired.fetch_add(1, Ordering::Release);
    }

    /// Begins a replacement of segments: until [`Publisher::end_replacement`], bulk readers
    /// wait rather than take the list.
    pub(crate) fn begin_replacement(&self) {
        // Relaxed: every list stored from here on is a Release store sequenced after it.
        self.shared.replacing.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends a replacement, with the engine's change floor after it.
    pub(crate) fn end_replacement(&self, change_floor: u64) {
        self.shared
            .change_floor
            .store(change_floor, Ordering::Relaxed);
        // Release: a reader that acquires the even count sees the floor and the lists.
        self.shared.replacing.fetch_add(1, Ordering::Release);
    }

    /// The ids of the segments in the list.
    pub(crate) fn segment_ids(&self) -> Vec<u32> {
        self.shared
            .segments
            .load()
            .slots
            .iter()
            .map(|slot| slot.id)
            .collect()
    }

    /// Whether the list holds segment `id`.
    pub(crate) fn has_segment(&self, id: u32) -> bool {
        self.shared.segments.load().find(id).is_some()
    }

    /// Step 4: `id` now lives at `position`, or is deleted (`None`).
    pub(crate) fn set(&mut self, id: DocId, position: Option<Position>) {
        let layers = self.shared.layers.load();
        let layers = if self.claimed >= layers.table.claim_limit() {
            self.rebuild(&layers, self.claimed + 1)
        } else {
            Arc::clone(&layers)
        };
        let outcome = layers.table.set(id, position);
        self.claimed += usize::from(outcome.claimed);
    }

    /// Makes room for `additional` more documents before they are set, so that a commit
    /// of many new documents rebuilds the table once rather than at every doubling. The
    /// count takes every document of the commit as new: a commit that rewrites documents
    /// the table holds may rebuild it once sooner than it needed, never more often.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let docs = self.claimed.saturating_add(additional);
        let layers = self.shared.layers.load();
        if docs > layers.table.claim_limit() {
            self.rebuild(&layers, docs);
        }
    }

    /// Copies every entry (deletions included: they hide the checkpoint's) into a table
    /// at least twice as large that takes `claims` claims, and swaps it in, on the same
    /// checkpoint. Readers keep using the old table until their next lookup; it holds the
    /// same or older positions, all of which are valid.
    fn rebuild(&mut self, old: &Layers, claims: usize) -> Arc<Layers> {
        let table = old.table.grown_for(claims);
        for (id, position) in old.table.entries() {
            table.set(id, position);
        }
        let layers = Arc::new(Layers {
            table,
            checkpoint: old.checkpoint.clone(),
        });
        self.shared.layers.store(Arc::clone(&layers));
        layers
    }

    /// Step 5: everything up to `last_seq` is published, and `live_docs` documents live.
    pub(crate) fn finish(&self, last_seq: u64, live_docs: u64) {
        self.shared.live_docs.store(live_docs, Ordering::Relaxed);
        self.shared.last_seq.store(last_seq, Ordering::Release);
    }
}

impl Layers {
    /// A checkpoint and a table of `changes`; returns the table's claimed slots too.
    fn of(
        checkpoint: Option<StdArc<dyn Checkpointed>>,
        changes: impl Iterator<Item = (DocId, Option<Position>)>,
    ) -> (Layers, usize) {
        // The engine's changes tell their number (a bound: an id may be in both of its
        // layers), which sizes the table without a copy of them; an iterator that does not
        // is counted first.
        let (table, claimed) = match changes.size_hint() {
            (_, Some(most)) => Layers::table_of(most, changes),
            _ => {
                let changes: Vec<_> = changes.collect();
                Layers::table_of(changes.len(), changes.into_iter())
            }
        };
        (Layers { table, checkpoint }, claimed)
    }

    /// A table for at most `most` documents, holding `changes`; returns it and its claimed
    /// slots.
    fn table_of(
        most: usize,
        changes: impl Iterator<Item = (DocId, Option<Position>)>,
    ) -> (LocationTable, usize) {
        let table = LocationTable::for_docs(most);
        let mut claimed = 0;
        for (id, position) in changes {
            claimed += usize::from(table.set(id, position).claimed);
        }
        debug_assert!(claimed <= most, "an iterator's upper bound was wrong");
        (table, claimed)
    }
}

#[cfg(all(test, not(textstore_loom)))]
mod tests {
    use super::*;

    fn publisher() -> Publisher<()> {
        Publisher::new(std::iter::empty(), None, std::iter::empty(), 0, 0, 0)
    }

    fn table_of(publisher: &Publisher<()>) -> *const Layers {
        Arc::as_ptr(&publisher.shared.layers.load())
    }

    fn place(publisher: &mut Publisher<()>, docs: u64) {
        for k in 0..docs {
            let at = Position {
                segment: 1,
                offset: 64 * k as u32,
            };
            publisher.set(DocId::from(k), Some(at));
        }
    }

    #[test]
    fn a_reserved_table_takes_the_documents_without_another_rebuild() {
        let mut reserved = publisher();
        reserved.reserve(1000);
        let table = table_of(&reserved);
        place(&mut reserved, 1000);
        assert_eq!(
            table_of(&reserved),
            table,
            "the table was rebuilt after reserve"
        );
        let layers = reserved.shared.layers.load();
        for k in 0..1000u64 {
            let at = layers.position(DocId::from(k)).unwrap().unwrap();
            assert_eq!(at.offset, 64 * k as u32);
        }

        // Without the reservation the same documents rebuild the table as it fills.
        let mut unreserved = publisher();
        let table = table_of(&unreserved);
        place(&mut unreserved, 1000);
        assert_ne!(table_of(&unreserved), table);

        // A reservation the table already takes leaves it as it is.
        let mut roomy = publisher();
        let table = table_of(&roomy);
        let room = roomy.shared.layers.load().table.claim_limit();
        roomy.reserve(room);
        assert_eq!(table_of(&roomy), table, "a table with room was rebuilt");
    }

    /// The table of a first state, or of a new checkpoint, counts the changes it was given
    /// as claimed: the writer rebuilds it before the documents set after them fill it (a
    /// full table would leave a probe for a new id with no empty slot to stop at).
    #[test]
    fn the_changes_a_table_starts_with_count_against_its_room() {
        let at = |k: u64| Position {
            segment: 1,
            offset: 64 * k as u32,
        };
        let changes = |ids: std::ops::Range<u64>| {
            ids.map(move |k| (DocId::from(k), (k % 5 != 0).then(|| at(k))))
        };
        let mut publisher =
            Publisher::<()>::new(std::iter::empty(), None, changes(0..100), 0, 0, 0);
        assert_eq!(publisher.claimed, 100);
        publisher.install_index(None, changes(0..300));
        assert_eq!(publisher.claimed, 300);
        for k in 300..1_000 {
            publisher.set(DocId::from(k), Some(at(k)));
        }
        assert_eq!(publisher.claimed, 1_000);
        let layers = publisher.shared.layers.load();
        assert!(layers.table.claim_limit() >= 1_000);
        for k in 0..1_000 {
            let expected = (k % 5 != 0 || k >= 300).then(|| at(k));
            assert_eq!(
                layers.position(DocId::from(k)).unwrap(),
                expected,
                "document {k}"
            );
        }
    }
}
