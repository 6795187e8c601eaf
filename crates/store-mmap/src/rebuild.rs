//! The index rebuilt from the data when a page of its file turns out damaged.
//!
//! An open maps the index file and reads its header alone; each page of slots is checked
//! when something first touches it (`index_file.rs`), so that an open costs the same at any
//! number of documents. Damage in a page the open did not read therefore shows later (or
//! in the open's replay of the commits past the checkpoint, which then discards the file:
//! `recovery.rs`): in a lookup (a read, or a commit's look at the version it replaces), a
//! walk of the entries, a checkpoint's merge, `verify` or the scrub. Whichever meets it
//! marks the file damaged; a lookup or a walk fails with an error that names the file and
//! the page's offset, and `verify` and the scrub report it. No lookup ever returns an entry
//! from a page that failed its check.
//!
//! The index file is a cache of the data, and every handle has all it needs to make its
//! index again: it walks every live segment as an open without an index file does.
//! - The writer does so at its next write (a commit, a delete, a compaction, a backup, a
//!   checkpoint), at its next refresh, or at the next pause of a writer that tends its
//!   checkpoints, and writes the result as a new index file. That file replaces the damaged
//!   one for this process's readers (an installed checkpoint, which the concurrent handle
//!   publishes like any other) and for other processes (a new file under the index file's
//!   name, which their next refresh loads).
//! - A read-only handle writes no file: it rebuilds its view's index in memory at its next
//!   refresh or backup (or [`Store::repair_index`], which the concurrent handle's writer
//!   thread calls at its pauses), and keeps it until a refresh that brings in a commit
//!   finds that the writer replaced the damaged file. Before that rebuild, each of its
//!   reads that meets the page fails.
//!
//! The walk ends at a position the writer published (its own committed end, or a reader's
//! bound), below which every byte was committed: damage there fails the rebuild, naming the
//! segment, and is never cut as a torn write (`recovery.rs`, `SegmentTail::Published`).

use store_format::Position;

use crate::error::Result;
use crate::index::Index;
use crate::recovery::{RecoveryReport, TailEnd, scan_tail};
use crate::store::{Role, Store};

impl Store {
    /// Rebuilds the index from the data if a page of its file failed a check (see
    /// [`Store::rebuild_index`]).
    pub(crate) fn repair_damaged_index(&mut self) -> Result<()> {
        if !self.index.base_damaged() {
            return Ok(());
        }
        self.rebuild_index()
    }

    /// Rebuilds the index from the data if a page of the index file failed a check since
    /// the file was loaded (a read, `verify` or the scrub met it), as the handle's next
    /// write or refresh would; the writer also writes it as a new index file. Returns
    /// whether it rebuilt.
    pub fn repair_index(&mut self) -> Result<bool> {
        let damaged = self.index.base_damaged();
        self.repair_damaged_index()?;
        Ok(damaged)
    }

    /// What `look` finds in this store's index, looked up again after a rebuild when the
    /// first look failed: for lookups that a write or a backup makes. A lookup fails only
    /// on a page of the index file that fails its check.
    pub(crate) fn look_up_repairing<T>(&mut self, look: impl Fn(&Store) -> Result<T>) -> Result<T> {
        match look(self) {
            Err(_) => {
                self.rebuild_index()?;
                look(self)
            }
            found => found,
        }
    }

    /// Rebuilds the index from the data and, on the writer, writes it as a new index file
    /// (see the module's comment). A walk that fails (damage in the data itself) poisons
    /// the writer: its error names what a reopen would refuse. A new index file that fails
    /// to be written is a failed checkpoint, retried as any other: the index in memory is
    /// whole.
    pub(crate) fn rebuild_index(&mut self) -> Result<()> {
        let rebuilt = self.rebuild_from_data();
        if self.is_read_only() {
            return rebuilt;
        }
        self.poison_on_err(rebuilt)?;
        if let Err(err) = self.write_checkpoint() {
            self.checkpoint_failed(&err);
        }
        Ok(())
    }

    fn rebuild_from_data(&mut self) -> Result<()> {
        let damaged = self.index.base().map(|base| base.path().to_path_buf());
        let damaged_identity = self.index.base().map(|base| base.identity());
        // A checkpoint being written merges the damaged file into its own: it is not
        // installed. Its thread is joined so that it renames nothing over the new file.
        if let Some(in_flight) = self.checkpoints.take_in_flight() {
            let _ = in_flight.join();
        }
        let active = self.active();
        let end = TailEnd::Published(Position {
            segment: active.id(),
            offset: active.end(),
        });
        let mut index = Index::default();
        let mut report = RecoveryReport::default();
        // The writer's segment has the highest id of all, and every segment below it is
        // whole, so the walk up to the writer's end reads every committed record once.
        let scan = scan_tail(
            &self.dir,
            self.segments.live(),
            &mut index,
            None,
            0,
            end,
            &mut report,
        )?;
        // The walk meets every commit, but the damaged file may claim more: sequence
        // numbers never go back.
        self.last_seq = self.last_seq.max(scan.last_seq);
        if self.journal.is_some() {
            index.journal_everything();
        }
        self.index = index;
        self.checkpoints.index_rebuilt();
        if let Role::Reader(follower) = &mut self.role {
            follower.unused_index_file = damaged_identity.or(follower.unused_index_file);
        }
        tracing::warn!(
            dir = %self.dir.display(),
            index_file = ?damaged,
            records = report.records_replayed,
            bytes = report.bytes_replayed,
            "a page of the index file failed its check: the index was rebuilt from the data"
        );
        Ok(())
    }
}
