//! Scans and change feeds of the concurrent handle while a writer churns and the store
//! compacts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{Change, CompactionPolicy, DocId, StoreOptions};

use crate::id;

/// Documents written once before the scans and never changed.
const STILL: u64 = 300;
/// Documents written, rewritten and deleted while the scans run.
const CHURNED: std::ops::Range<u64> = 1000..1100;

fn key_of(doc_id: DocId) -> u64 {
    (0..STILL)
        .chain(CHURNED)
        .find(|k| id(*k) == doc_id)
        .expect("a document of the test")
}

fn still(k: u64) -> String {
    format!("still {k} {}", "s".repeat((k % 40) as usize))
}

/// Every committed change, by sequence number: the document and its text (`None`: deleted).
type Log = BTreeMap<u64, (u64, Option<String>)>;

/// Live documents: each one's sequence number and text.
type State = BTreeMap<u64, (u64, String)>;

/// The live documents as of `seq`, by the log.
fn state_as_of(log: &Log, seq: u64) -> State {
    let mut state = BTreeMap::new();
    for (&at, (key, text)) in log.range(..=seq) {
        match text {
            Some(text) => state.insert(*key, (at, text.clone())),
            None => state.remove(key),
        };
    }
    state
}

/// What one round of the reader saw: a scan as of `as_of`, and, when the feed from there was
/// not refused, the scan with the feed applied, as of `upto`.
struct Round {
    as_of: u64,
    scanned: State,
    followed: Option<(u64, State)>,
}

