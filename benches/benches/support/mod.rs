//! What the suites share: where stores live and how they are filled.

use std::path::PathBuf;

use store_bench::engines::Textstore;
use store_bench::{Corpus, Engine};

/// A directory under `target/`, on the disk the project is built on: a tmpfs `/tmp` would
/// make `fdatasync` free and the figures meaningless.
pub(crate) fn bench_dir() -> tempfile::TempDir {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp");
    std::fs::create_dir_all(&target).unwrap();
    tempfile::tempdir_in(target).unwrap()
}

/// A new textstore holding `corpus`, with the directory that holds it.
pub(crate) fn filled_store(corpus: &Corpus) -> (tempfile::TempDir, Textstore) {
    let dir = bench_dir();
    let store = Textstore::create(dir.path()).unwrap();
    store.ingest(corpus.docs()).unwrap();
    (dir, store)
}
