//! Compaction through the concurrent handle: readers and writers go on, and the automatic
//! policy runs on its own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::fault::{FaultOp, FaultStorage};
use store_mmap::{CompactionPolicy, DocRead, Storage, StoreOptions};

use crate::{id, reopen};

const DOCS: u64 = 200;

fn open(dir: &Path, policy: CompactionPolicy) -> ConcurrentStore {
    open_with(dir, policy, StoreOptions::new())
}

fn open_with(dir: &Path, policy: CompactionPolicy, options: StoreOptions) -> ConcurrentStore {
    let options = options.segment_capacity(16 << 10).max_document_bytes(2000);
    ConcurrentStore::open_or_create(
        dir.join("store"),
        options,
        WriterOptions::default().compaction(policy),
    )
    .unwrap()
}

/// Version `v` of document `k`; a reader can tell which version it got.
fn text(k: u64, v: u64) -> String {
    format!("{k}:{v}:{}", "ü".repeat((k % 50) as usize))
}

fn version(k: u64, text: &str) -> u64 {
    let rest = text
        .strip_prefix(&format!("{k}:"))
        .expect("the document's own text");
    let (v, tail) = rest.split_once(':').expect("a version");
    assert_eq!(tail, "ü".repeat((k % 50) as usize), "document {k} damaged");
    v.parse().unwrap()
}

/// Waits until `done` holds, checking every few milliseconds, within a bound far beyond
/// what the threads it waits for need: one that never gets there fails the test, with
/// `what`, instead of hanging it.
fn wait_until(done: impl Fn() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `rounds` versions of every document.
fn churn(store: &ConcurrentStore, rounds: std::ops::Range<u64>) {
    for v in rounds {
        for k in 0..DOCS {
            store.put(id(k), text(k, v)).unwrap().wait().unwrap();
        }
    }
}

#[test]
fn readers_and_writers_go_on_while_the_store_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), CompactionPolicy::manual());
    churn(&store, 0..3);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // Versions only move forward, whatever segment a document is read from.
                let mut seen = vec![0u64; DOCS as usize];
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for k in 0..DOCS {
                        let doc = store.get(id(k)).unwrap().expect("never deleted");
                        let v = version(k, doc.text().as_str());
                        assert!(v >= seen[k as usize], "document {k} went back to {v}");
                        seen[k as usize] = v;
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || churn(&store, 3..8))
    };
    let mut compactions = 0;
    for _ in 0..4 {
        let report = store.compact().unwrap();
        compactions += u64::from(report.segments_in > 0);
    }
    writer.join().unwrap();
    let report = store.compact().unwrap();
    assert!(report.segments_in > 0, "{report:?}");
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert!(compactions > 0);
    assert_eq!(store.compaction_stats().completed(), compactions + 1);
    for k in 0..DOCS {
        assert_eq!(
            store.get(id(k)).unwrap().unwrap().text().as_str(),
            text(k, 7)
        );
    }
    // With the readers gone, the next checkpoint removes every replaced segment.
    store.checkpoint().unwrap();
    store.close().unwrap();
    assert!(!dir.path().join("store/retired.tsr").exists());

    let reopened = reopen(dir.path());
    assert_eq!(reopened.recovery().retired_segments_removed, 0);
    for k in 0..DOCS {
        assert_eq!(
            reopened.get(id(k)).unwrap().unwrap().text().as_str(),
            text(k, 7)
        );
    }
    let stats = reopened.stats().unwrap();
    // Only the writes after the last compaction can be dead.
    assert!(stats.dead_ratio() < 0.5, "{stats:?}");
    assert!(reopened.verify().is_clean());
}

/// The placement epoch (what a cache over the handle watches to drop the texts it holds)
/// moves on by the segments each compaction retires, and by nothing else.
#[test]
fn the_placement_epoch_counts_the_segments_compactions_retire() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), CompactionPolicy::manual());
    churn(&store, 0..3);
    assert_eq!(DocRead::placement_epoch(&store), 0);
    let first = store.compact().unwrap();
    assert!(first.segments_in > 1, "{first:?}");
    assert_eq!(DocRead::placement_epoch(&store), first.segments_in);
    // Writes and reads leave it.
    churn(&store, 3..4);
    assert_eq!(
        store.get(id(0)).unwrap().unwrap().text().as_str(),
        text(0, 3)
    );
    assert_eq!(DocRead::placement_epoch(&store), first.segments_in);
    churn(&store, 4..7);
    let second = store.compact().unwrap();
    assert!(second.segments_in > 0, "{second:?}");
    assert_eq!(
        DocRead::placement_epoch(&store),
        first.segments_in + second.segments_in
    );
}

