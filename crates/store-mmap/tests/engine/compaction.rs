//! Compaction: what it reclaims, what readers keep, and what a crash at each step leaves.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;

use store_format::{DocId, SEGMENT_HEADER_LEN};

use store_mmap::{
    Compaction, CompactionPolicy, CompactionReport, CompactionScope, DocRead, Error, IndexLoad,
    StoreOptions,
};

use crate::{Fixture, id, segment_files, segment_id};

/// 16 KiB segments, so that a few hundred documents span many of them.
pub(crate) fn small_segments() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(4000)
}

/// In a store of [`small_segments`]: document 0, then documents
/// 10 to 14 (3,500 bytes each) that fill segment 1 and begin segment 2, then one batch (a
/// delete of document 0 and documents 1 to 9, 3,000 bytes each) that begins in segment 2
/// and goes on into segment 3. Segment 1 keeps document 0 and no dead byte. Returns the
/// fillers' text.
pub(crate) fn put_a_batch_spanning_segments_2_and_3(f: &mut Fixture) -> String {
    f.store().put(id(0), "written before the batch").unwrap();
    let filler = "f".repeat(3500);
    for k in 10..15 {
        f.store().put(id(k), &filler).unwrap();
    }
    let long = "b".repeat(3000);
    let mut batch = store_mmap::WriteBatch::new();
    batch.delete(id(0));
    for k in 1..10 {
        batch.put(id(k), &long);
    }
    f.store().put_batch(&batch).unwrap();
    let segments = segment_files(&f.path());
    assert_eq!(
        segments.len(),
        3,
        "the batch spans segments 2 and 3: {segments:?}"
    );
    filler
}

/// Plans, runs and installs a compaction of the sealed segments at least `segment_dead_ratio`
/// dead, due at any dead byte; there must be such a segment.
fn install_due(f: &mut Fixture, segment_dead_ratio: f64) -> CompactionReport {
    let policy = CompactionPolicy {
        dead_ratio: Some(0.0),
        min_dead_bytes: 1,
        segment_dead_ratio,
        max_bytes_per_sec: None,
    };
    let plan = f
        .store()
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
        .expect("a sealed segment dead enough");
    f.store()
        .install_compaction(plan.run().unwrap())
        .unwrap()
        .report
}

/// A store of 16 KiB segments over fault-injecting storage, which tests of a file system
/// short of room tell how much it has.
fn small_store_on_fault_storage() -> (Fixture, std::sync::Arc<store_mmap::fault::FaultStorage>) {
    let storage = std::sync::Arc::new(store_mmap::fault::FaultStorage::new());
    (
        Fixture::with(small_segments().storage(storage.clone())),
        storage,
    )
}

fn text(k: u64, version: u32) -> String {
    format!(
        "document {k}, version {version}: {}",
        "é".repeat((k % 40) as usize * 10)
    )
}

/// 300 documents, then every other one overwritten and every tenth deleted.
fn churned_store() -> (Fixture, BTreeMap<u64, String>) {
    churned_store_with(small_segments())
}

fn churned_store_with(options: StoreOptions) -> (Fixture, BTreeMap<u64, String>) {
    let mut f = Fixture::with(options);
    let mut model = BTreeMap::new();
    for k in 0..300 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    for k in (0..300).step_by(2) {
        f.store().put(id(k), &text(k, 2)).unwrap();
        model.insert(k, text(k, 2));
    }
    for k in (0..300).step_by(10) {
        f.store().delete(id(k)).unwrap();
        model.remove(&k);
    }
    (f, model)
}

fn check(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    for k in 0..300 {
        assert_eq!(f.text(k).as_ref(), model.get(&k), "document {k}");
    }
    assert_eq!(f.store().len(), model.len());
    let report = f.store().verify();
    assert!(report.is_clean(), "{:?}", report.problems);
}

fn plan_everything(f: &mut Fixture) -> Compaction {
    f.store()
        .plan_compaction(&CompactionScope::Everything)
        .unwrap()
        .expect("the churned store has dead bytes")
}

/// Names of the temporary files in `dir`: a compaction's outputs not yet in place.
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

/// Bytes of the files in `dir`, and of the spare files among them.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    let mut all = 0;
    let mut spares = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let len = entry.metadata().unwrap().len();
        all += len;
        if entry.path().extension().is_some_and(|e| e == "spare") {
            spares += len;
        }
    }
    (all, spares)
}

#[test]
fn compaction_reclaims_dead_bytes_and_keeps_every_document() {
    let (mut f, model) = churned_store();
    let before = f.store().stats().unwrap();
    assert!(before.dead_ratio() > 0.3, "{before:?}");
    let (files_before, _) = dir_bytes(&f.path());
    let epoch = DocRead::placement_epoch(f.store());

    let report = f.store().compact().unwrap();
    assert!(report.segments_in > 1, "{report:?}");
    // The stats said what the copies would take: every live record, in outputs that add
    // a header each.
    assert_eq!(
        report.bytes_out,
        before.compaction_copy_bytes() + report.segments_out * SEGMENT_HEADER_LEN as u64,
        "{report:?}"
    );
    // Records moved: a layer holding documents learns it from the epoch.
    assert_eq!(DocRead::placement_epoch(f.store()), epoch + 1);
    assert_eq!(report.records_copied, model.len() as u64);
    assert_eq!(report.records_superseded, 0);
    // Every delete's older versions were in the compacted segments.
    assert_eq!(report.tombstones_kept, 0, "{report:?}");
    assert_eq!(report.tombstones_dropped, 30);
    check(&mut f, &model);

    let after = f.store().stats().unwrap();
    assert_eq!(after.dead_bytes(), 0, "{after:?}");
    assert_eq!(after.compaction_copy_bytes(), 0, "{after:?}");
    assert_eq!(after.live_bytes(), before.live_bytes());
    assert_eq!(f.store().retired_segments(), 0);
    assert!(!f.path().join("retired.tsr").exists());
    // `compact` is asked for space: no replaced segment's file stays as a spare.
    let (files_after, spares) = dir_bytes(&f.path());
    assert_eq!(spares, 0);
    assert_eq!(f.store().stats().unwrap().spare_files(), 0);
    assert!(
        files_after < files_before * 3 / 4,
        "{files_before} -> {files_after}"
    );

    // The checkpoint written by `compact` covers the new segments.
    let reopened = f.reopen();
    assert!(matches!(
        reopened.recovery().index,
        IndexLoad::Loaded { .. }
    ));
    assert_eq!(reopened.recovery().records_replayed, 0);
    check(&mut f, &model);
    // Writes go on after it.
    f.store().put(id(1), "after").unwrap();
    assert_eq!(f.text(1).as_deref(), Some("after"));
}

