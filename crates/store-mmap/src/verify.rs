//! Checking every record of a store: through an open handle ([`Store::verify`]) or from the
//! files alone ([`verify_dir`]), for a store that will not open.

use std::path::Path;

use store_format::{RecordKind, SEGMENT_HEADER_LEN, decode_index};

use crate::error::Result;
use crate::layout::INDEX_FILE;
use crate::offline::{StoreFiles, salvage};
use crate::progress::{Progress, file_bytes};
use crate::store::Store;
use crate::walk::{self, Problem};

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files read.
    pub segments: u64,
    /// Records that decoded, matched their checksum and, for puts, held UTF-8.
    pub records_ok: u64,
    /// Live documents whose latest version was read and checked.
    pub documents_checked: u64,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when something is wrong and every problem is in the index file, a cache of the
    /// data that a writer rebuilds from the segments ([`Store::repair_index`]).
    pub fn index_file_alone_damaged(&self) -> bool {
        !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|problem| problem.path.file_name() == Some(INDEX_FILE.as_ref()))
    }
}

impl Store {
    /// Reads every record of every segment up to its committed end and checks it, then reads
    /// back every live document through the index. Reports each damaged range once; a
    /// damaged record does not stop the scan, which resumes at the next intact record.
    ///
    /// Records that pass are remembered as checked; every record in a damaged range is
    /// forgotten, so that its next read checks it and fails (see
    /// [`crate::ReadVerification::FirstRead`]).
    pub fn verify(&self) -> VerifyReport {
        self.verify_with(&())
    }

    /// [`Store::verify`], telling `progress` the bytes of segments it walked.
    pub fn verify_with(&self, progress: &dyn Progress) -> VerifyReport {
        let mut report = VerifyReport::default();
        progress.start(self.segments().map(|s| s.data().len() as u64).sum());
        for segment in self.segments() {
            progress.advance(segment.data().len() as u64);
            report.segments += 1;
            let floor = segment.sealed_before().map_or(0, |sealed| sealed.last_seq);
            let scan = walk::scan(segment.data(), SEGMENT_HEADER_LEN, floor, false);
            report.records_ok += scan.records.len() as u64;
            let verified = segment.view().verified();
            for problem in walk::problems(segment.path(), &scan, true) {
                // The next read of a record in the range checks it, and fails.
                verified.remove_range(problem.offset as u32..problem.end as u32);
                report.problems.push(problem);
            }
            for scanned in &scan.records {
                verified.insert(scanned.offset as u32);
            }
        }
        if let Some(base) = self.index().base() {
            for (offset, what) in base.verify() {
                report.problems.push(Problem::at(base.path(), offset, what));
            }
        }
        for found in self.index().entries() {
            let (id, entry) = match found {
                Ok(found) => found,
                // The page is reported above; the walk of the index ends at it.
                Err(_) => break,
            };
            report.documents_checked += 1;
            if let Err(err) = self.read_entry(id, &entry) {
                let (path, offset, what) = match err {
                    crate::Error::Corrupt { path, offset, what } => (path, offset, what),
                    other => (self.dir().to_path_buf(), 0, other.to_string()),
                };
                // The scan above already reported a damaged range holding that place.
                let known = report.problems.iter().any(|p| p.covers(&path, offset));
                if !known {
                    report.problems.push(Problem::at(
                        &path,
                        offset,
                        format!("document {id}: {what}"),
                    ));
                }
            }
        }
        report
    }
}

/// Verifies the store in `dir` from its files alone, without opening it: it works on a store
/// that refuses to open, never changes a file, and needs only read access.
///
/// Every segment is read whole and walked record by record (checksum and UTF-8); every
/// damaged range is reported, zeros before committed data included, as is an incomplete
/// final commit group (which an open would cut). The index file, when present, is checked
/// against the data: each entry must point to an intact put of its document at its
/// sequence number.
///
/// Fails with [`crate::Error::Locked`] while a writer has the store open.
pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_dir_with(dir, &())
}

/// [`verify_dir`], telling `progress` the bytes of segment files it read.
pub fn verify_dir_with(dir: impl AsRef<Path>, progress: &dyn Progress) -> Result<VerifyReport> {
    let files = StoreFiles::open(dir.as_ref())?;
    progress.start(file_bytes(
        files.segments.iter().map(|(_, path)| path.as_path()),
    ));
    let found = salvage(&files, progress)?;
    let mut report = VerifyReport {
        segments: found.segments,
        records_ok: found.records_ok,
        documents_checked: found
            .latest
            .values()
            .filter(|latest| latest.kind == RecordKind::Put)
            .count() as u64,
        problems: files.problems.clone(),
    };
    report.problems.extend(found.problems.iter().cloned());
    report.problems.extend(found.torn_tail.iter().cloned());
    let index_path = files.dir.join(INDEX_FILE);
    match std::fs::read(&index_path) {
        Ok(raw) => match decode_index(&raw) {
            Ok((_, entries)) => {
                let live: std::collections::HashMap<u32, &Path> = files
                    .segments
                    .iter()
                    .map(|(id, path)| (*id, path.as_path()))
                    .collect();
                for entry in entries {
                    let place = (entry.position.segment, entry.position.offset);
                    // An entry into a segment that compaction has since removed makes the
                    // index stale, not damaged: an open discards it and replays the data.
                    let Some(&segment) = live.get(&place.0) else {
                        continue;
                    };
                    if found.puts.get(&place) != Some(&(entry.id, entry.seq))
                        && !report
                            .problems
                            .iter()
                            .any(|p| p.covers(segment, u64::from(place.1)))
                    {
                        report.problems.push(Problem::at(
                            &index_path,
                            0,
                            format!(
                                "its entry for document {} (seq {}) points to segment {} offset {}, where no intact record of it lies",
                                entry.id, entry.seq, place.0, place.1
                            ),
                        ));
                    }
                }
            }
            Err(err) => {
                report
                    .problems
                    .push(Problem::whole_file(&index_path, raw.len(), err.to_string()))
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(crate::Error::io("read", &index_path)(err)),
    }
    Ok(report)
}
