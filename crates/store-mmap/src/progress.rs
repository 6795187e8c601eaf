//! [`Progress`]: how a long operation (verify, recover, compact, backup) tells a caller how
//! far it got, for a progress bar.

/// Told how far a long operation got. The operation states its total once, then reports
/// the work it did as it goes, on the thread doing it; the units are bytes of segment
/// files for every operation of the engine.
pub trait Progress: Send + Sync {
    /// The operation has `total` units of work ahead.
    fn start(&self, total: u64);
    /// `done` more units are done.
    fn advance(&self, done: u64);
}

/// No one is told.
impl Progress for () {
    fn start(&self, _total: u64) {}

    fn advance(&self, _done: u64) {}
}

/// The total length of the files at `paths` that exist.
pub(crate) fn file_bytes<'a>(paths: impl Iterator<Item = &'a std::path::Path>) -> u64 {
    paths
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum()
}
