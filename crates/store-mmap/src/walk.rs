//! The record walk: the one place that reads a segment's bytes as records, commit groups,
//! unwritten space and damage. Recovery, [`crate::Store::verify`], [`crate::verify_dir`] and
//! [`crate::recover()`] all read segments through [`scan`].
//!
//! Vocabulary, used the same way in docs/FORMAT.md ("What recovery assumes"):
//! - an **intact record** decodes, matches its CRC32C and, for a put, holds UTF-8;
//! - a **complete group** is a run of intact records with no gap, closed by a commit record
//!   whose group length spans exactly that run;
//! - **unwritten space** is a run of zero bytes that reaches the end of the bytes scanned;
//! - **damage** is any other byte range that is not an intact record: zeros followed by
//!   data included. The walk resynchronises on the next offset where an intact record
//!   starts.

use std::ops::Range;
use std::path::{Path, PathBuf};

use store_format::{
    RECORD_ALIGN, Record, RecordHeader, RecordKind, SealedSegment, decode_record,
    decode_record_header,
};

/// An intact record met by the walk.
#[derive(Clone, Copy)]
pub(crate) struct Scanned<'a> {
    /// Where it starts in the scanned bytes.
    pub(crate) offset: usize,
    /// The record, verified.
    pub(crate) record: Record<'a>,
    /// Whether it belongs to a complete commit group.
    pub(crate) complete: bool,
}

impl Scanned<'_> {
    pub(crate) fn header(&self) -> &RecordHeader {
        &self.record.header
    }

    pub(crate) fn end(&self) -> usize {
        self.offset + self.record.header.record_len() as usize
    }
}

/// A byte range that holds no intact record.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// The range, from the first bad byte to the next intact record or unwritten space.
    pub(crate) range: Range<usize>,
    /// What is wrong at its start.
    pub(crate) reason: String,
    /// Record headers inside the range that still decode although their records do not
    /// (the checksum or the text failed): what was probably there, with their offsets.
    pub(crate) headers: Vec<(usize, RecordHeader)>,
}

/// Everything the walk of one segment found.
pub(crate) struct SegmentScan<'a> {
    /// Every intact record, in offset order.
    pub(crate) records: Vec<Scanned<'a>>,
    /// Every damaged range, in offset order.
    pub(crate) damage: Vec<Damage>,
    /// Where unwritten space begins, when it begins before the end of the bytes.
    pub(crate) unwritten_from: Option<usize>,
    /// The end of the longest prefix (from the scan's start) made only of complete groups.
    pub(crate) clean_end: usize,
    /// The first complete group that starts at or after `clean_end`, when anything other than
    /// unwritten space follows `clean_end`: its byte range.
    pub(crate) committed_after: Option<Range<usize>>,
    /// The end of the bytes scanned.
    pub(crate) len: usize,
}

impl SegmentScan<'_> {
    /// Intact records past `clean_end` (in groups that are not complete or that follow the
    /// first anomaly).
    pub(crate) fn records_after_clean_end(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.offset >= self.clean_end)
            .count()
    }

    /// True when the bytes from the scan's start are complete groups, then possibly unwritten
    /// space: nothing is damaged or incomplete.
    pub(crate) fn is_clean(&self) -> bool {
        self.clean_end == self.unwritten_from.unwrap_or(self.len)
    }

    /// The range from `clean_end` to the next complete group (or to the unwritten space, or
    /// the end): everything that stands between the clean prefix and later committed data.
    pub(crate) fn broken_range(&self) -> Range<usize> {
        let end = match &self.committed_after {
            Some(group) => group.start,
            None => self.unwritten_from.unwrap_or(self.len),
        };
        self.clean_end..end
    }

    /// What is wrong at `clean_end`, in words.
    pub(crate) fn broken_reason(&self) -> String {
        let range = self.broken_range();
        let first_damage = self.damage.iter().find(|d| {
            d.range.start >= range.start && d.range.start < range.end.max(range.start + 1)
        });
        match first_damage {
            Some(damage) if damage.range.start == range.start => damage.reason.clone(),
            Some(damage) => format!(
                "the commit group starting at offset {} is incomplete; at offset {}: {}",
                range.start, damage.range.start, damage.reason
            ),
            None => format!(
                "the commit group starting at offset {} has no intact commit record",
                range.start
            ),
        }
    }
}

