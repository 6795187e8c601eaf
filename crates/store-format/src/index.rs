//! The index file: a checkpoint of the index laid out as an open-addressing hash table, so
//! that an open maps it and probes it in place instead of loading it.
//!
//! The file is a cache of the data: it can always be rebuilt from the segments, and the
//! engine does so whenever the file is missing, damaged or written by an older version.
//! Nothing in it is read at open but the header and the segment table; each page of slots is
//! checked (CRC32C) the first time a lookup touches it, so opening costs the same for ten
//! documents and for ten million.
//!
//! Layout: the header ([`INDEX_HEADER_LEN`] bytes), the segment table (one
//! [`INDEX_SEGMENT_LEN`]-byte row per segment that holds live records), zeros up to the first
//! page boundary ([`IndexHeader::table_offset`]), then the slot pages of
//! [`INDEX_PAGE_LEN`] bytes, each holding [`SLOTS_PER_PAGE`] slots of [`INDEX_ENTRY_LEN`]
//! bytes and a CRC32C. A document's home slot is `XXH3-64(id, seed) * slot_count >> 64`;
//! entries are placed by Robin Hood linear probing (wrapping at the end), so a lookup probes
//! from there to the document, an empty slot, or the first resident closer to its own home
//! than the probe is (each slot stores its distance from home, so the probe hashes no other
//! id). The table is never more than [`MAX_LOAD_PERCENT`] percent full, so
//! probes stay short and always end.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::codec::{all_zero, get_u16, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_crc, check_header, invalid, invalid_at, need};
use crate::id::DocId;

/// Magic bytes at the start of the index file.
pub const INDEX_MAGIC: [u8; 8] = *b"TXTSIDX\0";
/// The oldest format version whose index file this build reads: earlier index files hold a
/// sorted list, which the engine discards and rebuilds from the data.
pub const INDEX_LAYOUT_VERSION: u16 = 4;
/// Encoded size of [`IndexHeader`].
pub const INDEX_HEADER_LEN: usize = 128;
/// Encoded size of one slot ([`IndexEntry`]).
pub const INDEX_ENTRY_LEN: usize = 40;
/// Encoded size of one row of the segment table ([`SegmentLive`]).
pub const INDEX_SEGMENT_LEN: usize = 16;
/// Size of a page of slots; the slot pages start at a multiple of it.
pub const INDEX_PAGE_LEN: usize = 4096;
/// Slots in one page: the rest of the page is reserved bytes and the page's CRC32C.
pub const SLOTS_PER_PAGE: usize = 102;
/// The most a table is filled, in percent of its slots. Robin Hood placement keeps probes
/// short at this fill (a lookup that finds nothing stops at the first resident closer to its
/// home than the probe), and it keeps the file at about 47 bytes a document.
pub const MAX_LOAD_PERCENT: u64 = 85;
const PAGE_CRC_AT: usize = INDEX_PAGE_LEN - 4;
/// A slot's flags word (bytes 36..40): bit 0 marks it occupied, bits 1..16 are reserved,
/// bits 16..32 hold how far the entry lies from its home slot, so that a probe can stop
/// without hashing the ids it passes.
const SLOT_OCCUPIED: u32 = 1;
const SLOT_FLAG_BITS: u32 = 0xFFFF;
/// A stored distance of this value means "this far or further": the probe computes it.
const DISTANCE_SATURATED: u64 = 0xFFFF;
const _: () = assert!(124 + 4 == INDEX_HEADER_LEN);
const _: () = assert!(36 + 4 == INDEX_ENTRY_LEN);
const _: () = assert!(SLOTS_PER_PAGE * INDEX_ENTRY_LEN + 12 + 4 == INDEX_PAGE_LEN);

/// A place in the store: a segment and a byte offset in it. It names where a record starts,
/// or where a checkpoint ends (every record before it is reflected in the entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Segment id.
    pub segment: u32,
    /// Byte offset within the segment.
    pub offset: u32,
}

