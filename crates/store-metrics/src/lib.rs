//! Counters, latency histograms and advice for textstore, with a Prometheus text export.
//!
//! - [`Metrics`] collects. Operations are counted per thread (no shared cache line, no
//!   locked instruction on the read path) by outcome, so a failure is never counted as a
//!   success; latencies go to lock-free log-linear histograms with p50 to p999 and the exact
//!   maximum. Every write is timed; reads are all counted and timed one in
//!   [`DEFAULT_READ_SAMPLE_EVERY`]. A successful read touches two per-thread counters (its
//!   operation's and its bytes') and reads one of them to choose whether it is timed.
//!   Instrumenting a get of a resident document whose text the caller then reads costs it
//!   1.5–2.2% at 400 bytes and 0.0–1.0% at 2 KiB in five runs; a get whose handle is dropped
//!   unread (50 to 60 ns) runs the same added instructions, and they cost it 11.8–14.3% and
//!   11.6–15.3% (`cargo bench -p store-metrics --bench overhead_paired`, the criterion bench that
//!   measures the ratio from alternating passes). Measured as two separate criterion
//!   benchmarks (`overhead`), the cost drifts more, because two runs of the plain get alone
//!   drift by up to 6%.
//! - [`Instrumented`] wraps any layer that implements the read, residency and write traits
//!   of `store_format` and records each call; it implements what it wraps, so it stacks
//!   anywhere. Writes through a shared handle return a [`Counted`] ticket, counted when it
//!   completes. A store given the same `Arc<Metrics>` as its
//!   [`store_format::CommitObserver`] reports each commit group: its size, its write time and
//!   its `fdatasync` time, including the groups a concurrent handle's writer forms.
//! - [`Snapshot`] is a copy of everything, to which the caller adds the stats of any layer
//!   that implements [`store_format::VisitStats`] (the store's size, the write queue, the
//!   cache, compactions, the scrub). [`prometheus()`] renders it, [`Snapshot::to_json`] too,
//!   and [`health()`] judges it. With the `metrics` feature, `publish` hands it to the
//!   [`metrics`](https://docs.rs/metrics) facade, for applications that export through a
//!   recorder of their own.
//!
//! Invariant: this crate depends on `store-format` alone; the layers below know nothing of
//! it. They expose stats through `VisitStats`, errors through `StoreError::kind`, and call
//! the `CommitObserver` trait, which this crate implements.
//!
//! ```
//! use std::sync::Arc;
//! use store_format::{DocId, DocRead, DocWrite, MemoryStore, WriteTicket};
//! use store_metrics::{Instrumented, Metrics, Op, Outcome};
//!
//! let metrics = Arc::new(Metrics::new());
//! let store = Instrumented::new(MemoryStore::new(), metrics.clone());
//!
//! store.put(DocId::from(1u64), "hello")?.wait()?;
//! assert!(store.get(DocId::from(2u64))?.is_none());
//!
//! let snapshot = metrics.snapshot();
//! assert_eq!(snapshot.count(Op::Put, Outcome::Ok), 1);
//! assert_eq!(snapshot.count(Op::Get, Outcome::NotFound), 1);
//! assert!(store_metrics::prometheus(&snapshot).contains("op=\"put\",outcome=\"ok\"} 1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

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
mod writes;

#[cfg(feature = "metrics")]
pub use facade::publish;
pub use health::{Advice, Health, Severity, Thresholds, health};
pub use histogram::{Histogram, HistogramSnapshot, Latency};
pub use instrumented::Instrumented;
pub use op::{Op, Outcome};
pub use prometheus::prometheus;
pub use registry::{DEFAULT_READ_SAMPLE_EVERY, Metrics, Span};
pub use snapshot::Snapshot;
pub use store_format::ErrorKind;
pub use writes::Counted;
