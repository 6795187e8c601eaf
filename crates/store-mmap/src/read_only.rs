//! Read-only handles: any number, in any process, beside the one writer.
//!
//! A read-only open changes no file, takes no lock a writer waits on for long, and works on
//! a store whose files it cannot write (a read-only file system). It reads the store as the
//! writer's recovery would, in memory, up to the position the live writer published, or to
//! the end of the data when no writer is live (`shared.rs` says how it tells, and why it
//! never reads a byte the writer may still write or cut).
//!
//! [`Store::refresh`] brings the view up to the writer's latest published commit: it scans
//! only what was committed since, unless the writer wrote a new index checkpoint or a
//! compaction took effect, in which case it loads the view afresh from the new checkpoint.
//! Segments the view maps stay readable whatever the writer does with their files (an
//! unlinked file stays mapped), so a [`store_format::Doc`] read before a refresh, or before
//! the writer's compaction, stays valid.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use store_format::{DocId, Position, StoreMeta};

use crate::error::{Error, Result};
use crate::layout::{INDEX_FILE, RETIRED_FILE, parse_segment_file_name, segment_file_name};
use crate::options::StoreOptions;
use crate::recovery::{Access, IndexLoad, Recovered, RecoveryReport, TailEnd, recover, scan_tail};
use crate::segment::SegmentFile;
use crate::shared::{Follower, ReaderLock, Writer};
use crate::store::{Role, Store, check_is_store, read_meta};

/// Attempts of an open or a reload that a writer's compaction or checkpoint raced (a file
/// named in one step is gone in the next).
const ATTEMPTS: u32 = 8;
/// How long a reader waits for a writer that is still opening to publish its first
/// position, in steps of [`WAIT_STEP`].
const WAIT_STEPS: u32 = 400;
const WAIT_STEP: Duration = Duration::from_millis(5);

/// What [`Store::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refreshed {
    /// Nothing was committed since the last look.
    Unchanged,
    /// The commits since were scanned and applied.
    Appended {
        /// Records applied.
        records: u64,
    },
    /// The view was loaded afresh from a newer index checkpoint or after a compaction, or
    /// its index was rebuilt from the data because a page of the index file failed its
    /// check.
    Reloaded,
}

/// A view loaded from the store's files.
struct Loaded {
    recovered: Recovered,
    seen: Option<Position>,
    retired_list: Option<Vec<u8>>,
    writer_was_live: bool,
    unused_index_file: Option<(u64, u64)>,
}

impl Store {
    /// Opens the store in `dir` for reading only, beside a writer in this or another
    /// process or with none: it never writes, cuts, checkpoints or removes a file, and sees
    /// every commit the writer had published (made durable, under
    /// [`crate::Durability::Sync`]) when it opened. [`Store::refresh`] brings it up to
    /// date. A store that needs recovery (its writer crashed) is read as recovery would read
    /// it, in memory; a store on a read-only file system opens. Writes fail with
    /// [`Error::ReadOnly`].
    pub fn open_read_only(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        check_is_store(dir)?;
        let meta = read_meta(dir)?;
        let mut lock = ReaderLock::open(dir)?;
        let loaded = load(dir, &meta, &options, &mut lock, None)?;
        let follower = Follower {
            lock,
            seen: loaded.seen,
            retired_list: loaded.retired_list,
            writer_was_live: loaded.writer_was_live,
            unused_index_file: loaded.unused_index_file,
        };
        Store::assemble(dir, Role::Reader(follower), meta, options, loaded.recovered)
    }

    /// Brings a read-only view up to the writer's latest published commit (or, with no
    /// writer live, to the end of the data). A commit that had returned to its writer
    /// before this call is visible after it. For the writer's own handle there is nothing
    /// to bring in.
    ///
    /// On any handle whose reads met a damaged page of the index file, it first rebuilds
    /// the index from the data (`rebuild.rs`; the writer also writes it as a new file) and
    /// reports [`Refreshed::Reloaded`].
    pub fn refresh(&mut self) -> Result<Refreshed> {
        self.refresh_with(&mut Vec::new())
    }

    /// [`Store::refresh`], adding to `changed` the ids whose latest record the commits
    /// brought in changed (an id may repeat), for a layer that publishes the view to its
    /// own readers. After [`Refreshed::Reloaded`] every document may have moved, and
    /// `changed` is left as it was.
    pub fn refresh_with(&mut self, changed: &mut Vec<DocId>) -> Result<Refreshed> {
        let rebuilt = self.index.base_damaged();
        if rebuilt {
            self.rebuild_index()?;
        }
        let before = changed.len();
        match self.follow_writer(changed)? {
            _ if rebuilt => {
                changed.truncate(before);
                Ok(Refreshed::Reloaded)
            }
            refreshed => Ok(refreshed),
        }
    }

