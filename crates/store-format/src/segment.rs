//! The header at the start of every segment file.

use crate::FORMAT_VERSION;
use crate::codec::{all_zero, get_u16, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_header, invalid};

/// Magic bytes at the start of a segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TXTSSEG\0";
/// Encoded size of [`SegmentHeader`]; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
const _: () = assert!(60 + 4 == SEGMENT_HEADER_LEN);
const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(crate::RECORD_ALIGN));

/// The header of a segment file.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSSEG\0` |
/// | 8 | 2 | format version |
/// | 10 | 2 | header length (64) |
/// | 12 | 4 | segment id |
/// | 16 | 16 | store uid |
/// | 32 | 4 | capacity in bytes, header included |
/// | 36 | 4 | id of the segment sealed right before this one was created; 0: none |
/// | 40 | 4 | that segment's length in bytes when it was sealed; 0 when there is none |
/// | 44 | 8 | the store's last sequence number when it was sealed: every record of this segment is above it; 0 when there is none |
/// | 52 | 1 | flags: bit 0, this segment was created in the middle of a commit that goes on from that segment into this one; bit 1 (version 6), the file held an earlier segment, whose records may remain past this one's data; other bits zero |
/// | 53 | 7 | reserved, zero |
/// | 60 | 4 | CRC32C of bytes 0..60 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's id; segments are written in increasing id order.
    pub segment_id: u32,
    /// The uid of the store the segment belongs to.
    pub store_uid: u128,
    /// The most bytes the segment will ever hold, header included. The engine maps this
    /// many bytes once and never remaps.
    pub capacity: u32,
    /// The segment the writer sealed just before it created this one, and how long that
    /// file was then: a sealed segment's known end, so that recovery and verification can
    /// tell a sealed segment cut short (or grown) from an intact one. `None` for the first
    /// segment, for compaction outputs, and in format version 1.
    pub sealed_before: Option<SealedSegment>,
}

/// A sealed segment's id and final length, as its successor's header records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedSegment {
    /// The sealed segment.
    pub segment_id: u32,
    /// Its length in bytes, header included, once sealed.
    pub len_bytes: u32,
    /// The store's last sequence number when it was sealed: every record written after it,
    /// and so every record of the segment that records this, has a larger one.
    pub last_seq: u64,
    /// The segment was created in the middle of a commit that goes on from the sealed
    /// segment into this one (a batch larger than the room left). Compaction replaces two
    /// segments so linked together or not at all.
    pub commit_continues: bool,
    /// The file held an earlier segment that compaction retired, and was written over from
    /// its header on instead of being removed: past this segment's data, until it is sealed
    /// (which cuts the file at its data), lie bytes of that earlier segment, whose records
    /// all hold sequence numbers at or below `last_seq`. Recovery reads them as unwritten
    /// space (docs/FORMAT.md, "Spare files").
    pub reuses_file: bool,
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        put(&mut buf, 0, &SEGMENT_MAGIC);
        put(&mut buf, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        put(&mut buf, 12, &self.segment_id.to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.capacity.to_le_bytes());
        if let Some(sealed) = self.sealed_before {
            put(&mut buf, 36, &sealed.segment_id.to_le_bytes());
            put(&mut buf, 40, &sealed.len_bytes.to_le_bytes());
            put(&mut buf, 44, &sealed.last_seq.to_le_bytes());
            buf[52] = u8::from(sealed.commit_continues) | (u8::from(sealed.reuses_file) << 1);
        }
        let crc = crate::checksum::crc32c(&buf[..60]);
        put(&mut buf, 60, &crc.to_le_bytes());
        buf
    }

    /// Decodes the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, FormatError> {
        const WHAT: Structure = Structure::SegmentHeader;
        let buf = check_header(WHAT, buf, &SEGMENT_MAGIC, SEGMENT_HEADER_LEN)?;
        if !all_zero(&buf[53..60]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        let flags = buf[52];
        // Bit 1 exists from version 6 on.
        let known_flags = if get_u16(buf, 8) >= 6 { 0b11 } else { 0b01 };
        if flags & !known_flags != 0 {
            return Err(invalid(WHAT, "flags", u64::from(flags)));
        }
        let (len_bytes, last_seq) = (get_u32(buf, 40), get_u64(buf, 44));
        let sealed_before = match get_u32(buf, 36) {
            0 if len_bytes != 0 || last_seq != 0 || flags != 0 => {
                return Err(invalid(WHAT, "sealed predecessor", u64::from(len_bytes)));
            }
            0 => None,
            segment_id => Some(SealedSegment {
                segment_id,
                len_bytes,
                last_seq,
                commit_continues: flags & 1 == 1,
                reuses_file: flags & 0b10 != 0,
            }),
        };
        let capacity = get_u32(buf, 32);
        if (capacity as usize) < SEGMENT_HEADER_LEN {
            return Err(invalid(WHAT, "capacity", u64::from(capacity)));
        }
        Ok(SegmentHeader {
            segment_id: get_u32(buf, 12),
            store_uid: get_u128(buf, 16),
            capacity,
            sealed_before,
        })
    }
}
