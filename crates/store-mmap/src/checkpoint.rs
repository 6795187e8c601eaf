//! Index checkpoints: the changes since the last checkpoint merged into a new index file,
//! off the commit path.
//!
//! A checkpoint is three steps, like a compaction: [`Store::plan_checkpoint`] syncs the data
//! and freezes the index's changes (quick); [`CheckpointPlan::write`] merges them with the
//! old index file into a new one, written under a temporary name, synced and renamed into
//! place (proportional to the number of documents, on any thread); and
//! [`Store::install_checkpoint`] maps the new file in place of the old one and the frozen
//! changes (quick). Commits go on between the steps; their changes gather in a fresh delta.
//!
//! The engine plans one by itself once half of [`crate::StoreOptions::checkpoint_bytes`] of
//! data were committed since the last one, writes it on a thread of its own, and installs it
//! at a later commit; so the replay after a crash covers at most about that many bytes, and
//! no commit waits for a checkpoint to be written. Under [`crate::Durability::Sync`] with a
//! journal, syncing the journal every half interval keeps that bound instead, and the index
//! file waits for its share of commits (`checkpoints.rs`, [`Checkpoints::due`]).
//!
//! [`Checkpoints::due`]: crate::checkpoints::Checkpoints::due

use std::sync::Arc;

use store_format::{IndexCheckpoint, IndexEntry, JournalFrame, Position, encode_index};

use crate::checkpoint_file::{CheckpointPlan, InFlight, WrittenCheckpoint};
use crate::checkpoints::JournalRole;
use crate::error::{Error, Result};
use crate::store::Store;

impl Store {
    /// Freezes the index for a checkpoint: syncs the data (the checkpoint claims that
    /// everything before its position is durable), then snapshots the changes since the
    /// last checkpoint. `None` while another checkpoint is planned and not yet installed or
    /// abandoned.
    pub fn plan_checkpoint(&mut self) -> Result<Option<CheckpointPlan>> {
        self.check_writable()?;
        if self.index.base().is_some() && !self.checkpoint_stale() {
            return Ok(None);
        }
        self.sync()?;
        let Some(frozen) = self.index.freeze() else {
            return Ok(None);
        };
        let generation = self.checkpoints.plan();
        Ok(Some(CheckpointPlan {
            dir: self.dir.clone(),
            storage: Arc::clone(&self.options.storage),
            header: self.checkpoint_header(),
            frozen,
            generation,
        }))
    }

    /// Puts a written checkpoint into effect: the index reads its file from now on, and the
    /// compactions it reflects no longer need their copies walked at an open.
    pub fn install_checkpoint(&mut self, written: WrittenCheckpoint) -> Result<()> {
        if !self.checkpoints.may_install(written.generation) {
            return Err(Error::CheckpointConflict);
        }
        self.index.install(written.index);
        if let Some(journal) = self.journal.as_mut() {
            // The frames went on top of the index file just replaced: the next frame starts
            // a journal for this one. A failure to remove the old file costs nothing (an open
            // sees that it names another index file).
            if let Err(err) = journal.retire(self.options.storage.as_ref()) {
                self.checkpoint_failed(&err);
            }
            self.checkpoints.journal_restarted();
        }
        tracing::debug!(
            dir = %self.dir.display(),
            checkpoint = written.generation,
            last_seq = self.last_seq,
            "index checkpoint installed"
        );
        if self.checkpoints.installed(written.generation) {
            self.write_retired_list(self.segments.retired_ids())?;
        }
        Ok(())
    }

    /// Gives up the planned checkpoint (its write failed): its changes stay in memory for
    /// the next one.
    pub fn abandon_checkpoint(&mut self) {
        self.index.thaw();
    }

    /// Installs the engine's own checkpoint if its thread is done, and starts one on a
    /// thread of its own when [`crate::StoreOptions::checkpoint_bytes`] were committed
    /// since the last, or, when the caller says the store is `idle`, when anything changed
    /// since; where a journal goes on top of an index file, an idle store gets a synced
    /// journal frame of its changes instead (under write-back, after a sync of the data),
    /// and the index file waits for its own rule. The engine calls it after every commit; a
    /// layer that knows when writes pause (the concurrent handle's writer thread) calls it
    /// then.
    pub fn tend_checkpoint(&mut self, idle: bool) -> Result<()> {
        self.check_writable()?;
        self.repair_damaged_index()?;
        if self
            .checkpoints
            .in_flight()
            .is_some_and(InFlight::is_finished)
        {
            self.finish_background_checkpoint()?;
        }
        // A compaction's moves are wanted in a checkpoint soon: until then its replaced
        // segments stay on disk, and an open walks its copies.
        //
        // A checkpoint starts every half interval of commits. One that is still being
        // written when the next is due holds the commit until it is in place: the replay
        // after a crash then covers at most the half interval before the last checkpoint on
        // disk and the half interval since, one interval in all. Where the journal is synced
        // every half interval instead, the index file waits longer (`Checkpoints::due`) and
        // the same bound holds from the last synced frame.
        let index_bytes = self.index.base().map_or(0, |base| base.len_bytes());
        let due = self.checkpoints.due(
            idle,
            self.checkpoint_stale(),
            self.options.checkpoint_bytes,
            self.journal_role(),
            index_bytes,
        );
        if due && !idle && self.checkpoints.in_flight().is_some() {
            self.finish_background_checkpoint()?;
        }
        if due
            && self.checkpoints.in_flight().is_none()
            && let Some(plan) = self.plan_checkpoint()?
        {
            match InFlight::start(plan) {
                Ok(in_flight) => self.checkpoints.start(in_flight),
                Err(err) => {
                    self.abandon_checkpoint();
                    return Err(err);
                }
            }
        }
        // Under write-back the data is durable only at a sync, which appends the frame.
        if self.options.durability == crate::Durability::Sync
            && self.checkpoints.frame_due(self.options.journal_bytes)
        {
            self.append_journal_frame()?;
        }
        if self.syncs_journal()
            && self
                .checkpoints
                .journal_sync_due(self.options.checkpoint_bytes)
        {
            self.sync_journal()?;
        }
        // A pause the journal covers: a frame of every change since the last, synced (under
        // write-back, after the data it claims), so that an open after a crash or a power
        // cut during the pause replays nothing, and the index file is rewritten only when
        // its own rule says.
        if idle
            && !due
            && self.journal_role() != JournalRole::None
            && self.checkpoints.journal_behind()
        {
            if self.options.durability != crate::Durability::Sync {
                self.sync()?;
            }
            self.append_journal_frame()?;
            self.sync_journal()?;
        }
        Ok(())
    }

