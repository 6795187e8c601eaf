use std::fs::OpenOptions;
use std::path::Path;

use store_mmap::{Error, IndexLoad, Refreshed, Store, StoreOptions, WriteBatch};

use crate::{Fixture, id, segment_files};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Changes a byte of the third page of slots of the index file at `index` (closed, or not
/// mapped yet); returns where that page starts.
fn damage_the_third_index_page(index: &Path) -> u64 {
    let bytes = std::fs::read(index).unwrap();
    let page = u64::from(u32::from_le_bytes(bytes[92..96].try_into().unwrap())) + 2 * 4096;
    flip_byte(index, page + 20);
    page
}

fn record_len(text_len: usize) -> u64 {
    (48 + text_len as u64).next_multiple_of(8)
}

/// Writes ten documents, then `last` as a single put or a batch; closes; returns the store
/// directory and the byte range of the final commit.
fn store_with_final_commit(root: &Path, last: &WriteBatch) -> (std::path::PathBuf, u64, u64) {
    let dir = root.join("base");
    let mut store = Store::create(&dir, StoreOptions::new()).unwrap();
    for i in 0..10u64 {
        store
            .put(id(i), &format!("earlier document {i} ✓"))
            .unwrap();
    }
    store.put_batch(last).unwrap();
    store.close().unwrap();
    let segment = &segment_files(&dir)[0];
    let end = std::fs::metadata(segment).unwrap().len();
    let start = end - last.encoded_len();
    (dir, start, end)
}

fn check_cut_at_every_offset(last: &WriteBatch) {
    let root = tempfile::tempdir().unwrap();
    let (base, start, end) = store_with_final_commit(root.path(), last);
    for cut in start..end {
        let dir = root.path().join(format!("cut-{cut}"));
        copy_dir(&base, &dir);
        let segment = segment_files(&dir)[0].clone();
        set_len(&segment, cut);
        // The index checkpoint records that the final commit was committed: cutting it is
        // damage, not a torn write, and the open refuses, naming the segment.
        let err = Store::open(&dir, StoreOptions::new())
            .err()
            .unwrap_or_else(|| panic!("cut at {cut}: the open accepted a cut commit"));
        assert!(err.is_corruption(), "cut at {cut}: {err}");
        assert!(
            err.to_string().contains(&segment.display().to_string()),
            "cut at {cut}: {err}"
        );
        // Without the checkpoint, as after a crash before it, the cut commit is a torn write.
        std::fs::remove_file(dir.join("index.tsi")).unwrap();
        let mut store = Store::open(&dir, StoreOptions::new())
            .unwrap_or_else(|err| panic!("cut at {cut}: {err}"));
        assert_eq!(store.recovery().index, IndexLoad::Missing, "cut at {cut}");
        let dropped = store.recovery().dropped_tail.clone();
        assert_eq!(dropped.is_some(), cut > start, "cut at {cut}: {dropped:?}");
        if let Some(dropped) = dropped {
            assert_eq!(dropped.offset, start);
        }
        for i in 0..10u64 {
            let doc = store
                .get(id(i))
                .unwrap()
                .unwrap_or_else(|| panic!("cut at {cut}: doc {i} lost"));
            assert_eq!(&*doc, format!("earlier document {i} ✓"));
        }
        for op in last.iter() {
            let visible = match op {
                store_mmap::BatchOp::Put { id, .. } => store.contains(id).unwrap(),
                store_mmap::BatchOp::Delete { id } => !store.contains(id).unwrap(),
            };
            assert!(
                !visible,
                "cut at {cut}: part of the torn commit is visible: {op:?}"
            );
        }
        // The store goes on: a new write lands where the torn tail was and survives reopen.
        store.put(id(99), "after recovery").unwrap();
        store.close().unwrap();
        let store = Store::open(&dir, StoreOptions::new()).unwrap();
        assert_eq!(store.recovery().dropped_tail, None);
        assert_eq!(&*store.get(id(99)).unwrap().unwrap(), "after recovery");
        assert_eq!(store.len(), 11);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn truncating_the_last_record_at_every_offset_loses_only_it() {
    let mut last = WriteBatch::new();
    last.put(id(50), "the final document, cut short");
    check_cut_at_every_offset(&last);
}

#[test]
fn truncating_a_batch_anywhere_loses_all_of_it() {
    let mut last = WriteBatch::new();
    last.put(id(50), "first of the batch")
        .delete(id(3))
        .put(id(51), "third of the batch");
    // Deleting 3 in the batch must also be undone: doc 3 stays (checked by the helper).
    check_cut_at_every_offset(&last);
}

/// A closed store of five 17-byte documents; returns it with the offset of document 2's
/// record (after the 64-byte segment header, records of 48 + 17 bytes padded to 72).
fn five_documents() -> (Fixture, u64) {
    let mut f = Fixture::new();
    for i in 0..5u64 {
        f.store()
            .put(id(i), &format!("document number {i}"))
            .unwrap();
    }
    f.close();
    (f, 64 + 2 * record_len(17))
}

#[test]
fn a_flipped_byte_is_an_error_never_wrong_text() {
    let (mut f, record) = five_documents();
    let segment = f.segment_files()[0].clone();
    flip_byte(&segment, record + 48 + 3);
    let store = f.reopen();
    let err = store.get(id(2)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert!(message.contains(&format!("offset {record}")), "{message}");
    for i in [0u64, 1, 3, 4] {
        assert!(store.get(id(i)).unwrap().is_some());
    }
    let report = store.verify();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].offset, record);
    assert_eq!(report.records_ok, 4);
}

#[test]
fn damage_before_committed_data_stops_the_open_and_recover_copies_the_rest() {
    let (mut f, record) = five_documents();
    // Without the index, the damage is met during replay, with intact commits after it.
    std::fs::remove_file(f.path().join("index.tsi")).unwrap();
    let segment = f.segment_files()[0].clone();
    flip_byte(&segment, record + 50);
    let before = std::fs::read(&segment).unwrap();
    let err = f
        .try_reopen()
        .err()
        .expect("open must refuse to drop committed data");
    assert!(err.is_corruption(), "{err}");
    let message = err.to_string();
    for part in [
        format!("offset {record}"),
        format!("bytes {record}..{}", record + record_len(17)),
        "textstore recover".to_owned(),
        segment.display().to_string(),
    ] {
        assert!(message.contains(&part), "{part:?} in {message}");
    }
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        before,
        "the open changed nothing"
    );

    let dest = f.path().with_file_name("recovered");
    let report = store_mmap::recover(f.path(), &dest).unwrap();
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        before,
        "recover changed nothing"
    );
    assert!(!report.is_complete());
    assert_eq!(report.documents, 4, "{report:?}");
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(report.damage[0].offset, record);
    assert_eq!(report.lost().map(|r| r.id).collect::<Vec<_>>(), [id(2)]);
    let recovered = Store::open(&dest, StoreOptions::new()).unwrap();
    for i in [0u64, 1, 3, 4] {
        assert_eq!(
            recovered.get(id(i)).unwrap().as_deref(),
            Some(format!("document number {i}").as_str())
        );
    }
    assert!(recovered.get(id(2)).unwrap().is_none());
}

