//! The crash harness: a child process writes durable puts, deletes and batches to a store
//! and logs each acknowledgement; the parent kills it with `SIGKILL` at a random moment,
//! reopens the store and checks it against every log so far.
//!
//! What a cycle checks:
//! - the store opens, whatever the moment of the kill (during the child's own recovery
//!   included);
//! - every acknowledged write is there, byte for byte, unless a later write of the same
//!   document replaced it;
//! - every document holds exactly the text of a put that was attempted, no older than the
//!   last one acknowledged (no torn record, no text from nowhere, no rollback);
//! - every batch is there whole or not at all (each batch rewrites every member of its slot,
//!   so a slot must show one batch throughout), and an acknowledged batch is there whole;
//! - every record verifies (CRC32C, UTF-8), checked with `Store::verify` every
//!   [`VERIFY_EVERY`] cycles and after the last;
//! - after every cycle, the closed store rebuilt from its data alone (`store_mmap::recover`,
//!   which reads no index) holds exactly what the store served: the index is a cache of
//!   the data, and no record a compaction copied says otherwise (a compaction's copies
//!   come and go with the compactions after it, so a check every cycle sees far more of
//!   them than one at every verify);
//! - a scan yields every live document once, and the change feed from the previous
//!   cycle's scan, applied to what that scan found, gives exactly what this one finds, or
//!   is refused because a compaction dropped a delete after it;
//! - every [`DAMAGE_INDEX_EVERY`] cycles, a byte of a page of slots of the closed store's
//!   index file is changed: the next child's writer meets the page (in a commit, a
//!   compaction or a pause) and rebuilds the index from the data, or is killed first, or
//!   during the rebuild. The data must verify clean, the damaged file must be gone once the
//!   parent's handle has refreshed (which rebuilds what the child did not), and every check
//!   above holds.
//!
//! A kill loses nothing the operating system has been given, so this checks what a process
//! crash can do. What a power cut can do (lose every byte not synced) is checked by the
//! engine's model test over `store_mmap::fault::FaultStorage`.
//!
//! This crate knows the engine and the concurrent handle, and nothing above them.

mod check;
pub mod child;
mod feed;
pub mod reader;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_mmap::{DocId, Store, StoreOptions};

use crate::check::Model;

/// Cycles between two full `Store::verify` passes.
pub const VERIFY_EVERY: u32 = 100;

/// Cycles between two damaged pages of the index file.
pub const DAMAGE_INDEX_EVERY: u32 = 10;

/// The index file's name in a store directory (docs/FORMAT.md).
const INDEX_FILE: &str = "index.tsi";

/// The failures of a torture run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store_mmap::Error),
    /// The concurrent handle failed.
    #[error(transparent)]
    Concurrent(#[from] store_concurrent::Error),
    /// A file of the harness could not be used.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The child stopped by itself.
    #[error("cycle {cycle}: the child exited with {status} before it was killed: {stderr}")]
    ChildExited {
        /// The cycle.
        cycle: u32,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed to stderr.
        stderr: String,
    },
    /// The store does not hold what the logs say it must.
    #[error("cycle {cycle}: {what}")]
    Violation {
        /// The cycle after which the check failed.
        cycle: u32,
        /// What is wrong.
        what: String,
    },
}

impl Error {
    /// An [`Error::Io`]: `what` failed on `path`.
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The options every open of the tortured store uses: small segments, so that kills land
/// during segment rolls too (some of them over spare files).
pub fn store_options() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(1 << 20)
        .max_document_bytes(256 << 10)
}

/// A torture run.
#[derive(Debug, Clone)]
pub struct Config {
    /// A directory of its own: the store and the logs go in it.
    pub dir: PathBuf,
    /// Kill-and-check cycles.
    pub cycles: u32,
    /// Seeds the kill moments and the children's operations.
    pub seed: u64,
    /// The `textstore-torture` executable, started as `child`.
    pub child: PathBuf,
    /// Kills come at a uniformly random moment up to this long after the child starts.
    pub max_kill_delay: Duration,
}

