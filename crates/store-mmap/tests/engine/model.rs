use std::collections::BTreeMap;

use proptest::prelude::*;
use store_mmap::{StoreOptions, WriteBatch};

use crate::{Fixture, id};

#[derive(Debug, Clone)]
enum Op {
    Put(u64, String),
    Batch(Vec<(u64, Option<String>)>),
    Delete(u64),
    Reopen,
    Crash,
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
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_a_btreemap(ops in prop::collection::vec(op(), 1..60)) {
        // Small segments so that rolls happen inside the sequences.
        let mut f = Fixture::with(StoreOptions::new().segment_capacity(8192).max_document_bytes(2000));
        let mut model: BTreeMap<u64, String> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put(k, t) => {
                    f.store().put(id(k), &t).unwrap();
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
                }
                Op::Reopen => {
                    f.reopen();
                }
                Op::Crash => {
                    f.crash();
                    f.reopen();
                }
            }
            for k in 0..12u64 {
                let got = f.text(k);
                prop_assert_eq!(got.as_ref(), model.get(&k));
            }
            prop_assert_eq!(f.store().len(), model.len());
        }
        prop_assert!(f.store().verify().is_clean());
    }
}
