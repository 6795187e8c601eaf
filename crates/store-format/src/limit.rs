//! The write limit: how far the writer may have written the newest segment, when that
//! segment's file held an earlier segment (a spare file).

use crate::FORMAT_VERSION;
use crate::codec::{get_u32, get_u64, get_u128, put};
use crate::error::{FormatError, Structure, check_header, invalid};

/// Magic bytes at the start of a write-limit slot.
pub const WRITE_LIMIT_MAGIC: [u8; 8] = *b"TXTSLIMT";
/// Encoded size of one [`WriteLimit`] slot.
pub const WRITE_LIMIT_LEN: usize = 48;
const _: () = assert!(44 + 4 == WRITE_LIMIT_LEN);
/// Where slot `g % 2` starts, for the slot of generation `g`: each slot in a 512-byte sector
/// of its own, so that a torn write of one leaves the other whole.
pub const WRITE_LIMIT_SLOT_STRIDE: usize = 512;
/// Bytes of a write-limit file once both slots were written.
pub const WRITE_LIMIT_FILE_LEN: usize = WRITE_LIMIT_SLOT_STRIDE + WRITE_LIMIT_LEN;

/// One slot of the write-limit file: no record of segment `segment_id` starts or ends at or
/// past `limit`. The writer makes a new limit durable before any record of the segment
/// reaches past the one before, so an open after a crash reads the segment's file no
/// further than the limit: past it lie only the earlier segment's bytes.
///
/// The file holds two slots, written in turn; the one of higher generation that decodes is
/// the writer's last.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `TXTSLIMT` |
/// | 8 | 2 | format version |
/// | 10 | 2 | slot length (48) |
/// | 12 | 4 | segment id |
/// | 16 | 16 | store uid |
/// | 32 | 8 | generation: 1 for the first slot written, one more for each after it |
/// | 40 | 4 | the limit: an offset in the segment, header included |
/// | 44 | 4 | CRC32C of bytes 0..44 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimit {
    /// The store the file belongs to.
    pub store_uid: u128,
    /// The segment the limit is for.
    pub segment_id: u32,
    /// The slot's generation; it says which slot it goes in (`generation % 2`).
    pub generation: u64,
    /// No record of the segment reaches this offset.
    pub limit: u32,
}

impl WriteLimit {
    /// Where this slot goes in the file.
    pub fn offset(&self) -> usize {
        (self.generation % 2) as usize * WRITE_LIMIT_SLOT_STRIDE
    }

    /// Encodes the slot.
    pub fn encode(&self) -> [u8; WRITE_LIMIT_LEN] {
        let mut buf = [0u8; WRITE_LIMIT_LEN];
        put(&mut buf, 0, &WRITE_LIMIT_MAGIC);
        put(&mut buf, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut buf, 10, &(WRITE_LIMIT_LEN as u16).to_le_bytes());
        put(&mut buf, 12, &self.segment_id.to_le_bytes());
        put(&mut buf, 16, &self.store_uid.to_le_bytes());
        put(&mut buf, 32, &self.generation.to_le_bytes());
        put(&mut buf, 40, &self.limit.to_le_bytes());
        let crc = crate::checksum::crc32c(&buf[..44]);
        put(&mut buf, 44, &crc.to_le_bytes());
        buf
    }