/// The figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Cycles completed.
    pub cycles: u32,
    /// Puts acknowledged to the child, all checked.
    pub acked_puts: u64,
    /// Deletes acknowledged.
    pub acked_deletes: u64,
    /// Batches acknowledged.
    pub acked_batches: u64,
    /// Gets the checks made, each compared with the text that was written.
    pub docs_checked: u64,
    /// Writes found committed though their acknowledgement never reached the log.
    pub unacked_found: u64,
    /// Opens that cut a torn tail.
    pub torn_tails_cut: u64,
    /// Records replayed by the parent's opens (data past the last index checkpoint and the
    /// last frame of its journal).
    pub records_replayed: u64,
    /// Frames of the index journal the parent's opens took.
    pub journal_frames: u64,
    /// Opens that found the outputs of a compaction cut short by the kill, and removed them.
    pub compactions_cut_short: u64,
    /// Opens that removed segments a finished compaction had replaced, which the kill left
    /// on disk.
    pub retired_segments_left: u64,
    /// Full `verify` passes, all clean.
    pub verify_passes: u32,
    /// Cycles whose change feed from the previous cycle's scan matched this cycle's scan.
    pub feeds_followed: u64,
    /// Cycles whose change feed was refused: a compaction had dropped a delete after the
    /// previous cycle's position.
    pub feeds_refused: u64,
    /// Pages of the index file damaged between two cycles.
    pub index_pages_damaged: u64,
    /// Of those, the ones whose file the next child's writer had replaced with an index
    /// rebuilt from the data before its kill; the parent's handle rebuilt the rest.
    pub index_rebuilt_by_child: u64,
}

/// Runs `config.cycles` cycles, calling `progress` after each.
pub fn run(config: &Config, mut progress: impl FnMut(&Report)) -> Result<Report, Error> {
    let store_dir = config.dir.join("store");
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut model = Model::default();
    let mut follower = feed::Follower::default();
    let mut report = Report::default();
    // The bytes of the index file damaged after the last cycle, if it was.
    let mut index_damaged: Option<Vec<u8>> = None;
    for cycle in 0..config.cycles {
        let log = config.dir.join(format!("log-{cycle}"));
        let delay = rng.random_range(Duration::ZERO..=config.max_kill_delay);
        kill_child_after(config, &store_dir, &log, cycle, rng.random(), delay)?;

        let violation = |what: String| Error::Violation { cycle, what };
        let text = match std::fs::read_to_string(&log) {
            Ok(text) => text,
            // Killed before it opened its log.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(Error::io("read", &log, err)),
        };
        model.absorb(&text, &mut report).map_err(violation)?;
        std::fs::remove_file(&log).or_else(|err| match err.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::io("remove", &log, err)),
        })?;

        // A child killed before it created the store leaves no store, or an empty directory:
        // `open_or_create` must cope with both, as the next child's does.
        let mut store = Store::open_or_create(&store_dir, store_options())
            .map_err(|err| violation(format!("the store does not open: {err}")))?;
        let recovery = store.recovery();
        report.records_replayed += recovery.records_replayed;
        report.journal_frames += recovery.journal_frames;
        report.torn_tails_cut += u64::from(recovery.dropped_tail.is_some());
        report.compactions_cut_short += u64::from(recovery.unfinished_compaction_files_removed > 0);
        report.retired_segments_left += u64::from(recovery.retired_segments_removed > 0);
        if let Some(damaged) = &index_damaged {
            rebuild_if_damaged(&mut store, damaged, &mut report).map_err(violation)?;
        }
        model.check(&store, &mut report).map_err(violation)?;
        follower.check(&store, &mut report).map_err(violation)?;
        if (cycle + 1) % VERIFY_EVERY == 0 || cycle + 1 == config.cycles {
            let verified = store.verify();
            if !verified.is_clean() {
                return Err(violation(format!("verify found damage: {verified:?}")));
            }
            report.verify_passes += 1;
        }
        let served = contents(&store)?;
        store.close()?;
        rebuilt_agrees(&store_dir, &config.dir.join("rebuilt"), &served, violation)?;
        index_damaged = None;
        if (cycle + 1) % DAMAGE_INDEX_EVERY == 0 {
            index_damaged = damage_an_index_page(&store_dir.join(INDEX_FILE), &mut rng)?;
        }
        report.index_pages_damaged += u64::from(index_damaged.is_some());
        report.cycles += 1;
        progress(&report);
    }
    Ok(report)
}