/// A damaged record whose document has an intact older version: recover copies the older
/// version and lists the damaged one among the versions that came back older, not among
/// the documents lost.
#[test]
fn recover_reports_a_document_that_came_back_at_an_older_version() {
    let (mut f, _) = five_documents();
    f.reopen();
    f.store().put(id(2), "document number 2, v2").unwrap();
    let rewritten = f.store().location(id(2)).unwrap().unwrap();
    let seq = f.store().last_seq();
    f.close();
    let segment = f.segment_files()[0].clone();
    flip_byte(&segment, u64::from(rewritten.offset) + 50);

    let dest = f.path().with_file_name("recovered");
    let report = store_mmap::recover(f.path(), &dest).unwrap();
    let older: Vec<_> = report.older_versions().collect();
    assert_eq!(older.len(), 1, "{report:?}");
    assert_eq!((older[0].id, older[0].seq), (id(2), seq));
    assert!(!older[0].tombstone, "{report:?}");
    assert!(
        older[0].recovered_seq.is_some_and(|s| s < seq),
        "{report:?}"
    );
    assert_eq!(report.lost().count(), 0, "{report:?}");
    let recovered = Store::open(&dest, StoreOptions::new()).unwrap();
    assert_eq!(
        recovered.get(id(2)).unwrap().as_deref(),
        Some("document number 2")
    );
}

/// What recover found, field by field: the segments and intact records it read, the
/// deletes, a final batch cut short (its intact records copied, as the report says), and
/// metadata that fails its check (recover goes on with the default settings).
#[test]
fn recover_reports_what_it_found_field_by_field() {
    let mut f = Fixture::new();
    f.store().put(id(1), "one").unwrap();
    f.store().put(id(2), "two").unwrap();
    f.store().delete(id(2)).unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put(id(3), "three")
        .put(id(4), "four")
        .put(id(5), "five");
    f.store().put_batch(&batch).unwrap();
    let group = f.store().location(id(3)).unwrap().unwrap();
    let last = f.store().location(id(5)).unwrap().unwrap();
    f.close();
    let segment = f.segment_files()[0].clone();
    set_len(&segment, u64::from(last.offset) + 20);
    let meta = f.path().join("textstore.meta");
    flip_byte(&meta, 20);

    let dest = f.path().with_file_name("recovered");
    let report = store_mmap::recover(f.path(), &dest).unwrap();
    assert_eq!(report.segments, 1, "{report:?}");
    assert_eq!(report.records_intact, 5, "{report:?}");
    assert_eq!(report.documents, 3, "{report:?}");
    assert_eq!(report.text_bytes, 12, "{report:?}");
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.torn_records, 2, "{report:?}");
    let torn = report.torn_tail.as_ref().expect("the batch was cut short");
    assert_eq!(
        (&torn.path, torn.offset),
        (&segment, u64::from(group.offset))
    );
    assert_eq!(report.abandoned_records, 0);
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(report.damage[0].path, meta);
    let recovered = Store::open(&dest, StoreOptions::new()).unwrap();
    assert_eq!(recovered.len(), 3);
    assert_eq!(recovered.get(id(4)).unwrap().as_deref(), Some("four"));
}

/// The figures of `verify` and `verify_dir` on a clean store of several segments: the
/// segments read, the intact records (a delete's included) and the live documents checked
/// (not the deleted one).
#[test]
fn verify_counts_segments_records_and_live_documents() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(16 << 10)
            .max_document_bytes(4000),
    );
    for k in 0..20 {
        f.store()
            .put(id(k), &format!("{k}:{}", "v".repeat(1000)))
            .unwrap();
    }
    f.store().delete(id(3)).unwrap();
    let segments = f.segment_files().len() as u64;
    assert!(segments > 1, "{segments} segments");
    let online = f.store().verify();
    assert!(online.is_clean(), "{online:?}");
    assert_eq!(
        (online.segments, online.records_ok, online.documents_checked),
        (segments, 21, 19)
    );
    f.close();
    let offline = store_mmap::verify_dir(f.path()).unwrap();
    assert!(offline.is_clean(), "{offline:?}");
    assert_eq!(
        (
            offline.segments,
            offline.records_ok,
            offline.documents_checked
        ),
        (segments, 21, 19)
    );
}