/// The header of the index file.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSIDX\0` |
/// | 8 | 2 | format version (4) |
/// | 10 | 2 | header length (128) |
/// | 12 | 2 | slot length (40) |
/// | 14 | 2 | reserved, zero |
/// | 16 | 16 | store uid |
/// | 32 | 4 | checkpoint segment id |
/// | 36 | 4 | checkpoint offset within that segment |
/// | 40 | 8 | last sequence number written before the checkpoint |
/// | 48 | 8 | live documents (occupied slots) |
/// | 56 | 8 | bytes of their records |
/// | 64 | 8 | bytes of their texts |
/// | 72 | 8 | slot count, a multiple of 102 |
/// | 80 | 8 | hash seed |
/// | 88 | 4 | rows in the segment table |
/// | 92 | 4 | offset of the first slot page, a multiple of 4096 |
/// | 96 | 4 | CRC32C of the segment table |
/// | 100 | 24 | reserved, zero |
/// | 124 | 4 | CRC32C of bytes 0..124 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// The uid of the store this index belongs to.
    pub store_uid: u128,
    /// Every record before this position is reflected in the slots.
    pub checkpoint: Position,
    /// The largest sequence number in the data before the checkpoint (tombstones included).
    pub last_seq: u64,
    /// Occupied slots: the live documents as of the checkpoint.
    pub live_docs: u64,
    /// Sum of the record lengths of the live documents.
    pub live_record_bytes: u64,
    /// Sum of the text lengths of the live documents.
    pub text_bytes: u64,
    /// Slots in the table.
    pub slot_count: u64,
    /// Seed of the slot hash.
    pub hash_seed: u64,
    /// Rows in the segment table.
    pub segment_count: u32,
    /// Where the first slot page starts.
    pub table_offset: u32,
    /// CRC32C of the segment table.
    pub segments_crc: u32,
}

/// One document in the index: a slot of the table.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 16 | document id |
/// | 16 | 8 | sequence number of the record |
/// | 24 | 4 | segment id |
/// | 28 | 4 | offset of the record within the segment |
/// | 32 | 4 | text length in bytes |
/// | 36 | 4 | flags: bit 0 set for an occupied slot, the rest reserved, zero |
///
/// An empty slot is 40 zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The document.
    pub id: DocId,
    /// Sequence number of its latest record.
    pub seq: u64,
    /// Where that record is.
    pub position: Position,
    /// Length of the text in bytes.
    pub text_len: u32,
}

/// One row of the segment table: the bytes of live records a segment holds, which tells
/// compaction what it would copy without reading a slot.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | segment id |
/// | 4 | 4 | reserved, zero |
/// | 8 | 8 | bytes of live records in it |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLive {
    /// Segment id.
    pub segment: u32,
    /// Bytes of the live records in the segment.
    pub live_record_bytes: u64,
}

/// What an index file records beside its slots, given to [`encode_index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexCheckpoint {
    /// The uid of the store.
    pub store_uid: u128,
    /// Every record before this position is reflected in the entries.
    pub checkpoint: Position,
    /// The largest sequence number before the checkpoint.
    pub last_seq: u64,
    /// Seed of the slot hash: any value; the engine picks one at random per file, so that
    /// chosen ids cannot make every probe collide.
    pub hash_seed: u64,
}