/// Walks `buf` from `from` (a record boundary) to its end.
///
/// `floor` is a sequence number every record from `from` on is known to exceed: the one the
/// segment's header records of its sealed predecessor, or the checkpoint's. Records of a
/// segment are in increasing sequence order, so a record at or below the floor, or below
/// the record before it with no damage between, is out of place (bytes copied from
/// elsewhere) and counts as damage. Genuine records always pass both checks. (A record equal
/// to the one before it passes: compactions before format version 2 could copy one
/// tombstone twice into an output, a harmless duplicate.)
///
/// `earlier_life`: the file held an earlier segment before this one was written over it
/// (its header's `reuses_file`), so that past this segment's data lie that segment's bytes,
/// whose records are all at or below the floor. Bytes from where the walk meets something
/// other than an intact record up to the unwritten space, when no intact record above the
/// floor lies among them, are then unwritten space: they hold nothing of this segment.
/// Committed data after damage still holds records above the floor, which the search
/// finds as it does in any segment.
pub(crate) fn scan(buf: &[u8], from: usize, floor: u64, earlier_life: bool) -> SegmentScan<'_> {
    let zero_from = zero_tail_start(buf).max(from);
    let mut records: Vec<Scanned<'_>> = Vec::new();
    let mut damage = Vec::new();
    let mut groups = Groups::new(from);
    let mut pos = from;
    // The lowest sequence number the next record may hold.
    let mut lowest = floor + 1;
    while pos < zero_from {
        match intact_record(buf, pos, lowest) {
            Ok(record) => {
                lowest = record.header.seq;
                records.push(Scanned {
                    offset: pos,
                    record,
                    complete: false,
                });
                groups.record(&mut records);
                pos += record.header.record_len() as usize;
            }
            Err(reason) => {
                let found = damaged_range(buf, pos, zero_from, floor + 1, earlier_life, reason);
                if earlier_life && found.range.end == zero_from {
                    // Nothing of this segment from `pos` on: the earlier segment's bytes.
                    break;
                }
                lowest = floor + 1;
                pos = found.range.end;
                groups.damage(found.range.end, records.len());
                damage.push(found);
            }
        }
    }
    // A record's zero padding may reach into the zero tail, so the data ends at `pos`.
    let end = pos;
    groups.finish(end, records.len());
    let clean_end = groups.clean_end.unwrap_or(end);
    let committed_after = first_complete_group_from(&records, clean_end);
    SegmentScan {
        records,
        damage,
        unwritten_from: (end < buf.len()).then_some(end),
        clean_end,
        committed_after,
        len: buf.len(),
    }
}

/// [`scan`] of the newest segment of a file an earlier segment held, whose durable write
/// limit is `limit` (`limit.rs`): no record of the segment reaches `limit`, so the walk
/// stops there and reads the rest of the file as the earlier segment's, unwritten space.
///
/// A limit the data runs past was not the writer's last (the limit file was copied before
/// the segment, from a live store): an intact record above the floor where the bounded walk
/// finds the data's end says so, since the segment's records lie back to back from its
/// header. The walk then reads the whole file, as without a limit.
pub(crate) fn scan_below(buf: &[u8], from: usize, floor: u64, limit: usize) -> SegmentScan<'_> {
    if limit <= from || limit >= buf.len() {
        return scan(buf, from, floor, true);
    }
    let mut bounded = scan(&buf[..limit], from, floor, true);
    let data_end = bounded.unwritten_from.unwrap_or(limit);
    if intact_record(buf, data_end, floor + 1).is_ok() {
        return scan(buf, from, floor, true);
    }
    bounded.unwritten_from = Some(data_end);
    bounded.len = buf.len();
    bounded
}