/// `verify_dir` checks the index file against the data: an entry whose place holds an
/// intact record of another document (rewritten with a valid checksum, so that no range of
/// the data is damaged) is reported, naming the index file. An index file that cannot be
/// read is an error naming it, never taken for one that is not there.
#[test]
fn verify_dir_checks_the_index_file_against_the_data() {
    let mut f = Fixture::new();
    f.store().put(id(1), "okay").unwrap();
    let seq = f.store().last_seq();
    f.store().checkpoint().unwrap();
    let at = f.store().location(id(1)).unwrap().unwrap();
    f.close();
    crate::rewrite_put(&f.path(), at, id(2), seq, b"okay");

    let report = store_mmap::verify_dir(f.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let problem = &report.problems[0];
    assert_eq!(problem.path, f.path().join("index.tsi"));
    assert!(
        problem.what.contains(&format!("document {}", id(1))),
        "{problem:?}"
    );

    let index = f.path().join("index.tsi");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink(&index, &index).unwrap();
    let err = store_mmap::verify_dir(f.path()).expect_err("an unreadable index file");
    assert!(err.to_string().contains("index.tsi"), "{err}");
}

/// The offline tools, `verify_dir` and `recover`, refuse what they cannot read, naming it,
/// and never take it for what is not there: a directory without the metadata file is not a
/// store, and a lock file or retired-segment list that cannot be opened is an error naming
/// the file. Read without the lock, the store could change under them; read without the
/// list, the segments a compaction replaced would count again.
#[test]
fn the_offline_tools_name_what_they_cannot_read() {
    let root = tempfile::tempdir().unwrap();
    let offline = |dir: &Path| {
        let verified = store_mmap::verify_dir(dir).map(drop);
        let recovered = store_mmap::recover(dir, root.path().join("recovered")).map(drop);
        [verified, recovered]
    };
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for result in offline(&empty) {
        let err = result.expect_err("a directory without the metadata file");
        assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    }

    for name in ["LOCK", "retired.tsr"] {
        let mut f = Fixture::new();
        f.store().put(id(1), "okay").unwrap();
        f.close();
        let path = f.path().join(name);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&path, &path).unwrap();
        for result in offline(&f.path()) {
            let err = result.expect_err("an unreadable file");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}

#[test]
fn a_second_writer_is_refused() {
    let f = Fixture::new();
    let err = Store::open(f.path(), StoreOptions::new())
        .err()
        .expect("locked");
    assert!(matches!(&err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"));
}

/// A writer's open that finds the lock file held shared, as a reader of a store without a
/// writer holds it while it reads, waits for the reader rather than taking it for a live
/// writer: here the reader lets go after half a second, within the writer's patience and
/// past the moment a lock inherited by a spawned process is given.
#[test]
fn a_writers_open_waits_for_a_reader_holding_the_lock_shared() {
    let mut f = Fixture::new();
    f.store().put(id(1), "kept").unwrap();
    f.close();
    let lock = std::fs::File::open(f.path().join("LOCK")).unwrap();
    lock.lock_shared().unwrap();
    let reading = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(lock);
    });
    let store = f.reopen();
    assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("kept"));
    reading.join().unwrap();
}

/// A child process holds its parent's lock file description from its fork to its `exec`:
/// a store closed and opened again while another thread spawns processes must not find
/// itself locked by them.
#[test]
fn reopening_beside_a_thread_that_spawns_processes_is_not_refused() {
    let mut f = Fixture::new();
    f.store().put(id(1), "kept").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let spawning = scope.spawn(|| {
            let mut spawned = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::process::Command::new("true").status().unwrap();
                assert!(status.success());
                spawned += 1;
            }
            spawned
        });
        // Every round reopens; the first refusal ends the rounds (and the spawning thread)
        // before the assertions.
        let refused = (0..200).find_map(|round| match f.try_reopen() {
            Ok(store) => {
                assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("kept"));
                None
            }
            Err(err) => Some(format!("reopen {round}: {err}")),
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let spawned = spawning.join().unwrap();
        assert_eq!(refused, None);
        assert!(spawned > 0, "no process was spawned");
    });
}

#[test]
fn create_never_overwrites() {
    let mut f = Fixture::new();
    f.store().put(id(1), "precious").unwrap();
    f.close();
    let err = Store::create(f.path(), StoreOptions::new())
        .err()
        .expect("exists");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(f.reopen().get(id(1)).unwrap().as_deref(), Some("precious"));
}

#[test]
fn directories_that_are_not_stores_are_named() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let err = Store::open(&missing, StoreOptions::new()).err().unwrap();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    let other = root.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "hello").unwrap();
    let err = Store::open(&other, StoreOptions::new()).err().unwrap();
    assert!(err.to_string().contains("textstore.meta"), "{err}");
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    let err = Store::open_or_create(&other, StoreOptions::new())
        .err()
        .unwrap();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
}

#[test]
fn a_newer_format_version_is_refused_clearly() {
    let mut f = Fixture::new();
    f.close();
    let meta = f.path().join("textstore.meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    let newer = store_format::FORMAT_VERSION + 1;
    bytes[8..10].copy_from_slice(&newer.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&meta, bytes).unwrap();
    let err = f.try_reopen().err().unwrap();
    assert!(
        err.to_string().contains(&format!("format version {newer}")),
        "{err}"
    );
}

#[test]
fn a_damaged_index_is_rebuilt_from_data() {
    let mut f = Fixture::new();
    for i in 0..20u64 {
        f.store().put(id(i), &format!("doc {i}")).unwrap();
    }
    f.store().delete(id(4)).unwrap();
    f.close();
    flip_byte(&f.path().join("index.tsi"), 100);
    let store = f.reopen();
    assert!(matches!(
        store.recovery().index,
        IndexLoad::Discarded { .. }
    ));
    assert_eq!(store.len(), 19);
    assert_eq!(store.get(id(4)).unwrap(), None);
    assert_eq!(store.get(id(5)).unwrap().as_deref(), Some("doc 5"));
}

/// A damaged page of the index file, which the open does not read, is found by `verify`,
/// which names the file, and by the first lookup that probes the page, which fails instead
/// of trusting its slots.
#[test]
fn a_damaged_index_page_is_reported_by_verify_and_refused_by_lookups() {
    let mut f = Fixture::new();
    for i in 0..20u64 {
        f.store().put(id(i), &format!("doc {i}")).unwrap();
    }
    f.close();
    let index = f.path().join("index.tsi");
    let bytes = std::fs::read(&index).unwrap();
    let table_offset = u32::from_le_bytes(bytes[92..96].try_into().unwrap());
    flip_byte(&index, u64::from(table_offset) + 20);
    let store = f.reopen();
    assert!(matches!(store.recovery().index, IndexLoad::Loaded { .. }));
    let report = store.verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.to_string().contains("index.tsi")),
        "{report:?}"
    );
    let err = (0..20)
        .find_map(|i| store.get(id(i)).err())
        .expect("a lookup probes the damaged page");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("index.tsi"), "{err}");
}

