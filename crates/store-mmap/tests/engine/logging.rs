//! The `tracing` events of the engine: what an operator sees in the log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{Store, StoreOptions};

use crate::{Fixture, id};

/// Log lines written while `run` runs on this thread, at debug level and up.
pub(crate) fn logged(run: impl FnOnce()) -> String {
    #[derive(Clone)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured(Arc::new(Mutex::new(Vec::new())));
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Another dispatcher alive beside this one keeps tracing-core off its path for a single
    // dispatcher, on which a callsite that another test's thread reaches first takes its
    // interest from that thread's default (none: never) and keeps it for the process, so
    // that this thread's events from it would be dropped. With two, every callsite's
    // interest comes from both, and each event asks this thread's subscriber.
    let _beside = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::subscriber::with_default(subscriber, run);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// The line holding `message`, which must be there.
pub(crate) fn line<'a>(log: &'a str, message: &str) -> &'a str {
    log.lines()
        .find(|line| line.contains(message))
        .unwrap_or_else(|| panic!("no {message:?} in the log:\n{log}"))
}

#[test]
fn an_open_after_a_crash_logs_what_it_replayed() {
    let mut f = Fixture::with(StoreOptions::new().checkpoint_bytes(None));
    for k in 0..10 {
        f.store().put(id(k), "replayed").unwrap();
    }
    f.crash();
    let log = logged(|| {
        f.reopen();
    });
    let recovered = line(&log, "recovered");
    assert!(recovered.contains("INFO"), "{recovered}");
    assert!(recovered.contains("records_replayed=10"), "{recovered}");
    // A clean open says only that it opened, at debug level.
    f.close();
    let log = logged(|| {
        f.reopen();
    });
    assert!(!log.contains("recovered"), "{log}");
    assert!(line(&log, "opened").contains("documents=10"));
}

/// Each repair an open makes on its own is logged at info level with its figure: frames
/// taken from the index journal, a torn tail cut, a half-created segment removed, a
/// compaction's leftover output and its replaced inputs removed. None of these opens
/// replays a record, so each repair is what the line reports.
#[test]
fn every_repair_an_open_makes_alone_is_logged() {
    fn newest_id(f: &Fixture) -> u32 {
        crate::segment_id(crate::segment_files(&f.path()).last().unwrap())
    }
    type Case = (&'static str, StoreOptions, fn(&mut Fixture), &'static str);
    let cases: [Case; 5] = [
        (
            "journal frames",
            StoreOptions::new().journal_bytes(Some(1)),
            |f| {
                f.store().checkpoint().unwrap();
                for k in 0..5 {
                    f.store().put(id(k), "journaled").unwrap();
                }
                f.crash();
            },
            "journal_frames=5",
        ),
        (
            "a torn tail",
            StoreOptions::new(),
            |f| {
                f.store().put(id(1), "kept").unwrap();
                f.close();
                let path = crate::segment_files(&f.path()).pop().unwrap();
                let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                file.write_all(&[0xab; 100]).unwrap();
            },
            "dropped_tail=Some(",
        ),
        (
            "a half-created segment",
            StoreOptions::new(),
            |f| {
                f.store().put(id(1), "kept").unwrap();
                f.close();
                let next = f.path().join(format!("{:010}.seg", newest_id(f) + 1));
                std::fs::write(next, [1u8; 10]).unwrap();
            },
            "removed_segment=Some(",
        ),
        (
            "a compaction's leftover output",
            StoreOptions::new(),
            |f| {
                f.store().put(id(1), "kept").unwrap();
                f.close();
                let output = f.path().join(format!("{:010}.seg.tmp", newest_id(f) + 1));
                std::fs::write(output, [1u8; 100]).unwrap();
            },
            "compaction_files_removed=1",
        ),
        (
            "a compaction's replaced inputs",
            StoreOptions::new()
                .segment_capacity(16 << 10)
                .max_document_bytes(8 << 10),
            |f| {
                // A text of the first segment held: its file stays until the crash.
                let mut held = None;
                for round in 0..10 {
                    for k in 0..10 {
                        f.store()
                            .put(id(k), &format!("{round} {}", "r".repeat(400)))
                            .unwrap();
                    }
                    if round == 0 {
                        held = f.store().get(id(0)).unwrap();
                    }
                }
                let inputs = crate::segment_files(&f.path())[0].clone();
                f.store().compact().unwrap();
                f.store().checkpoint().unwrap();
                assert!(inputs.exists() && f.store().retired_segments() > 0);
                f.crash();
                drop(held);
            },
            "retired_segments_removed=",
        ),
    ];
    for (case, options, prepare, reported) in cases {
        let mut f = Fixture::with(options);
        prepare(&mut f);
        let log = logged(|| {
            f.reopen();
        });
        let recovered = line(&log, "recovered");
        assert!(recovered.contains("INFO"), "{case}: {recovered}");
        assert!(
            recovered.contains("records_replayed=0"),
            "{case}: {recovered}"
        );
        assert!(recovered.contains(reported), "{case}: {recovered}");
        assert!(
            !recovered.contains(&format!("{reported}0 ")),
            "{case}: {recovered}"
        );
    }
}

#[test]
fn slow_flushes_checkpoints_and_compactions_are_logged() {
    let mut f = Fixture::with(StoreOptions::new().slow_sync(Duration::ZERO));
    let log = logged(|| {
        f.store().put(id(1), "one").unwrap();
        f.store().put(id(1), "two").unwrap();
        f.store().checkpoint().unwrap();
        f.store().compact().unwrap();
    });
    assert!(line(&log, "slow data flush").contains("WARN"));
    assert!(line(&log, "slow data flush").contains("millis="));
    assert!(line(&log, "index checkpoint installed").contains("DEBUG"));
    let compaction = line(&log, "compaction installed");
    assert!(compaction.contains("records_copied=1"), "{compaction}");
    // At the default threshold a flush of a small write is not slow.
    let mut quiet = Fixture::new();
    let log = logged(|| {
        quiet.store().put(id(1), "one").unwrap();
    });
    assert!(!log.contains("slow data flush"), "{log}");
}

#[test]
fn a_poisoned_store_says_why_it_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(storage.clone());
    let mut store = Store::create(dir.path(), options).unwrap();
    storage.inject(Fault::Fail(FaultOp::Sync), 0);
    let log = logged(|| {
        assert!(store.put(id(1), "lost").is_err());
    });
    let poisoned = line(&log, "refuses writes until it is reopened");
    assert!(poisoned.contains("ERROR"), "{poisoned}");
    assert!(
        poisoned.contains("fdatasync") || poisoned.contains("sync"),
        "{poisoned}"
    );
}
