//! The location table: document id → position of its latest record, for every document
//! changed since the engine's index checkpoint, written by one thread and read by any
//! number of threads without locks. A document the table does not hold is looked up in the
//! checkpoint (`published.rs`).
//!
//! Open addressing with linear probing over slots of three atomics. A slot is claimed for a
//! key once and keeps that key for the life of the table; deleting a document stores
//! [`DELETED`] in its slot, which hides the checkpoint's entry and lets probes for other
//! keys continue past it. A table that fills up is rebuilt at a larger size by the writer
//! and swapped in whole (see `published::Publisher`); a new checkpoint starts a new table.
//!
//! Protocol (the writer is the only thread that stores):
//! - claiming a slot stores the key halves with `Relaxed`, then the value with `Release`;
//! - updating or deleting stores the value with `Release`;
//! - a reader loads the value with `Acquire` and, if it is not [`EMPTY`], the key halves with
//!   `Relaxed`. The acquire pairs with the release that stored the value, so the key stores,
//!   and everything the writer did before (writing the record's bytes, publishing the
//!   segment's end) are visible to the reader.

use store_mmap::{DocId, Position};

use crate::sync::atomic::{AtomicU64, Ordering};

/// Slot value of a slot that was never claimed. A probe that reaches one stops.
const EMPTY: u64 = 0;
/// Slot value of a deleted document.
const DELETED: u64 = 1;
/// Smallest table.
const MIN_SLOTS: usize = 16;

struct Slot {
    key_lo: AtomicU64,
    key_hi: AtomicU64,
    value: AtomicU64,
}

/// What a reader finds for an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The document's latest record.
    Live(Position),
    /// Deleted since the checkpoint.
    Deleted,
    /// Not changed since the checkpoint: ask the checkpoint.
    Unchanged,
}

/// The hasher: seeded at random per table in production, so that chosen ids cannot make
/// every probe collide; fixed under loom, which replays each execution and needs the same
/// probe sequence every time.
#[cfg(not(textstore_loom))]
type Hasher = foldhash::fast::RandomState;
#[cfg(textstore_loom)]
type Hasher = foldhash::fast::FixedState;

/// A fixed-size table; see the module documentation for its protocol.
pub(crate) struct LocationTable {
    slots: Box<[Slot]>,
    mask: usize,
    hasher: Hasher,
}

/// What [`LocationTable::set`] did, for the writer's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetOutcome {
    /// A never-used slot was claimed.
    pub(crate) claimed: bool,
    /// The document was live before.
    pub(crate) was_live: bool,
}

impl LocationTable {
    /// A table that holds `docs` documents at most half full.
    pub(crate) fn for_docs(docs: usize) -> LocationTable {
        LocationTable::with_slots(docs.saturating_mul(2).next_power_of_two().max(MIN_SLOTS))
    }

    /// An empty table to rebuild this one into: twice as many slots, or more until it
    /// takes `claims` claims ([`LocationTable::claim_limit`]).
    pub(crate) fn grown_for(&self, claims: usize) -> LocationTable {
        let mut len = self.slots.len() * 2;
        while len / 4 * 3 < claims {
            len *= 2;
        }
        LocationTable::with_slots(len)
    }

    /// An empty table of `len` slots, a power of two.
    fn with_slots(len: usize) -> LocationTable {
        debug_assert!(len.is_power_of_two());
        let slots = (0..len)
            .map(|_| Slot {
                key_lo: AtomicU64::new(0),
                key_hi: AtomicU64::new(0),
                value: AtomicU64::new(EMPTY),
            })
            .collect();
        LocationTable {
            slots,
            mask: len - 1,
            hasher: Hasher::default(),
        }
    }

    /// Number of slots.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// How many claimed slots (live or deleted) the table takes before the writer rebuilds
    /// it: three quarters, which keeps probe sequences short.
    pub(crate) fn claim_limit(&self) -> usize {
        self.slots.len() / 4 * 3
    }