/// A read-only handle writes no file: a damaged page of the index file fails its reads
/// (naming the file) until its next refresh or backup, which rebuilds its view's index from
/// the data in memory. The file stays as it was; the view goes on following the writer's
/// commits without loading the damaged file again, and loads the writer's new file with
/// the first commit after the writer has rebuilt it.
#[test]
fn a_read_only_handle_rebuilds_its_view_of_a_damaged_index_page_in_memory() {
    const DOCS: u64 = 600;
    let text = |i: u64| format!("document {i}");
    for through_backup in [false, true] {
        let mut f = Fixture::new();
        let mut batch = WriteBatch::new();
        for i in 0..DOCS {
            batch.put(id(i), &text(i));
        }
        f.store().put_batch(&batch).unwrap();
        f.close();
        let index = f.path().join("index.tsi");
        damage_the_third_index_page(&index);
        let damaged = std::fs::read(&index).unwrap();
        let path = f.path().to_path_buf();
        let backup = path.with_file_name("backup");
        let writer = f.reopen();
        let mut reader = Store::open_read_only(&path, StoreOptions::new()).unwrap();
        let on_page: Vec<u64> = (0..DOCS).filter(|&i| reader.get(id(i)).is_err()).collect();
        // A new document whose lookup probes no damaged slot, the writer's included.
        let elsewhere = (DOCS..).find(|&i| reader.get(id(i)).is_ok()).unwrap();
        assert!(!on_page.is_empty() && on_page.len() < 200, "{on_page:?}");
        let err = reader.get(id(on_page[0])).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("index.tsi"), "{err}");
        assert!(err.to_string().contains("next refresh"), "{err}");

        if through_backup {
            let report = reader.backup(&backup).unwrap();
            assert_eq!(report.documents, DOCS, "{report:?}");
            assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
        } else {
            assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
        }
        let check = |reader: &Store, extra: &[(u64, &str)]| {
            for i in 0..DOCS {
                let got = reader.get(id(i)).unwrap();
                assert_eq!(got.as_deref(), Some(text(i).as_str()), "document {i}");
            }
            for &(i, want) in extra {
                assert_eq!(reader.get(id(i)).unwrap().as_deref(), Some(want));
            }
            assert_eq!(reader.len(), DOCS as usize + extra.len());
        };
        check(&reader, &[]);
        assert_eq!(reader.stats().unwrap().index_rebuilds(), 1);
        assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
        assert_eq!(std::fs::read(&index).unwrap(), damaged);

        // A commit of a document off the damaged page: the writer's own lookups do not
        // meet the page, so the damaged file stays, and the view takes the commit alone.
        writer.put(id(elsewhere), "a later commit").unwrap();
        assert_eq!(
            reader.refresh().unwrap(),
            Refreshed::Appended { records: 1 }
        );
        check(&reader, &[(elsewhere, "a later commit")]);
        assert_eq!(std::fs::read(&index).unwrap(), damaged);

        // The writer finds the page and rebuilds the file: the view loads the new file
        // with the writer's next commit.
        assert!(!writer.verify().problems.is_empty());
        writer.checkpoint().unwrap();
        assert_ne!(std::fs::read(&index).unwrap(), damaged);
        writer.put(id(elsewhere), "after the rebuild").unwrap();
        assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
        assert!(reader.checkpointed_index().is_some());
        check(&reader, &[(elsewhere, "after the rebuild")]);
        assert!(reader.verify().is_clean());
        if through_backup {
            let copy = Store::open(&backup, StoreOptions::new()).unwrap();
            for i in 0..DOCS {
                assert_eq!(copy.get(id(i)).unwrap().as_deref(), Some(text(i).as_str()));
            }
            assert!(copy.verify().is_clean());
        }
    }
}

/// A crash leaves commits past the index file's checkpoint, and a page of slots of the
/// file is damaged: the open's replay of those commits looks up the versions they replace
/// and meets the page. The open discards the file, with the damage as its reason, and
/// rebuilds the index from the data, as it does for a file it cannot use; a read-only open
/// does the same in memory. Without the index's journal, whose frames would answer some
/// lookups before the file, and with it.
#[test]
fn an_open_whose_replay_meets_a_damaged_index_page_rebuilds_from_the_data() {
    const DOCS: u64 = 600;
    for journal in [None, Some(16 << 10)] {
        let mut f = Fixture::with(
            StoreOptions::new()
                .journal_bytes(journal)
                .checkpoint_bytes(None),
        );
        let mut batch = WriteBatch::new();
        for i in 0..DOCS {
            batch.put(id(i), &format!("document {i}"));
        }
        f.store().put_batch(&batch).unwrap();
        f.store().checkpoint().unwrap();
        for i in 0..DOCS {
            f.store()
                .put(id(i), &format!("document {i}, again"))
                .unwrap();
        }
        f.crash();
        let index = f.path().join("index.tsi");
        let page = damage_the_third_index_page(&index);
        let check = |store: &Store| {
            for i in 0..DOCS {
                let got = store.get(id(i)).unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(format!("document {i}, again").as_str()),
                    "{journal:?}: document {i}"
                );
            }
            assert!(store.verify().is_clean(), "{journal:?}");
        };
        let reader = Store::open_read_only(f.path(), StoreOptions::new()).unwrap();
        check(&reader);
        drop(reader);
        let store = f
            .try_reopen()
            .unwrap_or_else(|err| panic!("{journal:?}: {err}"));
        if journal.is_none() {
            match &store.recovery().index {
                IndexLoad::Discarded { reason } => {
                    assert!(reason.contains(&format!("offset {page}")), "{reason}");
                    assert!(reason.contains("checksum"), "{reason}");
                    assert!(!reason.contains("rebuilds it"), "{reason}");
                }
                other => panic!("the damaged index file was {other:?}"),
            }
        }
        check(store);
        let store = f.reopen();
        check(store);
    }
}

