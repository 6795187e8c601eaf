//! Stores written by earlier releases must keep opening. Each fixture under
//! `tests/fixtures/` was written by the `textstore` CLI of the format version it is named
//! after and is never regenerated.

use std::path::Path;

use store_mmap::{DocId, IndexLoad, Store, StoreOptions};

fn open_copy(fixture: &str, without_index: bool) -> (tempfile::TempDir, Store) {
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
