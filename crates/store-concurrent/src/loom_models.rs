//! Loom models of the crate's protocols. Each runs the real code of `published`, `table`
//! and `ticket` over loom's primitives and names the claim it checks.
//!
//! Segments are modelled as cells that the writer fills before it publishes them, the way
//! `pwrite` fills the mapped file, and a committed end that the writer moves once a commit
//! is complete, the way the engine moves a segment view's end: loom reports any read of a
//! cell that is not ordered after its write, so a broken publication order fails a model as
//! a data race.

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use store_mmap::{DocId, Position};

use crate::error::Error;
use crate::published::{Checkpointed, Found, Published, Publisher};
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, StdArc, thread};
use crate::table::{LocationTable, Lookup};
use crate::ticket::ticket;

/// Offset of the first record slot of a segment (records start past the segment header).
const FIRST: u32 = 64;

/// The record slots of a model segment, one cell each, and its committed end: `Arc`-shared
/// between the segment (the readers' mapping) and the writer (its file descriptor).
type Records = Arc<SegmentCells>;

struct SegmentCells {
    cells: [UnsafeCell<u64>; 3],
    /// As the engine's segment view holds it: stored `Release` when a commit is complete,
    /// loaded `Acquire` by every read.
    committed: AtomicU32,
}

fn records() -> Records {
    Arc::new(SegmentCells {
        cells: [UnsafeCell::new(0), UnsafeCell::new(0), UnsafeCell::new(0)],
        committed: AtomicU32::new(FIRST),
    })
}

fn slot(offset: u32) -> usize {
    ((offset - FIRST) / 64) as usize
}

/// The writer's `pwrite` of a record.
fn write(records: &Records, offset: u32, value: u64) {
    records.cells[slot(offset)].with_mut(|cell| {
        #[expect(unsafe_code, reason = "a model of the mapped file's bytes")]
        // SAFETY: only the writer thread writes, and only slots past the committed end, which
        // no reader touches until the end is moved after this write.
        unsafe {
            *cell = value
        }
    });
}

/// The engine completing a commit: every record below `end` is whole.
fn commit(records: &Records, end: u32) {
    records.committed.store(end, Ordering::Release);
}

/// A segment as readers reach it. `dropped` records when it is freed.
struct Segment {
    records: Records,
    dropped: Arc<AtomicBool>,
}

impl Segment {
    fn new(records: &Records, dropped: &Arc<AtomicBool>) -> Segment {
        Segment {
            records: Arc::clone(records),
            dropped: Arc::clone(dropped),
        }
    }