/// A rebuild of the index that meets damage in the data fails, naming the place, as an
/// open of the store without its index file would: below the writer's (or, for a reader,
/// the published) position every byte was committed, so a damaged commit there is never
/// taken for a torn one and cut from the index. The document on the damaged record stays
/// an error, never a document that is not there, and the writer refuses writes.
#[test]
fn a_rebuild_that_meets_damaged_data_fails_and_drops_nothing() {
    let mut f = Fixture::new();
    let mut batch = WriteBatch::new();
    for i in 0..600u64 {
        batch.put(id(i), &format!("document {i:03}"));
    }
    f.store().put_batch(&batch).unwrap();
    f.close();
    let segment = f.path().join("0000000001.seg");
    let data = std::fs::read(&segment).unwrap();
    let at = data.windows(12).position(|w| w == b"document 300").unwrap();
    flip_byte(&segment, at as u64);
    damage_the_third_index_page(&f.path().join("index.tsi"));

    let mut reader = Store::open_read_only(f.path(), StoreOptions::new()).unwrap();
    assert!(!reader.verify().problems.is_empty());
    let err = reader
        .refresh()
        .expect_err("the rebuild meets the damaged record");
    assert!(err.to_string().contains("0000000001.seg"), "{err}");
    assert!(
        err.to_string().contains("published a position past them"),
        "{err}"
    );
    assert!(reader.get(id(300)).is_err());

    let store = f.reopen();
    assert!(!store.verify().problems.is_empty());
    let err = store
        .checkpoint()
        .expect_err("the rebuild meets the damaged record");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("0000000001.seg"), "{err}");
    assert!(
        store.get(id(300)).is_err(),
        "the damaged document read as absent"
    );
    assert!(
        store.put(id(1), "refused").is_err(),
        "a poisoned writer took a write"
    );
    // A poisoned writer's close fails: the files are taken as they are.
    f.crash();
    let store = f.reopen();
    assert!(store.get(id(300)).is_err());
    assert_eq!(store.get(id(301)).unwrap().as_deref(), Some("document 301"));
}

/// A rebuilt index whose new file fails to be written is a failed checkpoint, not a
/// failed write: the commit that met the damage succeeds, the store takes writes on from
/// the index in memory, and the next checkpoint writes the file.
#[test]
fn a_rebuild_whose_index_file_fails_to_be_written_loses_nothing() {
    use store_mmap::fault::{Fault, FaultOp, FaultStorage};

    let storage = std::sync::Arc::new(FaultStorage::new());
    let mut f = Fixture::with(StoreOptions::new().storage(storage.clone()));
    let mut batch = WriteBatch::new();
    for i in 0..600u64 {
        batch.put(id(i), &format!("document {i}"));
    }
    f.store().put_batch(&batch).unwrap();
    f.close();
    damage_the_third_index_page(&f.path().join("index.tsi"));
    f.reopen();
    storage.inject_on(Fault::Fail(FaultOp::Create), &f.path().join("index.tmp"));
    for i in 0..600u64 {
        f.store()
            .put(id(i), &format!("document {i}, again"))
            .unwrap();
    }
    let stats = f.store().stats().unwrap();
    assert_eq!(stats.index_rebuilds(), 1);
    assert!(stats.checkpoint_failures() >= 1, "{stats:?}");
    assert!(storage.injected(Fault::Fail(FaultOp::Create)) >= 1);
    storage.disarm();
    f.store().checkpoint().unwrap();
    assert!(f.store().verify().is_clean());
    let store = f.reopen();
    assert!(matches!(store.recovery().index, IndexLoad::Loaded { .. }));
    for i in 0..600u64 {
        let got = store.get(id(i)).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(format!("document {i}, again").as_str())
        );
    }
}

/// What makes the writer meet a damaged page of the index file.
#[derive(Debug, Clone, Copy)]
enum Meeting {
    /// A put of a document on the page, whose old version the commit looks up after
    /// writing the record.
    PutOnThePage,
    /// A delete of a document on the page.
    DeleteOnThePage,
    /// A read of a document on the page, then a put of a document elsewhere.
    ReadThenPutElsewhere,
    /// A read of a document on the page, then `checkpoint()`.
    ReadThenCheckpoint,
    /// A read of a document on the page, then `refresh()`.
    ReadThenRefresh,
    /// `verify()`, then a pause of the writer (`tend_checkpoint(true)`).
    VerifyThenPause,
    /// A compaction, whose copies move documents on the page.
    Compaction,
    /// A backup, which copies the whole index.
    Backup,
}

/// A page of the index file that fails its check is rebuilt by the writer from the data,
/// whichever way the writer meets it: the operation that met it succeeds (a read fails,
/// naming the file), every document reads back as written, the store holds a new index
/// file that `verify` finds intact, and a reopen loads it. The store's segments are small,
/// and half of each sealed one is dead, so that a compaction copies from all of them.
#[test]
fn the_writer_rebuilds_a_damaged_index_page_from_the_data() {
    const DOCS: u64 = 600;
    let text = |i: u64| {
        let version = if i.is_multiple_of(2) {
            "second"
        } else {
            "first"
        };
        format!("document {i}, {version} version, which the index file points to")
    };
    for meeting in [
        Meeting::PutOnThePage,
        Meeting::DeleteOnThePage,
        Meeting::ReadThenPutElsewhere,
        Meeting::ReadThenCheckpoint,
        Meeting::ReadThenRefresh,
        Meeting::VerifyThenPause,
        Meeting::Compaction,
        Meeting::Backup,
    ] {
        let mut f = Fixture::with(
            StoreOptions::new()
                .segment_capacity(16 << 10)
                .max_document_bytes(4000),
        );
        for i in 0..DOCS {
            f.store()
                .put(
                    id(i),
                    &format!("document {i}, first version, which the index file points to"),
                )
                .unwrap();
        }
        let mut batch = WriteBatch::new();
        for i in (0..DOCS).step_by(2) {
            batch.put(id(i), &text(i));
        }
        f.store().put_batch(&batch).unwrap();
        f.close();
        let index = f.path().join("index.tsi");
        damage_the_third_index_page(&index);
        // Which documents the damaged page holds, seen by a handle that writes nothing.
        let on_page: Vec<u64> = {
            let reader = Store::open_read_only(f.path(), StoreOptions::new()).unwrap();
            (0..DOCS).filter(|&i| reader.get(id(i)).is_err()).collect()
        };
        assert!(!on_page.is_empty() && on_page.len() < 200, "{on_page:?}");
        let hit = on_page[0];
        let elsewhere = (0..DOCS).find(|i| !on_page.contains(i)).unwrap();
        let mut expected: Vec<Option<String>> = (0..DOCS).map(|i| Some(text(i))).collect();
        let backup = f.path().with_file_name("backup");

        let store = f.reopen();
        let read_fails = || {
            let err = store.get(id(hit)).expect_err("the page is damaged");
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("index.tsi"), "{err}");
        };
        match meeting {
            Meeting::PutOnThePage => {
                store.put(id(hit), "written over the damaged page").unwrap();
                expected[hit as usize] = Some("written over the damaged page".to_owned());
            }
            Meeting::DeleteOnThePage => {
                assert!(store.delete(id(hit)).unwrap(), "the document existed");
                expected[hit as usize] = None;
            }
            Meeting::ReadThenPutElsewhere => {
                read_fails();
                store.put(id(elsewhere), "another").unwrap();
                expected[elsewhere as usize] = Some("another".to_owned());
            }
            Meeting::ReadThenCheckpoint => {
                read_fails();
                store.checkpoint().unwrap();
            }
            Meeting::ReadThenRefresh => {
                read_fails();
                assert_eq!(store.refresh().unwrap(), Refreshed::Reloaded);
            }
            Meeting::VerifyThenPause => {
                assert!(!store.verify().problems.is_empty());
                store.tend_checkpoint(true).unwrap();
            }
            Meeting::Compaction => {
                let report = store.compact().unwrap();
                assert!(report.records_copied > 0, "{report:?}");
            }
            Meeting::Backup => {
                let report = store.backup(&backup).unwrap();
                assert_eq!(report.documents, DOCS, "{report:?}");
            }
        }
        let check = |store: &Store| {
            for (i, want) in expected.iter().enumerate() {
                let got = store.get(id(i as u64)).unwrap();
                assert_eq!(got.as_deref(), want.as_deref(), "{meeting:?}: document {i}");
            }
            assert_eq!(store.len(), expected.iter().flatten().count());
            let report = store.verify();
            assert!(report.problems.is_empty(), "{meeting:?}: {report:?}");
        };
        check(store);
        assert_eq!(store.stats().unwrap().index_rebuilds(), 1, "{meeting:?}");
        let store = f.reopen();
        assert!(matches!(store.recovery().index, IndexLoad::Loaded { .. }));
        check(store);
        assert_eq!(store.stats().unwrap().index_rebuilds(), 0, "{meeting:?}");
        if let Meeting::Backup = meeting {
            let copy = Store::open(&backup, StoreOptions::new()).unwrap();
            assert!(matches!(copy.recovery().index, IndexLoad::Loaded { .. }));
            check(&copy);
        }
    }
}