#[test]
fn a_held_document_keeps_its_segment_file_until_dropped() {
    let (mut f, model) = churned_store();
    let held = f.store().get(id(1)).unwrap().unwrap();
    let first_segment = segment_files(&f.path())[0].clone();
    f.store().compact().unwrap();
    let waiting = f.store().retired_segments();
    assert!(waiting >= 1);
    assert_eq!(
        f.store().stats().unwrap().retired_segments(),
        waiting as u64
    );
    assert!(first_segment.exists(), "removed while a reader holds it");
    assert!(f.path().join("retired.tsr").exists());
    assert_eq!(held.text().as_ref() as &str, model[&1]);

    drop(held);
    assert_eq!(f.store().remove_retired().unwrap(), 0);
    assert_eq!(f.store().stats().unwrap().retired_segments(), 0);
    assert!(!first_segment.exists());
    assert!(!f.path().join("retired.tsr").exists());
    check(&mut f, &model);
}

/// The offline tools read a store as its open does: the segments a compaction replaced,
/// still on disk because a reader held one when the store closed, are left out. Read
/// again, their versions of the documents a compaction found deleted, whose tombstones it
/// dropped, would bring those documents back in the recovered store.
#[test]
fn the_offline_tools_leave_out_the_segments_a_compaction_replaced() {
    let (mut f, model) = churned_store();
    let held = f.store().get(id(1)).unwrap().unwrap();
    f.store().compact().unwrap();
    let live = f.store().stats().unwrap().segments();
    f.close();
    drop(held);
    assert!(f.path().join("retired.tsr").exists());
    assert!(segment_files(&f.path()).len() as u64 > live);

    let verified = store_mmap::verify_dir(f.path()).unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    assert_eq!(verified.segments, live);
    let recovered = f.path().with_file_name("recovered");
    let report = store_mmap::recover(f.path(), &recovered).unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.documents, model.len() as u64, "{report:?}");
    let store = store_mmap::Store::open(&recovered, StoreOptions::new()).unwrap();
    for k in 0..300 {
        let text = store.get(id(k)).unwrap();
        assert_eq!(
            text.as_deref(),
            model.get(&k).map(String::as_str),
            "document {k}"
        );
    }
}

/// A removal of replaced segments runs without the store, which goes on meanwhile; the
/// retired-segment list names the segments until the store hears the removal is durable,
/// and an open after a crash in between finds the list naming files that are gone.
#[test]
fn a_removal_runs_without_the_store_and_the_list_names_its_segments_until_it_is_finished() {
    for crash_before_finishing in [false, true] {
        let (mut f, mut model) = churned_store();
        let held = f.store().get(id(1)).unwrap().unwrap();
        let first_segment = segment_files(&f.path())[0].clone();
        f.store().compact().unwrap();
        let waiting = f.store().retired_segments();
        assert!(waiting >= 1);
        assert!(f.store().begin_removal().is_none(), "a reader holds it");

        drop(held);
        let removal = f.store().begin_removal().expect("nothing holds it now");
        assert!(f.store().begin_removal().is_none(), "handed out twice");
        assert_eq!(f.store().retired_segments(), waiting);
        // The store writes and compacts meanwhile, and the list it writes names the
        // segments still.
        for k in (1..300).step_by(2) {
            let text = format!("{k} during the removal");
            f.store().put(id(k), &text).unwrap();
            model.insert(k, text);
        }
        f.store().compact().unwrap();
        let removed = removal.run();
        assert!(!first_segment.exists());
        let listed = std::fs::read(f.path().join("retired.tsr")).expect("the list is there");
        let listed = store_format::RetiredList::decode(&listed).unwrap();
        let first_id = segment_id(&first_segment);
        assert!(
            listed.segments.contains(&first_id),
            "the list let go of a segment before its removal was known to be durable: {:?}",
            listed.segments
        );

        if crash_before_finishing {
            drop(removed);
            f.crash();
            let store = f.reopen();
            assert_eq!(store.recovery().retired_segments_removed, 0);
        } else {
            assert_eq!(f.store().finish_removal(removed).unwrap(), 0);
            assert_eq!(f.store().retired_segments(), 0);
        }
        check(&mut f, &model);
        if !crash_before_finishing {
            assert!(!f.path().join("retired.tsr").exists());
        }
    }
}

#[test]
fn a_crash_after_a_compaction_took_effect_removes_the_replaced_segments_on_open() {
    let (mut f, model) = churned_store();
    let held = f.store().get(id(1)).unwrap().unwrap();
    f.store().compact().unwrap();
    let waiting = f.store().retired_segments() as u64;
    assert!(waiting > 0);
    // The process stops with the replaced segments still on disk.
    f.crash();
    drop(held);
    let store = f.reopen();
    assert_eq!(store.recovery().retired_segments_removed, waiting);
    assert!(!f.path().join("retired.tsr").exists());
    check(&mut f, &model);
}

/// A replaced segment whose removal fails waits for the next removal, counted and listed
/// once, and the next removal takes it and the list.
#[test]
fn a_replaced_segment_that_cannot_be_removed_waits_once_for_the_next_removal() {
    use std::sync::Arc;
    use store_mmap::fault::{Fault, FaultOp, FaultStorage};
    let storage = Arc::new(FaultStorage::new());
    // No spares: every replaced segment's file is removed.
    let options = small_segments().storage(storage.clone()).spare_files(0);
    let (mut f, model) = churned_store_with(options);
    let held = f.store().get(id(1)).unwrap().unwrap();
    f.store().compact().unwrap();
    let listed = std::fs::read(f.path().join("retired.tsr")).unwrap();
    let listed = store_format::RetiredList::decode(&listed).unwrap().segments;
    assert!(!listed.is_empty());
    let failing = segment_files(&f.path())
        .into_iter()
        .find(|path| segment_id(path) == listed[0])
        .expect("a reader holds the replaced segments");
    drop(held);
    storage.inject_on(Fault::Fail(FaultOp::Remove), &failing);
    assert!(f.store().remove_retired().is_err());
    assert_eq!(storage.injected(Fault::Fail(FaultOp::Remove)), 1);
    assert_eq!(f.store().retired_segments(), 1);
    assert!(failing.exists());
    let listed = std::fs::read(f.path().join("retired.tsr")).unwrap();
    let listed = store_format::RetiredList::decode(&listed).unwrap().segments;
    assert_eq!(listed, vec![segment_id(&failing)]);
    assert_eq!(f.store().remove_retired().unwrap(), 0);
    assert!(!failing.exists());
    assert!(!f.path().join("retired.tsr").exists());
    check(&mut f, &model);
}

