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

#[cfg(test)]
mod tests {
    use super::*;

    /// A group of a segment: where it starts, and its span flags (from the segment before,
    /// into the next).
    type Spec = (usize, bool, bool);

    /// Segment `id` sealed after `after`, walked from its first record or not, with `groups`
    /// each 100 bytes long.
    fn segment(
        id: u32,
        after: Option<u32>,
        from_start: bool,
        groups: &[Spec],
    ) -> SegmentGroups<'static> {
        SegmentGroups {
            id,
            path: Path::new("segment"),
            after,
            from_start,
            groups: groups
                .iter()
                .map(|&(start, from_prev, in_next)| Group {
                    range: start..start + 100,
                    continues_from_prev: from_prev,
                    continues_in_next: in_next,
                })
                .collect(),
        }
    }

    const H: usize = SEGMENT_HEADER_LEN;

    /// Each case: the segments, then the groups abandoned as (segment, start), then the
    /// problems' starts.
    #[test]
    fn parts_count_only_when_they_link_up_to_a_last_part() {
        type Case = (
            &'static str,
            Vec<SegmentGroups<'static>>,
            Vec<(u32, usize)>,
            Vec<usize>,
        );
        let cases: Vec<Case> = vec![
            (
                "a commit over three segments, whole",
                vec![
                    segment(1, None, true, &[(H, false, false), (H + 100, false, true)]),
                    segment(2, Some(1), true, &[(H, true, true)]),
                    segment(
                        3,
                        Some(2),
                        true,
                        &[(H, true, false), (H + 100, false, false)],
                    ),
                ],
                vec![],
                vec![],
            ),
            (
                "its last part never written",
                vec![
                    segment(1, None, true, &[(H, false, true)]),
                    segment(2, Some(1), true, &[(H, true, true)]),
                ],
                vec![(1, H), (2, H)],
                vec![],
            ),
            (
                "a part that goes on, followed by more writes in its segment",
                vec![
                    segment(1, None, true, &[(H, false, true), (H + 100, false, false)]),
                    segment(2, Some(1), true, &[(H, true, false)]),
                ],
                // The next segment's part follows a segment that ends with a commit of its
                // own: damage.
                vec![(1, H), (2, H)],
                vec![H],
            ),
            (
                "the next segment begins with a commit of its own",
                vec![
                    segment(1, None, true, &[(H, false, true)]),
                    segment(2, Some(1), true, &[(H, false, false)]),
                ],
                vec![(1, H)],
                vec![],
            ),
            (
                "a part that says it continues, after a segment that does not go on",
                vec![
                    segment(1, None, true, &[(H, false, false)]),
                    segment(2, Some(1), true, &[(H, true, false)]),
                ],
                vec![(2, H)],
                vec![H],
            ),
            (
                "a part that says it continues, but is not its segment's first group",
                vec![
                    segment(1, None, true, &[(H, false, true)]),
                    segment(
                        2,
                        Some(1),
                        true,
                        &[(H, true, false), (H + 100, true, false)],
                    ),
                ],
                vec![(2, H + 100)],
                vec![H + 100],
            ),
            (
                "a part that says it continues, where the walk began at a checkpoint",
                vec![segment(2, Some(1), false, &[(H + 300, true, false)])],
                vec![(2, H + 300)],
                vec![H + 300],
            ),
            (
                "the segment before replaced by a compaction: the rest of the commit counts",
                vec![
                    segment(2, Some(1), true, &[(H, true, true)]),
                    segment(3, Some(2), true, &[(H, true, false)]),
                ],
                vec![],
                vec![],
            ),
        ];
        for (what, segments, abandoned, problems) in cases {
            let resolved = resolve(&segments);
            let mut found: Vec<(u32, usize)> = resolved
                .abandoned
                .iter()
                .flat_map(|(&id, ranges)| ranges.iter().map(move |r| (id, r.start)))
                .collect();
            found.sort_unstable();
            assert_eq!(found, abandoned, "{what}: abandoned");
            for &(id, start) in &abandoned {
                assert!(
                    resolved.is_abandoned(id, start + 99),
                    "{what}: {id} {start}"
                );
                assert!(
                    !resolved.is_abandoned(id, start + 100)
                        || abandoned.contains(&(id, start + 100))
                );
            }
            let starts: Vec<usize> = resolved
                .problems
                .iter()
                .map(|p| p.offset as usize)
                .collect();
            assert_eq!(starts, problems, "{what}: problems");
        }
    }
}
