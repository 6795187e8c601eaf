//! The workload runner of textstore: what `cargo xtask bench` runs, and what the criterion
//! suites of `benches/` are built on.
//!
//! - [`Corpus`]: the documents (synthetic from a seed, a directory of files, a JSONL file).
//! - [`KeyChooser`]: which documents a workload touches (uniform, Zipf, sequential).
//! - [`Engine`] and [`Reader`]: the interface every measured engine implements; the engines
//!   are in [`engines`]: textstore, an in-memory `HashMap` (the upper bound), one file per
//!   document, and with the `peers` feature LMDB (heed), redb, fjall and SQLite.
//! - [`Workload`] and [`run()`]: every workload on every engine, with the machine's
//!   [`PhysicalLimits`] measured in the same run, into a [`Report`] (text, Markdown, JSON,
//!   and an SVG chart).
//! - [`opening`] and [`compacting`]: textstore's own figures beside its own in the same run:
//!   reopens and readers in other processes, and durable puts beside a compaction.
//!
//! What this crate does not know: how any engine works inside. It measures each through
//! its public API, used as that engine's documentation says, and checks every read against
//! the corpus so that a figure never measures a bug.

pub mod compacting;
pub mod corpus;
pub mod disk;
pub mod engine;
pub mod engines;
pub mod error;
pub mod keys;
pub mod limits;
pub mod measure;
pub mod opening;
pub mod plan;
pub mod report;
pub mod run;
pub mod workload;

mod chart;

pub use chart::write_ratio_chart;
pub use corpus::{Corpus, Document};
pub use engine::{Engine, Reader};
pub use error::{Error, Result};
pub use keys::KeyChooser;
pub use limits::{FlushLimits, GroupedFlushes, LimitSettings, PhysicalLimits, SizedFlushes, Space};
pub use plan::{Plan, Settings};
pub use report::Report;
pub use run::{EngineSet, RunOptions, Step, print_step, run};
pub use workload::Workload;