/// An open that cannot remove what a compaction left (a replaced segment, an unfinished
/// output) fails naming the file, and leaves the rest for the next open: the retired list
/// still names what it replaced, and every document reads the same after it.
#[test]
fn an_open_that_cannot_remove_what_a_compaction_left_fails_and_loses_nothing() {
    use std::sync::Arc;
    use store_mmap::fault::{Fault, FaultOp, FaultStorage};
    for finished in [true, false] {
        let (mut f, model) = churned_store();
        let held = f.store().get(id(1)).unwrap().unwrap();
        let left = if finished {
            f.store().compact().unwrap();
            let listed = std::fs::read(f.path().join("retired.tsr")).unwrap();
            let first = store_format::RetiredList::decode(&listed).unwrap().segments[0];
            let replaced = segment_files(&f.path())
                .into_iter()
                .find(|path| segment_id(path) == first)
                .expect("the replaced segment stays while a reader holds it");
            f.crash();
            f.path().join(replaced.file_name().unwrap())
        } else {
            let done = plan_everything(&mut f).run().unwrap();
            f.crash();
            drop(done);
            crate::files_with_extension(&f.path(), "tmp")
                .into_iter()
                .find(|path| path.to_string_lossy().ends_with(".seg.tmp"))
                .expect("an unfinished output")
        };
        drop(held);
        let storage = Arc::new(FaultStorage::new());
        storage.inject_on(Fault::Fail(FaultOp::Remove), &left);
        let err = store_mmap::Store::open(f.path(), small_segments().storage(storage.clone()))
            .err()
            .expect("the removal failed");
        assert_eq!(storage.injected(Fault::Fail(FaultOp::Remove)), 1);
        assert!(
            err.to_string().contains(&left.display().to_string()),
            "finished: {finished}: {err}"
        );
        assert!(left.exists());
        assert_eq!(f.path().join("retired.tsr").exists(), finished);
        let store = f.reopen();
        let report = store.recovery().clone();
        if finished {
            assert!(report.retired_segments_removed > 0, "{report:?}");
        } else {
            assert!(report.unfinished_compaction_files_removed > 0, "{report:?}");
        }
        assert!(!left.exists());
        check(&mut f, &model);
    }
}

/// A retired-segment list the open cannot read (here a directory has its name) fails the
/// open naming it, rather than being taken for no list: what it names would otherwise stay
/// on disk as segments of the store.
#[test]
fn a_retired_list_that_cannot_be_read_fails_the_open() {
    let (mut f, model) = churned_store();
    f.close();
    let list = f.path().join("retired.tsr");
    std::fs::create_dir(&list).unwrap();
    let err = f.try_reopen().err().expect("the list cannot be read");
    assert!(
        err.to_string().contains(&list.display().to_string()),
        "{err}"
    );
    std::fs::remove_dir(&list).unwrap();
    f.reopen();
    check(&mut f, &model);
}

#[test]
fn a_crash_before_a_compaction_took_effect_leaves_the_store_as_it_was() {
    let (mut f, model) = churned_store();
    let segments_before = segment_files(&f.path());
    let plan = plan_everything(&mut f);
    let done = plan.run().unwrap();
    // The outputs exist under temporary names when the process stops.
    f.crash();
    drop(done);
    let store = f.reopen();
    assert!(store.recovery().unfinished_compaction_files_removed > 0);
    assert_eq!(store.recovery().retired_segments_removed, 0);
    // The plan moved writes to a new segment; nothing else changed.
    assert_eq!(segment_files(&f.path()).len(), segments_before.len() + 1);
    check(&mut f, &model);
}

#[test]
fn a_compaction_that_is_not_installed_leaves_no_file() {
    let (mut f, model) = churned_store();
    let plan = plan_everything(&mut f);
    drop(plan.run().unwrap());
    assert_eq!(temporary_files(&f.path()), Vec::<String>::new());
    check(&mut f, &model);
}

#[test]
fn a_second_compaction_of_the_same_segments_is_refused_and_discarded() {
    let (mut f, model) = churned_store();
    let first = plan_everything(&mut f);
    let second = plan_everything(&mut f);
    let inputs = first.inputs();
    assert_eq!(second.inputs(), inputs);
    let (first, second) = (first.run().unwrap(), second.run().unwrap());
    f.store().install_compaction(first).unwrap();
    let err = f.store().install_compaction(second).unwrap_err();
    assert!(
        matches!(err, Error::CompactionConflict { segment } if inputs.contains(&segment)),
        "{err}"
    );
    f.store().remove_retired().unwrap();
    assert_eq!(temporary_files(&f.path()), Vec::<String>::new());
    check(&mut f, &model);
    f.reopen();
    check(&mut f, &model);
}

#[test]
fn writes_between_plan_and_install_win_over_the_copies() {
    let (moved, superseded) = write_between_plan_and_install(false);
    assert_eq!(superseded, 2);
    assert!(!moved.contains(&id(1)) && !moved.contains(&id(3)));
}

/// An install whose moves meet a damaged page of the index file (one written between the
/// plan and the install, its pages damaged after it was mapped) retires the inputs and
/// rebuilds the index from the live segments: it moves the same documents, and counts the
/// same copies superseded by writes since the plan, as the same install over an intact
/// file.
#[test]
fn an_install_whose_moves_meet_a_damaged_index_page_rebuilds_the_index() {
    assert_eq!(
        write_between_plan_and_install(true),
        write_between_plan_and_install(false)
    );
}

/// Plans a compaction of [`churned_store`] and runs it, overwrites document 1 and deletes
/// document 3, writes a new index file (with every page of it then damaged in place when
/// `damage_index`), and installs the compaction; checks every document, before and after a
/// crash, and that the install rebuilt the index exactly when the file was damaged.
/// Returns the documents moved, in order, and the copies counted as superseded.
fn write_between_plan_and_install(damage_index: bool) -> (Vec<DocId>, u64) {
    use std::os::unix::fs::FileExt;

    let (mut f, mut model) = churned_store();
    let plan = plan_everything(&mut f);
    let done = plan.run().unwrap();
    f.store().put(id(1), "newer than the copy").unwrap();
    f.store().delete(id(3)).unwrap();
    model.insert(1, "newer than the copy".to_owned());
    model.remove(&3);
    f.store().checkpoint().unwrap();
    if damage_index {
        let index = f.path().join("index.tsi");
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .open(&index)
            .unwrap();
        let mut header = [0u8; 96];
        file.read_exact_at(&mut header, 0).unwrap();
        let table = u64::from(u32::from_le_bytes(header[92..96].try_into().unwrap()));
        let len = file.metadata().unwrap().len();
        // In place, as a disk would damage it: the store's mapping shows the change.
        for page in (table..len).step_by(4096) {
            let mut byte = [0u8];
            file.read_exact_at(&mut byte, page + 20).unwrap();
            file.write_all_at(&[byte[0] ^ 0x01], page + 20).unwrap();
        }
    }
    let mut installed = f.store().install_compaction(done).unwrap();
    assert_eq!(
        f.store().stats().unwrap().index_rebuilds(),
        u64::from(damage_index)
    );
    check(&mut f, &model);
    f.crash();
    f.reopen();
    check(&mut f, &model);
    installed.moved.sort_unstable();
    (installed.moved, installed.report.records_superseded)
}