impl IndexHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; INDEX_HEADER_LEN] {
        let mut buf = [0u8; INDEX_HEADER_LEN];
        put(&mut buf, 0, &INDEX_MAGIC);
        put(&mut buf, 8, &crate::FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(INDEX_HEADER_LEN as u16).to_le_bytes());
        put(&mut buf, 12, &(INDEX_ENTRY_LEN as u16).to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.checkpoint.segment.to_le_bytes());
        put(&mut buf, 36, &self.checkpoint.offset.to_le_bytes());
        put(&mut buf, 40, &self.last_seq.to_le_bytes());
        put(&mut buf, 48, &self.live_docs.to_le_bytes());
        put(&mut buf, 56, &self.live_record_bytes.to_le_bytes());
        put(&mut buf, 64, &self.text_bytes.to_le_bytes());
        put(&mut buf, 72, &self.slot_count.to_le_bytes());
        put(&mut buf, 80, &self.hash_seed.to_le_bytes());
        put(&mut buf, 88, &self.segment_count.to_le_bytes());
        put(&mut buf, 92, &self.table_offset.to_le_bytes());
        put(&mut buf, 96, &self.segments_crc.to_le_bytes());
        let crc = crate::checksum::crc32c(&buf[..124]);
        put(&mut buf, 124, &crc.to_le_bytes());
        buf
    }

    /// Decodes the header at the start of `buf` and checks that its fields agree with each
    /// other; it does not look past the header.
    pub fn decode(buf: &[u8]) -> Result<IndexHeader, FormatError> {
        const WHAT: Structure = Structure::IndexHeader;
        // Earlier versions laid the header out differently: their version, at the same
        // place, says so before their checksum would fail.
        if buf.len() >= 10 && buf[..8] == INDEX_MAGIC {
            let version = get_u16(buf, 8);
            if version < INDEX_LAYOUT_VERSION {
                return Err(FormatError::UnsupportedVersion {
                    what: WHAT,
                    offset: 8,
                    found: version,
                    supported: crate::FORMAT_VERSION,
                });
            }
        }
        let buf = check_header(WHAT, buf, &INDEX_MAGIC, INDEX_HEADER_LEN)?;
        let header_len = get_u16(buf, 10);
        if usize::from(header_len) != INDEX_HEADER_LEN {
            return Err(invalid(WHAT, "header length", u64::from(header_len)));
        }
        let entry_len = get_u16(buf, 12);
        if usize::from(entry_len) != INDEX_ENTRY_LEN {
            return Err(invalid(WHAT, "slot length", u64::from(entry_len)));
        }
        if !all_zero(&buf[14..16]) || !all_zero(&buf[100..124]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        let header = IndexHeader {
            store_uid: get_u128(buf, 16),
            checkpoint: Position {
                segment: get_u32(buf, 32),
                offset: get_u32(buf, 36),
            },
            last_seq: get_u64(buf, 40),
            live_docs: get_u64(buf, 48),
            live_record_bytes: get_u64(buf, 56),
            text_bytes: get_u64(buf, 64),
            slot_count: get_u64(buf, 72),
            hash_seed: get_u64(buf, 80),
            segment_count: get_u32(buf, 88),
            table_offset: get_u32(buf, 92),
            segments_crc: get_u32(buf, 96),
        };
        if header.slot_count == 0 || !header.slot_count.is_multiple_of(SLOTS_PER_PAGE as u64) {
            return Err(invalid(WHAT, "slot count", header.slot_count));
        }
        if header.live_docs.saturating_mul(100) > header.slot_count.saturating_mul(MAX_LOAD_PERCENT)
        {
            return Err(invalid(WHAT, "live documents", header.live_docs));
        }
        let segments_end =
            INDEX_HEADER_LEN as u64 + u64::from(header.segment_count) * INDEX_SEGMENT_LEN as u64;
        if !(header.table_offset as usize).is_multiple_of(INDEX_PAGE_LEN)
            || u64::from(header.table_offset) < segments_end
        {
            return Err(invalid(
                WHAT,
                "table offset",
                u64::from(header.table_offset),
            ));
        }
        Ok(header)
    }

    /// Pages of slots.
    pub fn page_count(&self) -> u64 {
        self.slot_count / SLOTS_PER_PAGE as u64
    }

    /// The length of the whole file this header describes.
    pub fn file_len(&self) -> u64 {
        u64::from(self.table_offset)
            .saturating_add(self.page_count().saturating_mul(INDEX_PAGE_LEN as u64))
    }

    /// The slot where a probe for `id` starts.
    pub fn home_slot(&self, id: DocId) -> u64 {
        let hash = xxh3_64_with_seed(&id.to_le_bytes(), self.hash_seed);
        ((u128::from(hash) * u128::from(self.slot_count)) >> 64) as u64
    }

    /// How far `slot` lies from `id`'s home slot, counting forward and wrapping.
    pub fn distance(&self, id: DocId, slot: u64) -> u64 {
        let home = self.home_slot(id);
        (slot + self.slot_count - home) % self.slot_count
    }

    /// The byte offset of page `page` in the file.
    pub fn page_offset(&self, page: u64) -> usize {
        self.table_offset as usize + page as usize * INDEX_PAGE_LEN
    }
}

impl IndexEntry {
    /// Writes the entry into `slot`, `distance` slots from its home.
    fn encode_into(&self, slot: &mut [u8], distance: u64) {
        put(slot, 0, &self.id.to_le_bytes());
        put(slot, 16, &self.seq.to_le_bytes());
        put(slot, 24, &self.position.segment.to_le_bytes());
        put(slot, 28, &self.position.offset.to_le_bytes());
        put(slot, 32, &self.text_len.to_le_bytes());
        let distance = distance.min(DISTANCE_SATURATED) as u32;
        put(slot, 36, &(SLOT_OCCUPIED | distance << 16).to_le_bytes());
    }

