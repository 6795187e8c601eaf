//! How the writer thread queues and groups writes.

use std::time::Duration;

use store_mmap::CompactionPolicy;

use crate::error::{Error, Result};

/// Settings of the write queue and of group commit.
///
/// A group commit takes every request that is waiting when the writer thread becomes free,
/// up to `max_batch_docs` operations and `max_batch_bytes` of encoded records, and writes
/// them with one `pwrite` and one `fdatasync`. While one commit syncs, the next group
/// gathers, so the group size follows the load without any waiting. `max_delay` makes the
/// writer wait up to that long for more requests before it commits a group that is not yet
/// full; it trades latency for fewer syncs when writers are few and slow.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Requests that may wait in the queue; a submitter blocks (or a `try_` call fails with
    /// [`Error::QueueFull`]) while it is full. Default 1024.
    pub queue_capacity: usize,
    /// Most operations in one group commit. Default 4096.
    pub max_batch_docs: usize,
    /// Most encoded bytes in one group commit; a single larger request commits alone.
    /// Default 16 MiB.
    pub max_batch_bytes: u64,
    /// Longest the writer waits for more requests before committing. Default zero.
    pub max_delay: Duration,
    /// When a thread of the handle compacts the store on its own, and how fast. Default
    /// [`CompactionPolicy::default`]; [`CompactionPolicy::manual`] starts no thread.
    pub compaction: CompactionPolicy,
    /// When a thread of the handle checks the sealed segments again. Default
    /// [`ScrubPolicy::default`]; [`ScrubPolicy::off`] starts no thread.
    pub scrub: ScrubPolicy,
}

/// When the scrub runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubPolicy {
    /// Bytes checked per second at most; `None` turns the scrub off.
    pub bytes_per_sec: Option<u64>,
    /// The pause between the end of one pass and the start of the next.
    pub pause_between_passes: Duration,
}

impl Default for ScrubPolicy {
    /// 16 MiB/s, a pass an hour after the last one ended: a 16 GiB store is checked in
    /// about 17 minutes of each 77, at a small share of one core.
    fn default() -> ScrubPolicy {
        ScrubPolicy {
            bytes_per_sec: Some(16 << 20),
            pause_between_passes: Duration::from_secs(3600),
        }
    }
}

impl ScrubPolicy {
    /// No scrub.
    pub fn off() -> ScrubPolicy {
        ScrubPolicy {
            bytes_per_sec: None,
            pause_between_passes: Duration::ZERO,
        }
    }
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            queue_capacity: 1024,
            max_batch_docs: 4096,
            max_batch_bytes: 16 << 20,
            max_delay: Duration::ZERO,
            compaction: CompactionPolicy::default(),
            scrub: ScrubPolicy::default(),
        }
    }
}

impl WriterOptions {
    /// Sets [`WriterOptions::queue_capacity`].
    pub fn queue_capacity(mut self, requests: usize) -> WriterOptions {
        self.queue_capacity = requests;
        self
    }

    /// Sets [`WriterOptions::max_batch_docs`].
    pub fn max_batch_docs(mut self, docs: usize) -> WriterOptions {
        self.max_batch_docs = docs;
        self
    }

    /// Sets [`WriterOptions::max_batch_bytes`].
    pub fn max_batch_bytes(mut self, bytes: u64) -> WriterOptions {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets [`WriterOptions::max_delay`].
    pub fn max_delay(mut self, delay: Duration) -> WriterOptions {
        self.max_delay = delay;
        self
    }

    /// Sets [`WriterOptions::scrub`].
    pub fn scrub(mut self, policy: ScrubPolicy) -> WriterOptions {
        self.scrub = policy;
        self
    }

    /// Sets [`WriterOptions::compaction`].
    pub fn compaction(mut self, policy: CompactionPolicy) -> WriterOptions {
        self.compaction = policy;
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        let ratio = |r: f64| r > 0.0 && r <= 1.0;
        let policy = &self.compaction;
        let reason = if self.queue_capacity == 0 {
            "queue_capacity must be at least 1"
        } else if self.max_batch_docs == 0 {
            "max_batch_docs must be at least 1"
        } else if self.max_batch_bytes == 0 {
            "max_batch_bytes must be at least 1"
        } else if !policy.dead_ratio.is_none_or(ratio) {
            "compaction.dead_ratio must be in (0, 1]"
        } else if !(0.0..=1.0).contains(&policy.segment_dead_ratio) {
            "compaction.segment_dead_ratio must be in [0, 1]"
        } else if policy.max_bytes_per_sec == Some(0) {
            "compaction.max_bytes_per_sec must be at least 1"
        } else {
            return Ok(());
        };
        Err(Error::InvalidOptions {
            reason: reason.to_owned(),
        })
    }
}

#[cfg(all(test, not(textstore_loom)))]
mod tests {
    use super::*;

    /// What a setter is expected to change.
    type Change = fn(&mut WriterOptions);

    /// Each setter sets its own field and keeps every other one.
    #[test]
    fn each_setter_changes_its_field_alone() {
        let base = WriterOptions::default();
        let policy = CompactionPolicy::manual();
        let scrub = ScrubPolicy::off();
        let cases: [(WriterOptions, Change); 6] = [
            (base.clone().queue_capacity(7), |o| o.queue_capacity = 7),
            (base.clone().max_batch_docs(8), |o| o.max_batch_docs = 8),
            (base.clone().max_batch_bytes(9), |o| o.max_batch_bytes = 9),
            (base.clone().max_delay(Duration::from_millis(10)), |o| {
                o.max_delay = Duration::from_millis(10)
            }),
            (base.clone().compaction(policy), |o| {
                o.compaction = CompactionPolicy::manual()
            }),
            (base.clone().scrub(scrub), |o| o.scrub = ScrubPolicy::off()),
        ];
        for (set, change) in cases {
            let mut expected = WriterOptions::default();
            change(&mut expected);
            assert_ne!(expected, base);
            assert_eq!(set, expected);
        }
    }

    /// Scrubbing off means no rate at all, which starts no thread.
    #[test]
    fn a_scrub_turned_off_has_no_rate() {
        assert_eq!(ScrubPolicy::off().bytes_per_sec, None);
        assert!(ScrubPolicy::default().bytes_per_sec.is_some());
    }
}
