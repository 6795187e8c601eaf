use store_format::{DocWrite, ErrorKind, MemoryStore, StoreError, WriteTicket};
use store_metrics::{Op, Outcome};
use store_mmap::{DocId, DocRead, StoreOptions, TextRange, WriteBatch};

use crate::instrumented;

fn id(n: u64) -> DocId {
    DocId::from(n)
}

/// Checks every count of the snapshot: those `expected` names, and zero for the others.
fn assert_counts(s: &store_metrics::Snapshot, expected: &[(Op, Outcome, u64)]) {
    for &op in &Op::ALL {
        for &outcome in &Outcome::ALL {
            let want = expected
                .iter()
                .find(|(o, out, _)| *o == op && *out == outcome)
                .map_or(0, |e| e.2);
            assert_eq!(s.count(op, outcome), want, "{op:?} {outcome:?}");
        }
    }
}

#[test]
fn every_operation_is_counted_once_by_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = instrumented(dir.path(), StoreOptions::new().max_document_bytes(10));
    store.put(id(1), "0123456789").unwrap().wait().unwrap();
    store.put(id(2), "abc").unwrap().wait().unwrap();
    let too_large = store.put(id(3), "01234567890").unwrap_err();
    assert!(matches!(
        too_large,
        store_concurrent::Error::Store(store_mmap::Error::DocumentTooLarge { .. })
    ));
    let mut batch = WriteBatch::new();
    batch.put(id(4), "four").put(id(5), "five").delete(id(2));
    store.put_batch(batch).unwrap().wait().unwrap();
    assert!(store.get(id(1)).unwrap().is_some());
    assert!(store.get(id(2)).unwrap().is_none());
    assert!(store.get(id(9)).unwrap().is_none());
    assert_eq!(
        &*store.extract(id(1), TextRange::bytes(2..4)).unwrap(),
        "23"
    );
    store.extract(id(1), TextRange::bytes(5..40)).unwrap_err();
    store.extract(id(9), TextRange::bytes(0..1)).unwrap_err();
    let mut buf = String::new();
    assert!(store.read_into(id(4), &mut buf).unwrap());
    assert!(store.delete(id(4)).unwrap().wait().unwrap().is_some());
    assert!(store.delete(id(4)).unwrap().wait().unwrap().is_none());
    store.sync().unwrap();

    let s = metrics.snapshot();
    let invalid = Outcome::Error(ErrorKind::InvalidInput);
    let expected = [
        (Op::Put, Outcome::Ok, 2),
        (Op::Put, invalid, 1),
        (Op::PutBatch, Outcome::Ok, 1),
        (Op::Get, Outcome::Ok, 2),
        (Op::Get, Outcome::NotFound, 2),
        (Op::Extract, Outcome::Ok, 1),
        (Op::Extract, invalid, 1),
        (Op::Extract, Outcome::NotFound, 1),
        (Op::Delete, Outcome::Ok, 1),
        (Op::Delete, Outcome::NotFound, 1),
        (Op::Sync, Outcome::Ok, 1),
    ];
    assert_counts(&s, &expected);
    assert_eq!(s.errors(Op::Put), 1);
    assert_eq!(s.errors(Op::Extract), 1);
    // Reads returned 10 + 4 ("four") bytes of documents, and the extract 2.
    assert_eq!(s.bytes_read(), 10 + 4 + 2);
    // The failed put wrote nothing; the batch's deletes carry no text.
    assert_eq!(s.bytes_written(), 10 + 3 + 4 + 4);
    // Every read and write was timed (sampling every read), failures included.
    assert_eq!(s.latency(Op::Get).count, 4);
    assert_eq!(s.latency(Op::Put).count, 3);
    assert_eq!(s.latency(Op::Extract).count, 3);

    // Commits as the engine reported them: two puts, the batch, one delete, each waited
    // for before the next; the refused put and the delete of nothing wrote no group.
    assert_eq!(s.commits(), 4);
    assert_eq!(s.failed_commits(), 0);
    assert_eq!(s.commit_ops().count(), 4);
    assert_eq!(s.commit_ops().sum(), 1 + 1 + 3 + 1);
    assert_eq!(s.commit_ops().max(), 3);
    assert!(s.commit_bytes() > 0);
    // Each durable commit synced once, and so did the explicit sync.
    assert_eq!(s.syncs().count(), 5);
    assert_eq!(s.commit_write().count(), 4);
}

