//! What the benchmarks of this crate share: where their stores live and the text they write.

use std::path::PathBuf;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::StoreOptions;

/// A directory under `target/`, on the disk the project is built on: a tmpfs `/tmp` would
/// make `fdatasync` free and the figures meaningless.
pub(crate) fn bench_dir() -> tempfile::TempDir {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&target).unwrap();
    tempfile::tempdir_in(target).unwrap()
}

/// A durable store in `dir` with the given writer settings.
pub(crate) fn concurrent_store(dir: &tempfile::TempDir, writer: WriterOptions) -> ConcurrentStore {
    ConcurrentStore::create(dir.path().join("s"), StoreOptions::new(), writer).unwrap()
}

/// `len` bytes of text made of the decimal digits of `i`, different for every `i`.
pub(crate) fn text(i: u64, len: usize) -> String {
    let digits = i.to_string();
    let mut out = String::with_capacity(len);
    while out.len() + digits.len() < len {
        out.push_str(&digits);
        out.push(' ');
    }
    out
}
