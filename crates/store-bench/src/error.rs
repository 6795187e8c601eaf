//! What can go wrong while loading a corpus or running a workload.

use std::path::PathBuf;

/// An error of the workload runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A corpus file holds something that is not a document.
    #[error("{}{}: {message}", path.display(), line.map(|n| format!(" line {n}")).unwrap_or_default())]
    Corpus {
        /// The corpus file at fault.
        path: PathBuf,
        /// The line at fault, in a JSONL corpus.
        line: Option<u64>,
        /// What is wrong with it.
        message: String,
    },
    /// An engine failed an operation.
    #[error("{engine}: {operation}: {source}")]
    Engine {
        /// The engine's name.
        engine: &'static str,
        /// What the runner asked of it.
        operation: &'static str,
        /// What the engine said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The chart could not be drawn.
    #[error("cannot draw the chart {}: {message}", path.display())]
    Chart {
        /// The SVG file.
        path: PathBuf,
        /// What the drawing library said.
        message: String,
    },
    /// An engine returned something other than what was written: the figures of such an
    /// engine would measure a bug.
    #[error("{engine}: {what}")]
    WrongResult {
        /// The engine's name.
        engine: &'static str,
        /// What differed from the corpus.
        what: String,
    },
    /// The file system the engines would write to has less space left than a run takes.
    #[error(
        "{} has {:.1} GiB available, below the {:.1} GiB a run takes at its peak; free space, or pass --out on another file system",
        path.display(),
        *available as f64 / f64::from(1 << 30),
        *needed as f64 / f64::from(1 << 30)
    )]
    LowSpace {
        /// The directory the run writes under.
        path: PathBuf,
        /// Bytes available there.
        available: u64,
        /// Bytes the run needs.
        needed: u64,
    },
}

/// The runner's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// Wraps an engine's own error with the engine's name and the operation that failed.
    pub fn engine<E>(engine: &'static str, operation: &'static str) -> impl FnOnce(E) -> Error
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        move |source| Error::Engine {
            engine,
            operation,
            source: source.into(),
        }
    }
}