/// Every error kind a layer reports is counted under its own outcome, through the in-memory
/// double: the metrics layer knows nothing of the layer it wraps but `StoreError::kind`.
#[test]
fn every_error_kind_is_counted_under_its_outcome() {
    let metrics = std::sync::Arc::new(store_metrics::Metrics::new());
    let store = store_metrics::Instrumented::new(MemoryStore::new(), metrics.clone());
    let kinds: Vec<ErrorKind> = ErrorKind::ALL
        .into_iter()
        .filter(|&kind| kind != ErrorKind::NotFound)
        .collect();
    for &kind in &kinds {
        store.inner().fail_with(Some(kind));
        assert_eq!(store.get(id(1)).unwrap_err().kind(), kind);
        assert_eq!(store.put(id(1), "x").unwrap_err().kind(), kind);
    }
    store.inner().fail_with(Some(ErrorKind::NotFound));
    store.get(id(1)).unwrap_err();
    store.inner().fail_with(None);
    store.put(id(1), "x").unwrap().wait().unwrap();
    let s = metrics.snapshot();
    let mut expected: Vec<(Op, Outcome, u64)> = kinds
        .iter()
        .flat_map(|&kind| {
            [
                (Op::Get, Outcome::Error(kind), 1),
                (Op::Put, Outcome::Error(kind), 1),
            ]
        })
        .collect();
    expected.push((Op::Get, Outcome::NotFound, 1));
    expected.push((Op::Put, Outcome::Ok, 1));
    assert_counts(&s, &expected);
}

/// An instrumented in-memory store timing one read in `every`, holding document 1.
fn sampled(
    every: u32,
) -> (
    std::sync::Arc<store_metrics::Metrics>,
    store_metrics::Instrumented<MemoryStore>,
) {
    let metrics = std::sync::Arc::new(store_metrics::Metrics::with_read_sample_every(every));
    let store = store_metrics::Instrumented::new(MemoryStore::new(), metrics.clone());
    store.put(id(1), "x").unwrap().wait().unwrap();
    (metrics, store)
}

#[test]
fn reads_are_all_counted_but_only_a_sample_is_timed() {
    let (metrics, store) = sampled(16);
    for _ in 0..160 {
        store.get(id(1)).unwrap().unwrap();
    }
    let s = metrics.snapshot();
    assert_eq!(s.count(Op::Get, Outcome::Ok), 160);
    assert_eq!(s.latency(Op::Get).count, 10);
    assert_eq!(s.read_sample_every(), 16);
    assert_eq!(s.latency(Op::Put).count, 1, "writes are always timed");
}

#[test]
fn a_sampling_interval_rounds_up_to_a_power_of_two_and_misses_keep_their_count() {
    let (metrics, store) = sampled(10);
    // Misses among the hits: the successes are what is finished beyond the other outcomes.
    for i in 0..64 {
        let doc = store.get(id(if i % 4 == 0 { 2 } else { 1 })).unwrap();
        assert_eq!(doc.is_some(), i % 4 != 0);
    }
    let s = metrics.snapshot();
    assert_eq!(s.read_sample_every(), 16);
    assert_eq!(s.count(Op::Get, Outcome::Ok), 48);
    assert_eq!(s.count(Op::Get, Outcome::NotFound), 16);
    assert_eq!(s.latency(Op::Get).count, 4);
}

#[test]
fn counts_from_many_threads_add_up() {
    let metrics = std::sync::Arc::new(store_metrics::Metrics::new());
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let metrics = &metrics;
            scope.spawn(move || {
                for _ in 0..10_000 {
                    metrics.start(Op::Get).finish(Outcome::Ok, t, 0);
                }
                metrics.record(Op::Delete, Outcome::NotFound, None);
            });
        }
    });
    let s = metrics.snapshot();
    assert_eq!(s.count(Op::Get, Outcome::Ok), 40_000);
    assert_eq!(s.count(Op::Delete, Outcome::NotFound), 4);
    assert_eq!(s.bytes_read(), 10_000 * (1 + 2 + 3));
}

