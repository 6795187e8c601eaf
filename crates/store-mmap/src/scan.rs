//! Reading a store in bulk: [`Scan`], every live document in storage order, and [`Changes`],
//! every change after a sequence number in sequence order.
//!
//! Both step through committed records by their headers alone (committed bytes are complete
//! commit groups, so a header that does not decode is damage, an error), over views of the
//! segments taken when they start: they hold those mappings, so a compaction that replaces
//! a segment meanwhile does not disturb them. A record they return is checked as every read
//! is ([`SegmentMap::read_doc`] for a put; a tombstone whole, it is 48 bytes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use store_format::{
    Doc, DocId, Position, RecordHeader, RecordKind, SEGMENT_HEADER_LEN, decode_record,
};

use crate::error::{Error, Result};
use crate::segment_map::SegmentMap;
use crate::walk;

/// The committed records of one segment, as far as it was committed when the cursor was
/// made.
struct Cursor {
    map: SegmentMap,
    pos: u32,
    end: u32,
    /// The offset from which a record is worth noting in the segment's marks.
    next_mark: u32,
    /// Where the commit group of the last record read ends, and whether that group counts:
    /// the part of a commit spanning segments that never reached its last part does not.
    group_end: u32,
    group_counts: bool,
}

impl Cursor {
    /// A cursor at `pos` of `map`, reading below `end`, which notes marks as it walks.
    fn at(map: SegmentMap, pos: u32, end: u32) -> Cursor {
        Cursor {
            map,
            pos,
            end,
            next_mark: pos,
            group_end: 0,
            group_counts: true,
        }
    }

    /// A cursor at the last record the segment's marks place at or below `seq` (or at the
    /// segment's start), reading below `end`: a scan's walk (`seq` 0) leaves marks that
    /// later change feeds start from.
    fn after(map: SegmentMap, seq: u64, end: u32) -> Cursor {
        let pos = match map.seq_marks().start_for(seq) {
            Some((offset, _)) => offset.min(end),
            None => SEGMENT_HEADER_LEN as u32,
        };
        Cursor::at(map, pos, end)
    }

    /// The next record's offset and header.
    fn next_record(&mut self) -> Option<Result<(u32, RecordHeader)>> {
        let data = &self.map.bytes()[..self.end as usize];
        let at = self.pos;
        Some(match walk::committed_header(data, at as usize)? {
            Ok((header, next)) => {
                self.pos = u32::try_from(next).unwrap_or(u32::MAX);
                if at >= self.next_mark {
                    self.next_mark = self.map.seq_marks().note(at, header.seq);
                }
                Ok((at, header))
            }
            Err(err) => {
                // Nothing past a header that does not decode can be found again.
                self.pos = self.end;
                Err(Error::format(self.map.path(), 0, &err))
            }
        })
    }

    /// The put at `offset`, checked as every read is.
    fn put(&self, header: &RecordHeader, offset: u32) -> Result<Doc> {
        self.map.read_doc(header.id, offset)
    }

    /// The sequence number of the last record below this cursor's end whose group counts;
    /// `None` for a segment with none. Walked from the segment's last mark below the end,
    /// and from the marks before it in turn while the stretch after one holds no record
    /// that counts (the part of a commit a crash abandoned may fill it).
    fn last_seq(&self, spans: &Spans) -> Result<Option<u64>> {
        let mut starts = self.map.seq_marks().offsets_before(self.end);
        starts.push(SEGMENT_HEADER_LEN as u32);
        let mut until = self.end;
        for start in starts {
            if start >= until {
                continue;
            }
            let mut walk = Cursor::at(self.map.clone(), start, self.end);
            let mut last = None;
            while let Some(found) = walk.next_record() {
                let (offset, header) = found?;
                if offset >= until {
                    break;
                }
                if offset >= walk.group_end {
                    (walk.group_counts, walk.group_end) = group_counts(&walk, spans, offset)?;
                }
                if walk.group_counts {
                    last = Some(header.seq);
                }
            }
            if last.is_some() {
                return Ok(last);
            }
            until = start;
        }
        Ok(None)
    }

    /// The commit record of the group the record at `at` belongs to, and where it ends:
    /// the headers from `at` on up to the first that closes a group. `None` when no group
    /// closes below the end.
    fn group_of(&self, at: u32) -> Result<Option<(RecordHeader, u32)>> {
        let data = &self.map.bytes()[..self.end as usize];
        let mut pos = at as usize;
        while let Some(found) = walk::committed_header(data, pos) {
            let (header, next) = found.map_err(|err| Error::format(self.map.path(), 0, &err))?;
            if header.commit {
                return Ok(Some((header, u32::try_from(next).unwrap_or(u32::MAX))));
            }
            pos = next;
        }
        Ok(None)
    }

