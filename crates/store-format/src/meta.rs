//! The store metadata file: settings that belong to the store, not to one open of it.

use crate::FORMAT_VERSION;
use crate::codec::{all_zero, get_u16, get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_header, invalid};

/// Magic bytes at the start of the metadata file.
pub const META_MAGIC: [u8; 8] = *b"TXTSMETA";
/// Encoded size of [`StoreMeta`].
pub const META_LEN: usize = 64;
const _: () = assert!(60 + 4 == META_LEN);
/// The first format version whose metadata records the change floor.
const CHANGE_FLOOR_VERSION: u16 = 5;

/// Settings persisted in the store, so that an open never silently resets them.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSMETA` |
/// | 8 | 2 | format version |
/// | 10 | 2 | header length (64) |
/// | 12 | 4 | reserved, zero |
/// | 16 | 16 | store uid |
/// | 32 | 8 | maximum document size in bytes |
/// | 40 | 4 | capacity of new segments in bytes |
/// | 44 | 8 | change floor (version 5 on; reserved, zero, before) |
/// | 52 | 8 | reserved, zero |
/// | 60 | 4 | CRC32C of bytes 0..60 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreMeta {
    /// Random id of the store, repeated in every segment header so that a segment copied in
    /// from another store is refused.
    pub store_uid: u128,
    /// Largest document text accepted by `put`, in bytes.
    pub max_document_bytes: u64,
    /// Capacity of segments created from now on, in bytes (existing segments keep theirs).
    pub segment_capacity: u32,
    /// The highest sequence number of a delete that compaction dropped: a change feed that
    /// starts below it would miss that delete. `None` in files written before version 5,
    /// which did not record it; a writer records one before it writes the file again.
    pub change_floor: Option<u64>,
}

impl StoreMeta {
    /// Encodes the metadata.
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut buf = [0u8; META_LEN];
        put(&mut buf, 0, &META_MAGIC);
        put(&mut buf, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(META_LEN as u16).to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.max_document_bytes.to_le_bytes());
        put(&mut buf, 40, &self.segment_capacity.to_le_bytes());
        debug_assert!(
            self.change_floor.is_some(),
            "a writer records the change floor"
        );
        put(&mut buf, 44, &self.change_floor.unwrap_or(0).to_le_bytes());
        let crc = crate::checksum::crc32c(&buf[..60]);
        put(&mut buf, 60, &crc.to_le_bytes());
        buf
    }

    /// Decodes the metadata at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<StoreMeta, FormatError> {
        const WHAT: Structure = Structure::StoreMeta;
        let buf = check_header(WHAT, buf, &META_MAGIC, META_LEN)?;
        let recorded_floor = get_u16(buf, 8) >= CHANGE_FLOOR_VERSION;
        let reserved_from = if recorded_floor { 52 } else { 44 };
        if !all_zero(&buf[12..16]) || !all_zero(&buf[reserved_from..60]) {
            return Err(invalid(WHAT, "reserved bytes", 0));
        }
        Ok(StoreMeta {
            store_uid: get_u128(buf, 16),
            max_document_bytes: get_u64(buf, 32),
            segment_capacity: get_u32(buf, 40),
            change_floor: recorded_floor.then(|| get_u64(buf, 44)),
        })
    }
}
