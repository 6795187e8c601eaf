//! Size and shape of a store.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::{INDEX_FILE, JOURNAL_FILE, LIMIT_FILE, LOCK_FILE, META_FILE, RETIRED_FILE};
use crate::store::Store;

/// A snapshot of a store's size and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    documents: u64,
    text_bytes: u64,
    live_bytes: u64,
    dead_bytes: u64,
    segments: u64,
    file_bytes: u64,
    allocated_bytes: u64,
    mapped_bytes: u64,
    index_memory_bytes: u64,
    index_file_bytes: u64,
    index_changes: u64,
    last_seq: u64,
    retired_segments: u64,
    spare_files: u64,
    spare_bytes: u64,
    checkpoints: u64,
    checkpoint_failures: u64,
    index_rebuilds: u64,
    segment_capacity: u64,
    compaction_copy_bytes: u64,
}

impl StoreStats {
    /// Live documents.
    pub fn documents(&self) -> u64 {
        self.documents
    }
    /// Bytes of text of the live documents.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }
    /// Bytes of the records of the live documents, headers and padding included.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }
    /// Bytes of records no read can reach: older versions and tombstones. Compaction
    /// reclaims them.
    pub fn dead_bytes(&self) -> u64 {
        self.dead_bytes
    }
    /// `dead / (live + dead)`, or 0 for an empty store.
    pub fn dead_ratio(&self) -> f64 {
        let total = self.live_bytes + self.dead_bytes;
        if total == 0 {
            0.0
        } else {
            self.dead_bytes as f64 / total as f64
        }
    }
    /// Segment files.
    pub fn segments(&self) -> u64 {
        self.segments
    }
    /// Segments replaced by compaction whose files wait for readers to let go; their bytes
    /// are counted in the file sizes, not in the data.
    pub fn retired_segments(&self) -> u64 {
        self.retired_segments
    }
    /// Files of retired segments kept to be written over as new segments
    /// ([`crate::StoreOptions::spare_files`]).
    pub fn spare_files(&self) -> u64 {
        self.spare_files
    }
    /// Their length; counted in the file sizes too.
    pub fn spare_bytes(&self) -> u64 {
        self.spare_bytes
    }
    /// Sum of the lengths of the store's files: its segments (retired and spare ones
    /// included), index file and journal, metadata, lock file and the rest of what the
    /// engine keeps there; not a compaction's outputs before they take their names.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }
    /// Disk space the store's files occupy, as `du` counts it (preallocation included).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated_bytes
    }
    /// Address space of the segment mappings.
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped_bytes
    }
    /// Heap bytes of the index: the changes since its last checkpoint.
    pub fn index_memory_bytes(&self) -> u64 {
        self.index_memory_bytes
    }
    /// Bytes of the index file, mapped and probed in place: page cache the kernel may evict,
    /// shared by every process that reads the store.
    pub fn index_file_bytes(&self) -> u64 {
        self.index_file_bytes
    }
    /// Documents changed since the last index checkpoint: what an open after a crash would
    /// replay, at most.
    pub fn index_changes(&self) -> u64 {
        self.index_changes
    }
    /// Sequence number of the latest write.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    /// Index checkpoints installed since the open.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }
    /// Background index checkpoints that failed to write since the open. Nothing is lost
    /// when one fails (the data is durable, the older index file stays in place), but the
    /// replay after a crash grows until one succeeds.
    pub fn checkpoint_failures(&self) -> u64 {
        self.checkpoint_failures
    }
    /// Times the index was rebuilt from the data since the open, because a page of the
    /// index file failed its check (a lookup that met the page failed until then; nothing
    /// was lost).
    pub fn index_rebuilds(&self) -> u64 {
        self.index_rebuilds
    }
    /// Capacity of a segment: a new one's preallocation takes up to this much disk space.
    pub fn segment_capacity(&self) -> u64 {
        self.segment_capacity
    }
    /// Bytes of the live records in segments that hold dead bytes: what a compaction of
    /// everything copies, and so the disk space it takes before it removes the segments it
    /// replaces. Its outputs add a header each and the tombstones it must keep.
    pub fn compaction_copy_bytes(&self) -> u64 {
        self.compaction_copy_bytes
    }
}

/// The room left on the file system that holds a store. Apart from [`StoreStats`], which
/// describes the store alone (two snapshots compare equal while nothing is written): this
/// changes with every other writer of the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    available_bytes: u64,
}

impl DiskSpace {
    /// The room on the file system that holds `dir` (`statvfs`).
    pub fn of(dir: &Path) -> Result<DiskSpace> {
        let fs = rustix::fs::statvfs(dir).map_err(|err| Error::io("statvfs", dir)(err.into()))?;
        Ok(DiskSpace {
            available_bytes: fs.f_bavail.saturating_mul(fs.f_frsize),
        })
    }

    /// Bytes available to the store's writer. A new segment and a compaction's copies,
    /// which it writes before it frees what they replace, need room there.
    pub fn available_bytes(&self) -> u64 {
        self.available_bytes
    }
}

