//! A [`Storage`] that fails chosen operations and simulates power cuts, for tests.
//!
//! [`FaultStorage`] performs every operation on the real files (so the engine's mappings see
//! what it writes), and keeps what it needs to take the files back to their durable state:
//!
//! - per file (by inode), an undo log of every write, preallocation and truncation since the
//!   file's last sync, holding the bytes and length they replaced;
//! - per directory, the entries (name and inode) as of its last directory sync, and the
//!   durable contents of files that lost their last name since then (renamed over or
//!   removed).
//!
//! A power cut ([`FaultStorage::cut_power`]) makes every later operation fail, as for a
//! process that no longer runs; [`FaultStorage::restore_durable_state`] then rolls every
//! file back through its undo log, removes entries created since their directory's last
//! sync, brings back the files removed or renamed over since then, and clears the cut. What
//! remains is exactly what the syncs covered, like RocksDB's fault-injection file system,
//! which drops every byte that was not synced.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::storage::{OsStorage, Storage, SyncKind};

/// The operations a [`FaultStorage`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultOp {
    /// [`Storage::create_new`].
    Create,
    /// [`Storage::write_at`].
    Write,
    /// [`Storage::sync`] of a file.
    Sync,
    /// [`Storage::allocate`].
    Allocate,
    /// [`Storage::set_len`].
    SetLen,
    /// [`Storage::rename`].
    Rename,
    /// [`Storage::remove`].
    Remove,
    /// [`Storage::sync_dir`].
    SyncDir,
    /// [`Storage::start_write_back`].
    WriteBack,
}

impl FaultOp {
    /// Every operation, in declaration order.
    pub const ALL: [FaultOp; 9] = [
        FaultOp::Create,
        FaultOp::Write,
        FaultOp::Sync,
        FaultOp::Allocate,
        FaultOp::SetLen,
        FaultOp::Rename,
        FaultOp::Remove,
        FaultOp::SyncDir,
        FaultOp::WriteBack,
    ];
}

/// A failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The operation does nothing and fails with an I/O error (for [`FaultOp::Allocate`], a
    /// full disk: `ENOSPC`).
    Fail(FaultOp),
    /// A write stores the first half of its bytes, then fails with a full disk.
    ShortWrite,
    /// The operation panics before it does anything, as a bug in the middle of a commit
    /// would: what the store was doing is then unknown.
    Panic(FaultOp),
}

impl Fault {
    /// The kind of operation the fault fires on.
    pub fn op(self) -> FaultOp {
        match self {
            Fault::Fail(op) | Fault::Panic(op) => op,
            Fault::ShortWrite => FaultOp::Write,
        }
    }
}

type Inode = (u64, u64);

/// When an armed fault fires.
#[derive(Debug)]
enum Trigger {
    /// On the operation of its kind whose count reaches the number.
    Nth(u64),
    /// On the next operation of its kind on the path.
    On(PathBuf),
}

/// What one change replaced: the file's length before it, and the bytes it overwrote.
#[derive(Debug)]
struct Undo {
    offset: u64,
    old: Vec<u8>,
    old_len: u64,
}

#[derive(Debug, Default)]
struct State {
    counts: HashMap<FaultOp, u64>,
    injected: HashMap<Fault, u64>,
    /// Armed faults, each with when it fires.
    armed: Vec<(Fault, Trigger)>,
    powered_off: bool,
    /// Per file, the changes since its last sync, oldest first.
    undo: HashMap<Inode, Vec<Undo>>,
    /// Per directory, its entries as of its last sync.
    durable_dirs: HashMap<PathBuf, HashMap<OsString, Inode>>,
    /// Durable contents of files that lost their name since their directory's last sync,
    /// under each durable name (directory and name) that still names them, with their
    /// inode. Kept by name, not by inode alone: the file system may give a freed inode
    /// number to a new file, whose removal must not stand in for the old file's contents.
    orphans: HashMap<(PathBuf, OsString), (Inode, Vec<u8>)>,
    /// The ranges whose write-back was started, in order: file, offset and length.
    write_backs: Vec<(PathBuf, u64, u64)>,
    /// What [`Storage::available_bytes`] reports in place of the file system's figure.
    available_bytes: Option<u64>,
}

/// A [`Storage`] over the real files that fails the operations it is told to and can
/// simulate a power cut. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct FaultStorage {
    state: Mutex<State>,
    /// Operations held back ([`FaultStorage::hold`]), apart from `state`, so that a held
    /// operation blocks no other.
    gate: Gate,
}

