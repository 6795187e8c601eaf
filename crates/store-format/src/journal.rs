//! The index journal (`index.tsj`): the index's changes since the index file, appended in
//! frames, so that a checkpoint costs what changed instead of a rewrite of the whole table.
//!
//! The journal belongs to one index file (it names the file's hash seed and checkpoint).
//! Each frame holds every document whose entry changed since the frame before (or since
//! the index file, for the first), the live counts as of the frame's position, segment rows
//! and two CRC32Cs. The first frame of a file holds the whole segment table; each later one
//! only the rows of the segments whose live bytes changed since the frame before, so that a
//! frame costs what changed however many segments the store has (a whole table in every
//! frame was 16 bytes a segment each 16 KiB of commits: 40% more bytes written at 400
//! segments). A frame says: every record before my position is reflected in
//! the index file and the frames up to me. Like the index file, the journal is a cache of
//! the data: an open that finds a frame torn, damaged or for another index file stops
//! there and replays the segments from the last frame it took.
//!
//! Layout: a [`JOURNAL_HEADER_LEN`]-byte header, then frames, each a
//! [`JOURNAL_FRAME_HEADER_LEN`]-byte frame header, its segment rows
//! ([`crate::INDEX_SEGMENT_LEN`] bytes each, as in the index file) and its entries
//! ([`JOURNAL_ENTRY_LEN`] bytes each).

use crate::DocId;
use crate::codec::{all_zero, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_crc, check_header, invalid, invalid_at, need};
use crate::index::{INDEX_SEGMENT_LEN, IndexEntry, Position, SegmentLive};

/// Magic bytes at the start of the journal.
pub const JOURNAL_MAGIC: [u8; 8] = *b"TXTSJNL\0";
/// Encoded size of [`JournalHeader`].
pub const JOURNAL_HEADER_LEN: usize = 64;
/// Encoded size of a frame's header.
pub const JOURNAL_FRAME_HEADER_LEN: usize = 80;
/// Encoded size of one entry of a frame.
pub const JOURNAL_ENTRY_LEN: usize = 40;
/// The first four bytes of every frame.
const FRAME_MARK: [u8; 4] = *b"TSJF";
/// An entry's flags word: the document's latest record is a put at the entry's place.
const ENTRY_PUT: u32 = 1;
/// An entry's flags word: the document was deleted.
const ENTRY_DELETED: u32 = 2;
/// A frame's flags word: its segment rows are the segments whose live bytes changed since
/// the frame before, not the whole table. Frames without it (all that builds before it
/// wrote) hold the whole table; those builds refuse a frame with it and replay from the
/// frame before.
const FRAME_ROWS_CHANGED: u32 = 1;

/// The journal's header: which index file its frames go on top of.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSJNL\0` |
/// | 8 | 2 | format version |
/// | 10 | 2 | header length (64) |
/// | 12 | 4 | reserved, zero |
/// | 16 | 16 | store uid |
/// | 32 | 8 | the index file's hash seed |
/// | 40 | 4 | the index file's checkpoint: segment id |
/// | 44 | 4 | the index file's checkpoint: offset |
/// | 48 | 8 | the index file's last sequence number |
/// | 56 | 4 | reserved, zero |
/// | 60 | 4 | CRC32C of bytes 0..60 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalHeader {
    /// The store's uid.
    pub store_uid: u128,
    /// The index file the frames go on top of, named by its header's hash seed, checkpoint
    /// and last sequence number (the seed is drawn at random for each file).
    pub base: JournalBase,
}

/// What names an index file to its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalBase {
    /// The index file's hash seed.
    pub hash_seed: u64,
    /// The index file's checkpoint.
    pub checkpoint: Position,
    /// The index file's last sequence number.
    pub last_seq: u64,
}