/// Which pages of the index file passed their check is remembered for each page alone:
/// with the 65th page and every other one after it damaged (their checksums), walking the
/// pages in order finds every damaged one, after the intact pages around it passed. Pages
/// that shared a remembered check would let a damaged page pass once the page it shares
/// with was read.
#[test]
fn the_index_pages_checked_are_remembered_each_on_its_own() {
    let mut f = Fixture::new();
    let mut batch = WriteBatch::new();
    for i in 0..10_000u64 {
        batch.put(id(i), &i.to_string());
    }
    f.store().put_batch(&batch).unwrap();
    f.close();
    let index = f.path().join("index.tsi");
    let mut bytes = std::fs::read(&index).unwrap();
    let table_offset = u32::from_le_bytes(bytes[92..96].try_into().unwrap()) as usize;
    // The header's slot count; 102 slots a page.
    let pages = u64::from_le_bytes(bytes[72..80].try_into().unwrap()) / 102;
    assert!(pages > 70, "{pages} pages");
    let damaged = |page: u64| page == 64 || (page > 64 && page % 2 == 1);
    for page in (0..pages).filter(|&page| damaged(page)) {
        bytes[table_offset + page as usize * 4096 + 4092] ^= 0x01;
    }
    std::fs::write(&index, bytes).unwrap();
    let store = f.reopen();
    let checkpoint = store.checkpointed_index().expect("an index file");
    assert_eq!(checkpoint.page_count(), pages);
    for page in 0..pages {
        let read = checkpoint.page_ids(page);
        assert_eq!(read.is_err(), damaged(page), "page {page}: {read:?}");
    }
}

/// An index file that cannot be opened (a link to itself) or is empty is discarded with
/// the reason, and the open rebuilds the index from the data.
#[test]
fn an_index_file_that_cannot_be_opened_is_discarded_with_its_reason() {
    for (case, reason) in [("a link loop", "cannot open it"), ("empty", "it is empty")] {
        let mut f = Fixture::new();
        for i in 0..20u64 {
            f.store().put(id(i), &format!("doc {i}")).unwrap();
        }
        f.close();
        let index = f.path().join("index.tsi");
        std::fs::remove_file(&index).unwrap();
        if case == "empty" {
            std::fs::write(&index, b"").unwrap();
        } else {
            std::os::unix::fs::symlink(&index, &index).unwrap();
        }
        let store = f.reopen();
        match &store.recovery().index {
            IndexLoad::Discarded { reason: found } => {
                assert!(found.contains(reason), "{case}: {found}");
            }
            other => panic!("{case}: {other:?}"),
        }
        assert_eq!(store.len(), 20, "{case}");
        assert_eq!(store.get(id(7)).unwrap().as_deref(), Some("doc 7"));
    }
}

#[test]
fn an_interrupted_segment_creation_is_cleaned_up() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(4096)
            .max_document_bytes(1000),
    );
    f.store().put(id(1), "kept").unwrap();
    f.close();
    // A newest segment whose header never made it to disk.
    std::fs::write(f.path().join("0000000002.seg"), [0u8; 20]).unwrap();
    let store = f.reopen();
    assert!(store.recovery().removed_segment.is_some());
    assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("kept"));
}

/// Only a newest segment too short to hold a record is taken for an interrupted creation
/// and removed: a segment with a damaged header and data after it, the newest or a sealed
/// one, fails the open naming it, and stays as it was for `recover`.
#[test]
fn a_damaged_segment_header_before_data_is_never_taken_for_an_interrupted_creation() {
    let options = StoreOptions::new()
        .segment_capacity(4096)
        .max_document_bytes(1000);
    for newest in [true, false] {
        let mut f = Fixture::with(options.clone());
        for k in 0..12 {
            f.store().put(id(k), &"d".repeat(500)).unwrap();
        }
        f.close();
        let segments = f.segment_files();
        assert!(segments.len() >= 2, "{segments:?}");
        let damaged = if newest {
            segments.last().unwrap().clone()
        } else {
            segments[0].clone()
        };
        let len = std::fs::metadata(&damaged).unwrap().len();
        assert!(len > store_format::SEGMENT_HEADER_LEN as u64, "{len}");
        flip_byte(&damaged, 9);
        let before = std::fs::read(&damaged).unwrap();
        let err = f.try_reopen().err().expect("the header is damaged");
        assert!(
            err.to_string().contains(&damaged.display().to_string()),
            "newest: {newest}: {err}"
        );
        assert_eq!(std::fs::read(&damaged).unwrap(), before, "newest: {newest}");
    }
}

