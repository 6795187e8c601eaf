//! Scans and the change feed: the checks the engine's model test (`model.rs`) runs after
//! every step against its `BTreeMap` and a log of every committed change, through puts,
//! batches, deletes, reopens, crashes and compactions; and the change floor and the
//! segments' sequence marks on their own.

use std::collections::{BTreeMap, BTreeSet};

use store_mmap::{Change, DocId, Error, Store, StoreOptions};

use crate::{Fixture, id};

/// The model test's keys are below this.
const KEYS: u64 = 12;

/// One committed change: its sequence number, document and text (`None`: a delete).
pub(crate) type Logged = (u64, u64, Option<String>);

/// Records the changes of a commit that moved the last sequence number from `before`.
pub(crate) fn log_commit(
    log: &mut Vec<Logged>,
    store: &Store,
    before: u64,
    ops: &[(u64, Option<String>)],
) {
    let after = store.last_seq();
    assert_eq!(
        after - before,
        ops.len() as u64,
        "one sequence number per operation"
    );
    for (seq, (k, text)) in (before + 1..).zip(ops) {
        log.push((seq, *k, text.clone()));
    }
}

/// The scan yields every live document once, at its latest version.
pub(crate) fn check_scan(store: &Store, model: &BTreeMap<u64, String>, log: &[Logged]) {
    let scan = store.scan();
    assert_eq!(scan.as_of(), store.last_seq());
    let mut seen = BTreeMap::new();
    for found in scan {
        let (doc_id, doc) = found.unwrap();
        let key = (0..KEYS)
            .find(|k| id(*k) == doc_id)
            .unwrap_or_else(|| panic!("{doc_id} is no key of the model"));
        let latest = log.iter().rev().find(|(_, k, _)| *k == key).unwrap();
        assert_eq!(doc.seq(), latest.0, "document {key} at its latest version");
        assert!(
            seen.insert(key, doc.to_string()).is_none(),
            "document {key} scanned twice"
        );
    }
    assert_eq!(&seen, model);
}

/// The feed from each interesting point: refused below the floor and past the end;
/// otherwise in sequence order, every change it yields as logged, every delete and every
/// latest version there, and exactly the log's suffix while nothing was compacted.
pub(crate) fn check_feed(store: &Store, log: &[Logged], compacted: bool) {
    let last = store.last_seq();
    let floor = store.change_floor();
    assert!(
        compacted || floor == 0,
        "the floor rises only by compaction"
    );
    let mut points: BTreeSet<u64> = [0, floor.saturating_sub(1), floor, last / 2, last, last + 1]
        .into_iter()
        .collect();
    points.extend(log.iter().map(|(seq, ..)| *seq).step_by(7));
    for since in points {
        let feed = store.changes_since(since);
        if since < floor {
            assert!(
                matches!(feed, Err(Error::ChangesCompacted { since: s, floor: f }) if s == since && f == floor),
                "since {since} below floor {floor}"
            );
            continue;
        }
        if since > last {
            assert!(matches!(feed, Err(Error::ChangesAhead { .. })));
            continue;
        }
        let feed = feed.unwrap();
        assert_eq!(feed.upto(), last, "the feed reaches the last commit");
        assert_eq!(feed.reached(), last);
        let changes: Vec<Change> = feed.collect::<Result<_, _>>().unwrap();
        let mut previous = since;
        for change in &changes {
            assert!(change.seq() > previous && change.seq() <= last);
            previous = change.seq();
            let (_, key, text) = log
                .iter()
                .find(|(seq, ..)| *seq == change.seq())
                .expect("every change was logged");
            assert_eq!(change.id(), id(*key));
            match change {
                Change::Put { doc, .. } => assert_eq!(Some(doc.to_string()), text.clone()),
                Change::Delete { .. } => assert_eq!(text, &None),
            }
        }
        let yielded: BTreeSet<u64> = changes.iter().map(Change::seq).collect();
        let mut latest = BTreeMap::new();
        for (seq, key, text) in log.iter().filter(|(seq, ..)| *seq > since) {
            latest.insert(*key, *seq);
            if text.is_none() {
                assert!(
                    yielded.contains(seq),
                    "the delete at seq {seq} is in the feed"
                );
            }
        }
        for seq in latest.values() {
            assert!(
                yielded.contains(seq),
                "the latest version at seq {seq} is in the feed"
            );
        }
        if !compacted {
            let suffix = log.iter().filter(|(seq, ..)| *seq > since).count();
            assert_eq!(changes.len(), suffix);
        }
    }
}