    /// Decodes the slot at `offset` of `buf` (in bounds): `None` for an empty slot.
    fn decode(buf: &[u8], offset: usize) -> Result<Option<IndexEntry>, FormatError> {
        Ok(decode_slot(buf, offset)?.map(|(entry, _)| entry))
    }
}

/// The slot at `offset` of `buf` (in bounds) with its stored distance: `None` for an empty
/// slot.
fn decode_slot(buf: &[u8], offset: usize) -> Result<Option<(IndexEntry, u64)>, FormatError> {
    let slot = &buf[offset..offset + INDEX_ENTRY_LEN];
    let flags = get_u32(slot, 36);
    let bad = |field| {
        invalid_at(
            Structure::IndexEntries,
            offset as u64,
            field,
            u64::from(flags),
        )
    };
    match flags & SLOT_FLAG_BITS {
        0 if all_zero(slot) => Ok(None),
        0 => Err(bad("empty slot")),
        SLOT_OCCUPIED => Ok(Some((
            IndexEntry {
                id: DocId::from_u128(get_u128(slot, 0)),
                seq: get_u64(slot, 16),
                position: Position {
                    segment: get_u32(slot, 24),
                    offset: get_u32(slot, 28),
                },
                text_len: get_u32(slot, 32),
            },
            u64::from(flags >> 16),
        ))),
        _ => Err(bad("slot flags")),
    }
}

/// The number of slots a table of `docs` documents gets: at most [`MAX_LOAD_PERCENT`] full,
/// rounded up to whole pages.
pub fn index_slot_count(docs: u64) -> u64 {
    let needed = (docs.saturating_mul(100)).div_ceil(MAX_LOAD_PERCENT).max(1);
    needed.div_ceil(SLOTS_PER_PAGE as u64) * SLOTS_PER_PAGE as u64
}

/// Encodes a whole index file: the header, the segment table and the slot pages holding
/// `entries`, which must name each id once.
pub fn encode_index(
    checkpoint: IndexCheckpoint,
    entries: impl ExactSizeIterator<Item = IndexEntry>,
) -> Vec<u8> {
    let docs = entries.len() as u64;
    let slot_count = index_slot_count(docs);
    // The segment table is filled in after the slots; its size is bounded by the number of
    // distinct segments, which the entries tell.
    let mut header = IndexHeader {
        store_uid: checkpoint.store_uid,
        checkpoint: checkpoint.checkpoint,
        last_seq: checkpoint.last_seq,
        live_docs: 0,
        live_record_bytes: 0,
        text_bytes: 0,
        slot_count,
        hash_seed: checkpoint.hash_seed,
        segment_count: 0,
        table_offset: 0,
        segments_crc: 0,
    };
    let pages = header.page_count() as usize;
    let mut table = vec![0u8; pages * INDEX_PAGE_LEN];
    let mut segments: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
    for entry in entries {
        // Robin Hood placement: an entry further from its home than the resident of a slot
        // takes the slot, and the resident moves on. It keeps probes short at a high fill,
        // and lets a lookup stop at the first resident closer to its home than the probe.
        let mut placing = entry;
        let mut slot = header.home_slot(placing.id);
        let mut distance = 0u64;
        loop {
            let at = slot_offset(slot);
            let flags = get_u32(&table, at + 36);
            if flags == 0 {
                placing.encode_into(&mut table[at..at + INDEX_ENTRY_LEN], distance);
                break;
            }
            // The resident's distance is in its slot unless it saturated: a probe step reads
            // four bytes, and only a resident that moves on is decoded (decoding and
            // hashing every resident passed was most of this function's time).
            let resident_distance = match u64::from(flags >> 16) {
                DISTANCE_SATURATED => header.distance(DocId::from_u128(get_u128(&table, at)), slot),
                stored => stored,
            };
            debug_assert_ne!(
                DocId::from_u128(get_u128(&table, at)),
                placing.id,
                "id {} twice",
                placing.id
            );
            if resident_distance < distance {
                let resident = IndexEntry::decode(&table, at)
                    .ok()
                    .flatten()
                    .expect("an occupied slot holds an entry this function encoded");
                placing.encode_into(&mut table[at..at + INDEX_ENTRY_LEN], distance);
                placing = resident;
                distance = resident_distance;
            }
            slot = (slot + 1) % slot_count;
            distance += 1;
        }
        let record = crate::record_len(entry.text_len);
        header.live_docs += 1;
        header.live_record_bytes += record;
        header.text_bytes += u64::from(entry.text_len);
        *segments.entry(entry.position.segment).or_default() += record;
    }
    for page in 0..pages {
        let page = &mut table[page * INDEX_PAGE_LEN..(page + 1) * INDEX_PAGE_LEN];
        let crc = crate::checksum::crc32c(&page[..PAGE_CRC_AT]);
        put(page, PAGE_CRC_AT, &crc.to_le_bytes());
    }
    let mut rows = Vec::with_capacity(segments.len() * INDEX_SEGMENT_LEN);
    for (segment, live) in &segments {
        let mut row = [0u8; INDEX_SEGMENT_LEN];
        put(&mut row, 0, &segment.to_le_bytes());
        put(&mut row, 8, &live.to_le_bytes());
        rows.extend_from_slice(&row);
    }
    header.segment_count = segments.len() as u32;
    header.segments_crc = crate::checksum::crc32c(&rows);
    header.table_offset =
        u32::try_from((INDEX_HEADER_LEN + rows.len()).next_multiple_of(INDEX_PAGE_LEN))
            .expect("the segment table of a store fits in 4 GiB");
    let mut out = Vec::with_capacity(header.table_offset as usize + table.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&rows);
    out.resize(header.table_offset as usize, 0);
    out.extend_from_slice(&table);
    out
}

