//! store-metrics at its boundary: known sequences of operations on a real store and on the
//! in-memory double, the Prometheus text read back by an independent parser, and what the
//! `metrics` facade receives.

mod counts;
mod exposition;
#[cfg(feature = "metrics")]
mod facade;
mod health;
mod histograms;

use std::sync::Arc;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_metrics::{Instrumented, Metrics};
use store_mmap::{Store, StoreOptions};

/// An instrumented concurrent handle whose commits report to the same collector, timing
/// every read.
fn instrumented(
    dir: &std::path::Path,
    options: StoreOptions,
) -> (Instrumented<ConcurrentStore>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::with_read_sample_every(1));
    let mut store = Store::create(dir.join("store"), options).unwrap();
    store.set_observer(metrics.clone());
    let handle = ConcurrentStore::from_store(store, WriterOptions::default()).unwrap();
    (Instrumented::new(handle, Arc::clone(&metrics)), metrics)
}