/// The handle's compaction stats add up the reports of the compactions it ran, and show
/// them to an exporter under their metric names.
#[test]
fn compaction_stats_add_up_the_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), CompactionPolicy::manual());
    let mut reports = Vec::new();
    for round in 0..2 {
        churn(&store, 3 * round..3 * round + 3);
        reports.push(store.compact().unwrap());
    }
    let sum =
        |field: fn(&store_mmap::CompactionReport) -> u64| reports.iter().map(field).sum::<u64>();
    let (bytes_in, bytes_out) = (sum(|r| r.bytes_in), sum(|r| r.bytes_out));
    assert!(bytes_out > 0 && bytes_out < bytes_in, "{reports:?}");
    let stats = store.compaction_stats();
    assert_eq!(
        (
            stats.completed(),
            stats.failed(),
            stats.bytes_in(),
            stats.bytes_out()
        ),
        (2, 0, bytes_in, bytes_out)
    );
    let figures = store_format::Figures::of(&stats);
    let figure = |name| figures.get(name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(figure("textstore_compactions_total"), 2.0);
    assert_eq!(figure("textstore_compactions_failed_total"), 0.0);
    assert_eq!(
        figure("textstore_compaction_read_bytes_total"),
        bytes_in as f64
    );
    assert_eq!(
        figure("textstore_compaction_written_bytes_total"),
        bytes_out as f64
    );
}

#[test]
fn the_automatic_policy_compacts_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CompactionPolicy {
        dead_ratio: Some(0.3),
        min_dead_bytes: 32 << 10,
        max_bytes_per_sec: None,
        ..CompactionPolicy::default()
    };
    let store = open(dir.path(), policy);
    churn(&store, 0..6);
    // The compaction thread runs on its own schedule.
    wait_until(
        || store.compaction_stats().completed() > 0,
        || format!("no automatic compaction: {:?}", store.compaction_stats()),
    );
    let stats = store.compaction_stats();
    assert!(stats.bytes_out() < stats.bytes_in(), "{stats:?}");
    assert_eq!(stats.failed(), 0, "{stats:?}");
    for k in 0..DOCS {
        assert_eq!(
            store.get(id(k)).unwrap().unwrap().text().as_str(),
            text(k, 5)
        );
    }
    store.close().unwrap();
    let reopened = reopen(dir.path());
    for k in 0..DOCS {
        assert_eq!(
            reopened.get(id(k)).unwrap().unwrap().text().as_str(),
            text(k, 5)
        );
    }
    assert!(reopened.verify().is_clean());
}

#[test]
fn closing_cancels_a_compaction_held_back_by_its_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CompactionPolicy {
        dead_ratio: Some(0.1),
        min_dead_bytes: 1,
        // A byte per second: the copy cannot finish before the close.
        max_bytes_per_sec: Some(1),
        ..CompactionPolicy::default()
    };
    let store = open(dir.path(), policy);
    churn(&store, 0..4);
    store.close().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let reopened = reopen(dir.path());
    assert_eq!(reopened.recovery().unfinished_compaction_files_removed, 0);
    for k in 0..DOCS {
        assert_eq!(
            reopened.get(id(k)).unwrap().unwrap().text().as_str(),
            text(k, 3)
        );
    }
}

#[test]
fn a_replaced_segment_a_reader_held_goes_once_it_lets_go_without_another_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), CompactionPolicy::manual());
    churn(&store, 0..1);
    // Version 0 of document 0 is the first record of the first segment.
    let held = store.get(id(0)).unwrap().unwrap();
    churn(&store, 1..2);
    let first = dir.path().join("store/0000000001.seg");
    let report = store.compact().unwrap();
    assert!(report.segments_in >= 1, "{report:?}");
    assert!(first.exists(), "a reader holds it");
    // The text stays readable while it is held.
    assert_eq!(version(0, held.text().as_str()), 0);

    drop(held);
    // No write follows: the writer removes it when idle.
    wait_until(
        || !first.exists(),
        || "the replaced segment is still on disk".to_owned(),
    );
    for k in 0..DOCS {
        assert_eq!(version(k, store.get(id(k)).unwrap().unwrap().text()), 1);
    }
    store.close().unwrap();
}

