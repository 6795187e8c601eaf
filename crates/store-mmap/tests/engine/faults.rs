//! The store against a `BTreeMap` while a [`FaultStorage`] fails its file operations and
//! cuts the power.
//!
//! The claims checked after every step:
//! - every acknowledged write is there after a reopen, byte for byte, and after a power cut
//!   under `Durability::Sync`; under `Durability::WriteBack` a power cut leaves a prefix of
//!   the commits that holds at least every one a sync covered;
//! - a write that failed is either wholly there or wholly absent after recovery (a batch
//!   included), and before recovery the handle refuses writes or the write left no trace;
//! - a compaction that fails changes no document, whatever step it failed at;
//! - the store opens every time once the faults stop firing, and `verify` finds no damage;
//! - after every compaction and at every clean close, the store rebuilt from its data alone
//!   (`recover`, which reads no index) holds exactly the model: the index files cache the
//!   data and never stand in for it;
//! - while no compaction has dropped a delete, the change feed from the start, applied in
//!   order, leaves exactly the model;
//! - a read-only handle beside the writer (reopened after each power cut, as the process
//!   holding it would be) sees exactly the model after a refresh.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{
    CompactionPolicy, CompactionScope, Durability, Error, Storage, Store, StoreOptions, WriteBatch,
};

use crate::model_support::{Durable, Model, applied, check_sequences, folded, held, model_faults};
use crate::{id, still_running_after_200_ms, within_ten_seconds};

const KEYS: u64 = 10;

#[derive(Debug, Clone)]
enum Op {
    Put(u64, String),
    Batch(Vec<(u64, Option<String>)>),
    Delete(u64),
    Checkpoint,
    /// Compacts every segment with dead bytes (`true`), or what an eager automatic policy
    /// picks, through plan, run and install (`false`).
    Compact(bool),
    /// Arms a fault; when it fires in a write, recovery is a power cut if `cut`, else a
    /// plain reopen.
    Inject {
        fault: Fault,
        nth: u64,
        cut: bool,
    },
    /// `Store::sync`: under write-back, every commit so far becomes durable.
    Sync,
    Reopen,
    PowerCut,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let text = crate::texts();
    prop_oneof![
        6 => (key.clone(), text.clone()).prop_map(|(k, t)| Op::Put(k, t)),
        2 => prop::collection::vec((key.clone(), prop::option::of(text)), 1..5).prop_map(Op::Batch),
        // Larger than a segment (8 KiB here): a commit that spans segments.
        1 => prop::collection::vec((key.clone(), prop::option::of("y{1000,1900}")), 6..14).prop_map(Op::Batch),
        2 => key.prop_map(Op::Delete),
        1 => Just(Op::Checkpoint),
        2 => any::<bool>().prop_map(Op::Compact),
        3 => (proptest::sample::select(model_faults()), 0u64..4, any::<bool>()).prop_map(|(fault, nth, cut)| Op::Inject { fault, nth, cut }),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => Just(Op::PowerCut),
    ]
}

/// Figures over every case of a run, printed at its end.
#[derive(Default)]
struct Totals {
    fired: Mutex<HashMap<Fault, u64>>,
    failed_writes: AtomicU64,
    recoveries_by_cut: AtomicU64,
    failed_opens: AtomicU64,
    power_cuts: AtomicU64,
    failed_compactions: AtomicU64,
    /// Acknowledged commits that power cuts took away (under write-back, those after the
    /// last sync).
    lost_commits: AtomicU64,
}

fn apply(model: &Model, op: &Op) -> Model {
    match op {
        Op::Put(k, t) => applied(model, [(*k, Some(t))]),
        Op::Batch(items) => applied(model, items.iter().map(|(k, t)| (*k, t.as_ref()))),
        Op::Delete(k) => applied(model, [(*k, None)]),
        _ => unreachable!("only writes change the model"),
    }
}

fn write(store: &mut Store, op: &Op) -> store_mmap::Result<()> {
    match op {
        Op::Put(k, t) => store.put(id(*k), t).map(drop),
        Op::Batch(items) => {
            let mut batch = WriteBatch::new();
            for (k, t) in items {
                match t {
                    Some(t) => batch.put(id(*k), t),
                    None => batch.delete(id(*k)),
                };
            }
            store.put_batch(&batch).map(drop)
        }
        Op::Delete(k) => store.delete(id(*k)).map(drop),
        _ => unreachable!("not a write"),
    }
}

fn contents(store: &Store) -> Result<Model, TestCaseError> {
    held(store, KEYS, store.len())
}

/// Opens the store; an open that an armed fault fails is retried once the faults are
/// disarmed, and that retry must succeed.
fn open(path: &Path, options: &StoreOptions, storage: &FaultStorage, totals: &Totals) -> Store {
    match Store::open(path, options.clone()) {
        Ok(store) => store,
        Err(first) => {
            totals.failed_opens.fetch_add(1, Ordering::Relaxed);
            storage.disarm();
            Store::open(path, options.clone()).unwrap_or_else(|err| {
                panic!("the store does not open after a failed open ({first}): {err}")
            })
        }
    }
}

fn cut_power(store: &mut Option<Store>, storage: &FaultStorage, totals: &Totals) {
    totals.power_cuts.fetch_add(1, Ordering::Relaxed);
    storage.cut_power();
    drop(store.take());
    storage.restore_durable_state().unwrap();
}

fn run(ops: Vec<Op>, durability: Durability, totals: &Totals) -> Result<(), TestCaseError> {
    let storage = Arc::new(FaultStorage::new());
    let result = run_with(ops, durability, totals, &storage);
    let mut fired = totals.fired.lock().unwrap();
    for fault in model_faults().into_iter() {
        *fired.entry(fault).or_default() += storage.injected(fault);
    }
    result
}

