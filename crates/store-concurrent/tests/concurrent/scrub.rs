//! The scrub thread: it checks the sealed segments and the index file again, pass after
//! pass, and a record damaged on disk after its first read fails its next read once a pass
//! has found it.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use store_concurrent::{ConcurrentStore, ScrubPolicy, WriterOptions};
use store_mmap::StoreOptions;

use crate::id;

#[test]
fn the_scrub_finds_damage_after_a_first_read_and_the_next_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let policy = ScrubPolicy {
        bytes_per_sec: Some(1 << 30),
        pause_between_passes: Duration::from_millis(5),
    };
    let store = ConcurrentStore::create(
        dir.path().join("store"),
        StoreOptions::new()
            .segment_capacity(16 << 10)
            .max_document_bytes(4 << 10),
        WriterOptions::default().scrub(policy),
    )
    .unwrap();
    let text = |n: u64| format!("document {n}: ").repeat(40);
    for n in 0..60 {
        store.put(id(n), text(n)).unwrap().wait().unwrap();
    }
    // Document 0 is in the first segment, sealed long since; read it once, checked.
    assert_eq!(store.get(id(0)).unwrap().unwrap().text().as_str(), text(0));
    let segment = dir.path().join("store/0000000001.seg");
    let bytes = std::fs::read(&segment).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"document 0: ")
        .unwrap();
    // `d` becomes `e`: still UTF-8, so only the checksum tells.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.write_all_at(b"e", at as u64).unwrap();

    let seen = store.scrub_stats().passes();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.scrub_stats().passes() < seen + 2 {
        assert!(Instant::now() < deadline, "{:?}", store.scrub_stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = store.scrub_stats();
    assert!(stats.damaged_ranges() >= 1, "{stats:?}");
    assert!(
        stats
            .last_problem()
            .is_some_and(|p| p.contains("0000000001.seg")),
        "{stats:?}"
    );
    assert!(stats.records_ok() > 0 && stats.bytes() > 0, "{stats:?}");
    let err = store.get(id(0)).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(
        store.get(id(59)).unwrap().unwrap().text().as_str(),
        text(59)
    );
    store.close().unwrap();
}

#[test]
fn a_scrub_pass_under_way_does_not_keep_replaced_segments_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let options = || {
        StoreOptions::new()
            .segment_capacity(16 << 10)
            .max_document_bytes(4 << 10)
    };
    let text = |n: u64| format!("document {n}: ").repeat(40);
    let store = ConcurrentStore::create(
        &path,
        options(),
        WriterOptions::default().scrub(ScrubPolicy::off()),
    )
    .unwrap();
    for n in 0..400 {
        store.put(id(n), text(n)).unwrap().wait().unwrap();
    }
    // Every document of the first segment is deleted: a compaction replaces it.
    for n in 0..40 {
        store.delete(id(n)).unwrap().wait().unwrap();
    }
    store.close().unwrap();

    // The reopened store's first pass covers every sealed segment: about 15 s at this
    // rate, 1 s for the first one. The replaced segment must go while it is under way.
    let policy = ScrubPolicy {
        bytes_per_sec: Some(16 << 10),
        pause_between_passes: Duration::from_secs(3600),
    };
    let store =
        ConcurrentStore::open(&path, options(), WriterOptions::default().scrub(policy)).unwrap();
    let first = path.join("0000000001.seg");
    assert!(first.exists());
    // The pass reports each segment once it is checked.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.scrub_stats().bytes() == 0 {
        assert!(Instant::now() < deadline, "{:?}", store.scrub_stats());
        std::thread::sleep(Duration::from_millis(2));
    }

    let report = store.compact().unwrap();
    assert!(report.segments_in >= 1, "{report:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while first.exists() {
        assert!(
            Instant::now() < deadline,
            "the replaced segment is still on disk: {:?}",
            store.scrub_stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(store.scrub_stats().passes(), 0, "the pass ended first");
    for n in 40..400 {
        assert_eq!(store.get(id(n)).unwrap().unwrap().text().as_str(), text(n));
    }
    store.close().unwrap();
}

/// One pass over a clean store counts each record of the sealed segments once, their bytes
/// and the index file's with them, and no damage; the next pass waits an hour.
#[test]
fn a_pass_over_a_clean_store_counts_each_sealed_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let options = StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(4 << 10);
    // Texts of one length, so that every record is as long as the first.
    let text = |n: u64| format!("document {n:02}: ").repeat(40);
    let writer = WriterOptions::default().scrub(ScrubPolicy::off());
    let store = ConcurrentStore::create(&path, options.clone(), writer).unwrap();
    for n in 0..60 {
        store.put(id(n), text(n)).unwrap().wait().unwrap();
    }
    store.close().unwrap();
    let index_len = std::fs::metadata(path.join("index.tsi")).unwrap().len();
    // The first pass starts at the open, over the segments written before it and the
    // index file.
    let policy = ScrubPolicy {
        bytes_per_sec: Some(1 << 30),
        pause_between_passes: Duration::from_secs(3600),
    };
    let store =
        ConcurrentStore::open(&path, options, WriterOptions::default().scrub(policy)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.scrub_stats().passes() == 0 {
        assert!(Instant::now() < deadline, "{:?}", store.scrub_stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = store.scrub_stats();
    let record = store_mmap::BatchOp::Put {
        id: id(0),
        text: &text(0),
    }
    .encoded_len();
    assert_eq!(stats.passes(), 1, "{stats:?}");
    assert_eq!(stats.damaged_ranges(), 0, "{stats:?}");
    assert!(
        stats.records_ok() > 1 && stats.records_ok() < 60,
        "{stats:?}"
    );
    assert_eq!(
        stats.bytes(),
        stats.records_ok() * record + index_len,
        "{stats:?}"
    );
    assert_eq!(stats.last_problem(), None);
    let figures = store_format::Figures::of(&stats);
    assert_eq!(figures.get("textstore_scrub_passes_total"), Some(1.0));
    assert_eq!(
        figures.get("textstore_scrub_bytes_total"),
        Some(stats.bytes() as f64)
    );
    assert_eq!(
        figures.get("textstore_scrub_damaged_ranges_total"),
        Some(0.0)
    );
    store.close().unwrap();
}

/// A store whose one segment receives writes has no sealed segment to check, only its
/// index file: each pass checks that alone and ends, and the passes go on counting.
#[test]
fn a_pass_over_a_store_without_sealed_segments_checks_the_index_file_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let writer = WriterOptions::default().scrub(ScrubPolicy::off());
    let store = ConcurrentStore::create(&path, StoreOptions::new(), writer).unwrap();
    for n in 0..100 {
        store
            .put(id(n), format!("document {n}"))
            .unwrap()
            .wait()
            .unwrap();
    }
    store.close().unwrap();
    let index_len = std::fs::metadata(path.join("index.tsi")).unwrap().len();
    let policy = ScrubPolicy {
        bytes_per_sec: Some(1 << 30),
        pause_between_passes: Duration::from_millis(5),
    };
    let store = ConcurrentStore::open(
        &path,
        StoreOptions::new(),
        WriterOptions::default().scrub(policy),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.scrub_stats().passes() < 3 {
        assert!(Instant::now() < deadline, "{:?}", store.scrub_stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = store.scrub_stats();
    assert_eq!(stats.records_ok(), 0, "{stats:?}");
    assert_eq!(stats.damaged_ranges(), 0, "{stats:?}");
    assert_eq!(stats.bytes() % index_len, 0, "{stats:?}");
    assert!(stats.bytes() / index_len >= 3, "{stats:?}");
    store.close().unwrap();
}
