//! The scan and the change feed through the façade: an indexer's first pass and its
//! catch-up, and the error that tells it to rescan.

use std::collections::BTreeMap;

use textstore::{Change, DocId, DocWrite, ErrorKind, Textstore, WriteTicket};

fn key(n: u64) -> DocId {
    DocId::from_key(&format!("doc-{n}"))
}

#[test]
fn an_indexer_scans_then_follows_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Textstore::builder(dir.path().join("store")).open().unwrap();
    for n in 0..50 {
        store
            .put(key(n), format!("first {n}"))
            .unwrap()
            .wait()
            .unwrap();
    }
    // The first pass: everything live, with the position to follow from.
    let scan = store.scan().unwrap();
    let as_of = scan.as_of();
    let mut index: BTreeMap<DocId, String> = scan
        .map(|found| found.map(|(id, doc)| (id, doc.to_string())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(index.len(), 50);
    let mut ids: Vec<DocId> = store.ids().unwrap().collect::<Result<_, _>>().unwrap();
    ids.sort();
    assert_eq!(ids, index.keys().copied().collect::<Vec<_>>());
    for n in 0..10 {
        store
            .put(key(n), format!("second {n}"))
            .unwrap()
            .wait()
            .unwrap();
    }
    for n in 40..50 {
        store.delete(key(n)).unwrap().wait().unwrap();
    }
    // The catch-up: only what changed.
    let changes = store.changes_since(as_of).unwrap();
    assert_eq!(changes.since(), as_of);
    assert_eq!(changes.upto(), store.last_seq());
    let mut applied = 0;
    for change in changes {
        match change.unwrap() {
            Change::Put { id, doc } => index.insert(id, doc.to_string()),
            Change::Delete { id, .. } => index.remove(&id),
        };
        applied += 1;
    }
    assert_eq!(applied, 20);
    assert_eq!(index.len(), 40);
    for n in 0..10 {
        assert_eq!(index[&key(n)], format!("second {n}"));
    }
    // A compaction that drops the deletes moves the floor past them: a feed from before
    // says to rescan.
    store.compact().unwrap();
    assert!(store.change_floor() > as_of);
    let err = store.changes_since(as_of).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("rescan"), "{err}");
    store.close().unwrap();
}