/// What a frame records beside its entries.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | mark `TSJF` |
/// | 4 | 4 | entries |
/// | 8 | 4 | segment rows |
/// | 12 | 4 | flags: 1 when the segment rows are only those that changed ([`SegmentRows`]) |
/// | 16 | 8 | the index file's hash seed (as in the header) |
/// | 24 | 4 | position: segment id |
/// | 28 | 4 | position: offset |
/// | 32 | 8 | last sequence number before the position (tombstones included) |
/// | 40 | 8 | live documents |
/// | 48 | 8 | bytes of their records |
/// | 56 | 8 | bytes of their texts |
/// | 64 | 8 | bytes of records committed between the index file's checkpoint and the position |
/// | 72 | 4 | CRC32C of the segment rows and entries |
/// | 76 | 4 | CRC32C of bytes 0..76 |
///
/// An entry: document id (16), sequence number (8), segment id (4), offset (4), text length
/// (4), flags (4: 1 for a put at that place, 2 for a delete, whose other fields are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalFrame {
    /// Every record before this position is reflected.
    pub position: Position,
    /// The largest sequence number before the position.
    pub last_seq: u64,
    /// Live documents at the position.
    pub live_docs: u64,
    /// Sum of the record lengths of the live documents.
    pub live_record_bytes: u64,
    /// Sum of the text lengths of the live documents.
    pub text_bytes: u64,
    /// Bytes of records committed since the index file's checkpoint: what the replay would
    /// read without the journal.
    pub bytes_since_base: u64,
}

/// One change of a frame: the document's latest record, or `None` when it was deleted.
pub type JournalChange = (DocId, Option<IndexEntry>);

/// What a frame's segment rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentRows {
    /// The whole segment table as of the frame's position: every segment with live
    /// records, ascending.
    Whole,
    /// The segments whose live bytes changed since the frame before, ascending, each at
    /// its live bytes as of the frame's position; a row of 0 says the segment has no live
    /// record left.
    Changed,
}

impl JournalHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; JOURNAL_HEADER_LEN] {
        let mut buf = [0u8; JOURNAL_HEADER_LEN];
        put(&mut buf, 0, &JOURNAL_MAGIC);
        put(&mut buf, 8, &crate::FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(JOURNAL_HEADER_LEN as u16).to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.base.hash_seed.to_le_bytes());
        put(&mut buf, 40, &self.base.checkpoint.segment.to_le_bytes());
        put(&mut buf, 44, &self.base.checkpoint.offset.to_le_bytes());
        put(&mut buf, 48, &self.base.last_seq.to_le_bytes());
        let crc = crate::checksum::crc32c(&buf[..60]);
        put(&mut buf, 60, &crc.to_le_bytes());
        buf
    }

    /// Decodes the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<JournalHeader, FormatError> {
        const WHAT: Structure = Structure::IndexJournal;
        let buf = check_header(WHAT, buf, &JOURNAL_MAGIC, JOURNAL_HEADER_LEN)?;
        if !all_zero(&buf[12..16]) || !all_zero(&buf[56..60]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        Ok(JournalHeader {
            store_uid: get_u128(buf, 16),
            base: JournalBase {
                hash_seed: get_u64(buf, 32),
                checkpoint: Position {
                    segment: get_u32(buf, 40),
                    offset: get_u32(buf, 44),
                },
                last_seq: get_u64(buf, 48),
            },
        })
    }
}