#[test]
fn a_record_with_a_valid_checksum_but_invalid_utf8_is_damage() {
    let mut f = Fixture::new();
    f.store().put(id(1), "fine").unwrap();
    let next_seq = f.store().last_seq() + 1;
    f.close();
    // Append, after the checkpoint, a committed record whose payload is not UTF-8: only
    // a writer that bypasses the engine can produce it.
    let segment = f.segment_files()[0].clone();
    let record = crate::encoded_put(id(2), next_seq, &[b'o', b'k', 0xff, b'!']);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&record);
    std::fs::write(&segment, bytes).unwrap();
    // The record is not intact, so it is damage; as the final group of the newest segment,
    // it looks like a torn write: verify reports it, and the open cuts it and says why.
    let report = store_mmap::verify_dir(f.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].offset, at);
    assert!(
        report.problems[0].what.contains("is not UTF-8"),
        "{report:?}"
    );
    let store = f.reopen();
    let dropped = store.recovery().dropped_tail.clone().expect("cut");
    assert_eq!(dropped.offset, at);
    assert!(dropped.reason.contains("is not UTF-8"), "{dropped:?}");
    assert!(store.get(id(2)).unwrap().is_none());
    assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("fine"));
}

#[test]
fn a_create_cut_short_leaves_a_directory_that_creates() {
    // A process killed inside `create` leaves the lock file and, at worst, the temporary
    // metadata file: no store, and nothing that should stop the next create.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("LOCK"), "").unwrap();
    std::fs::write(dir.join("textstore.tmp"), [0x54, 0x58]).unwrap();
    let err = Store::open(&dir, StoreOptions::new()).err().unwrap();
    assert!(matches!(err, Error::NotAStore { .. }), "{err}");
    let mut store = Store::open_or_create(&dir, StoreOptions::new()).unwrap();
    store.put(id(1), "created").unwrap();
    store.close().unwrap();
    let store = Store::open(&dir, StoreOptions::new()).unwrap();
    assert_eq!(&*store.get(id(1)).unwrap().unwrap(), "created");
}

/// Every store draws its own id: a segment file of another store, put beside this store's
/// under its own name, is refused by the open as another store's, naming the file.
#[test]
fn a_segment_of_another_store_is_refused() {
    let options = StoreOptions::new()
        .segment_capacity(4096)
        .max_document_bytes(1000);
    let root = tempfile::tempdir().unwrap();
    let (ours, theirs) = (root.path().join("ours"), root.path().join("theirs"));
    let mut store = Store::create(&ours, options.clone()).unwrap();
    store.put(id(1), "ours").unwrap();
    store.close().unwrap();
    let mut other = Store::create(&theirs, options).unwrap();
    for k in 0..8 {
        other.put(id(k), &"t".repeat(1000)).unwrap();
    }
    other.close().unwrap();
    // A segment of theirs that ours lacks, under its own name.
    let foreign = segment_files(&theirs)[1].clone();
    let name = foreign.file_name().unwrap();
    assert_eq!(segment_files(&ours).len(), 1);
    std::fs::copy(&foreign, ours.join(name)).unwrap();
    let err = Store::open(&ours, StoreOptions::new())
        .err()
        .expect("another store's segment");
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains(name.to_str().unwrap()), "{err}");
    let what = format!("{err:?}");
    assert!(what.contains("segment belongs to store"), "{what}");
}

/// A `Storage` of the caller's that implements only the required methods, each passed to
/// the operating system's.
#[derive(Debug)]
struct RequiredOnly;

impl store_mmap::Storage for RequiredOnly {
    fn create_new(&self, path: &Path) -> std::io::Result<std::fs::File> {
        store_mmap::OsStorage.create_new(path)
    }
    fn write_at(
        &self,
        file: &std::fs::File,
        path: &Path,
        data: &[u8],
        offset: u64,
    ) -> std::io::Result<()> {
        store_mmap::OsStorage.write_at(file, path, data, offset)
    }
    fn sync(
        &self,
        file: &std::fs::File,
        path: &Path,
        kind: store_mmap::SyncKind,
    ) -> std::io::Result<()> {
        store_mmap::OsStorage.sync(file, path, kind)
    }
    fn allocate(
        &self,
        file: &std::fs::File,
        path: &Path,
        from: u64,
        to: u64,
    ) -> std::io::Result<()> {
        store_mmap::OsStorage.allocate(file, path, from, to)
    }
    fn set_len(&self, file: &std::fs::File, path: &Path, len: u64) -> std::io::Result<()> {
        store_mmap::OsStorage.set_len(file, path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        store_mmap::OsStorage.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        store_mmap::OsStorage.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        store_mmap::OsStorage.sync_dir(dir)
    }
}

/// A store runs on a storage that implements only the required methods, through the
/// trait's defaults: a commit of many texts, written one slice at a time at the right
/// offsets, reads back after a reopen, and a compaction finds the room the file system has.
#[test]
fn a_storage_of_the_required_methods_alone_serves_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new().storage(std::sync::Arc::new(RequiredOnly));
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    // Texts up to 15 KiB, large enough that a commit hands them to the storage as slices of
    // their own beside their records' headers.
    let text = |k: u64, version: u64| format!("{k} {version} {}", "r".repeat(k as usize * 300));
    for version in 0..2 {
        let mut batch = WriteBatch::new();
        for k in 0..50 {
            batch.put(id(k), &text(k, version));
        }
        store.put_batch(&batch).unwrap();
    }
    store.close().unwrap();
    let mut store = Store::open(dir.path(), options).unwrap();
    let report = store.compact().unwrap();
    assert!(report.records_copied > 0, "{report:?}");
    for k in 0..50 {
        assert_eq!(
            store.get(id(k)).unwrap().as_deref(),
            Some(text(k, 1).as_str())
        );
    }
    assert!(store.verify().is_clean());
}

/// The lengths and the disk space of every file in `dir`.
fn directory_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap())
        .filter(|meta| meta.is_file())
        .fold((0, 0), |(len, allocated), meta| {
            (len + meta.len(), allocated + meta.blocks() * 512)
        })
}

