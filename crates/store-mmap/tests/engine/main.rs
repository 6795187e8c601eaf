//! Tests of the engine at its public boundary, on real files.

mod backup;
mod checkpoints;
mod compaction;
mod compat;
mod damage;
mod disk_full;
mod faults;
mod feed;
mod files;
mod fuzz_corpus;
mod journal;
mod logging;
mod model;
mod progress;
mod ranges;
mod read_only;
mod roundtrip;
mod spares;
mod verification;
mod versions;

#[path = "../support/model.rs"]
mod model_support;

pub(crate) use model_support::texts;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use store_mmap::{DocId, Store, StoreOptions};
use tempfile::TempDir;

/// Every file of a store directory and its bytes.
pub(crate) fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// A store in a temporary directory that tests can close, reopen and damage.
pub(crate) struct Fixture {
    root: TempDir,
    current: PathBuf,
    crashes: u32,
    options: StoreOptions,
    store: Option<Store>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture::with(StoreOptions::new())
    }

    pub(crate) fn with(options: StoreOptions) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let current = root.path().join("store");
        let store = Store::create(&current, options.clone()).unwrap();
        Fixture {
            root,
            current,
            crashes: 0,
            options,
            store: Some(store),
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.current.clone()
    }

    pub(crate) fn store(&mut self) -> &mut Store {
        self.store.as_mut().expect("store is open")
    }

    pub(crate) fn close(&mut self) {
        if let Some(store) = self.store.take() {
            store.close().unwrap();
        }
    }

    /// Leaves the store as a killed process would: the files exactly as they are while the
    /// handle is open (no final sync, trim or checkpoint). The files are copied to a new
    /// directory, which the fixture uses from now on; the original handle is discarded.
    pub(crate) fn crash(&mut self) {
        self.crashes += 1;
        let copy = self.root.path().join(format!("crash-{}", self.crashes));
        copy_files(&self.current, &copy);
        self.store = None;
        self.current = copy;
    }

    /// The store rebuilt from its data alone: see [`rebuilt_from_data`].
    pub(crate) fn rebuilt(
        &self,
        keys: u64,
    ) -> Result<std::collections::BTreeMap<u64, String>, String> {
        rebuilt_from_data(&self.current, &self.root.path().join("rebuilt"), keys)
    }

    pub(crate) fn reopen(&mut self) -> &mut Store {
        self.close();
        self.store = Some(Store::open(self.path(), self.options.clone()).unwrap());
        self.store()
    }

    pub(crate) fn try_reopen(&mut self) -> store_mmap::Result<&mut Store> {
        self.close();
        self.store = Some(Store::open(self.path(), self.options.clone())?);
        Ok(self.store())
    }

    pub(crate) fn segment_files(&self) -> Vec<PathBuf> {
        segment_files(&self.path())
    }

    pub(crate) fn text(&mut self, id: u64) -> Option<String> {
        self.store()
            .get(DocId::from(id))
            .unwrap()
            .map(|doc| doc.to_string())
    }
}

/// Copies the files of the store at `dir` into a new directory `to`, as they are: of an open
/// store, what a killed process would leave.
pub(crate) fn copy_files(dir: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        match std::fs::copy(entry.path(), to.join(entry.file_name())) {
            Ok(_) => {}
            // The engine's checkpoint thread renamed its temporary file meanwhile: a kill at
            // that instant would have left either name.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("copy {}: {err}", entry.path().display()),
        }
    }
}

/// The store at `dir`, open or closed, rebuilt from its data alone: its files copied into
/// `scratch` (emptied first), then `store_mmap::recover`, which reads no index, from there
/// into a new store. Returns the texts of its documents `0..keys`. Fails when the rebuild
/// found damage or a torn tail (every commit of these tests is whole once it returns) or
/// holds documents outside `0..keys`.
pub(crate) fn rebuilt_from_data(
    dir: &Path,
    scratch: &Path,
    keys: u64,
) -> Result<std::collections::BTreeMap<u64, String>, String> {
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).unwrap();
    }
    std::fs::create_dir(scratch).unwrap();
    let copy = scratch.join("copy");
    copy_files(dir, &copy);
    let rebuilt = scratch.join("rebuilt");
    let report = store_mmap::recover(&copy, &rebuilt).map_err(|err| format!("recover: {err}"))?;
    if !report.is_complete() {
        return Err(format!(
            "the rebuild from the data found damage: {report:?}"
        ));
    }
    let store = Store::open(&rebuilt, StoreOptions::new()).map_err(|err| err.to_string())?;
    let found: std::collections::BTreeMap<u64, String> = (0..keys)
        .filter_map(|k| {
            let doc = store.get(DocId::from(k)).unwrap()?;
            Some((k, doc.to_string()))
        })
        .collect();
    if store.len() != found.len() {
        return Err(format!(
            "the rebuild holds {} documents, {} of them below {keys}",
            store.len(),
            found.len()
        ));
    }
    Ok(found)
}

/// A put of `id` at `seq` holding `payload`, encoded whole with a valid checksum: what only
/// a process that bypasses the engine writes.
pub(crate) fn encoded_put(id: DocId, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::new();
    let len = store_format::record_len(payload.len() as u32) as u32;
    store_format::encode_record(
        &mut record,
        store_format::RecordKind::Put,
        id,
        seq,
        payload,
        Some(len),
    );
    record
}

/// Writes [`encoded_put`] over the record at `at` of the closed store in `dir`, which it
/// must fit; returns the segment file's path.
pub(crate) fn rewrite_put(
    dir: &Path,
    at: store_format::Position,
    id: DocId,
    seq: u64,
    payload: &[u8],
) -> PathBuf {
    let record = encoded_put(id, seq, payload);
    let path = dir.join(format!("{:010}.seg", at.segment));
    let mut bytes = std::fs::read(&path).unwrap();
    let start = at.offset as usize;
    bytes[start..start + record.len()].copy_from_slice(&record);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The id of the segment whose file is `path`.
pub(crate) fn segment_id(path: &Path) -> u32 {
    let name = path.file_stem().unwrap().to_str().unwrap();
    name.parse()
        .unwrap_or_else(|err| panic!("{}: not a segment's name: {err}", path.display()))
}

pub(crate) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "seg")
}

/// The files of `dir` whose name ends in `.{extension}`, sorted.
pub(crate) fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

pub(crate) fn id(n: u64) -> DocId {
    DocId::from(n)
}

/// Polls `done` for up to ten seconds: whether it came true. A writer that waits on what a
/// test holds never gets there.
pub(crate) fn within_ten_seconds(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Whether `thread` is still running 200 ms from now: a thread that does not wait for what
/// the test holds returns within microseconds.
pub(crate) fn still_running_after_200_ms<T>(thread: &JoinHandle<T>) -> bool {
    let waited = Instant::now() + Duration::from_millis(200);
    while Instant::now() < waited && !thread.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    !thread.is_finished()
}
