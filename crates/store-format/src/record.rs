//! Data records: the unit appended to segments.

use crate::codec::{all_zero, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, bad_magic, check_crc, invalid_at, need};
use crate::id::DocId;

/// Magic bytes at the start of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"TXRC";
/// Encoded size of a record header; the payload follows it.
pub const RECORD_HEADER_LEN: usize = 48;
/// Records start at offsets that are multiples of this; the gap after a payload is zero.
pub const RECORD_ALIGN: usize = 8;

// The layout tables below end exactly at the encoded length, and headers keep records aligned.
const _: () = assert!(40 + 8 == RECORD_HEADER_LEN);
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(RECORD_ALIGN));

/// Flag bit: this record ends a commit group. A group is applied by recovery only when its
/// last record, the one carrying this flag, is intact.
pub const FLAG_COMMIT: u8 = 0b0000_0001;
/// Flag bit, on a commit record only: the commit goes on in the next segment. This group is
/// one part of a batch larger than the room left in its segment, and it is applied only when
/// every later part is there (docs/FORMAT.md, "Batches that span segments").
pub const FLAG_CONTINUES_IN_NEXT: u8 = 0b0000_0010;
/// Flag bit, on a commit record only: the commit began in the segment before; this group is
/// the first group of its segment.
pub const FLAG_CONTINUES_FROM_PREV: u8 = 0b0000_0100;
const KNOWN_FLAGS: u8 = FLAG_COMMIT | FLAG_CONTINUES_IN_NEXT | FLAG_CONTINUES_FROM_PREV;
const SPAN_FLAGS: u8 = FLAG_CONTINUES_IN_NEXT | FLAG_CONTINUES_FROM_PREV;

/// What a record does to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// The payload is the document's new text.
    Put,
    /// The document is deleted; the payload is empty.
    Tombstone,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Put => 1,
            RecordKind::Tombstone => 2,
        }
    }

    fn from_code(code: u8) -> Option<RecordKind> {
        match code {
            1 => Some(RecordKind::Put),
            2 => Some(RecordKind::Tombstone),
            _ => None,
        }
    }
}

/// The decoded header of a record.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `TXRC` |
/// | 4 | 1 | kind: 1 put, 2 tombstone |
/// | 5 | 1 | flags: bit 0 ends a commit group; on a commit record, bit 1: the commit goes on in the next segment, bit 2: it began in the segment before; other bits zero |
/// | 6 | 2 | reserved, zero |
/// | 8 | 4 | payload length in bytes |
/// | 12 | 4 | CRC32C of bytes 0..12, 16..48 and the payload |
/// | 16 | 16 | document id |
/// | 32 | 8 | sequence number |
/// | 40 | 4 | group length: on a commit record, the bytes of its whole commit group, this record included; zero on other records |
/// | 44 | 4 | reserved, zero |
/// | 48 | len | payload (UTF-8 text), then zero padding to a multiple of 8 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Put or tombstone.
    pub kind: RecordKind,
    /// Whether this record ends a commit group.
    pub commit: bool,
    /// Length of the payload in bytes.
    pub payload_len: u32,
    /// The document.
    pub id: DocId,
    /// The store-wide sequence number of this record; later writes have larger numbers.
    pub seq: u64,
    /// On a commit record, the bytes of its commit group (this record included), so that
    /// recovery can tell where the group began even when a record before it is damaged.
    /// Zero on other records.
    pub group_len: u32,
    /// On a commit record: the commit goes on in the next segment.
    pub continues_in_next: bool,
    /// On a commit record: the commit began in the segment before.
    pub continues_from_prev: bool,
}

/// What the record that ends a commit group (or the part of one that lies in a segment)
/// says about the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupEnd {
    /// Bytes of the group in this segment, this record included.
    pub len_bytes: u32,
    /// The commit goes on in the next segment.
    pub continues_in_next: bool,
    /// The commit began in the segment before.
    pub continues_from_prev: bool,
}

