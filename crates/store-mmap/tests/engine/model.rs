use std::collections::BTreeMap;

use proptest::prelude::*;
use store_mmap::{CompactionPolicy, CompactionScope, ReadVerification, StoreOptions, WriteBatch};

use crate::feed::{Logged, check_feed, check_scan, log_commit};
use crate::{Fixture, id};

#[derive(Debug, Clone)]
enum Op {
    Put(u64, String),
    Batch(Vec<(u64, Option<String>)>),
    Delete(u64),
    Reopen,
    Crash,
    /// Compacts while holding every document read before, which must stay readable.
    Compact,
    /// Runs the automatic policy's compaction, if it is due.
    CompactDue,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u64..12;
    let text = crate::texts();
    prop_oneof![
        6 => (key.clone(), text.clone()).prop_map(|(k, t)| Op::Put(k, t)),
        2 => prop::collection::vec((key.clone(), prop::option::of(text)), 0..5).prop_map(Op::Batch),
        2 => key.prop_map(Op::Delete),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => Just(Op::Compact),
        1 => Just(Op::CompactDue),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_a_btreemap(
        ops in prop::collection::vec(op(), 1..60),
        every_read in any::<bool>(),
        journal in prop_oneof![Just(None), Just(Some(1u64)), Just(Some(600))],
        index_file_every in prop_oneof![Just(None), Just(Some(3000u64))],
    ) {
        // Small segments so that rolls happen inside the sequences; both read checks.
        let verification = if every_read {
            ReadVerification::EveryRead
        } else {
            ReadVerification::FirstRead
        };
        let mut f = Fixture::with(
            StoreOptions::new()
                .segment_capacity(8192)
                .max_document_bytes(2000)
                .read_verification(verification)
                // The journal after every commit, every few, or not at all; index files
                // written only at closes, or every few commits too (which retires the
                // journal each time).
                .journal_bytes(journal)
                .checkpoint_bytes(index_file_every),
        );
        let mut model: BTreeMap<u64, String> = BTreeMap::new();
        // Every committed change, for the scan and the change feed.
        let mut log: Vec<Logged> = Vec::new();
        let mut compacted = false;
        for op in ops {
            let before = f.store().last_seq();
            match op {
                Op::Put(k, t) => {
                    f.store().put(id(k), &t).unwrap();
                    log_commit(&mut log, f.store(), before, &[(k, Some(t.clone()))]);
                    model.insert(k, t);
                }
                Op::Batch(items) => {
                    let mut batch = WriteBatch::new();
                    for (k, t) in &items {
                        match t {
                            Some(t) => batch.put(id(*k), t),
                            None => batch.delete(id(*k)),
                        };
                    }
                    f.store().put_batch(&batch).unwrap();
                    log_commit(&mut log, f.store(), before, &items);
                    for (k, t) in items {
                        match t {
                            Some(t) => model.insert(k, t),
                            None => model.remove(&k),
                        };
                    }
                }
                Op::Delete(k) => {
                    let existed = f.store().delete(id(k)).unwrap();
                    prop_assert_eq!(existed, model.remove(&k).is_some());
                    if f.store().last_seq() > before {
                        log_commit(&mut log, f.store(), before, &[(k, None)]);
                    }
                }
                Op::Reopen => {
                    f.reopen();
                }
                Op::Crash => {
                    f.crash();
                    f.reopen();
                }
                Op::Compact => {
                    let held: Vec<_> = (0..12u64)
                        .filter_map(|k| f.store().get(id(k)).unwrap().map(|doc| (k, doc)))
                        .collect();
                    let report = f.store().compact().unwrap();
                    compacted = true;
                    for (k, doc) in &held {
                        prop_assert_eq!(Some(&doc.to_string()), model.get(k));
                    }
                    // Held documents keep their segments' files until they are dropped.
                    let waiting = f.store().retired_segments();
                    prop_assert!(waiting as u64 <= report.segments_in + 1);
                    drop(held);
                    prop_assert_eq!(f.store().remove_retired().unwrap(), 0);
                    let stats = f.store().stats().unwrap();
                    // Tombstones that must stay (48 bytes each) are the only dead bytes left.
                    prop_assert_eq!(stats.dead_bytes(), report.tombstones_kept * 48, "{:?}", report);
                    prop_assert_eq!(&f.rebuilt(12).map_err(TestCaseError::fail)?, &model);
                }
                Op::CompactDue => {
                    let policy = CompactionPolicy { min_dead_bytes: 1, ..CompactionPolicy::default() };
                    let due = f.store().compaction_due(&policy);
                    let plan = f.store().plan_compaction(&CompactionScope::Due(policy)).unwrap();
                    prop_assert_eq!(due, plan.is_some());
                    if let Some(plan) = plan {
                        let done = plan.run().unwrap();
                        f.store().install_compaction(done).unwrap();
                        compacted = true;
                        f.store().remove_retired().unwrap();
                        prop_assert_eq!(&f.rebuilt(12).map_err(TestCaseError::fail)?, &model);
                    }
                }
            }
            for k in 0..12u64 {
                let got = f.text(k);
                prop_assert_eq!(got.as_ref(), model.get(&k));
            }
            prop_assert_eq!(f.store().len(), model.len());
            check_scan(f.store(), &model, &log);
            check_feed(f.store(), &log, compacted);
        }
        prop_assert!(f.store().verify().is_clean());
    }
}