/// Changes one bit of a page of slots of the index file at `path`, chosen by `rng`.
/// Returns the file's bytes, if there was a page to damage.
fn damage_an_index_page(path: &Path, rng: &mut SmallRng) -> Result<Option<Vec<u8>>, Error> {
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("read", path, err)),
    };
    // The header's slot count (102 slots a page) and the offset of the first page.
    let field = |at: usize, len: usize| {
        bytes
            .get(at..at + len)
            .map(|raw| raw.iter().rev().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    };
    let (Some(slots), Some(first_page)) = (field(72, 8), field(92, 4)) else {
        return Ok(None);
    };
    let pages = slots / 102;
    if pages == 0 {
        return Ok(None);
    }
    let at = first_page + rng.random_range(0..pages) * 4096 + rng.random_range(0..4096);
    let Some(byte) = usize::try_from(at).ok().and_then(|at| bytes.get_mut(at)) else {
        return Ok(None);
    };
    *byte ^= 1 << rng.random_range(0..8);
    std::fs::write(path, &bytes).map_err(|err| Error::io("write", path, err))?;
    Ok(Some(bytes))
}

/// After a cycle whose child was given a damaged page of the index file (whose bytes are
/// `damaged`): the data verifies clean, and the damaged file is gone, replaced by the
/// child's writer or, once `verify` has found the page, by the parent's refresh. The other
/// ways out are opens that discarded the whole file: for a reason of their own, or because
/// their replay met the page.
fn rebuild_if_damaged(
    store: &mut Store,
    damaged: &[u8],
    report: &mut Report,
) -> Result<(), String> {
    let path = store.dir().join(INDEX_FILE);
    // Inode numbers are reused at once: only the bytes tell the damaged file from another.
    let in_place = || match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes == damaged),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(format!("read {}: {err}", path.display())),
    };
    let in_the_index = |problem: &store_mmap::Problem| problem.path == path;
    let verified = store.verify();
    if let Some(problem) = verified.problems.iter().find(|p| !in_the_index(p)) {
        return Err(format!(
            "verify found damage in the data after a damaged index page: {problem:?}"
        ));
    }
    if !in_place()? {
        report.index_rebuilt_by_child += 1;
        return match verified.problems.first() {
            None => Ok(()),
            Some(problem) => Err(format!(
                "the child's new index file is damaged: {problem:?}"
            )),
        };
    }
    if verified.problems.is_empty() {
        return match store.recovery().index {
            store_mmap::IndexLoad::Discarded { .. } => Ok(()),
            ref other => Err(format!(
                "verify missed the damaged page of the index file, which the open took ({other:?})"
            )),
        };
    }
    let refreshed = store
        .refresh()
        .map_err(|err| format!("the refresh did not rebuild the damaged index: {err}"))?;
    let again = store.verify();
    if refreshed != store_mmap::Refreshed::Reloaded || !again.is_clean() || in_place()? {
        return Err(format!(
            "the refresh did not replace the damaged index file ({refreshed:?}): {again:?}"
        ));
    }
    Ok(())
}

/// Every live document of `store` and its text.
fn contents(store: &Store) -> Result<BTreeMap<DocId, String>, Error> {
    let mut held = BTreeMap::new();
    for id in store.ids() {
        let id = id?;
        if let Some(doc) = store.get(id)? {
            held.insert(id, doc.to_string());
        }
    }
    Ok(held)
}