/// Decodes the header and the segment table of an index file and checks that the file is as
/// long as they say. The slot pages are not read: [`check_index_page`] checks each.
pub fn open_index(buf: &[u8]) -> Result<(IndexHeader, Vec<SegmentLive>), FormatError> {
    let header = IndexHeader::decode(buf)?;
    let rows_len = header.segment_count as usize * INDEX_SEGMENT_LEN;
    need(Structure::IndexHeader, buf, INDEX_HEADER_LEN, rows_len)?;
    let rows = &buf[INDEX_HEADER_LEN..INDEX_HEADER_LEN + rows_len];
    check_crc(
        Structure::IndexHeader,
        INDEX_HEADER_LEN,
        header.segments_crc,
        crate::checksum::crc32c(rows),
    )?;
    if buf.len() as u64 != header.file_len() {
        return Err(invalid_at(
            Structure::IndexEntries,
            u64::from(header.table_offset),
            "file length",
            buf.len() as u64,
        ));
    }
    let mut segments = Vec::with_capacity(header.segment_count as usize);
    for row in rows.chunks_exact(INDEX_SEGMENT_LEN) {
        if !all_zero(&row[4..8]) {
            return Err(invalid(Structure::IndexHeader, "reserved bytes", 0));
        }
        segments.push(SegmentLive {
            segment: get_u32(row, 0),
            live_record_bytes: get_u64(row, 8),
        });
    }
    Ok((header, segments))
}

/// Checks page `page` of an index file that [`open_index`] accepted: its CRC32C and its
/// reserved bytes. A slot's own fields are checked when it is decoded ([`index_lookup`],
/// [`index_page_entries`] skip nothing silently: [`decode_index`] decodes every slot).
pub fn check_index_page(buf: &[u8], header: &IndexHeader, page: u64) -> Result<(), FormatError> {
    let start = header.page_offset(page);
    need(Structure::IndexEntries, buf, start, INDEX_PAGE_LEN)?;
    let bytes = &buf[start..start + INDEX_PAGE_LEN];
    check_crc(
        Structure::IndexEntries,
        start,
        get_u32(bytes, PAGE_CRC_AT),
        crate::checksum::crc32c(&bytes[..PAGE_CRC_AT]),
    )?;
    if !all_zero(&bytes[SLOTS_PER_PAGE * INDEX_ENTRY_LEN..PAGE_CRC_AT]) {
        return Err(invalid_at(
            Structure::IndexEntries,
            start as u64,
            "reserved bytes",
            0,
        ));
    }
    Ok(())
}