/// Whether version 9 of document `k`, put from another thread, commits within 10 s (so that
/// a commit that hangs fails the test instead of stalling it).
fn commits(store: &ConcurrentStore, k: u64) -> bool {
    let (done, committed) = std::sync::mpsc::channel();
    let writer = store.clone();
    std::thread::spawn(move || {
        let seq = writer.put(id(k), text(k, 9)).unwrap().wait();
        let _ = done.send(seq);
    });
    matches!(committed.recv_timeout(Duration::from_secs(10)), Ok(Ok(_)))
}

/// The file of a replaced segment is removed without the writer's core: commits go on
/// while the removal is under way (the unlink of a large cached file takes tens of
/// milliseconds), and the file goes once it ends.
#[test]
fn commits_go_on_while_a_replaced_segment_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    // No spare files: every replaced segment is removed.
    let options = StoreOptions::new()
        .spare_files(0)
        .storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let store = open_with(dir.path(), CompactionPolicy::manual(), options);
    churn(&store, 0..2);
    let first = dir.path().join("store/0000000001.seg");

    storage.hold(FaultOp::Remove, &first);
    // `compact` returns once the replaced segments nothing holds are removed.
    let compacting = {
        let store = store.clone();
        std::thread::spawn(move || store.compact())
    };
    // The writer thread takes the removal after the checkpoint, and waits at the hold.
    wait_until(
        || storage.waiting(FaultOp::Remove, &first) > 0,
        || "no removal started".to_owned(),
    );

    assert!(commits(&store, 0), "a commit waited for the removal");
    assert!(first.exists(), "the removal is still held");
    assert_eq!(version(0, store.get(id(0)).unwrap().unwrap().text()), 9);

    // A request for the writer thread queued during the removal waits for it; commits do
    // not wait for the request.
    let asking = {
        let store = store.clone();
        std::thread::spawn(move || store.stats())
    };
    assert!(
        commits(&store, 1),
        "a commit waited for a request that waited for the removal"
    );

    assert!(
        !compacting.is_finished(),
        "compact returned before the removal"
    );

    storage.release(FaultOp::Remove, &first);
    let report = compacting.join().unwrap().unwrap();
    assert!(report.segments_in >= 1, "{report:?}");
    assert!(!first.exists(), "the replaced segment is still on disk");
    asking.join().unwrap().unwrap();
    store.close().unwrap();
    let reopened = reopen(dir.path());
    assert_eq!(reopened.recovery().retired_segments_removed, 0);
    for k in 2..DOCS {
        assert_eq!(version(k, reopened.get(id(k)).unwrap().unwrap().text()), 1);
    }
    for k in 0..2 {
        assert_eq!(version(k, reopened.get(id(k)).unwrap().unwrap().text()), 9);
    }
}

