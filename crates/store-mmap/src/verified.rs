//! Which records of a segment this process has checked: a bitset that costs memory only
//! where records were checked.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use store_format::RECORD_HEADER_LEN;

/// Which records of a segment this process has checked (CRC32C and, for puts, UTF-8), one
/// bit per 48 bytes of the segment: records start at least a record header (48 bytes) apart,
/// so no two share a bit. At most 1/384 of the segment's capacity in memory, allocated a
/// chunk at a time as records are checked.
///
/// An open makes one of these per segment, so it allocates no bits: a zeroed allocation of
/// the whole bitset (700 KB for a 256 MiB segment) is written with zeros by the allocator
/// once it reuses freed memory, which cost a reopen of a store of 100k documents a tenth
/// of its time, and a store of many segments that much per segment.
///
/// Relaxed operations suffice for the bits: a bit only says that the immutable bytes below
/// the committed end at its record were checked. A reader reaches those bytes through the
/// publication protocol, which orders their writing before its read; a reader that misses a
/// bit set by another thread checks the record again, and a cleared bit makes the next read
/// check. A chunk is published by its `OnceLock`, so a reader that finds it finds it zeroed
/// or with bits set since.
pub(crate) struct Verified {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

/// Bytes of a segment per bit.
const GRAIN_BYTES: usize = RECORD_HEADER_LEN;
/// Words per chunk: 4 KiB of bits, for 1.5 MiB of a segment.
const CHUNK_WORDS: usize = 512;
const CHUNK_BITS: usize = CHUNK_WORDS * 64;

impl Verified {
    /// No record checked, in a segment of `capacity` bytes.
    pub(crate) fn new(capacity: u32) -> Verified {
        let chunks = (capacity as usize)
            .div_ceil(GRAIN_BYTES)
            .div_ceil(CHUNK_BITS);
        Verified {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The chunk, word in it and bit of the record at `offset`.
    fn slot(offset: u32) -> (usize, usize, u64) {
        let i = offset as usize / GRAIN_BYTES;
        let (chunk, bit) = (i / CHUNK_BITS, i % CHUNK_BITS);
        (chunk, bit / 64, 1 << (bit % 64))
    }

    fn word(&self, offset: u32) -> Option<(&AtomicU64, u64)> {
        let (chunk, word, bit) = Verified::slot(offset);
        Some((&self.chunks.get(chunk)?.get()?[word], bit))
    }

    /// Whether the record at `offset` was checked.
    pub(crate) fn contains(&self, offset: u32) -> bool {
        self.word(offset)
            .is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
    }

    /// Remembers that the record at `offset` was checked.
    pub(crate) fn insert(&self, offset: u32) {
        let (chunk, word, bit) = Verified::slot(offset);
        if let Some(chunk) = self.chunks.get(chunk) {
            let words = chunk.get_or_init(|| (0..CHUNK_WORDS).map(|_| AtomicU64::new(0)).collect());
            words[word].fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Forgets every record that starts in `range`: they failed a check.
    pub(crate) fn remove_range(&self, range: std::ops::Range<u32>) {
        let mut at = range.start - range.start % GRAIN_BYTES as u32;
        while at < range.end {
            if let Some((word, bit)) = self.word(at) {
                word.fetch_and(!bit, Ordering::Relaxed);
            }
            at += GRAIN_BYTES as u32;
        }
    }

    /// Chunks of bits allocated so far.
    #[cfg(test)]
    fn allocated_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.get().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: u32 = 256 << 20;

    /// Offsets a grain apart on both sides of a chunk's edge, the segment's first and last.
    fn edges() -> Vec<u32> {
        let edge = (CHUNK_BITS * GRAIN_BYTES) as u32;
        let last = (CAPACITY / GRAIN_BYTES as u32 - 1) * GRAIN_BYTES as u32;
        vec![
            0,
            GRAIN_BYTES as u32,
            edge - GRAIN_BYTES as u32,
            edge,
            edge + GRAIN_BYTES as u32,
            last,
        ]
    }

    #[test]
    fn a_new_bitset_holds_nothing_and_allocates_nothing() {
        let verified = Verified::new(CAPACITY);
        assert_eq!(verified.allocated_chunks(), 0);
        assert!(edges().into_iter().all(|at| !verified.contains(at)));
        verified.remove_range(0..CAPACITY);
        assert_eq!(verified.allocated_chunks(), 0, "removing allocates nothing");
    }

    #[test]
    fn each_record_has_its_own_bit_across_chunks() {
        let verified = Verified::new(CAPACITY);
        let edges = edges();
        for (i, &at) in edges.iter().enumerate() {
            verified.insert(at);
            for (j, &other) in edges.iter().enumerate() {
                assert_eq!(verified.contains(other), j <= i, "{at} set, {other} asked");
            }
        }
        assert_eq!(
            verified.allocated_chunks(),
            3,
            "the first, the edge's and the last"
        );
        // An offset inside a record's first grain is that record's.
        assert!(verified.contains(GRAIN_BYTES as u32 + 5));
        // Past the capacity nothing is kept, and nothing breaks.
        verified.insert(u32::MAX);
        assert!(!verified.contains(u32::MAX));
    }

    /// Records whose bits share a word, and the same bit of other words, stay apart.
    #[test]
    fn records_a_word_apart_or_in_one_word_do_not_share_a_bit() {
        let verified = Verified::new(CAPACITY);
        let grain = GRAIN_BYTES as u32;
        verified.insert(0);
        verified.insert(3 * grain);
        for other in [grain, 2 * grain, 64 * grain, 67 * grain, 128 * grain] {
            assert!(!verified.contains(other), "{other}");
        }
        assert!(verified.contains(0) && verified.contains(3 * grain));
    }

    /// A chunk holds the bits of 1.5 MiB of segment in 4 KiB: what the memory bound of
    /// 1/384 of the capacity assumes.
    #[test]
    fn a_chunk_covers_a_mebibyte_and_a_half() {
        let verified = Verified::new(CAPACITY);
        let span = 3 << 19;
        verified.insert(0);
        verified.insert(span - GRAIN_BYTES as u32);
        assert_eq!(verified.allocated_chunks(), 1);
        verified.insert(span);
        assert_eq!(verified.allocated_chunks(), 2);
        assert_eq!(CHUNK_WORDS * size_of::<u64>(), 4096);
    }

    #[test]
    fn a_removed_range_forgets_the_records_that_start_in_it_and_no_other() {
        let verified = Verified::new(CAPACITY);
        for at in edges() {
            verified.insert(at);
        }
        let edge = (CHUNK_BITS * GRAIN_BYTES) as u32;
        // From inside the grain before the edge up to the edge's record, excluded.
        verified.remove_range(edge - GRAIN_BYTES as u32 + 1..edge + 1);
        let kept: Vec<u32> = edges()
            .into_iter()
            .filter(|&at| verified.contains(at))
            .collect();
        let last = edges()[5];
        assert_eq!(
            kept,
            vec![0, GRAIN_BYTES as u32, edge + GRAIN_BYTES as u32, last]
        );
        // A range that ends where a record starts leaves that record.
        verified.remove_range(0..GRAIN_BYTES as u32);
        assert!(!verified.contains(0));
        assert!(verified.contains(GRAIN_BYTES as u32));
    }
}
