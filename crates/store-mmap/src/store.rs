//! The engine: a store directory opened for reading and writing by one handle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_format::{
    BatchOp, CommitEvent, CommitObserver, Doc, DocId, DocMeta, DocRead, FormatError, Position,
    Prefetch, SEGMENT_HEADER_LEN, SealedSegment, SegmentHeader, StoreMeta, Text, TextRange,
    WriteBatch,
};

use crate::checkpoints::Checkpoints;
use crate::error::{Error, Result};
use crate::index::{Entry, Index};
use crate::journal::Journal;
use crate::layout::{LOCK_FILE, META_FILE};
use crate::limit::{self, LimitFile};
use crate::options::{
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_SEGMENT_CAPACITY, Durability, StoreOptions, check_limits,
};
use crate::recovery::{Access, Recovered, RecoveryReport, recover};
use crate::scan::{Changes, Scan};
use crate::segment::SegmentFile;
use crate::segment_map::SegmentMap;
use crate::segments::SegmentSet;
use crate::shared::WriterLock;
use crate::storage::write_atomic;
use crate::write;
use crate::zero::Zeroer;

/// Largest encoding buffer kept between commits.
const SCRATCH_RETAIN_BYTES: usize = 8 << 20;

/// What a handle is to the store's other handles.
pub(crate) enum Role {
    /// The one handle that writes: it holds the exclusive lock and publishes its commits.
    Writer(WriterLock),
    /// A read-only handle, in this process or another (`read_only.rs`).
    Reader(crate::shared::Follower),
}

/// An open store: reads through `&self`, writes through `&mut self`.
///
/// Reads are one hash lookup plus a checksum of the record, whatever the number of
/// documents, and return [`Doc`] handles that share the mapped segment instead of copying.
/// Each write is one commit: its records are written with `pwritev` straight from the caller's
/// text (a batch larger than the room left spans segments), made durable with one
/// `fdatasync` (under [`Durability::Sync`]), and only then published to readers.
///
/// The handle holds the store's exclusive lock until it is closed or dropped. Dropping it
/// closes it too, ignoring errors; call [`Store::close`] to see them.
pub struct Store {
    pub(crate) dir: PathBuf,
    /// The writer's lock and page, or a reader's view of them.
    pub(crate) role: Role,
    pub(crate) meta: StoreMeta,
    pub(crate) options: StoreOptions,
    /// Every segment, and those compactions replaced (see `segments.rs`).
    pub(crate) segments: SegmentSet,
    pub(crate) index: Index,
    pub(crate) last_seq: u64,
    /// Dead bytes of the sealed segments right after the last compaction: what it could not
    /// reclaim. The automatic policy counts only dead bytes beyond them.
    pub(crate) stuck_dead_bytes: u64,
    /// Compactions that took effect since the open: see [`DocRead::placement_epoch`].
    pub(crate) placement_epoch: u64,
    poisoned: Option<Error>,
    /// Reused encoding buffer for commits.
    scratch: Vec<u8>,
    recovery: RecoveryReport,
    closed: bool,
    /// Told about every commit and sync, when set.
    observer: Option<Arc<dyn CommitObserver>>,
    /// Zeroes the active segment's preallocated space ahead of the commits.
    zeroer: Option<Zeroer>,
    /// Whether the zeroing thread was started (or failed to start), at the first commit.
    zeroer_started: bool,
    /// Checkpoints planned and installed, and what waits for the next (see
    /// `checkpoints.rs`).
    pub(crate) checkpoints: Checkpoints,
    /// The index journal a writer appends frames to (see `journal.rs`), unless
    /// [`StoreOptions::journal_bytes`] is `None`.
    pub(crate) journal: Option<Journal>,
    /// The write limit of the active segment, when its file held an earlier segment.
    write_limit: LimitFile,
}

impl Store {
    /// Creates a store in `dir`, which must be absent or empty. An existing store is never
    /// truncated: that is [`Error::AlreadyExists`].
    pub fn create(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        if dir.exists() && !dir.is_dir() {
            return Err(Error::AlreadyExists { path: dir.into() });
        }
        std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let mut lock = WriterLock::take(dir, None)?;
        if !is_empty_dir(dir)? {
            return Err(Error::AlreadyExists { path: dir.into() });
        }
        let meta = StoreMeta {
            store_uid: new_store_uid(),
            max_document_bytes: options
                .max_document_bytes
                .unwrap_or(DEFAULT_MAX_DOCUMENT_BYTES),
            segment_capacity: options.segment_capacity.unwrap_or(DEFAULT_SEGMENT_CAPACITY),
            change_floor: Some(0),
        };
        check_limits(meta.max_document_bytes, meta.segment_capacity)?;
        write_atomic(
            options.storage.as_ref(),
            &dir.join(META_FILE),
            &meta.encode(),
        )?;
        let recovered = Recovered {
            segments: BTreeMap::new(),
            index: Index::default(),
            last_seq: 0,
            next_segment_id: 1,
            report: RecoveryReport::default(),
            uncovered_copies: Vec::new(),
            retired: Vec::new(),
            checkpoint: None,
            bytes_since_index_file: 0,
            synced: false,
            spares: Vec::new(),
            write_limit: None,
        };
        lock.claim(meta.store_uid);
        Store::assemble(dir, Role::Writer(lock), meta, options, recovered)
    }