/// Rebuilds the closed store in `store_dir` from its data alone into `scratch` (emptied
/// first) and checks that it holds `served`, what the store served; `violation` names what
/// differs.
fn rebuilt_agrees(
    store_dir: &Path,
    scratch: &Path,
    served: &BTreeMap<DocId, String>,
    violation: impl Fn(String) -> Error,
) -> Result<(), Error> {
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io("remove", scratch, err)),
    }
    let recovered = store_mmap::recover(store_dir, scratch)?;
    // A closed store holds no torn tail, and `verify` found no damage.
    if !recovered.is_complete() {
        return Err(violation(format!(
            "the rebuild from the data found damage or a torn tail: {:?} {:?}",
            recovered.damage, recovered.torn_tail
        )));
    }
    let rebuilt = Store::open(scratch, store_options())?;
    let found = contents(&rebuilt)?;
    rebuilt.close()?;
    let differ: BTreeSet<&DocId> = served
        .keys()
        .chain(found.keys())
        .filter(|id| served.get(id) != found.get(id))
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    let differ: Vec<String> = differ
        .into_iter()
        .map(|id| {
            let held = |map: &BTreeMap<DocId, String>| match map.get(id) {
                Some(text) => format!("{} bytes", text.len()),
                None => "absent".to_owned(),
            };
            format!("{id} (served {}, rebuilt {})", held(served), held(&found))
        })
        .collect();
    Err(violation(format!(
        "the store rebuilt from its data alone differs from what it served: {}",
        differ.join("; ")
    )))
}