fn run_with(
    ops: Vec<Op>,
    durability: Durability,
    totals: &Totals,
    storage: &Arc<FaultStorage>,
) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("store");
    // Small segments, so that rolls to a new segment happen inside the sequences (some of
    // them over the spare files that compactions due by their policy keep).
    let options = StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000)
        .durability(durability)
        .storage(Arc::clone(storage) as _);
    let mut store = Some(Store::create(&path, options.clone()).unwrap());
    let mut model = Durable::new(durability);
    let mut cut_on_failure = false;
    // Recovers from a failure that may have poisoned the handle: a power cut or a plain
    // reopen, as the armed fault said, then what the store holds is checked.
    // A read-only handle beside the writer, as another process would hold one; it goes with
    // the power, like the process it stands for, and is opened again after.
    let reader: RefCell<Option<Store>> = RefCell::new(None);
    let recover = |store: &mut Option<Store>,
                   model: &mut Durable,
                   cut: bool,
                   failed: Option<&Model>|
     -> Result<(), TestCaseError> {
        if cut {
            drop(reader.borrow_mut().take());
            cut_power(store, storage, totals);
        } else {
            drop(store.take());
        }
        let reopened = open(&path, &options, storage, totals);
        let lost = model.reopened(contents(&reopened)?, cut, failed)?;
        totals.lost_commits.fetch_add(lost, Ordering::Relaxed);
        *store = Some(reopened);
        Ok(())
    };
    for op in ops {
        match &op {
            Op::Put(..) | Op::Batch(_) | Op::Delete(_) => {
                let handle = store.as_mut().expect("open");
                let Err(err) = write(handle, &op) else {
                    model.committed(apply(model.current(), &op));
                    continue;
                };
                totals.failed_writes.fetch_add(1, Ordering::Relaxed);
                storage.disarm();
                match handle.sync() {
                    Err(Error::Poisoned { .. }) => {}
                    Ok(()) => {
                        // The handle still writes, so the failed write must have left nothing.
                        prop_assert_eq!(&contents(handle)?, model.current(), "after {}", err);
                        model.synced();
                        continue;
                    }
                    Err(other) => {
                        return Err(TestCaseError::fail(format!("sync after {err}: {other}")));
                    }
                }
                if cut_on_failure {
                    totals.recoveries_by_cut.fetch_add(1, Ordering::Relaxed);
                }
                let applied = apply(model.current(), &op);
                recover(&mut store, &mut model, cut_on_failure, Some(&applied))?;
            }
            Op::Sync => {
                if store.as_mut().expect("open").sync().is_ok() {
                    model.synced();
                } else {
                    storage.disarm();
                    recover(&mut store, &mut model, cut_on_failure, None)?;
                }
            }
            Op::Checkpoint => {
                // A failed checkpoint changes no document; a later write or open tells
                // whether it poisoned the handle.
                if store.as_mut().expect("open").checkpoint().is_err() {
                    storage.disarm();
                }
            }
            Op::Compact(everything) => {
                let handle = store.as_mut().expect("open");
                let Err(err) = compact(handle, *everything) else {
                    rebuilt_agrees(&path, root.path(), model.current())?;
                    prop_assert_eq!(&contents(handle)?, model.current());
                    continue;
                };
                // A failed compaction changes no document, after a power cut or a reopen
                // (which also clears a poisoned handle) alike.
                totals.failed_compactions.fetch_add(1, Ordering::Relaxed);
                storage.disarm();
                prop_assert_eq!(&contents(handle)?, model.current(), "after {}", err);
                recover(&mut store, &mut model, cut_on_failure, None)?;
            }
            Op::Inject { fault, nth, cut } => {
                storage.inject(*fault, *nth);
                cut_on_failure = *cut;
            }
            Op::Reopen => {
                if store.take().expect("open").close().is_err() {
                    storage.disarm();
                } else {
                    rebuilt_agrees(&path, root.path(), model.current())?;
                }
                recover(&mut store, &mut model, false, None)?;
            }
            Op::PowerCut => recover(&mut store, &mut model, true, None)?,
        }
        let handle = store.as_ref().expect("open");
        prop_assert_eq!(&contents(handle)?, model.current());
        feed_agrees(handle, model.current())?;
        // Every commit returned to the writer is published: the reader sees it after a
        // refresh, and nothing a failed write left behind.
        let mut reader = reader.borrow_mut();
        if reader.is_none() {
            *reader = Some(
                Store::open_read_only(&path, StoreOptions::new())
                    .map_err(|err| TestCaseError::fail(format!("read-only open: {err}")))?,
            );
        }
        let reader = reader.as_mut().expect("opened above");
        reader
            .refresh()
            .map_err(|err| TestCaseError::fail(format!("refresh: {err}")))?;
        prop_assert_eq!(&contents(reader)?, model.current(), "the reader");
    }
    drop(reader.take());
    storage.disarm();
    // The last step may have been a failed checkpoint that poisoned the handle.
    drop(store);
    let mut store = open(&path, &options, storage, totals);
    prop_assert_eq!(&contents(&store)?, model.current());
    let report = store.verify();
    prop_assert!(report.is_clean(), "{:?}", report.problems);
    prop_assert_eq!(repeated_seqs(&path), Vec::<(PathBuf, u64)>::new());
    store.put(id(0), "still writable").unwrap();
    store.close().unwrap();
    let mut last = model.current().clone();
    last.insert(0, "still writable".to_owned());
    rebuilt_agrees(&path, root.path(), &last)
}

/// The change feed from the start, applied in order to an empty store, leaves `model`,
/// unless a compaction dropped a delete (then a feed from the start is refused, which the
/// feed tests cover).
fn feed_agrees(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    if store.change_floor() > 0 {
        return Ok(());
    }
    let feed = store
        .changes_since(0)
        .map_err(|err| TestCaseError::fail(format!("changes since 0: {err}")))?;
    prop_assert_eq!(
        &folded(feed, KEYS)?,
        model,
        "the change feed from the start"
    );
    Ok(())
}

/// The store at `path`, rebuilt from its data alone beside it, holds exactly `model`.
fn rebuilt_agrees(path: &Path, scratch: &Path, model: &Model) -> Result<(), TestCaseError> {
    let found = crate::rebuilt_from_data(path, &scratch.join("rebuild"), KEYS)
        .map_err(TestCaseError::fail)?;
    prop_assert_eq!(&found, model, "the store rebuilt from its data");
    Ok(())
}

/// Every record of a segment file whose sequence number is not above the one before it: a
/// segment holds each record once, in rising order.
fn repeated_seqs(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    for path in crate::segment_files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        // Past the data of a segment written over a spare file lie the earlier segment's
        // records, all at or below the floor its header records.
        let earlier_below = store_format::SegmentHeader::decode(&bytes)
            .unwrap()
            .sealed_before
            .filter(|sealed| sealed.reuses_file)
            .map(|sealed| sealed.last_seq);
        let mut pos = store_format::SEGMENT_HEADER_LEN;
        let mut last = None;
        while let Ok(record) = store_format::decode_record(&bytes, pos) {
            if earlier_below.is_some_and(|floor| record.header.seq <= floor) {
                break;
            }
            if last.is_some_and(|last| record.header.seq <= last) {
                found.push((path.clone(), record.header.seq));
            }
            last = Some(record.header.seq);
            pos += record.header.record_len() as usize;
        }
    }
    found
}

fn compact(store: &mut Store, everything: bool) -> store_mmap::Result<()> {
    if everything {
        return store.compact().map(drop);
    }
    let policy = CompactionPolicy {
        min_dead_bytes: 1,
        dead_ratio: Some(0.2),
        ..CompactionPolicy::default()
    };
    if let Some(plan) = store.plan_compaction(&CompactionScope::Due(policy))? {
        store.install_compaction(plan.run()?)?;
        store.remove_retired()?;
    }
    Ok(())
}

#[test]
fn store_survives_injected_faults_and_power_cuts() {
    let totals = check_model(Durability::Sync, 160);
    // Every acknowledged commit was durable.
    assert_eq!(totals.lost_commits.load(Ordering::Relaxed), 0);
}

/// The same model under `Durability::WriteBack`, where a power cut keeps a prefix of the
/// commits: at least every commit up to the last `sync` (or anything else that synced), and
/// never a later commit without an earlier one.
#[test]
fn under_write_back_a_power_cut_keeps_a_prefix_of_the_commits() {
    let totals = check_model(Durability::WriteBack, 96);
    // Cuts took commits no sync covered, so the prefix rule was exercised.
    assert!(totals.lost_commits.load(Ordering::Relaxed) > 0);
}