/// Encodes a frame on top of the index file with hash seed `base_seed`: `frame`, the
/// segment rows `segments` (what they are: `rows`) and `changes`.
pub fn encode_journal_frame(
    base_seed: u64,
    frame: &JournalFrame,
    rows: SegmentRows,
    segments: &[SegmentLive],
    changes: impl ExactSizeIterator<Item = JournalChange>,
) -> Vec<u8> {
    debug_assert!(segments.is_sorted_by_key(|row| row.segment));
    let body_len = segments.len() * INDEX_SEGMENT_LEN + changes.len() * JOURNAL_ENTRY_LEN;
    let mut out = vec![0u8; JOURNAL_FRAME_HEADER_LEN + body_len];
    let (head, body) = out.split_at_mut(JOURNAL_FRAME_HEADER_LEN);
    put(head, 0, &FRAME_MARK);
    put(head, 4, &(changes.len() as u32).to_le_bytes());
    put(head, 8, &(segments.len() as u32).to_le_bytes());
    if rows == SegmentRows::Changed {
        put(head, 12, &FRAME_ROWS_CHANGED.to_le_bytes());
    }
    put(head, 16, &base_seed.to_le_bytes());
    put(head, 24, &frame.position.segment.to_le_bytes());
    put(head, 28, &frame.position.offset.to_le_bytes());
    put(head, 32, &frame.last_seq.to_le_bytes());
    put(head, 40, &frame.live_docs.to_le_bytes());
    put(head, 48, &frame.live_record_bytes.to_le_bytes());
    put(head, 56, &frame.text_bytes.to_le_bytes());
    put(head, 64, &frame.bytes_since_base.to_le_bytes());
    let (rows, entries) = body.split_at_mut(segments.len() * INDEX_SEGMENT_LEN);
    for (row, live) in rows.chunks_exact_mut(INDEX_SEGMENT_LEN).zip(segments) {
        put(row, 0, &live.segment.to_le_bytes());
        put(row, 8, &live.live_record_bytes.to_le_bytes());
    }
    for (slot, (id, change)) in entries.chunks_exact_mut(JOURNAL_ENTRY_LEN).zip(changes) {
        put(slot, 0, &id.to_le_bytes());
        match change {
            Some(entry) => {
                put(slot, 16, &entry.seq.to_le_bytes());
                put(slot, 24, &entry.position.segment.to_le_bytes());
                put(slot, 28, &entry.position.offset.to_le_bytes());
                put(slot, 32, &entry.text_len.to_le_bytes());
                put(slot, 36, &ENTRY_PUT.to_le_bytes());
            }
            None => put(slot, 36, &ENTRY_DELETED.to_le_bytes()),
        }
    }
    let body_crc = crate::checksum::crc32c(body);
    put(head, 72, &body_crc.to_le_bytes());
    let crc = crate::checksum::crc32c(&head[..76]);
    put(head, 76, &crc.to_le_bytes());
    out
}

/// A frame decoded by [`JournalFrames`]: its summary, segment rows and changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame<'a> {
    /// Where the frame starts in the journal.
    pub offset: u64,
    /// Its summary.
    pub frame: JournalFrame,
    /// What its segment rows are.
    pub rows: SegmentRows,
    /// Its segment rows, ascending.
    pub segments: Vec<SegmentLive>,
    entries: &'a [u8],
}

impl DecodedFrame<'_> {
    /// Brings `table` (segment id to live bytes, as of the frame before, or of the index
    /// file for the first) to the frame's position.
    pub fn apply_rows(&self, table: &mut std::collections::BTreeMap<u32, u64>) {
        if self.rows == SegmentRows::Whole {
            table.clear();
        }
        for row in &self.segments {
            if row.live_record_bytes == 0 {
                table.remove(&row.segment);
            } else {
                table.insert(row.segment, row.live_record_bytes);
            }
        }
    }

    /// The frame's changes, in the order written. Every entry's flags were checked when
    /// the frame was decoded.
    pub fn changes(&self) -> impl ExactSizeIterator<Item = JournalChange> + '_ {
        self.entries
            .chunks_exact(JOURNAL_ENTRY_LEN)
            .map(decode_journal_entry)
    }

    /// The segment of each put among the frame's changes, in the order written: what an open
    /// checks against the segments it holds, without decoding the rest of each entry.
    pub fn put_segments(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .chunks_exact(JOURNAL_ENTRY_LEN)
            .filter(|slot| get_u32(slot, 36) == ENTRY_PUT)
            .map(|slot| get_u32(slot, 24))
    }

    /// Where the frame's first entry starts in the journal; entry `i` starts
    /// `i * JOURNAL_ENTRY_LEN` bytes after it.
    pub fn entries_offset(&self) -> u64 {
        self.offset + (JOURNAL_FRAME_HEADER_LEN + self.segments.len() * INDEX_SEGMENT_LEN) as u64
    }

    /// Where the frame ends in the journal: past its last entry, where the next frame starts.
    pub fn end(&self) -> u64 {
        self.entries_offset() + self.entries.len() as u64
    }
}

/// The document an entry of a frame that [`JournalFrames`] accepted changes: `slot` is its
/// [`JOURNAL_ENTRY_LEN`] bytes. What an open reads of every entry to index the journal.
#[inline]
pub fn journal_entry_id(slot: &[u8]) -> DocId {
    DocId::from_u128(get_u128(slot, 0))
}

