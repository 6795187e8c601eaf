//! The write path: how a commit's records get from the caller's text into a segment file.
//!
//! A commit is planned as one **part** per segment it touches: a batch that fits in the
//! active segment is one part; a batch larger than the room left goes on in new segments,
//! each part a commit group of its own whose commit record says that the commit goes on
//! (docs/FORMAT.md, "Batches that span segments"). Recovery applies the parts only when the
//! last one is there.
//!
//! Each part is written with `pwritev`: the record headers, the zero padding and the short
//! texts are gathered in a small buffer that the store reuses, and every longer text goes to
//! the kernel straight from the caller's memory. So a text is copied once on its way to the
//! page cache, and the commit path allocates nothing in proportion to the batch.

use std::io::IoSlice;
use std::ops::Range;

use store_format::{
    BatchOp, GroupEnd, RECORD_ALIGN, RecordKind, SEGMENT_HEADER_LEN, encode_record_header,
    padding_len,
};

use crate::error::Result;
use crate::segment::SegmentFile;
use crate::storage::WriteBehind;

/// Slices per `pwritev`; Linux's `IOV_MAX`.
const MAX_SLICES: usize = 1024;
/// Bytes gathered before they are written, so that the buffer stays small and hot in cache.
const GATHER_BYTES: usize = 256 << 10;
/// Texts shorter than this are copied into the gathered bytes beside their header: copying
/// a few hundred bytes costs less than the kernel's handling of one more slice.
const COPY_BELOW_BYTES: usize = 512;

/// Whether the engine takes `op` in a store whose documents may be at most
/// `max_document_bytes` long: the one admission check, which the engine runs before it writes
/// a byte of a commit and the concurrent handle before the operation takes a place in its
/// queue.
pub fn admit(op: BatchOp<'_>, max_document_bytes: u64) -> Result<()> {
    match op {
        BatchOp::Put { id, text } if text.len() as u64 > max_document_bytes => {
            Err(crate::error::Error::DocumentTooLarge {
                id,
                len: text.len() as u64,
                limit: max_document_bytes,
            })
        }
        _ => Ok(()),
    }
}

/// One part of a commit: the operations that go to one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// How many of the commit's operations, in order, this part holds.
    pub(crate) ops: usize,
    /// Bytes of its records.
    pub(crate) len_bytes: u64,
}

/// Splits a commit of `ops` into parts: the first gets at most `first_room` bytes, every
/// later one at most `room` (an empty segment's). A part may hold no operation only when it
/// is the first (the active segment has no room for even one record).
///
/// Every operation fits in `room`: the document size limit is below a segment's capacity.
pub(crate) fn plan<'a>(
    ops: impl Iterator<Item = BatchOp<'a>>,
    first_room: u64,
    room: u64,
) -> Vec<Part> {
    let mut parts = vec![Part {
        ops: 0,
        len_bytes: 0,
    }];
    let mut limit = first_room;
    for op in ops {
        let len = op.encoded_len();
        let part = parts.last_mut().expect("never empty");
        if part.len_bytes + len > limit {
            parts.push(Part {
                ops: 0,
                len_bytes: 0,
            });
            limit = room;
        }
        let part = parts.last_mut().expect("never empty");
        part.ops += 1;
        part.len_bytes += len;
    }
    parts
}

/// The bytes an empty segment of `capacity` bytes has room for.
pub(crate) fn segment_room(capacity: u32) -> u64 {
    u64::from(capacity) - SEGMENT_HEADER_LEN as u64
}

/// Bytes gathered for one `pwritev`, and where the caller's texts go between them.
enum Piece<'a> {
    /// A range of the gather buffer.
    Gathered(Range<usize>),
    /// A text, sent from the caller's memory.
    Text(&'a [u8]),
}

/// Under per-commit syncs, a commit starts the write-back of every this many bytes it has
/// written while it writes the rest, so that the disk writes the first part of a large
/// commit while the rest is encoded and copied, and its `fdatasync` finds little left to
/// write (what `bytes_per_sync` does in RocksDB). Commits smaller than this are untouched.
pub(crate) const WRITE_BEHIND_BYTES: u64 = 8 << 20;

/// The most zeros a commit writes after its records (see [`write_part`]).
pub(crate) const MAX_TRAILING_ZEROS: usize = 256 << 10;
static ZEROS: [u8; MAX_TRAILING_ZEROS] = [0; MAX_TRAILING_ZEROS];

