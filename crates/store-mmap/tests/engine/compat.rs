//! Stores written by earlier releases must keep opening. Each fixture under
//! `tests/fixtures/` was written by the `textstore` CLI of the format version it is named
//! after and is never regenerated.

use std::path::{Path, PathBuf};

use store_mmap::{DocId, IndexLoad, Store, StoreOptions};

use crate::snapshot;

/// A copy of `fixture` in a temporary directory, without its index file if asked: the
/// directory's guard and the store's path.
fn copy_of(fixture: &str, without_index: bool) -> (tempfile::TempDir, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if without_index && entry.file_name() == "index.tsi" {
            continue;
        }
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (root, dir)
}

fn open_copy(fixture: &str, without_index: bool) -> (tempfile::TempDir, Store) {
    let (root, dir) = copy_of(fixture, without_index);
    let store = Store::open(&dir, StoreOptions::new()).unwrap();
    (root, store)
}

#[test]
fn format_v1_opens_with_every_document() {
    // Written by: put 1, put 01ARZ3NDEKTSV4RRFFQ69G5FAV, put 3, put 1 (replace), delete 3,
    // put 4 (empty text).
    for without_index in [false, true] {
        let (_root, store) = open_copy("format-v1", without_index);
        // A version 1 index file holds a sorted list, which an open of version 4 discards
        // and rebuilds from the data.
        match &store.recovery().index {
            IndexLoad::Missing => assert!(without_index),
            IndexLoad::Discarded { reason } => {
                assert!(!without_index);
                assert!(reason.contains("version 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let get = |id: &str| {
            store
                .get(DocId::parse(id).unwrap())
                .unwrap()
                .map(|d| d.to_string())
        };
        assert_eq!(get("1").as_deref(), Some("replaced"));
        assert_eq!(
            get("01ARZ3NDEKTSV4RRFFQ69G5FAV").as_deref(),
            Some("Ελληνικά 🦀\nsecond line\n")
        );
        assert_eq!(get("3"), None);
        assert_eq!(get("4").as_deref(), Some(""));
        assert_eq!(store.len(), 3);
        assert_eq!(store.last_seq(), 6);
        assert!(store.verify().is_clean());
    }
}

/// Version 1 recorded no change floor: a read-only open takes it at the last commit without
/// changing a file, and the writer's open records it, so that it stays there as commits
/// follow.
#[test]
fn format_v1_takes_its_change_floor_at_its_last_commit_and_the_writer_records_it() {
    let (_root, dir) = copy_of("format-v1", false);
    let before = snapshot(&dir);
    let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert_eq!(reader.change_floor(), 6);
    drop(reader);
    assert_eq!(snapshot(&dir), before, "a read-only open changed a file");

    let mut writer = Store::open(&dir, StoreOptions::new()).unwrap();
    assert_eq!(writer.change_floor(), 6);
    writer.put(DocId::from(9u64), "after").unwrap();
    writer.close().unwrap();
    let reopened = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert_eq!(reopened.last_seq(), 7);
    assert_eq!(reopened.change_floor(), 6, "recorded at the writer's open");
}