impl GroupEnd {
    /// The end of a group that lies wholly in one segment.
    pub fn whole(len_bytes: u32) -> GroupEnd {
        GroupEnd {
            len_bytes,
            continues_in_next: false,
            continues_from_prev: false,
        }
    }

    fn flags(self) -> u8 {
        let mut flags = FLAG_COMMIT;
        if self.continues_in_next {
            flags |= FLAG_CONTINUES_IN_NEXT;
        }
        if self.continues_from_prev {
            flags |= FLAG_CONTINUES_FROM_PREV;
        }
        flags
    }
}

/// A record decoded and verified in place.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The header.
    pub header: RecordHeader,
    /// The payload bytes, checksum-verified.
    pub payload: &'a [u8],
}

impl RecordHeader {
    /// Bytes this record occupies in a segment, header and padding included.
    pub fn record_len(&self) -> u64 {
        record_len(self.payload_len)
    }

    /// What a commit record says about its group; `None` on other records.
    pub fn group_end(&self) -> Option<GroupEnd> {
        self.commit.then_some(GroupEnd {
            len_bytes: self.group_len,
            continues_in_next: self.continues_in_next,
            continues_from_prev: self.continues_from_prev,
        })
    }
}

/// Bytes a record with a payload of `payload_len` bytes occupies, header and padding included.
pub const fn record_len(payload_len: u32) -> u64 {
    let raw = RECORD_HEADER_LEN as u64 + payload_len as u64;
    raw.next_multiple_of(RECORD_ALIGN as u64)
}

/// Appends one encoded record to `out`. `out.len()` must be a multiple of [`RECORD_ALIGN`]
/// for the record to land aligned; the function keeps it so. `commit_group_len` is `Some`
/// for the record that ends a commit group, holding the group's length in bytes.
///
/// The caller guarantees `payload.len() <= u32::MAX` (the engine's document size limit is
/// far below); a longer payload is a programming error and panics.
pub fn encode_record(
    out: &mut Vec<u8>,
    kind: RecordKind,
    id: DocId,
    seq: u64,
    payload: &[u8],
    commit_group_len: Option<u32>,
) {
    let header = encode_record_header(
        kind,
        id,
        seq,
        payload,
        commit_group_len.map(GroupEnd::whole),
    );
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    let padded = out.len().next_multiple_of(RECORD_ALIGN);
    out.resize(padded, 0);
}

/// The header of a record holding `payload`, its checksum included; the payload and then
/// [`padding_len`] zero bytes follow it in the segment. `group_end` is `Some` for the record
/// that ends a commit group. For writers that send the header and the caller's payload to
/// the file side by side, without copying the payload.
///
/// The caller guarantees `payload.len() <= u32::MAX`, as for [`encode_record`].
pub fn encode_record_header(
    kind: RecordKind,
    id: DocId,
    seq: u64,
    payload: &[u8],
    group_end: Option<GroupEnd>,
) -> [u8; RECORD_HEADER_LEN] {
    let payload_len =
        u32::try_from(payload.len()).expect("payload length checked against the size limit");
    let mut header = [0u8; RECORD_HEADER_LEN];
    put(&mut header, 0, &RECORD_MAGIC);
    header[4] = kind.code();
    header[5] = group_end.map_or(0, GroupEnd::flags);
    put(&mut header, 8, &payload_len.to_le_bytes());
    put(&mut header, 16, &id.to_le_bytes());
    put(&mut header, 32, &seq.to_le_bytes());
    put(
        &mut header,
        40,
        &group_end.map_or(0, |end| end.len_bytes).to_le_bytes(),
    );
    let crc = record_crc(&header, payload);
    put(&mut header, 12, &crc.to_le_bytes());
    header
}

/// Zero bytes that follow a payload of `payload_len` bytes, up to the next record boundary.
pub const fn padding_len(payload_len: usize) -> usize {
    payload_len.next_multiple_of(RECORD_ALIGN) - payload_len
}

