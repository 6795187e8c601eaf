//! Online backup: a point-in-time copy that opens as a store.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use store_mmap::{Error, IndexLoad, Store, StoreOptions};

use crate::{Fixture, id, segment_files};

fn options() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(4000)
}

fn fill(f: &mut Fixture, model: &mut BTreeMap<u64, String>, keys: std::ops::Range<u64>, v: u32) {
    for k in keys {
        let text = format!("{k} v{v} {}", "ß".repeat((k % 30) as usize * 8));
        f.store().put(id(k), &text).unwrap();
        model.insert(k, text);
    }
}

fn check(store: &Store, model: &BTreeMap<u64, String>) {
    assert_eq!(store.len(), model.len());
    for (k, text) in model {
        assert_eq!(
            store.get(id(*k)).unwrap().unwrap().text().as_str(),
            text,
            "document {k}"
        );
    }
    assert!(store.verify().is_clean());
}

#[test]
fn a_backup_is_the_store_as_of_its_plan_and_opens_as_a_store() {
    let mut f = Fixture::with(options());
    let mut model = BTreeMap::new();
    fill(&mut f, &mut model, 0..200, 1);
    f.store().delete(id(7)).unwrap();
    model.remove(&7);
    let plan = f.store().plan_backup().unwrap();

    // Writes and a compaction after the plan are not in the backup. The segments the
    // compaction replaced stay on disk while the plan holds their mappings.
    let mut later = model.clone();
    fill(&mut f, &mut later, 0..100, 2);
    f.store().compact().unwrap();
    assert!(f.store().retired_segments() > 0);

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("backup");
    let report = plan.write_to(&dir).unwrap();
    assert_eq!(report.documents, model.len() as u64);
    assert_eq!(report.segments_copied, 1, "{report:?}");

    let mut backup = Store::open(&dir, options()).unwrap();
    assert!(matches!(backup.recovery().index, IndexLoad::Loaded { .. }));
    assert_eq!(backup.recovery().records_replayed, 0);
    check(&backup, &model);
    backup.put(id(1000), "written to the backup").unwrap();
    backup.close().unwrap();
    check(f.store(), &later);
    assert_eq!(f.store().remove_retired().unwrap(), 0);
}

#[test]
fn sealed_segments_are_linked_and_the_active_one_copied() {
    let mut f = Fixture::with(options());
    let mut model = BTreeMap::new();
    fill(&mut f, &mut model, 0..200, 1);
    let segments = segment_files(&f.path());
    assert!(segments.len() > 2);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("backup");
    let active_end = f.store().segment_maps().last().unwrap().committed_end();
    let report = f.store().backup(&dir).unwrap();
    assert_eq!(report.segments_linked, segments.len() as u64 - 1);
    assert_eq!(report.segments_copied, 1);
    // The active segment's data, up to its committed end, and nothing past it.
    assert_eq!(report.bytes_copied, u64::from(active_end), "{report:?}");
    // A link shares the inode: no byte was copied for it.
    let first = &segments[0];
    let linked = dir.join(first.file_name().unwrap());
    assert_eq!(
        std::fs::metadata(first).unwrap().ino(),
        std::fs::metadata(linked).unwrap().ino()
    );
    check(&Store::open(&dir, options()).unwrap(), &model);
    // Writing to the store afterwards leaves the backup as it was.
    fill(&mut f, &mut model.clone(), 0..50, 2);
    check(&Store::open(&dir, options()).unwrap(), &model);
}

#[test]
fn a_backup_refuses_a_directory_that_holds_files() {
    let mut f = Fixture::with(options());
    f.store().put(id(1), "one").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("notes.txt"), "keep me").unwrap();
    let err = f.store().backup(root.path()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}

#[test]
fn a_backup_on_another_file_system_copies_every_segment() {
    let root = tempfile::tempdir().unwrap();
    let mount = match crate::disk_full::Mount::tmpfs(&root.path().join("other"), "16m") {
        Ok(mount) => mount,
        Err(reason) => return crate::disk_full::skip_without_mount(&reason),
    };
    let mut f = Fixture::with(options());
    let mut model = BTreeMap::new();
    fill(&mut f, &mut model, 0..200, 1);
    let dir = root.path().join("other/backup");
    let report = f.store().backup(&dir).unwrap();
    assert_eq!(report.segments_linked, 0, "{report:?}");
    assert_eq!(
        report.segments_copied,
        segment_files(&f.path()).len() as u64
    );
    check(&Store::open(&dir, options()).unwrap(), &model);
    drop(mount);
}
