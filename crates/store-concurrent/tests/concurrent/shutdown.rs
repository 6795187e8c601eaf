//! Closing and dropping with writes in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use store_concurrent::{Error, Ticket, WriterOptions};

use crate::{create, id, reopen};

const SUBMITTERS: u64 = 4;
const PER_SUBMITTER: u64 = 300;

#[test]
fn dropping_the_last_handle_with_a_full_queue_commits_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = create(dir.path(), WriterOptions::default().queue_capacity(16));
    let start = Arc::new(Barrier::new(SUBMITTERS as usize));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let (store, start) = (store.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut tickets: Vec<(u64, Ticket<u64>)> = Vec::new();
                // Keep the queue full: block on it until every request is queued.
                for n in 0..PER_SUBMITTER {
                    let doc = s * PER_SUBMITTER + n;
                    tickets.push((doc, store.put(id(doc), format!("doc {doc}")).unwrap()));
                }
                // The handle clone goes away with requests still queued.
                drop(store);
                tickets
            })
        })
        .collect();
    drop(store);
    let tickets: Vec<_> = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    // The last drop closed the store after committing every queued write.
    let reopened = reopen(dir.path());
    for (doc, ticket) in tickets {
        let seq = ticket.wait().unwrap();
        let got = reopened
            .get(id(doc))
            .unwrap()
            .expect("acknowledged write is present");
        assert_eq!(
            (got.seq(), got.text().as_str()),
            (seq, format!("doc {doc}").as_str())
        );
    }
    assert_eq!(reopened.len() as u64, SUBMITTERS * PER_SUBMITTER);
}

/// Submitters keep writing while the store closes, and each writes once more after the
/// close has returned: every write is either acknowledged and present after reopening, or
/// refused with `Closed` and absent, and the writes after the close are all refused. (The
/// submitters stop when they see the close done, not after a fixed count, which a fast
/// machine could finish before the close.)
#[test]
fn close_during_writes_keeps_every_acknowledged_write_and_fails_the_rest_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = create(dir.path(), WriterOptions::default().queue_capacity(8));
    let start = Arc::new(Barrier::new(SUBMITTERS as usize + 1));
    let closed = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let (store, start, closed) = (store.clone(), Arc::clone(&start), Arc::clone(&closed));
            std::thread::spawn(move || {
                start.wait();
                let mut outcomes = Vec::new();
                let mut write = |n: u64| {
                    let doc = s * 1_000_000 + n;
                    let outcome = store
                        .put(id(doc), format!("doc {doc}"))
                        .and_then(Ticket::wait);
                    outcomes.push((doc, outcome));
                };
                let mut n = 0;
                while !closed.load(Ordering::Acquire) {
                    write(n);
                    n += 1;
                }
                write(n);
                outcomes
            })
        })
        .collect();
    start.wait();
    // Let some writes land, then close while the submitters keep going.
    while store.len() < 20 {
        std::thread::yield_now();
    }
    store.close().unwrap();
    closed.store(true, Ordering::Release);
    let outcomes: Vec<Vec<_>> = submitters.into_iter().map(|s| s.join().unwrap()).collect();
    let reopened = reopen(dir.path());
    let mut acknowledged = 0;
    for outcomes in &outcomes {
        let (doc, after_close) = outcomes
            .last()
            .expect("every submitter writes after the close");
        assert!(
            matches!(after_close, Err(Error::Closed)),
            "document {doc}, written after the close: {after_close:?}"
        );
        for (doc, outcome) in outcomes {
            match outcome {
                Ok(seq) => {
                    acknowledged += 1;
                    let got = reopened
                        .get(id(*doc))
                        .unwrap()
                        .expect("acknowledged write is present");
                    assert_eq!(got.seq(), *seq);
                }
                Err(Error::Closed) => {
                    assert!(
                        reopened.get(id(*doc)).unwrap().is_none(),
                        "a write refused as closed is absent"
                    );
                }
                Err(err) => panic!("unexpected error for document {doc}: {err}"),
            }
        }
    }
    assert!(acknowledged >= 20, "writes before the close committed");
    assert_eq!(reopened.len(), acknowledged as usize);
}