fn record_crc(header: &[u8], payload: &[u8]) -> u32 {
    let crc = crate::checksum::crc32c(&header[..12]);
    let crc = crate::checksum::crc32c_append(crc, &header[16..RECORD_HEADER_LEN]);
    crate::checksum::crc32c_append(crc, payload)
}

/// Decodes and verifies the record starting at `buf[offset..]`.
///
/// Checks, in order: that the header fits, the magic, the kind and flags, the reserved bytes,
/// that the payload and its padding fit in `buf`, that the padding is zeros, and the
/// checksum. Errors carry `offset`.
pub fn decode_record(buf: &[u8], offset: usize) -> Result<Record<'_>, FormatError> {
    const WHAT: Structure = Structure::Record;
    let header = decode_record_header(buf, offset)?;
    let payload_start = offset + RECORD_HEADER_LEN;
    // The padding is part of the record: a record is whole only when all of it is there.
    need(WHAT, buf, offset, header.record_len() as usize)?;
    let payload_end = payload_start + header.payload_len as usize;
    let payload = &buf[payload_start..payload_end];
    // The checksum does not cover the padding, so its bytes are checked here: the format
    // writes zeros, and anything else is damage.
    let padding = &buf[payload_end..offset + header.record_len() as usize];
    if let Some(&byte) = padding.iter().find(|&&b| b != 0) {
        return Err(invalid_at(WHAT, offset as u64, "padding", u64::from(byte)));
    }
    check_crc(
        WHAT,
        offset,
        get_u32(&buf[offset..], 12),
        record_crc(&buf[offset..payload_start], payload),
    )?;
    Ok(Record { header, payload })
}

/// Decodes the header of the record at `buf[offset..]` with every check of [`decode_record`]
/// that needs no byte past the header: the checksum, which covers the payload, is not
/// verified. For reading a record's sequence number and length without reading its text.
pub fn decode_record_header(buf: &[u8], offset: usize) -> Result<RecordHeader, FormatError> {
    const WHAT: Structure = Structure::Record;
    need(WHAT, buf, offset, RECORD_HEADER_LEN)?;
    let header = &buf[offset..offset + RECORD_HEADER_LEN];
    let invalid = |field, value| invalid_at(WHAT, offset as u64, field, value);
    if header[..4] != RECORD_MAGIC {
        return Err(bad_magic(WHAT, offset, &header[..4]));
    }
    let kind =
        RecordKind::from_code(header[4]).ok_or_else(|| invalid("kind", u64::from(header[4])))?;
    let flags = header[5];
    let commit = flags & FLAG_COMMIT != 0;
    if flags & !KNOWN_FLAGS != 0 || (!commit && flags & SPAN_FLAGS != 0) {
        return Err(invalid("flags", u64::from(flags)));
    }
    if !all_zero(&header[6..8]) || !all_zero(&header[44..48]) {
        return Err(invalid("reserved bytes", 0));
    }
    let payload_len = get_u32(header, 8);
    let group_len = get_u32(header, 40);
    let own_len = record_len(payload_len);
    let group_len_ok = if commit {
        u64::from(group_len) >= own_len && (group_len as usize).is_multiple_of(RECORD_ALIGN)
    } else {
        group_len == 0
    };
    if !group_len_ok {
        return Err(invalid("group length", u64::from(group_len)));
    }
    if kind == RecordKind::Tombstone && payload_len != 0 {
        return Err(invalid("tombstone payload length", u64::from(payload_len)));
    }
    Ok(RecordHeader {
        kind,
        commit,
        payload_len,
        id: DocId::from_u128(get_u128(header, 16)),
        seq: get_u64(header, 32),
        group_len,
        continues_in_next: flags & FLAG_CONTINUES_IN_NEXT != 0,
        continues_from_prev: flags & FLAG_CONTINUES_FROM_PREV != 0,
    })
}
