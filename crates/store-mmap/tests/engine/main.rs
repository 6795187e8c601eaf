//! Tests of the engine at its public boundary, on real files.

mod backup;
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
mod verification;
mod versions;

use std::path::{Path, PathBuf};

use store_mmap::{DocId, Store, StoreOptions};
use tempfile::TempDir;

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
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(&self.current).unwrap() {
            let entry = entry.unwrap();
            match std::fs::copy(entry.path(), copy.join(entry.file_name())) {
                Ok(_) => {}
                // The engine's checkpoint thread renamed its temporary file meanwhile: a
                // kill at that instant would have left either name.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("copy {}: {err}", entry.path().display()),
            }
        }
        self.store = None;
        self.current = copy;
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

pub(crate) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Texts the model tests write: empty, short ASCII, any printable characters (multi-byte
/// ones included), and runs long enough to fill small segments quickly.
pub(crate) fn texts() -> impl proptest::strategy::Strategy<Value = String> + Clone {
    use proptest::prelude::*;
    prop_oneof![
        Just(String::new()),
        "[a-z ]{1,40}",
        "\\PC{1,200}",
        "x{300,900}"
    ]
}

pub(crate) fn id(n: u64) -> DocId {
    DocId::from(n)
}