    /// Checks the tombstone at `offset` whole: a delete is never reported from a damaged
    /// record.
    fn check_tombstone(&self, offset: u32) -> Result<()> {
        let data = &self.map.bytes()[..self.end as usize];
        decode_record(data, offset as usize)
            .map(drop)
            .map_err(|err| Error::format(self.map.path(), 0, &err))
    }
}

/// Where a scan asks whether a record holds its document's latest version: where that
/// version is and its sequence number, or `None` when the document is deleted.
pub type Latest<'a> = Box<dyn Fn(DocId) -> Result<Option<(Position, u64)>> + Send + 'a>;

/// Every live document, in storage order (segment by segment, record by record), read
/// lazily and zero-copy. From [`crate::Store::scan`] or a layer's own scan.
///
/// What it yields, beside writers and compaction: every document that was live when the
/// scan started, and not written or deleted before the scan passed it, exactly once, at that
/// version. A document written or deleted during the scan appears at most once, at the
/// version it had when the scan started, or not at all; nothing committed after the start
/// appears. To see those too, follow the scan with [`crate::Store::changes_since`] from
/// [`Scan::as_of`].
pub struct Scan<'a> {
    segments: std::vec::IntoIter<SegmentMap>,
    /// The ids of every segment of the scan.
    listed: HashSet<u32>,
    cursor: Option<Cursor>,
    as_of: u64,
    latest: Latest<'a>,
}

impl<'a> Scan<'a> {
    /// A scan of `segments` (every live segment, as of `as_of`, the last committed sequence
    /// number), asking `latest` whether each record is its document's latest version. For
    /// layers that publish the engine's segments to readers of their own: the list must
    /// hold every segment a record committed by `as_of` may be in, and no segment whose
    /// records are copies of those in another segment of the list.
    pub fn over(segments: Vec<SegmentMap>, as_of: u64, latest: Latest<'a>) -> Scan<'a> {
        Scan {
            listed: segments.iter().map(SegmentMap::id).collect(),
            segments: segments.into_iter(),
            cursor: None,
            as_of,
            latest,
        }
    }

    /// The sequence number the scan is as of: the last commit when it started.
    pub fn as_of(&self) -> u64 {
        self.as_of
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(DocId, Doc)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let cursor = match &mut self.cursor {
                Some(cursor) => cursor,
                None => {
                    let map = self.segments.next()?;
                    let end = map.committed_end();
                    self.cursor.insert(Cursor::after(map, 0, end))
                }
            };
            let Some(found) = cursor.next_record() else {
                self.cursor = None;
                continue;
            };
            let (offset, header) = match found {
                Ok(found) => found,
                Err(err) => return Some(Err(err)),
            };
            // Records of a segment rise in sequence: the rest of this one came later.
            if header.seq > self.as_of {
                self.cursor = None;
                continue;
            }
            if header.kind != RecordKind::Put {
                continue;
            }
            // The record is the latest version where the index points, or, when a compaction
            // moved that version into a segment the scan does not hold, the same version:
            // a record beside a copy of it in another segment of the scan (left by a
            // compaction whose install failed) is yielded once, where the index points.
            let segment = cursor.map.id();
            match (self.latest)(header.id) {
                Ok(Some((position, seq)))
                    if position == (Position { segment, offset })
                        || (seq == header.seq && !self.listed.contains(&position.segment)) => {}
                Ok(_) => continue,
                Err(err) => return Some(Err(err)),
            }
            return Some(cursor.put(&header, offset).map(|doc| (header.id, doc)));
        }
    }
}

/// The segments of a feed, or of a compaction's plan, as the rule for commits that span
/// segments needs them (docs/FORMAT.md, "Batches that span segments"): each one's view and
/// committed end, and the segment created in the middle of a commit after each.
pub(crate) struct Spans {
    segments: std::collections::HashMap<u32, Cursor>,
    /// Segment id → the segment whose header says it was created in the middle of a commit
    /// that went on from it.
    continued_in: std::collections::HashMap<u32, u32>,
}