/// Runs the model over `cases` random sequences under `durability`, and checks that every
/// kind of fault fired, power cuts happened, and compactions and writes failed.
fn check_model(durability: Durability, cases: u32) -> Totals {
    let totals = Totals::default();
    check_sequences(cases, op(), 60, |ops| run(ops, durability, &totals));
    let fired: Vec<(Fault, u64)> = {
        let counts = totals.fired.lock().unwrap();
        model_faults()
            .into_iter()
            .map(|f| (f, counts.get(&f).copied().unwrap_or(0)))
            .collect()
    };
    eprintln!(
        "faults fired: {fired:?}; failed writes {}, of which recovered by a power cut {}; failed opens {}; power cuts {}, which took {} acknowledged commits; failed compactions {}",
        totals.failed_writes.load(Ordering::Relaxed),
        totals.recoveries_by_cut.load(Ordering::Relaxed),
        totals.failed_opens.load(Ordering::Relaxed),
        totals.power_cuts.load(Ordering::Relaxed),
        totals.lost_commits.load(Ordering::Relaxed),
        totals.failed_compactions.load(Ordering::Relaxed),
    );
    // Each kind of fault fired at least once, so none of the paths above went untested.
    for (fault, count) in fired {
        assert!(count > 0, "{fault:?} never fired");
    }
    assert!(totals.power_cuts.load(Ordering::Relaxed) > 0);
    assert!(totals.failed_compactions.load(Ordering::Relaxed) > 0);
    assert!(totals.recoveries_by_cut.load(Ordering::Relaxed) > 0);
    totals
}

/// A store of `KEYS` documents over a fresh fault-injecting storage, with segments small
/// enough that the batch of [`spanning_batch`] spans several.
fn spanning_fixture(
    durability: Durability,
) -> (
    tempfile::TempDir,
    Arc<FaultStorage>,
    StoreOptions,
    Store,
    Model,
) {
    let root = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    // No zeroing thread: its writes would shift the operation counts the test steps through.
    let options = StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000)
        .durability(durability)
        .zero_ahead(false)
        .storage(Arc::clone(&storage) as _);
    let mut store = Store::create(root.path().join("store"), options.clone()).unwrap();
    let mut model = Model::new();
    for k in 0..KEYS {
        let text = format!("before {k}");
        store.put(id(k), &text).unwrap();
        model.insert(k, text);
    }
    (root, storage, options, store, model)
}

/// About 30 KiB of puts and a delete: four segments' worth.
fn spanning_batch() -> Op {
    let mut items: Vec<(u64, Option<String>)> = (0..20u64)
        .map(|n| (n % KEYS, Some(format!("{n:>4}").repeat(375))))
        .collect();
    items.push((3, None));
    Op::Batch(items)
}

/// The operations of a batch.
fn batch_len(op: &Op) -> usize {
    match op {
        Op::Batch(items) => items.len(),
        other => panic!("not a batch: {other:?}"),
    }
}

fn model_of(store: &Store) -> Model {
    contents(store).unwrap_or_else(|err| panic!("{err}"))
}

/// Every operation on the files that a spanning batch performs, failed in turn, with and
/// without a power cut after it: the batch is there whole or not at all, the store opens
/// clean, and it takes writes again.
#[test]
fn a_batch_larger_than_a_segment_is_whole_or_absent_whatever_step_fails() {
    let batch = spanning_batch();
    let counts: Vec<(FaultOp, u64)> = {
        let (_root, storage, _, mut store, _) = spanning_fixture(Durability::Sync);
        let before: Vec<u64> = FaultOp::ALL.iter().map(|op| storage.count(*op)).collect();
        write(&mut store, &batch).unwrap();
        FaultOp::ALL
            .iter()
            .zip(before)
            .map(|(op, before)| (*op, storage.count(*op) - before))
            .collect()
    };
    let count = |op| counts.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n);
    assert!(
        count(FaultOp::Create) >= 3,
        "the batch spans segments: {counts:?}"
    );
    let (mut cases, mut failed, mut abandoned) = (0, 0, 0);
    for fault in model_faults().into_iter() {
        let op = fault.op();
        for nth in 0..count(op) {
            for cut in [false, true] {
                let (root, storage, options, mut store, before) =
                    spanning_fixture(Durability::Sync);
                let after = apply(&before, &batch);
                let position = store.last_seq();
                storage.inject(fault, nth);
                // A failed preallocation is retried smaller, so it may not fail the batch.
                let acked = write(&mut store, &batch).is_ok();
                failed += u64::from(!acked);
                storage.disarm();
                if cut {
                    storage.cut_power();
                    drop(store);
                    storage.restore_durable_state().unwrap();
                } else {
                    drop(store);
                }
                let path = root.path().join("store");
                let mut store = Store::open(&path, options.clone())
                    .unwrap_or_else(|err| panic!("{fault:?} at {nth}, cut {cut}: {err}"));
                let found = model_of(&store);
                abandoned += u64::from(store.recovery().records_abandoned > 0);
                assert!(
                    found == after || (!acked && found == before),
                    "{fault:?} at {nth}, cut {cut}, acknowledged {acked}: {found:?}"
                );
                // The change feed tells the same: the whole batch, or none of it (the parts
                // of an abandoned batch stay on disk and are not changes).
                let fed = store.changes_since(position).unwrap().count();
                let expected = if found == before {
                    0
                } else {
                    batch_len(&batch)
                };
                assert_eq!(fed, expected, "{fault:?} at {nth}, cut {cut}: the feed");
                let report = store.verify();
                assert!(
                    report.is_clean(),
                    "{fault:?} at {nth}: {:?}",
                    report.problems
                );
                store.put(id(0), "after").unwrap();
                store.close().unwrap();
                let store = Store::open(&path, options).unwrap();
                assert_eq!(store.get(id(0)).unwrap().as_deref(), Some("after"));
                cases += 1;
            }
        }
    }
    assert!(failed > 20, "{failed} of {cases} cases failed the batch");
    // Some failures came after whole parts were on disk, which recovery had to leave out.
    assert!(abandoned > 0, "no case left an abandoned part, of {cases}");
    eprintln!("{cases} cases, {failed} failed the batch, {abandoned} left parts recovery left out");

    // A power cut after the batch returned: under `Sync` it is all there; under
    // `WriteBack` (not yet synced) it is there whole or not at all.
    for durability in [Durability::Sync, Durability::WriteBack] {
        let (root, storage, options, mut store, before) = spanning_fixture(durability);
        let after = apply(&before, &batch);
        write(&mut store, &batch).unwrap();
        storage.cut_power();
        drop(store);
        storage.restore_durable_state().unwrap();
        let store = Store::open(root.path().join("store"), options).unwrap();
        let found = model_of(&store);
        match durability {
            Durability::Sync => assert_eq!(found, after),
            _ => assert!(found == before || found == after, "{found:?}"),
        }
    }
}

/// Found by the model test: a new segment whose header write failed, and whose removal
/// failed too, must stay the newest segment, which the next open removes. The store takes
/// no more writes, which could create a newer one past it.
#[test]
fn a_half_created_segment_that_cannot_be_removed_stops_the_writes() {
    let (root, storage, options, mut store, _) = spanning_fixture(Durability::Sync);
    let big = "z".repeat(1900);
    let active_end = |store: &Store| {
        store
            .segment_maps()
            .last()
            .expect("a store has a segment")
            .committed_end()
    };
    while u64::from(active_end(&store)) + store_format::record_len(1900) <= 8192 {
        store.put(id(1), &big).unwrap();
    }
    let before = model_of(&store);
    // The next write is the new segment's header.
    storage.inject(Fault::ShortWrite, 0);
    storage.inject(Fault::Fail(FaultOp::Remove), 0);
    assert!(store.put(id(2), &big).is_err());
    let err = store.put(id(3), "small").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    drop(store);
    storage.disarm();
    let store = Store::open(root.path().join("store"), options).unwrap();
    assert!(store.recovery().removed_segment.is_some());
    assert_eq!(model_of(&store), before);
}