/// A compaction that drops a delete raises the change floor to it, for good: a feed from
/// below is refused with an error that says to rescan, across a reopen and in a read-only
/// open; from the floor on it works.
#[test]
fn a_dropped_delete_raises_the_change_floor_and_the_feed_says_rescan() {
    let mut f = Fixture::new();
    f.store().put(id(1), "one").unwrap();
    f.store().put(id(2), "two").unwrap();
    f.store().delete(id(1)).unwrap();
    let deleted_at = f.store().last_seq();
    f.store().put(id(2), "two again").unwrap();
    assert_eq!(f.store().change_floor(), 0);
    assert_eq!(f.store().changes_since(0).unwrap().count(), 4);
    let report = f.store().compact().unwrap();
    assert!(report.tombstones_dropped >= 1, "{report:?}");
    assert_eq!(f.store().change_floor(), deleted_at);
    let err = f.store().changes_since(deleted_at - 1).err().unwrap();
    assert!(err.to_string().contains("rescan"), "{err}");
    let feed = f.store().changes_since(deleted_at).unwrap();
    assert_eq!(feed.since(), deleted_at);
    let changes: Vec<Change> = feed.collect::<Result<_, _>>().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].id(), id(2));
    f.reopen();
    assert_eq!(f.store().change_floor(), deleted_at);
    let reader = Store::open_read_only(f.path(), StoreOptions::new()).unwrap();
    assert_eq!(reader.change_floor(), deleted_at);
    assert!(matches!(
        reader.changes_since(0),
        Err(Error::ChangesCompacted { since: 0, floor }) if floor == deleted_at
    ));
}

/// A feed starts at the marks earlier walks left in a segment (one record about every
/// 64 KiB) instead of at the segment's start: from every position, before and after the
/// marks exist and as the segment grows past them, it yields exactly the changes after it.
#[test]
fn feeds_from_anywhere_in_a_large_segment_are_exact() {
    let mut f = Fixture::new();
    let text = "m".repeat(200);
    let write = |f: &mut Fixture, from: u64, to: u64| {
        for k in from..to {
            if k % 10 == 9 {
                f.store().delete(id(k - 1)).unwrap();
            } else {
                f.store().put(id(k), &text).unwrap();
            }
        }
    };
    write(&mut f, 0, 3000);
    let check = |store: &Store| {
        let last = store.last_seq();
        for since in (0..=last).step_by(97).chain([last - 1, last]) {
            let seqs: Vec<u64> = store
                .changes_since(since)
                .unwrap()
                .map(|change| change.unwrap().seq())
                .collect();
            assert_eq!(
                seqs,
                (since + 1..=last).collect::<Vec<_>>(),
                "since {since}"
            );
        }
    };
    // The first feeds walk from the start and leave marks; the later ones start at them.
    check(f.store());
    check(f.store());
    write(&mut f, 3000, 4000);
    check(f.store());
    // A scan leaves marks too, in the segments it walks.
    f.reopen();
    assert!(f.store().scan().count() > 0);
    check(f.store());
}

/// A delete is never reported from a damaged tombstone: a tombstone's header decodes on
/// its own, and a flipped bit in its id would name another document, so the feed checks
/// the whole record (whose checksum covers the id) before it yields the delete, and fails
/// naming the file and offset.
#[test]
fn the_feed_reports_no_delete_from_a_damaged_tombstone() {
    let mut f = Fixture::new();
    f.store().put(id(1), "one").unwrap();
    f.store().delete(id(1)).unwrap();
    f.close();
    let segment = f.segment_files()[0].clone();
    // The segment header (64 bytes), then the put (48 + 3 bytes, padded to 56).
    let tombstone = 64 + 56;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[tombstone + 16] ^= 0x04;
    std::fs::write(&segment, bytes).unwrap();

    let changes: Vec<_> = f.reopen().changes_since(0).unwrap().collect();
    assert!(matches!(&changes[0], Ok(Change::Put { .. })), "{changes:?}");
    match &changes[1] {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!((path, *offset), (&segment, tombstone as u64), "{changes:?}");
        }
        other => panic!("a delete reported from a damaged tombstone: {other:?}"),
    }
}

/// A batch that spanned segments and was cut short by a crash before its last part left
/// its first part on disk, abandoned: no change of it is the store's, so the feed reports
/// none of them, whether the part still ends its segment's data or a write after the open
/// follows it there, and reports that later write.
#[test]
fn the_feed_reports_nothing_of_a_part_a_crash_abandoned() {
    let mut f = Fixture::with(crate::compaction::small_segments());
    crate::compaction::put_a_batch_spanning_segments_2_and_3(&mut f);
    f.crash();
    std::fs::remove_file(crate::segment_files(&f.path()).last().unwrap()).unwrap();
    assert!(f.reopen().recovery().records_abandoned > 0);

    let ids = |f: &mut Fixture| -> Vec<(DocId, bool)> {
        f.store()
            .changes_since(0)
            .unwrap()
            .map(|change| match change.unwrap() {
                Change::Put { id: doc, .. } => (doc, true),
                Change::Delete { id: doc, .. } => (doc, false),
            })
            .collect()
    };
    let written: Vec<(DocId, bool)> = [0, 10, 11, 12, 13, 14].map(|k| (id(k), true)).to_vec();
    assert_eq!(ids(&mut f), written);
    f.store().put(id(20), "written after the crash").unwrap();
    let mut with_later = written;
    with_later.push((id(20), true));
    assert_eq!(ids(&mut f), with_later);
}