    /// Brings the view up to the writer's latest published commit (see
    /// [`Store::refresh_with`]).
    fn follow_writer(&mut self, changed: &mut Vec<DocId>) -> Result<Refreshed> {
        let uid = self.meta.store_uid;
        let Role::Reader(follower) = &mut self.role else {
            return Ok(Refreshed::Unchanged);
        };
        // The writer has published nothing since the view's end: nothing to look at.
        if follower.writer_was_live
            && follower.seen.is_some()
            && follower.lock.published(uid) == follower.seen
        {
            return Ok(Refreshed::Unchanged);
        }
        let retired_list = read_retired_list(&self.dir)?;
        let index_identity = index_identity(&self.dir)?;
        let writer = follower.lock.writer(uid)?;
        // A view without an index file stands for the file it does not use.
        let base_identity = self
            .index
            .base()
            .map(|base| base.identity())
            .or(follower.unused_index_file);
        let (bound, _guard, live) = match writer {
            // A writer that holds the lock but has not published since it opened shows the
            // page its predecessor left, whose position may lie below what this view read
            // (with no writer, up to the end of the data): it has nothing new yet.
            Writer::Live(Some(bound)) if follower.seen.is_some_and(|seen| bound < seen) => {
                return Ok(Refreshed::Unchanged);
            }
            Writer::Live(Some(bound)) => (Some(bound), None, true),
            Writer::Live(None) => return Ok(Refreshed::Unchanged),
            Writer::Absent(guard) => (None, Some(guard), false),
        };
        let reload = retired_list != follower.retired_list
            || index_identity != base_identity
            || live != follower.writer_was_live;
        if reload {
            drop(_guard);
            return self.reload();
        }
        if bound.is_some() && bound == follower.seen {
            return Ok(Refreshed::Unchanged);
        }
        let seen = follower.seen;
        match self.map_and_restat(bound, seen) {
            // A segment listed a moment ago is gone: the writer removed it (a compaction's
            // input, or an output of an install that failed) after this refresh read the
            // retired list. The view loads afresh, as an open does when a file it named
            // vanished.
            Err(err) if vanished(&err) => {
                drop(_guard);
                return self.reload();
            }
            other => other?,
        }
        let mut report = RecoveryReport::default();
        let tail = scan_tail(
            &self.dir,
            self.segments.live(),
            &mut self.index,
            seen,
            self.last_seq,
            // A store without a live writer may have crashed in a segment written over a
            // spare: its write limit bounds the walk, as at the open.
            TailEnd::read(&self.dir, uid, bound),
            &mut report,
        )?;
        for (id, end) in &tail.ends {
            if let Some(segment) = self.segments.get_mut(*id) {
                segment.set_end(u32::try_from(*end).expect("segment offsets are 32-bit"));
            }
        }
        self.last_seq = tail.last_seq;
        changed.extend_from_slice(&tail.changed);
        let end = self.newest_end();
        let Role::Reader(follower) = &mut self.role else {
            unreachable!("checked above");
        };
        follower.seen = end;
        Ok(if report.records_replayed == 0 {
            Refreshed::Unchanged
        } else {
            Refreshed::Appended {
                records: report.records_replayed,
            }
        })
    }

    /// Loads the view afresh (see [`load`]) in place of the current one.
    fn reload(&mut self) -> Result<Refreshed> {
        let Role::Reader(follower) = &mut self.role else {
            unreachable!("only a reader's view reloads");
        };
        let loaded = load(
            &self.dir,
            &self.meta,
            &self.options,
            &mut follower.lock,
            follower.seen,
        )?;
        follower.seen = loaded.seen;
        follower.retired_list = loaded.retired_list;
        follower.writer_was_live = loaded.writer_was_live;
        follower.unused_index_file = loaded.unused_index_file;
        self.replace_view(loaded.recovered)?;
        // A compaction may have raised the change floor; the writer records it before the
        // retired-segment list that made this a reload.
        let meta = read_meta(&self.dir)?;
        self.meta.change_floor = Some(meta.change_floor.unwrap_or(self.last_seq));
        Ok(Refreshed::Reloaded)
    }

    /// Maps the segments created since the view was loaded, up to `bound`, and reads again
    /// the length of those at or after `seen`, the view's end: they may have grown, or been
    /// sealed and trimmed, since they were mapped; the bound, loaded after the writer's
    /// seal, covers both.
    fn map_and_restat(&mut self, bound: Option<Position>, seen: Option<Position>) -> Result<()> {
        self.map_new_segments(bound)?;
        let from = seen.map_or(0, |p| p.segment);
        for segment in self.segments.iter_mut().filter(|s| s.id() >= from) {
            segment.restat()?;
        }
        Ok(())
    }

