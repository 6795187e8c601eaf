//! The read-only handle beside a writer: lock-free reads of what it has refreshed to, the
//! writer's commits, checkpoints and compactions brought in by `refresh`, and every change
//! refused at submission.

use store_concurrent::{ConcurrentStore, Error, WriterOptions};
use store_mmap::{DocRead, Refreshed, StoreOptions, WriteBatch};

use crate::{create, id};

/// A read-only handle on the store `create` made in `dir`.
fn open_reader(dir: &std::path::Path) -> ConcurrentStore {
    ConcurrentStore::open_read_only(
        dir.join("store"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap()
}

fn text(store: &ConcurrentStore, k: u64) -> Option<String> {
    store.get(id(k)).unwrap().map(|doc| doc.to_string())
}

#[test]
fn a_read_only_handle_follows_the_writer_through_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let writer = create(dir.path(), WriterOptions::default());
    writer.put(id(1), "one").unwrap().wait().unwrap();
    let reader = open_reader(dir.path());
    assert_eq!(text(&reader, 1).as_deref(), Some("one"));
    let refused = reader.put(id(2), "no");
    assert!(
        matches!(
            refused,
            Err(Error::Store(store_mmap::Error::ReadOnly { .. }))
        ),
        "{:?}",
        refused.err()
    );
    assert!(reader.sync().is_err());

    // Readers on other threads read lock-free while the handle refreshes.
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                scope.spawn(move || {
                    let mut last = 0u64;
                    for _ in 0..2000 {
                        if let Some(found) = text(&reader, 5) {
                            let round: u64 = found.parse().unwrap();
                            assert!(round >= last, "went back from {last} to {round}");
                            last = round;
                        }
                    }
                })
            })
            .collect();
        for round in 0..50u64 {
            let mut batch = WriteBatch::new();
            batch.put(id(5), &round.to_string());
            batch.put(id(6), &round.to_string());
            writer.put_batch(batch).unwrap().wait().unwrap();
            assert_ne!(reader.refresh().unwrap(), Refreshed::Unchanged);
            assert_eq!(text(&reader, 5), Some(round.to_string()));
            assert_eq!(text(&reader, 6), Some(round.to_string()));
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });

    // A checkpoint and a compaction on the writer's side: the next refresh reloads.
    for k in 0..200 {
        writer
            .put(id(100 + k % 10), format!("{k}"))
            .unwrap()
            .wait()
            .unwrap();
    }
    writer.compact().unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    for k in 0..10 {
        assert_eq!(text(&reader, 100 + k), text(&writer, 100 + k));
    }
    assert_eq!(reader.len(), writer.len());
    let mut ids: Vec<store_mmap::DocId> = reader.ids().unwrap().collect::<Result<_, _>>().unwrap();
    ids.sort();
    let mut expected: Vec<store_mmap::DocId> =
        writer.ids().unwrap().collect::<Result<_, _>>().unwrap();
    expected.sort();
    assert_eq!(ids, expected);
    reader.close().unwrap();
    writer.close().unwrap();
}

/// Copies the store's files, as a process killed now would leave them, and opens the copy.
fn crash_copy(from: &std::path::Path, to: &std::path::Path) -> store_mmap::Store {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        // A checkpoint's temporary file may be renamed meanwhile.
        let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
    }
    store_mmap::Store::open(to, StoreOptions::new()).unwrap()
}