/// Found by the model test: a batch larger than a segment whose next segment could not be
/// created (a failed sync of the directory), and then not removed either, leaves that
/// segment, whose header records the length of the segment sealed before it. The failure must
/// not cut the sealed segment below that length (the next open refused the store as cut
/// short): the open finds the batch's first part whole, leaves the batch out, and opens.
#[test]
fn a_failed_roll_whose_new_segment_cannot_be_removed_keeps_the_sealed_one_whole() {
    let batch = spanning_batch();
    let dir_syncs = {
        let (_root, storage, _, mut store, _) = spanning_fixture(Durability::Sync);
        let before = storage.count(FaultOp::SyncDir);
        write(&mut store, &batch).unwrap();
        storage.count(FaultOp::SyncDir) - before
    };
    assert!(dir_syncs >= 2, "the batch creates segments: {dir_syncs}");
    for nth in 0..dir_syncs {
        let (root, storage, options, mut store, before) = spanning_fixture(Durability::Sync);
        let after = apply(&before, &batch);
        storage.inject(Fault::Fail(FaultOp::SyncDir), nth);
        storage.inject(Fault::Fail(FaultOp::Remove), 0);
        let acked = write(&mut store, &batch).is_ok();
        drop(store);
        storage.disarm();
        let store = Store::open(root.path().join("store"), options)
            .unwrap_or_else(|err| panic!("the directory's sync {nth} failed: {err}"));
        let found = model_of(&store);
        assert!(
            found == after || (!acked && found == before),
            "the directory's sync {nth} failed, acknowledged {acked}: {found:?}"
        );
        assert!(store.verify().is_clean(), "the directory's sync {nth}");
    }
}

/// Runs `ops` over a fault-injecting storage and checks what the model test checks.
fn replay(ops: Vec<Op>) {
    let storage = Arc::new(FaultStorage::new());
    if let Err(err) = run_with(ops, Durability::Sync, &Totals::default(), &storage) {
        panic!("{err}");
    }
}

/// Found by the model test: a compaction whose retired-segment list failed leaves its
/// outputs beside its inputs, so one tombstone is in two segments; the next compaction
/// writes it once, and the store verifies clean.
#[test]
fn copies_left_by_a_failed_install_are_compacted_once() {
    replay(vec![
        Op::Batch(vec![(0, None)]),
        Op::Put(0, String::new()),
        Op::Compact(true),
        Op::Batch(vec![(1, None)]),
        Op::Inject {
            fault: Fault::Fail(FaultOp::Rename),
            nth: 1,
            cut: false,
        },
        Op::Compact(true),
        Op::Compact(false),
    ]);
}

/// Found by the model test (seed 501): a batch that spans segments fails past its first
/// part, which stays on disk abandoned, a later delete of document 0 among its records; a
/// compaction of that segment then fails before its index file takes its name, and the
/// power goes. The compaction must not copy the abandoned part's tombstones into its
/// output, where an open walking the output reads them as deletes.
#[test]
fn a_compaction_does_not_copy_the_tombstones_of_an_abandoned_part() {
    let text = |n: usize| Some("y".repeat(n));
    replay(vec![
        Op::Batch(vec![
            (0, None),
            (0, text(1010)),
            (9, text(1669)),
            (8, text(1609)),
            (6, text(1229)),
        ]),
        Op::Compact(true),
        Op::Put(0, "c".to_owned()),
        Op::Compact(true),
        Op::Inject {
            fault: Fault::Fail(FaultOp::SetLen),
            nth: 0,
            cut: false,
        },
        Op::Batch(vec![
            (1, text(1769)),
            (8, text(1511)),
            (5, None),
            (0, None),
            (2, text(1490)),
            (6, text(1893)),
            (3, None),
            (9, text(1210)),
        ]),
        Op::Inject {
            fault: Fault::Fail(FaultOp::Rename),
            nth: 2,
            cut: true,
        },
        Op::Compact(true),
    ]);
}

/// Found by the model test: a compaction that drops the only record (a tombstone below the
/// floor), then a power cut; the reopened store's sequence numbers go on from where they
/// were, not from 1 again.
#[test]
fn sequence_numbers_never_go_back_after_a_compaction_drops_every_record() {
    replay(vec![
        Op::Inject {
            fault: Fault::Fail(FaultOp::Remove),
            nth: 1,
            cut: true,
        },
        Op::Batch(vec![(0, None)]),
        Op::Compact(true),
        Op::Put(0, String::new()),
    ]);
}

/// Found by the model test: a put whose sync fails, then whose cut-back's sync fails too,
/// then a reopen and a power cut. The reopened store must not serve a record that the power
/// cut then takes away: the failed put is cut back to the last durable commit, and an open
/// makes durable what it serves.
#[test]
fn a_put_whose_sync_failed_is_not_served_and_then_lost() {
    for second in [FaultOp::Sync, FaultOp::SetLen] {
        replay(vec![
            Op::Put(1, "durable".to_owned()),
            Op::Inject {
                fault: Fault::Fail(second),
                nth: u64::from(second == FaultOp::Sync),
                cut: false,
            },
            Op::Inject {
                fault: Fault::Fail(FaultOp::Sync),
                nth: 0,
                cut: false,
            },
            Op::Put(0, String::new()),
            Op::PowerCut,
        ]);
    }
}

/// Without an index journal the open itself makes durable what it serves: a put whose sync
/// failed, and whose cut-back failed too, is still in the file when the process stops; the
/// next open replays it past the index file and serves it, and a power cut after that open
/// keeps it.
#[test]
fn an_open_without_a_journal_makes_what_it_replays_durable() {
    let storage = Arc::new(FaultStorage::new());
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("store");
    let options = StoreOptions::new()
        .journal_bytes(None)
        .storage(Arc::clone(&storage) as _);
    let text = |store: &Store, k: u64| store.get(id(k)).unwrap().map(|doc| doc.to_string());
    let mut store = Store::create(&path, options.clone()).unwrap();
    store.put(id(1), "durable").unwrap();
    store.checkpoint().unwrap();
    storage.inject(Fault::Fail(FaultOp::SetLen), 0);
    storage.inject(Fault::Fail(FaultOp::Sync), 0);
    store.put(id(2), "replayed").expect_err("its sync failed");
    drop(store);
    storage.disarm();

    let reopened = Store::open(&path, options.clone()).unwrap();
    assert_eq!(
        reopened.recovery().records_replayed,
        1,
        "{:?}",
        reopened.recovery()
    );
    assert_eq!(text(&reopened, 2).as_deref(), Some("replayed"));
    storage.cut_power();
    drop(reopened);
    storage.restore_durable_state().unwrap();
    let after = Store::open(&path, options).unwrap();
    assert_eq!(text(&after, 1).as_deref(), Some("durable"));
    assert_eq!(
        text(&after, 2).as_deref(),
        Some("replayed"),
        "served after the open, then lost"
    );
}

