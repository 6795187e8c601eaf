//! A panic in the middle of a commit, on the writer thread or on a submitting thread that
//! commits its own write, or elsewhere on the writer thread: what the store was doing is
//! unknown, so the handle refuses every write after it, naming the panic, nothing waits
//! forever, the close changes no file, and a reopen holds every write acknowledged before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use store_concurrent::{ConcurrentStore, Error, ScrubPolicy, WriterOptions};
use store_format::{ErrorKind, StoreError};
use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{CompactionPolicy, Storage, StoreOptions};

use crate::id;

/// Whose thread the commit that panics runs on.
#[derive(Debug, Clone, Copy)]
enum Committer {
    /// The writer thread: the submitter waits without helping.
    WriterThread,
    /// The submitter: `commit_ops` commits on the calling thread when nothing is queued.
    Submitter,
}

/// The files created and renamed so far: a close that seals the active segment or writes
/// an index checkpoint changes them (the zeroing thread, which may still run, does not).
fn file_changes(storage: &FaultStorage) -> [u64; 2] {
    [FaultOp::Create, FaultOp::Rename].map(|op| storage.count(op))
}

/// Checks that a put is refused as poisoned, with the injected panic as the cause; `when`
/// says which case is checked.
fn refused_for_the_panic(store: &ConcurrentStore, when: &str) {
    let refused = store.put(id(99), "after").map(drop);
    let Err(Error::Store(err)) = refused else {
        panic!("{when}: a write after the panic: {refused:?}");
    };
    assert_eq!(err.kind(), ErrorKind::Poisoned, "{when}: {err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|cause| cause.contains("injected panic")),
        "{when}: {err}, caused by {cause:?}"
    );
}

fn panic_in_a_commit(committer: Committer) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    // No scrub or compaction thread, whose requests would wake the writer thread.
    let writer = WriterOptions::default()
        .scrub(ScrubPolicy::off())
        .compaction(CompactionPolicy::manual());
    let store = ConcurrentStore::create(&path, options, writer).unwrap();
    // Committed on this thread: the writer thread, never sent a request, stays asleep
    // until its idle timer, a second from now, so the submitter below finds the core free
    // (should it not, the writer thread commits, and the same holds of the outcome).
    let before = [store_mmap::BatchOp::Put {
        id: id(1),
        text: "before",
    }];
    store.commit_ops(&before).unwrap();

    let panic = Fault::Panic(FaultOp::Sync);
    storage.inject(panic, 0);
    let failed = match committer {
        Committer::WriterThread => {
            let ticket = store.put(id(2), "during").unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !ticket.is_ready() {
                assert!(
                    Instant::now() < deadline,
                    "the panicking commit never ended"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            ticket.wait()
        }
        Committer::Submitter => {
            let ops = [store_mmap::BatchOp::Put {
                id: id(2),
                text: "during",
            }];
            store.commit_ops(&ops)
        }
    };
    assert_eq!(storage.injected(panic), 1, "{committer:?}");
    // The write that panicked fails with the panic, not as if the handle had closed.
    let Err(Error::Store(err)) = failed else {
        panic!("{committer:?}: the write that panicked: {failed:?}");
    };
    assert_eq!(err.kind(), ErrorKind::Poisoned, "{committer:?}: {err}");
    assert!(
        err.to_string().contains("injected panic"),
        "{committer:?}: {err}"
    );
    // Reads go on.
    assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("before"));

    // Every write after it is refused, with the panic as the cause.
    refused_for_the_panic(&store, &format!("{committer:?}"));
    assert!(store.sync().is_err(), "{committer:?}");
    let before = file_changes(&storage);
    assert!(store.close().is_err(), "{committer:?}");
    drop(store);
    assert_eq!(
        file_changes(&storage),
        before,
        "{committer:?}: the close sealed or checkpointed a store in an unknown state"
    );

    let reopened = store_mmap::Store::open(&path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.get(id(1)).unwrap().as_deref(), Some("before"));
    assert_eq!(reopened.get(id(99)).unwrap(), None);
    assert!(reopened.verify().is_clean(), "{committer:?}");
}

#[test]
fn a_panic_on_the_writer_thread_poisons_the_handle() {
    panic_in_a_commit(Committer::WriterThread);
}

#[test]
fn a_panic_on_a_submitting_thread_poisons_the_handle() {
    panic_in_a_commit(Committer::Submitter);
}

/// A panic on the writer thread outside a commit (here in an explicit sync) ends the
/// thread, which closes the handle: writes after it are refused with the panic as the
/// cause, not as if the caller had closed the handle.
#[test]
fn writes_after_the_writer_thread_panicked_name_the_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let store = ConcurrentStore::create(&path, options, WriterOptions::default()).unwrap();
    store.put(id(1), "before").unwrap().wait().unwrap();

    let panic = Fault::Panic(FaultOp::Sync);
    storage.inject(panic, 0);
    assert!(store.sync().is_err());
    assert_eq!(storage.injected(panic), 1);
    // The thread's end closes the handle: reads then fail as closed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(store.get(id(1)), Err(Error::Closed)) {
        assert!(Instant::now() < deadline, "the handle never closed");
        std::thread::sleep(Duration::from_millis(1));
    }

    refused_for_the_panic(&store, "after the writer thread");
    let before = file_changes(&storage);
    drop(store);
    assert_eq!(
        file_changes(&storage),
        before,
        "the drop sealed or checkpointed a store in an unknown state"
    );

    let reopened = store_mmap::Store::open(&path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.get(id(1)).unwrap().as_deref(), Some("before"));
    assert!(reopened.verify().is_clean());
}
