//! When reads check records: the first read of a record in a process checks it whole, later
//! reads trust what was checked, and `verify` and the scrub find damage that reached the
//! disk after that, so that the next read fails. With `ReadVerification::EveryRead` every
//! read checks. Damage is written through a second file handle, which the mapping sees at
//! once (they share the page cache), as it would see a page re-read from a damaged disk.

use std::os::unix::fs::FileExt;
use std::path::Path;

use store_mmap::{ReadVerification, Store, StoreOptions};

use crate::{Fixture, id, segment_files};

const TEXT: &str = "the quick brown fox jumps over the lazy dog";

/// A closed store of three documents in two segments (the first sealed), reopened with
/// `verification`; returns it with the offset of document 1's text in the first segment.
fn store(verification: ReadVerification) -> (Fixture, u64) {
    let options = StoreOptions::new()
        .segment_capacity(4096)
        .max_document_bytes(1024)
        .read_verification(verification);
    let mut f = Fixture::with(options);
    for n in 0..3u64 {
        f.store().put(id(n), &format!("{n}: {TEXT}")).unwrap();
    }
    f.store().put(id(9), &"x".repeat(1000)).unwrap();
    f.store().put(id(10), &"y".repeat(1000)).unwrap();
    f.store().put(id(11), &"z".repeat(1000)).unwrap();
    f.store().put(id(12), &"w".repeat(1000)).unwrap();
    f.close();
    let segments = f.segment_files();
    assert!(segments.len() >= 2, "the first segment is sealed");
    let bytes = std::fs::read(&segments[0]).unwrap();
    let at = bytes
        .windows(TEXT.len() + 3)
        .position(|w| w == format!("1: {TEXT}").as_bytes())
        .unwrap() as u64;
    f.reopen();
    (f, at)
}

/// Changes one letter of the text on disk, keeping it UTF-8: `q` becomes `p`.
fn damage(segment: &Path, text_at: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    let at = text_at + 7;
    file.write_all_at(b"p", at).unwrap();
}

#[test]
fn a_record_damaged_before_its_first_read_is_refused_on_that_read() {
    for verification in [ReadVerification::FirstRead, ReadVerification::EveryRead] {
        let (mut f, at) = store(verification);
        damage(&f.segment_files()[0], at);
        let err = f.store().get(id(1)).unwrap_err();
        assert!(err.is_corruption(), "{verification:?}: {err}");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(f.text(0).unwrap(), format!("0: {TEXT}"));
    }
}

#[test]
fn a_record_damaged_after_its_first_read_is_found_by_verify_then_refused() {
    let (mut f, at) = store(ReadVerification::FirstRead);
    assert_eq!(f.text(1).unwrap(), format!("1: {TEXT}"));
    damage(&f.segment_files()[0], at);
    // What the docs say: a checked record is served from the mapping without a second
    // check, until verify or the scrub finds the damage.
    assert_eq!(f.text(1).unwrap(), format!("1: {TEXT}").replace('q', "p"));
    let report = f.store().verify();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].what.contains("checksum"), "{report:?}");
    let err = f.store().get(id(1)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(f.text(2).unwrap(), format!("2: {TEXT}"));
}

#[test]
fn a_record_damaged_after_its_first_read_is_found_by_the_scrub_then_refused() {
    let (mut f, at) = store(ReadVerification::FirstRead);
    assert_eq!(f.text(1).unwrap(), format!("1: {TEXT}"));
    damage(&f.segment_files()[0], at);
    let mut report = None;
    let log = crate::logging::logged(|| report = Some(f.store().plan_scrub(None).run()));
    let report = report.unwrap();
    let found = crate::logging::line(&log, "the scrub found damage");
    assert!(
        found.contains("ERROR") && found.contains("offset="),
        "{found}"
    );
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].path, f.segment_files()[0]);
    assert!(report.segments >= 1 && report.records_ok >= 2, "{report:?}");
    let err = f.store().get(id(1)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(f.text(0).unwrap(), format!("0: {TEXT}"));
}