/// A commit that would span segments is refused up front, as a full disk, when the file
/// system has fewer bytes free than the commit needs: nothing of it is written and the
/// store goes on taking writes. With exactly its bytes free it goes ahead.
#[test]
fn a_spanning_commit_the_disk_has_no_room_for_is_refused_before_a_byte_is_written() {
    let storage = Arc::new(FaultStorage::new());
    let root = tempfile::tempdir().unwrap();
    // No zeros written ahead, which the count of writes below would see.
    let options = small_segments_on(&storage).zero_ahead(false);
    let mut store = Store::create(root.path().join("store"), options).unwrap();
    store.put(id(1), "before").unwrap();
    let mut batch = WriteBatch::new();
    for k in 10..20 {
        batch.put(id(k), &versioned_text(k, 1));
    }
    let len = batch.encoded_len();
    assert!(len > 8192, "the batch spans segments");
    storage.set_available_bytes(Some(len - 1));
    let writes = storage.count(FaultOp::Write);
    let err = store.put_batch(&batch).expect_err("no room");
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert_eq!(storage.count(FaultOp::Write), writes, "nothing written");
    assert_eq!(store.get(id(10)).unwrap(), None);
    store.put(id(2), "after").unwrap();

    storage.set_available_bytes(Some(len));
    store.put_batch(&batch).unwrap();
    for k in 10..20 {
        let text = store.get(id(k)).unwrap().map(|doc| doc.to_string());
        assert_eq!(text, Some(versioned_text(k, 1)), "doc {k}");
    }
}

/// Found by the model test: a compaction whose roll creates a segment and fails to sync the
/// directory (and then to remove the file), a reopen, a put into that segment, a power cut.
/// The open makes the directory durable before it serves, so the acknowledged put stays.
#[test]
fn a_segment_whose_creation_was_not_synced_is_made_durable_by_the_next_open() {
    let y = |n: usize| "y".repeat(n);
    replay(vec![
        Op::Batch(vec![
            (0, Some(y(1076))),
            (5, Some(y(1701))),
            (9, None),
            (5, None),
            (6, Some(y(1415))),
            (4, Some(y(1028))),
        ]),
        Op::Inject {
            fault: Fault::Fail(FaultOp::SyncDir),
            nth: 3,
            cut: false,
        },
        Op::Reopen,
        Op::Inject {
            fault: Fault::Fail(FaultOp::Remove),
            nth: 0,
            cut: false,
        },
        Op::Batch(vec![
            (5, Some(y(1177))),
            (9, Some(y(1815))),
            (0, None),
            (7, None),
            (7, None),
            (1, None),
            (7, None),
            (4, Some(y(1375))),
            (5, Some(y(1336))),
            (3, None),
        ]),
        Op::Compact(true),
        Op::Put(0, "x".repeat(895)),
        Op::PowerCut,
    ]);
}

/// Cuts the power under `store` and opens what the syncs kept.
pub(crate) fn open_after_power_cut(
    store: Store,
    storage: &FaultStorage,
    dir: &Path,
    options: StoreOptions,
) -> Store {
    storage.cut_power();
    drop(store);
    storage.restore_durable_state().unwrap();
    Store::open(dir, options).unwrap()
}

/// The store holds exactly `model`'s documents.
fn assert_holds(store: &Store, model: &BTreeMap<u64, String>) {
    assert_eq!(store.len(), model.len());
    for (k, text) in model {
        assert_eq!(store.get(id(*k)).unwrap().unwrap().text().as_str(), text);
    }
}

/// Under per-commit syncs the journal is synced every half interval, so a power cut
/// replays at most the checkpoint interval while the index file waits for 64 times its size
/// of commits: 400 KB of puts over 64 ids write it at most once (the byte interval alone
/// wrote it every 32 KiB, a dozen times), and the open after the cut takes the synced frames.
#[test]
fn a_power_cut_replays_at_most_the_interval_while_the_index_file_waits() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let interval = 64 << 10;
    let options = StoreOptions::new()
        .storage(storage.clone())
        .checkpoint_bytes(Some(interval));
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    let text = |k: u64| format!("{k} {}", "p".repeat(1000));
    let mut model = BTreeMap::new();
    for k in 0..400u64 {
        store.put(id(k % 64), &text(k)).unwrap();
        model.insert(k % 64, text(k));
    }
    let checkpoints = store.stats().unwrap().checkpoints();
    assert!(
        checkpoints <= 1,
        "the index file was written {checkpoints} times"
    );
    let store = open_after_power_cut(store, &storage, dir.path(), options);
    let report = store.recovery().clone();
    assert!(report.journal_frames > 0, "{report:?}");
    assert!(
        report.bytes_replayed <= interval,
        "replayed {} bytes after the power cut: {report:?}",
        report.bytes_replayed
    );
    assert_holds(&store, &model);
}

/// A background checkpoint whose file cannot be put in place, because the rename fails or
/// panics on the checkpoint's thread, loses nothing and is counted: the commits stay
/// durable and the store takes writes, the stats say the checkpoint failed, the next one
/// succeeds, and a reopen after a power cut serves every document.
#[test]
fn a_failed_background_checkpoint_is_counted_and_loses_nothing() {
    for fault in [Fault::Fail(FaultOp::Rename), Fault::Panic(FaultOp::Rename)] {
        background_checkpoint_fails(fault);
    }
}

fn background_checkpoint_fails(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new()
        .storage(storage.clone())
        .checkpoint_bytes(Some(16 << 10));
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    storage.inject(fault, 0);
    let text = "c".repeat(1000);
    let mut k = 0;
    while storage.injected(fault) == 0 || store.stats().unwrap().checkpoints() == 0 {
        assert!(
            k < 1000,
            "{fault:?}: no checkpoint failed and then succeeded in {k} puts"
        );
        store.put(id(k % 64), &text).unwrap();
        k += 1;
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.checkpoint_failures(), 1, "{fault:?}");
    assert!(stats.checkpoints() >= 1);
    let store = open_after_power_cut(store, &storage, dir.path(), options);
    assert_eq!(store.len(), 64.min(k as usize));
    for j in 0..64.min(k) {
        assert_eq!(store.get(id(j)).unwrap().unwrap().text().as_str(), text);
    }
}

/// A fault storage, and options over it with no checkpoint but those the test makes and no
/// zeroing thread: every operation the storage counts, and every fault it injects, lands on
/// the test's own calls.
fn quiet_fault_storage() -> (Arc<FaultStorage>, StoreOptions) {
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new()
        .storage(storage.clone())
        .checkpoint_bytes(None)
        .zero_ahead(false);
    (storage, options)
}

/// A poisoned store's close waits for the checkpoint it has in flight. The checkpoint's
/// thread, held at its index file's rename, keeps the close from returning until it is let
/// go, and the file is in place when the close returns: a thread left running would outlive
/// the handle, reading files it maps while they change and renaming its index file beside
/// the next writer's. A close that does not wait returns within microseconds of its call;
/// the test gives it 200 ms to show it.
#[test]
fn a_poisoned_store_waits_for_its_checkpoint_thread_when_it_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, options) = quiet_fault_storage();
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    let text = |k: u64| format!("{k} {}", "c".repeat(1000));
    for k in 0..16 {
        store.put(id(k), &text(k)).unwrap();
    }
    let index = dir.path().join("index.tsi");
    storage.hold(FaultOp::Rename, &index);
    store.tend_checkpoint(true).unwrap();
    assert!(
        within_ten_seconds(|| storage.waiting(FaultOp::Rename, &index) > 0),
        "no checkpoint reached its rename"
    );
    let renames = storage.count(FaultOp::Rename);

    storage.inject(Fault::Fail(FaultOp::Sync), 0);
    assert!(
        store.put(id(16), &text(16)).is_err(),
        "the commit's sync failed"
    );
    assert!(
        store.put(id(17), &text(17)).is_err(),
        "the store is poisoned"
    );

    let closing = std::thread::spawn(move || store.close());
    assert!(
        still_running_after_200_ms(&closing),
        "the poisoned store closed while its checkpoint thread was held"
    );
    storage.release(FaultOp::Rename, &index);
    assert!(
        closing.join().unwrap().is_err(),
        "the close reports the failed sync"
    );
    assert_eq!(
        storage.count(FaultOp::Rename),
        renames + 1,
        "the checkpoint's rename had not run when the close returned"
    );

    storage.disarm();
    let store = Store::open(dir.path(), options).unwrap();
    assert_eq!(store.recovery().bytes_replayed, 0, "{:?}", store.recovery());
    let model: BTreeMap<u64, String> = (0..16).map(|k| (k, text(k))).collect();
    assert_holds(&store, &model);
}

