//! The index (hint) file: a checkpoint of the in-memory index, so that opening a store does
//! not have to read every record.
//!
//! The file is a cache of the data: it can always be rebuilt from the segments, and the engine
//! does so whenever the file is missing, damaged or disagrees with the segments.

use crate::FORMAT_VERSION;
use crate::codec::{all_zero, get_u16, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_crc, check_header, need};
use crate::id::DocId;
use crate::meta::invalid;

/// Magic bytes at the start of the index file.
pub const INDEX_MAGIC: [u8; 8] = *b"TXTSIDX\0";
/// Encoded size of [`IndexHeader`]; the entries follow it.
pub const INDEX_HEADER_LEN: usize = 80;
/// Encoded size of one [`IndexEntry`].
pub const INDEX_ENTRY_LEN: usize = 40;
const _: () = assert!(76 + 4 == INDEX_HEADER_LEN);
const _: () = assert!(36 + 4 == INDEX_ENTRY_LEN);

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
/// | 8 | 2 | format version |
/// | 10 | 2 | header length (80) |
/// | 12 | 2 | entry length (40) |
/// | 14 | 2 | reserved, zero |
/// | 16 | 16 | store uid |
/// | 32 | 8 | number of entries |
/// | 40 | 4 | checkpoint segment id |
/// | 44 | 4 | checkpoint offset within that segment |
/// | 48 | 8 | last sequence number written before the checkpoint |
/// | 56 | 16 | reserved, zero |
/// | 72 | 4 | CRC32C of all entry bytes |
/// | 76 | 4 | CRC32C of bytes 0..76 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// The uid of the store this index belongs to.
    pub store_uid: u128,
    /// Number of entries that follow.
    pub entry_count: u64,
    /// Every record before this position is reflected in the entries.
    pub checkpoint: Position,
    /// The largest sequence number in the data before the checkpoint (tombstones included).
    pub last_seq: u64,
    /// CRC32C over the entry bytes.
    pub entries_crc: u32,
}

/// One live document in the index file.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 16 | document id |
/// | 16 | 8 | sequence number of the record |
/// | 24 | 4 | segment id |
/// | 28 | 4 | offset of the record within the segment |
/// | 32 | 4 | text length in bytes |
/// | 36 | 4 | reserved, zero |
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

impl IndexHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; INDEX_HEADER_LEN] {
        let mut buf = [0u8; INDEX_HEADER_LEN];
        put(&mut buf, 0, &INDEX_MAGIC);
        put(&mut buf, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(INDEX_HEADER_LEN as u16).to_le_bytes());
        put(&mut buf, 12, &(INDEX_ENTRY_LEN as u16).to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.entry_count.to_le_bytes());
        put(&mut buf, 40, &self.checkpoint.segment.to_le_bytes());
        put(&mut buf, 44, &self.checkpoint.offset.to_le_bytes());
        put(&mut buf, 48, &self.last_seq.to_le_bytes());
        put(&mut buf, 72, &self.entries_crc.to_le_bytes());
        let crc = crate::checksum::crc32c(&buf[..76]);
        put(&mut buf, 76, &crc.to_le_bytes());
        buf
    }

    /// Decodes the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<IndexHeader, FormatError> {
        const WHAT: Structure = Structure::IndexHeader;
        let buf = check_header(WHAT, buf, &INDEX_MAGIC, INDEX_HEADER_LEN)?;
        let entry_len = get_u16(buf, 12);
        if usize::from(entry_len) != INDEX_ENTRY_LEN {
            return Err(invalid(WHAT, "entry length", u64::from(entry_len)));
        }
        if !all_zero(&buf[14..16]) || !all_zero(&buf[56..72]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        Ok(IndexHeader {
            store_uid: get_u128(buf, 16),
            entry_count: get_u64(buf, 32),
            checkpoint: Position {
                segment: get_u32(buf, 40),
                offset: get_u32(buf, 44),
            },
            last_seq: get_u64(buf, 48),
            entries_crc: get_u32(buf, 72),
        })
    }
}

impl IndexEntry {
    /// Appends the encoded entry to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; INDEX_ENTRY_LEN];
        put(&mut buf, 0, &self.id.to_le_bytes());
        put(&mut buf, 16, &self.seq.to_le_bytes());
        put(&mut buf, 24, &self.position.segment.to_le_bytes());
        put(&mut buf, 28, &self.position.offset.to_le_bytes());
        put(&mut buf, 32, &self.text_len.to_le_bytes());
        out.extend_from_slice(&buf);
    }

    fn decode(buf: &[u8], offset: usize) -> Result<IndexEntry, FormatError> {
        let buf = &buf[offset..offset + INDEX_ENTRY_LEN];
        if !all_zero(&buf[36..40]) {
            return Err(FormatError::InvalidField {
                what: Structure::IndexEntries,
                offset: offset as u64,
                field: "reserved bytes",
                value: 0,
            });
        }
        Ok(IndexEntry {
            id: DocId::from_u128(get_u128(buf, 0)),
            seq: get_u64(buf, 16),
            position: Position {
                segment: get_u32(buf, 24),
                offset: get_u32(buf, 28),
            },
            text_len: get_u32(buf, 32),
        })
    }
}

/// Encodes a whole index file: header, then one entry per item of `entries`.
pub fn encode_index(
    store_uid: u128,
    checkpoint: Position,
    last_seq: u64,
    entries: impl ExactSizeIterator<Item = IndexEntry>,
) -> Vec<u8> {
    let count = entries.len();
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + count * INDEX_ENTRY_LEN);
    out.resize(INDEX_HEADER_LEN, 0);
    for entry in entries {
        entry.encode_into(&mut out);
    }
    let header = IndexHeader {
        store_uid,
        entry_count: count as u64,
        checkpoint,
        last_seq,
        entries_crc: crate::checksum::crc32c(&out[INDEX_HEADER_LEN..]),
    };
    out[..INDEX_HEADER_LEN].copy_from_slice(&header.encode());
    out
}

/// Decodes and verifies a whole index file.
pub fn decode_index(buf: &[u8]) -> Result<(IndexHeader, Vec<IndexEntry>), FormatError> {
    let header = IndexHeader::decode(buf)?;
    let entries_len = header
        .entry_count
        .checked_mul(INDEX_ENTRY_LEN as u64)
        .and_then(|len| usize::try_from(len).ok())
        .ok_or(invalid(
            Structure::IndexHeader,
            "entry count",
            header.entry_count,
        ))?;
    need(Structure::IndexEntries, buf, INDEX_HEADER_LEN, entries_len)?;
    if buf.len() != INDEX_HEADER_LEN + entries_len {
        return Err(FormatError::InvalidField {
            what: Structure::IndexEntries,
            offset: INDEX_HEADER_LEN as u64,
            field: "file length",
            value: buf.len() as u64,
        });
    }
    let table = &buf[INDEX_HEADER_LEN..];
    check_crc(
        Structure::IndexEntries,
        INDEX_HEADER_LEN,
        header.entries_crc,
        crate::checksum::crc32c(table),
    )?;
    let entries = (0..entries_len / INDEX_ENTRY_LEN)
        .map(|i| IndexEntry::decode(buf, INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((header, entries))
}
