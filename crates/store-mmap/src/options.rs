//! Options of a store.

use std::sync::Arc;
use std::time::Duration;

use store_format::{RECORD_ALIGN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, record_len};

use crate::error::{Error, Result};
use crate::storage::{OsStorage, Storage};

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit ends with an `fdatasync`: when `put` returns, the text survives a power
    /// loss. The default, as users of a store expect.
    #[default]
    Sync,
    /// Commits are left to the operating system's write-back; [`crate::Store::sync`] and
    /// closing make them durable. For bulk loads that sync once at the end. A crash of the
    /// process loses nothing. A crash of the machine may lose the commits since the last
    /// sync, never a part of a commit; and since the kernel writes pages back in any order,
    /// it may leave a later commit on disk without an earlier one. Recovery cannot tell that
    /// from damage to committed data, so such a store then refuses to open, naming the
    /// range, and [`crate::recover()`] copies every intact record into a new store.
    WriteBack,
}

/// How reads will touch the segments, passed to the kernel with `madvise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessPattern {
    /// The kernel's default read-ahead.
    #[default]
    Normal,
    /// Reads walk the store in order (export, verify, scans): aggressive read-ahead.
    Sequential,
    /// Point reads of random documents: no read-ahead, so a 2 KiB read does not pull 128 KiB.
    Random,
}

/// When a read checks the record it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadVerification {
    /// A record's CRC32C and UTF-8 are checked the first time this process reads it, or
    /// when this process wrote it, copied it or replayed it on open, and remembered; later
    /// reads check only its header's fields (magic, kind, id, length). A record damaged on
    /// disk after that is found by [`crate::Store::verify`] and the scrub
    /// ([`crate::Scrub`]), which make the next read of it fail. Until then a read of it
    /// returns the bytes the mapping holds, which are the checked ones for as long as the
    /// page stays in memory.
    #[default]
    FirstRead,
    /// Every read checks the CRC32C and UTF-8 of the whole record.
    EveryRead,
}

/// What every segment mapping of an open is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapSettings {
    pub(crate) access: AccessPattern,
    pub(crate) verification: ReadVerification,
}

/// Settings of one open of a store.
///
/// `max_document_bytes` and `segment_capacity` belong to the store: they are persisted when
/// the store is created and when they are given explicitly, and an open that leaves them
/// `None` keeps the persisted values.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest text accepted, in bytes. `None`: keep the store's (64 MiB for a new store).
    pub max_document_bytes: Option<u64>,
    /// Capacity of segments created from now on, in bytes. `None`: keep the store's (256 MiB
    /// for a new store).
    pub segment_capacity: Option<u32>,
    /// When commits reach the disk.
    pub durability: Durability,
    /// The `madvise` hint applied to every segment mapping.
    pub access_pattern: AccessPattern,
    /// Ask the kernel to read every segment into memory on open (`madvise(WILLNEED)`), so that
    /// the first reads do not wait for the disk.
    pub prefault: bool,
    /// When reads check the records they return.
    pub read_verification: ReadVerification,
    /// Under [`Durability::Sync`], a background thread writes zeros over the active
    /// segment's preallocated space ahead of the commits and starts their write-back, so
    /// that a commit's `fdatasync` flushes its data and no file-system metadata (see
    /// docs/PERFORMANCE.md). It uses no disk space beyond the preallocation. On by default.
    pub zero_ahead: bool,
    /// How many files of segments that a compaction due by its policy replaced
    /// ([`crate::CompactionScope::Due`], the automatic compaction of a store that keeps
    /// writing) the store keeps as spares, instead of removing them, to write its next
    /// segments over: the file's space is written already, so a commit's `fdatasync` there
    /// flushes its data and no extent conversion, for commits of every size (zeroing ahead
    /// covers only small ones). Each spare holds the disk space of the segment it was, up to
    /// one segment's capacity. [`crate::Store::compact`], which is asked for space, gives
    /// every spare back. A file that a read-only handle still maps is not written over until
    /// the handle lets it go. 0: every replaced file is removed. 1 by default.
    pub spare_files: usize,
    /// The most an open after a crash replays, in bytes of records: the engine writes an
    /// index checkpoint on a thread of its own every half of this, and a commit that finds
    /// the previous one still being written waits for it (`None`: checkpoints only at
    /// [`crate::Store::checkpoint`] and close). Each checkpoint writes the whole index file
    /// (about 47 bytes per document), so a larger value writes the index less often.
    /// Between them the index journal bounds the replay much closer (see
    /// [`StoreOptions::journal_bytes`]). Under [`Durability::Sync`] with the journal kept,
    /// the journal is synced every half of this instead, and the index file is rewritten
    /// only once 64 times its own size of records were committed since the last (or 2^18
    /// changes, so that an open after a crash indexes no more): a store of large documents
    /// then writes its index far less often, and a power cut still replays at most this.
    /// 32 MiB by default.
    pub checkpoint_bytes: Option<u64>,
    /// The most an open after a crash replays while the index journal is kept, in bytes of
    /// records: every this many, a commit appends the index's changes since the last frame
    /// to `index.tsj` (40 bytes per changed document, no flush), and an open reads the
    /// frames instead of the records (`None`: no journal; the replay is bounded by
    /// [`StoreOptions::checkpoint_bytes`]). Under [`Durability::WriteBack`] a frame claims
    /// only synced data, so it is appended at the first [`crate::Store::sync`] after this
    /// many bytes. 16 KiB by default.
    pub journal_bytes: Option<u64>,
    /// A data flush that takes at least this long is logged as a `tracing` warning (a
    /// failing or overloaded disk shows there first). 100 ms by default.
    pub slow_sync: Duration,
    /// The file operations every change to the store's files goes through: [`OsStorage`],
    /// or a test's fault-injecting implementation.
    pub storage: Arc<dyn Storage>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            max_document_bytes: None,
            segment_capacity: None,
            durability: Durability::default(),
            access_pattern: AccessPattern::default(),
            prefault: false,
            read_verification: ReadVerification::default(),
            zero_ahead: true,
            spare_files: 1,
            checkpoint_bytes: Some(DEFAULT_CHECKPOINT_BYTES),
            journal_bytes: Some(DEFAULT_JOURNAL_BYTES),
            slow_sync: DEFAULT_SLOW_SYNC,
            storage: Arc::new(OsStorage),
        }
    }
}