#[test]
fn a_tombstone_stays_while_an_older_version_may_remain() {
    let mut f = Fixture::with(small_segments());
    // Document 1's put lives in the first segment, among documents that stay live, so that
    // segment is never dead enough for the policy below.
    f.store().put(id(1), "first version").unwrap();
    for k in 100..160 {
        f.store().put(id(k), &text(k, 1)).unwrap();
    }
    // Its tombstone lands among documents overwritten many times: mostly dead segments.
    let churn = |f: &mut Fixture, rounds: std::ops::Range<u32>| {
        for round in rounds {
            for k in 200..210 {
                f.store().put(id(k), &text(k, round)).unwrap();
            }
        }
    };
    churn(&mut f, 0..10);
    f.store().delete(id(1)).unwrap();
    churn(&mut f, 10..20);
    let policy = CompactionPolicy {
        dead_ratio: Some(0.2),
        min_dead_bytes: 1,
        segment_dead_ratio: 0.9,
        ..CompactionPolicy::default()
    };
    let plan = f
        .store()
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
        .expect("the churned segments are due");
    assert!(!plan.inputs().contains(&1), "{:?}", plan.inputs());
    let report = f
        .store()
        .install_compaction(plan.run().unwrap())
        .unwrap()
        .report;
    assert_eq!(report.tombstones_kept, 1, "{report:?}");
    assert_eq!(report.tombstones_dropped, 0, "{report:?}");
    f.store().remove_retired().unwrap();

    // Without the index checkpoint every record is replayed, the old put of document 1 in
    // segment 1 included: only its tombstone keeps it deleted.
    f.close();
    std::fs::remove_file(f.path().join("index.tsi")).unwrap();
    let store = f.reopen();
    assert_eq!(store.recovery().index, IndexLoad::Missing);
    assert_eq!(f.text(1), None, "a deleted document came back");
    for k in 200..210 {
        assert_eq!(f.text(k), Some(text(k, 19)));
    }

    // Compacting everything takes segment 1 too: no older version can remain.
    let report = f.store().compact().unwrap();
    assert_eq!(report.tombstones_dropped, 1, "{report:?}");
    f.close();
    std::fs::remove_file(f.path().join("index.tsi")).unwrap();
    f.reopen();
    assert_eq!(f.text(1), None, "a deleted document came back");
    assert_eq!(f.store().stats().unwrap().dead_bytes(), 0);
}

#[test]
fn the_policy_waits_for_enough_dead_bytes() {
    let (mut f, _) = churned_store();
    let dead = f.store().stats().unwrap().dead_bytes();
    let strict = CompactionPolicy {
        min_dead_bytes: dead * 2,
        ..CompactionPolicy::default()
    };
    assert!(!f.store().compaction_due(&strict));
    assert!(
        f.store()
            .plan_compaction(&CompactionScope::Due(strict))
            .unwrap()
            .is_none()
    );
    assert!(!f.store().compaction_due(&CompactionPolicy::manual()));
    let eager = CompactionPolicy {
        min_dead_bytes: 1,
        dead_ratio: Some(0.1),
        ..CompactionPolicy::default()
    };
    assert!(f.store().compaction_due(&eager));
    let plan = f
        .store()
        .plan_compaction(&CompactionScope::Due(eager.clone()))
        .unwrap()
        .unwrap();
    f.store().install_compaction(plan.run().unwrap()).unwrap();
    // What it could not reclaim does not make it due again.
    assert!(!f.store().compaction_due(&eager));
}

/// A store with no sealed data is never due, even for a policy content with no dead bytes:
/// there is nothing a compaction could take.
#[test]
fn a_store_without_sealed_data_is_never_due() {
    let mut f = Fixture::with(small_segments());
    let anything = CompactionPolicy {
        dead_ratio: Some(0.0),
        min_dead_bytes: 0,
        ..CompactionPolicy::default()
    };
    assert!(!f.store().compaction_due(&anything), "an empty store");
    f.store().put(id(1), "one").unwrap();
    f.store().put(id(1), "one again").unwrap();
    assert!(
        !f.store().compaction_due(&anything),
        "dead bytes in the active segment only"
    );
}

