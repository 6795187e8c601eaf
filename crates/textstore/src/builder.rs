//! `Builder`: every setting of a store and of the layers in front of it, and the open.

use std::path::PathBuf;

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{Store, StoreOptions};

use crate::error::Result;
use crate::handle::{Stack, Textstore};

/// How the builder opens the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Open the store, creating it when the directory is absent or empty.
    OpenOrCreate,
    /// Open a store that exists.
    Open,
    /// Create a store; the directory must be absent or empty.
    Create,
    /// Open a store for reading only, beside its writer in any process or with none.
    ReadOnly,
}

/// Settings for [`Textstore::builder`]: the store's, the writer thread's and those of the
/// layers the features turn on.
#[must_use = "a builder does nothing until `open` is called"]
pub struct Builder {
    dir: PathBuf,
    mode: Mode,
    store: StoreOptions,
    writer: WriterOptions,
    #[cfg(feature = "cache")]
    cache: store_cache::CacheOptions,
    #[cfg(feature = "metrics")]
    metrics: Option<std::sync::Arc<store_metrics::Metrics>>,
}

impl Builder {
    pub(crate) fn new(dir: PathBuf) -> Builder {
        Builder {
            dir,
            mode: Mode::OpenOrCreate,
            store: StoreOptions::new(),
            writer: WriterOptions::default(),
            #[cfg(feature = "cache")]
            cache: store_cache::CacheOptions::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    /// The store's settings: durability, segment size, document size limit, compaction
    /// and checkpoint intervals (see [`StoreOptions`]).
    pub fn store_options(mut self, options: StoreOptions) -> Builder {
        self.store = options;
        self
    }

    /// The writer thread's settings: queue capacity, group sizes, automatic compaction and
    /// scrub (see [`WriterOptions`]).
    pub fn writer_options(mut self, options: WriterOptions) -> Builder {
        self.writer = options;
        self
    }

    /// Fails the open unless the store exists.
    pub fn must_exist(mut self) -> Builder {
        self.mode = Mode::Open;
        self
    }

    /// Creates the store, failing if the directory holds anything.
    pub fn create_new(mut self) -> Builder {
        self.mode = Mode::Create;
        self
    }

    /// Opens the store for reading only: it changes no file, works beside a writer in
    /// another process (see [`Textstore::refresh`]) and on a read-only file system.
    pub fn read_only(mut self) -> Builder {
        self.mode = Mode::ReadOnly;
        self
    }

    /// What the cache in front of the handle keeps.
    #[cfg(feature = "cache")]
    pub fn cache(mut self, options: store_cache::CacheOptions) -> Builder {
        self.cache = options;
        self
    }

    /// The collector to record into, shared with other stores or the program; a new one
    /// by default.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, metrics: std::sync::Arc<store_metrics::Metrics>) -> Builder {
        self.metrics = Some(metrics);
        self
    }

    /// Opens the store: maps its index, replays what was written after the last
    /// checkpoint, and starts the writer thread. Blocks on the disk: in a tokio program use
    /// [`Builder::open_async`].
    pub fn open(self) -> Result<Textstore> {
        #[cfg(feature = "metrics")]
        let metrics = self
            .metrics
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(store_metrics::Metrics::new()));
        let handle = match self.mode {
            Mode::ReadOnly => ConcurrentStore::open_read_only(&self.dir, self.store, self.writer)?,
            mode => {
                let store = match mode {
                    Mode::Open => Store::open(&self.dir, self.store)?,
                    Mode::Create => Store::create(&self.dir, self.store)?,
                    Mode::OpenOrCreate | Mode::ReadOnly => {
                        Store::open_or_create(&self.dir, self.store)?
                    }
                };
                // The engine reports each commit group and sync to the same collector.
                #[cfg(feature = "metrics")]
                let store = {
                    let mut store = store;
                    store.set_observer(metrics.clone());
                    store
                };
                ConcurrentStore::from_store(store, self.writer)?
            }
        };
        let stack = handle.clone();
        #[cfg(feature = "cache")]
        let stack = store_cache::Cached::new(stack, &self.cache);
        #[cfg(feature = "metrics")]
        let stack = store_metrics::Instrumented::new(stack, metrics);
        let stack: Stack = stack;
        Ok(Textstore::new(stack, handle))
    }

    /// [`Builder::open`] on tokio's blocking pool, and the store wrapped for tokio programs:
    /// reads inline when resident and on the blocking pool when not, writes awaited, never
    /// blocked on.
    #[cfg(feature = "async")]
    pub async fn open_async(
        self,
        options: store_async::AsyncOptions,
    ) -> Result<store_async::AsyncStore<Textstore>> {
        let store = match tokio::task::spawn_blocking(move || self.open()).await {
            Ok(opened) => opened?,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {
                return Err(store_async::Error::<crate::Error>::Cancelled { op: "open" }.into());
            }
        };
        Ok(store_async::AsyncStore::new(store, options))
    }
}