/// The header of the record at `pos` of `buf`, bytes below a committed end, and where the
/// record after it starts; `None` at the end. Committed bytes hold complete records back to
/// back, so a header that does not decode is damage. The step that bulk reads (scans, the
/// change feed, compaction's search for tombstones) take from record to record by headers
/// alone; [`scan`] is the walk that checks every byte.
pub(crate) fn committed_header(
    buf: &[u8],
    pos: usize,
) -> Option<Result<(RecordHeader, usize), store_format::FormatError>> {
    if pos >= buf.len() {
        return None;
    }
    Some(decode_record_header(buf, pos).map(|header| {
        // Past the end when the length is damaged: the walk stops there, and the read of
        // the record finds the damage.
        let next = (pos as u64).saturating_add(header.record_len());
        (header, usize::try_from(next).unwrap_or(usize::MAX))
    }))
}

/// The byte range of the first complete group of `records` that starts at or after `from`.
fn first_complete_group_from(records: &[Scanned<'_>], from: usize) -> Option<Range<usize>> {
    let commit = records
        .iter()
        .find(|r| r.complete && r.offset >= from && r.header().commit)?;
    let end = commit.end();
    Some(end - commit.header().group_len as usize..end)
}

/// Decodes the record at `pos`, checks that a put's text is UTF-8 and that its sequence
/// number is at least `lowest`.
fn intact_record(buf: &[u8], pos: usize, lowest: u64) -> Result<Record<'_>, String> {
    let record = decode_record(buf, pos).map_err(|err| err.to_string())?;
    if record.header.seq < lowest {
        return Err(format!(
            "the record at offset {pos} holds seq {}, below seq {lowest} that its place requires: a record out of place (bytes copied from elsewhere)",
            record.header.seq
        ));
    }
    if record.header.kind == RecordKind::Put
        && let Err(err) = simdutf8::compat::from_utf8(record.payload)
    {
        return Err(format!(
            "the text of document {} in the record at offset {pos} is not UTF-8 (byte {} of its text)",
            record.header.id,
            err.valid_up_to()
        ));
    }
    Ok(record)
}

/// The damaged range that starts at `start`: up to the next aligned offset where an intact
/// record (of sequence number `lowest` or above) starts, or up to `zero_from`, where
/// unwritten space begins.
///
/// With `earlier_life` (a file an earlier segment held), the search steps over each intact
/// record below `lowest` whole: the earlier segment's, whose bytes no later write changed, so
/// no record of this segment starts inside it. Stepping 8 bytes at a time through the
/// earlier segment's 256 MiB took an open after a crash 0.8 s, against 4 ms for a new file.
fn damaged_range(
    buf: &[u8],
    start: usize,
    zero_from: usize,
    lowest: u64,
    earlier_life: bool,
    reason: String,
) -> Damage {
    let mut headers = Vec::new();
    if let Ok(header) = decode_record_header(buf, start) {
        headers.push((start, header));
    }
    let mut at = start + RECORD_ALIGN;
    while at < zero_from {
        let header = decode_record_header(buf, at);
        // A header below `lowest` cannot start the next intact record: its checksum is
        // computed only to step over an earlier segment's record whole.
        if let Ok(h) = &header {
            if h.seq >= lowest {
                if intact_record(buf, at, lowest).is_ok() {
                    break;
                }
            } else if earlier_life && let Ok(record) = decode_record(buf, at) {
                at += record.header.record_len() as usize;
                continue;
            }
        }
        if let Ok(header) = header {
            headers.push((at, header));
        }
        at += RECORD_ALIGN;
    }
    let end = at.min(zero_from);
    let zeros = buf[start..end].iter().take_while(|&&b| b == 0).count();
    let reason = if zeros == end - start {
        format!(
            "{zeros} zero bytes where a record should start (unwritten-looking space with data after it)"
        )
    } else if zeros >= RECORD_ALIGN {
        format!(
            "{zeros} zero bytes where a record should start (unwritten-looking), then {} bytes that are no intact record",
            end - start - zeros
        )
    } else {
        reason
    };
    Damage {
        range: start..end,
        reason,
        headers,
    }
}

