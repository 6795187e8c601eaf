//! Checking every record of a store.

use std::path::PathBuf;

use store_format::{RECORD_ALIGN, SEGMENT_HEADER_LEN, decode_record, is_unwritten};

use crate::store::Store;

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files read.
    pub segments: u64,
    /// Records that decoded and matched their checksum.
    pub records_ok: u64,
    /// Live documents whose index entry was followed and read back.
    pub documents_checked: u64,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One bad record or unreadable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub path: PathBuf,
    /// Byte offset within it.
    pub offset: u64,
    /// What failed.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

impl Store {
    /// Reads every record of every segment and checks it, then reads back every live
    /// document through the index. Reports each problem; a damaged record does not stop the
    /// scan, which resumes at the next offset where an intact record starts.
    pub fn verify(&self) -> VerifyReport {
        let mut report = VerifyReport::default();
        for segment in self.segments() {
            report.segments += 1;
            let data = segment.data();
            let mut pos = SEGMENT_HEADER_LEN;
            let mut in_damage = false;
            while pos < data.len() {
                match decode_record(data, pos) {
                    Ok(record) => {
                        report.records_ok += 1;
                        in_damage = false;
                        pos += record.header.record_len() as usize;
                    }
                    Err(err) => {
                        // One problem per damaged stretch, not one per 8-byte step in it.
                        if !in_damage && !is_unwritten(data, pos) {
                            report.problems.push(Problem {
                                path: segment.path().to_path_buf(),
                                offset: pos as u64,
                                what: err.to_string(),
                            });
                        }
                        in_damage = true;
                        pos += RECORD_ALIGN;
                    }
                }
            }
        }
        for (id, entry) in self.index().entries() {
            report.documents_checked += 1;
            if let Err(err) = self.read_entry(id, entry) {
                let (path, offset, what) = match err {
                    crate::Error::Corrupt { path, offset, what } => (path, offset, what),
                    other => (self.dir().to_path_buf(), 0, other.to_string()),
                };
                let problem = Problem {
                    path,
                    offset,
                    what: format!("document {id}: {what}"),
                };
                // The scan above already reported a bad record at that place.
                let known = report
                    .problems
                    .iter()
                    .any(|p| p.path == problem.path && p.offset == problem.offset);
                if !known {
                    report.problems.push(problem);
                }
            }
        }
        report
    }
}