/// A manual policy never finds the store due, however dead it is, where the default's
/// thresholds would.
#[test]
fn a_manual_policy_is_never_due() {
    let mut f = Fixture::with(small_segments());
    for version in 1..=4 {
        for k in 0..100 {
            f.store().put(id(k), &text(k, version)).unwrap();
        }
    }
    let eager = |policy: CompactionPolicy| CompactionPolicy {
        min_dead_bytes: 1,
        ..policy
    };
    assert!(
        f.store()
            .compaction_due(&eager(CompactionPolicy::default()))
    );
    let manual = eager(CompactionPolicy::manual());
    assert!(!f.store().compaction_due(&manual));
    assert!(
        f.store()
            .plan_compaction(&CompactionScope::Due(manual))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_cancelled_compaction_removes_what_it_wrote() {
    let (mut f, model) = churned_store();
    let mut plan = plan_everything(&mut f);
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    plan.cancel_when(cancel);
    let err = plan.run().err().expect("cancelled");
    assert!(matches!(err, Error::CompactionCancelled), "{err}");
    assert_eq!(temporary_files(&f.path()), Vec::<String>::new());
    check(&mut f, &model);
}

/// A commit that spans segments counts only while its last part is there, so compaction
/// replaces its segments together: here only the last part's segment is dead enough, and
/// the plan takes the earlier ones with it. Left behind, their parts would read as a commit
/// cut short on the next open, and its documents would be lost.
#[test]
fn compaction_replaces_the_segments_of_a_spanning_commit_together() {
    let mut f = Fixture::with(small_segments());
    for k in 0..5 {
        f.store().put(id(k), &text(k, 1)).unwrap();
    }
    let spanning = |k: u64| format!("spanning {k} ").repeat(90);
    let mut batch = store_mmap::WriteBatch::new();
    for k in 1000..1040 {
        batch.put(id(k), &spanning(k));
    }
    f.store().put_batch(&batch).unwrap();
    let segment_of = |f: &mut Fixture, k: u64| f.store().location(id(k)).unwrap().unwrap().segment;
    let (first, last) = (segment_of(&mut f, 1000), segment_of(&mut f, 1039));
    // Segment ids are not consecutive: a roll leaves ids free below the new segment.
    let spanned: Vec<u32> = f
        .store()
        .segment_maps()
        .map(|map| map.id())
        .filter(|id| (first..=last).contains(id))
        .collect();
    assert!(spanned.len() >= 3, "the batch spans segments {spanned:?}");
    // Writes move past the last part's segment, then overwrite everything of the batch in
    // it, so that most of it is dead.
    for k in 0..60 {
        f.store().put(id(2000 + k), &text(k, 3)).unwrap();
    }
    assert!(f.store().active_segment() > last);
    for k in 1000..1040 {
        if segment_of(&mut f, k) == last {
            f.store().put(id(k), &spanning(k)).unwrap();
        }
    }
    let policy = CompactionPolicy {
        min_dead_bytes: 1,
        dead_ratio: Some(0.01),
        segment_dead_ratio: 0.3,
        ..CompactionPolicy::default()
    };
    let plan = f
        .store()
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
        .expect("the last part's segment is dead");
    let inputs = plan.inputs();
    for segment in &spanned {
        assert!(inputs.contains(segment), "{segment} not in {inputs:?}");
    }
    let done = plan.run().unwrap();
    f.store().install_compaction(done).unwrap();
    f.close();
    f.reopen();
    for k in 1000..1040 {
        assert_eq!(f.text(k), Some(spanning(k)), "document {k}");
    }
    for k in 0..5 {
        assert_eq!(f.text(k), Some(text(k, 1)));
    }
    assert!(f.store().verify().is_clean());
}

/// A store over fault-injecting storage whose first 4 MiB segment is half dead, with the
/// documents it holds, for the compaction's write-back.
fn half_dead_store() -> (
    Fixture,
    std::sync::Arc<store_mmap::fault::FaultStorage>,
    BTreeMap<u64, String>,
) {
    let storage = std::sync::Arc::new(store_mmap::fault::FaultStorage::new());
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(4 << 20)
            .max_document_bytes(4000)
            .storage(storage.clone()),
    );
    let text = |k: u64, version: u32| format!("{k} {version} {}", "ü".repeat(500));
    let mut model = BTreeMap::new();
    for version in 1..=2 {
        // Every document, then every other one again: the first segment is half dead.
        for k in (0..6000).step_by(version as usize) {
            f.store().put(id(k), &text(k, version)).unwrap();
            model.insert(k, text(k, version));
        }
    }
    (f, storage, model)
}

/// Plans, runs and installs one compaction of `scope`, which must find something to do.
fn compact_in_steps(f: &mut Fixture, scope: &CompactionScope) -> CompactionReport {
    let plan = f
        .store()
        .plan_compaction(scope)
        .unwrap()
        .expect("a compaction is due");
    let done = plan.run().unwrap();
    f.store().install_compaction(done).unwrap().report
}

fn check_documents(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    for (k, text) in model {
        assert_eq!(f.text(*k).as_ref(), Some(text), "document {k}");
    }
}

/// A compaction starts the write-back of each output as it writes it, in steps of at least
/// 256 KiB, in order and without a gap, so that the sync that ends the output finds little
/// left; commits of small documents start none. Every document reads back after the
/// compaction and after a reopen.
#[test]
fn a_compaction_writes_its_outputs_back_as_it_goes() {
    let (mut f, storage, model) = half_dead_store();
    assert!(storage.write_backs().is_empty(), "small commits");
    let before = segment_files(&f.path());
    f.store().compact().unwrap();

    let outputs: Vec<_> = segment_files(&f.path())
        .into_iter()
        .filter(|path| !before.contains(path))
        .collect();
    assert!(!outputs.is_empty());
    let step = 256 << 10;
    let mut written_back = 0;
    for output in &outputs {
        let ranges = storage.write_backs_of(&output.with_extension("seg.tmp"));
        let len = std::fs::metadata(output).unwrap().len();
        if ranges.is_empty() {
            // The segment writes moved to, or an output smaller than a step.
            assert!(len < step + 4096, "{output:?}: {len} bytes, no write-back");
            continue;
        }
        assert!(ranges[0].0 < 4096, "{output:?}: {ranges:?}");
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "{output:?}: {ranges:?}");
        }
        assert!(ranges.iter().all(|&(_, n)| n >= step), "{ranges:?}");
        let (last, n) = ranges[ranges.len() - 1];
        assert!(
            last + n <= len && len - (last + n) < step,
            "{len}: {ranges:?}"
        );
        written_back += ranges.iter().map(|&(_, n)| n).sum::<u64>();
    }
    assert!(written_back >= 4 << 20, "{written_back}");
    check_documents(&mut f, &model);
    f.reopen();
    check_documents(&mut f, &model);
}

/// A compaction whose output's write-back fails to start fails, naming the output; it
/// leaves no file behind and changes no document, the store goes on taking writes, and the
/// next compaction succeeds.
#[test]
fn a_compaction_whose_write_back_fails_changes_nothing() {
    use store_mmap::fault::{Fault, FaultOp};
    let (mut f, storage, mut model) = half_dead_store();
    storage.inject(Fault::Fail(FaultOp::WriteBack), 1);
    let err = f.store().compact().unwrap_err();
    assert!(err.to_string().contains(".seg.tmp"), "{err}");
    assert_eq!(storage.injected(Fault::Fail(FaultOp::WriteBack)), 1);
    assert!(temporary_files(&f.path()).is_empty());
    check_documents(&mut f, &model);

    f.store().put(id(7), "after the failed compaction").unwrap();
    model.insert(7, "after the failed compaction".to_owned());
    let report = f.store().compact().unwrap();
    assert!(
        report.segments_in >= 1 && report.records_copied > 0,
        "{report:?}"
    );
    check_documents(&mut f, &model);
    f.reopen();
    check_documents(&mut f, &model);
}