/// The offset from which every byte of `buf` is zero (`buf.len()` when its last byte is not).
fn zero_tail_start(buf: &[u8]) -> usize {
    let mut end = buf.len();
    // A preallocated tail can be megabytes long: whole pages first, then smaller chunks,
    // then bytes.
    for chunk in [4096, 64, 1] {
        while end >= chunk && is_zero(&buf[end - chunk..end]) {
            end -= chunk;
        }
    }
    end
}

/// Whether every byte is zero. Folds without stopping early, which the compiler turns into
/// wide comparisons: a page takes a few dozen instructions.
fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc | b) == 0
}

/// Assigns records to commit groups as the walk meets them.
struct Groups {
    /// Where the group being read began: after the last commit record or damage.
    start: usize,
    /// Index in the record list of the first record of that group.
    first: usize,
    /// Set at the first incomplete group or damage: where the clean prefix ends.
    clean_end: Option<usize>,
}

impl Groups {
    fn new(from: usize) -> Groups {
        Groups {
            start: from,
            first: 0,
            clean_end: None,
        }
    }

    /// The last of `records` was just read.
    fn record(&mut self, records: &mut [Scanned<'_>]) {
        let last = records.len() - 1;
        let header = *records[last].header();
        if !header.commit {
            return;
        }
        let end = records[last].end();
        match end.checked_sub(header.group_len as usize) {
            // The group began at or after the last boundary: all of it is here. Records
            // before its start belong to a group that has no commit record.
            Some(group_start) if group_start >= self.start => {
                for scanned in &mut records[self.first..=last] {
                    scanned.complete = scanned.offset >= group_start;
                }
                if group_start > self.start {
                    self.broken();
                }
            }
            // The group began before the last boundary (damage): some of it is lost.
            _ => self.broken(),
        }
        self.start = end;
        self.first = last + 1;
    }

    /// A damaged range ends at `end`, and `records` have been read so far: the group being
    /// read is broken, and the next one starts after the damage.
    fn damage(&mut self, end: usize, records: usize) {
        self.broken();
        self.start = end;
        self.first = records;
    }

    /// The bytes end at `end`: a group still holding records has no commit record.
    fn finish(&mut self, end: usize, records: usize) {
        if self.first < records && self.start < end {
            self.broken();
        }
    }

    fn broken(&mut self) {
        self.clean_end.get_or_insert(self.start);
    }
}

/// One segment as [`sealed_length_problems`] sees it.
pub(crate) struct SegmentLen<'p> {
    pub(crate) id: u32,
    pub(crate) path: &'p Path,
    pub(crate) file_len: u64,
    pub(crate) sealed_before: Option<SealedSegment>,
}

/// Checks every sealed segment's length against what its successor's header recorded when
/// it was sealed: a sealed segment cut short at a commit boundary walks cleanly, and only
/// this tells it from an intact one. A predecessor that no longer exists (compaction
/// replaced it) is not a problem.
pub(crate) fn sealed_length_problems(segments: &[SegmentLen<'_>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for segment in segments {
        let Some(sealed) = segment.sealed_before else {
            continue;
        };
        let Some(before) = segments.iter().find(|s| s.id == sealed.segment_id) else {
            continue;
        };
        let expected = u64::from(sealed.len_bytes);
        if before.file_len != expected {
            let (start, end) = (before.file_len.min(expected), before.file_len.max(expected));
            problems.push(Problem {
                path: before.path.to_path_buf(),
                offset: start,
                end,
                what: format!(
                    "the sealed segment is {} bytes, but segment {} recorded that it was sealed at {expected} bytes: {}",
                    before.file_len,
                    segment.id,
                    if before.file_len < expected {
                        "it was cut short, and the committed records past its end are lost"
                    } else {
                        "bytes were added after it was sealed"
                    }
                ),
            });
        }
    }
    problems
}

