//! The read-only handle beside a writer: lock-free reads of what it has refreshed to, the
//! writer's commits, checkpoints and compactions brought in by `refresh`, and every change
//! refused at submission.

use store_concurrent::{ConcurrentStore, Error, WriterOptions};
use store_mmap::{Refreshed, StoreOptions, WriteBatch};

use crate::{create, id};

fn text(store: &ConcurrentStore, k: u64) -> Option<String> {
    store.get(id(k)).unwrap().map(|doc| doc.to_string())
}

#[test]
fn a_read_only_handle_follows_the_writer_through_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let writer = create(dir.path(), WriterOptions::default());
    writer.put(id(1), "one").unwrap().wait().unwrap();
    let reader = ConcurrentStore::open_read_only(
        dir.path().join("store"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap();
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
    let mut ids = reader.ids().unwrap();
    ids.sort();
    let mut expected = writer.ids().unwrap();
    expected.sort();
    assert_eq!(ids, expected);
    reader.close().unwrap();
    writer.close().unwrap();
}