/// The change floor reaches the disk before the compaction that raises it takes effect: a
/// power cut after the compaction keeps it, and a compaction whose install fails after it
/// leaves it raised, so a feed refuses earlier than it must, never later.
#[test]
fn the_change_floor_is_durable_before_the_compaction_that_raises_it() {
    for fail_install in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::new());
        let options = StoreOptions::new().storage(storage.clone());
        let mut store = Store::create(dir.path(), options.clone()).unwrap();
        store.put(id(1), "one").unwrap();
        store.delete(id(1)).unwrap();
        let deleted = store.last_seq();
        store.put(id(2), "two").unwrap();
        if fail_install {
            // The renames of an install: the metadata, the output, then the retired list.
            storage.inject(Fault::Fail(FaultOp::Rename), 2);
            assert!(store.compact().is_err());
            assert_eq!(storage.injected(Fault::Fail(FaultOp::Rename)), 1);
        } else {
            let report = store.compact().unwrap();
            assert_eq!(report.tombstones_dropped, 1);
        }
        assert_eq!(store.change_floor(), deleted);
        storage.cut_power();
        drop(store);
        storage.restore_durable_state().unwrap();
        storage.disarm();
        let store = Store::open(dir.path(), options).unwrap();
        assert_eq!(
            store.change_floor(),
            deleted,
            "fail_install: {fail_install}"
        );
        assert!(matches!(
            store.changes_since(deleted - 1),
            Err(Error::ChangesCompacted { .. })
        ));
        assert!(store.get(id(1)).unwrap().is_none());
        assert_eq!(store.get(id(2)).unwrap().unwrap().text().as_str(), "two");
    }
}

/// A writer that pauses after each put of a store with an index file does not rewrite the
/// file at each pause (it waits for its own rule): the pause syncs a journal frame of the
/// changes instead (under write-back, after the data), so that an open after a power cut
/// during the pause replays nothing and loses nothing.
#[test]
fn a_pause_syncs_a_journal_frame_instead_of_rewriting_the_index_file() {
    for durability in [Durability::Sync, Durability::WriteBack] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::new());
        let options = StoreOptions::new()
            .storage(storage.clone())
            .durability(durability);
        let mut model = BTreeMap::new();
        let mut store = Store::create(dir.path(), options.clone()).unwrap();
        for k in 0..500u64 {
            store.put(id(k), &format!("first {k}")).unwrap();
            model.insert(k, format!("first {k}"));
        }
        store.close().unwrap();
        let mut store = Store::open(dir.path(), options.clone()).unwrap();
        for k in 0..20u64 {
            store.put(id(k), &format!("second {k}")).unwrap();
            model.insert(k, format!("second {k}"));
            store.tend_checkpoint(true).unwrap();
        }
        assert_eq!(
            store.stats().unwrap().checkpoints(),
            0,
            "{durability:?}: the index file was rewritten at a pause"
        );
        let store = open_after_power_cut(store, &storage, dir.path(), options);
        let report = store.recovery().clone();
        assert_eq!(report.journal_frames, 20, "{durability:?}: {report:?}");
        assert_eq!(report.bytes_replayed, 0, "{durability:?}: {report:?}");
        assert_holds(&store, &model);
    }
}

/// The fault storage brings back a renamed-over file's durable contents after a power cut
/// even when the file system gave its freed inode number to a new file that was then
/// removed: the new file's contents do not stand in for the old file's. (Kept by inode alone,
/// they did: a power cut under write-back once put a segment's bytes in `textstore.meta`.)
#[test]
fn a_power_cut_restores_a_renamed_over_file_whose_inode_a_removed_file_reused() {
    with_a_reused_inode(|dir, storage, write, old| {
        if write("segment", "a segment's bytes") != old {
            return false;
        }
        storage.remove(&dir.join("segment")).unwrap();
        storage.cut_power();
        storage.restore_durable_state().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("meta")).unwrap(),
            "the durable metadata"
        );
        assert!(
            !dir.join("segment").exists(),
            "a name never made durable came back"
        );
        true
    });
}

/// The same when the new file that reuses the inode number takes the durable name itself:
/// the name and the number match what the last sync of the directory saw, and the file is
/// still another one.
#[test]
fn a_power_cut_restores_a_renamed_over_file_whose_inode_its_successor_reused() {
    with_a_reused_inode(|dir, storage, write, old| {
        if write("meta.tmp", "newer metadata never made durable") != old {
            return false;
        }
        storage
            .rename(&dir.join("meta.tmp"), &dir.join("meta"))
            .unwrap();
        storage.cut_power();
        storage.restore_durable_state().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("meta")).unwrap(),
            "the durable metadata"
        );
        true
    });
}

/// A power cut takes a file back to its last sync also where the changes since began past
/// its end: a write past it, and a `set_len` or an `allocate` that grew it. Found by the
/// concurrent handle's fault model: the write-limit file, left empty by a full disk at its
/// preallocation, took its second slot past its end, and rolling it back panicked.
#[test]
fn a_power_cut_undoes_changes_that_began_past_the_end_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultStorage::new();
    let path = dir.path().join("grown");
    let file = storage.create_new(&path).unwrap();
    storage.write_at(&file, &path, b"durable", 0).unwrap();
    storage
        .sync(&file, &path, store_mmap::SyncKind::All)
        .unwrap();
    storage.sync_dir(dir.path()).unwrap();
    storage
        .write_at(&file, &path, b"past the end", 512)
        .unwrap();
    storage.set_len(&file, &path, 4096).unwrap();
    storage.allocate(&file, &path, 4096, 8192).unwrap();
    storage.write_at(&file, &path, b"over", 3).unwrap();
    storage.cut_power();
    drop(file);
    storage.restore_durable_state().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"durable");
}

/// Runs `scenario` in fresh directories over fresh fault storages until it reports that the
/// file system gave a freed inode number to the new file it expected to get it, up to 50
/// times. The file system chooses, and other processes creating files may take the number
/// first; ext4 mostly hands it over at once. Each time, `meta` is written and made durable,
/// then renamed over by a file that is not; `scenario` gets the directory, the storage, a
/// function that creates, writes and syncs a file and returns its inode number, and the
/// durable `meta`'s inode number, now free.
fn with_a_reused_inode(
    scenario: impl Fn(&Path, &FaultStorage, &dyn Fn(&str, &str) -> u64, u64) -> bool,
) {
    use std::os::unix::fs::MetadataExt;

    let root = tempfile::tempdir().unwrap();
    for attempt in 0..50 {
        let dir = root.path().join(attempt.to_string());
        std::fs::create_dir(&dir).unwrap();
        let storage = FaultStorage::new();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            let file = storage.create_new(&path).unwrap();
            storage.write_at(&file, &path, text.as_bytes(), 0).unwrap();
            storage
                .sync(&file, &path, store_mmap::SyncKind::Data)
                .unwrap();
            std::fs::metadata(&path).unwrap().ino()
        };
        let old = write("meta", "the durable metadata");
        storage.sync_dir(&dir).unwrap();
        write("meta.tmp", "metadata never made durable");
        storage
            .rename(&dir.join("meta.tmp"), &dir.join("meta"))
            .unwrap();
        if scenario(&dir, &storage, &write, old) {
            return;
        }
    }
    panic!("no new file reused a freed inode in 50 attempts");
}