#[test]
fn with_every_read_checked_damage_after_a_read_is_refused_on_the_next() {
    let (mut f, at) = store(ReadVerification::EveryRead);
    assert_eq!(f.text(1).unwrap(), format!("1: {TEXT}"));
    damage(&f.segment_files()[0], at);
    let err = f.store().get(id(1)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn records_this_process_wrote_are_served_without_a_second_check() {
    // Written by this process, then damaged: the first read already trusts what it wrote.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path().join("s"), StoreOptions::new()).unwrap();
    store.put(id(1), TEXT).unwrap();
    store.sync().unwrap();
    let segment = &segment_files(&dir.path().join("s"))[0];
    let bytes = std::fs::read(segment).unwrap();
    let at = bytes
        .windows(TEXT.len())
        .position(|w| w == TEXT.as_bytes())
        .unwrap() as u64;
    damage(segment, at - 3);
    assert_eq!(&*store.get(id(1)).unwrap().unwrap(), TEXT.replace('q', "p"));
    assert!(!store.verify().is_clean());
    assert!(store.get(id(1)).unwrap_err().is_corruption());
}

#[test]
fn a_scrub_planned_a_segment_at_a_time_checks_every_sealed_segment_once_in_order() {
    let (mut f, at) = store(ReadVerification::FirstRead);
    damage(&f.segment_files()[0], at);
    // More sealed segments than the first, so that each plan's segment is told apart.
    for k in 20..24 {
        f.store().put(id(k), &"v".repeat(1000)).unwrap();
    }
    let files = f.segment_files();
    let sealed_ids: Vec<u32> = files[..files.len() - 1]
        .iter()
        .map(|path| crate::segment_id(path))
        .collect();
    let sealed = sealed_ids.len() as u64;
    assert!(sealed >= 2, "{sealed_ids:?}");
    let maps: Vec<_> = f.store().segment_maps().collect();
    // Bytes of records: each segment's data past its header.
    let sealed_bytes: u64 = maps[..maps.len() - 1]
        .iter()
        .map(|map| u64::from(map.committed_end()) - store_format::SEGMENT_HEADER_LEN as u64)
        .sum();
    let index_bytes = f.store().stats().unwrap().index_file_bytes();
    assert!(index_bytes > 0);
    let whole = f.store().plan_scrub(None).run();
    assert_eq!(
        (whole.segments, whole.bytes),
        (sealed, sealed_bytes + index_bytes),
        "{whole:?}"
    );

    let mut after = None;
    let mut seen = Vec::new();
    let mut total = store_mmap::ScrubReport::default();
    while let Some(plan) = f.store().plan_scrub_after(after, None) {
        let segment = plan.segment().expect("a plan names its segment");
        assert!(
            after.is_none_or(|after| segment > after),
            "{segment} after {after:?}"
        );
        seen.push(segment);
        after = Some(segment);
        let report = plan.run();
        assert_eq!(report.segments, 1, "{report:?}");
        total.bytes += report.bytes;
        total.records_ok += report.records_ok;
        total.problems.extend(report.problems);
    }
    assert_eq!(seen, sealed_ids);
    // The same checks as the pass over every segment at once, the damage included.
    assert_eq!(total.bytes, whole.bytes);
    assert_eq!(total.records_ok, whole.records_ok);
    assert_eq!(total.problems, whole.problems);
    assert!(f.store().plan_scrub_after(Some(u32::MAX), None).is_none());
}

/// Damage that reaches a page of the index file after lookups checked it: the scrub finds
/// it and forgets the page's check, so that every lookup that reaches the page fails from
/// then on instead of trusting it; the writer's next pause rebuilds the index from the data,
/// and every document reads back.
#[test]
fn the_scrub_finds_a_damaged_index_page_and_the_writer_rebuilds_it() {
    const DOCS: u64 = 600;
    let text = |n: u64| format!("document {n}: {TEXT}");
    let mut f = Fixture::new();
    for n in 0..DOCS {
        f.store().put(id(n), &text(n)).unwrap();
    }
    f.reopen();
    for n in 0..DOCS {
        assert_eq!(
            f.store().get(id(n)).unwrap().as_deref(),
            Some(text(n).as_str())
        );
    }
    let on_page = f
        .store()
        .checkpointed_index()
        .expect("an index file")
        .page_ids(2)
        .unwrap();
    assert!(!on_page.is_empty());
    let index = f.path().join("index.tsi");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&index)
        .unwrap();
    let mut header = [0u8; 96];
    file.read_exact_at(&mut header, 0).unwrap();
    let page = u64::from(u32::from_le_bytes(header[92..96].try_into().unwrap())) + 2 * 4096;
    let mut crc = [0u8; 4];
    file.read_exact_at(&mut crc, page + 4092).unwrap();
    file.write_all_at(&[crc[0] ^ 0x01], page + 4092).unwrap();

    let report = f.store().plan_scrub(None).run();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].path, index);
    assert_eq!(report.problems[0].offset, page);
    for &doc in &on_page {
        let err = f.store().get(doc).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }
    f.store().tend_checkpoint(true).unwrap();
    assert_eq!(f.store().stats().unwrap().index_rebuilds(), 1);
    for n in 0..DOCS {
        assert_eq!(
            f.store().get(id(n)).unwrap().as_deref(),
            Some(text(n).as_str())
        );
    }
    assert!(f.store().plan_scrub(None).run().problems.is_empty());
}