impl Spans {
    /// The spans of `segments`, read below `ends` (one for each segment).
    pub(crate) fn new(
        segments: &[SegmentMap],
        ends: &std::collections::HashMap<u32, u32>,
    ) -> Spans {
        let continued_in = segments
            .iter()
            .filter_map(|map| {
                let sealed = map.sealed_before()?;
                sealed
                    .commit_continues
                    .then_some((sealed.segment_id, map.id()))
            })
            .collect();
        let segments = segments
            .iter()
            .map(|map| {
                let cursor = Cursor::at(map.clone(), SEGMENT_HEADER_LEN as u32, ends[&map.id()]);
                (map.id(), cursor)
            })
            .collect();
        Spans {
            segments,
            continued_in,
        }
    }

    /// Whether the part of a commit that ends at `end` in `segment` and goes on in the next
    /// segment belongs to a commit that reached its last part: it ends its segment's data,
    /// and the segment created after it begins with the next part, and so on to a part that
    /// does not go on. Otherwise the writer stopped in the middle of the commit, which was
    /// never acknowledged and which recovery does not apply.
    pub(crate) fn completes(&self, mut segment: u32, mut end: u32) -> Result<bool> {
        loop {
            let Some(cursor) = self.segments.get(&segment) else {
                return Ok(false);
            };
            if end != cursor.end {
                return Ok(false);
            }
            let Some(next) = self.continued_in.get(&segment).copied() else {
                return Ok(false);
            };
            let Some(cursor) = self.segments.get(&next) else {
                return Ok(false);
            };
            let Some((header, next_end)) = cursor.group_of(SEGMENT_HEADER_LEN as u32)? else {
                return Ok(false);
            };
            if !header.continues_from_prev {
                return Ok(false);
            }
            if !header.continues_in_next {
                return Ok(true);
            }
            (segment, end) = (next, next_end);
        }
    }
}

/// One committed change, as [`Changes`] yields it.
#[derive(Debug, Clone)]
pub enum Change {
    /// The document was written; `doc` is that version, zero-copy.
    Put {
        /// The document.
        id: DocId,
        /// Its text and sequence number as written.
        doc: Doc,
    },
    /// The document was deleted.
    Delete {
        /// The document.
        id: DocId,
        /// The delete's sequence number.
        seq: u64,
    },
}

impl Change {
    /// The document changed.
    pub fn id(&self) -> DocId {
        match self {
            Change::Put { id, .. } | Change::Delete { id, .. } => *id,
        }
    }

    /// The change's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Change::Put { doc, .. } => doc.seq(),
            Change::Delete { seq, .. } => *seq,
        }
    }
}

/// Every change committed after a sequence number, in sequence order, up to the last commit
/// when the feed started. From [`crate::Store::changes_since`] or a layer's own feed.
///
/// Applying the changes in order to what a reader knew as of `since` gives the store as of
/// [`Changes::upto`]. Every delete is there (a feed that would miss one a compaction dropped
/// is refused, see [`crate::Store::change_floor`]) and every latest version; a version that
/// a later change of the same document superseded may be missing once compaction dropped it.
pub struct Changes {
    cursors: Vec<Cursor>,
    spans: Spans,
    /// The next record of each cursor that is in range, by sequence number.
    heads: BinaryHeap<Reverse<(u64, usize, u32)>>,
    headers: Vec<Option<RecordHeader>>,
    since: u64,
    upto: u64,
    /// The last commit the segments held when the feed was made.
    reached: u64,
    last_yielded: u64,
    failed: Option<Error>,
}