/// A compaction whose retired list cannot be written moves no document: the index still
/// points into the inputs, which stay, so that a layer showing readers the index, told by
/// the error that nothing moved, goes on reading them. Found by the concurrent handle's fault
/// model: the index had moved documents to the outputs already, the handle's readers were
/// not shown the moves, and a later compaction, which found the inputs' records dead,
/// retired an input the readers still read from.
#[test]
fn a_compaction_whose_retired_list_fails_moves_no_document() {
    let mut list_failures = 0;
    // The install's renames: the outputs' (and a new active segment's), then the list's.
    for nth in 0..6 {
        let TwoVersions {
            storage,
            root: _root,
            mut store,
            ..
        } = two_versions();
        let before: Vec<_> = (0..12).map(|k| store.location(id(k)).unwrap()).collect();
        let done = compaction_of_everything(&mut store);
        storage.inject(Fault::Fail(FaultOp::Rename), nth);
        let Err(err) = store.install_compaction(done) else {
            continue;
        };
        if !err.to_string().contains("retired") {
            continue;
        }
        list_failures += 1;
        let after: Vec<_> = (0..12).map(|k| store.location(id(k)).unwrap()).collect();
        assert_eq!(after, before, "the failed install moved documents ({err})");
        assert_latest_versions(&store, &err.to_string());
    }
    assert_eq!(list_failures, 1, "no rename failed the retired list");
}

/// Found by `under_write_back_a_power_cut_keeps_a_prefix_of_the_commits`: under write-back,
/// a compaction retired a segment whose only record a commit had replaced, before that
/// commit was durable. A power cut then took the commit away, the open removed the retired
/// segment, and the document's earlier version, durable in that segment, was lost: the
/// index pointed to a segment that no longer existed. The install now syncs the data first.
#[test]
fn under_write_back_a_compaction_retires_nothing_a_commit_not_yet_durable_replaced() {
    let storage = Arc::new(FaultStorage::new());
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("store");
    let options = small_segments_on(&storage).durability(Durability::WriteBack);
    let mut store = Store::create(&path, options.clone()).unwrap();
    // A delete of a missing document: dead bytes that make the segment worth compacting.
    let mut batch = WriteBatch::new();
    batch.delete(id(0));
    store.put_batch(&batch).unwrap();
    store.put(id(3), "first").unwrap();
    // The first version moves into a compaction's output, which is synced.
    assert_eq!(store.compact().unwrap().records_copied, 1);
    // Not synced: the output's record is dead only while this put survives.
    store.put(id(3), "second").unwrap();
    // Plan, run and install, as an automatic compaction does: the output's only record is
    // dead, so the output is retired with nothing copied.
    compact(&mut store, false).unwrap();
    assert_eq!(store.retired_segments(), 1);
    storage.cut_power();
    drop(store);
    storage.restore_durable_state().unwrap();

    let store = Store::open(&path, options).unwrap();
    let text = store.get(id(3)).unwrap().map(|doc| doc.to_string());
    assert_eq!(
        text.as_deref(),
        Some("second"),
        "the install synced the put"
    );
    let report = store.verify();
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A compaction whose install fails at the directory sync after its outputs took their
/// segment names, and whose outputs then cannot be removed, leaves segments on disk that an
/// open reads: the store keeps them as segments, so that a later compaction counts the
/// versions they hold before it drops a tombstone. Found by the concurrent handle's
/// write-back model (seed 600, with the machine loaded): the store forgot such an output, a
/// later compaction dropped the deletes of documents it held, and a rebuild from the data
/// brought the deleted documents back.
#[test]
fn outputs_left_by_a_failed_install_stay_segments_of_the_store() {
    let mut cases = 0;
    // The install's directory syncs (a roll's, then the outputs' names), and the removals
    // after a failed one.
    for (nth_sync, nth_remove) in (0..3).flat_map(|s| (0..3).map(move |r| (s, r))) {
        let TwoVersions {
            storage,
            root,
            dir,
            options,
            mut store,
        } = two_versions();
        let done = compaction_of_everything(&mut store);
        let before = crate::segment_files(&dir);
        storage.inject(Fault::Fail(FaultOp::SyncDir), nth_sync);
        storage.inject(Fault::Fail(FaultOp::Remove), nth_remove);
        let err = store.install_compaction(done).err();
        storage.disarm();
        let left = crate::segment_files(&dir)
            .into_iter()
            .filter(|path| !before.contains(path))
            .count();
        let Some(err) = err.filter(|_| left > 0) else {
            continue;
        };
        cases += 1;
        assert_eq!(
            store.stats().unwrap().segments() as usize,
            crate::segment_files(&dir).len(),
            "the store does not count a segment file on disk ({err})"
        );
        // The copies beside the versions they copy: a scan yields each document once.
        let mut scanned: Vec<_> = store.scan().map(|found| found.unwrap().0).collect();
        scanned.sort_unstable();
        scanned.dedup();
        assert_eq!(
            (scanned.len(), store.scan().count()),
            (store.len(), store.len()),
            "a scan beside copies ({err})"
        );
        // Every document deleted, the deletes sealed, then everything compacted: the
        // deletes go only with every version they cover.
        for k in 0..12 {
            store.delete(id(k)).unwrap();
        }
        let active = store.active_segment();
        let mut filler = 100;
        while store.active_segment() == active {
            store.put(id(filler), &versioned_text(filler, 1)).unwrap();
            filler += 1;
        }
        while let Some(plan) = store.plan_compaction(&CompactionScope::Everything).unwrap() {
            store.install_compaction(plan.run().unwrap()).unwrap();
            store.checkpoint().unwrap();
            store.remove_retired().unwrap();
        }
        store.close().unwrap();
        let rebuilt = root.path().join("rebuilt");
        store_mmap::recover(&dir, &rebuilt).unwrap();
        let rebuilt = Store::open(&rebuilt, StoreOptions::new()).unwrap();
        for k in 0..12 {
            assert_eq!(
                rebuilt.get(id(k)).unwrap(),
                None,
                "document {k} came back ({err})"
            );
        }
        assert_eq!(rebuilt.len() as u64, filler - 100);
        let store = Store::open(&dir, options).unwrap();
        assert_eq!(store.len() as u64, filler - 100);
    }
    assert!(cases > 0, "no install left an output behind");
}

/// The other side of the test above: an output whose rename failed, so that it never took
/// its segment name, and whose removal then fails too, is not a segment of the store (an
/// open removes it as an unfinished output). The store counts only the segment files on
/// disk, and reads every document from the inputs it kept.
#[test]
fn an_output_that_never_took_its_name_is_not_a_segment_of_the_store() {
    let mut cases = 0;
    for nth_rename in 0..3 {
        let TwoVersions {
            storage,
            root: _root,
            dir,
            options,
            mut store,
        } = two_versions();
        let done = compaction_of_everything(&mut store);
        let unfinished = |dir: &Path| crate::files_with_extension(dir, "tmp").len();
        storage.inject(Fault::Fail(FaultOp::Rename), nth_rename);
        storage.inject(Fault::Fail(FaultOp::Remove), 0);
        let err = store.install_compaction(done).err();
        storage.disarm();
        let Some(err) = err.filter(|_| unfinished(&dir) > 0) else {
            continue;
        };
        cases += 1;
        assert_eq!(
            store.stats().unwrap().segments() as usize,
            crate::segment_files(&dir).len(),
            "the store counts a file that is no segment ({err})"
        );
        assert_latest_versions(&store, &err.to_string());
        drop(store);
        let store = Store::open(&dir, options).unwrap();
        assert_eq!(
            unfinished(&dir),
            0,
            "the open removes the unfinished output"
        );
        assert_eq!(store.len(), 12);
    }
    assert!(cases > 0, "no install left an unfinished output behind");
}

/// The retired-segment list goes once the segments it names are gone. A failure to remove
/// it is reported, naming it, never taken for a list already gone; every document stays,
/// and the next open takes the list.
#[test]
fn a_retired_list_that_cannot_be_removed_is_an_error() {
    let TwoVersions {
        storage,
        root: _root,
        dir,
        options,
        mut store,
    } = two_versions();
    let list = dir.join("retired.tsr");
    storage.inject_on(Fault::Fail(FaultOp::Remove), &list);
    let err = store.compact().expect_err("the list's removal failed");
    storage.disarm();
    assert!(err.to_string().contains("retired.tsr"), "{err}");
    assert!(list.exists());
    assert_latest_versions(&store, "before the reopen");
    drop(store);
    let store = Store::open(&dir, options).unwrap();
    assert_latest_versions(&store, "after the reopen");
    assert!(!list.exists(), "the open left the list");
}

/// A store of 8 KiB segments on fault-injecting storage, its documents in two versions
/// ([`put_two_versions`]).
struct TwoVersions {
    storage: Arc<FaultStorage>,
    root: tempfile::TempDir,
    dir: PathBuf,
    options: StoreOptions,
    store: Store,
}

fn two_versions() -> TwoVersions {
    let storage = Arc::new(FaultStorage::new());
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let options = small_segments_on(&storage);
    let mut store = Store::create(&dir, options.clone()).unwrap();
    put_two_versions(&mut store);
    TwoVersions {
        storage,
        root,
        dir,
        options,
        store,
    }
}

/// A compaction of every segment with dead bytes, run and not yet installed.
fn compaction_of_everything(store: &mut Store) -> store_mmap::Compacted {
    let plan = store
        .plan_compaction(&CompactionScope::Everything)
        .unwrap()
        .expect("dead bytes to compact");
    plan.run().unwrap()
}

/// Every document [`put_two_versions`] wrote reads at its latest version.
fn assert_latest_versions(store: &Store, context: &str) {
    for k in 0..12 {
        let version = if k % 2 == 0 { 2 } else { 1 };
        assert_eq!(
            store.get(id(k)).unwrap().as_deref(),
            Some(versioned_text(k, version).as_str()),
            "document {k} ({context})"
        );
    }
}

/// Options for a store of 8 KiB segments on `storage`.
fn small_segments_on(storage: &Arc<FaultStorage>) -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000)
        .storage(Arc::clone(storage) as _)
}