    /// Opens an existing store, recovering from a crash if the last handle did not close.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        check_is_store(dir)?;
        let meta_path = dir.join(META_FILE);
        let mut lock = WriterLock::take(dir, None)?;
        let mut meta = read_meta(dir)?;
        let wanted = StoreMeta {
            max_document_bytes: options
                .max_document_bytes
                .unwrap_or(meta.max_document_bytes),
            segment_capacity: options.segment_capacity.unwrap_or(meta.segment_capacity),
            ..meta
        };
        if wanted != meta {
            check_limits(wanted.max_document_bytes, wanted.segment_capacity)?;
            write_atomic(options.storage.as_ref(), &meta_path, &wanted.encode())?;
            meta = wanted;
        }
        let recovered = recover(dir, &meta, &options, Access::Write)?;
        lock.claim(meta.store_uid);
        Store::assemble(dir, Role::Writer(lock), meta, options, recovered)
    }

    /// Opens the store in `dir`, creating it when `dir` is absent or empty.
    pub fn open_or_create(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref();
        if !dir.exists() || is_empty_dir(dir)? {
            Store::create(dir, options)
        } else {
            Store::open(dir, options)
        }
    }

    pub(crate) fn assemble(
        dir: &Path,
        role: Role,
        meta: StoreMeta,
        options: StoreOptions,
        recovered: Recovered,
    ) -> Result<Store> {
        let since_index_file = recovered.bytes_since_index_file;
        let changes_since_index_file =
            recovered.report.journal_changes + recovered.report.records_replayed;
        let synced = recovered.synced;
        let checkpoint_segment = recovered.checkpoint.map(|at| at.segment);
        let write_limit = LimitFile::new(dir, recovered.write_limit);
        let mut store = Store {
            dir: dir.to_path_buf(),
            role,
            meta,
            options,
            segments: SegmentSet::new(
                recovered.segments,
                recovered.next_segment_id,
                recovered.retired,
                recovered.spares,
            ),
            index: recovered.index,
            last_seq: recovered.last_seq,
            stuck_dead_bytes: 0,
            placement_epoch: 0,
            poisoned: None,
            scratch: Vec::new(),
            recovery: recovered.report,
            closed: false,
            observer: None,
            zeroer: None,
            zeroer_started: false,
            checkpoints: Checkpoints::new(
                since_index_file,
                changes_since_index_file,
                recovered.uncovered_copies,
            ),
            journal: None,
            write_limit,
        };
        if store.meta.change_floor.is_none() {
            // A store of a version that did not record the floor may have dropped deletes
            // anywhere below its last commit: a change feed starts from there.
            store.meta.change_floor = Some(store.last_seq);
            if !store.is_read_only() {
                store.write_meta()?;
            }
        }
        if store.is_read_only() {
            store.log_open();
            return Ok(store);
        }
        if store.options.journal_bytes.is_some() {
            let mut journal = Journal::new(&store.dir);
            if let Some(layer) = store.index.journal_layer() {
                journal.carry(Arc::clone(layer));
            }
            store.journal = Some(journal);
            store.index.journal_everything();
        }
        if store.segments.is_empty() {
            store.add_segment(None)?;
        } else {
            // What this open serves must survive a power cut: a commit whose sync failed
            // before a crash or a reopen may still sit in the page cache alone, and so may
            // the directory entry of a segment whose creation failed to sync it. After a
            // clean close the checkpoint, written last, covers every byte and segment.
            if !synced && !store.closed_cleanly(checkpoint_segment) {
                store.active().sync_data()?;
                crate::storage::sync_dir(store.options.storage.as_ref(), &store.dir)?;
            }
            store.zero_ahead_of_active();
        }
        if store.options.prefault {
            for segment in store.segments.iter() {
                segment.prefetch()?;
            }
        }
        store.publish_position();
        store.log_open();
        Ok(store)
    }

    /// Tells the log what the open found: what it replayed, cut or removed.
    fn log_open(&self) {
        let report = &self.recovery;
        let repaired = report.records_replayed > 0
            || report.journal_frames > 0
            || report.records_abandoned > 0
            || report.dropped_tail.is_some()
            || report.removed_segment.is_some()
            || report.retired_segments_removed > 0
            || report.unfinished_compaction_files_removed > 0;
        if repaired {
            tracing::info!(
                dir = %self.dir.display(),
                read_only = self.is_read_only(),
                index = ?report.index,
                journal_frames = report.journal_frames,
                journal_changes = report.journal_changes,
                journal_stopped = ?report.journal_stopped,
                records_replayed = report.records_replayed,
                bytes_replayed = report.bytes_replayed,
                records_abandoned = report.records_abandoned,
                dropped_tail = ?report.dropped_tail,
                removed_segment = ?report.removed_segment,
                retired_segments_removed = report.retired_segments_removed,
                compaction_files_removed = report.unfinished_compaction_files_removed,
                "recovered"
            );
        } else {
            tracing::debug!(
                dir = %self.dir.display(),
                read_only = self.is_read_only(),
                documents = self.len(),
                "opened"
            );
        }
    }

    /// Whether the open found nothing past the index checkpoint (in segment
    /// `checkpoint_segment`): no record replayed and no newer segment, as after a close.
    fn closed_cleanly(&self, checkpoint_segment: Option<u32>) -> bool {
        matches!(self.recovery.index, crate::IndexLoad::Loaded { .. })
            && self.recovery.bytes_replayed == 0
            && self.recovery.dropped_tail.is_none()
            && checkpoint_segment == Some(self.active().id())
    }

    /// Tells readers in other processes that every commit so far is complete.
    pub(crate) fn publish_position(&self) {
        if let Role::Writer(lock) = &self.role {
            let active = self.active();
            lock.publish(Position {
                segment: active.id(),
                offset: active.end(),
            });
        }
    }

    /// Replaces the metadata file with the handle's (temporary file, sync, rename, sync).
    pub(crate) fn write_meta(&self) -> Result<()> {
        write_atomic(
            self.options.storage.as_ref(),
            &self.dir.join(META_FILE),
            &self.meta.encode(),
        )
    }

    /// The lowest sequence number [`Store::changes_since`] starts from: compaction dropped
    /// a delete at this sequence number, so a feed from below it would miss that delete.
    pub fn change_floor(&self) -> u64 {
        self.meta.change_floor.unwrap_or(self.last_seq)
    }

    /// Whether this handle was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        matches!(self.role, Role::Reader(_))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Largest text accepted, in bytes (a persisted setting of the store).
    pub fn max_document_bytes(&self) -> u64 {
        self.meta.max_document_bytes
    }

    /// Capacity of new segments, in bytes (a persisted setting of the store).
    pub fn segment_capacity(&self) -> u32 {
        self.meta.segment_capacity
    }

    /// What the open found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Sequence number of the latest write.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Number of live documents.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the store holds no live document.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    // ----- reads -------------------------------------------------------------------------

    /// The latest version of the document, or `None` if it does not exist or is deleted.
    pub fn get(&self, id: DocId) -> Result<Option<Doc>> {
        match self.index.get(id)? {
            Some(entry) => self.read_entry(id, &entry).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the document exists.
    pub fn contains(&self, id: DocId) -> Result<bool> {
        Ok(self.index.get(id)?.is_some())
    }

    /// Length of the document's text in bytes, without reading it.
    pub fn text_len(&self, id: DocId) -> Result<Option<u64>> {
        Ok(self.index.get(id)?.map(|e| u64::from(e.text_len)))
    }

    /// The part of the document that `range` names, sharing the mapped memory.
    pub fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        extract_from(id, self.get(id)?, range)
    }

    /// Copies the latest version into `buf` (cleared first); returns whether the document
    /// exists. [`Store::get`] copies nothing; use this when the caller wants to own the text
    /// or reuse one buffer across reads.
    pub fn read_into(&self, id: DocId, buf: &mut String) -> Result<bool> {
        DocRead::read_into(self, id, buf)
    }

    /// The ids of the live documents, in no particular order. A damaged page of the index
    /// file ends the walk with an error.
    pub fn ids(&self) -> impl Iterator<Item = Result<DocId>> + '_ {
        self.index.entries().map(|found| found.map(|(id, _)| id))
    }

    /// Every live document in storage order, zero-copy and lazy: see [`Scan`] for what it
    /// yields. Follow it with [`Store::changes_since`] from [`Scan::as_of`] to see what
    /// changes after it.
    pub fn scan(&self) -> Scan<'_> {
        let latest = |id| Ok(self.index.get(id)?.map(|e| (e.position(), e.seq)));
        Scan::over(
            self.segment_maps().collect(),
            self.last_seq,
            Box::new(latest),
        )
    }

    /// Every change committed after `since`, in sequence order, up to the last commit now:
    /// see [`Changes`]. Fails with [`Error::ChangesCompacted`] below the change floor
    /// ([`Store::change_floor`]) and [`Error::ChangesAhead`] past the last commit; in both
    /// cases the caller scans again.
    pub fn changes_since(&self, since: u64) -> Result<Changes> {
        check_changes_since(since, self.change_floor(), self.last_seq)?;
        Ok(Changes::over(self.segment_maps().collect(), since))
    }

    /// Reads and verifies the record `entry` points to.
    pub(crate) fn read_entry(&self, id: DocId, entry: &Entry) -> Result<Doc> {
        let segment = self.segments.get(entry.segment).ok_or_else(|| {
            Error::corrupt(
                self.dir
                    .join(crate::layout::segment_file_name(entry.segment)),
                u64::from(entry.offset),
                format!(
                    "the index points document {id} to segment {}, which does not exist",
                    entry.segment
                ),
            )
        })?;
        let doc = segment.view().read_doc(id, entry.offset)?;
        if doc.seq() != entry.seq {
            return Err(Error::corrupt(
                segment.path(),
                u64::from(entry.offset),
                format!(
                    "the index expects document {id} at seq {}, the record holds seq {}",
                    entry.seq,
                    doc.seq()
                ),
            ));
        }
        Ok(doc)
    }

    /// Where the latest record of the document is, for layers that publish locations to
    /// their own readers. `None` when the document does not exist.
    pub fn location(&self, id: DocId) -> Result<Option<Position>> {
        Ok(self.index.get(id)?.map(|e| e.position()))
    }

    /// A shareable view of the segment's mapping, for readers that do not go through this
    /// handle. It stays readable after the store rolls past it or is closed.
    pub fn segment_map(&self, segment: u32) -> Option<SegmentMap> {
        self.segments.get(segment).map(|s| s.view().clone())
    }

    /// A view of every segment, oldest first; each carries how far it is committed
    /// ([`SegmentMap::committed_end`]). The last one receives writes.
    pub fn segment_maps(&self) -> impl Iterator<Item = SegmentMap> + '_ {
        self.segments.maps()
    }

    /// The checkpointed part of the index (`None` before the first checkpoint), for layers
    /// that publish the changes since it to their own readers: see
    /// [`Store::index_changes`].
    pub fn checkpointed_index(&self) -> Option<crate::CheckpointedIndex> {
        self.index.checkpointed()
    }

    /// Every document changed since the checkpointed index: where its record is now, or
    /// `None` if it was deleted.
    pub fn index_changes(&self) -> impl Iterator<Item = (DocId, Option<Position>)> + '_ {
        self.index
            .changes()
            .map(|(id, entry)| (id, entry.map(|e| e.position())))
    }

    /// How many times this handle's index took a new base since the open: a checkpoint
    /// installed, or the index rebuilt from the data after a page of the index file failed
    /// its check. When it changes, [`Store::checkpointed_index`] is another file (or none)
    /// and [`Store::index_changes`] another table.
    pub fn index_generation(&self) -> u64 {
        self.checkpoints.installed_count() + self.checkpoints.rebuilds()
    }

    /// The id of the segment that receives writes.
    pub fn active_segment(&self) -> u32 {
        self.active().id()
    }

    // ----- writes ------------------------------------------------------------------------

    /// Replaces the document's text. Returns the sequence number of the write.
    pub fn put(&mut self, id: DocId, text: &str) -> Result<u64> {
        self.commit(std::iter::once(BatchOp::Put { id, text }))
    }

    /// Commits every operation of `batch` atomically. Returns the sequence number of its
    /// last record.
    pub fn put_batch(&mut self, batch: &WriteBatch) -> Result<u64> {
        self.commit(batch.iter())
    }

    /// Commits `ops` as one atomic group, like [`Store::put_batch`], for callers that gather
    /// operations from several sources (a group commit) without copying them into one
    /// [`WriteBatch`]. Deletes of missing documents are written as tombstones; they are
    /// harmless. Returns the sequence number of the last record; the record of the `i`-th
    /// operation gets `last - len + 1 + i`.
    pub fn commit_ops<'a, I>(&mut self, ops: I) -> Result<u64>
    where
        I: IntoIterator<Item = BatchOp<'a>>,
        I::IntoIter: Clone,
    {
        self.commit(ops.into_iter())
    }

    /// [`Store::commit_ops`], calling `placed(id, at)` for each operation once the commit is
    /// in the index, in order: `at` is where its put's record went, `None` for a delete. A
    /// caller that keeps positions of its own (the concurrent handle's table) learns them
    /// without a lookup.
    pub fn commit_ops_placed<'a, I>(
        &mut self,
        ops: I,
        placed: impl FnMut(DocId, Option<Position>),
    ) -> Result<u64>
    where
        I: IntoIterator<Item = BatchOp<'a>>,
        I::IntoIter: Clone,
    {
        self.commit_placed(ops.into_iter(), placed)
    }

    /// Deletes the document. Returns whether it existed; deleting a missing document writes
    /// nothing.
    pub fn delete(&mut self, id: DocId) -> Result<bool> {
        self.check_writable()?;
        if !self.look_up_repairing(|store| store.contains(id))? {
            return Ok(false);
        }
        self.commit(std::iter::once(BatchOp::Delete { id }))?;
        Ok(true)
    }

    /// Makes every write so far durable (a no-op cost under [`Durability::Sync`], where each
    /// commit already is).
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        let started = Instant::now();
        let result = self.active().sync_data();
        self.note_sync(started.elapsed());
        if let Some(observer) = &self.observer {
            observer.sync(started.elapsed(), result.is_ok());
        }
        self.poison_on_err(result)?;
        // Under write-back a sync is the moment the data is durable: the journal's frame,
        // when one is due, is appended here.
        if self.options.durability != Durability::Sync
            && self.checkpoints.frame_due(self.options.journal_bytes)
            && let Err(err) = self.append_journal_frame()
        {
            self.checkpoint_failed(&err);
        }
        Ok(())
    }

    /// Makes the store refuse every later write, sync and checkpoint with `cause`, as after
    /// a failed write, and its close seal nothing and write no checkpoint: for a caller that
    /// caught a panic out of one of this store's calls, after which what the store holds in
    /// memory is unknown. A reopen recovers from the files. A store already poisoned keeps
    /// its first cause.
    pub fn poison(&mut self, cause: Error) {
        let _ = self.poison_on_err::<()>(Err(cause));
    }

    /// Reports every later commit and sync to `observer` (a metrics layer), on the thread
    /// that writes. Replaces an earlier observer.
    pub fn set_observer(&mut self, observer: Arc<dyn CommitObserver>) {
        self.observer = Some(observer);
    }

    /// Writes the index checkpoint, so that the next open reads it instead of replaying the
    /// data written since the last one. Closing does this; long-running writers may call it
    /// to bound the replay after a crash.
    ///
    /// It also removes the segments compaction replaced that no reader holds any more.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.write_checkpoint()?;
        self.remove_retired().map(drop)
    }

    /// Writes the index checkpoint as [`Store::checkpoint`] does, and leaves the segments it
    /// lets go to the caller's [`Store::begin_removal`]: for a writer that removes files
    /// without holding up its commits.
    pub fn write_checkpoint(&mut self) -> Result<()> {
        self.check_writable()?;
        // An index file with a damaged page is not merged into the next: it is made again.
        self.repair_damaged_index()?;
        // The engine's own checkpoint goes first; if it failed, this one takes its place.
        if let Err(err) = self.finish_background_checkpoint() {
            self.checkpoint_failed(&err);
        }
        if let Some(plan) = self.plan_checkpoint()? {
            match plan.write() {
                Ok(written) => self.install_checkpoint(written)?,
                Err(err) => {
                    self.abandon_checkpoint();
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Syncs, gives back preallocated space, writes the index checkpoint and releases the
    /// lock. Reports the first failure, including an earlier one that poisoned the store.
    /// Dropping the store does the same without the report, but for a store dropped as a
    /// panic unwinds, which closes as a poisoned one does (see [`Store::poison`]).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if self.is_read_only() {
            return Ok(());
        }
        if let Err(err) = self.check_writable() {
            // A poisoned handle still waits for its checkpoint thread (the file it wrote,
            // true of the data it planned on, is left to the next open): left running, the
            // thread would outlive the handle, reading the index and journal files it maps
            // while they change, and renaming an index file into place beside the next
            // writer's.
            if let Some(in_flight) = self.checkpoints.take_in_flight() {
                let _ = in_flight.join();
            }
            return Err(err);
        }
        if let Err(err) = self.finish_background_checkpoint() {
            self.checkpoint_failed(&err);
        }
        self.stop_zeroing();
        let sealed = self.active_mut().seal();
        self.poison_on_err(sealed)?;
        self.checkpoint()
    }

    fn commit<'a, I>(&mut self, ops: I) -> Result<u64>
    where
        I: Iterator<Item = BatchOp<'a>> + Clone,
    {
        self.commit_placed(ops, |_, _| {})
    }

    fn commit_placed<'a, I>(
        &mut self,
        ops: I,
        mut placed: impl FnMut(DocId, Option<Position>),
    ) -> Result<u64>
    where
        I: Iterator<Item = BatchOp<'a>> + Clone,
    {
        self.check_writable()?;
        // A read that met a damaged page of the index file left the rebuild to this commit,
        // whose lookups of the versions it replaces would meet it too.
        self.repair_damaged_index()?;
        // Validate everything before writing anything: a rejected batch leaves no bytes.
        let limit = self.meta.max_document_bytes;
        let mut len = 0u64;
        let mut count = 0u64;
        for op in ops.clone() {
            count += 1;
            write::admit(op, limit)?;
            len += op.encoded_len();
        }
        if count == 0 {
            return Ok(self.last_seq);
        }
        let room = write::segment_room(self.meta.segment_capacity);
        // A commit that an empty segment holds goes into one segment; only a larger one
        // spans segments.
        if self.active().remaining() < len && len <= room {
            self.roll()?;
        }
        let parts = if self.active().remaining() >= len {
            vec![write::Part {
                ops: count as usize,
                len_bytes: len,
            }]
        } else {
            check_free_space(self.active(), len)?;
            write::plan(ops.clone(), self.active().remaining(), room)
        };
        let first_seq = self.last_seq + 1;
        let started = Instant::now();
        let written = self.write_parts(ops.clone(), &parts, first_seq);
        let (first_segment, first_offset, write, synced) = match written {
            Ok(done) => done,
            Err(err) => {
                self.report_commit(count, len, started.elapsed(), None, false);
                return Err(err);
            }
        };
        self.report_commit(count, len, write, synced, true);

        // Publish: every part is complete (and durable under `Durability::Sync`), so readers
        // may reach it. This process wrote the bytes from text it was handed as `&str`: its
        // records need no check on their first read.
        for segment in self.segments.from(first_segment) {
            segment.commit_end();
        }
        let mut segment = first_segment;
        let mut offset = first_offset;
        let mut part_ops = parts.iter().map(|part| part.ops);
        let mut left = part_ops.next().unwrap_or(0);
        let verified_of = |segments: &SegmentSet, id: u32| {
            segments
                .get(id)
                .expect("a commit's parts are in live segments")
                .view()
                .shared_verified()
        };
        let mut verified = verified_of(&self.segments, segment);
        self.last_seq = first_seq + count - 1;
        self.index.reserve(count as usize);
        let mut rebuilt = false;
        for (i, op) in ops.enumerate() {
            while left == 0 {
                left = part_ops.next().expect("the parts hold every operation");
                segment = self
                    .segments
                    .from(segment + 1)
                    .next()
                    .map(SegmentFile::id)
                    .expect("each part after the first is in the next segment");
                offset = SEGMENT_HEADER_LEN as u32;
                verified = verified_of(&self.segments, segment);
            }
            left -= 1;
            let seq = first_seq + i as u64;
            verified.insert(offset);
            if !rebuilt {
                let indexed = match op {
                    BatchOp::Put { id, text } => self.index.insert(
                        id,
                        Entry {
                            seq,
                            segment,
                            offset,
                            text_len: u32::try_from(text.len()).expect("checked against the limit"),
                        },
                    ),
                    BatchOp::Delete { id } => self.index.remove(id),
                };
                if indexed.is_err() {
                    // The entry this one replaces lies in a page of the index file that
                    // fails its check. The commit is whole on disk and below every
                    // segment's committed end, so the index rebuilt from the data holds
                    // all of it.
                    self.rebuild_index()?;
                    rebuilt = true;
                }
            }
            let at = match op {
                BatchOp::Put { .. } => Some(Position { segment, offset }),
                BatchOp::Delete { .. } => None,
            };
            placed(op.id(), at);
            offset += u32::try_from(op.encoded_len()).expect("a record fits in a segment");
        }
        self.publish_position();
        self.checkpoints.committed(len, count);
        if let Err(err) = self.tend_checkpoint(false) {
            self.checkpoint_failed(&err);
        }
        Ok(self.last_seq)
    }

    /// Writes the parts of a commit, each at the end of its segment: the first in the active
    /// segment, each later one in a new segment created once the one before is sealed.
    /// Syncs the last as the durability setting asks. Returns where the first record went,
    /// and the time spent writing and syncing.
    ///
    /// Fails without side effects when the first part's space cannot be reserved (a full
    /// disk); any later failure poisons the store. A commit cut short leaves parts that
    /// recovery does not apply, because its last part is missing.
    fn write_parts<'a>(
        &mut self,
        ops: impl Iterator<Item = BatchOp<'a>> + Clone,
        parts: &[write::Part],
        first_seq: u64,
    ) -> Result<(u32, u32, Duration, Option<Duration>)> {
        let sync = self.options.durability == Durability::Sync;
        let started = Instant::now();
        let mut trailing_zeros = self.reserve_in_active(parts[0].len_bytes)?;
        let first = (self.active().id(), self.active().end());
        let mut ops = ops;
        let mut seq = first_seq;
        let mut scratch = std::mem::take(&mut self.scratch);
        let last = parts.len() - 1;
        let mut result = Ok(());
        // Where the newest segment's durable data ended before this commit wrote into it:
        // the point a failure cuts back to.
        let mut durable_end = first;
        // The segment a roll of this commit sealed and failed to leave: a successor whose
        // header records its sealed length may be on disk (its removal can fail too), so a
        // failure must not cut it below that length.
        let mut failed_roll_from = None;
        for (k, part) in parts.iter().enumerate() {
            if k > 0 {
                // The part before is written and its segment sealed: the new segment's
                // header records it, with the last sequence number written so far, and
                // whether the commit goes on from it.
                failed_roll_from = Some(self.active().id());
                let continues = parts[..k].iter().any(|p| p.ops > 0);
                let reserved = self
                    .roll_after(seq - 1, continues)
                    .and_then(|()| self.reserve_in_active(part.len_bytes));
                match reserved {
                    Ok(zeros) => trailing_zeros = zeros,
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                }
                failed_roll_from = None;
            }
            if part.ops == 0 {
                continue;
            }
            durable_end = (self.active().id(), self.active().end());
            let group_end = store_format::GroupEnd {
                len_bytes: u32::try_from(part.len_bytes).expect("a part fits in a segment"),
                continues_in_next: k < last,
                continues_from_prev: k > 0 && parts[..k].iter().any(|p| p.ops > 0),
            };
            let part_ops = ops.clone().take(part.ops);
            result = write::write_part(
                self.active(),
                part_ops,
                seq,
                group_end,
                &mut scratch,
                trailing_zeros,
                sync,
            );
            if result.is_err() {
                break;
            }
            // Readers of this handle cannot run during the commit, and the index points
            // into the part only once every part is written.
            self.active_mut()
                .publish(u32::try_from(part.len_bytes).expect("a part fits in a segment"));
            ops.nth(part.ops - 1);
            seq += part.ops as u64;
        }
        if scratch.capacity() <= SCRATCH_RETAIN_BYTES {
            self.scratch = scratch;
        }
        let write = started.elapsed();
        let mut synced = None;
        if result.is_ok() && sync {
            result = self.active().sync_data();
            let took = started.elapsed() - write;
            self.note_sync(took);
            synced = Some(took);
        }
        if let Some(zeroer) = &self.zeroer {
            zeroer.committed();
        }
        if result.is_err() {
            // The bytes may be on disk, whole or in part; cut what the newest segment holds
            // past its last durable commit, so that the failed part cannot surface as a
            // committed group on the next open. (Parts in earlier segments count only with
            // their last part.) The store is poisoned either way. A segment this commit
            // sealed for a roll that failed keeps its bytes: the successor's header may
            // record its length, and its last part, which goes on into a segment that holds
            // none of the commit, is not applied by recovery.
            self.stop_zeroing();
            let (segment, end) = durable_end;
            let active = self.active_mut();
            let end = if active.id() == segment {
                end
            } else {
                active.end()
            };
            if failed_roll_from != Some(active.id()) {
                let _ = active.discard_since(end);
            }
        }
        self.poison_on_err(result)?;
        Ok((first.0, first.1, write, synced))
    }

    /// Reserves `len` bytes past the active segment's end for a write that follows at once:
    /// the zeroing thread keeps off them from here on. Returns how many bytes of zeros the
    /// write should add after its records ([`Zeroer::claim`]).
    fn reserve_in_active(&mut self, len: u64) -> Result<usize> {
        self.active_mut().reserve(len)?;
        match self.raise_write_limit(len) {
            // Nothing of the commit is written yet, and the durable limit is the one before,
            // which the data does not pass: a full disk fails the commit alone, as a
            // reservation that finds no room does.
            Err(err @ Error::DiskFull { .. }) => return Err(err),
            raised => self.poison_on_err(raised)?,
        }
        self.start_zeroing();
        let Some(zeroer) = &self.zeroer else {
            return Ok(0);
        };
        let active = self.active();
        let end = u64::from(active.end());
        zeroer.allocated(active.id(), active.file_len());
        let zeros = zeroer.claim(
            active.id(),
            end,
            end + len,
            write::MAX_TRAILING_ZEROS as u64,
        );
        Ok(usize::try_from(zeros).expect("at most MAX_TRAILING_ZEROS"))
    }

    /// Moves the active segment's durable write limit past the `len` bytes about to be
    /// written at its end, when its file held an earlier segment and they would pass it: the
    /// new limit is synced before a byte of them is written, so that no record ever lies
    /// past the durable limit, which an open after a crash reads the file up to (`limit.rs`).
    fn raise_write_limit(&mut self, len: u64) -> Result<()> {
        let active = self.active();
        let Some(limit) = active.write_limit() else {
            return Ok(());
        };
        let needed = u64::from(active.end()) + len;
        if needed <= u64::from(limit) {
            return Ok(());
        }
        let (id, raised) = (active.id(), limit::next_limit(needed, active.capacity()));
        self.write_limit.write(
            self.options.storage.as_ref(),
            self.meta.store_uid,
            id,
            raised,
        )?;
        self.active_mut().set_write_limit(raised);
        Ok(())
    }

    /// Starts the zeroing thread at the first commit (an open that only reads spawns no
    /// thread): zeros ahead of the writer pay off where every commit ends with a flush.
    fn start_zeroing(&mut self) {
        if self.zeroer_started
            || !self.options.zero_ahead
            || self.options.durability != Durability::Sync
        {
            return;
        }
        self.zeroer_started = true;
        self.zeroer = Zeroer::start();
        self.zero_ahead_of_active();
    }

    /// Points the zeroing thread at the active segment.
    fn zero_ahead_of_active(&self) {
        if let Some(zeroer) = &self.zeroer
            && let Some(target) = self.active().zero_target()
        {
            zeroer.attach(target);
        }
    }

    /// Stops the zeroing of the active segment, so that its file may be cut.
    fn stop_zeroing(&self) {
        if let Some(zeroer) = &self.zeroer {
            zeroer.detach();
        }
    }

    /// Logs a data flush of the active segment that took `took`, if that is slow.
    fn note_sync(&self, took: Duration) {
        if took >= self.options.slow_sync {
            tracing::warn!(
                segment = %self.active().path().display(),
                millis = took.as_millis() as u64,
                "slow data flush"
            );
        }
    }

    /// Counts and logs a checkpoint that failed; the data is durable and the older index
    /// file stays in place, so the failure costs only a longer replay after a crash.
    pub(crate) fn checkpoint_failed(&mut self, err: &Error) {
        tracing::warn!(dir = %self.dir.display(), error = %err, "index checkpoint failed");
        self.checkpoints.failed();
    }

    fn report_commit(
        &self,
        ops: u64,
        len: u64,
        write: Duration,
        synced: Option<Duration>,
        ok: bool,
    ) {
        if let Some(observer) = &self.observer {
            observer.commit(&CommitEvent::new(ops, len, write, synced, ok));
        }
    }

    /// Seals the active segment and moves writes to a new one, between commits, and shows
    /// readers in other processes the new segment's start as the writer's position: an
    /// index checkpoint written before the next commit records a position in it, and a
    /// reader that found the checkpoint past the position it read would refuse to open.
    pub(crate) fn roll(&mut self) -> Result<()> {
        self.roll_after(self.last_seq, false)?;
        self.publish_position();
        Ok(())
    }

    /// Seals the active segment, whose last record holds `last_seq` (or an earlier one), and
    /// moves writes to a new one; `commit_continues` when a commit goes on from one into the
    /// other.
    fn roll_after(&mut self, last_seq: u64, commit_continues: bool) -> Result<()> {
        self.stop_zeroing();
        let sealed = self.active_mut().seal();
        self.poison_on_err(sealed)?;
        let active = self.active();
        let sealed = SealedSegment {
            segment_id: active.id(),
            len_bytes: active.end(),
            last_seq,
            commit_continues,
            reuses_file: false,
        };
        self.add_segment(Some(sealed))
    }

    /// Creates the next segment, which receives writes from now on; its header records the
    /// segment sealed just before, if any.
    fn add_segment(&mut self, sealed_before: Option<SealedSegment>) -> Result<()> {
        // The first segment has nothing to compact below it.
        let id = self.segments.allocate_id(sealed_before.is_some());
        let header = SegmentHeader {
            segment_id: id,
            store_uid: self.meta.store_uid,
            capacity: self.meta.segment_capacity,
            sealed_before,
        };
        // Only a segment that records a sealed predecessor may be written over a spare: its
        // floor is what tells the spare's earlier records from its own.
        let reused = match sealed_before {
            Some(sealed) => self.reuse_spare(SegmentHeader {
                sealed_before: Some(SealedSegment {
                    reuses_file: true,
                    ..sealed
                }),
                ..header
            }),
            None => Ok(None),
        };
        let created = reused.and_then(|reused| match reused {
            Some(segment) => Ok(segment),
            None => SegmentFile::create(
                &self.options.storage,
                &self.dir,
                header,
                self.options.map_settings(),
            ),
        });
        match created {
            Ok(segment) => {
                self.segments.add(segment);
                self.zero_ahead_of_active();
                Ok(())
            }
            Err(err) => {
                // A half-created file would make the next attempt fail; it holds no record.
                // Left in place, it must stay the newest segment, which recovery removes:
                // the store then takes no more writes that could create a newer one.
                let path = self.dir.join(crate::layout::segment_file_name(id));
                match self.options.storage.remove(&path) {
                    Ok(()) => Err(err),
                    Err(_) => self.poison_on_err(Err(err)),
                }
            }
        }
    }

    /// Writes `header`'s segment over the first spare file that no process maps, if any.
    /// A spare that fails to become the segment is let go (its removal is best effort: a
    /// spare left behind is one again at the next open, its header written afresh).
    fn reuse_spare(&mut self, header: SegmentHeader) -> Result<Option<SegmentFile>> {
        let mut at = 0;
        while let Some((spare, len)) = self.segments.spares().get(at).cloned() {
            // A spare that another name links to (a hard link made since it became one)
            // would change under that name, and one longer than the segments now made (the
            // store's segment capacity was lowered) does not fit: let them go.
            let linked =
                std::fs::metadata(&spare).map(|meta| std::os::unix::fs::MetadataExt::nlink(&meta));
            let fits = len <= u64::from(header.capacity);
            if !matches!(linked, Ok(1)) || !fits {
                self.segments.take_spare(at);
                let _ = self.options.storage.remove(&spare);
                continue;
            }
            match SegmentFile::reuse(
                &self.options.storage,
                &self.dir,
                &spare,
                header,
                self.options.map_settings(),
            ) {
                Ok(Some(segment)) => {
                    self.segments.take_spare(at);
                    return Ok(Some(segment));
                }
                // A read-only handle maps it: another roll may find it free.
                Ok(None) => at += 1,
                Err(err) => {
                    self.segments.take_spare(at);
                    let _ = self.options.storage.remove(&spare);
                    return Err(err);
                }
            }
        }
        Ok(None)
    }

    pub(crate) fn active(&self) -> &SegmentFile {
        self.segments.active()
    }

    fn active_mut(&mut self) -> &mut SegmentFile {
        self.segments.active_mut()
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly {
                path: self.dir.clone(),
                what: "a change",
            });
        }
        match &self.poisoned {
            Some(cause) => Err(Error::poisoned(cause)),
            None => Ok(()),
        }
    }

    pub(crate) fn poison_on_err<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && self.poisoned.is_none()
        {
            tracing::error!(
                dir = %self.dir.display(),
                error = %err,
                "the store refuses writes until it is reopened"
            );
            self.poisoned = Some(err.clone());
        }
        result
    }

    pub(crate) fn segments(&self) -> impl Iterator<Item = &SegmentFile> {
        self.segments.iter()
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.closed && !self.is_read_only() {
            // Dropped as a panic unwinds, out of one of its own calls maybe (its open, a
            // commit): what it holds is unknown, so it closes as a poisoned store does,
            // sealing nothing and writing no checkpoint, and the next open recovers from
            // the files. A storage call here that panicked in its turn would abort the
            // process.
            self.poison(Error::Panicked {
                thread: "a thread that unwound through the store",
                message: String::new(),
            });
        }
        // Errors cannot be reported from here; `close` reports them.
        let _ = self.shutdown();
    }
}