/// Starts the child on cycle `cycle` and kills it with `SIGKILL` after `delay`.
fn kill_child_after(
    config: &Config,
    store_dir: &Path,
    log: &Path,
    cycle: u32,
    seed: u64,
    delay: Duration,
) -> Result<(), Error> {
    let mut child = Command::new(&config.child)
        .arg("child")
        .arg("--store")
        .arg(store_dir)
        .arg("--log")
        .arg(log)
        .arg("--cycle")
        .arg(cycle.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Error::io("start", &config.child, err))?;
    std::thread::sleep(delay);
    if let Some(status) = child
        .try_wait()
        .map_err(|err| Error::io("wait for", &config.child, err))?
    {
        let output = child
            .wait_with_output()
            .map_err(|err| Error::io("wait for", &config.child, err))?;
        return Err(Error::ChildExited {
            cycle,
            status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no close runs.
    child
        .kill()
        .map_err(|err| Error::io("kill", &config.child, err))?;
    child
        .wait()
        .map_err(|err| Error::io("wait for", &config.child, err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed store of 600 documents, whose index file has pages of slots to damage.
    fn closed_store() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        let mut store = Store::create(&dir, store_options()).unwrap();
        let mut batch = store_mmap::WriteBatch::new();
        for k in 0..600u64 {
            batch.put(DocId::from_key(&k.to_string()), &format!("document {k}"));
        }
        store.put_batch(&batch).unwrap();
        store.close().unwrap();
        (root, dir)
    }

    fn open(dir: &Path) -> Store {
        Store::open(dir, store_options()).unwrap()
    }

    #[test]
    fn one_bit_of_a_page_of_slots_is_damaged_and_verify_finds_it() {
        let (_root, dir) = closed_store();
        let path = dir.join(INDEX_FILE);
        let before = std::fs::read(&path).unwrap();
        let first_page = u32::from_le_bytes(before[92..96].try_into().unwrap()) as usize;
        let mut pages = BTreeSet::new();
        for seed in 0..16 {
            std::fs::write(&path, &before).unwrap();
            let mut rng = SmallRng::seed_from_u64(seed);
            let damaged = damage_an_index_page(&path, &mut rng).unwrap().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), damaged);
            let changed: Vec<(usize, u8)> = (0..before.len())
                .filter(|&at| before[at] != damaged[at])
                .map(|at| (at, before[at] ^ damaged[at]))
                .collect();
            assert_eq!(changed.len(), 1, "seed {seed}: {changed:?}");
            let (at, bits) = changed[0];
            assert!(at >= first_page, "seed {seed}: byte {at} is in the header");
            pages.insert((at - first_page) / 4096);
            assert_eq!(bits.count_ones(), 1, "seed {seed}: {bits:#x}");
            let report = open(&dir).verify();
            assert!(
                report.problems.iter().any(|p| p.path == path),
                "seed {seed}: {report:?}"
            );
        }
        assert!(pages.len() > 4, "pages damaged: {pages:?}");
        std::fs::remove_file(&path).unwrap();
        let mut rng = SmallRng::seed_from_u64(0);
        assert_eq!(damage_an_index_page(&path, &mut rng).unwrap(), None);
        // A file that cannot be read is an error, not a store without an index file.
        std::fs::create_dir(&path).unwrap();
        assert!(damage_an_index_page(&path, &mut rng).is_err());
    }

    /// What the parent's check makes of the store after a damaged cycle, case by case.
    #[test]
    fn the_check_after_a_damaged_index_page_passes_only_a_clean_store_without_the_page() {
        let damage = |dir: &Path| {
            let mut rng = SmallRng::seed_from_u64(3);
            damage_an_index_page(&dir.join(INDEX_FILE), &mut rng)
                .unwrap()
                .unwrap()
        };

        // The damaged file in place: the parent's refresh rebuilds it.
        let (_root, dir) = closed_store();
        let damaged = damage(&dir);
        let mut store = open(&dir);
        let mut report = Report::default();
        rebuild_if_damaged(&mut store, &damaged, &mut report).unwrap();
        assert_eq!(report.index_rebuilt_by_child, 0);
        assert_ne!(std::fs::read(dir.join(INDEX_FILE)).unwrap(), damaged);
        assert!(store.verify().is_clean());

        // A new file in its place, as a child's rebuild leaves, or none: counted for the
        // child.
        let mut report = Report::default();
        rebuild_if_damaged(&mut store, &damaged, &mut report).unwrap();
        assert_eq!(report.index_rebuilt_by_child, 1);
        std::fs::remove_file(dir.join(INDEX_FILE)).unwrap();
        rebuild_if_damaged(&mut store, &damaged, &mut report).unwrap();
        assert_eq!(report.index_rebuilt_by_child, 2);
        // A file that cannot be read is an error.
        std::fs::create_dir(dir.join(INDEX_FILE)).unwrap();
        let err = rebuild_if_damaged(&mut store, &damaged, &mut report).unwrap_err();
        assert!(err.contains("read"), "{err}");
        drop(store);

        // The damaged file in place, and `verify` finding nothing in it: an open that took
        // the file and never checked the page would pass, and does not.
        let (_root, dir) = closed_store();
        let intact = std::fs::read(dir.join(INDEX_FILE)).unwrap();
        let mut store = open(&dir);
        let err = rebuild_if_damaged(&mut store, &intact, &mut Report::default()).unwrap_err();
        assert!(err.contains("verify missed"), "{err}");
        drop(store);

        // A file other than the damaged one, itself damaged.
        let (_root, dir) = closed_store();
        damage(&dir);
        let mut store = open(&dir);
        let err =
            rebuild_if_damaged(&mut store, b"another file", &mut Report::default()).unwrap_err();
        assert!(err.contains("new index file is damaged"), "{err}");
        drop(store);

        // Damage in the data: whatever the index file, it fails.
        let (_root, dir) = closed_store();
        let damaged = damage(&dir);
        let segment = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|ext| ext == "seg"))
            .unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[200] ^= 0x01;
        std::fs::write(&segment, bytes).unwrap();
        let err = match Store::open(&dir, store_options()) {
            Ok(mut store) => {
                rebuild_if_damaged(&mut store, &damaged, &mut Report::default()).unwrap_err()
            }
            Err(err) => panic!("the open refused the damaged record: {err}"),
        };
        assert!(err.contains("damage in the data"), "{err}");
    }
}
