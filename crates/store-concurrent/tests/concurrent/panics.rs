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
    assert!(
        matches!(err, store_mmap::Error::Panicked { .. }),
        "{committer:?}: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Other, "{committer:?}: {err}");
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

/// What the caller asks of the writer thread when a file operation of the engine panics.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// An explicit sync: the file's flush panics.
    Sync,
    /// An index checkpoint: the rename of the index file into place panics.
    Checkpoint,
    /// The close: the sealed segment's flush panics.
    Close,
}

/// A panic on the writer thread outside a commit poisons the handle as one in a commit
/// does: the call it happened in fails with the panic, reads go on, every write after it is
/// refused naming the panic, the close (unless it panicked itself) changes no file, and a
/// reopen holds every write acknowledged before.
fn panic_on_the_writer_thread(call: Call) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let writer = WriterOptions::default()
        .scrub(ScrubPolicy::off())
        .compaction(CompactionPolicy::manual());
    let store = ConcurrentStore::create(&path, options, writer).unwrap();
    store.put(id(1), "before").unwrap().wait().unwrap();

    let panic = match call {
        Call::Sync | Call::Close => Fault::Panic(FaultOp::Sync),
        Call::Checkpoint => Fault::Panic(FaultOp::Rename),
    };
    storage.inject(panic, 0);
    let failed = match call {
        Call::Sync => store.sync(),
        Call::Checkpoint => store.checkpoint(),
        Call::Close => store.close(),
    };
    assert_eq!(storage.injected(panic), 1, "{call:?}");
    let Err(Error::Store(err)) = failed else {
        panic!("{call:?}: the call that panicked: {failed:?}");
    };
    assert!(
        matches!(&err, store_mmap::Error::Panicked { thread: "the writer thread", message }
            if message.contains("injected panic")),
        "{call:?}: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Other, "{call:?}: {err}");

    if !matches!(call, Call::Close) {
        // The thread serves on: reads go on, and writes are refused naming the panic.
        assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("before"));
        refused_for_the_panic(&store, &format!("{call:?}"));
        let before = file_changes(&storage);
        assert!(store.close().is_err(), "{call:?}");
        drop(store);
        assert_eq!(
            file_changes(&storage),
            before,
            "{call:?}: the close sealed or checkpointed a store in an unknown state"
        );
    } else {
        assert!(matches!(store.get(id(1)), Err(Error::Closed)));
        drop(store);
    }

    let reopened = store_mmap::Store::open(&path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.get(id(1)).unwrap().as_deref(), Some("before"));
    assert_eq!(reopened.get(id(99)).unwrap(), None);
    assert!(reopened.verify().is_clean(), "{call:?}");
}

#[test]
fn a_panic_in_a_sync_poisons_the_handle_and_reads_go_on() {
    panic_on_the_writer_thread(Call::Sync);
}

#[test]
fn a_panic_in_a_checkpoint_poisons_the_handle_and_reads_go_on() {
    panic_on_the_writer_thread(Call::Checkpoint);
}

#[test]
fn a_panic_in_the_close_is_the_close_error() {
    panic_on_the_writer_thread(Call::Close);
}

/// A panic in a compaction's copy, which writes only files of its own, fails that
/// compaction alone: it is counted as failed with the panic as its error, the store is
/// unchanged and takes writes, and the policy's thread, which the panic used to end, runs
/// the next compaction.
#[test]
fn a_panic_in_a_compactions_copy_fails_that_compaction_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000)
        .storage(Arc::clone(&storage) as Arc<dyn Storage>);
    let writer = WriterOptions::default()
        .scrub(ScrubPolicy::off())
        .compaction(CompactionPolicy {
            dead_ratio: Some(0.2),
            min_dead_bytes: 1,
            segment_dead_ratio: 0.2,
            max_bytes_per_sec: None,
        });
    let store = ConcurrentStore::create(&path, options, writer).unwrap();
    let text = |k: u64| format!("{k}").repeat(300);
    for k in 0..24 {
        store.put(id(k), text(k)).unwrap().wait().unwrap();
    }
    // No document is dead yet, so no compaction has run. After a checkpoint and a commit
    // that starts the index journal, the writer creates no file before it idles, and the
    // deletes below fit in the active segment: the next file created is the compaction's
    // output, which panics.
    assert_eq!(store.compaction_stats().completed(), 0);
    store.checkpoint().unwrap();
    store.put(id(24), text(24)).unwrap().wait().unwrap();
    let panic = Fault::Panic(FaultOp::Create);
    storage.inject(panic, 0);
    let wait_for = |what: &str, done: &dyn Fn(&store_concurrent::CompactionStats) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&store.compaction_stats()) {
            assert!(
                Instant::now() < deadline,
                "{what}: {:?}",
                store.compaction_stats()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let mut deletes = store_mmap::WriteBatch::new();
    for k in 0..8 {
        deletes.delete(id(k));
    }
    store.put_batch(deletes).unwrap().wait().unwrap();
    wait_for("the compaction that panics", &|stats| stats.failed() == 1);
    assert_eq!(storage.injected(panic), 1);
    let error = store.compaction_stats().last_error().map(str::to_owned);
    assert!(
        error.as_deref().is_some_and(
            |error| error.contains("the thread copying a compaction panicked: injected panic")
        ),
        "{error:?}"
    );
    assert_eq!(store.compaction_stats().completed(), 0);

    // Writes go on, and make the store due again: the thread compacts.
    let mut deletes = store_mmap::WriteBatch::new();
    for k in 8..16 {
        deletes.delete(id(k));
    }
    store.put_batch(deletes).unwrap().wait().unwrap();
    wait_for("the compaction after the panic", &|stats| {
        stats.completed() >= 1
    });
    for k in 0..25 {
        let expected = (k >= 16).then(|| text(k));
        assert_eq!(store.get(id(k)).unwrap().as_deref(), expected.as_deref());
    }
    store.close().unwrap();
    let reopened = store_mmap::Store::open(&path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.len(), 9);
    assert!(reopened.verify().is_clean());
}
