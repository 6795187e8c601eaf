//! A panic in a call into the engine, in a commit (on the writer thread or on a submitting
//! thread that commits its own write) or in another call of the writer thread: what the
//! store was doing is unknown, so the call fails with the panic, the handle refuses every
//! write after it naming the panic, reads go on, nothing waits forever, the close changes no
//! file, and a reopen holds every write acknowledged before. A panic in a compaction's
//! copy, which writes only files of its own, fails that compaction alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store_concurrent::{CompactionStats, ConcurrentStore, Error, ScrubPolicy, WriterOptions};
use store_format::{ErrorKind, StoreError};
use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{CompactionPolicy, Storage, StoreOptions, WriteBatch};

use crate::{eager_compaction, id};

/// A handle over a fault storage, with no scrub thread, whose requests would wake the
/// writer thread.
struct Case {
    _dir: tempfile::TempDir,
    path: PathBuf,
    storage: Arc<FaultStorage>,
    store: ConcurrentStore,
}

impl Case {
    fn new(options: StoreOptions, compaction: CompactionPolicy) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let storage = Arc::new(FaultStorage::new());
        let options = options.storage(Arc::clone(&storage) as Arc<dyn Storage>);
        let writer = WriterOptions::default()
            .scrub(ScrubPolicy::off())
            .compaction(compaction);
        let store = ConcurrentStore::create(&path, options, writer).unwrap();
        Case {
            _dir: dir,
            path,
            storage,
            store,
        }
    }

    /// After the panic: a put is refused as poisoned, with the injected panic as the cause,
    /// the close fails and changes no file, and a reopen holds "before" under id 1 and
    /// nothing more. `when` says which case is checked.
    fn closes_poisoned(self, when: &str) {
        let Case {
            path,
            storage,
            store,
            ..
        } = self;
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
        assert!(store.sync().is_err(), "{when}");
        // A close that seals the active segment or writes an index checkpoint creates and
        // renames files (the zeroing thread, which may still run, does neither).
        let file_changes = || [FaultOp::Create, FaultOp::Rename].map(|op| storage.count(op));
        let before = file_changes();
        assert!(store.close().is_err(), "{when}");
        drop(store);
        assert_eq!(
            file_changes(),
            before,
            "{when}: the close sealed or checkpointed a store in an unknown state"
        );
        reopens_with_the_first_write(&path, when);
    }
}

/// The store at `path`, reopened by the plain engine, holds "before" under id 1 and
/// nothing under id 99, and verifies clean.
fn reopens_with_the_first_write(path: &std::path::Path, when: &str) {
    let reopened = store_mmap::Store::open(path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.get(id(1)).unwrap().as_deref(), Some("before"));
    assert_eq!(reopened.get(id(99)).unwrap(), None, "{when}");
    assert!(reopened.verify().is_clean(), "{when}");
}

/// The call that panicked failed with the panic, on `thread`, as its own failure (kind
/// `Other`), not as if the handle had closed.
fn failed_with_the_panic<T: std::fmt::Debug>(
    failed: store_concurrent::Result<T>,
    thread: &str,
    when: &str,
) {
    let Err(Error::Store(err)) = failed else {
        panic!("{when}: the call that panicked: {failed:?}");
    };
    assert!(
        matches!(&err, store_mmap::Error::Panicked { thread: on, message }
            if *on == thread && message.contains("injected panic")),
        "{when}: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Other, "{when}: {err}");
}

/// Waits up to a minute for `done`; `what` names the wait in the failure, with `state`.
fn wait_for<S: std::fmt::Debug>(what: &str, state: impl Fn() -> S, done: impl Fn(&S) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = state();
        if done(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whose thread the commit that panics runs on.
#[derive(Debug, Clone, Copy)]
enum Committer {
    /// The writer thread: the submitter waits without helping.
    WriterThread,
    /// The submitter: `commit_ops` commits on the calling thread when nothing is queued.
    Submitter,
}

fn panic_in_a_commit(committer: Committer) {
    let case = Case::new(StoreOptions::new(), CompactionPolicy::manual());
    let (store, storage) = (&case.store, &case.storage);
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
            wait_for("the panicking commit", || ticket.is_ready(), |&ready| ready);
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
    let when = format!("{committer:?}");
    assert_eq!(storage.injected(panic), 1, "{when}");
    failed_with_the_panic(failed, "the thread committing a group", &when);
    // Reads go on.
    assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("before"));
    case.closes_poisoned(&when);
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
/// does; the thread serves on. A panic in the close is the close's error, and leaves the
/// files as a crash would.
fn panic_on_the_writer_thread(call: Call) {
    let case = Case::new(StoreOptions::new(), CompactionPolicy::manual());
    let (store, storage) = (&case.store, &case.storage);
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
    let when = format!("{call:?}");
    assert_eq!(storage.injected(panic), 1, "{when}");
    failed_with_the_panic(failed, "the writer thread", &when);
    if let Call::Close = call {
        assert!(matches!(store.get(id(1)), Err(Error::Closed)));
        let Case { path, store, .. } = case;
        drop(store);
        reopens_with_the_first_write(&path, &when);
    } else {
        assert_eq!(store.get(id(1)).unwrap().as_deref(), Some("before"));
        case.closes_poisoned(&when);
    }
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
    let options = StoreOptions::new()
        .segment_capacity(8192)
        .max_document_bytes(2000);
    let case = Case::new(options, eager_compaction());
    let (store, storage) = (&case.store, &case.storage);
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
    let delete = |keys: std::ops::Range<u64>| {
        let mut deletes = WriteBatch::new();
        for k in keys {
            deletes.delete(id(k));
        }
        store.put_batch(deletes).unwrap().wait().unwrap();
    };
    let stats = || store.compaction_stats();
    delete(0..8);
    wait_for(
        "the compaction that panics",
        stats,
        |stats: &CompactionStats| stats.failed() == 1,
    );
    assert_eq!(storage.injected(panic), 1);
    let error = stats().last_error().map(str::to_owned);
    assert!(
        error.as_deref().is_some_and(
            |error| error.contains("the thread copying a compaction panicked: injected panic")
        ),
        "{error:?}"
    );
    assert_eq!(stats().completed(), 0);

    // Writes go on, and make the store due again: the thread compacts.
    delete(8..16);
    wait_for(
        "the compaction after the panic",
        stats,
        |stats: &CompactionStats| stats.completed() >= 1,
    );
    for k in 0..25 {
        let expected = (k >= 16).then(|| text(k));
        assert_eq!(store.get(id(k)).unwrap().as_deref(), expected.as_deref());
    }
    store.close().unwrap();
    let reopened = store_mmap::Store::open(&case.path, StoreOptions::new()).unwrap();
    assert_eq!(reopened.len(), 9);
    assert!(reopened.verify().is_clean());
}