/// Scans beside writes and compactions yield each document at most once, at its latest
/// version as of the scan's start, and every document no write touched during the scan;
/// the change feed from the scan's sequence number, applied to what the scan saw, gives
/// exactly the store as of the feed's end, unless a compaction dropped a delete above its
/// start, which the feed refuses to hide.
#[test]
fn scans_and_feeds_stay_exact_beside_writes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConcurrentStore::create(
        dir.path().join("store"),
        StoreOptions::new()
            .segment_capacity(32 << 10)
            .max_document_bytes(2000),
        WriterOptions::default().compaction(CompactionPolicy::manual()),
    )
    .unwrap();
    let log = Arc::new(Mutex::new(Log::new()));
    for k in 0..STILL {
        let seq = store.put(id(k), still(k)).unwrap().wait().unwrap();
        log.lock().unwrap().insert(seq, (k, Some(still(k))));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let compactions = Arc::new(AtomicU64::new(0));
    let writer = {
        let store = store.clone();
        let stop = Arc::clone(&stop);
        let compactions = Arc::clone(&compactions);
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for k in CHURNED {
                    if (k + round).is_multiple_of(5) {
                        if let Some(seq) = store.delete(id(k)).unwrap().wait().unwrap() {
                            log.lock().unwrap().insert(seq, (k, None));
                        }
                    } else {
                        let text = format!("churned {k} round {round}");
                        let seq = store.put(id(k), text.clone()).unwrap().wait().unwrap();
                        log.lock().unwrap().insert(seq, (k, Some(text)));
                    }
                }
                round += 1;
                if round.is_multiple_of(3) {
                    store.compact().unwrap();
                    compactions.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut rounds = Vec::new();
    while rounds.len() < 12 || compactions.load(Ordering::Relaxed) < 4 {
        let scan = store.scan().unwrap();
        let as_of = scan.as_of();
        let mut scanned = BTreeMap::new();
        for found in scan {
            let (doc_id, doc) = found.unwrap();
            let key = key_of(doc_id);
            let previous = scanned.insert(key, (doc.seq(), doc.to_string()));
            assert!(previous.is_none(), "document {key} scanned twice");
        }
        let followed = match store.changes_since(as_of) {
            Ok(changes) => {
                let upto = changes.upto();
                let mut state = scanned.clone();
                for change in changes {
                    match change.unwrap() {
                        Change::Put { id, doc } => {
                            state.insert(key_of(id), (doc.seq(), doc.to_string()));
                        }
                        Change::Delete { id, .. } => {
                            state.remove(&key_of(id));
                        }
                    }
                }
                Some((upto, state))
            }
            Err(err) => {
                assert!(err.to_string().contains("rescan"), "{err}");
                None
            }
        };
        rounds.push(Round {
            as_of,
            scanned,
            followed,
        });
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let log = log.lock().unwrap();
    let mut followed = 0;
    for round in &rounds {
        let expected = state_as_of(&log, round.as_of);
        for (key, version) in &round.scanned {
            assert_eq!(
                expected.get(key),
                Some(version),
                "document {key} in the scan as of {}",
                round.as_of
            );
        }
        for k in 0..STILL {
            assert!(round.scanned.contains_key(&k), "document {k} missing");
        }
        if let Some((upto, state)) = &round.followed {
            let expected = state_as_of(&log, *upto);
            let differ: Vec<_> = state
                .keys()
                .chain(expected.keys())
                .filter(|k| state.get(k) != expected.get(k))
                .map(|k| (k, state.get(k), expected.get(k)))
                .collect();
            assert!(
                differ.is_empty(),
                "scan as of {} + feed up to {upto}, against the log: {differ:?}",
                round.as_of
            );
            followed += 1;
        }
    }
    assert!(followed > 0, "every feed was refused");
    // With the writer stopped, a scan sees every document and its feed is empty.
    let scan = store.scan().unwrap();
    let as_of = scan.as_of();
    assert_eq!(scan.count(), store.len());
    assert_eq!(store.changes_since(as_of).unwrap().count(), 0);
    // Compacting everything drops the deletes whose documents have no older version left:
    // a feed from before them is refused, from the floor on it is whole.
    let report = store.compact().unwrap();
    assert!(report.tombstones_dropped > 0, "{report:?}");
    let floor = store.change_floor();
    let deleted = |seq: &u64| log.get(seq).is_some_and(|(_, text)| text.is_none());
    assert!(deleted(&floor), "the floor {floor} is a delete");
    assert!(matches!(
        store.changes_since(floor - 1),
        Err(store_concurrent::Error::Store(
            store_mmap::Error::ChangesCompacted { .. }
        ))
    ));
    let from_floor: Vec<Change> = store
        .changes_since(floor)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = log.range(floor + 1..).count();
    assert!(from_floor.len() <= expected);
    assert!(from_floor.iter().all(|change| change.seq() > floor));
}

/// `ids()` walks the index lazily, a page of the checkpoint at a time, then the changes
/// since it: every live document once, whether it lives in the checkpoint, was changed or
/// deleted after it, or is new; documents written during the walk may show up, and do not
/// disturb the rest of it.
#[test]
fn ids_walk_the_checkpoint_and_the_changes_since_it_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::create(dir.path(), WriterOptions::default());
    // Several pages of the index file (about a hundred entries each).
    for k in 0..1000 {
        store.put(id(k), format!("v1 {k}")).unwrap().wait().unwrap();
    }
    store.checkpoint().unwrap();
    for k in (0..1000).step_by(3) {
        store.delete(id(k)).unwrap().wait().unwrap();
    }
    for k in (1..1000).step_by(7) {
        store.put(id(k), format!("v2 {k}")).unwrap().wait().unwrap();
    }
    for k in 2000..2050 {
        store.put(id(k), "new").unwrap().wait().unwrap();
    }
    // Deleted every third, then written again every seventh from 1.
    let expected: std::collections::BTreeSet<DocId> = (0..1000)
        .filter(|k| k % 3 != 0 || k % 7 == 1)
        .chain(2000..2050)
        .map(id)
        .collect();
    let mut walk = store.ids().unwrap();
    let first = walk.next().unwrap().unwrap();
    // Writes during the walk, and a checkpoint that replaces the index the walk reads.
    for k in 3000..3100 {
        store.put(id(k), "later").unwrap().wait().unwrap();
    }
    store.checkpoint().unwrap();
    let mut seen = vec![first];
    seen.extend(walk.map(Result::unwrap));
    let unique: std::collections::BTreeSet<DocId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an id walked twice");
    let later: std::collections::BTreeSet<DocId> = (3000..3100).map(id).collect();
    assert!(unique.is_superset(&expected), "a live document missed");
    assert!(
        unique
            .difference(&expected)
            .all(|extra| later.contains(extra))
    );
    assert_eq!(store.ids().unwrap().count(), expected.len() + 100);
}
