use store_mmap::{DocRead, IndexLoad, WriteBatch};

use crate::{Fixture, id};

#[test]
fn latest_version_wins_and_deletes_stick() {
    let mut f = Fixture::new();
    let mut last = 0;
    for v in 0..50 {
        let seq = f.store().put(id(7), &format!("version {v}")).unwrap();
        assert!(seq > last, "sequence numbers grow");
        last = seq;
    }
    f.store().put(id(8), "other").unwrap();
    assert_eq!(f.text(7).as_deref(), Some("version 49"));
    assert!(f.store().delete(id(7)).unwrap());
    assert!(
        !f.store().delete(id(7)).unwrap(),
        "a second delete finds nothing"
    );
    assert_eq!(f.text(7), None);
    assert!(!f.store().contains(id(7)).unwrap());
    for round in 0..3 {
        match round {
            0 => {}
            1 => {
                f.reopen();
                assert!(matches!(
                    f.store().recovery().index,
                    IndexLoad::Loaded { entries: 1 }
                ));
            }
            _ => {
                f.crash();
                f.reopen();
            }
        }
        assert_eq!(f.text(7), None, "round {round}");
        assert_eq!(f.text(8).as_deref(), Some("other"));
    }
    f.store().put(id(7), "reborn").unwrap();
    f.reopen();
    assert_eq!(f.text(7).as_deref(), Some("reborn"));
    let doc = f.store().get(id(7)).unwrap().unwrap();
    assert!(doc.seq() > last);
}

#[test]
fn batches_apply_in_order() {
    let mut f = Fixture::new();
    f.store().put(id(1), "old").unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put(id(2), "two")
        .delete(id(1))
        .put(id(3), "three")
        .put(id(2), "two again");
    f.store().put_batch(&batch).unwrap();
    let check = |f: &mut Fixture| {
        assert_eq!(f.text(1), None);
        assert_eq!(f.text(2).as_deref(), Some("two again"));
        assert_eq!(f.text(3).as_deref(), Some("three"));
    };
    check(&mut f);
    f.crash();
    f.reopen();
    check(&mut f);
    let empty = WriteBatch::new();
    let seq = f.store().last_seq();
    assert_eq!(f.store().put_batch(&empty).unwrap(), seq);
}

#[test]
fn handles_outlive_updates_and_the_store() {
    let mut f = Fixture::new();
    f.store().put(id(1), "first").unwrap();
    let held = f.store().get(id(1)).unwrap().unwrap();
    f.store().put(id(1), "second").unwrap();
    f.store().delete(id(1)).unwrap();
    f.close();
    // The handle shares the mapping, which it keeps alive.
    assert_eq!(&*held, "first");
    let copy = held.clone();
    std::thread::spawn(move || assert_eq!(&*copy, "first"))
        .join()
        .unwrap();
}

#[test]
fn reads_through_the_trait_match_the_store() {
    let mut f = Fixture::new();
    f.store().put(id(1), "hello").unwrap();
    let store = f.store();
    let meta = DocRead::meta(&*store, id(1)).unwrap().unwrap();
    assert_eq!(meta.text_len, 5);
    let mut buf = String::from("junk");
    assert!(DocRead::read_into(&*store, id(1), &mut buf).unwrap());
    assert_eq!(buf, "hello");
    assert!(!DocRead::read_into(&*store, id(2), &mut buf).unwrap());
    assert!(buf.is_empty());
}

#[test]
fn ids_lists_every_live_document() {
    let mut f = Fixture::new();
    for i in 0..10 {
        f.store().put(id(i), "x").unwrap();
    }
    f.store().delete(id(3)).unwrap();
    let mut ids: Vec<_> = f.store().ids().collect::<Result<_, _>>().unwrap();
    ids.sort();
    let expected: Vec<_> = (0..10).filter(|&i| i != 3).map(id).collect();
    assert_eq!(ids, expected);
}