    /// Decodes the slot at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<WriteLimit, FormatError> {
        const WHAT: Structure = Structure::WriteLimit;
        let buf = check_header(WHAT, buf, &WRITE_LIMIT_MAGIC, WRITE_LIMIT_LEN)?;
        let generation = get_u64(buf, 32);
        if generation == 0 {
            return Err(invalid(WHAT, "generation", 0));
        }
        Ok(WriteLimit {
            store_uid: get_u128(buf, 16),
            segment_id: get_u32(buf, 12),
            generation,
            limit: get_u32(buf, 40),
        })
    }

    /// The slot of highest generation among those of a write-limit file's bytes that decode,
    /// sit where their generation puts them, and belong to store `store_uid`; `None` when
    /// neither does. (A slot of another store, whatever its generation, says nothing of
    /// this one's segments.)
    pub fn newest(file: &[u8], store_uid: u128) -> Option<WriteLimit> {
        (0..2)
            .filter_map(|slot| {
                let at = slot * WRITE_LIMIT_SLOT_STRIDE;
                WriteLimit::decode(file.get(at..)?)
                    .ok()
                    .filter(|limit| limit.offset() == at && limit.store_uid == store_uid)
            })
            .max_by_key(|limit| limit.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: u128 = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;

    fn limit(generation: u64, limit: u32) -> WriteLimit {
        WriteLimit {
            store_uid: UID,
            segment_id: 7,
            generation,
            limit,
        }
    }

    /// A file as the writer leaves it after writing `slots` in order.
    fn file(slots: &[WriteLimit]) -> Vec<u8> {
        let mut file = Vec::new();
        for slot in slots {
            let end = slot.offset() + WRITE_LIMIT_LEN;
            if file.len() < end {
                file.resize(end, 0);
            }
            file[slot.offset()..end].copy_from_slice(&slot.encode());
        }
        file
    }

    #[test]
    fn a_slot_round_trips() {
        let slot = limit(3, 1 << 20);
        assert_eq!(WriteLimit::decode(&slot.encode()), Ok(slot));
        assert_eq!(slot.offset(), WRITE_LIMIT_SLOT_STRIDE);
        assert_eq!(limit(4, 0).offset(), 0);
    }

    /// The writer allocates the file's length up front, so that a later slot never needs a
    /// block a full disk could refuse: both slots lie inside it.
    #[test]
    fn the_file_length_holds_both_slots() {
        let both = file(&[limit(1, 64), limit(2, 128)]);
        assert_eq!(both.len(), WRITE_LIMIT_FILE_LEN);
        assert_eq!(WriteLimit::newest(&both, UID), Some(limit(2, 128)));
    }

    #[test]
    fn the_newest_slot_that_decodes_is_the_writers_last() {
        assert_eq!(WriteLimit::newest(&[], UID), None);
        assert_eq!(
            WriteLimit::newest(&file(&[limit(1, 100)]), UID),
            Some(limit(1, 100))
        );
        let both = file(&[limit(1, 100), limit(2, 200)]);
        assert_eq!(WriteLimit::newest(&both, UID), Some(limit(2, 200)));
        let three = file(&[limit(1, 100), limit(2, 200), limit(3, 300)]);
        assert_eq!(WriteLimit::newest(&three, UID), Some(limit(3, 300)));

        // A torn last write leaves the slot before it.
        let mut torn = three.clone();
        torn[WRITE_LIMIT_SLOT_STRIDE + 41] ^= 0xff;
        assert_eq!(WriteLimit::newest(&torn, UID), Some(limit(2, 200)));
        // A slot found where its generation does not put it is not the writer's.
        let mut misplaced = both.clone();
        misplaced[..WRITE_LIMIT_LEN].copy_from_slice(&limit(5, 500).encode());
        assert_eq!(WriteLimit::newest(&misplaced, UID), Some(limit(1, 100)));
        // A file cut inside the slot written last keeps the other.
        assert_eq!(
            WriteLimit::newest(&three[..WRITE_LIMIT_SLOT_STRIDE + 20], UID),
            Some(limit(2, 200))
        );
        // A slot of another store, of any generation, is not this store's.
        let mut foreign = both.clone();
        let other = WriteLimit {
            store_uid: UID + 1,
            ..limit(4, 400)
        };
        foreign[..WRITE_LIMIT_LEN].copy_from_slice(&other.encode());
        assert_eq!(WriteLimit::newest(&foreign, UID), Some(limit(1, 100)));
        assert_eq!(WriteLimit::newest(&foreign, UID + 1), Some(other));
    }

    #[test]
    fn damage_is_an_error_naming_the_structure() {
        let mut bytes = limit(1, 100).encode();
        bytes[40] ^= 1;
        let err = WriteLimit::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("write limit"), "{err}");
        let zero_generation = limit(0, 100).encode();
        assert!(WriteLimit::decode(&zero_generation).is_err());
    }
}
