//! The free space of the file system the engines write to. A run refuses to start where it
//! could not finish, warns where it would nearly fill the file system, and says how much it
//! used at its peak.
//!
//! Appends into a nearly full file system measure the file system, not the engines: on the
//! reference machine (ext4), durable commits of 100 synthetic documents into new segment
//! files fell from about 1,600 to 600–700 a second once about 3 GiB was left, and stayed
//! at 1,470–1,690 with 53 GiB free (docs/PERFORMANCE.md, "The file system's free space").

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// Bytes a run of `cargo xtask bench` over the default corpora takes on the file system at
/// its peak: what such a run reported (4.6 GiB), rounded up. A larger `--corpus` or
/// `--docs` takes more.
pub const RUN_PEAK_BYTES: u64 = 5 << 30;

/// Space to leave free beside a run's peak, so that no engine appends into a nearly full
/// file system: three times what was left when the slowdown above set in.
pub const HEADROOM_BYTES: u64 = 10 << 30;

/// Bytes available to an unprivileged writer on the file system that holds `dir`.
pub fn available_bytes(dir: &Path) -> Result<u64> {
    let stat = rustix::fs::statvfs(dir).map_err(|err| Error::io(dir)(err.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Whether a run that takes up to `peak` bytes fits on the file system that holds `dir`
/// with `headroom` to spare: `Ok(None)` when it does, `Ok(Some(available))` when it fits
/// only without the headroom (its figures may then measure a nearly full file system), and
/// [`Error::LowSpace`] when it does not fit at all.
pub fn room(dir: &Path, peak: u64, headroom: u64) -> Result<Option<u64>> {
    fits(dir, available_bytes(dir)?, peak, headroom)
}

/// [`room`], with `available` bytes on the file system that holds `dir`.
fn fits(dir: &Path, available: u64, peak: u64, headroom: u64) -> Result<Option<u64>> {
    if available < peak {
        return Err(Error::LowSpace {
            path: dir.to_owned(),
            available,
            needed: peak,
        });
    }
    Ok((available < peak.saturating_add(headroom)).then_some(available))
}

/// A thread that notes the least space available on a file system while a run writes to it.
/// It sees the whole file system: what other processes write meanwhile counts too.
pub struct SpaceWatch {
    sampler: Arc<dyn Fn() -> Result<u64> + Send + Sync>,
    at_start: u64,
    lowest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How much of the file system a run used: the space available when it started, less the
/// least available while it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceUse {
    /// Bytes available at the start.
    pub at_start: u64,
    /// The least bytes available at any sample.
    pub lowest: u64,
}

impl SpaceUse {
    /// Bytes the run took at its peak (0 if the file system gained space meanwhile).
    pub fn peak_bytes(&self) -> u64 {
        self.at_start.saturating_sub(self.lowest)
    }
}

impl SpaceWatch {
    /// Samples the space available on `dir`'s file system now, then every `every`.
    pub fn start(dir: &Path, every: Duration) -> Result<SpaceWatch> {
        let dir = dir.to_owned();
        SpaceWatch::with_sampler(move || available_bytes(&dir), every)
    }

    /// Samples `sample` (bytes available) now, then every `every` on a thread of its own.
    fn with_sampler(
        sample: impl Fn() -> Result<u64> + Send + Sync + 'static,
        every: Duration,
    ) -> Result<SpaceWatch> {
        let sampler: Arc<dyn Fn() -> Result<u64> + Send + Sync> = Arc::new(sample);
        let at_start = sampler()?;
        let lowest = Arc::new(AtomicU64::new(at_start));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sampler, lowest, stop) =
                (Arc::clone(&sampler), Arc::clone(&lowest), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("space-watch".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(now) = sampler() {
                            lowest.fetch_min(now, Ordering::Relaxed);
                        }
                        std::thread::park_timeout(every);
                    }
                })
                .map_err(Error::io("space-watch thread"))?
        };
        Ok(SpaceWatch {
            sampler,
            at_start,
            lowest,
            stop,
            thread: Some(thread),
        })
    }

    /// Takes a sample now, beside the thread's.
    pub fn sample(&self) -> Result<()> {
        self.lowest.fetch_min((self.sampler)()?, Ordering::Relaxed);
        Ok(())
    }

    /// Takes one more sample, stops the thread and returns what the run used.
    pub fn finish(mut self) -> Result<SpaceUse> {
        self.stop_thread();
        self.sample()?;
        Ok(SpaceUse {
            at_start: self.at_start,
            lowest: self.lowest.load(Ordering::Relaxed),
        })
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for SpaceWatch {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_refused_where_it_cannot_fit_and_warned_where_it_fits_tightly() {
        let dir = tempfile::tempdir().unwrap();
        let available = available_bytes(dir.path()).unwrap();
        assert_eq!(
            room(dir.path(), available / 4, available / 4).unwrap(),
            None
        );
        let tight = room(dir.path(), available / 2, available).unwrap();
        assert!(tight.is_some_and(|a| a >= available / 2), "{tight:?}");
        let err = room(dir.path(), u64::MAX, 0).unwrap_err();
        assert!(
            matches!(&err, Error::LowSpace { path, needed: u64::MAX, .. } if path == dir.path()),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    /// A run fits from exactly its peak, and needs no warning from exactly its peak and
    /// the headroom.
    #[test]
    fn a_run_fits_from_its_peak_and_is_not_warned_from_its_peak_and_headroom() {
        let dir = Path::new("/store");
        assert!(matches!(
            fits(dir, 99, 100, 50),
            Err(Error::LowSpace {
                available: 99,
                needed: 100,
                ..
            })
        ));
        assert_eq!(fits(dir, 100, 100, 50).unwrap(), Some(100));
        assert_eq!(fits(dir, 149, 100, 50).unwrap(), Some(149));
        assert_eq!(fits(dir, 150, 100, 50).unwrap(), None);
        // The peak and headroom saturate rather than overflow.
        assert_eq!(fits(dir, u64::MAX, u64::MAX - 1, 50).unwrap(), None);
    }

    #[test]
    fn the_watch_keeps_the_least_space_any_sample_saw() {
        let available = Arc::new(AtomicU64::new(100));
        let sampler = {
            let available = Arc::clone(&available);
            move || Ok(available.load(Ordering::Relaxed))
        };
        // The thread samples once, at its start; the test takes the samples after that.
        let watch = SpaceWatch::with_sampler(sampler, Duration::from_secs(3600)).unwrap();
        available.store(40, Ordering::Relaxed);
        watch.sample().unwrap();
        available.store(90, Ordering::Relaxed);
        let used = watch.finish().unwrap();
        assert_eq!(
            used,
            SpaceUse {
                at_start: 100,
                lowest: 40
            }
        );
        assert_eq!(used.peak_bytes(), 60);
        assert_eq!(Arc::strong_count(&available), 1, "the thread goes on");

        // A watch dropped unfinished, as when a run fails, stops its thread too.
        let sampler = {
            let available = Arc::clone(&available);
            move || Ok(available.load(Ordering::Relaxed))
        };
        drop(SpaceWatch::with_sampler(sampler, Duration::from_secs(3600)).unwrap());
        assert_eq!(Arc::strong_count(&available), 1, "the thread goes on");
    }
}