/// A crash in the middle of a batch that spans segments, after its first part was written
/// and its segment sealed but before the next segment took its name, leaves that part on
/// disk, abandoned. A compaction of its segment copies none of its tombstones: in an
/// output, a copied delete would count, and an index rebuilt from the data would lose the
/// document it names. The part may still end its segment's data, or a write after the
/// open may follow it there: it counts in neither case.
#[test]
fn a_compaction_copies_no_tombstone_of_a_part_a_crash_abandoned() {
    for write_after in [false, true] {
        compact_after_an_abandoned_part(write_after);
    }
}

fn compact_after_an_abandoned_part(write_after: bool) {
    // Segment 1 keeps document 0 and no dead byte, so that a compaction leaves it alone,
    // and its tombstones stay above the floor.
    let mut f = Fixture::with(small_segments());
    put_a_batch_spanning_segments_2_and_3(&mut f);
    f.crash();
    std::fs::remove_file(segment_files(&f.path()).last().unwrap()).unwrap();
    // Recover leaves the part out too, and says how many records it held.
    let report = store_mmap::recover(f.path(), f.path().with_file_name("recovered")).unwrap();
    assert!(report.abandoned_records > 0, "{report:?}");
    assert_eq!(report.documents, 6, "{report:?}");
    let store = f.reopen();
    assert!(
        store.recovery().records_abandoned > 0,
        "{:?}",
        store.recovery()
    );
    assert_eq!(f.text(0).as_deref(), Some("written before the batch"));
    if write_after {
        // The write goes after the abandoned part, in its segment.
        f.store().put(id(20), "written after the crash").unwrap();
    }

    let report = f.store().compact().unwrap();
    assert_eq!(
        report.tombstones_kept, 0,
        "write after: {write_after}, {report:?}"
    );
    f.close();
    std::fs::remove_file(f.path().join("index.tsi")).unwrap();
    let store = f.reopen();
    assert_eq!(store.recovery().index, IndexLoad::Missing);
    assert_eq!(f.text(0).as_deref(), Some("written before the batch"));
    if write_after {
        assert_eq!(f.text(20).as_deref(), Some("written after the crash"));
    }
    assert_eq!(f.store().len(), 6 + usize::from(write_after));
}

/// A batch that spans segments and was committed whole: its first part ends its segment's
/// data and continues in the next. A compaction of that segment copies the part's
/// tombstone (an older version of its document lies in a segment it leaves alone), and an
/// index rebuilt from the data still reads the document as deleted.
#[test]
fn a_compaction_keeps_the_tombstones_of_a_part_whose_commit_completed() {
    let mut f = Fixture::with(small_segments());
    let filler = put_a_batch_spanning_segments_2_and_3(&mut f);
    // Dead bytes in segment 2 (its filler written again), and writes that seal segment 3,
    // so that the compaction may take both parts of the batch.
    f.store().put(id(14), "smaller").unwrap();
    for k in 30..36 {
        f.store().put(id(k), &filler).unwrap();
    }
    assert!(segment_files(&f.path()).len() > 3);
    let report = install_due(&mut f, 0.01);
    assert_eq!(report.tombstones_kept, 1, "{report:?}");
    f.close();
    std::fs::remove_file(f.path().join("index.tsi")).unwrap();
    let store = f.reopen();
    assert_eq!(store.recovery().index, IndexLoad::Missing);
    assert_eq!(f.text(0), None, "the batch's delete was lost");
    assert_eq!(f.text(9), Some("b".repeat(3000)));
    assert_eq!(f.store().len(), 20);
}

/// Segments that a commit spans are linked, each to the one before. A compaction due for a
/// chain's last segment alone takes every segment of that chain and none of another: a
/// first part left behind would no longer lead to its last part, and the data alone would
/// lose its documents. Here a batch spans three segments, a put starts a fourth with no
/// link, and a second batch spans that one and the next.
#[test]
fn a_compaction_takes_every_segment_a_commit_spans_and_no_other() {
    let mut f = Fixture::with(small_segments());
    let mut model = BTreeMap::new();
    let mut put_batch = |f: &mut Fixture, keys: std::ops::Range<u64>| {
        let mut batch = store_mmap::WriteBatch::new();
        for k in keys {
            let text = format!("{k}:{}", "s".repeat(3500));
            batch.put(id(k), &text);
            model.insert(k, text);
        }
        f.store().put_batch(&batch).unwrap();
        segment_files(&f.path()).len()
    };
    assert_eq!(
        put_batch(&mut f, 0..10),
        3,
        "the first batch spans three segments"
    );
    // Singles that fill the third segment and start a fourth, not linked to it.
    let mut singles = 0;
    while segment_files(&f.path()).len() == 3 {
        f.store()
            .put(id(100 + singles), "t".repeat(3000).as_str())
            .unwrap();
        singles += 1;
    }
    assert_eq!(
        put_batch(&mut f, 10..16),
        5,
        "the second batch spans two segments"
    );
    // A quarter of the second batch's last segment dead, nothing of the others; then
    // writes that seal it.
    f.store().put(id(15), "smaller").unwrap();
    for k in 20..26 {
        f.store().put(id(k), &"f".repeat(3500)).unwrap();
    }
    let report = install_due(&mut f, 0.1);
    assert_eq!(report.segments_in, 2, "{report:?}");
    f.store().checkpoint().unwrap();
    let rebuilt = f.rebuilt(200).unwrap();
    for k in 0..15 {
        assert_eq!(rebuilt.get(&k), model.get(&k), "document {k}");
    }
    assert_eq!(rebuilt.get(&15).map(String::as_str), Some("smaller"));
    assert_eq!(rebuilt.len(), 16 + singles as usize + 6);
}

/// A record rewritten behind the engine's back with a valid checksum, where an index file
/// says a document is: its text not UTF-8, or another document's record of the same
/// sequence number. A compaction checks each record it copies against what its plan
/// expects, refuses the one that differs with its file and offset, and leaves no output.
#[test]
fn a_compaction_refuses_a_record_that_is_not_what_the_index_says() {
    for (case, rewritten_id, payload) in [
        ("not UTF-8", id(1), &b"ok\xff!"[..]),
        ("another document", id(2), &b"okay"[..]),
    ] {
        let mut f = Fixture::new();
        f.store().put(id(1), "okay").unwrap();
        let seq = f.store().last_seq();
        f.store().put(id(5), "dead soon").unwrap();
        f.store().checkpoint().unwrap();
        let at = f.store().location(id(1)).unwrap().unwrap();
        f.close();
        let path = crate::rewrite_put(&f.path(), at, rewritten_id, seq, payload);

        f.reopen();
        f.store().put(id(5), "replaced").unwrap();
        let err = f.store().compact().expect_err(case);
        let (offset, what) = match case {
            "not UTF-8" => (u64::from(at.offset) + 48 + 2, "is not UTF-8"),
            _ => (u64::from(at.offset), "compaction expected document"),
        };
        match &err {
            Error::Corrupt {
                path: named,
                offset: found,
                what: said,
            } => {
                assert_eq!((named, *found), (&path, offset), "{case}: {err}");
                assert!(said.contains(what), "{case}: {err}");
            }
            other => panic!("{case}: {other}"),
        }
        assert!(temporary_files(&f.path()).is_empty(), "{case}");
        assert_eq!(f.text(5).as_deref(), Some("replaced"));
    }
}