    /// Heap bytes of the slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot>()
    }

    fn home(&self, id: DocId) -> usize {
        use std::hash::BuildHasher;
        (self.hasher.hash_one(id.as_u128()) as usize) & self.mask
    }

    /// Where the latest record of `id` is, as published so far. Any thread.
    pub(crate) fn get(&self, id: DocId) -> Lookup {
        let (lo, hi) = split(id);
        let mut i = self.home(id);
        // The writer keeps at least a quarter of the slots empty, so the probe ends.
        loop {
            let slot = &self.slots[i];
            let value = slot.value.load(Ordering::Acquire);
            if value == EMPTY {
                return Lookup::Unchanged;
            }
            if slot.key_lo.load(Ordering::Relaxed) == lo
                && slot.key_hi.load(Ordering::Relaxed) == hi
            {
                return decode(value).map_or(Lookup::Deleted, Lookup::Live);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Publishes the latest position of `id`, or its deletion (which the table keeps, to
    /// hide the checkpoint's entry). Only the writer thread calls this, and only while the
    /// table has a free slot beyond [`Self::claim_limit`] or the key is already present.
    pub(crate) fn set(&self, id: DocId, position: Option<Position>) -> SetOutcome {
        let (lo, hi) = split(id);
        let value = position.map_or(DELETED, encode);
        let mut i = self.home(id);
        loop {
            let slot = &self.slots[i];
            // Relaxed: this thread is the only one that stores, so it reads its own stores.
            let current = slot.value.load(Ordering::Relaxed);
            if current == EMPTY {
                slot.key_lo.store(lo, Ordering::Relaxed);
                slot.key_hi.store(hi, Ordering::Relaxed);
                slot.value.store(value, Ordering::Release);
                return SetOutcome {
                    claimed: true,
                    was_live: false,
                };
            }
            if slot.key_lo.load(Ordering::Relaxed) == lo
                && slot.key_hi.load(Ordering::Relaxed) == hi
            {
                slot.value.store(value, Ordering::Release);
                return SetOutcome {
                    claimed: false,
                    was_live: current != DELETED,
                };
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Every document the table holds, with its position or `None` when deleted, in slot
    /// order. Any thread; a concurrent writer's changes may or may not be seen.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (DocId, Option<Position>)> + '_ {
        (0..self.slots.len()).filter_map(|at| self.entry_at(at))
    }

    /// Slots of the table: what [`LocationTable::entry_at`] takes.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The entry in slot `at`, if one was claimed: its id and position (`None`: deleted).
    pub(crate) fn entry_at(&self, at: usize) -> Option<(DocId, Option<Position>)> {
        let slot = &self.slots[at];
        let value = slot.value.load(Ordering::Acquire);
        if value == EMPTY {
            return None;
        }
        let lo = slot.key_lo.load(Ordering::Relaxed);
        let hi = slot.key_hi.load(Ordering::Relaxed);
        Some((
            DocId::from_u128(u128::from(hi) << 64 | u128::from(lo)),
            decode(value),
        ))
    }
}

fn split(id: DocId) -> (u64, u64) {
    let raw = id.as_u128();
    (raw as u64, (raw >> 64) as u64)
}

fn encode(position: Position) -> u64 {
    let value = u64::from(position.segment) << 32 | u64::from(position.offset);
    // Records start past the segment header, so a real position never collides with the
    // two reserved values.
    debug_assert!(
        value > DELETED,
        "position {position:?} collides with a marker"
    );
    value
}

fn decode(value: u64) -> Option<Position> {
    (value > DELETED).then_some(Position {
        segment: (value >> 32) as u32,
        offset: value as u32,
    })
}

#[cfg(all(test, not(textstore_loom)))]
mod tests {
    use super::*;

    fn at(segment: u32, offset: u32) -> Lookup {
        Lookup::Live(Position { segment, offset })
    }

    fn pos(segment: u32, offset: u32) -> Option<Position> {
        Some(Position { segment, offset })
    }

    #[test]
    fn set_get_delete_and_reinsert() {
        let table = LocationTable::for_docs(4);
        let a = DocId::from_u128(7);
        let b = DocId::from_u128(7 << 64);
        assert_eq!(table.get(a), Lookup::Unchanged);
        assert!(table.set(a, pos(1, 64)).claimed);
        assert_eq!(table.get(a), at(1, 64));
        // Same low half, other high half: a different key.
        assert_eq!(table.get(b), Lookup::Unchanged);
        let outcome = table.set(a, pos(2, 128));
        assert_eq!((outcome.claimed, outcome.was_live), (false, true));
        assert_eq!(table.get(a), at(2, 128));
        let outcome = table.set(a, None);
        assert_eq!((outcome.claimed, outcome.was_live), (false, true));
        assert_eq!(table.get(a), Lookup::Deleted);
        assert!(!table.set(a, None).was_live);
        // Deleting an id the table never saw claims a slot: the deletion hides the
        // checkpoint's entry.
        assert!(table.set(b, None).claimed);
        assert_eq!(table.get(b), Lookup::Deleted);
        assert!(!table.set(a, pos(3, 64)).claimed);
        assert_eq!(table.get(a), at(3, 64));
        let mut entries: Vec<_> = table.entries().collect();
        entries.sort_by_key(|(id, _)| *id);
        assert_eq!(entries, vec![(a, pos(3, 64)), (b, None)]);
    }

    #[test]
    fn colliding_keys_probe_past_each_other_and_past_deletions() {
        let table = LocationTable::for_docs(8);
        let ids: Vec<DocId> = (0..table.claim_limit() as u128)
            .map(|i| DocId::from_u128(i * 977 + 1))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            table.set(*id, pos(1, 64 + 8 * i as u32));
        }
        for id in ids.iter().step_by(2) {
            table.set(*id, None);
        }
        for (i, id) in ids.iter().enumerate() {
            let expected = if i % 2 == 0 {
                Lookup::Deleted
            } else {
                at(1, 64 + 8 * i as u32)
            };
            assert_eq!(table.get(*id), expected, "id {id}");
        }
        assert_eq!(
            table.entries().filter(|(_, p)| p.is_some()).count(),
            ids.len() / 2
        );
        assert_eq!(table.get(DocId::from_u128(u128::MAX)), Lookup::Unchanged);
    }

    /// Ids land all over the table, so that probes stay short: with 1,000 sequential ids in
    /// a table sized for them (2,048 slots), no run of claimed slots comes near the number
    /// of ids. A hash that sent every id to one home makes a single run of them all; a
    /// random one, in 2,000 simulated tables, at most 51.
    #[test]
    fn ids_spread_over_the_table() {
        let ids = 1000u64;
        let table = LocationTable::for_docs(ids as usize);
        for k in 0..ids {
            table.set(DocId::from(k), pos(1, 64));
        }
        let mut longest = 0;
        let mut run = 0;
        // Twice round, so that a run that wraps past the last slot is counted whole.
        for at in (0..table.capacity()).chain(0..table.capacity()) {
            run = if table.entry_at(at).is_some() {
                run + 1
            } else {
                0
            };
            longest = longest.max(run);
        }
        assert!(
            longest < 200,
            "a run of {longest} claimed slots for {ids} ids"
        );
    }

    #[test]
    fn sizes_for_the_requested_documents() {
        assert_eq!(LocationTable::for_docs(0).capacity(), MIN_SLOTS);
        let small = LocationTable::for_docs(0);
        assert_eq!(small.grown_for(0).capacity(), 2 * MIN_SLOTS);
        // 20,000 claims fit in 32,768 slots (three quarters: 24,576), not in 16,384.
        assert_eq!(small.grown_for(20_000).capacity(), 32_768);
        assert_eq!(small.grown_for(24_576).capacity(), 32_768);
        assert_eq!(small.grown_for(24_577).capacity(), 65_536);
        let table = LocationTable::for_docs(1000);
        assert_eq!(table.capacity(), 2048);
        assert!(table.claim_limit() >= 1000);
        assert_eq!(table.memory_bytes(), 2048 * 24);
    }
}