/// Version `version` of document `k`: about 900 bytes, a ninth of a small segment.
fn versioned_text(k: u64, version: u32) -> String {
    format!("{k} {version} {}", "t".repeat(900))
}

/// Documents 0 to 11 at version 1, then the even ones at version 2: dead bytes to compact.
fn put_two_versions(store: &mut Store) {
    for version in 1..=2 {
        for k in (0..12).step_by(version as usize) {
            store.put(id(k), &versioned_text(k, version)).unwrap();
        }
    }
}

/// A store its caller poisons (having caught a panic out of one of its calls, after which
/// what it holds in memory is unknown) refuses writes, syncs and checkpoints with that
/// cause, keeps the first cause, and closes without touching a file: no seal and no
/// checkpoint of a state no one knows. The next open recovers every commit from before.
#[test]
fn a_store_its_caller_poisons_refuses_changes_and_closes_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, options) = quiet_fault_storage();
    let mut store = Store::create(dir.path(), options).unwrap();
    let text = |k: u64| format!("text {k}");
    for k in 0..10 {
        store.put(id(k), &text(k)).unwrap();
    }
    let panicked = |message: &str| Error::Panicked {
        thread: "a caller's thread",
        message: message.to_owned(),
    };
    store.poison(panicked("the first"));
    store.poison(panicked("a later one"));
    let err = store.put(id(10), "after").unwrap_err();
    let Error::Poisoned { cause } = &err else {
        panic!("a put after the poison: {err}");
    };
    assert_eq!(cause.to_string(), "a caller's thread panicked: the first");
    assert!(matches!(store.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(store.checkpoint(), Err(Error::Poisoned { .. })));

    let counts = || FaultOp::ALL.map(|op| storage.count(op));
    let before = counts();
    assert!(matches!(store.close(), Err(Error::Poisoned { .. })));
    assert_eq!(
        counts(),
        before,
        "the close of a poisoned store changed a file"
    );

    let reopened = Store::open(dir.path(), StoreOptions::new()).unwrap();
    for k in 0..10 {
        assert_eq!(
            reopened.get(id(k)).unwrap().as_deref(),
            Some(text(k).as_str())
        );
    }
    assert_eq!(reopened.get(id(10)).unwrap(), None);
    assert!(reopened.verify().is_clean());
}

/// A store dropped as a panic unwinds, its caller's or one out of its own open, closes as a
/// poisoned store does: it seals nothing and writes no checkpoint of a state no one knows,
/// and makes no storage call that could panic in its turn, which would abort the process.
/// The next open recovers every commit.
#[test]
fn a_store_dropped_by_a_panic_closes_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, options) = quiet_fault_storage();
    let text = |k: u64| format!("text {k}");
    let counts = || FaultOp::ALL.map(|op| storage.count(op));
    let mut before = None;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut store = Store::create(dir.path(), options.clone()).unwrap();
        for k in 0..10 {
            store.put(id(k), &text(k)).unwrap();
        }
        before = Some(counts());
        panic!("the caller's panic");
    }));
    assert!(unwound.is_err());
    assert_eq!(
        Some(counts()),
        before,
        "the store dropped by its caller's panic changed a file"
    );

    // A store left as a crash leaves it: its open syncs the newest segment before it
    // serves, and that sync panics, with every other kind of operation armed to panic
    // too. The drop of the half-opened store calls none of them.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    for k in 0..10 {
        store.put(id(k), &text(k)).unwrap();
    }
    storage.cut_power();
    drop(store);
    storage.restore_durable_state().unwrap();
    let panics = [
        FaultOp::Create,
        FaultOp::Write,
        FaultOp::Sync,
        FaultOp::Rename,
    ];
    for op in panics {
        storage.inject(Fault::Panic(op), 0);
    }
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Store::open(dir.path(), options.clone()).map(drop)
    }));
    assert!(opened.is_err(), "the open did not panic: {opened:?}");
    let fired: u64 = panics
        .iter()
        .map(|&op| storage.injected(Fault::Panic(op)))
        .sum();
    assert_eq!(fired, 1, "more than the open's own panic fired");
    storage.disarm();

    let reopened = Store::open(dir.path(), StoreOptions::new()).unwrap();
    for k in 0..10 {
        assert_eq!(
            reopened.get(id(k)).unwrap().as_deref(),
            Some(text(k).as_str())
        );
    }
    assert!(reopened.verify().is_clean());
}