/// Operations on given paths that wait until released, and how many wait now.
#[derive(Debug, Default)]
struct Gate {
    held: Mutex<Holds>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Holds {
    held: Vec<(FaultOp, PathBuf)>,
    waiting: HashMap<(FaultOp, PathBuf), usize>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Holds> {
        self.held
            .lock()
            .expect("a thread panicked while it changed the fault storage's holds")
    }

    /// Returns once operations of kind `op` on `path` are not held.
    fn pass(&self, op: FaultOp, path: &Path) {
        let key = (op, path.to_path_buf());
        let mut holds = self.lock();
        if !holds.held.contains(&key) {
            return;
        }
        *holds.waiting.entry(key.clone()).or_default() += 1;
        while holds.held.contains(&key) {
            holds = self
                .released
                .wait(holds)
                .expect("a thread panicked while it changed the fault storage's holds");
        }
        *holds.waiting.entry(key).or_default() -= 1;
    }
}

impl FaultStorage {
    /// A storage that fails nothing until told to.
    pub fn new() -> FaultStorage {
        FaultStorage::default()
    }

    /// Reports `bytes` as the room left on the file system from now on, whatever it has;
    /// `None` reports the file system's own figure again.
    pub fn set_available_bytes(&self, bytes: Option<u64>) {
        self.lock().available_bytes = bytes;
    }

    /// Arms `fault`: it fires on the `nth` operation of its kind from now (0: the next one).
    /// A fault fires once.
    pub fn inject(&self, fault: Fault, nth: u64) {
        let mut state = self.lock();
        let at = state.count(fault.op()) + nth;
        state.armed.push((fault, Trigger::Nth(at)));
    }

    /// Arms `fault`: it fires on the next operation of its kind on `path`, whatever other
    /// operations come first. A fault fires once.
    pub fn inject_on(&self, fault: Fault, path: &Path) {
        let trigger = Trigger::On(path.to_path_buf());
        self.lock().armed.push((fault, trigger));
    }

    /// Disarms every fault that has not fired.
    pub fn disarm(&self) {
        self.lock().armed.clear();
    }

    /// How many operations of kind `op` were asked for, failed ones included.
    pub fn count(&self, op: FaultOp) -> u64 {
        self.lock().count(op)
    }

    /// Makes every operation of kind `op` on `path` from now on wait, before it does
    /// anything, until [`FaultStorage::release`]: a test can then watch what goes on while
    /// one is under way. Other operations go ahead.
    pub fn hold(&self, op: FaultOp, path: &Path) {
        let key = (op, path.to_path_buf());
        let mut holds = self.gate.lock();
        if !holds.held.contains(&key) {
            holds.held.push(key);
        }
    }

    /// Lets the operations held by [`FaultStorage::hold`] of `op` on `path` go on.
    pub fn release(&self, op: FaultOp, path: &Path) {
        self.gate
            .lock()
            .held
            .retain(|(held, at)| (*held, at.as_path()) != (op, path));
        self.gate.released.notify_all();
    }

    /// How many operations of kind `op` on `path` wait at a hold now.
    pub fn waiting(&self, op: FaultOp, path: &Path) -> usize {
        let key = (op, path.to_path_buf());
        self.gate.lock().waiting.get(&key).copied().unwrap_or(0)
    }

    /// The ranges (offset, length) whose write-back [`Storage::start_write_back`] started,
    /// in order, failed ones left out.
    pub fn write_backs(&self) -> Vec<(u64, u64)> {
        let state = self.lock();
        state
            .write_backs
            .iter()
            .map(|&(_, offset, len)| (offset, len))
            .collect()
    }

    /// The ranges (offset, length) of `path` whose write-back [`Storage::start_write_back`]
    /// started, in order, failed ones left out.
    pub fn write_backs_of(&self, path: &Path) -> Vec<(u64, u64)> {
        let state = self.lock();
        state
            .write_backs
            .iter()
            .filter(|(of, _, _)| of == path)
            .map(|&(_, offset, len)| (offset, len))
            .collect()
    }

    /// How many times `fault` fired.
    pub fn injected(&self, fault: Fault) -> u64 {
        self.lock().injected.get(&fault).copied().unwrap_or(0)
    }

    /// Cuts the power: every later operation fails until
    /// [`FaultStorage::restore_durable_state`]. Drop every handle on the store before
    /// restoring, since restoring shrinks files they may have mapped.
    pub fn cut_power(&self) {
        self.lock().powered_off = true;
    }

