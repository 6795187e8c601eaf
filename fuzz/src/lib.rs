//! The checks of textstore's fuzz targets, one function per target. Each file is also
//! compiled into store-mmap's tests (`tests/engine/fuzz_corpus.rs`), which replay the
//! committed corpus under `fuzz/corpus/` without libFuzzer.

pub mod format;
pub mod open;