/// The change an entry of a frame that [`JournalFrames`] accepted holds: `slot` is its
/// [`JOURNAL_ENTRY_LEN`] bytes.
pub fn decode_journal_entry(slot: &[u8]) -> JournalChange {
    let id = DocId::from_u128(get_u128(slot, 0));
    let change = (get_u32(slot, 36) == ENTRY_PUT).then(|| IndexEntry {
        id,
        seq: get_u64(slot, 16),
        position: Position {
            segment: get_u32(slot, 24),
            offset: get_u32(slot, 28),
        },
        text_len: get_u32(slot, 32),
    });
    (id, change)
}

/// The frames of a journal, in order, for the index file with hash seed `base_seed`. Ends
/// after the last whole frame; the first that is torn, fails a check or names another index
/// file is returned as an error, and the iteration ends with it.
pub struct JournalFrames<'a> {
    buf: &'a [u8],
    at: usize,
    base_seed: u64,
    done: bool,
}

impl<'a> JournalFrames<'a> {
    /// The frames of `buf`, a whole journal whose header [`JournalHeader::decode`] accepted.
    pub fn new(buf: &'a [u8], base_seed: u64) -> JournalFrames<'a> {
        JournalFrames {
            buf,
            at: JOURNAL_HEADER_LEN,
            base_seed,
            done: false,
        }
    }

    fn decode_next(&self) -> Result<(DecodedFrame<'a>, usize), FormatError> {
        const WHAT: Structure = Structure::IndexJournal;
        let (buf, at) = (self.buf, self.at);
        need(WHAT, buf, at, JOURNAL_FRAME_HEADER_LEN)?;
        let head = &buf[at..at + JOURNAL_FRAME_HEADER_LEN];
        let bad = |field, value| invalid_at(WHAT, at as u64, field, value);
        check_crc(
            WHAT,
            at,
            get_u32(head, 76),
            crate::checksum::crc32c(&head[..76]),
        )?;
        if head[..4] != FRAME_MARK {
            return Err(bad("frame mark", u64::from(get_u32(head, 0))));
        }
        let rows = match get_u32(head, 12) {
            0 => SegmentRows::Whole,
            FRAME_ROWS_CHANGED => SegmentRows::Changed,
            flags => return Err(bad("frame flags", u64::from(flags))),
        };
        let seed = get_u64(head, 16);
        if seed != self.base_seed {
            return Err(bad("index file's hash seed", seed));
        }
        let entries = get_u32(head, 4) as usize;
        let row_count = get_u32(head, 8) as usize;
        let rows_len = row_count * INDEX_SEGMENT_LEN;
        let body_len = rows_len + entries * JOURNAL_ENTRY_LEN;
        let body_at = at + JOURNAL_FRAME_HEADER_LEN;
        need(WHAT, buf, body_at, body_len)?;
        let body = &buf[body_at..body_at + body_len];
        check_crc(WHAT, at, get_u32(head, 72), crate::checksum::crc32c(body))?;
        let (row_bytes, entry_bytes) = body.split_at(rows_len);
        let mut segments = Vec::with_capacity(row_count);
        for row in row_bytes.chunks_exact(INDEX_SEGMENT_LEN) {
            if !all_zero(&row[4..8]) {
                return Err(bad("segment row", u64::from(get_u32(row, 0))));
            }
            segments.push(SegmentLive {
                segment: get_u32(row, 0),
                live_record_bytes: get_u64(row, 8),
            });
        }
        for slot in entry_bytes.chunks_exact(JOURNAL_ENTRY_LEN) {
            let flags = get_u32(slot, 36);
            let deleted_clean = flags == ENTRY_DELETED && all_zero(&slot[16..36]);
            if flags != ENTRY_PUT && !deleted_clean {
                return Err(bad("entry flags", u64::from(flags)));
            }
        }
        let frame = JournalFrame {
            position: Position {
                segment: get_u32(head, 24),
                offset: get_u32(head, 28),
            },
            last_seq: get_u64(head, 32),
            live_docs: get_u64(head, 40),
            live_record_bytes: get_u64(head, 48),
            text_bytes: get_u64(head, 56),
            bytes_since_base: get_u64(head, 64),
        };
        if let Some(pair) = segments.windows(2).find(|p| p[0].segment >= p[1].segment) {
            return Err(bad("segment row out of order", u64::from(pair[1].segment)));
        }
        let decoded = DecodedFrame {
            offset: at as u64,
            frame,
            rows,
            segments,
            entries: entry_bytes,
        };
        Ok((decoded, body_at + body_len))
    }
}

impl<'a> Iterator for JournalFrames<'a> {
    type Item = Result<DecodedFrame<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.at == self.buf.len() {
            return None;
        }
        match self.decode_next() {
            Ok((frame, next)) => {
                self.at = next;
                Some(Ok(frame))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> JournalHeader {
        JournalHeader {
            store_uid: 7,
            base: JournalBase {
                hash_seed: 99,
                checkpoint: Position {
                    segment: 1,
                    offset: 64,
                },
                last_seq: 3,
            },
        }
    }

    fn frame(n: u32) -> JournalFrame {
        JournalFrame {
            position: Position {
                segment: 1,
                offset: 1000 + n,
            },
            last_seq: 10 + u64::from(n),
            live_docs: 5,
            live_record_bytes: 500,
            text_bytes: 300,
            bytes_since_base: 900,
        }
    }

    fn changes(n: u128) -> Vec<JournalChange> {
        vec![
            (
                DocId::from_u128(n),
                Some(IndexEntry {
                    id: DocId::from_u128(n),
                    seq: 11,
                    position: Position {
                        segment: 1,
                        offset: 128,
                    },
                    text_len: 9,
                }),
            ),
            (DocId::from_u128(n + 1), None),
        ]
    }

    fn row(segment: u32, live_record_bytes: u64) -> SegmentLive {
        SegmentLive {
            segment,
            live_record_bytes,
        }
    }

    /// A journal of `frames` frames: the first with the whole table, the rest with the rows
    /// that changed.
    fn journal(frames: u32) -> Vec<u8> {
        let mut buf = header().encode().to_vec();
        for n in 0..frames {
            let (rows, segments) = if n == 0 {
                (SegmentRows::Whole, vec![row(1, 500), row(2, 70)])
            } else {
                (SegmentRows::Changed, vec![row(1, 500 + u64::from(n))])
            };
            let frame = encode_journal_frame(
                99,
                &frame(n),
                rows,
                &segments,
                changes(n.into()).into_iter(),
            );
            buf.extend_from_slice(&frame);
        }
        buf
    }

    /// A journal of one frame, `encoded`, whose checksums are written again after a test
    /// changed it on purpose.
    fn resealed(mut encoded: Vec<u8>) -> Vec<u8> {
        let body_crc = crate::checksum::crc32c(&encoded[JOURNAL_FRAME_HEADER_LEN..]);
        put(&mut encoded, 72, &body_crc.to_le_bytes());
        let crc = crate::checksum::crc32c(&encoded[..76]);
        put(&mut encoded, 76, &crc.to_le_bytes());
        let mut buf = header().encode().to_vec();
        buf.extend_from_slice(&encoded);
        buf
    }

    #[test]
    fn frames_read_back_as_written() {
        let buf = journal(3);
        assert_eq!(JournalHeader::decode(&buf).unwrap(), header());
        let frames: Vec<_> = JournalFrames::new(&buf, 99)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        for (n, decoded) in frames.iter().enumerate() {
            assert_eq!(decoded.frame, frame(n as u32));
            let rows = if n == 0 { 2 } else { 1 };
            assert_eq!(decoded.segments.len(), rows);
            assert_eq!(decoded.changes().collect::<Vec<_>>(), changes(n as u128));
            let at = decoded.entries_offset() as usize;
            let second = &buf[at + JOURNAL_ENTRY_LEN..at + 2 * JOURNAL_ENTRY_LEN];
            assert_eq!(decode_journal_entry(second), changes(n as u128)[1]);
            assert_eq!(journal_entry_id(second), changes(n as u128)[1].0);
            // The first change is a put into segment 1, the second a delete.
            assert_eq!(decoded.put_segments().collect::<Vec<_>>(), [1]);
            let next = frames
                .get(n + 1)
                .map_or(buf.len() as u64, |next| next.offset);
            assert_eq!(decoded.end(), next, "frame {n}");
        }
    }

    /// Frames bring the table forward in order: a whole table replaces it, changed rows
    /// overwrite theirs, and a row of 0 removes its segment.
    #[test]
    fn segment_rows_fold_into_the_table_in_order() {
        let mut buf = header().encode().to_vec();
        let frames = [
            (SegmentRows::Whole, vec![row(1, 500), row(2, 70), row(4, 9)]),
            (SegmentRows::Changed, vec![row(2, 0), row(5, 30)]),
            (SegmentRows::Changed, vec![row(1, 450), row(5, 60)]),
        ];
        for (n, (rows, segments)) in frames.iter().enumerate() {
            let encoded =
                encode_journal_frame(99, &frame(n as u32), *rows, segments, [].into_iter());
            buf.extend_from_slice(&encoded);
        }
        let mut table = std::collections::BTreeMap::from([(1, 1), (3, 3)]);
        let mut seen = Vec::new();
        for decoded in JournalFrames::new(&buf, 99) {
            let decoded = decoded.unwrap();
            decoded.apply_rows(&mut table);
            seen.push(table.clone().into_iter().collect::<Vec<_>>());
        }
        assert_eq!(
            seen,
            [
                vec![(1, 500), (2, 70), (4, 9)],
                vec![(1, 500), (4, 9), (5, 30)],
                vec![(1, 450), (4, 9), (5, 60)],
            ]
        );
    }

    /// Flags this build does not know, and rows out of order, refuse the frame.
    #[test]
    fn a_frame_with_unknown_flags_or_unordered_rows_is_refused() {
        let flagged = |flags: u32| {
            let mut encoded =
                encode_journal_frame(99, &frame(0), SegmentRows::Whole, &[], [].into_iter());
            put(&mut encoded, 12, &flags.to_le_bytes());
            let buf = resealed(encoded);
            JournalFrames::new(&buf, 99).next().unwrap().map(|f| f.rows)
        };
        assert_eq!(flagged(0), Ok(SegmentRows::Whole));
        assert_eq!(flagged(FRAME_ROWS_CHANGED), Ok(SegmentRows::Changed));
        assert!(
            matches!(
                flagged(2),
                Err(FormatError::InvalidField {
                    field: "frame flags",
                    ..
                })
            ),
            "{:?}",
            flagged(2)
        );
        // Rows written in order, then swapped, with both checksums made good again.
        let mut encoded = encode_journal_frame(
            99,
            &frame(0),
            SegmentRows::Changed,
            &[row(2, 1), row(3, 1)],
            [].into_iter(),
        );
        let rows = JOURNAL_FRAME_HEADER_LEN;
        put(&mut encoded, rows, &3u32.to_le_bytes());
        put(&mut encoded, rows + INDEX_SEGMENT_LEN, &2u32.to_le_bytes());
        let buf = resealed(encoded);
        let refused = JournalFrames::new(&buf, 99).next().unwrap();
        assert!(
            matches!(
                refused,
                Err(FormatError::InvalidField {
                    field: "segment row out of order",
                    value: 2,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_torn_frame_ends_the_frames_with_an_error() {
        let buf = journal(2);
        for cut in [buf.len() - 1, buf.len() - JOURNAL_ENTRY_LEN - 3] {
            let frames: Vec<_> = JournalFrames::new(&buf[..cut], 99).collect();
            assert_eq!(frames.len(), 2, "cut at {cut}");
            assert!(frames[0].is_ok());
            assert!(
                matches!(frames[1], Err(FormatError::Truncated { .. })),
                "{:?}",
                frames[1]
            );
        }
    }

    #[test]
    fn a_damaged_frame_or_one_of_another_index_file_is_refused() {
        let buf = journal(2);
        let first_len = JOURNAL_FRAME_HEADER_LEN + 2 * INDEX_SEGMENT_LEN + 2 * JOURNAL_ENTRY_LEN;
        let second = JOURNAL_HEADER_LEN + first_len;
        let mut flipped = buf.clone();
        flipped[second + JOURNAL_FRAME_HEADER_LEN + 20] ^= 1;
        let frames: Vec<_> = JournalFrames::new(&flipped, 99).collect();
        assert!(frames[0].is_ok());
        assert!(
            matches!(frames[1], Err(FormatError::ChecksumMismatch { offset, .. }) if offset == second as u64),
            "{:?}",
            frames[1]
        );
        let other = JournalFrames::new(&buf, 98).next().unwrap();
        assert!(
            matches!(
                other,
                Err(FormatError::InvalidField {
                    field: "index file's hash seed",
                    ..
                })
            ),
            "{other:?}"
        );
        let mut zeroed = buf.clone();
        zeroed[second..].fill(0);
        let frames: Vec<_> = JournalFrames::new(&zeroed, 99).collect();
        assert_eq!(frames.len(), 2);
        assert!(frames[1].is_err());
    }

    #[test]
    fn a_damaged_header_is_refused() {
        let mut buf = journal(0);
        buf[20] ^= 1;
        assert!(matches!(
            JournalHeader::decode(&buf),
            Err(FormatError::ChecksumMismatch { .. })
        ));
        // Reserved bytes that are not zero, under a valid checksum: each range on its own.
        for at in [12, 15, 56, 59] {
            let mut buf = header().encode();
            buf[at] = 1;
            let crc = crate::checksum::crc32c(&buf[..60]);
            put(&mut buf, 60, &crc.to_le_bytes());
            let err = JournalHeader::decode(&buf).unwrap_err();
            assert!(
                matches!(
                    err,
                    FormatError::InvalidField {
                        field: "reserved bytes",
                        ..
                    }
                ),
                "byte {at}: {err}"
            );
        }
    }

    /// An open checks the segment of every put against the segments it holds: each put's,
    /// in order, and no delete's.
    #[test]
    fn put_segments_are_those_of_the_puts_in_order() {
        let put = |n: u128, segment: u32| {
            (
                DocId::from_u128(n),
                Some(IndexEntry {
                    id: DocId::from_u128(n),
                    seq: 20 + n as u64,
                    position: Position {
                        segment,
                        offset: 64,
                    },
                    text_len: 3,
                }),
            )
        };
        let changes = [put(1, 4), (DocId::from_u128(2), None), put(3, 9), put(5, 4)];
        let mut buf = header().encode().to_vec();
        buf.extend_from_slice(&encode_journal_frame(
            99,
            &frame(0),
            SegmentRows::Whole,
            &[row(4, 10), row(9, 10)],
            changes.into_iter(),
        ));
        let decoded = JournalFrames::new(&buf, 99).next().unwrap().unwrap();
        assert_eq!(decoded.put_segments().collect::<Vec<_>>(), [4, 9, 4]);
    }

    /// An entry is a put, or a delete whose place is zeros: anything else refuses the frame
    /// even under valid checksums.
    #[test]
    fn an_entry_that_is_neither_a_put_nor_a_clean_delete_is_refused() {
        let entry_at = JOURNAL_FRAME_HEADER_LEN;
        let with_entry = |flags: u32, place: u8| {
            let change = (DocId::from_u128(8), None);
            let mut encoded =
                encode_journal_frame(99, &frame(0), SegmentRows::Whole, &[], [change].into_iter());
            put(&mut encoded, entry_at + 36, &flags.to_le_bytes());
            encoded[entry_at + 16..entry_at + 36].fill(place);
            let buf = resealed(encoded);
            JournalFrames::new(&buf, 99)
                .next()
                .unwrap()
                .map(|decoded| decoded.changes().count())
        };
        assert_eq!(with_entry(ENTRY_DELETED, 0), Ok(1));
        for (flags, place) in [(ENTRY_DELETED, 7), (0, 0), (3, 0)] {
            let refused = with_entry(flags, place);
            assert!(
                matches!(
                    refused,
                    Err(FormatError::InvalidField {
                        field: "entry flags",
                        ..
                    })
                ),
                "flags {flags}, place {place}: {refused:?}"
            );
        }
    }
}