/// Default capacity of a segment.
pub const DEFAULT_SEGMENT_CAPACITY: u32 = 256 << 20;
/// Default of [`StoreOptions::slow_sync`].
pub const DEFAULT_SLOW_SYNC: Duration = Duration::from_millis(100);
/// Default of [`StoreOptions::checkpoint_bytes`].
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 32 << 20;
/// Default of [`StoreOptions::journal_bytes`].
pub const DEFAULT_JOURNAL_BYTES: u64 = 16 << 10;
/// Default largest document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 64 << 20;
/// Smallest segment capacity accepted.
pub const MIN_SEGMENT_CAPACITY: u32 = 4096;
/// Largest segment capacity accepted: offsets within a segment are 32-bit.
pub const MAX_SEGMENT_CAPACITY: u32 = u32::MAX - 7;

impl StoreOptions {
    /// Options with every field at its default.
    pub fn new() -> StoreOptions {
        StoreOptions::default()
    }

    /// Sets [`StoreOptions::max_document_bytes`].
    pub fn max_document_bytes(mut self, bytes: u64) -> StoreOptions {
        self.max_document_bytes = Some(bytes);
        self
    }

    /// Sets [`StoreOptions::segment_capacity`].
    pub fn segment_capacity(mut self, bytes: u32) -> StoreOptions {
        self.segment_capacity = Some(bytes);
        self
    }

    /// Sets [`StoreOptions::durability`].
    pub fn durability(mut self, durability: Durability) -> StoreOptions {
        self.durability = durability;
        self
    }

    /// Sets [`StoreOptions::access_pattern`].
    pub fn access_pattern(mut self, pattern: AccessPattern) -> StoreOptions {
        self.access_pattern = pattern;
        self
    }

    /// Sets [`StoreOptions::storage`].
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> StoreOptions {
        self.storage = storage;
        self
    }

    /// Sets [`StoreOptions::read_verification`].
    pub fn read_verification(mut self, verification: ReadVerification) -> StoreOptions {
        self.read_verification = verification;
        self
    }

    pub(crate) fn map_settings(&self) -> MapSettings {
        MapSettings {
            access: self.access_pattern,
            verification: self.read_verification,
        }
    }

    /// Sets [`StoreOptions::zero_ahead`].
    pub fn zero_ahead(mut self, zero_ahead: bool) -> StoreOptions {
        self.zero_ahead = zero_ahead;
        self
    }

    /// Sets [`StoreOptions::spare_files`].
    pub fn spare_files(mut self, files: usize) -> StoreOptions {
        self.spare_files = files;
        self
    }

    /// Sets [`StoreOptions::checkpoint_bytes`].
    pub fn checkpoint_bytes(mut self, bytes: Option<u64>) -> StoreOptions {
        self.checkpoint_bytes = bytes;
        self
    }

    /// Sets [`StoreOptions::journal_bytes`].
    pub fn journal_bytes(mut self, bytes: Option<u64>) -> StoreOptions {
        self.journal_bytes = bytes;
        self
    }

    /// Sets [`StoreOptions::slow_sync`].
    pub fn slow_sync(mut self, at_least: Duration) -> StoreOptions {
        self.slow_sync = at_least;
        self
    }

    /// Sets [`StoreOptions::prefault`].
    pub fn prefault(mut self, prefault: bool) -> StoreOptions {
        self.prefault = prefault;
        self
    }
}

/// Checks that documents of `max_document_bytes` fit in segments of `segment_capacity`.
pub(crate) fn check_limits(max_document_bytes: u64, segment_capacity: u32) -> Result<()> {
    if !(MIN_SEGMENT_CAPACITY..=MAX_SEGMENT_CAPACITY).contains(&segment_capacity) {
        return Err(Error::InvalidOptions {
            reason: format!(
                "segment capacity {segment_capacity} is outside {MIN_SEGMENT_CAPACITY}..={MAX_SEGMENT_CAPACITY} bytes"
            ),
        });
    }
    let room = u64::from(segment_capacity) - SEGMENT_HEADER_LEN as u64;
    let fits = u32::try_from(max_document_bytes).is_ok_and(|len| record_len(len) <= room);
    if !fits {
        // Records are padded to the alignment: the largest text fills the room's last
        // aligned byte.
        let align = RECORD_ALIGN as u64;
        let largest = room / align * align - RECORD_HEADER_LEN as u64;
        return Err(Error::InvalidOptions {
            reason: format!(
                "max document size {max_document_bytes} does not fit in a segment of {segment_capacity} bytes (at most {largest})"
            ),
        });
    }
    Ok(())
}
