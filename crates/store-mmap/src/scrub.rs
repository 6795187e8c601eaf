//! The scrub: checking again, at a paced rate, the records of sealed segments, so that
//! damage that reaches the disk after a record's first read is found and the next read of
//! that record fails instead of serving it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use store_format::SEGMENT_HEADER_LEN;

use crate::pace::Pace;
use crate::segment::SegmentMap;
use crate::store::Store;
use crate::walk;
use crate::walk::Problem;

/// A pass over the sealed segments of a store, as they were when it was planned
/// ([`Store::plan_scrub`]); it runs on any thread, without the store.
pub struct Scrub {
    segments: Vec<(SegmentMap, u32, u64)>,
    bytes_per_sec: Option<u64>,
    cancel: Option<Arc<AtomicBool>>,
}

/// What one pass of the scrub found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Segments checked whole.
    pub segments: u64,
    /// Bytes of records checked.
    pub bytes: u64,
    /// Records that passed: from now on they are known good in this process.
    pub records_ok: u64,
    /// Damaged ranges found. Every record in them fails its next read.
    pub problems: Vec<Problem>,
    /// Whether the pass stopped early because it was cancelled.
    pub cancelled: bool,
    /// How long the pass took, pauses included.
    pub elapsed: Duration,
}

impl Store {
    /// Plans a scrub of every sealed segment (every one but the segment receiving writes),
    /// at most `bytes_per_sec` when set.
    pub fn plan_scrub(&self, bytes_per_sec: Option<u64>) -> Scrub {
        let active = self.active().id();
        Scrub {
            segments: self
                .segments()
                .filter(|segment| segment.id() != active)
                .map(|segment| {
                    let floor = segment.sealed_before().map_or(0, |sealed| sealed.last_seq);
                    (segment.view().clone(), segment.end(), floor)
                })
                .collect(),
            bytes_per_sec,
            cancel: None,
        }
    }
}

impl Scrub {
    /// Stops the pass between segments, or while it pauses, once `flag` is set.
    pub fn cancel_when(mut self, flag: Arc<AtomicBool>) -> Scrub {
        self.cancel = Some(flag);
        self
    }

    /// Checks every record of the planned segments through their mappings (CRC32C, UTF-8,
    /// sequence order, commit groups), as [`Store::verify`] does. Records that pass are
    /// remembered as checked; every record in a damaged range is forgotten, so that its
    /// next read checks it and fails.
    pub fn run(&self) -> ScrubReport {
        let started = Instant::now();
        let mut pace = Pace::new(self.bytes_per_sec, self.cancel.clone());
        let mut report = ScrubReport::default();
        for (map, end, floor) in &self.segments {
            let data = &map.bytes()[..*end as usize];
            let scan = walk::scan(data, SEGMENT_HEADER_LEN.min(data.len()), *floor);
            for problem in walk::problems(map.path(), &scan, true) {
                tracing::error!(
                    segment = %problem.path.display(),
                    offset = problem.offset,
                    end = problem.end,
                    what = %problem.what,
                    "the scrub found damage: reads of records in the range fail"
                );
                map.verified()
                    .remove_range(problem.offset as u32..problem.end as u32);
                report.problems.push(problem);
            }
            for scanned in &scan.records {
                map.verified().insert(scanned.offset as u32);
            }
            report.records_ok += scan.records.len() as u64;
            report.bytes += data.len() as u64;
            report.segments += 1;
            if pace.spend(data.len() as u64).is_err() {
                report.cancelled = true;
                break;
            }
        }
        report.elapsed = started.elapsed();
        tracing::debug!(
            segments = report.segments,
            bytes = report.bytes,
            records_ok = report.records_ok,
            damaged_ranges = report.problems.len(),
            cancelled = report.cancelled,
            "scrub pass done"
        );
        report
    }
}