/// Looks `id` up in an index file that [`open_index`] accepted. `checked(page)` is called
/// before a slot of `page` is read and must return `Ok` only for pages that passed
/// [`check_index_page`]: the caller decides how to remember which did.
pub fn index_lookup(
    buf: &[u8],
    header: &IndexHeader,
    id: DocId,
    mut checked: impl FnMut(u64) -> Result<(), FormatError>,
) -> Result<Option<IndexEntry>, FormatError> {
    let mut slot = header.home_slot(id);
    // The table is never full, so a probe meets an empty slot, or (Robin Hood placement) a
    // resident closer to its home than the probe is to `id`'s, past which `id` cannot lie.
    // The bound only guards a file whose header lies about its fill.
    for distance in 0..header.slot_count {
        checked(slot / SLOTS_PER_PAGE as u64)?;
        let at = header.table_offset as usize + slot_offset(slot);
        let Some((entry, stored)) = decode_slot(buf, at)? else {
            return Ok(None);
        };
        if entry.id == id {
            return Ok(Some(entry));
        }
        let resident = match stored {
            DISTANCE_SATURATED => header.distance(entry.id, slot),
            stored => stored,
        };
        if resident < distance {
            return Ok(None);
        }
        slot = (slot + 1) % header.slot_count;
    }
    Ok(None)
}

/// The occupied slots of page `page`, which the caller has checked; a slot that does not
/// decode is an error.
pub fn index_page_entries<'a>(
    buf: &'a [u8],
    header: &IndexHeader,
    page: u64,
) -> impl Iterator<Item = Result<IndexEntry, FormatError>> + 'a {
    let start = header.page_offset(page);
    (0..SLOTS_PER_PAGE)
        .filter_map(move |slot| IndexEntry::decode(buf, start + slot * INDEX_ENTRY_LEN).transpose())
}

/// Decodes and checks a whole index file: header, segment table, every page, that every
/// entry sits where a probe finds it, and that the counts in the header match the slots.
pub fn decode_index(buf: &[u8]) -> Result<(IndexHeader, Vec<IndexEntry>), FormatError> {
    let (header, segments) = open_index(buf)?;
    let mut entries = Vec::with_capacity(usize::try_from(header.live_docs).unwrap_or(0));
    for page in 0..header.page_count() {
        check_index_page(buf, &header, page)?;
        let start = header.page_offset(page);
        for slot in 0..SLOTS_PER_PAGE {
            IndexEntry::decode(buf, start + slot * INDEX_ENTRY_LEN)?;
        }
    }
    let (mut record_bytes, mut text_bytes) = (0u64, 0u64);
    let mut per_segment: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
    for page in 0..header.page_count() {
        for slot in 0..SLOTS_PER_PAGE as u64 {
            let at = header.page_offset(page) + slot as usize * INDEX_ENTRY_LEN;
            let Some((entry, stored)) = decode_slot(buf, at)? else {
                continue;
            };
            let distance = header.distance(entry.id, page * SLOTS_PER_PAGE as u64 + slot);
            if stored != distance.min(DISTANCE_SATURATED) {
                return Err(invalid_at(
                    Structure::IndexEntries,
                    at as u64,
                    "distance from the home slot",
                    stored,
                ));
            }
            let found = index_lookup(buf, &header, entry.id, |_| Ok(()))?;
            if found != Some(entry) {
                return Err(invalid_at(
                    Structure::IndexEntries,
                    header.page_offset(page) as u64,
                    "slot of a document a probe does not reach first",
                    entry.id.as_u128() as u64,
                ));
            }
            let record = crate::record_len(entry.text_len);
            record_bytes = record_bytes.saturating_add(record);
            text_bytes = text_bytes.saturating_add(u64::from(entry.text_len));
            let live = per_segment.entry(entry.position.segment).or_default();
            *live = live.saturating_add(record);
            entries.push(entry);
        }
    }
    let counts = [
        ("live documents", header.live_docs, entries.len() as u64),
        ("live record bytes", header.live_record_bytes, record_bytes),
        ("text bytes", header.text_bytes, text_bytes),
    ];
    for (field, stored, counted) in counts {
        if stored != counted {
            return Err(invalid(Structure::IndexHeader, field, stored));
        }
    }
    let listed: Vec<(u32, u64)> = segments
        .iter()
        .map(|s| (s.segment, s.live_record_bytes))
        .collect();
    if listed != per_segment.into_iter().collect::<Vec<_>>() {
        return Err(invalid(
            Structure::IndexHeader,
            "segment table",
            u64::from(header.segment_count),
        ));
    }
    Ok((header, entries))
}

/// Where slot `slot` starts, from the first slot page.
fn slot_offset(slot: u64) -> usize {
    let page = slot as usize / SLOTS_PER_PAGE;
    page * INDEX_PAGE_LEN + (slot as usize % SLOTS_PER_PAGE) * INDEX_ENTRY_LEN
}