#[test]
fn a_failed_sync_is_reported_as_failed() {
    use std::time::Duration;
    use store_format::{CommitEvent, CommitObserver};
    let metrics = store_metrics::Metrics::new();
    let ms = Duration::from_millis(1);
    metrics.commit(&CommitEvent::new(3, 300, ms, Some(ms), true));
    metrics.commit(&CommitEvent::new(2, 200, ms, Some(ms), false));
    metrics.commit(&CommitEvent::new(2, 200, ms, None, false));
    CommitObserver::sync(&metrics, ms, false);
    let s = metrics.snapshot();
    assert_eq!(s.commits(), 1);
    assert_eq!(s.failed_commits(), 2);
    assert_eq!(
        s.commit_ops().sum(),
        3,
        "failed groups are not committed operations"
    );
    assert_eq!(s.commit_bytes(), 300);
    assert_eq!(s.syncs().count(), 3);
    assert_eq!(s.failed_syncs(), 2);
    let health = store_metrics::health(&s, &store_metrics::Thresholds::default());
    assert_eq!(health.status, Some(store_metrics::Severity::Critical));
    assert_eq!(health.advice[0].code, "writes_failed");
}

#[test]
fn many_overwritten_bytes_recommend_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new().durability(store_mmap::Durability::WriteBack);
    let mut store = store_mmap::Store::create(dir.path().join("s"), options).unwrap();
    let text = "x".repeat(64 << 10);
    let thresholds = store_metrics::Thresholds::default();
    let advice = |store: &store_mmap::Store| {
        let snapshot = store_metrics::Metrics::new()
            .snapshot()
            .with_stats(&store.stats().unwrap());
        store_metrics::health(&snapshot, &thresholds).advice
    };
    for n in 0..300 {
        store.put(id(n % 4), &text).unwrap();
        if n == 3 {
            assert_eq!(advice(&store), vec![], "nothing is dead yet");
        }
    }
    assert_one_warning(
        &advice(&store),
        "compaction_recommended",
        "99% of record bytes",
    );
}

/// `advice` is one warning, `code`, whose message says `says`.
fn assert_one_warning(advice: &[store_metrics::Advice], code: &str, says: &str) {
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert_eq!(advice[0].code, code);
    assert_eq!(advice[0].severity, store_metrics::Severity::Warning);
    assert!(advice[0].message.contains(says), "{}", advice[0].message);
}

/// The file system's free space against what the store's writes may take before compaction
/// frees any (a new segment, and a compaction's copies), as the engine's stats give them.
#[test]
fn a_file_system_without_room_for_a_segment_and_a_compactions_copies_is_advised_against() {
    struct Disk {
        available_mib: u32,
        copies_mib: u32,
    }
    impl store_format::VisitStats for Disk {
        fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
            let mib = |n: u32| f64::from(n) * f64::from(1u32 << 20);
            out.gauge("textstore_segment_capacity_bytes", "", mib(256));
            out.gauge("textstore_compaction_copy_bytes", "", mib(self.copies_mib));
            out.gauge(
                "textstore_filesystem_available_bytes",
                "",
                mib(self.available_mib),
            );
        }
    }
    let advice = |available_mib: u32, copies_mib: u32| {
        let disk = Disk {
            available_mib,
            copies_mib,
        };
        let snapshot = store_metrics::Metrics::new().snapshot().with_stats(&disk);
        store_metrics::health(&snapshot, &store_metrics::Thresholds::default()).advice
    };
    assert_eq!(advice(1024, 100), vec![]);
    // Room for a new segment, and nothing for a compaction to copy.
    assert_eq!(advice(300, 0), vec![]);
    assert_one_warning(
        &advice(200, 0),
        "disk_space_low",
        "200.0 MiB available, less than the 256.0 MiB its writes may take before compaction \
         frees any: a new segment of 256.0 MiB; free space",
    );
    // The same room, short of a compaction's copies.
    assert_one_warning(
        &advice(300, 100),
        "disk_space_low",
        "300.0 MiB available, less than the 356.0 MiB its writes may take before compaction \
         frees any: a new segment of 256.0 MiB, and 100.0 MiB of live records",
    );

    // The engine reports the figures for a store on disk: one segment, whose live records
    // a compaction copies once it holds an older version.
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new()
        .segment_capacity(1 << 20)
        .max_document_bytes(64 << 10);
    let mut store = store_mmap::Store::create(dir.path().join("s"), options).unwrap();
    store.put(id(1), "first").unwrap();
    store.put(id(2), "second").unwrap();
    assert_eq!(store.stats().unwrap().compaction_copy_bytes(), 0);
    store.put(id(1), "first, again").unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.segment_capacity(), 1 << 20);
    assert!(stats.dead_bytes() > 0, "{stats:?}");
    assert_eq!(stats.compaction_copy_bytes(), stats.live_bytes());
    let disk = store.disk_space().unwrap();
    assert!(disk.available_bytes() > 0, "{disk:?}");
    let snapshot = store_metrics::Metrics::new()
        .snapshot()
        .with_stats(&disk)
        .with_stats(&stats);
    assert_eq!(
        snapshot.figure("textstore_filesystem_available_bytes"),
        Some(disk.available_bytes() as f64)
    );
    assert_eq!(
        snapshot.figure("textstore_compaction_copy_bytes"),
        Some(stats.live_bytes() as f64)
    );
}