/// The policy's compaction, due on a file system without room for its copies, is refused
/// once and then waits instead of failing again at every commit; a compaction asked for is
/// refused too, and runs once there is room.
#[test]
fn a_due_compaction_without_room_is_refused_once_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    storage.set_available_bytes(Some(0));
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let policy = CompactionPolicy {
        dead_ratio: Some(0.3),
        min_dead_bytes: 32 << 10,
        max_bytes_per_sec: None,
        ..CompactionPolicy::default()
    };
    let store = open_with(dir.path(), policy, options);
    // New versions of half the documents: the segments of the first versions keep the
    // other half live, which a compaction must copy.
    churn(&store, 0..1);
    let churn_half = |versions: std::ops::Range<u64>| {
        for v in versions {
            for k in 0..DOCS / 2 {
                store.put(id(k), text(k, v)).unwrap().wait().unwrap();
            }
        }
    };
    churn_half(1..6);
    // The compaction thread answers the commits' nudges on its own schedule.
    wait_until(
        || store.compaction_stats().failed() > 0,
        || format!("no compaction tried: {:?}", store.compaction_stats()),
    );
    // Segments wholly dead need no room, and may have gone before the refusal; none goes
    // during the wait. Every one of these commits finds the policy due and nudges the
    // thread.
    let completed = store.compaction_stats().completed();
    churn_half(6..8);
    let stats = store.compaction_stats();
    assert_eq!(
        (stats.completed(), stats.failed()),
        (completed, 1),
        "{stats:?}"
    );
    let error = stats.last_error().unwrap();
    assert!(
        error.contains("for its copies and the file system has 0 available"),
        "{error}"
    );

    // A compaction asked for copies nothing either: it takes the segments wholly dead, if
    // the policy's left any, and counts the rest.
    match store.compact() {
        Err(store_concurrent::Error::Store(store_mmap::Error::NoRoomToCompact {
            available_bytes: 0,
            ..
        })) => {}
        Ok(report) if report.records_copied == 0 && report.segments_left > 0 => {}
        other => panic!("expected the copies refused for room, got {other:?}"),
    }
    storage.set_available_bytes(None);
    let report = store.compact().unwrap();
    assert!(report.segments_in > 0, "{report:?}");
    for k in 0..DOCS {
        let expected = if k < DOCS / 2 { 7 } else { 0 };
        assert_eq!(
            version(k, store.get(id(k)).unwrap().unwrap().text()),
            expected
        );
    }
}

/// `compact` on a file system with no room for copies: refused when every segment it
/// would take needs copies; when some are wholly dead, it takes those (they need no room)
/// and reports the rest as left, rather than failing for them.
#[test]
fn compact_without_room_takes_what_needs_none_and_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let store = open_with(dir.path(), CompactionPolicy::manual(), options);
    // About ten documents a segment.
    let put = |k: u64, v: u64| {
        let text = format!("{v}:{}", "b".repeat(1500));
        store.put(id(k), text).unwrap().wait().unwrap();
    };
    let version = |k: u64| -> u64 {
        let doc = store.get(id(k)).unwrap().unwrap();
        doc.text().split_once(':').unwrap().0.parse().unwrap()
    };
    const KEYS: u64 = 40;
    (0..KEYS).for_each(|k| put(k, 0));
    // Every other document again: each segment of the first versions keeps the others.
    (0..KEYS).step_by(2).for_each(|k| put(k, 1));
    storage.set_available_bytes(Some(0));
    match store.compact() {
        Err(store_concurrent::Error::Store(store_mmap::Error::NoRoomToCompact {
            available_bytes: 0,
            ..
        })) => {}
        other => panic!("expected the copies refused for room, got {other:?}"),
    }

    // The first half again: the segments that held only its versions are wholly dead.
    (0..KEYS / 2).for_each(|k| put(k, 2));
    let report = store.compact().unwrap();
    assert!(report.segments_in > 0, "{report:?}");
    assert_eq!(report.records_copied, 0, "{report:?}");
    assert!(report.segments_left > 0, "{report:?}");
    for k in 0..KEYS {
        let expected = if k < KEYS / 2 { 2 } else { (k + 1) % 2 };
        assert_eq!(version(k), expected, "document {k}");
    }
}

/// `compact` on a file system without room for all its copies at once goes in rounds, as
/// the engine's does, and ends with every dead byte gone.
#[test]
fn compact_short_of_room_goes_in_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let store = open_with(dir.path(), CompactionPolicy::manual(), options);
    churn(&store, 0..1);
    for k in (0..DOCS).step_by(2) {
        store.put(id(k), text(k, 1)).unwrap().wait().unwrap();
    }
    store.checkpoint().unwrap();
    let before = store.stats().unwrap();
    // Room for two thirds of the copies, besides the index file each round writes: the
    // copies of either segment fit, not both.
    storage.set_available_bytes(Some(
        before.compaction_copy_bytes() * 2 / 3 + before.index_file_bytes(),
    ));
    let report = store.compact().unwrap();
    assert_eq!(report.segments_left, 0, "{report:?}");
    assert_eq!(store.stats().unwrap().dead_bytes(), 0);
    assert!(
        store.compaction_stats().completed() >= 2,
        "{:?}",
        store.compaction_stats()
    );
    for k in 0..DOCS {
        let expected = u64::from(k % 2 == 0);
        assert_eq!(
            version(k, store.get(id(k)).unwrap().unwrap().text()),
            expected
        );
    }
}