    /// What the journal does in the index file's place: nothing without a journal or an
    /// index file for it to go on top of; under [`crate::Durability::Sync`], where every
    /// frame claims data already durable, its frames are synced every half checkpoint
    /// interval, so that they bound what a power cut replays and the index file need not;
    /// under write-back, it covers pauses only.
    fn journal_role(&self) -> JournalRole {
        if self.journal.is_none() || self.index.base().is_none() {
            JournalRole::None
        } else if self.options.durability == crate::Durability::Sync {
            JournalRole::Synced
        } else {
            JournalRole::AtPauses
        }
    }

    fn syncs_journal(&self) -> bool {
        self.journal_role() == JournalRole::Synced
    }

    /// Makes every frame appended so far durable (and the journal's name, the first time).
    fn sync_journal(&mut self) -> Result<()> {
        let storage = Arc::clone(&self.options.storage);
        let journal = self.journal.as_mut().expect("checked by journal_role");
        journal.sync(storage.as_ref(), &mut self.index)?;
        self.checkpoints.journal_synced();
        Ok(())
    }

    /// Appends the index's changes since the last frame to the journal, at the end of the
    /// data, which the caller has made durable. Costs what changed: 40 bytes a document,
    /// one `pwrite`, no flush (see `journal.rs` for why none is needed).
    ///
    /// No frame is written while no document changed since the last one (every put,
    /// delete and move notes its id): it would hold nothing the journal and the index file
    /// do not. The frame that falls due as soon as a new index file is in place would
    /// otherwise start a journal file for an idle store, which a clean close then left
    /// behind. The frame stays due for the first change.
    pub(crate) fn append_journal_frame(&mut self) -> Result<()> {
        if self.journal.is_none() || self.index.base().is_none() {
            self.checkpoints.framed();
            return Ok(());
        }
        if !self.index.has_unjournaled() {
            return Ok(());
        }
        self.checkpoints.framed();
        let active = self.active();
        let frame = JournalFrame {
            position: Position {
                segment: active.id(),
                offset: active.end(),
            },
            last_seq: self.last_seq,
            live_docs: self.index.len() as u64,
            live_record_bytes: self.index.live_record_bytes(),
            text_bytes: self.index.text_bytes(),
            bytes_since_base: self.checkpoints.bytes_since_plan(),
        };
        let storage = Arc::clone(&self.options.storage);
        let uid = self.meta.store_uid;
        let journal = self.journal.as_mut().expect("checked above");
        journal.append(storage.as_ref(), uid, &mut self.index, frame)
    }

    /// Waits for the engine's own checkpoint, if one is being written, and installs it.
    /// A checkpoint that failed to write is abandoned: the data is durable and the old
    /// index file still in place, so nothing is lost, and the error is returned.
    pub(crate) fn finish_background_checkpoint(&mut self) -> Result<()> {
        let Some(in_flight) = self.checkpoints.take_in_flight() else {
            return Ok(());
        };
        match in_flight.join() {
            Ok(written) => self.install_checkpoint(written),
            Err(err) => {
                self.abandon_checkpoint();
                Err(err)
            }
        }
    }

    /// Whether the index file is older than the data: something was committed, or a
    /// compaction installed, since it was written.
    fn checkpoint_stale(&self) -> bool {
        self.index.delta_len() > 0
            || self.checkpoints.behind()
            || !self.segments.retired().is_empty()
    }

    /// The whole index as an index file, as of now: for a backup, which writes it beside
    /// the copied segments.
    pub(crate) fn index_snapshot(&self) -> Result<Vec<u8>> {
        let entries: Vec<IndexEntry> = self
            .index
            .entries()
            .map(|found| found.map(|(id, entry)| entry.to_file_entry(id)))
            .collect::<Result<_>>()?;
        Ok(encode_index(self.checkpoint_header(), entries.into_iter()))
    }

    /// The header of an index file that reflects everything committed so far, with a fresh
    /// hash seed.
    fn checkpoint_header(&self) -> IndexCheckpoint {
        let active = self.active();
        IndexCheckpoint {
            store_uid: self.meta.store_uid,
            checkpoint: Position {
                segment: active.id(),
                offset: active.end(),
            },
            last_seq: self.last_seq,
            hash_seed: ulid::Ulid::generate().random() as u64,
        }
    }
}