/// Writes through the concurrent handle are counted per call, when their tickets complete,
/// whether waited on or awaited; failed submissions are counted at once.
#[test]
fn concurrent_writes_are_counted_when_their_tickets_complete() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use store_concurrent::{ConcurrentStore, WriterOptions};

    let dir = tempfile::tempdir().unwrap();
    let metrics = std::sync::Arc::new(store_metrics::Metrics::new());
    let mut inner = store_mmap::Store::create(dir.path().join("s"), StoreOptions::new()).unwrap();
    inner.set_observer(metrics.clone());
    let handle = ConcurrentStore::from_store(inner, WriterOptions::default()).unwrap();
    let store = store_metrics::Instrumented::new(handle, metrics.clone());

    assert_eq!(store.put(id(1), "one").unwrap().wait().unwrap(), 1);
    let mut batch = WriteBatch::new();
    batch.put(id(2), "two").put(id(3), "three");
    store.put_batch(batch).unwrap().wait().unwrap();
    assert!(store.delete(id(2)).unwrap().wait().unwrap().is_some());
    assert!(store.delete(id(9)).unwrap().wait().unwrap().is_none());

    // Awaited: polled until the writer thread completes it.
    let mut awaited = pin!(store.put(id(4), "four").unwrap());
    let mut cx = Context::from_waker(Waker::noop());
    let seq = loop {
        match awaited.as_mut().poll(&mut cx) {
            Poll::Ready(result) => break result.unwrap(),
            Poll::Pending => std::thread::yield_now(),
        }
    };
    assert_eq!(seq, 5);
    // Counted once, though the future is still alive.
    assert!(awaited.is_ready());

    // Dropped unread: the write goes ahead and is counted in the commit groups only.
    drop(store.put(id(5), "five").unwrap());
    store.sync().unwrap();
    assert_eq!(&*store.get(id(5)).unwrap().unwrap(), "five");

    store.inner().close().unwrap();
    let closed = store.put(id(6), "six").unwrap_err();
    assert!(
        matches!(closed, store_concurrent::Error::Closed),
        "{closed}"
    );

    let s = metrics.snapshot();
    let expected = [
        (Op::Put, Outcome::Ok, 2),
        (Op::Put, Outcome::Error(ErrorKind::Closed), 1),
        (Op::PutBatch, Outcome::Ok, 1),
        (Op::Delete, Outcome::Ok, 1),
        (Op::Delete, Outcome::NotFound, 1),
        (Op::Sync, Outcome::Ok, 1),
        (Op::Get, Outcome::Ok, 1),
    ];
    assert_counts(&s, &expected);
    // Bytes of the acknowledged writes only: "one", "two" + "three", "four".
    assert_eq!(s.bytes_written(), 3 + 3 + 5 + 4);
    assert_eq!(s.latency(Op::Put).count, 3);
    // Every write reached a commit group, the dropped one too.
    assert_eq!(s.commit_ops().sum(), 1 + 2 + 1 + 1 + 1);
}

