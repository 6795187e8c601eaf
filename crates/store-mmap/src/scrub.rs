//! The scrub: checking again, at a paced rate, the records of sealed segments and the pages
//! of the index file, so that damage that reaches the disk after a record's or a page's
//! first read is found and the next read that reaches it fails instead of serving it (and
//! the writer rebuilds a damaged index file from the data, `rebuild.rs`).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use store_format::SEGMENT_HEADER_LEN;

use crate::index_file::MappedIndex;
use crate::pace::Pace;
use crate::segment_map::SegmentMap;
use crate::store::Store;
use crate::walk;
use crate::walk::Problem;

/// A pass over the sealed segments of a store, as they were when it was planned
/// ([`Store::plan_scrub`]); it runs on any thread, without the store.
pub struct Scrub {
    segments: Vec<(SegmentMap, u32, u64)>,
    /// The index file, checked after the segments.
    index: Option<Arc<MappedIndex>>,
    bytes_per_sec: Option<u64>,
    cancel: Option<Arc<AtomicBool>>,
}

/// What one pass of the scrub found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Segments checked whole.
    pub segments: u64,
    /// Bytes of records checked, and of the index file's pages.
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
    /// Plans a scrub of every sealed segment (every one but the segment receiving writes)
    /// and of the index file, at most `bytes_per_sec` when set.
    pub fn plan_scrub(&self, bytes_per_sec: Option<u64>) -> Scrub {
        Scrub {
            segments: self.sealed_for_scrub(None).collect(),
            index: self.index().base().cloned(),
            bytes_per_sec,
            cancel: None,
        }
    }

    /// Plans a scrub of the first sealed segment whose id is above `after` (of the first
    /// sealed segment and of the index file, when `None`); `None` when there is nothing to
    /// check. A pass planned a segment at a time ([`Scrub::segment`] names the one to plan
    /// after, and is `None` once the pass is done) holds only the segment it checks: a
    /// segment that a compaction replaces while the pass is under way is not kept on disk
    /// until the pass ends.
    pub fn plan_scrub_after(
        &self,
        after: Option<u32>,
        bytes_per_sec: Option<u64>,
    ) -> Option<Scrub> {
        let segment = self.sealed_for_scrub(after).next();
        let index = after
            .is_none()
            .then(|| self.index().base().cloned())
            .flatten();
        if segment.is_none() && index.is_none() {
            return None;
        }
        Some(Scrub {
            segments: segment.into_iter().collect(),
            index,
            bytes_per_sec,
            cancel: None,
        })
    }

    /// The sealed segments above `after`, oldest first, with what a scrub checks them
    /// against: the committed end and the last sequence number sealed before each.
    fn sealed_for_scrub(&self, after: Option<u32>) -> impl Iterator<Item = (SegmentMap, u32, u64)> {
        let active = self.active().id();
        // `None` past the highest id: nothing is above it.
        let first = after.map_or(Some(0), |id| id.checked_add(1));
        self.segments()
            .filter(move |segment| {
                segment.id() != active && first.is_some_and(|first| segment.id() >= first)
            })
            .map(|segment| {
                let floor = segment.sealed_before().map_or(0, |sealed| sealed.last_seq);
                (segment.view().clone(), segment.end(), floor)
            })
    }
}

impl Scrub {
    /// The id of the last segment the plan checks, if any: where the next plan of a pass
    /// taken a segment at a time starts ([`Store::plan_scrub_after`]). `None` for a plan
    /// of the index file alone, which ends its pass.
    pub fn segment(&self) -> Option<u32> {
        self.segments.last().map(|(map, _, _)| map.id())
    }

    /// Stops the pass between segments, or while it pauses, once `flag` is set.
    pub fn cancel_when(mut self, flag: Arc<AtomicBool>) -> Scrub {
        self.cancel = Some(flag);
        self
    }

    /// Checks every record of the planned segments through their mappings (CRC32C, UTF-8,
    /// sequence order, commit groups), then every page of the index file, as
    /// [`Store::verify`] does. Records that pass are remembered as checked; every record in
    /// a damaged range, and every page that fails, is forgotten, so that its next read
    /// checks it and fails.
    ///
    /// Each segment's mapping is let go once the segment is checked, before the pass pauses
    /// to keep its rate.
    pub fn run(self) -> ScrubReport {
        let started = Instant::now();
        let mut pace = Pace::new(self.bytes_per_sec, self.cancel);
        let mut report = ScrubReport::default();
        for (map, end, floor) in self.segments {
            let data = &map.bytes()[..end as usize];
            let records_from = SEGMENT_HEADER_LEN.min(data.len());
            let scan = walk::scan(data, records_from, floor, false);
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
            report.bytes += (data.len() - records_from) as u64;
            report.segments += 1;
            let checked = data.len() as u64;
            drop(map);
            if pace.spend(checked).is_err() {
                report.cancelled = true;
                break;
            }
        }
        if let Some(index) = self.index.filter(|_| !report.cancelled) {
            for (offset, what) in index.verify() {
                tracing::error!(
                    index_file = %index.path().display(),
                    offset,
                    what = %what,
                    "the scrub found a damaged page of the index file: the writer rebuilds it"
                );
                report
                    .problems
                    .push(Problem::at(index.path(), offset, what));
            }
            report.bytes += index.len_bytes();
            if pace.spend(index.len_bytes()).is_err() {
                report.cancelled = true;
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
