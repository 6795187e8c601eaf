//! Readers and writers on many threads over one id space.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use store_concurrent::{ConcurrentStore, WriterOptions};
use store_mmap::{DocId, StoreOptions, WriteBatch};

use crate::{id, reopen};

const WRITERS: u64 = 3;
const READERS: usize = 3;
const OPS_PER_WRITER: u64 = 250;
const IDS: u64 = 48;

/// The text writer `writer` puts as its `n`-th operation on `doc`. Readers recompute it to
/// check that a text they read is exactly one that some writer wrote.
fn text(writer: u64, n: u64, doc: u64) -> String {
    let filler = "ñ".repeat(((writer * 131 + n * 37) % 300) as usize);
    format!("{writer}:{n}:{doc}:{filler}")
}

fn parse(text: &str) -> (u64, u64, u64) {
    let mut parts = text.splitn(4, ':');
    let mut next = || parts.next().unwrap().parse::<u64>().unwrap();
    (next(), next(), next())
}

/// What a writer knows was committed: for each id, (seq, text or `None` for a delete).
type Acks = Vec<(DocId, u64, Option<String>)>;

fn writer(store: ConcurrentStore, writer: u64, start: Arc<Barrier>) -> Acks {
    let mut acks = Acks::new();
    let mut rng = writer.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    start.wait();
    for n in 0..OPS_PER_WRITER {
        let doc = next(IDS);
        match next(10) {
            0 => {
                if let Some(seq) = store.delete(id(doc)).unwrap().wait().unwrap() {
                    acks.push((id(doc), seq, None));
                }
            }
            1 | 2 => {
                let docs: Vec<u64> = (0..2 + next(4)).map(|_| next(IDS)).collect();
                let mut batch = WriteBatch::new();
                for doc in &docs {
                    batch.put(id(*doc), &text(writer, n, *doc));
                }
                let last = store.put_batch(batch).unwrap().wait().unwrap();
                let first = last + 1 - docs.len() as u64;
                for (i, doc) in docs.iter().enumerate() {
                    acks.push((id(*doc), first + i as u64, Some(text(writer, n, *doc))));
                }
            }
            _ => {
                let seq = store
                    .put(id(doc), text(writer, n, doc))
                    .unwrap()
                    .wait()
                    .unwrap();
                acks.push((id(doc), seq, Some(text(writer, n, doc))));
            }
        }
    }
    acks
}

/// Reads random ids until told to stop; checks every text and that versions never go back.
/// Returns how many documents it read.
fn reader(store: ConcurrentStore, seed: u64, stop: Arc<AtomicBool>, start: Arc<Barrier>) -> u64 {
    let mut seen: HashMap<DocId, u64> = HashMap::new();
    let mut reads = 0;
    let mut n = seed;
    start.wait();
    while !stop.load(Ordering::Relaxed) {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let doc = (n >> 33) % IDS;
        let Some(got) = store.get(id(doc)).unwrap() else {
            continue;
        };
        reads += 1;
        let (writer, op, written_doc) = parse(&got);
        assert_eq!(
            written_doc, doc,
            "document {doc} holds another document's text"
        );
        assert_eq!(
            got.text().as_str(),
            text(writer, op, doc),
            "document {doc} holds a text no writer wrote"
        );
        let last = seen.entry(id(doc)).or_insert(0);
        assert!(
            got.seq() >= *last,
            "document {doc} went back from seq {last} to {}",
            got.seq()
        );
        *last = got.seq();
    }
    reads
}

#[test]
fn readers_see_only_written_versions_in_order_and_every_ack_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that commits roll segments while readers read, and a table that
    // starts small, so that it is rebuilt while readers probe it.
    let options = StoreOptions::new()
        .segment_capacity(64 << 10)
        .max_document_bytes(4096);
    let store =
        ConcurrentStore::create(dir.path().join("store"), options, WriterOptions::default())
            .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(READERS + WRITERS as usize));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, stop, start) = (store.clone(), Arc::clone(&stop), Arc::clone(&start));
            std::thread::spawn(move || reader(store, r as u64 + 1, stop, start))
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, start) = (store.clone(), Arc::clone(&start));
            std::thread::spawn(move || writer(store, w, start))
        })
        .collect();
    let acks: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0, "the readers read documents");

    // The latest acknowledged write of each id is what the store holds.
    let mut latest: HashMap<DocId, (u64, Option<String>)> = HashMap::new();
    for (doc, seq, text) in acks {
        let entry = latest.entry(doc).or_insert((0, None));
        assert_ne!(entry.0, seq, "two acknowledged writes share seq {seq}");
        if seq > entry.0 {
            *entry = (seq, text);
        }
    }
    let check = |get: &dyn Fn(DocId) -> Option<(u64, String)>| {
        for (doc, (seq, text)) in &latest {
            match text {
                Some(text) => assert_eq!(get(*doc), Some((*seq, text.clone())), "document {doc}"),
                None => assert_eq!(get(*doc), None, "document {doc} was deleted at seq {seq}"),
            }
        }
    };
    check(&|doc| store.get(doc).unwrap().map(|d| (d.seq(), d.to_string())));
    store.close().unwrap();
    let reopened = reopen(dir.path());
    check(&|doc| reopened.get(doc).unwrap().map(|d| (d.seq(), d.to_string())));
    assert_eq!(
        reopened.len() as u64,
        latest.values().filter(|(_, t)| t.is_some()).count() as u64
    );
}

/// One thread's writes to a document apply in the order it queued them, whichever thread
/// commits them: a put whose ticket is dropped, then a put that is waited for (and may be
/// committed by the waiting thread itself), leave the second text, round after round, with
/// readers beside them keeping the writer thread and the waiting thread racing for the core.
#[test]
fn one_threads_writes_apply_in_queue_order_whoever_commits_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::create(dir.path(), WriterOptions::default());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = store.get(id(1)).unwrap();
            }
        });
        for round in 0..500u64 {
            drop(store.put(id(1), format!("first {round}")).unwrap());
            store
                .put(id(1), format!("second {round}"))
                .unwrap()
                .wait()
                .unwrap();
            let text = store.get(id(1)).unwrap().unwrap().to_string();
            assert_eq!(text, format!("second {round}"), "round {round}");
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    });
    store.close().unwrap();
}