/// Once the writer thread has had no request for a while it has every change covered, so a
/// crash of an idle process replays nothing: in a new store by its first index checkpoint,
/// in a store with an index file by a synced journal frame, without rewriting the file.
#[test]
fn an_idle_writer_covers_its_changes_so_that_a_crash_replays_nothing() {
    for with_index_file in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = create(dir.path(), WriterOptions::default());
        if with_index_file {
            writer.put(id(1000), "before").unwrap().wait().unwrap();
            writer.close().unwrap();
            writer = ConcurrentStore::open(
                dir.path().join("store"),
                StoreOptions::new(),
                WriterOptions::default(),
            )
            .unwrap();
        }
        let expected = 100 + usize::from(with_index_file);
        for k in 0..100 {
            writer
                .put(id(k), format!("text {k}"))
                .unwrap()
                .wait()
                .unwrap();
        }
        let before = crash_copy(&dir.path().join("store"), &dir.path().join("copy-0"));
        assert!(
            before.recovery().bytes_replayed > 0,
            "nothing to replay yet"
        );
        drop(before);
        // The writer thread acts after a second without requests; poll for the effect.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut attempt = 1;
        loop {
            let copy = crash_copy(
                &dir.path().join("store"),
                &dir.path().join(format!("copy-{attempt}")),
            );
            if copy.recovery().bytes_replayed == 0 {
                assert_eq!(copy.len(), expected);
                assert_eq!(
                    copy.recovery().journal_frames > 0,
                    with_index_file,
                    "{:?}",
                    copy.recovery()
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing covers the changes of an idle writer: an open still replays {} bytes",
                copy.recovery().bytes_replayed
            );
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if with_index_file {
            assert_eq!(
                writer.stats().unwrap().checkpoints(),
                0,
                "the index file was rewritten at the pause"
            );
        }
        writer.close().unwrap();
    }
}

/// A read-only handle follows the writer's changes with the feed, and a refresh that brings
/// in a compaction brings its change floor too: a feed from before the dropped delete is
/// refused by the reader as by the writer.
#[test]
fn a_read_only_handle_follows_changes_and_the_change_floor() {
    let dir = tempfile::tempdir().unwrap();
    let writer = create(dir.path(), WriterOptions::default());
    writer.put(id(1), "one").unwrap().wait().unwrap();
    writer.put(id(2), "two").unwrap().wait().unwrap();
    let reader = open_reader(dir.path());
    let scan = reader.scan().unwrap();
    let position = scan.as_of();
    assert_eq!(scan.count(), 2);

    writer.delete(id(1)).unwrap().wait().unwrap();
    let deleted = writer.last_seq();
    writer.put(id(3), "three").unwrap().wait().unwrap();
    assert_ne!(reader.refresh().unwrap(), Refreshed::Unchanged);
    let changes: Vec<store_mmap::Change> = reader
        .changes_since(position)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let seqs: Vec<u64> = changes.iter().map(store_mmap::Change::seq).collect();
    assert_eq!(seqs, [deleted, deleted + 1]);
    assert!(matches!(changes[0], store_mmap::Change::Delete { .. }));

    writer.compact().unwrap();
    assert_eq!(writer.change_floor(), deleted);
    assert_eq!(reader.change_floor(), 0, "not before the reader refreshes");
    reader.refresh().unwrap();
    assert_eq!(reader.change_floor(), deleted);
    assert!(matches!(
        reader.changes_since(position),
        Err(Error::Store(store_mmap::Error::ChangesCompacted { .. }))
    ));
    assert_eq!(reader.changes_since(deleted).unwrap().count(), 1);
}

/// A refresh that reloads the view (the writer wrote a checkpoint, so the index file is
/// another) maps the segments anew: readers get the new views before the index that
/// points into them, and the refreshes after it move those views' ends, so documents the
/// writer commits later read back whole.
#[test]
fn documents_committed_after_a_reload_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let writer = create(dir.path(), WriterOptions::default());
    writer.put(id(1), "one").unwrap().wait().unwrap();
    let reader = open_reader(dir.path());
    for round in 0..5u64 {
        writer.checkpoint().unwrap();
        writer
            .put(id(10 + round), "before")
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(
            reader.refresh().unwrap(),
            Refreshed::Reloaded,
            "round {round}"
        );
        assert_eq!(text(&reader, 10 + round).as_deref(), Some("before"));
        for k in 0..20 {
            writer
                .put(id(100 * (round + 1) + k), "after")
                .unwrap()
                .wait()
                .unwrap();
        }
        assert!(matches!(
            reader.refresh().unwrap(),
            Refreshed::Appended { .. }
        ));
        for k in 0..20 {
            assert_eq!(
                text(&reader, 100 * (round + 1) + k).as_deref(),
                Some("after"),
                "round {round}, document {k}"
            );
        }
    }
}

/// A reload that brings the writer's compaction takes the segments it replaced out of the
/// reader's list: the reader's scan and change feed then list each record once, as the
/// writer's do, and its placement epoch counts every segment retired.
#[test]
fn a_reload_retires_the_segments_the_writers_compaction_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(2000);
    let writer =
        ConcurrentStore::create(dir.path().join("store"), options, WriterOptions::default())
            .unwrap();
    for k in 0..300u64 {
        let text = format!("{k}:{}", "x".repeat(200));
        writer.put(id(k % 40), text).unwrap().wait().unwrap();
    }
    let reader = open_reader(dir.path());
    let compacted = writer.compact().unwrap();
    assert!(compacted.segments_in > 1, "{compacted:?}");
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);

    assert_eq!(DocRead::placement_epoch(&reader), compacted.segments_in);
    let scanned = |store: &ConcurrentStore| -> Vec<(store_mmap::DocId, u64)> {
        let mut docs: Vec<_> = store
            .scan()
            .unwrap()
            .map(|doc| doc.map(|(id, doc)| (id, doc.seq())))
            .collect::<Result<_, _>>()
            .unwrap();
        docs.sort();
        docs
    };
    assert_eq!(scanned(&reader), scanned(&writer));
    assert_eq!(scanned(&reader).len(), 40);
    let changes = |store: &ConcurrentStore| -> Vec<u64> {
        store
            .changes_since(writer.change_floor())
            .unwrap()
            .map(|change| change.map(|change| change.seq()))
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(reader.change_floor(), writer.change_floor());
    assert_eq!(changes(&reader), changes(&writer));
}