impl store_format::VisitStats for DiskSpace {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        out.gauge(
            "textstore_filesystem_available_bytes",
            "Bytes available to the store on its file system.",
            self.available_bytes as f64,
        );
    }
}

impl Store {
    /// The room left on the store's file system.
    pub fn disk_space(&self) -> Result<DiskSpace> {
        DiskSpace::of(self.dir())
    }

    /// Counts documents and bytes; stats the store's files for their sizes.
    pub fn stats(&self) -> Result<StoreStats> {
        let index = self.index();
        let mut data_bytes = 0u64;
        let mut stats = StoreStats {
            documents: index.len() as u64,
            text_bytes: index.text_bytes(),
            live_bytes: index.live_record_bytes(),
            index_memory_bytes: index.delta_memory_bytes(),
            index_file_bytes: index.base_bytes(),
            index_changes: index.delta_len() as u64,
            last_seq: self.last_seq(),
            checkpoints: self.checkpoints.installed_count(),
            checkpoint_failures: self.checkpoints.failures(),
            index_rebuilds: self.checkpoints.rebuilds(),
            segment_capacity: u64::from(self.segment_capacity()),
            ..StoreStats::default()
        };
        let mut files = Vec::new();
        for segment in self.segments() {
            stats.segments += 1;
            stats.mapped_bytes += u64::from(segment.capacity());
            data_bytes += segment.record_bytes();
            let live = index.segment_live_bytes(segment.id());
            if segment.record_bytes() > live {
                stats.compaction_copy_bytes += live;
            }
            files.push(segment.path().to_path_buf());
        }
        for retired in self.segments.retired() {
            stats.retired_segments += 1;
            files.push(retired.path.clone());
        }
        for (spare, len) in self.segments.spares() {
            stats.spare_files += 1;
            stats.spare_bytes += len;
            files.push(spare.clone());
        }
        for name in [
            LOCK_FILE,
            META_FILE,
            INDEX_FILE,
            JOURNAL_FILE,
            RETIRED_FILE,
            LIMIT_FILE,
        ] {
            files.push(self.dir().join(name));
        }
        for path in files {
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    stats.file_bytes += meta.len();
                    stats.allocated_bytes += meta.blocks() * 512;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io("stat", path)(err)),
            }
        }
        // Live records are a subset of the data; saturate rather than panic if a bug ever
        // breaks that, since stats must never take the process down.
        stats.dead_bytes = data_bytes.saturating_sub(stats.live_bytes);
        Ok(stats)
    }
}

impl store_format::VisitStats for StoreStats {
    fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
        for (name, help, value) in [
            ("textstore_documents", "Live documents.", self.documents),
            (
                "textstore_text_bytes",
                "Text bytes of the live documents.",
                self.text_bytes,
            ),
            (
                "textstore_live_record_bytes",
                "Record bytes of the live documents.",
                self.live_bytes,
            ),
            (
                "textstore_dead_record_bytes",
                "Record bytes no read can reach; compaction reclaims them.",
                self.dead_bytes,
            ),
            ("textstore_segments", "Segment files.", self.segments),
            (
                "textstore_spare_files",
                "Files of retired segments kept to be written over as new segments.",
                self.spare_files,
            ),
            (
                "textstore_spare_bytes",
                "Length of the spare files.",
                self.spare_bytes,
            ),
            (
                "textstore_file_bytes",
                "Length of the store's files.",
                self.file_bytes,
            ),
            (
                "textstore_allocated_bytes",
                "Disk space of the store's files.",
                self.allocated_bytes,
            ),
            (
                "textstore_mapped_bytes",
                "Address space of the segment mappings.",
                self.mapped_bytes,
            ),
            (
                "textstore_index_memory_bytes",
                "Heap bytes of the index: the changes since its last checkpoint.",
                self.index_memory_bytes,
            ),
            (
                "textstore_index_file_bytes",
                "Bytes of the mapped index checkpoint.",
                self.index_file_bytes,
            ),
            (
                "textstore_index_changes",
                "Documents changed since the last index checkpoint.",
                self.index_changes,
            ),
            (
                "textstore_checkpoints",
                "Index checkpoints installed since the open.",
                self.checkpoints,
            ),
            (
                "textstore_checkpoint_failures",
                "Background index checkpoints that failed to write since the open.",
                self.checkpoint_failures,
            ),
            (
                "textstore_index_rebuilds",
                "Times the index was rebuilt from the data after a page of its file failed its check.",
                self.index_rebuilds,
            ),
            (
                "textstore_last_sequence",
                "Sequence number of the latest write.",
                self.last_seq,
            ),
            (
                "textstore_segment_capacity_bytes",
                "Capacity of a segment.",
                self.segment_capacity,
            ),
            (
                "textstore_compaction_copy_bytes",
                "Live record bytes in segments that hold dead bytes: what a compaction of \
                 everything copies before it removes them.",
                self.compaction_copy_bytes,
            ),
        ] {
            out.gauge(name, help, value as f64);
        }

        out.gauge(
            "textstore_dead_record_ratio",
            "Dead record bytes over all record bytes.",
            self.dead_ratio(),
        );
    }
}