/// What the layer does not count goes to the handle and back: the header, the placement
/// epoch, residency, prefetch and close, each with the handle's answer or error; a read
/// served because it was resident counts as a read of its kind, and a write's ticket says
/// when it is ready.
#[test]
fn the_calls_the_layer_passes_through_reach_the_handle() {
    use store_format::{Prefetch, Residency};
    let metrics = std::sync::Arc::new(store_metrics::Metrics::new());
    let store = store_metrics::Instrumented::new(MemoryStore::new(), metrics.clone());
    let id = DocId::from(1u64);
    let ticket = store.put(id, "passed through").unwrap();
    assert!(ticket.is_ready());
    assert_eq!(format!("{ticket:?}"), "Counted { op: Put, ready: true }");
    let seq = ticket.wait().unwrap();
    // Timed from its submission: well under a minute (a start read off the wrong clock
    // would make it years).
    let puts = metrics.snapshot().durations(Op::Put).clone();
    assert_eq!(puts.count(), 1);
    assert!(puts.max() < 60_000_000_000, "{} ns", puts.max());
    let meta = store.meta(id).unwrap().unwrap();
    assert_eq!((meta.seq, meta.text_len), (seq, 14));
    assert_eq!(DocRead::placement_epoch(&store), 0);
    let resident = store.get_if_resident(id).unwrap().unwrap().unwrap();
    assert_eq!(&*resident, "passed through");
    let absent = DocId::from(2u64);
    assert_eq!(store.get_if_resident(absent).unwrap(), Some(None));
    let part = store
        .extract_if_resident(id, TextRange::chars(0..6))
        .unwrap();
    assert_eq!(part.as_deref(), Some("passed"));
    let s = metrics.snapshot();
    assert_eq!(s.count(Op::Get, Outcome::Ok), 1);
    assert_eq!(s.count(Op::Get, Outcome::NotFound), 1);
    assert_eq!(s.count(Op::Extract, Outcome::Ok), 1);
    store.note_resident(id);

    store.inner().fail_with(Some(ErrorKind::Io));
    assert!(store.refresh_residency().is_err());
    assert!(store.prefetch(&[id]).is_err());
    assert_eq!(metrics.snapshot().errors(Op::Get), 0);
    assert!(store.get(id).is_err());
    assert_eq!(metrics.snapshot().errors(Op::Get), 1);
    store.inner().fail_with(None);
    DocWrite::close(&store).unwrap();
    assert!(store.inner().get(id).is_err(), "the handle was not closed");
}

/// Over the concurrent handle: a read noted resident through the layer reaches the handle's
/// residency, and the layer's placement epoch is the handle's, which compactions move.
#[test]
fn residency_notes_and_the_placement_epoch_pass_through_to_the_handle() {
    use store_format::Residency;
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(2000);
    let (store, _metrics) = instrumented(dir.path(), options);
    let id = DocId::from(1u64);
    store.put(id, "noted").unwrap().wait().unwrap();
    assert!(!store.inner().was_resident(id).unwrap());
    store.note_resident(id);
    assert!(store.inner().was_resident(id).unwrap());

    // Rounds of overwrites and compactions until two segments have been retired.
    for round in 0..20u64 {
        if DocRead::placement_epoch(store.inner()) >= 2 {
            break;
        }
        for k in 0..20u64 {
            let text = format!("{round} {}", "x".repeat(900));
            store.put(DocId::from(k), text).unwrap().wait().unwrap();
        }
        store.inner().compact().unwrap();
    }
    let epoch = DocRead::placement_epoch(store.inner());
    assert!(epoch >= 2, "{epoch}");
    assert_eq!(DocRead::placement_epoch(&store), epoch);
}

/// Every write is timed and one read in the sampling interval; the JSON form holds the
/// counts by operation and outcome, the commits and the figures added, and no `stats` key
/// when none were.
#[test]
fn writes_are_timed_every_time_reads_a_sample_and_the_json_holds_it_all() {
    use std::time::Duration;
    use store_format::{CommitEvent, CommitObserver};
    let metrics = store_metrics::Metrics::with_read_sample_every(64);
    for _ in 0..64 {
        metrics.start(Op::Put).finish(Outcome::Ok, 0, 10);
        metrics.start(Op::Get).finish(Outcome::Ok, 10, 0);
    }
    metrics.record(Op::Put, Outcome::Error(ErrorKind::Io), None);
    let ms = Duration::from_millis(1);
    metrics.commit(&CommitEvent::new(3, 300, ms, Some(ms), true));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.durations(Op::Put).count(), 64);
    assert!(snapshot.durations(Op::Put).max() < 60_000_000_000);
    assert_eq!(snapshot.durations(Op::Get).count(), 1);
    assert_eq!(snapshot.errors(Op::Put), 1);

    struct Documents;
    impl store_format::VisitStats for Documents {
        fn visit(&self, out: &mut dyn store_format::StatsVisitor) {
            out.gauge("textstore_documents", "", 7.0);
        }
    }
    assert!(snapshot.to_json().get("stats").is_none());
    let json = snapshot.with_stats(&Documents).to_json();
    assert_eq!(json["operations"]["get"]["outcomes"]["ok"], 64);
    assert_eq!(json["operations"]["put"]["outcomes"]["io_error"], 1);
    assert_eq!(json["commits"]["ok"], 1);
    assert_eq!(json["commits"]["bytes"], 300);
    assert_eq!(json["stats"]["textstore_documents"], 7.0);
}