impl DocRead for Store {
    type Error = Error;

    fn get(&self, id: DocId) -> Result<Option<Doc>> {
        Store::get(self, id)
    }

    fn meta(&self, id: DocId) -> Result<Option<DocMeta>> {
        Ok(self.index.get(id)?.map(|e| DocMeta {
            seq: e.seq,
            text_len: u64::from(e.text_len),
        }))
    }

    fn extract(&self, id: DocId, range: TextRange) -> Result<Text> {
        Store::extract(self, id, range)
    }

    fn placement_epoch(&self) -> u64 {
        self.placement_epoch
    }
}

impl Prefetch for Store {
    /// Advises the kernel of each record's pages (`madvise(WILLNEED)`). The index holds each
    /// record's length, so no page is read to learn it.
    fn prefetch(&self, ids: &[DocId]) -> Result<()> {
        for &id in ids {
            let Some(entry) = self.index.get(id)? else {
                continue;
            };
            // A missing segment is reported by the read that needs it.
            if let Some(segment) = self.segments.get(entry.segment) {
                let len = store_format::record_len(entry.text_len);
                let len = u32::try_from(len).unwrap_or(u32::MAX);
                segment.view().will_need(entry.offset, len)?;
            }
        }
        Ok(())
    }
}

/// The part of document `id` that `range` names, from the document a read returned (`None`:
/// it does not exist), sharing its memory: what every layer's `extract` does once it has
/// read the document.
pub fn extract_from(id: DocId, doc: Option<Doc>, range: TextRange) -> Result<Text> {
    let doc = doc.ok_or(Error::NotFound { id })?;
    doc.text()
        .extract(range)
        .map_err(|source| Error::Range { id, source })
}