/// Writes `ops` as one commit group at the end of `segment` (not published), with sequence
/// numbers from `first_seq`; the last record ends the group as `group_end` says. `gather`
/// is the store's reused buffer. Space is reserved by the caller.
///
/// `trailing_zeros` (at most [`MAX_TRAILING_ZEROS`]) more bytes of zeros follow the records
/// in the same write, over preallocated space: the commit's flush then marks that extent
/// written once, and the next commits into it flush their data alone.
///
/// `write_behind`: start the write-back of every [`WRITE_BEHIND_BYTES`] written, for a
/// commit that a sync ends.
pub(crate) fn write_part<'a>(
    segment: &SegmentFile,
    ops: impl Iterator<Item = BatchOp<'a>>,
    first_seq: u64,
    group_end: GroupEnd,
    gather: &mut Vec<u8>,
    trailing_zeros: usize,
    write_behind: bool,
) -> Result<()> {
    gather.clear();
    let mut pieces: Vec<Piece<'a>> = Vec::new();
    let mut at = u64::from(segment.end());
    let mut behind = write_behind.then(|| WriteBehind::new(at, WRITE_BEHIND_BYTES));
    // The bytes of the pieces not yet written (the caller's texts included, which the
    // gathered bytes do not count).
    let mut pending = 0u64;
    let mut ops = ops.enumerate().peekable();
    while let Some((i, op)) = ops.next() {
        let (kind, id, text) = match op {
            BatchOp::Put { id, text } => (RecordKind::Put, id, text.as_bytes()),
            BatchOp::Delete { id } => (RecordKind::Tombstone, id, &[][..]),
        };
        let end = ops.peek().is_none().then_some(group_end);
        let header = encode_record_header(kind, id, first_seq + i as u64, text, end);
        gathered(&mut pieces, gather, &header);
        if text.len() < COPY_BELOW_BYTES {
            gathered(&mut pieces, gather, text);
        } else {
            pieces.push(Piece::Text(text));
        }
        gathered(
            &mut pieces,
            gather,
            &[0; RECORD_ALIGN][..padding_len(text.len())],
        );
        pending += op.encoded_len();
        // Room for the next record's three pieces; and a write at least every
        // `WRITE_BEHIND_BYTES`, so that the write-back of a commit of large texts can start
        // before its last byte is written.
        if pieces.len() + 3 > MAX_SLICES
            || gather.len() >= GATHER_BYTES
            || pending >= WRITE_BEHIND_BYTES
        {
            at = flush(segment, &mut pieces, gather, at)?;
            pending = 0;
            if let Some(behind) = &mut behind {
                segment.write_behind(behind, at)?;
            }
        }
    }
    if trailing_zeros > 0 {
        pieces.push(Piece::Text(&ZEROS[..trailing_zeros]));
    }
    flush(segment, &mut pieces, gather, at)?;
    Ok(())
}

/// Adds `bytes` to the gather buffer, extending the last piece when it is gathered too.
fn gathered(pieces: &mut Vec<Piece<'_>>, gather: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let start = gather.len();
    gather.extend_from_slice(bytes);
    match pieces.last_mut() {
        Some(Piece::Gathered(range)) if range.end == start => range.end = gather.len(),
        _ => pieces.push(Piece::Gathered(start..gather.len())),
    }
}

/// Writes the pieces at `at` and empties them and the buffer; returns where the next ones go.
fn flush(
    segment: &SegmentFile,
    pieces: &mut Vec<Piece<'_>>,
    gather: &mut Vec<u8>,
    at: u64,
) -> Result<u64> {
    if pieces.is_empty() {
        return Ok(at);
    }
    let slices: Vec<IoSlice<'_>> = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Gathered(range) => IoSlice::new(&gather[range.clone()]),
            Piece::Text(text) => IoSlice::new(text),
        })
        .collect();
    let len: u64 = slices.iter().map(|slice| slice.len() as u64).sum();
    segment.write_vectored(&slices, at)?;
    drop(slices);
    pieces.clear();
    gather.clear();
    Ok(at + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_format::DocId;

    fn put(len: usize) -> BatchOp<'static> {
        let text: &'static str = Box::leak("x".repeat(len).into_boxed_str());
        BatchOp::Put {
            id: DocId::from_u128(1),
            text,
        }
    }

    #[test]
    fn plan_fills_the_active_segment_then_empty_ones() {
        let rec = put(80).encoded_len();
        let ops = [put(80), put(80), put(80), put(80), put(80)];
        let parts = plan(ops.iter().copied(), rec, 2 * rec);
        assert_eq!(
            parts,
            vec![
                Part {
                    ops: 1,
                    len_bytes: rec
                },
                Part {
                    ops: 2,
                    len_bytes: 2 * rec
                },
                Part {
                    ops: 2,
                    len_bytes: 2 * rec
                },
            ]
        );
    }

    #[test]
    fn plan_leaves_the_first_part_empty_when_nothing_fits_there() {
        let rec = put(80).encoded_len();
        let parts = plan([put(80)].into_iter(), rec - 8, rec);
        assert_eq!(
            parts,
            vec![
                Part {
                    ops: 0,
                    len_bytes: 0
                },
                Part {
                    ops: 1,
                    len_bytes: rec
                },
            ]
        );
    }
}
