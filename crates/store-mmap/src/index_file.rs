//! The index file, mapped: the checkpointed part of the index, probed in place.
//!
//! An open maps the file and reads its header and segment table; nothing else. Each page of
//! slots is checked (CRC32C, reserved bytes) the first time a lookup touches it, and the
//! check is remembered one bit per page, so opening costs the same at any number of
//! documents and a lookup costs one hash and, usually, one or two slots.
//!
//! Index files are written whole under a temporary name, synced and renamed into place
//! (`checkpoint.rs`); a file never changes once it has its name. That is what makes mapping
//! it sound, and what lets any number of processes map the same file: a new checkpoint is a
//! new file, and a mapping of the one it replaced stays valid (docs/CONCURRENCY.md, "Between
//! processes").

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memmap2::Mmap;
use store_format::{
    DocId, IndexEntry, IndexHeader, SegmentLive, check_index_page, index_lookup,
    index_page_entries, open_index,
};

use crate::error::{Error, Result};

/// What the error of a damaged page adds to the page's own failure: the way out.
pub(crate) const REBUILT_FROM_THE_DATA: &str = "; the index file is a cache of the data: the store's writer rebuilds it from the data at its next commit, pause or refresh, a read-only handle at its next refresh";

/// A mapped index file, shared by every reader of the store in this process.
pub(crate) struct MappedIndex {
    path: PathBuf,
    map: Mmap,
    header: IndexHeader,
    segments: Vec<SegmentLive>,
    /// One bit per page: set once the page passed its check. Relaxed: a bit only says that
    /// immutable bytes were checked; a reader that misses another's bit checks again.
    checked: Box<[AtomicU64]>,
    /// Device and inode of the file, so that a reader can tell a newer checkpoint from it.
    identity: (u64, u64),
    /// Set once any check of a page failed, by whichever thread met it, so that the writer
    /// rebuilds the index from the data (`rebuild.rs`). Relaxed: it only tells the writer
    /// to look; the bytes it speaks of never change.
    damaged: AtomicBool,
}

/// Why an index file cannot serve an open. The data is intact either way: the open replays
/// it instead.
pub(crate) enum Unusable {
    Missing,
    Rejected(String),
}

impl MappedIndex {
    /// Maps the index file at `path` and checks its header against the store.
    pub(crate) fn open(path: &Path, store_uid: u128) -> std::result::Result<MappedIndex, Unusable> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Unusable::Missing);
            }
            Err(err) => return Err(Unusable::Rejected(format!("cannot open it: {err}"))),
        };
        let meta = file
            .metadata()
            .map_err(|err| Unusable::Rejected(format!("cannot stat it: {err}")))?;
        if meta.len() == 0 {
            return Err(Unusable::Rejected("it is empty".to_owned()));
        }
        #[expect(
            unsafe_code,
            reason = "mapping a file is unsafe; index files never change once named"
        )]
        // SAFETY: the mapping is read-only, and an index file is never written once it has
        // its name: checkpoints write a new file under a temporary name and rename it over
        // this one, which leaves this mapping on the old inode, unchanged. Every textstore
        // process follows that rule (docs/FORMAT.md, "Index file"); one that truncates or
        // rewrites the file in place breaks it. Reads stay below the length checked below.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(meta.len() as usize)
                .map(&file)
        }
        .map_err(|err| Unusable::Rejected(format!("cannot map it: {err}")))?;
        let (header, segments) =
            open_index(&map).map_err(|err| Unusable::Rejected(err.to_string()))?;
        if header.store_uid != store_uid {
            return Err(Unusable::Rejected("it belongs to another store".to_owned()));
        }
        let _ = map.advise(memmap2::Advice::Random);
        let words = header.page_count().div_ceil(64) as usize;
        Ok(MappedIndex {
            path: path.to_path_buf(),
            map,
            header,
            segments,
            checked: (0..words).map(|_| AtomicU64::new(0)).collect(),
            identity: (meta.dev(), meta.ino()),
            damaged: AtomicBool::new(false),
        })
    }

    pub(crate) fn header(&self) -> &IndexHeader {
        &self.header
    }

    pub(crate) fn segments(&self) -> &[SegmentLive] {
        &self.segments
    }

    pub(crate) fn identity(&self) -> (u64, u64) {
        self.identity
    }

    pub(crate) fn len_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// The document's entry as of the checkpoint.
    pub(crate) fn find(&self, id: DocId) -> Result<Option<IndexEntry>> {
        index_lookup(&self.map, &self.header, id, |page| self.check(page))
            .map_err(|err| self.damage(&err))
    }

    /// Every entry, page by page; a page that fails its check ends the walk with an error.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Result<IndexEntry>> + '_ {
        (0..self.header.page_count()).flat_map(move |page| {
            let checked = self.check(page).map_err(|err| self.damage(&err));
            let (entries, error) = match checked {
                Ok(()) => (Some(self.page_entries(page)), None),
                Err(err) => (None, Some(err)),
            };
            entries.into_iter().flatten().chain(error.map(Err))
        })
    }

    /// The entries of page `page`, which must have passed its check.
    fn page_entries(&self, page: u64) -> impl Iterator<Item = Result<IndexEntry>> + '_ {
        index_page_entries(&self.map, &self.header, page)
            .map(|found| found.map_err(|err| self.damage(&err)))
    }

    /// The ids of page `page` (checked first), for a walk that holds no borrow between
    /// pages.
    pub(crate) fn page_ids(&self, page: u64) -> Result<Vec<DocId>> {
        self.check(page).map_err(|err| self.damage(&err))?;
        self.page_entries(page)
            .map(|found| found.map(|entry| entry.id))
            .collect()
    }

    /// Checks every page and every slot again, whatever was remembered: for `verify` and
    /// the scrub. A page that fails is forgotten as checked, so that the next lookup that
    /// touches it fails too instead of trusting what the disk changed since its first check.
    pub(crate) fn verify(&self) -> Vec<(u64, String)> {
        let mut problems = Vec::new();
        for page in 0..self.header.page_count() {
            let checked = check_index_page(&self.map, &self.header, page).and_then(|()| {
                index_page_entries(&self.map, &self.header, page)
                    .try_for_each(|found| found.map(drop))
            });
            if let Err(err) = checked {
                self.damaged.store(true, Ordering::Relaxed);
                self.forget(page);
                problems.push((self.header.page_offset(page) as u64, err.to_string()));
            }
        }
        problems
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a page of the file failed its check, in any lookup, walk or verify.
    pub(crate) fn damage_seen(&self) -> bool {
        self.damaged.load(Ordering::Relaxed)
    }

    fn check(&self, page: u64) -> std::result::Result<(), store_format::FormatError> {
        let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
        let Some(bits) = self.checked.get(word) else {
            return check_index_page(&self.map, &self.header, page);
        };
        if bits.load(Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        check_index_page(&self.map, &self.header, page)?;
        bits.fetch_or(bit, Ordering::Relaxed);
        Ok(())
    }

    fn forget(&self, page: u64) {
        if let Some(bits) = self.checked.get((page / 64) as usize) {
            bits.fetch_and(!(1u64 << (page % 64)), Ordering::Relaxed);
        }
    }

    fn damage(&self, err: &store_format::FormatError) -> Error {
        self.damaged.store(true, Ordering::Relaxed);
        Error::corrupt(
            &self.path,
            err.offset(),
            format!("{err}{REBUILT_FROM_THE_DATA}"),
        )
    }
}