    /// Takes every file and directory this storage changed back to what its syncs made
    /// durable, and turns the power back on.
    pub fn restore_durable_state(&self) -> io::Result<()> {
        let mut state = self.lock();
        let dirs: Vec<PathBuf> = state.durable_dirs.keys().cloned().collect();
        for dir in dirs {
            let durable = state.durable_dirs[&dir].clone();
            let current = list(&dir)?;
            for (name, inode) in &current {
                let path = dir.join(name);
                match durable.get(name) {
                    None => std::fs::remove_file(&path)?,
                    Some(kept) if kept == inode => {
                        let key = (dir.clone(), name.clone());
                        if let Some((_, contents)) = state
                            .orphans
                            .get(&key)
                            .filter(|(orphan, _)| orphan == inode)
                        {
                            // The durable file lost the name since, and a new file that
                            // took it reuses its inode number.
                            std::fs::write(&path, contents)?;
                        } else if let Some(undo) = state.undo.remove(inode) {
                            std::fs::write(&path, durable_contents(&path, undo)?)?;
                        }
                    }
                    Some(_) => {}
                }
            }
            for (name, inode) in &durable {
                let path = dir.join(name);
                if current.get(name) == Some(inode) {
                    continue;
                }
                // The name was removed or now names another file: bring back the durable
                // contents of the file it named.
                if let Some((kept, contents)) = state.orphans.get(&(dir.clone(), name.clone()))
                    && kept == inode
                {
                    std::fs::write(&path, contents)?;
                }
            }
            let restored = list(&dir)?;
            state.durable_dirs.insert(dir, restored);
        }
        state.undo.clear();
        state.orphans.clear();
        state.powered_off = false;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("a thread panicked while it changed the fault storage's state")
    }

    /// Counts an operation on `path` and says whether an armed fault fires on it. The
    /// directory holding `path` (or `path` itself, for a directory sync) is kept from now on.
    fn begin(
        &self,
        op: FaultOp,
        path: &Path,
    ) -> io::Result<(MutexGuard<'_, State>, Option<Fault>)> {
        self.gate.pass(op, path);
        let mut state = self.lock();
        let dir = match op {
            FaultOp::SyncDir => Some(path),
            _ => path.parent(),
        };
        if let Some(dir) = dir {
            state.track_dir(dir)?;
        }
        if state.powered_off {
            return Err(io::Error::other(format!(
                "{op:?} of {}: the power is cut",
                path.display()
            )));
        }
        let n = state.count(op);
        *state.counts.entry(op).or_default() += 1;
        let fired = state.armed.iter().position(|(fault, trigger)| {
            fault.op() == op
                && match trigger {
                    Trigger::Nth(at) => *at == n,
                    Trigger::On(on) => on == path,
                }
        });
        let fault = fired.map(|i| state.armed.swap_remove(i).0);
        if let Some(fault) = fault {
            *state.injected.entry(fault).or_default() += 1;
        }
        if let Some(Fault::Panic(op)) = fault {
            // Not while the state is locked: the storage goes on serving after the panic.
            drop(state);
            panic!("injected panic: {op:?} of {}", path.display());
        }
        Ok((state, fault))
    }
}

impl State {
    fn count(&self, op: FaultOp) -> u64 {
        self.counts.get(&op).copied().unwrap_or(0)
    }

    /// Starts keeping the durable entries of `dir`, as they are now, if it is not kept yet.
    fn track_dir(&mut self, dir: &Path) -> io::Result<()> {
        if !self.durable_dirs.contains_key(dir) {
            let entries = list(dir)?;
            self.durable_dirs.insert(dir.to_path_buf(), entries);
        }
        Ok(())
    }

    /// Saves the durable contents of the file at `path` before it loses that name.
    fn keep_orphan(&mut self, path: &Path) -> io::Result<()> {
        let inode = match std::fs::symlink_metadata(path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        let undo = self.undo.remove(&inode).unwrap_or_default();
        let contents = durable_contents(path, undo)?;
        // The durable names of this inode. One that has an orphan already names an older
        // file whose inode number this one reuses: that file's contents are what a power
        // cut brings back under it.
        for (dir, entries) in &self.durable_dirs {
            for (name, _) in entries.iter().filter(|(_, named)| **named == inode) {
                self.orphans
                    .entry((dir.clone(), name.clone()))
                    .or_insert_with(|| (inode, contents.clone()));
            }
        }
        Ok(())
    }

    /// Records what a change of `file` over `offset..end` is about to replace.
    fn record(&mut self, file: &File, offset: u64, end: u64) -> io::Result<()> {
        let meta = file.metadata()?;
        let old_len = meta.len();
        let kept_end = end.min(old_len);
        let mut old = vec![0; kept_end.saturating_sub(offset) as usize];
        file.read_exact_at(&mut old, offset)?;
        self.undo
            .entry((meta.dev(), meta.ino()))
            .or_default()
            .push(Undo {
                offset,
                old,
                old_len,
            });
        Ok(())
    }
}

impl Storage for FaultStorage {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        let (mut state, fault) = self.begin(FaultOp::Create, path)?;
        if fault.is_some() {
            return Err(injected("create", path));
        }
        let file = OsStorage.create_new(path)?;
        let meta = file.metadata()?;
        // The inode may be a reused one: nothing of an earlier file's log applies.
        state.undo.remove(&(meta.dev(), meta.ino()));
        Ok(file)
    }