/// The problems of a walk: every damaged range, an incomplete group that no damaged range
/// explains, and, when `zeros_are_damage` (the bytes walked were all committed: a sealed
/// segment, or a segment up to its committed end), zeros up to the end.
pub(crate) fn problems(
    path: &Path,
    scan: &SegmentScan<'_>,
    zeros_are_damage: bool,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = scan
        .damage
        .iter()
        .map(|damage| {
            Problem::range(
                path,
                damage.range.start,
                damage.range.end,
                damage.reason.clone(),
            )
        })
        .collect();
    let broken = scan.broken_range();
    let explained = scan
        .damage
        .iter()
        .any(|damage| broken.contains(&damage.range.start));
    if !scan.is_clean() && !explained {
        out.push(Problem::range(
            path,
            broken.start,
            broken.end,
            scan.broken_reason(),
        ));
    }
    if let (true, Some(from)) = (zeros_are_damage, scan.unwritten_from) {
        out.push(Problem::range(
            path,
            from,
            scan.len,
            "zero bytes up to the end, where committed records should be (a sealed segment is trimmed to its last commit)",
        ));
    }
    out
}

/// One damaged byte range, or a file that fails its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub path: PathBuf,
    /// Where the bad bytes start.
    pub offset: u64,
    /// Where they end (exclusive): the next intact record, unwritten space or the end of
    /// the file. Equal to `offset` for a problem that is not a byte range (an index entry
    /// that points nowhere).
    pub end: u64,
    /// What failed.
    pub what: String,
}

