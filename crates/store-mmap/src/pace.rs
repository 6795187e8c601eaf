//! Pacing background work (compaction, the scrub) to a rate, with a way to stop it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::progress::Progress;

/// The work was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cancelled;

/// A rate limit: after `spent` bytes, the work must have taken at least
/// `spent / bytes_per_sec` seconds. Also where a run notices that it was cancelled.
pub(crate) struct Pace {
    bytes_per_sec: Option<u64>,
    started: Instant,
    spent: u64,
    cancel: Option<Arc<AtomicBool>>,
    /// Told of the work done, when someone asked.
    progress: Option<Arc<dyn Progress>>,
}

impl Pace {
    pub(crate) fn new(bytes_per_sec: Option<u64>, cancel: Option<Arc<AtomicBool>>) -> Pace {
        Pace {
            bytes_per_sec,
            started: Instant::now(),
            spent: 0,
            cancel,
            progress: None,
        }
    }

    /// Tells `progress` of the work done (see [`Pace::done`]).
    pub(crate) fn reporting(mut self, progress: Option<Arc<dyn Progress>>) -> Pace {
        self.progress = progress;
        self
    }

    /// Reports `units` of work done, against the total the work stated.
    pub(crate) fn done(&self, units: u64) {
        if let Some(progress) = &self.progress {
            progress.advance(units);
        }
    }

    /// Counts `bytes` and sleeps for as long as the work is ahead of the limit, in slices
    /// short enough that a cancellation is seen soon.
    pub(crate) fn spend(&mut self, bytes: u64) -> Result<(), Cancelled> {
        const SLICE: Duration = Duration::from_millis(20);
        self.spent += bytes;
        loop {
            if self
                .cancel
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed))
            {
                return Err(Cancelled);
            }
            match pause(self.bytes_per_sec, self.spent, self.started.elapsed()) {
                Some(wait) => std::thread::sleep(wait.min(SLICE)),
                None => return Ok(()),
            }
        }
    }
}

/// How long work that has moved `spent` bytes in `elapsed` must pause to stay within
/// `bytes_per_sec`.
pub(crate) fn pause(bytes_per_sec: Option<u64>, spent: u64, elapsed: Duration) -> Option<Duration> {
    let rate = bytes_per_sec?;
    let due = Duration::from_secs_f64(spent as f64 / rate.max(1) as f64);
    due.checked_sub(elapsed).filter(|wait| !wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_holds_work_to_its_rate() {
        let mib = 1 << 20;
        assert_eq!(pause(None, 100 * mib, Duration::ZERO), None);
        assert_eq!(
            pause(Some(mib), 2 * mib, Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(pause(Some(mib), mib, Duration::from_secs(2)), None);
        assert_eq!(
            pause(Some(0), 1, Duration::ZERO),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn the_pace_counts_every_byte_spent() {
        let mut pace = Pace::new(None, None);
        for bytes in [3, 4, 0, 1 << 20] {
            pace.spend(bytes).unwrap();
        }
        assert_eq!(pace.spent, 7 + (1 << 20));
        // Held to a rate it is far ahead of, the work stops when it is cancelled.
        let cancel = Arc::new(AtomicBool::new(true));
        let mut paced = Pace::new(Some(1), Some(Arc::clone(&cancel)));
        assert_eq!(paced.spend(1 << 20), Err(Cancelled));
        assert_eq!(paced.spent, 1 << 20);
    }
}