/// Fails, without side effects, a commit of `len` bytes that would span segments when the
/// disk has clearly no room for it: its later parts would fail only after earlier ones were
/// written, which poisons the store. A disk that fills up meanwhile is still caught by the
/// writes themselves.
fn check_free_space(active: &SegmentFile, len: u64) -> Result<()> {
    let free = active.free_disk_bytes()?;
    if free < len {
        return Err(Error::io("make room for a commit in", active.path())(
            std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("the commit needs {len} bytes and the disk has {free} bytes free"),
            ),
        ));
    }
    Ok(())
}

/// Fails with [`Error::NotAStore`] unless `dir` is a directory with a metadata file.
pub(crate) fn check_is_store(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::NotAStore {
            path: dir.into(),
            reason: "no such directory".to_owned(),
        });
    }
    if !dir.join(META_FILE).is_file() {
        return Err(Error::NotAStore {
            path: dir.into(),
            reason: format!("it has no {META_FILE} file"),
        });
    }
    Ok(())
}

/// Reads the store's metadata file.
/// Whether a change feed may start after `since`, given the store's change floor and last
/// commit.
pub fn check_changes_since(since: u64, floor: u64, last_seq: u64) -> Result<()> {
    if since < floor {
        return Err(Error::ChangesCompacted { since, floor });
    }
    if since > last_seq {
        return Err(Error::ChangesAhead { since, last_seq });
    }
    Ok(())
}

pub(crate) fn read_meta(dir: &Path) -> Result<StoreMeta> {
    let meta_path = dir.join(META_FILE);
    let raw = std::fs::read(&meta_path).map_err(Error::io("read", &meta_path))?;
    StoreMeta::decode(&raw).map_err(|err| match err {
        FormatError::UnsupportedVersion { found, supported, .. } => Error::NotAStore {
            path: dir.into(),
            reason: format!(
                "it was written by format version {found}, and this build reads version {supported}; use a newer textstore"
            ),
        },
        err => Error::format(&meta_path, 0, &err),
    })
}

/// True when `dir` holds nothing but, possibly, the lock file and the temporary metadata
/// file of a `create` that was cut short (the metadata file is renamed into place last, so
/// such a directory holds no store).
fn is_empty_dir(dir: &Path) -> Result<bool> {
    let unfinished_meta = Path::new(META_FILE).with_extension("tmp");
    for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        if name != LOCK_FILE && name != unfinished_meta.as_os_str() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn new_store_uid() -> u128 {
    ulid::Ulid::generate().0
}
