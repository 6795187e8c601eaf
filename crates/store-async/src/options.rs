//! How an [`crate::AsyncStore`] runs its calls.

use std::time::Duration;

/// Where a read runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Reads {
    /// Inline on the calling task when every page of the record was in memory when last
    /// looked at, on the blocking pool otherwise. Residency is remembered per page and
    /// refreshed (a `mincore` call per segment, on the blocking pool) every 4096 reads, and
    /// a read on the blocking pool marks its pages resident; so the check costs a memory
    /// access per page, not a system call. A page evicted since the last look makes one read
    /// wait for the disk on the calling task. The default.
    #[default]
    CheckResidency,
    /// Always inline. For stores that stay in memory (prefaulted, and not under memory
    /// pressure): a cold page then stalls a runtime worker for a disk read.
    Inline,
    /// Always on the blocking pool: each read pays for a hand-off between threads.
    Blocking,
}

/// Settings of an [`crate::AsyncStore`].
#[derive(Debug, Clone)]
pub struct AsyncOptions {
    pub(crate) max_in_flight: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) read_ahead: u32,
    pub(crate) reads: Reads,
}

impl Default for AsyncOptions {
    fn default() -> AsyncOptions {
        AsyncOptions {
            max_in_flight: 1024,
            timeout: None,
            read_ahead: 32,
            reads: Reads::CheckResidency,
        }
    }
}

impl AsyncOptions {
    /// Default settings: 1024 calls in flight, no timeout, read-ahead of 32 documents,
    /// reads placed by residency.
    pub fn new() -> AsyncOptions {
        AsyncOptions::default()
    }

    /// How many calls may be in flight at once (at least 1); later calls wait for a permit.
    /// A write holds its permit until it is acknowledged. A read served inline takes none:
    /// it ends before the call could yield.
    pub fn max_in_flight(mut self, calls: usize) -> AsyncOptions {
        self.max_in_flight = calls.max(1);
        self
    }

    /// A time limit for every call, from its start to its result (waiting for a permit
    /// included). [`crate::Error::Timeout`] says whether a timed-out write may still commit.
    /// [`crate::AsyncStore::with_timeout`] sets another one for some calls.
    pub fn timeout(mut self, timeout: Duration) -> AsyncOptions {
        self.timeout = Some(timeout);
        self
    }

    /// How many documents to read ahead once gets walk consecutive ids (0: never).
    pub fn read_ahead(mut self, docs: u32) -> AsyncOptions {
        self.read_ahead = docs;
        self
    }

    /// Where reads run.
    pub fn reads(mut self, reads: Reads) -> AsyncOptions {
        self.reads = reads;
        self
    }
}