impl Problem {
    pub(crate) fn range(path: &Path, start: usize, end: usize, what: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            offset: start as u64,
            end: end as u64,
            what: what.into(),
        }
    }

    pub(crate) fn whole_file(path: &Path, len: usize, what: impl Into<String>) -> Problem {
        Problem::range(path, 0, len, what)
    }

    /// Whether this problem is a byte range of `path` that holds `offset`.
    pub(crate) fn covers(&self, path: &Path, offset: u64) -> bool {
        self.path == path && self.offset <= offset && offset < self.end
    }

    pub(crate) fn at(path: &Path, offset: u64, what: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            offset,
            end: offset,
            what: what.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.end > self.offset {
            write!(
                f,
                "{} bytes {}..{}: {}",
                self.path.display(),
                self.offset,
                self.end,
                self.what
            )
        } else {
            write!(
                f,
                "{} at offset {}: {}",
                self.path.display(),
                self.offset,
                self.what
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use store_format::{DocId, encode_record, record_len};

    use super::*;

    const FROM: usize = 64;

    /// Bytes of a segment from [`FROM`]: each group's records, sequence numbers from 1,
    /// each group closed by its commit record.
    fn segment(groups: &[&[&str]]) -> Vec<u8> {
        let mut buf = vec![0u8; FROM];
        let mut seq = 1;
        for group in groups {
            let start = buf.len();
            let len: u64 = group.iter().map(|t| record_len(t.len() as u32)).sum();
            for (i, text) in group.iter().enumerate() {
                let end = (i + 1 == group.len()).then_some(len as u32);
                put(&mut buf, seq, text.as_bytes(), end);
                seq += 1;
            }
            assert_eq!(buf.len() - start, len as usize);
        }
        buf
    }

    /// Appends a put of `text` as document and sequence number `seq`; `group_len` for a
    /// record that ends a commit group.
    fn put(buf: &mut Vec<u8>, seq: u64, text: &[u8], group_len: Option<u32>) {
        encode_record(buf, RecordKind::Put, DocId::from(seq), seq, text, group_len);
    }

    /// Appends a put of `text` as document and sequence number `seq` that is a commit group
    /// of its own.
    fn put_committed(buf: &mut Vec<u8>, seq: u64, text: &[u8]) {
        put(buf, seq, text, Some(record_len(text.len() as u32) as u32));
    }

    /// The sequence numbers of the intact records a walk read, in order.
    fn seqs(walked: &SegmentScan<'_>) -> Vec<u64> {
        walked.records.iter().map(|r| r.header().seq).collect()
    }

    fn group_len(texts: &[&str]) -> usize {
        texts
            .iter()
            .map(|t| record_len(t.len() as u32) as usize)
            .sum()
    }

    #[test]
    fn a_clean_segment_is_its_groups_then_unwritten_space() {
        let mut buf = segment(&[&["one", "two"], &["three"]]);
        let end = buf.len();
        buf.resize(end + 4096, 0);
        let walked = scan(&buf, FROM, 0, false);
        assert!(walked.is_clean());
        assert_eq!((walked.clean_end, walked.unwritten_from), (end, Some(end)));
        assert_eq!(walked.records.len(), 3);
        assert!(walked.records.iter().all(|r| r.complete));
        assert_eq!(walked.records_after_clean_end(), 0);
        assert!(walked.damage.is_empty() && walked.committed_after.is_none());
    }

    /// Damage inside the second group: the clean prefix ends at that group, the damage and
    /// the group's other records lie past it, and the group after is committed data.
    #[test]
    fn damage_ends_the_clean_prefix_and_committed_data_after_it_is_found() {
        let groups: [&[&str]; 3] = [&["one"], &["two", "three"], &["four"]];
        let mut buf = segment(&groups);
        let second = FROM + group_len(groups[0]);
        let third = second + group_len(groups[1]);
        // The first record of the second group loses a byte of its text.
        buf[second + store_format::RECORD_HEADER_LEN] ^= 0x01;
        let walked = scan(&buf, FROM, 0, false);
        assert!(!walked.is_clean());
        assert_eq!(walked.clean_end, second);
        assert_eq!(walked.committed_after, Some(third..buf.len()));
        assert_eq!(walked.broken_range(), second..third);
        // "three" and "four" are intact past the clean end; "one" is not past it.
        assert_eq!(walked.records_after_clean_end(), 2);
        assert_eq!(walked.damage.len(), 1);
        assert_eq!(walked.damage[0].range.start, second);
        let reason = walked.broken_reason();
        assert_eq!(
            reason, walked.damage[0].reason,
            "damage at the clean end is the reason"
        );

        // A commit record cut off its group: the group starting at the clean end is
        // incomplete, and the reason says where its damage is.
        let mut buf = segment(&groups);
        let three = second + record_len(3) as usize;
        buf[three + store_format::RECORD_HEADER_LEN] ^= 0x01;
        let walked = scan(&buf, FROM, 0, false);
        assert_eq!(walked.clean_end, second);
        let reason = walked.broken_reason();
        assert!(
            reason.starts_with(&format!(
                "the commit group starting at offset {second} is incomplete; at offset {three}: "
            )),
            "{reason}"
        );
    }

    /// A group whose commit record never came: no damage, but no commit either.
    #[test]
    fn a_group_without_its_commit_record_is_named_as_such() {
        let mut buf = segment(&[&["one"]]);
        let start = buf.len();
        put(&mut buf, 9, b"open", None);
        let walked = scan(&buf, FROM, 0, false);
        assert_eq!(walked.clean_end, start);
        assert_eq!(walked.records_after_clean_end(), 1);
        assert_eq!(
            walked.broken_reason(),
            format!("the commit group starting at offset {start} has no intact commit record")
        );
    }

    /// The reason names what stands at the clean end, not damage further on, past the
    /// committed data that follows.
    #[test]
    fn the_reason_is_what_stands_between_the_clean_prefix_and_committed_data() {
        let mut buf = segment(&[&["one"]]);
        let open = buf.len();
        put(&mut buf, 2, b"open", None);
        let committed = buf.len();
        put_committed(&mut buf, 3, b"four");
        let damaged = buf.len();
        put_committed(&mut buf, 4, b"five");
        buf[damaged + store_format::RECORD_HEADER_LEN] ^= 0x01;
        let walked = scan(&buf, FROM, 0, false);
        assert_eq!(walked.broken_range(), open..committed);
        assert_eq!(walked.damage[0].range.start, damaged);
        assert_eq!(
            walked.broken_reason(),
            format!("the commit group starting at offset {open} has no intact commit record")
        );
    }

    /// In a file an earlier segment held, a write the disk lost leaves that segment's
    /// records inside this one's data: the search past them steps over each whole, and
    /// finds the committed record after them, so that the damage is refused, never taken
    /// for the end of the data.
    #[test]
    fn the_search_past_damage_steps_over_an_earlier_segments_records_to_committed_data() {
        let mut buf = vec![0u8; FROM];
        put_committed(&mut buf, 11, b"one");
        let lost = buf.len();
        put_committed(&mut buf, 3, b"earlier");
        put_committed(&mut buf, 4, b"earlier too");
        let committed = buf.len();
        put_committed(&mut buf, 13, b"committed");
        let end = buf.len();
        buf.resize(end + 4096, 0);
        let walked = scan(&buf, FROM, 10, true);
        assert_eq!(walked.damage.len(), 1, "{:?}", walked.damage);
        assert_eq!(walked.damage[0].range, lost..committed);
        assert_eq!(walked.committed_after, Some(committed..end));
        assert_eq!(seqs(&walked), [11, 13]);
    }

    /// Zeros where a record should start, with committed data after them, are named as
    /// zeros: unwritten-looking space that is not the end.
    #[test]
    fn zeros_before_committed_data_are_named_as_zeros() {
        let mut buf = vec![0u8; FROM];
        put_committed(&mut buf, 1, b"one");
        let zeros = buf.len();
        buf.resize(zeros + 64, 0);
        put_committed(&mut buf, 2, b"two");
        let walked = scan(&buf, FROM, 0, false);
        assert_eq!(walked.damage.len(), 1, "{:?}", walked.damage);
        assert_eq!(walked.damage[0].range, zeros..zeros + 64);
        assert_eq!(
            walked.broken_reason(),
            "64 zero bytes where a record should start (unwritten-looking space with data after it)"
        );
    }

    /// The search past damage for the next record resumes only at one above the floor: a
    /// record at the floor inside the damage (copied from elsewhere) is part of it.
    #[test]
    fn the_search_past_damage_skips_a_record_at_the_floor() {
        let mut buf = vec![0u8; FROM];
        put_committed(&mut buf, 11, b"one");
        let damaged = buf.len();
        put_committed(&mut buf, 12, b"two");
        buf[damaged + store_format::RECORD_HEADER_LEN] ^= 0x01;
        put_committed(&mut buf, 10, b"old");
        let next = buf.len();
        put_committed(&mut buf, 13, b"new");
        let walked = scan(&buf, FROM, 10, false);
        assert_eq!(walked.damage.len(), 1, "{:?}", walked.damage);
        assert_eq!(walked.damage[0].range, damaged..next);
        assert_eq!(seqs(&walked), [11, 13]);
    }

    /// Every record of the walk lies above the floor: one at it was copied from elsewhere.
    #[test]
    fn a_record_at_the_floor_is_out_of_place() {
        let buf = segment(&[&["one"], &["two"]]);
        let walked = scan(&buf, FROM, 1, false);
        assert_eq!(walked.clean_end, FROM);
        assert_eq!(walked.damage.len(), 1);
        assert_eq!(walked.damage[0].range, FROM..FROM + record_len(3) as usize);
        assert_eq!(walked.records.len(), 1);
        assert_eq!(walked.records[0].header().seq, 2);
    }

    #[test]
    fn a_problem_covers_its_own_range_of_its_own_file() {
        let path = Path::new("store/0000000001.seg");
        let problem = Problem::range(path, 100, 200, "bad bytes");
        assert!(problem.covers(path, 100) && problem.covers(path, 199));
        assert!(!problem.covers(path, 99) && !problem.covers(path, 200));
        assert!(!problem.covers(Path::new("store/0000000002.seg"), 150));
        assert_eq!(
            problem.to_string(),
            "store/0000000001.seg bytes 100..200: bad bytes"
        );
        let point = Problem::at(path, 300, "an index entry that points nowhere");
        assert!(!point.covers(path, 300));
        assert_eq!(
            point.to_string(),
            "store/0000000001.seg at offset 300: an index entry that points nowhere"
        );
    }
}