    /// A reader's access to the mapped record, bounded by the committed end.
    fn read(&self, offset: u32) -> u64 {
        let end = self.records.committed.load(Ordering::Acquire);
        assert!(
            offset + 64 <= end,
            "a position at {offset} was visible before end {end} covered it"
        );
        assert!(
            !self.dropped.load(Ordering::SeqCst),
            "a reader touched a freed segment"
        );
        self.records.cells[slot(offset)].with(|cell| {
            #[expect(unsafe_code, reason = "a model of the mapped file's bytes")]
            // SAFETY: loom checks that this read is ordered after the write of the slot.
            unsafe {
                *cell
            }
        })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn at(segment: u32, offset: u32) -> Option<Position> {
    Some(Position { segment, offset })
}

fn read(published: &Published<Segment>, id: DocId) -> Option<u64> {
    match published.read(id, |segment, offset| segment.read(offset)) {
        Found::Absent => None,
        Found::Read(value) => Some(value),
        Found::MissingSegment(position) => {
            panic!("{id} points to a missing segment: {position:?}")
        }
        Found::Failed(err) => panic!("{id}: {err}"),
    }
}

/// A checkpoint of the index: fixed positions, as the engine's mapped index file is.
struct Checkpoint(Vec<(DocId, Position)>);

impl Checkpointed for Checkpoint {
    fn find(&self, id: DocId) -> store_mmap::Result<Option<Position>> {
        Ok(self.0.iter().find(|(d, _)| *d == id).map(|(_, p)| *p))
    }

    fn page_count(&self) -> u64 {
        1
    }

    fn page_ids(&self, _page: u64) -> store_mmap::Result<Vec<DocId>> {
        Ok(self.0.iter().map(|(d, _)| *d).collect())
    }
}

fn live(
    documents: impl Iterator<Item = (DocId, Position)>,
) -> impl Iterator<Item = (DocId, Option<Position>)> {
    documents.map(|(id, position)| (id, Some(position)))
}

/// Claim: a reader never sees a position before the bytes of its record, neither in the
/// active segment nor in a segment the commit rolled to, and never goes back to an older
/// version once it has seen a newer one.
#[test]
fn a_reader_never_sees_a_position_before_its_bytes() {
    loom::model(|| {
        let id = DocId::from_u128(7);
        let live = Arc::new(AtomicBool::new(false));
        let first = records();
        let mut publisher = Publisher::new(
            [(1, Segment::new(&first, &live))],
            None,
            std::iter::empty(),
            0,
            0,
            0,
        );
        let published = Arc::clone(publisher.shared());
        let reader = thread::spawn(move || {
            let before = read(&published, id);
            let after = read(&published, id);
            assert!(after >= before, "went back from {before:?} to {after:?}");
            if before.is_some() {
                assert!(after.is_some(), "a live document vanished");
            }
        });
        // Commit 1, into the active segment.
        write(&first, FIRST, 10);
        commit(&first, FIRST + 64);
        publisher.set(id, at(1, FIRST));
        publisher.finish(1, 1);
        // Commit 2 rolls to a new segment.
        let second = records();
        write(&second, FIRST, 20);
        commit(&second, FIRST + 64);
        publisher.add_segment(2, Segment::new(&second, &live));
        publisher.set(id, at(2, FIRST));
        publisher.finish(2, 1);
        reader.join().unwrap();
    });
}

/// Claim: when the writer publishes a new checkpoint of the index with the table of the
/// changes since it, a reader finds every document before, during and after the swap, at
/// its latest published version or a newer one, never an older one and never nothing.
#[test]
fn a_new_checkpoint_and_its_table_replace_the_old_pair_whole() {
    loom::model(|| {
        let kept = DocId::from_u128(1);
        let changed = DocId::from_u128(2);
        let records = records();
        write(&records, FIRST, 1);
        write(&records, FIRST + 64, 2);
        commit(&records, FIRST + 128);
        let segment = Segment::new(&records, &Arc::new(AtomicBool::new(false)));
        // The old checkpoint holds `kept` and the first version of `changed`.
        let old = Checkpoint(vec![
            (
                kept,
                Position {
                    segment: 1,
                    offset: FIRST,
                },
            ),
            (
                changed,
                Position {
                    segment: 1,
                    offset: FIRST + 64,
                },
            ),
        ]);
        let mut publisher = Publisher::new(
            [(1, segment)],
            Some(StdArc::new(old)),
            std::iter::empty(),
            2,
            2,
            0,
        );
        let published = Arc::clone(publisher.shared());
        let reader = thread::spawn(move || {
            assert_eq!(
                read(&published, kept),
                Some(1),
                "an unchanged document vanished"
            );
            let first = read(&published, changed).expect("a live document vanished");
            let second = read(&published, changed).expect("a live document vanished");
            assert!(second >= first, "went back from {first} to {second}");
        });
        // A newer version of `changed`, then a checkpoint that holds it and is swapped in
        // with an empty table.
        write(&records, FIRST + 128, 3);
        commit(&records, FIRST + 192);
        publisher.set(changed, at(1, FIRST + 128));
        publisher.finish(3, 2);
        let new = Checkpoint(vec![
            (
                kept,
                Position {
                    segment: 1,
                    offset: FIRST,
                },
            ),
            (
                changed,
                Position {
                    segment: 1,
                    offset: FIRST + 128,
                },
            ),
        ]);
        publisher.install_index(Some(StdArc::new(new)), std::iter::empty());
        reader.join().unwrap();
    });
}

/// The published position of the `LOCK` page, as loom's atomic.
struct PageCell(loom::sync::atomic::AtomicU64);

impl store_mmap::PositionCell for PageCell {
    fn store_u64(&self, value: u64, order: Ordering) {
        self.0.store(value, order);
    }

    fn load_u64(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
}

/// Claim: a reader in another process never reads a byte past, or not yet complete below,
/// the position the writer published, and sees the writer's commits in order. Runs
/// `store_mmap::publish_position` and `load_position`, the protocol of the `LOCK` page, over
/// loom's atomic: the records are cells the writer fills before it publishes, as `pwrite`
/// fills the page cache that the reader's own mapping shows.
#[test]
fn a_reader_process_never_reads_past_the_published_position() {
    loom::model(|| {
        let records = records();
        let page = Arc::new(PageCell(loom::sync::atomic::AtomicU64::new(0)));
        let reader = {
            let (records, page) = (Arc::clone(&records), Arc::clone(&page));
            thread::spawn(move || {
                let mut seen = FIRST;
                for _ in 0..2 {
                    let Some(bound) = store_mmap::load_position(&*page) else {
                        continue;
                    };
                    assert!(bound.offset >= seen, "the position went back");
                    let mut offset = FIRST;
                    while offset < bound.offset {
                        let value = records.cells[slot(offset)].with(|cell| {
                            #[expect(unsafe_code, reason = "a model of the mapped file's bytes")]
                            // SAFETY: loom checks that this read is ordered after the write.
                            unsafe {
                                *cell
                            }
                        });
                        assert_eq!(value, u64::from(offset), "an incomplete record");
                        offset += 64;
                    }
                    seen = bound.offset;
                }
            })
        };
        for offset in [FIRST, FIRST + 64] {
            write(&records, offset, u64::from(offset));
            store_mmap::publish_position(
                &*page,
                Position {
                    segment: 1,
                    offset: offset + 64,
                },
            );
        }
        reader.join().unwrap();
    });
}

/// Claim: a reader that finds a position in the location table sees every write the
/// writer made before it stored that position, for a newly claimed slot and for an
/// updated one. This checks the table's own release/acquire pair, with no other
/// synchronization between the threads.
#[test]
fn a_table_slot_is_visible_only_after_the_writes_before_it() {
    loom::model(|| {
        let id = DocId::from_u128(5);
        let records = records();
        let table = Arc::new(LocationTable::for_docs(1));
        let reader = {
            let (table, records) = (Arc::clone(&table), Arc::clone(&records));
            thread::spawn(move || {
                for _ in 0..2 {
                    if let Lookup::Live(position) = table.get(id) {
                        let value = records.cells[slot(position.offset)].with(|cell| {
                            #[expect(unsafe_code, reason = "a model of the mapped file's bytes")]
                            // SAFETY: loom checks that this read is ordered after the write.
                            unsafe {
                                *cell
                            }
                        });
                        assert_eq!(u64::from(position.offset), value, "wrong record bytes");
                    }
                }
            })
        };
        write(&records, FIRST, u64::from(FIRST));
        table.set(id, at(1, FIRST));
        write(&records, FIRST + 64, u64::from(FIRST + 64));
        table.set(id, at(1, FIRST + 64));
        reader.join().unwrap();
    });
}

/// Claim: while the writer rebuilds the location table (it filled up), a reader finds every
/// published document, in the old table or in the new one, and a document published in the
/// new table only after its bytes.
#[test]
fn a_table_rebuild_keeps_every_published_position_visible() {
    loom::model(|| {
        let old = DocId::from_u128(1);
        let new = DocId::from_u128(2);
        let records = records();
        write(&records, FIRST, 11);
        commit(&records, FIRST + 64);
        let segment = Segment::new(&records, &Arc::new(AtomicBool::new(false)));
        // Eleven documents fill a 16-slot table to one below its claim limit of twelve; the
        // ten fillers point at the same record as `old`, which is all a probe needs.
        let fillers = (100..110).map(|n| {
            (
                DocId::from_u128(n),
                Position {
                    segment: 1,
                    offset: FIRST,
                },
            )
        });
        let documents: Vec<_> = std::iter::once((
            old,
            Position {
                segment: 1,
                offset: FIRST,
            },
        ))
        .chain(fillers)
        .collect();
        let mut publisher =
            Publisher::new([(1, segment)], None, live(documents.into_iter()), 1, 11, 0);
        let published = Arc::clone(publisher.shared());
        let reader = thread::spawn(move || {
            assert_eq!(
                read(&published, old),
                Some(11),
                "a published document vanished"
            );
            if let Some(value) = read(&published, new) {
                assert_eq!(value, 22);
            }
        });
        write(&records, FIRST + 64, 22);
        commit(&records, FIRST + 128);
        // The twelfth claim triggers the rebuild.
        publisher.set(new, at(1, FIRST + 64));
        publisher.set(DocId::from_u128(200), at(1, FIRST + 64));
        publisher.finish(2, 13);
        reader.join().unwrap();
    });
}

/// Claim: a segment retired by compaction stays alive while a reader that found a document
/// in it still reads, the reader always finds the document (in the old segment or in the
/// compaction's output, whose id lies below the segment receiving writes), and the segment
/// is freed once the last reader lets go.
#[test]
fn a_retired_segment_lives_until_its_last_reader_lets_go() {
    loom::model(|| {
        let id = DocId::from_u128(3);
        let old_dropped = Arc::new(AtomicBool::new(false));
        let old_records = records();
        write(&old_records, FIRST, 1);
        commit(&old_records, FIRST + 64);
        let old = Segment::new(&old_records, &old_dropped);
        let active = Segment::new(&records(), &Arc::new(AtomicBool::new(false)));
        let mut publisher = Publisher::new(
            [(1, old), (3, active)],
            None,
            live(std::iter::once((
                id,
                Position {
                    segment: 1,
                    offset: FIRST,
                },
            ))),
            1,
            1,
            0,
        );
        let published = Arc::clone(publisher.shared());
        let reader = thread::spawn(move || {
            let value = read(&published, id).expect("the document exists throughout");
            assert!(value == 1 || value == 2, "read {value}");
        });
        // Compaction: copy the record into a new segment, repoint, retire the old one.
        let new_records = records();
        write(&new_records, FIRST, 2);
        commit(&new_records, FIRST + 64);
        let new = Segment::new(&new_records, &Arc::new(AtomicBool::new(false)));
        publisher.add_segment(2, new);
        assert!(
            publisher.has_segment(3),
            "the output goes in below the active segment"
        );
        publisher.set(id, at(2, FIRST));
        publisher.finish(2, 1);
        publisher.retire_segment(1);
        reader.join().unwrap();
        assert!(
            old_dropped.load(Ordering::SeqCst),
            "the retired segment is freed once no reader holds it"
        );
        drop(publisher);
    });
}

/// Claim: every ticket is completed exactly once and its waiter gets that outcome, whether
/// the writer completes it with a result, with an error, or drops it at shutdown; blocking
/// waits and future polls both wake up.
#[test]
fn every_ticket_is_completed_exactly_once() {
    loom::model(|| {
        let (ok, ok_ticket) = ticket::<u64>();
        let (failed, failed_ticket) = ticket::<u64>();
        let (discarded, discarded_ticket) = ticket::<u64>();
        let writer = thread::spawn(move || {
            ok.complete(Ok(5));
            failed.complete(Err(Error::QueueFull { capacity: 1 }));
            drop(discarded);
        });
        let waiter = thread::spawn(move || {
            assert!(matches!(
                failed_ticket.wait(),
                Err(Error::QueueFull { capacity: 1 })
            ));
        });
        assert_eq!(loom::future::block_on(ok_ticket).unwrap(), 5);
        assert!(matches!(discarded_ticket.wait(), Err(Error::Closed)));
        writer.join().unwrap();
        waiter.join().unwrap();
    });
}

/// Claim: a bulk reader (a scan, a change feed) never takes the segment list from the
/// middle of a replacement, where a compaction's input and its output are both listed (or
/// neither), and a list from after the replacement comes with the change floor it set.
#[test]
fn a_bulk_reader_takes_no_list_from_the_middle_of_a_replacement() {
    loom::model(|| {
        // The segments are their ids: the claim is about which ones are listed.
        let publisher = Publisher::new([(1, 1u32)], None, std::iter::empty(), 1, 1, 0);
        let published = Arc::clone(publisher.shared());
        let reader = thread::spawn(move || {
            let list = published.stable_segments();
            let floor = published.change_floor();
            assert!(
                list == [1] || (list == [2] && floor == 5),
                "a bulk reader took {list:?} with floor {floor}"
            );
        });
        publisher.begin_replacement();
        publisher.add_segment(2, 2);
        publisher.retire_segment(1);
        publisher.end_replacement(5);
        reader.join().unwrap();
    });
}