/// The policy's compaction leaves half the file system's room to the commits. Where the
/// copies of all it is due for need more, it takes the segments that free the most for what
/// they copy, within that half; where not one fits, it is refused and writes nothing.
#[test]
fn a_due_compaction_short_of_room_takes_the_most_dead_segments_that_fit() {
    let (mut f, storage) = small_store_on_fault_storage();
    let mut model = BTreeMap::new();
    for k in 0..300 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    // The first documents again, all of them, then every other one up to 200: the first
    // segments are wholly dead, the next ones half.
    for k in (0..40).chain((40..200).step_by(2)) {
        f.store().put(id(k), &text(k, 2)).unwrap();
        model.insert(k, text(k, 2));
    }
    let first = f.path().join("0000000001.seg");
    let policy = CompactionPolicy {
        dead_ratio: Some(0.1),
        min_dead_bytes: 1,
        ..CompactionPolicy::default()
    };
    let due = CompactionScope::Due(policy);
    let copies = f.store().stats().unwrap().compaction_copy_bytes();
    assert!(copies > 0);

    // Room for none of the half-dead segments' copies: the wholly dead ones need none.
    storage.set_available_bytes(Some(0));
    let report = compact_in_steps(&mut f, &due);
    assert!(report.segments_in > 0, "{report:?}");
    assert_eq!(
        (report.records_copied, report.bytes_out),
        (0, 0),
        "{report:?}"
    );
    // The replaced segments go once a checkpoint holds the compaction's moves.
    f.store().checkpoint().unwrap();
    assert!(!first.exists(), "the wholly dead first segment stays");
    check_documents(&mut f, &model);
    match f.store().plan_compaction(&due) {
        Err(Error::NoRoomToCompact {
            needed_bytes,
            available_bytes: 0,
            ..
        }) => assert!(needed_bytes >= copies / 2, "{needed_bytes}"),
        Err(other) => panic!("expected the compaction refused for room, got {other}"),
        Ok(plan) => panic!(
            "expected the compaction refused, got a plan: {}",
            plan.is_some()
        ),
    }
    assert!(temporary_files(&f.path()).is_empty());

    // Room for the copies of all: half of it takes some of the half-dead segments.
    storage.set_available_bytes(Some(copies));
    let dead_before = f.store().stats().unwrap().dead_bytes();
    let report = compact_in_steps(&mut f, &due);
    assert!(
        report.records_copied > 0 && report.bytes_out <= copies / 2,
        "{report:?}, room {copies}"
    );
    let dead_after = f.store().stats().unwrap().dead_bytes();
    assert!(dead_after < dead_before, "{dead_before} -> {dead_after}");
    check_documents(&mut f, &model);

    // With the file system's own room, the next one takes the rest.
    storage.set_available_bytes(None);
    compact_in_steps(&mut f, &due);
    assert_eq!(f.store().stats().unwrap().dead_bytes(), 0);
    check_documents(&mut f, &model);
    f.reopen();
    check_documents(&mut f, &model);
}

/// Of the segments a policy's compaction short of room is due for, it takes those that free
/// the most for what they copy: two three-quarters dead before a half-dead one, within the
/// same room.
#[test]
fn a_due_compaction_short_of_room_takes_the_most_dead_first() {
    let (mut f, storage) = small_store_on_fault_storage();
    // Four documents fill a 16 KiB segment: 1 and 2 hold documents 0-7, 3 and 4 hold 8-15.
    let text = |k: u64, version: u32| format!("{k} {version} {}", "x".repeat(3900));
    for k in 0..16 {
        f.store().put(id(k), &text(k, 1)).unwrap();
    }
    let segments: Vec<u32> = f
        .segment_files()
        .iter()
        .map(|path| segment_id(path))
        .collect();
    assert_eq!(segments.len(), 4, "{segments:?}");
    // Half of segments 1 and 2 again, three quarters of 3 and 4.
    let again = [0, 1, 4, 5, 8, 9, 10, 12, 13, 14];
    for k in again {
        f.store().put(id(k), &text(k, 2)).unwrap();
    }
    let record = f.store().stats().unwrap().live_bytes() / 16;
    // Room for three records' copies, of which the compaction takes half: segments 3 and
    // 4 copy one record each; segment 1 alone would copy two.
    storage.set_available_bytes(Some(6 * record));
    let policy = CompactionPolicy {
        dead_ratio: Some(0.1),
        min_dead_bytes: 1,
        ..CompactionPolicy::default()
    };
    let plan = f
        .store()
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
        .unwrap();
    assert_eq!(plan.inputs(), segments[2..]);
    let done = plan.run().unwrap();
    let report = f.store().install_compaction(done).unwrap().report;
    assert_eq!(
        (report.segments_in, report.records_copied),
        (2, 2),
        "{report:?}"
    );
    for k in 0..16 {
        let version = if again.contains(&k) { 2 } else { 1 };
        assert_eq!(f.text(k), Some(text(k, version)), "document {k}");
    }
}

