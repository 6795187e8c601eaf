//! Commits that span segments: which of their parts count.
//!
//! A batch larger than the room left in the active segment is written as one part per
//! segment (see `write`). Each part is a complete group in its segment; its commit record
//! says whether the commit goes on in the next segment and whether it began in the one
//! before. The rule (docs/FORMAT.md, "Batches that span segments"):
//!
//! - A part that continues a commit is the first group of its segment. Anywhere else, or
//!   after a segment whose last group does not go on, it is damage.
//! - A commit counts only when its parts link up to a last part that does not go on: each
//!   part that goes on ends its segment's data, and the segment created next (the one whose
//!   header records it as its sealed predecessor) begins with the next part.
//! - The parts of a commit that does not link up to its end are **abandoned**: the writer
//!   stopped in the middle of the commit, which was never acknowledged. Their records are
//!   intact and stay on disk, and none of them is applied.
//!
//! Compaction keeps the rule true over time: it replaces the segments of a committed
//! multi-segment commit all together or not at all, so a committed commit never loses its
//! last part while an earlier one remains.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use store_format::SEGMENT_HEADER_LEN;

use crate::walk::Problem;
use crate::walk::SegmentScan;

/// A complete group of a segment, as far as spanning goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) range: Range<usize>,
    pub(crate) continues_from_prev: bool,
    pub(crate) continues_in_next: bool,
}

/// The complete groups of one walked segment, below its data end.
pub(crate) struct SegmentGroups<'p> {
    pub(crate) id: u32,
    pub(crate) path: &'p Path,
    /// The segment its header records as sealed just before it.
    pub(crate) after: Option<u32>,
    /// Whether the walk began at the segment's first record (else at a checkpoint, after
    /// which no part continues a commit from the segment before).
    pub(crate) from_start: bool,
    pub(crate) groups: Vec<Group>,
}

impl<'p> SegmentGroups<'p> {
    /// The complete groups of `scan` that end at or before `data_end`.
    pub(crate) fn of(
        id: u32,
        path: &'p Path,
        after: Option<u32>,
        from: usize,
        scan: &SegmentScan<'_>,
        data_end: usize,
    ) -> SegmentGroups<'p> {
        let groups = scan
            .records
            .iter()
            .filter(|r| r.complete && r.header().commit && r.end() <= data_end)
            .map(|r| Group {
                range: r.end() - r.header().group_len as usize..r.end(),
                continues_from_prev: r.header().continues_from_prev,
                continues_in_next: r.header().continues_in_next,
            })
            .collect();
        SegmentGroups {
            id,
            path,
            after,
            from_start: from == SEGMENT_HEADER_LEN,
            groups,
        }
    }
}

/// What [`resolve`] found.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// Byte ranges, by segment id, of the parts of commits that never completed.
    pub(crate) abandoned: BTreeMap<u32, Vec<Range<usize>>>,
    /// Parts that claim to continue a commit that no segment before them begins: damage.
    pub(crate) problems: Vec<Problem>,
}

impl Resolved {
    /// Whether the record at `offset` of segment `id` belongs to an abandoned part.
    pub(crate) fn is_abandoned(&self, id: u32, offset: usize) -> bool {
        self.abandoned
            .get(&id)
            .is_some_and(|ranges| ranges.iter().any(|r| r.contains(&offset)))
    }
}

/// Applies the rule above to `segments`, in id order.
pub(crate) fn resolve(segments: &[SegmentGroups<'_>]) -> Resolved {
    let mut out = Resolved::default();
    let by_id: BTreeMap<u32, &SegmentGroups<'_>> = segments.iter().map(|s| (s.id, s)).collect();
    let successor = |id: u32| segments.iter().find(|s| s.after == Some(id));
    for segment in segments {
        for (i, group) in segment.groups.iter().enumerate() {
            if group.continues_from_prev {
                let first = i == 0 && segment.from_start;
                let at_start = group.range.start == SEGMENT_HEADER_LEN;
                // The segment before, when it is still there: its last group must go on.
                let before = segment.after.and_then(|id| by_id.get(&id));
                let linked = before.is_none_or(|before| {
                    before
                        .groups
                        .last()
                        .is_some_and(|last| last.continues_in_next)
                });
                if !(first && at_start && linked) {
                    out.problems.push(Problem::range(
                        segment.path,
                        group.range.start,
                        group.range.end,
                        "a commit group that says it continues a commit from the segment before, \
                         which does not end with the start of one",
                    ));
                    out.abandoned
                        .entry(segment.id)
                        .or_default()
                        .push(group.range.clone());
                    continue;
                }
            }
            if !(group.continues_from_prev || group.continues_in_next) {
                continue;
            }
            if !completes(segment, i, &successor) {
                out.abandoned
                    .entry(segment.id)
                    .or_default()
                    .push(group.range.clone());
            }
        }
    }
    out
}

/// Whether the part `segment.groups[i]` links up, part by part, to a last part.
fn completes<'a, 'p: 'a>(
    segment: &'a SegmentGroups<'p>,
    i: usize,
    successor: &impl Fn(u32) -> Option<&'a SegmentGroups<'p>>,
) -> bool {
    let (mut segment, mut i) = (segment, i);
    loop {
        let group = &segment.groups[i];
        if !group.continues_in_next {
            return true;
        }
        if i + 1 != segment.groups.len() {
            // Writes went on in the same segment: the writer stopped in the commit.
            return false;
        }
        let Some(next) = successor(segment.id) else {
            return false;
        };
        match next.groups.first() {
            Some(first) if first.continues_from_prev && next.from_start => {
                segment = next;
                i = 0;
            }
            _ => return false,
        }
    }
}