    fn write_at(&self, file: &File, path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::Write, path)?;
        let end = offset + data.len() as u64;
        match fault {
            Some(Fault::ShortWrite) => {
                let half = &data[..data.len() / 2];
                state.record(file, offset, offset + half.len() as u64)?;
                OsStorage.write_at(file, path, half, offset)?;
                Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "injected short write to {}: {} of {} bytes",
                        path.display(),
                        half.len(),
                        data.len()
                    ),
                ))
            }
            Some(_) => Err(injected("write", path)),
            None => {
                state.record(file, offset, end)?;
                OsStorage.write_at(file, path, data, offset)
            }
        }
    }

    fn sync(&self, file: &File, path: &Path, kind: SyncKind) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::Sync, path)?;
        if fault.is_some() {
            return Err(injected("sync", path));
        }
        OsStorage.sync(file, path, kind)?;
        let meta = file.metadata()?;
        state.undo.remove(&(meta.dev(), meta.ino()));
        Ok(())
    }

    /// Writes nothing the undo log must know of: the bytes were written (and logged) by
    /// `write_at`, and only a sync makes them durable.
    fn start_write_back(&self, file: &File, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::WriteBack, path)?;
        if fault.is_some() {
            return Err(injected("write-back of", path));
        }
        state.write_backs.push((path.to_path_buf(), offset, len));
        OsStorage.start_write_back(file, path, offset, len)
    }

    fn allocate(&self, file: &File, path: &Path, from: u64, to: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::Allocate, path)?;
        if fault.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("injected full disk preallocating {}", path.display()),
            ));
        }
        state.record(file, from, from)?;
        OsStorage.allocate(file, path, from, to)
    }

    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::SetLen, path)?;
        if fault.is_some() {
            return Err(injected("truncate", path));
        }
        state.record(file, len, u64::MAX)?;
        OsStorage.set_len(file, path, len)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::Rename, to)?;
        if fault.is_some() {
            return Err(injected("rename", to));
        }
        state.keep_orphan(to)?;
        OsStorage.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::Remove, path)?;
        if fault.is_some() {
            return Err(injected("remove", path));
        }
        state.keep_orphan(path)?;
        OsStorage.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let (mut state, fault) = self.begin(FaultOp::SyncDir, dir)?;
        if fault.is_some() {
            return Err(injected("sync", dir));
        }
        OsStorage.sync_dir(dir)?;
        let entries = list(dir)?;
        state.durable_dirs.insert(dir.to_path_buf(), entries);
        let State {
            durable_dirs,
            orphans,
            ..
        } = &mut *state;
        orphans.retain(|(dir, name), (inode, _)| {
            durable_dirs.get(dir).and_then(|entries| entries.get(name)) == Some(inode)
        });
        Ok(())
    }

    fn available_bytes(&self, file: &File, path: &Path) -> io::Result<u64> {
        match self.lock().available_bytes {
            Some(bytes) => Ok(bytes),
            None => OsStorage.available_bytes(file, path),
        }
    }
}

fn injected(op: &str, path: &Path) -> io::Error {
    io::Error::other(format!("injected failure: {op} {}", path.display()))
}

/// The entries of `dir`: name and inode of each. A directory that does not exist has none.
fn list(dir: &Path) -> io::Result<HashMap<OsString, Inode>> {
    let mut entries = HashMap::new();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(entries),
        Err(err) => return Err(err),
    };
    for entry in read {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() {
            entries.insert(entry.file_name(), (meta.dev(), meta.ino()));
        }
    }
    Ok(entries)
}

/// The contents of the file at `path` with `undo` undone, newest change first: what its last
/// sync made durable.
fn durable_contents(path: &Path, undo: Vec<Undo>) -> io::Result<Vec<u8>> {
    let mut contents = std::fs::read(path)?;
    for change in undo.into_iter().rev() {
        contents.resize(change.old_len as usize, 0);
        // A change that began at or past the old end (a write past it, a file grown by
        // `set_len` or `allocate`) replaced no byte: the old length alone undoes it.
        if change.old.is_empty() {
            continue;
        }
        let start = change.offset as usize;
        contents[start..start + change.old.len()].copy_from_slice(&change.old);
    }
    Ok(contents)
}