/// The tombstones a compaction must keep take room that its plan cannot see: a segment of
/// dead puts and tombstones has no live record to copy, yet its tombstones stay while their
/// documents' older versions do. The run sets them against the room before it writes, and
/// refuses where they do not fit, with the store unchanged; with room, they are copied.
#[test]
fn a_compaction_without_room_for_the_tombstones_it_keeps_is_refused() {
    let (mut f, storage) = small_store_on_fault_storage();
    // Four of these fill a 16 KiB segment.
    let text = |k: u64, version: u32| format!("{k} {version} {}", "x".repeat(3900));
    let small = |k: u64| format!("small {k}");
    // The first segment: four documents that stay, and five small ones, deleted in the
    // second.
    for k in 0..4 {
        f.store().put(id(k), &text(k, 1)).unwrap();
    }
    for k in 100..105 {
        f.store().put(id(k), &small(k)).unwrap();
    }
    // The second: the five tombstones among four documents written again in the third.
    f.store().put(id(10), &text(10, 1)).unwrap();
    for k in 100..105 {
        f.store().delete(id(k)).unwrap();
    }
    for k in 11..14 {
        f.store().put(id(k), &text(k, 1)).unwrap();
    }
    for k in 10..14 {
        f.store().put(id(k), &text(k, 2)).unwrap();
    }
    let files = f.segment_files();
    assert_eq!(files.len(), 3, "{files:?}");
    let second = files[1].clone();
    let second_id = segment_id(&second);
    let check = |f: &mut Fixture| {
        for k in 0..4 {
            assert_eq!(f.text(k), Some(text(k, 1)), "document {k}");
        }
        for k in 10..14 {
            assert_eq!(f.text(k), Some(text(k, 2)), "document {k}");
        }
        for k in 100..105 {
            assert_eq!(f.text(k), None, "deleted document {k}");
        }
    };
    let due = CompactionScope::Due(CompactionPolicy {
        dead_ratio: Some(0.1),
        min_dead_bytes: 1,
        ..CompactionPolicy::default()
    });
    let tombstones = 5 * 48 + SEGMENT_HEADER_LEN as u64;

    // No room at all: the second segment has nothing live, so the plan takes it, and its
    // run finds the tombstones that must stay while the first holds their documents.
    storage.set_available_bytes(Some(0));
    let plan = f.store().plan_compaction(&due).unwrap().unwrap();
    assert_eq!(plan.inputs(), [second_id]);
    match plan.run() {
        Err(Error::NoRoomToCompact {
            needed_bytes,
            available_bytes: 0,
            ..
        }) => assert_eq!(needed_bytes, tombstones),
        Err(other) => panic!("expected the compaction refused for room, got {other}"),
        Ok(_) => panic!("expected the compaction refused, got one run"),
    }
    assert!(temporary_files(&f.path()).is_empty());
    // `compact` takes only the second segment as well (the first one's copies do not
    // fit), and its first round is refused the same way.
    match f.store().compact() {
        Err(Error::NoRoomToCompact { needed_bytes, .. }) => {
            assert_eq!(needed_bytes, tombstones);
        }
        other => panic!("expected compact refused for room, got {other:?}"),
    }
    assert!(second.exists());
    assert!(temporary_files(&f.path()).is_empty());
    check(&mut f);

    // Room for the tombstones: they are copied, and the second segment goes.
    storage.set_available_bytes(Some(tombstones));
    let report = compact_in_steps(&mut f, &due);
    assert_eq!(
        (report.tombstones_kept, report.bytes_out),
        (5, tombstones),
        "{report:?}"
    );
    f.store().checkpoint().unwrap();
    assert!(!second.exists());
    check(&mut f);
    f.reopen();
    check(&mut f);
}

/// `compact` on a file system without room for all its copies at once goes in rounds, each
/// within the room, and ends with every dead byte gone; where what is left does not fit at
/// all, it stops and says how many segments it left.
#[test]
fn compact_short_of_room_goes_in_rounds() {
    let (mut f, storage) = small_store_on_fault_storage();
    let mut model = BTreeMap::new();
    for version in 1..=2 {
        // Every document, then every other one again: the first segments half dead.
        for k in (0..300).step_by(version as usize) {
            f.store().put(id(k), &text(k, version)).unwrap();
            model.insert(k, text(k, version));
        }
    }
    f.store().checkpoint().unwrap();
    let before = f.store().stats().unwrap();
    let copies = before.compaction_copy_bytes();
    // Room for a third of the copies, besides the index file each round writes.
    storage.set_available_bytes(Some(copies / 3 + before.index_file_bytes()));
    let report = f.store().compact().unwrap();
    let after = f.store().stats().unwrap();
    assert_eq!(report.segments_left, 0, "{report:?}");
    assert_eq!(after.dead_bytes(), 0, "{after:?}");
    assert!(
        after.checkpoints() >= before.checkpoints() + 3,
        "{} rounds' checkpoints: {report:?}",
        after.checkpoints() - before.checkpoints()
    );
    assert!(report.bytes_out < report.bytes_in, "{report:?}");
    check_documents(&mut f, &model);

    // The compaction wrote the odd documents' first versions first, in sequence order:
    // new versions of them, and of document 0, leave those segments wholly dead and
    // document 0's in part. With room for none of the copies, the wholly dead go and the
    // others stay, counted.
    for k in (1..300).step_by(2).chain([0]) {
        f.store().put(id(k), &text(k, 3)).unwrap();
        model.insert(k, text(k, 3));
    }
    storage.set_available_bytes(Some(f.store().stats().unwrap().index_file_bytes()));
    let report = f.store().compact().unwrap();
    assert!(report.segments_left > 0, "{report:?}");
    assert_eq!(report.records_copied, 0, "{report:?}");
    check_documents(&mut f, &model);
    storage.set_available_bytes(None);
    let report = f.store().compact().unwrap();
    assert_eq!(report.segments_left, 0, "{report:?}");
    assert_eq!(f.store().stats().unwrap().dead_bytes(), 0);
    check_documents(&mut f, &model);
    f.reopen();
    check_documents(&mut f, &model);
}

/// `compact` stops where a round short of room frees nothing: a delete whose document's
/// older version lies in a segment too large for the room must be copied as it is, round
/// after round.
#[test]
fn compact_short_of_room_stops_where_a_round_frees_nothing() {
    let (mut f, storage) = small_store_on_fault_storage();
    let mut model = BTreeMap::new();
    // A segment and more of documents, then a delete of the first and two documents after
    // it, in the writer's segment.
    for k in 0..80 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    f.store().checkpoint().unwrap();
    let segments = f.segment_files().len();
    f.store().delete(id(0)).unwrap();
    model.remove(&0);
    for k in [1000, 1001] {
        f.store().put(id(k), "after the delete").unwrap();
        model.insert(k, "after the delete".to_owned());
    }
    assert_eq!(
        f.segment_files().len(),
        segments,
        "the delete starts no segment"
    );
    // Room for the writer's segment's copies, not the first segment's.
    let index = f.store().stats().unwrap().index_file_bytes();
    storage.set_available_bytes(Some(index + (10 << 10)));
    let report = f.store().compact().unwrap();
    assert_eq!(report.segments_left, 1, "{report:?}");
    assert_eq!(report.tombstones_kept, 1, "{report:?}");
    assert!(report.bytes_out >= report.bytes_in, "{report:?}");
    check_documents(&mut f, &model);
    assert_eq!(f.text(0), None);
}
