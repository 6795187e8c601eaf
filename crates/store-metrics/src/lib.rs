//! Counters, latency histograms and advice for textstore, with a Prometheus text export.
//!
//! - [`Metrics`] collects. Operations are counted per thread (no shared cache line, no
//!   locked instruction on the read path) by outcome, so a failure is never counted as a
//!   success; latencies go to lock-free log-linear histograms with p50 to p999 and the exact
//!   maximum. Every write is timed; reads are all counted and timed one in
//!   [`DEFAULT_READ_SAMPLE_EVERY`]. Instrumenting a get of a resident document costs it
//!   2.9% at 400 bytes (1.7 to 3.2%) and 2.3% at 2 KiB (1.9 to 2.6%), medians of nine runs
//!   of `cargo bench -p store-metrics --bench overhead_paired`, the criterion bench that
//!   measures the ratio from alternating passes. Measured as two separate criterion
//!   benchmarks (`overhead`), the same cost shows as 3.5 to 9.4%, because two runs of the
//!   plain get alone drift by up to 6%.
//! - [`Instrumented`] wraps any layer that implements the read and write traits and records
//!   each call. A [`store_mmap::Store`] given the same `Arc<Metrics>` as its
//!   [`store_format::CommitObserver`] reports each commit group: its size, its write time and
//!   its `fdatasync` time, including the groups the concurrent handle's writer thread forms.
//!   Wrapping the concurrent handle counts its writes per call too: each returns a
//!   [`Counted`] ticket, counted when it completes.
//! - [`Snapshot`] is a copy of everything, to which the caller adds the store's gauges
//!   ([`store_mmap::StoreStats`]) and the queue's ([`store_concurrent::QueueStats`]).
//!   [`prometheus()`] renders it, [`Snapshot::to_json`] too, and [`health()`] judges it.
//!   With the `metrics` feature, `publish` hands it to the [`metrics`](https://docs.rs/metrics)
//!   facade, for applications that export through a recorder of their own.
//!
//! Invariant: the layers below know nothing of this crate. They expose stats structs and
//! call the `CommitObserver` trait, which this crate implements.
//!
//! ```
//! use std::sync::Arc;
//! use store_metrics::{Instrumented, Metrics, Op, Outcome};
//! use store_mmap::{DocId, DocRead, DocWrite, Store, StoreOptions};
//!
//! # let dir = tempfile::tempdir()?;
//! let metrics = Arc::new(Metrics::new());
//! let mut store = Store::create(dir.path().join("docs"), StoreOptions::new())?;
//! store.set_observer(metrics.clone());
//! let mut store = Instrumented::new(store, metrics.clone());
//!
//! store.put(DocId::from(1u64), "hello")?;
//! assert!(store.get(DocId::from(2u64))?.is_none());
//!
//! let snapshot = metrics.snapshot().with_store(store.inner().stats()?);
//! assert_eq!(snapshot.count(Op::Put, Outcome::Ok), 1);
//! assert_eq!(snapshot.count(Op::Get, Outcome::NotFound), 1);
//! assert_eq!(snapshot.commits(), 1);
//! assert!(store_metrics::prometheus(&snapshot).contains("textstore_documents 1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod concurrent;
#[cfg(feature = "metrics")]
mod facade;
mod health;
mod histogram;
mod instrumented;
mod op;
mod prometheus;
mod registry;
mod snapshot;
mod thread_index;

pub use concurrent::{Committed, Counted};
#[cfg(feature = "metrics")]
pub use facade::publish;
pub use health::{Advice, Health, Severity, Thresholds, health};
pub use histogram::{Histogram, HistogramSnapshot, Latency};
pub use instrumented::Instrumented;
pub use op::{Classify, ErrorKind, Op, Outcome};
pub use prometheus::prometheus;
pub use registry::{DEFAULT_READ_SAMPLE_EVERY, Metrics, Span};
pub use snapshot::Snapshot;