/// Each figure of a store's stats against what was written to it and what its directory
/// holds: before a compaction, after it (with a spare file), and after a reopen.
#[test]
fn the_stats_count_what_was_written_and_what_the_directory_holds() {
    use store_format::record_len;

    let capacity = 16u32 << 10;
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(capacity)
            .max_document_bytes(4000),
    );
    let mut live = std::collections::BTreeMap::new();
    let (mut written, mut writes) = (0u64, 0u64);
    for version in 1..=2u64 {
        for k in 0..40u64 {
            let text = format!("{k}.{version} ").repeat(20 + (k as usize % 9) * 25);
            f.store().put(id(k), &text).unwrap();
            written += record_len(text.len() as u32);
            writes += 1;
            live.insert(k, text);
        }
    }
    for k in 30..36u64 {
        f.store().delete(id(k)).unwrap();
        written += record_len(0);
        writes += 1;
        live.remove(&k);
    }
    let text_bytes: u64 = live.values().map(|text| text.len() as u64).sum();
    let live_bytes: u64 = live
        .values()
        .map(|text| record_len(text.len() as u32))
        .sum();
    let check = |f: &mut Fixture, dead_bytes: Option<u64>, when: &str| {
        let stats = f.store().stats().unwrap();
        let segments = segment_files(&f.path()).len() as u64;
        let spares = crate::files_with_extension(&f.path(), "spare");
        let (file_bytes, allocated_bytes) = directory_bytes(&f.path());
        assert_eq!(stats.documents(), live.len() as u64, "{when}");
        assert_eq!(stats.text_bytes(), text_bytes, "{when}");
        assert_eq!(stats.live_bytes(), live_bytes, "{when}");
        if let Some(dead_bytes) = dead_bytes {
            assert_eq!(stats.dead_bytes(), dead_bytes, "{when}");
        }
        let ratio = stats.dead_bytes() as f64 / (live_bytes + stats.dead_bytes()) as f64;
        assert!(
            (stats.dead_ratio() - ratio).abs() < 1e-12,
            "{when}: {stats:?}"
        );
        assert_eq!(stats.last_seq(), writes, "{when}");
        assert_eq!(stats.segments(), segments, "{when}");
        assert_eq!(stats.segment_capacity(), u64::from(capacity), "{when}");
        assert_eq!(
            stats.mapped_bytes(),
            segments * u64::from(capacity),
            "{when}"
        );
        assert_eq!(stats.spare_files(), spares.len() as u64, "{when}");
        let spare_bytes: u64 = spares
            .iter()
            .map(|spare| std::fs::metadata(spare).unwrap().len())
            .sum();
        assert_eq!(stats.spare_bytes(), spare_bytes, "{when}");
        assert_eq!(stats.file_bytes(), file_bytes, "{when}: {stats:?}");
        assert_eq!(
            stats.allocated_bytes(),
            allocated_bytes,
            "{when}: {stats:?}"
        );
        // What an exporter is shown: each figure under its metric's name.
        let figures = store_format::Figures::of(&stats);
        for (name, value) in [
            ("textstore_documents", stats.documents()),
            ("textstore_text_bytes", stats.text_bytes()),
            ("textstore_live_record_bytes", stats.live_bytes()),
            ("textstore_dead_record_bytes", stats.dead_bytes()),
            ("textstore_segments", stats.segments()),
            ("textstore_spare_files", stats.spare_files()),
            ("textstore_spare_bytes", stats.spare_bytes()),
            ("textstore_file_bytes", stats.file_bytes()),
            ("textstore_allocated_bytes", stats.allocated_bytes()),
            ("textstore_mapped_bytes", stats.mapped_bytes()),
            ("textstore_index_memory_bytes", stats.index_memory_bytes()),
            ("textstore_index_file_bytes", stats.index_file_bytes()),
            ("textstore_index_changes", stats.index_changes()),
            ("textstore_checkpoints", stats.checkpoints()),
            ("textstore_checkpoint_failures", stats.checkpoint_failures()),
            ("textstore_index_rebuilds", stats.index_rebuilds()),
            ("textstore_last_sequence", stats.last_seq()),
            ("textstore_segment_capacity_bytes", stats.segment_capacity()),
            (
                "textstore_compaction_copy_bytes",
                stats.compaction_copy_bytes(),
            ),
        ] {
            assert_eq!(figures.get(name), Some(value as f64), "{when}: {name}");
        }
        assert_eq!(
            figures.get("textstore_dead_record_ratio"),
            Some(stats.dead_ratio()),
            "{when}"
        );
        assert_eq!(figures.0.len(), 20, "{when}: {figures:?}");
        let space = f.store().disk_space().unwrap();
        assert!(space.available_bytes() > 0, "{when}");
        assert_eq!(
            store_format::Figures::of(&space).get("textstore_filesystem_available_bytes"),
            Some(space.available_bytes() as f64),
            "{when}"
        );
        stats
    };
    let before = check(&mut f, Some(written - live_bytes), "before a compaction");
    assert!(
        before.dead_ratio() > 0.4 && before.segments() > 2,
        "{before:?}"
    );

    crate::spares::compact_due(f.store());
    let compacted = check(&mut f, None, "after a compaction");
    assert!(
        compacted.dead_bytes() < before.dead_bytes(),
        "{compacted:?}"
    );
    assert_eq!(compacted.spare_files(), 1, "{compacted:?}");
    f.reopen();
    check(&mut f, Some(compacted.dead_bytes()), "reopened");
}

/// A file of the store that cannot be looked at fails the stats with its name; one that is
/// not there (no journal, no write limit) counts as nothing.
#[test]
fn stats_that_cannot_look_at_a_file_name_it() {
    let mut f = Fixture::with(StoreOptions::new().journal_bytes(None));
    f.store().put(id(1), "text").unwrap();
    let limit = f.path().join("limit.tsl");
    assert!(!limit.exists() && !f.path().join("index.tsj").exists());
    let before = f.store().stats().unwrap();
    // A link to itself: looking at it fails (`ELOOP`).
    std::os::unix::fs::symlink("limit.tsl", &limit).unwrap();
    let err = f.store().stats().unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &limit),
        "{err:?}"
    );
    std::fs::remove_file(&limit).unwrap();
    assert_eq!(f.store().stats().unwrap(), before);
}
