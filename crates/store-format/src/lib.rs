//! The pure core of textstore: document ids, the on-disk encodings, checksums, range logic,
//! the read handle, and the vocabulary every layer speaks: the read, residency and write
//! traits, error kinds and the stats visitor (with `memory`, an in-memory store of them).
//!
//! This crate does no I/O, spawns no thread and contains no `unsafe`: everything here
//! encodes into a `Vec<u8>` or decodes from a `&[u8]`, so it can be fuzzed and run under
//! miri. It does not know about files, mappings, locks or recovery; `store-mmap` does.
//!
//! Invariants:
//! - Every integer on disk is little-endian and sits at a fixed offset; reserved bytes are
//!   written as zero and rejected when not zero, so a later version can use them.
//! - Decoders never panic, whatever the input: they return a [`FormatError`] naming the
//!   structure and its offset.
//! - [`DocId::from_key`] is part of the format and never changes.
//!
//! The byte tables live on each type and, gathered, in `docs/FORMAT.md`.

#![forbid(unsafe_code)]

mod batch;
mod checksum;
mod codec;
mod error;
mod id;
mod index;
mod journal;
mod kind;
mod limit;
#[cfg(feature = "memory")]
mod memory;
mod meta;
mod offsets;
mod range;
mod record;
mod retired;
mod segment;
mod stats;
mod text;
mod traits;

pub use batch::{BatchOp, WriteBatch, encode_ops};
pub use checksum::{crc32c, crc32c_append};
pub use error::{FormatError, Structure};
pub use id::{DocId, IdError};
pub use index::{
    INDEX_ENTRY_LEN, INDEX_HEADER_LEN, INDEX_LAYOUT_VERSION, INDEX_MAGIC, INDEX_PAGE_LEN,
    INDEX_SEGMENT_LEN, IndexCheckpoint, IndexEntry, IndexHeader, MAX_LOAD_PERCENT, Position,
    SLOTS_PER_PAGE, SegmentLive, check_index_page, decode_index, encode_index, index_lookup,
    index_page_entries, index_slot_count, open_index,
};
pub use journal::{
    DecodedFrame, JOURNAL_ENTRY_LEN, JOURNAL_FRAME_HEADER_LEN, JOURNAL_HEADER_LEN, JOURNAL_MAGIC,
    JournalBase, JournalChange, JournalFrame, JournalFrames, JournalHeader, SegmentRows,
    decode_journal_entry, encode_journal_frame, journal_entry_id,
};
pub use kind::{ErrorKind, StoreError};
pub use limit::{
    WRITE_LIMIT_FILE_LEN, WRITE_LIMIT_LEN, WRITE_LIMIT_MAGIC, WRITE_LIMIT_SLOT_STRIDE, WriteLimit,
};
#[cfg(feature = "memory")]
pub use memory::{MemoryError, MemoryStore};
pub use meta::{META_LEN, META_MAGIC, StoreMeta};
pub use offsets::{CHAR_STRIDE, CharOffsets, LineOffsets};
pub use range::{RangeError, RangeUnit, TextRange};
pub use record::{
    FLAG_COMMIT, FLAG_CONTINUES_FROM_PREV, FLAG_CONTINUES_IN_NEXT, GroupEnd, RECORD_ALIGN,
    RECORD_HEADER_LEN, RECORD_MAGIC, Record, RecordHeader, RecordKind, decode_record,
    decode_record_header, encode_record, encode_record_header, padding_len, record_len,
};
pub use retired::{RETIRED_HEADER_LEN, RETIRED_MAGIC, RetiredList};
pub use segment::{SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SealedSegment, SegmentHeader};
pub use stats::{Figure, Figures, StatsVisitor, VisitStats};
pub use text::{Doc, DocMeta, Text};
pub use traits::{
    CommitEvent, CommitObserver, DocRead, DocWrite, IntoTicket, Offer, OfferOf, Prefetch, Ready,
    Residency, WriteTicket,
};

/// The format version this build writes, stored in every header. Version history in
/// docs/FORMAT.md.
pub const FORMAT_VERSION: u16 = 6;
/// The oldest format version this build reads: every version since is a superset of it.
pub const OLDEST_READ_VERSION: u16 = 1;
