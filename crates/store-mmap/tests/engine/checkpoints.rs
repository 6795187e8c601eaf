//! Index checkpoints in steps: a plan given up and made again, a plan that a later one
//! replaced, the engine's own checkpoint written while commits go on, and what a pause
//! makes durable.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use store_mmap::fault::{FaultOp, FaultStorage};
use store_mmap::{Durability, Error, Store, StoreOptions};

use crate::faults::open_after_power_cut;
use crate::{Fixture, id, still_running_after_200_ms, within_ten_seconds};

fn text(k: u64) -> String {
    format!("{k} {}", "c".repeat(1000))
}

fn put_range(store: &mut Store, keys: std::ops::Range<u64>) {
    for k in keys {
        store.put(id(k), &text(k)).unwrap();
    }
}

fn assert_holds_range(store: &Store, keys: std::ops::Range<u64>) {
    assert_eq!(store.len(), keys.clone().count(), "live documents");
    for k in keys {
        let got = store.get(id(k)).unwrap().map(|doc| doc.to_string());
        assert_eq!(got, Some(text(k)), "document {k}");
    }
}

/// The inode of the store's index file, which each checkpoint replaces.
fn index_inode(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("index.tsi")).unwrap().ino()
}

/// A plan given up keeps its changes for the next plan, which can be made at once; the
/// file written for the plan given up is refused, since it lacks what was changed after it;
/// the next plan's file holds both, and with it in place nothing is left to checkpoint.
#[test]
fn a_plan_given_up_leaves_its_changes_to_the_next_and_its_file_is_refused() {
    let mut f = Fixture::new();
    let store = f.store();
    put_range(store, 0..4);
    store.checkpoint().unwrap();
    assert!(
        store.plan_checkpoint().unwrap().is_none(),
        "nothing changed since the index file"
    );

    put_range(store, 4..6);
    let given_up = store.plan_checkpoint().unwrap().expect("a plan");
    let stale = given_up.write().unwrap();
    store.abandon_checkpoint();
    assert_eq!(store.stats().unwrap().index_changes(), 2);
    let plan = store
        .plan_checkpoint()
        .unwrap()
        .expect("a plan after one given up, with nothing committed since");
    put_range(store, 6..7);
    assert!(matches!(
        store.install_checkpoint(stale),
        Err(Error::CheckpointConflict)
    ));
    assert_eq!(store.stats().unwrap().checkpoints(), 1, "nothing installed");
    store.install_checkpoint(plan.write().unwrap()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.checkpoints(), 2);
    assert_eq!(
        stats.index_changes(),
        1,
        "the index file holds the changes of both plans, not the put after"
    );
    store.checkpoint().unwrap();
    assert_eq!(store.stats().unwrap().index_changes(), 0);
    assert!(store.plan_checkpoint().unwrap().is_none());
    f.crash();
    let store = f.reopen();
    assert_eq!(store.recovery().bytes_replayed, 0, "{:?}", store.recovery());
    assert_holds_range(store, 0..7);
}

/// A checkpoint planned before a compaction may still be installed after it, since no plan
/// came between: its index file lacks the compaction's moves, so the retired-segment list
/// goes on naming the copies for an open to walk, and the open after a crash, which removes
/// the replaced segments first, moves the entries that point into them.
#[test]
fn a_checkpoint_planned_before_a_compaction_and_installed_after_loses_nothing() {
    // Segments of 8 KiB, so that the puts fill several; the index file only on request.
    let options = StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000)
        .journal_bytes(None)
        .checkpoint_bytes(None);
    let mut f = Fixture::with(options);
    let store = f.store();
    put_range(store, 0..24);
    for k in 0..12 {
        store.put(id(k), &format!("old {k}")).unwrap();
    }
    put_range(store, 0..12);
    let plan = store.plan_checkpoint().unwrap().expect("a plan");
    let report = store.compact().unwrap();
    assert!(report.segments_in > 1, "{report:?}");
    store.install_checkpoint(plan.write().unwrap()).unwrap();
    f.crash();
    let store = f.reopen();
    assert_holds_range(store, 0..24);
}