impl Changes {
    /// A feed of every change after `since` in `segments` (ascending by id), up to the last
    /// commit complete in them when it is made. For layers that publish the engine's
    /// segments to readers of their own: the list must hold every segment a record
    /// committed after `since` may be in, and the caller has checked `since` against the
    /// change floor.
    ///
    /// The feed's end is the segments' committed ends, not a sequence number published
    /// beside them: a reader that saw a commit anywhere (a lookup, a scan) saw it after its
    /// segment's end moved past it, so a feed made after that reaches it.
    pub fn over(segments: Vec<SegmentMap>, since: u64) -> Changes {
        // A writer's segment records the last sequence number of the one it sealed before
        // it: a segment whose records all lie at or below `since` is not walked.
        let done: HashSet<u32> = segments
            .iter()
            .filter_map(SegmentMap::sealed_before)
            .filter(|sealed| sealed.last_seq <= since)
            .map(|sealed| sealed.segment_id)
            .collect();
        let recorded = segments
            .iter()
            .filter_map(SegmentMap::sealed_before)
            .map(|sealed| sealed.last_seq)
            .max()
            .unwrap_or(0);
        // The ends are taken from the newest segment down. Only the newest grows, and a
        // commit complete in it follows every commit in the others, whose ends, taken
        // after, cover those: the feed holds every commit up to its last one.
        let ends: std::collections::HashMap<u32, u32> = segments
            .iter()
            .rev()
            .map(|map| (map.id(), map.committed_end()))
            .collect();
        let spans = Spans::new(&segments, &ends);
        // The newest segment is never another's sealed predecessor, so it has a cursor.
        let cursors: Vec<Cursor> = segments
            .into_iter()
            .filter(|map| !done.contains(&map.id()))
            .map(|map| {
                let end = ends[&map.id()];
                Cursor::after(map, since, end)
            })
            .collect();
        // A part of a commit that goes on in a segment not listed yet (its writer publishes
        // the new segment right after the commit's ends move) is left for the next feed, as
        // is one a crash abandoned: neither counts yet, and `upto` stops before it.
        let newest = cursors.last().map(|cursor| cursor.last_seq(&spans));
        let (newest_seq, failed) = match newest {
            Some(Ok(seq)) => (seq, None),
            Some(Err(err)) => (None, Some(err)),
            None => (None, None),
        };
        let reached = recorded.max(newest_seq.unwrap_or(0));
        let upto = since.max(reached);
        let mut changes = Changes {
            headers: vec![None; cursors.len()],
            cursors,
            spans,
            heads: BinaryHeap::new(),
            since,
            upto,
            reached,
            last_yielded: since,
            failed,
        };
        for at in 0..changes.cursors.len() {
            changes.advance(at);
        }
        changes
    }

    /// The sequence number the feed starts after.
    pub fn since(&self) -> u64 {
        self.since
    }

    /// The last commit the segments held when the feed was made: [`Changes::upto`], unless
    /// the feed starts past it. A layer whose published last sequence number may lag the
    /// segments' ends checks the start against this as well.
    pub fn reached(&self) -> u64 {
        self.reached
    }

    /// The last sequence number the feed reaches: the last commit complete when it was
    /// made, where the next feed starts after this one is read.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Moves cursor `at` to its next record in range and queues it.
    fn advance(&mut self, at: usize) {
        let cursor = &mut self.cursors[at];
        while let Some(found) = cursor.next_record() {
            if let Ok((offset, _)) = &found
                && *offset >= cursor.group_end
            {
                match group_counts(cursor, &self.spans, *offset) {
                    Ok((counts, end)) => (cursor.group_counts, cursor.group_end) = (counts, end),
                    Err(err) => {
                        self.failed.get_or_insert(err);
                        return;
                    }
                }
            }
            match found {
                Ok((_, header)) if header.seq <= self.since || !cursor.group_counts => {}
                Ok((offset, header)) => {
                    // Records of a segment rise in sequence: nothing after this one is in
                    // range either.
                    if header.seq <= self.upto {
                        self.headers[at] = Some(header);
                        self.heads.push(Reverse((header.seq, at, offset)));
                    }
                    return;
                }
                Err(err) => {
                    self.failed.get_or_insert(err);
                    return;
                }
            }
        }
    }
}

/// Whether the group the record at `offset` of `cursor` belongs to counts, and where it
/// ends.
fn group_counts(cursor: &Cursor, spans: &Spans, offset: u32) -> Result<(bool, u32)> {
    match cursor.group_of(offset)? {
        Some((commit, end)) if commit.continues_in_next => {
            Ok((spans.completes(cursor.map.id(), end)?, end))
        }
        Some((_, end)) => Ok((true, end)),
        // Below a committed end every record belongs to a complete group.
        None => Ok((false, cursor.end)),
    }
}

impl Iterator for Changes {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(err) = self.failed.take() {
                self.heads.clear();
                return Some(Err(err));
            }
            let Reverse((seq, at, offset)) = self.heads.pop()?;
            let header = self.headers[at]
                .take()
                .expect("a queued cursor has its header");
            self.advance(at);
            // A compaction that failed after its outputs took their names can leave a
            // record beside its copy until a later compaction: one change, reported once.
            if seq <= self.last_yielded {
                continue;
            }
            self.last_yielded = seq;
            let cursor = &self.cursors[at];
            return Some(if header.kind == RecordKind::Put {
                cursor
                    .put(&header, offset)
                    .map(|doc| Change::Put { id: header.id, doc })
            } else {
                cursor
                    .check_tombstone(offset)
                    .map(|()| Change::Delete { id: header.id, seq })
            });
        }
    }
}