    /// Maps the segment files created since the view was loaded, up to `bound`.
    fn map_new_segments(&mut self, bound: Option<Position>) -> Result<()> {
        let known = self.segments.newest_id().unwrap_or(0);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))? {
            let entry = entry.map_err(Error::io("list", &self.dir))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_segment_file_name)
                && id > known
                && bound.is_none_or(|bound| id <= bound.segment)
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        for id in ids {
            let segment = SegmentFile::open(
                &self.options.storage,
                self.dir.join(segment_file_name(id)),
                id,
                self.meta.store_uid,
                self.options.map_settings(),
                false,
            )?;
            self.segments.add(segment);
        }
        Ok(())
    }

    /// Where the newest segment's data ends.
    fn newest_end(&self) -> Option<Position> {
        self.segments.iter().next_back().map(|segment| Position {
            segment: segment.id(),
            offset: segment.end(),
        })
    }
}

/// Loads a view: the writer's bound (or the shared lock, with no writer), then the store
/// as recovery reads it. Retried when a file named in one step is gone in the next: the
/// writer's compaction or checkpoint ran meanwhile, and the next attempt sees its result.
/// A bound below `at_least` (what an earlier view of this handle read) is a writer still
/// opening, which is waited for like one that has published nothing.
fn load(
    dir: &Path,
    meta: &StoreMeta,
    options: &StoreOptions,
    lock: &mut ReaderLock,
    at_least: Option<Position>,
) -> Result<Loaded> {
    let mut attempt = 0;
    let mut waited = 0;
    loop {
        // The list first, then the bound: a list that names a compaction's copies comes
        // with a bound that covers them (the writer rolls past them before the list).
        let retired_list = read_retired_list(dir)?;
        let stale = |bound: Position| at_least.is_some_and(|seen| bound < seen);
        let (bound, guard) = match lock.writer(meta.store_uid)? {
            Writer::Live(Some(bound)) if !stale(bound) => (Some(bound), None),
            Writer::Live(_) if waited < WAIT_STEPS => {
                waited += 1;
                std::thread::sleep(WAIT_STEP);
                continue;
            }
            Writer::Live(_) => {
                return Err(Error::Locked {
                    path: dir.join(crate::layout::LOCK_FILE),
                });
            }
            Writer::Absent(guard) => (None, Some(guard)),
        };
        // Taken before the load: a file the writer puts in place meanwhile is another, and
        // the next refresh loads it. A file that cannot be looked at is one the load
        // discards, with its reason.
        let index_file = index_identity(dir).unwrap_or(None);
        match recover(dir, meta, options, Access::Read { bound }) {
            Ok(recovered) => {
                drop(guard);
                let unused_index_file = index_file
                    .filter(|_| matches!(recovered.report.index, IndexLoad::Discarded { .. }));
                let seen = bound.or_else(|| {
                    recovered
                        .segments
                        .values()
                        .next_back()
                        .map(|segment| Position {
                            segment: segment.id(),
                            offset: segment.end(),
                        })
                });
                return Ok(Loaded {
                    recovered,
                    seen,
                    retired_list,
                    writer_was_live: bound.is_some(),
                    unused_index_file,
                });
            }
            Err(err) if attempt + 1 < ATTEMPTS && vanished(&err) => attempt += 1,
            Err(err) => return Err(err),
        }
    }
}

impl Store {
    /// Puts a freshly loaded view in place of the current one. Texts read before stay
    /// valid: they hold their mappings.
    fn replace_view(&mut self, recovered: Recovered) -> Result<()> {
        self.segments.replace_live(recovered.segments)?;
        self.index = recovered.index;
        self.last_seq = recovered.last_seq;
        // Documents may have moved to other segments: caches over this handle start over.
        self.placement_epoch += 1;
        Ok(())
    }
}

/// Whether `err` says a file named a moment ago is gone.
pub(crate) fn vanished(err: &Error) -> bool {
    matches!(err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn read_retired_list(dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = dir.join(RETIRED_FILE);
    match std::fs::read(&path) {
        Ok(raw) => Ok(Some(raw)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("read", &path)(err)),
    }
}

/// Device and inode of the index file, if there is one.
fn index_identity(dir: &Path) -> Result<Option<(u64, u64)>> {
    let path = dir.join(INDEX_FILE);
    match std::fs::metadata(&path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("stat", &path)(err)),
    }
}
