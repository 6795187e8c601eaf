//! The retired-segment list: segments a compaction replaced, to be removed.

use crate::FORMAT_VERSION;
use crate::codec::{all_zero, get_u32, get_u128, put};
use crate::error::{FormatError, Structure, check_crc, check_header, invalid, invalid_at, need};

/// Magic bytes at the start of the retired-segment list.
pub const RETIRED_MAGIC: [u8; 8] = *b"TXTSRTRD";
/// Encoded size of the list's header.
pub const RETIRED_HEADER_LEN: usize = 48;
const _: () = assert!(44 + 4 == RETIRED_HEADER_LEN);

/// The segments that a finished compaction replaced. Their live records have durable copies
/// in newer segments, and some of their tombstones may have been dropped, so the store must
/// never be read with only some of them: writing this list (atomically) is the moment a
/// compaction takes effect, and an open removes every segment it names before reading any.
///
/// Since version 4 the list also names the segments that hold the copies, for as long as
/// no index checkpoint reflects them: an open moves every index entry that points into a
/// retired segment to its copy, found by walking those segments.
///
/// Header:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSRTRD` |
/// | 8 | 2 | format version |
/// | 10 | 2 | header length (48) |
/// | 12 | 4 | number of segment ids |
/// | 16 | 16 | store uid |
/// | 32 | 4 | number of copy segment ids (zero before version 4) |
/// | 36 | 4 | reserved, zero |
/// | 40 | 4 | CRC32C of the id table |
/// | 44 | 4 | CRC32C of bytes 0..44 |
///
/// Then one little-endian `u32` segment id per retired segment, ascending, and one per copy
/// segment, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredList {
    /// The store the list belongs to.
    pub store_uid: u128,
    /// The retired segments, ascending.
    pub segments: Vec<u32>,
    /// The segments holding the copies of their live records that no index checkpoint
    /// reflects yet, ascending.
    pub copies: Vec<u32>,
}

impl RetiredList {
    /// Encodes the list; `segments` must be ascending (the decoder checks it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; RETIRED_HEADER_LEN];
        for id in self.segments.iter().chain(&self.copies) {
            out.extend_from_slice(&id.to_le_bytes());
        }
        let count = u32::try_from(self.segments.len()).expect("segment ids are 32-bit");
        let copies = u32::try_from(self.copies.len()).expect("segment ids are 32-bit");
        put(&mut out, 0, &RETIRED_MAGIC);
        put(&mut out, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut out, 10, &(RETIRED_HEADER_LEN as u16).to_le_bytes());
        put(&mut out, 12, &count.to_le_bytes());
        put(&mut out, 16, &self.store_uid.to_le_bytes());
        put(&mut out, 32, &copies.to_le_bytes());
        let table_crc = crate::checksum::crc32c(&out[RETIRED_HEADER_LEN..]);
        put(&mut out, 40, &table_crc.to_le_bytes());
        let crc = crate::checksum::crc32c(&out[..44]);
        put(&mut out, 44, &crc.to_le_bytes());
        out
    }

    /// Decodes a whole list file.
    pub fn decode(buf: &[u8]) -> Result<RetiredList, FormatError> {
        const WHAT: Structure = Structure::RetiredList;
        let header = check_header(WHAT, buf, &RETIRED_MAGIC, RETIRED_HEADER_LEN)?;
        if !all_zero(&header[36..40]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        let count = get_u32(header, 12) as usize;
        let copies = get_u32(header, 32) as usize;
        let table_len = (count + copies) * 4;
        need(WHAT, buf, RETIRED_HEADER_LEN, table_len)?;
        if buf.len() != RETIRED_HEADER_LEN + table_len {
            return Err(invalid_at(
                WHAT,
                RETIRED_HEADER_LEN as u64,
                "file length",
                buf.len() as u64,
            ));
        }
        let table = &buf[RETIRED_HEADER_LEN..];
        check_crc(
            WHAT,
            RETIRED_HEADER_LEN,
            get_u32(header, 40),
            crate::checksum::crc32c(table),
        )?;
        let ids: Vec<u32> = (0..count + copies).map(|i| get_u32(table, i * 4)).collect();
        let (segments, copies) = ids.split_at(count);
        for (list, first) in [(segments, 0), (copies, count)] {
            if let Some(at) = list.windows(2).position(|w| w[0] >= w[1]) {
                return Err(invalid_at(
                    WHAT,
                    (RETIRED_HEADER_LEN + (first + at + 1) * 4) as u64,
                    "segment id (not ascending)",
                    u64::from(list[at + 1]),
                ));
            }
        }
        Ok(RetiredList {
            store_uid: get_u128(header, 16),
            segments: segments.to_vec(),
            copies: copies.to_vec(),
        })
    }
}