/// The engine's own checkpoint is written on its thread while commits go on: with its
/// index file held at the rename, commits that stay below the next due point go through;
/// the commit that reaches it waits until the checkpoint is in place.
#[test]
fn commits_wait_for_the_engines_checkpoint_only_at_the_next_due_point() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    // Half the interval is 32 KiB, about 31 of the test's puts. No journal: the index file alone
    // follows the interval. No zeroing thread, whose syncs would be the only other ones.
    let options = StoreOptions::new()
        .storage(storage.clone())
        .checkpoint_bytes(Some(64 << 10))
        .journal_bytes(None)
        .zero_ahead(false);
    let mut store = Store::create(dir.path(), options).unwrap();
    put_range(&mut store, 0..16);
    let index = dir.path().join("index.tsi");
    storage.hold(FaultOp::Rename, &index);
    store.tend_checkpoint(true).unwrap();
    assert!(
        within_ten_seconds(|| storage.waiting(FaultOp::Rename, &index) == 1),
        "no checkpoint reached its rename"
    );

    let puts = |mut store: Store, keys: std::ops::Range<u64>| -> JoinHandle<Store> {
        std::thread::spawn(move || {
            put_range(&mut store, keys);
            store
        })
    };
    let below = puts(store, 16..36);
    let finished = within_ten_seconds(|| below.is_finished());
    if !finished {
        storage.release(FaultOp::Rename, &index);
    }
    assert!(
        finished,
        "a commit below the due point waited for the checkpoint"
    );
    let store = below.join().unwrap();
    assert_eq!(store.stats().unwrap().checkpoints(), 0);

    let past = puts(store, 36..56);
    let waited = still_running_after_200_ms(&past);
    storage.release(FaultOp::Rename, &index);
    assert!(
        waited,
        "the commits past the due point went on while the checkpoint was held"
    );
    let store = past.join().unwrap();
    assert!(store.stats().unwrap().checkpoints() >= 1);
    assert_holds_range(&store, 0..56);
}

/// Under write-back, a pause makes the puts before it durable: without a journal, by
/// writing an index file (whose plan syncs the data); with an index file and its journal,
/// by syncing the data and a frame. A second pause with nothing changed calls no storage
/// operation.
#[test]
fn under_write_back_a_pause_makes_the_puts_before_it_durable() {
    for journal in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::new());
        let options = StoreOptions::new()
            .storage(storage.clone())
            .durability(Durability::WriteBack)
            .zero_ahead(false);
        let options = if journal {
            options
        } else {
            options.journal_bytes(None)
        };
        let mut store = Store::create(dir.path(), options.clone()).unwrap();
        put_range(&mut store, 0..4);
        store.checkpoint().unwrap();
        put_range(&mut store, 4..20);
        store.tend_checkpoint(true).unwrap();
        // Without a journal the pause's index file is written on the engine's thread; a
        // later pause installs it.
        assert!(
            within_ten_seconds(|| {
                store.tend_checkpoint(true).unwrap();
                store.stats().unwrap().checkpoints() == if journal { 1 } else { 2 }
            }),
            "journal: {journal}: the pause's checkpoint was never installed"
        );
        let ops = FaultOp::ALL.map(|op| storage.count(op));
        store.tend_checkpoint(true).unwrap();
        assert_eq!(
            FaultOp::ALL.map(|op| storage.count(op)),
            ops,
            "journal: {journal}: a pause with nothing changed did I/O"
        );
        let store = open_after_power_cut(store, &storage, dir.path(), options);
        assert_holds_range(&store, 0..20);
        let frames = store.recovery().journal_frames;
        assert_eq!(frames, u64::from(journal), "{:?}", store.recovery());
    }
}

/// An open that takes the journal's frames counts the commits they hold toward the next
/// index file: the commits since the index file before the crash and after the open
/// together make it due, and the engine writes it.
#[test]
fn an_open_from_the_journal_counts_its_commits_toward_the_next_index_file() {
    // Half the interval is 1 MiB; an index file of 40 documents times 64 is far less.
    let options = StoreOptions::new()
        .durability(Durability::WriteBack)
        .checkpoint_bytes(Some(2 << 20));
    let mut f = Fixture::with(options);
    put_range(f.store(), 0..40);
    f.store().checkpoint().unwrap();
    for round in 0..700 {
        f.store().put(id(round % 40), &text(round % 40)).unwrap();
    }
    f.store().sync().unwrap();
    f.crash();
    let dir = f.path();
    let before = index_inode(&dir);
    let store = f.reopen();
    assert!(
        store.recovery().journal_frames >= 1,
        "{:?}",
        store.recovery()
    );
    assert_eq!(store.recovery().bytes_replayed, 0, "{:?}", store.recovery());
    assert_eq!(index_inode(&dir), before, "the open wrote no index file");
    for round in 0..400 {
        store.put(id(round % 40), &text(round % 40)).unwrap();
    }
    assert!(
        within_ten_seconds(|| index_inode(&dir) != before),
        "1.1 MiB of commits since the index file, and no new one"
    );
}
