use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use store_cache::{CacheOptions, Cached, Error};
use store_concurrent::{ConcurrentStore, WriterOptions};
use store_format::{DocWrite, ErrorKind, MemoryStore, StoreError, WriteTicket};
use store_mmap::{DocId, DocRead, Store, StoreOptions, TextRange};

/// Options that build a table for every document, so that small texts exercise the tables.
fn tables_for_all() -> CacheOptions {
    CacheOptions {
        doc_min_bytes: 0,
        table_min_doc_bytes: 0,
        ..CacheOptions::default()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, String),
    Delete(u8),
    Get(u8),
    Lines(u8, u64, u64),
    Chars(u8, u64, u64),
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0u8..6;
    prop_oneof![
        (id.clone(), "(\\PC|\\n){0,80}").prop_map(|(id, text)| Step::Put(id, text)),
        id.clone().prop_map(Step::Delete),
        id.clone().prop_map(Step::Get),
        (id.clone(), 0u64..8, 0u64..8).prop_map(|(id, a, b)| Step::Lines(id, a, b)),
        (id, 0u64..90, 0u64..90).prop_map(|(id, a, b)| Step::Chars(id, a, b)),
    ]
}

/// A cache whose reader the test writes through: the engine by `&mut`, or the in-memory
/// double through the cache's own `DocWrite`, which passes writes on.
trait Writable {
    fn write(&mut self, id: DocId, text: &str);
    fn remove(&mut self, id: DocId);
}

impl Writable for Cached<Store> {
    fn write(&mut self, id: DocId, text: &str) {
        self.inner_mut().put(id, text).unwrap();
    }

    fn remove(&mut self, id: DocId) {
        self.inner_mut().delete(id).unwrap();
    }
}

impl Writable for Cached<MemoryStore> {
    fn write(&mut self, id: DocId, text: &str) {
        self.put(id, text).unwrap().wait().unwrap();
    }

    fn remove(&mut self, id: DocId) {
        self.delete(id).unwrap().wait().unwrap();
    }
}

/// After any sequence of writes, every read through the cache gives what the model holds:
/// a cached version is never served once a newer one exists.
fn never_stale<R>(cached: &mut Cached<R>, steps: Vec<Step>) -> Result<(), TestCaseError>
where
    R: DocRead,
    R::Error: std::fmt::Debug,
    Cached<R>: Writable,
{
    let mut model: BTreeMap<u8, String> = BTreeMap::new();
    for step in steps {
        match step {
            Step::Put(id, text) => {
                cached.write(DocId::from(u64::from(id)), &text);
                model.insert(id, text);
            }
            Step::Delete(id) => {
                cached.remove(DocId::from(u64::from(id)));
                model.remove(&id);
            }
            Step::Get(id) => {
                let got = cached.get(DocId::from(u64::from(id))).unwrap();
                prop_assert_eq!(got.as_deref(), model.get(&id).map(String::as_str));
            }
            Step::Lines(id, a, b) | Step::Chars(id, a, b) => {
                let range = match step {
                    Step::Lines(..) => TextRange::lines(a, b),
                    _ => TextRange::chars(a..b),
                };
                let got = cached.extract(DocId::from(u64::from(id)), range);
                match model.get(&id) {
                    None => prop_assert!(matches!(got, Err(Error::NotFound { .. })), "{:?}", got),
                    Some(text) => {
                        let expected = range.resolve(text).map(|r| &text[r]);
                        match (got, expected) {
                            (Ok(got), Ok(expected)) => prop_assert_eq!(&*got, expected),
                            (Err(Error::Range { source, .. }), Err(expected)) => {
                                prop_assert_eq!(source, expected)
                            }
                            (got, expected) => {
                                prop_assert!(false, "{:?} against {:?}", got, expected)
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_cache_never_serves_a_stale_version(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), StoreOptions::new()).unwrap();
        never_stale(&mut Cached::new(store, &tables_for_all()), steps)?;
    }

    #[test]
    fn over_the_double_the_cache_never_serves_a_stale_version(
        steps in prop::collection::vec(step(), 1..60),
    ) {
        never_stale(&mut Cached::new(MemoryStore::new(), &tables_for_all()), steps)?;
    }
}

/// A hit is served by the cache alone: the reader sees only the misses (and the version
/// lookups every read makes first, which are not reads of text).
#[test]
fn hits_never_reach_the_reader() {
    let cached = Cached::new(MemoryStore::new(), &tables_for_all());
    let id = DocId::from(3u64);
    cached
        .put(id, "a text worth caching")
        .unwrap()
        .wait()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(&*cached.get(id).unwrap().unwrap(), "a text worth caching");
        assert_eq!(
            &*cached.extract(id, TextRange::chars(2..6)).unwrap(),
            "text"
        );
    }
    assert_eq!(cached.stats().misses(), 1);
    assert_eq!(cached.stats().hits(), 19);
    assert_eq!(cached.inner().reads(), 1);
    // A failing reader's error comes through the cache with its kind.
    cached.inner().fail_with(Some(ErrorKind::Corrupt));
    let err = cached.get(DocId::from(4u64)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(matches!(err, Error::Store(_)), "{err:?}");
}

#[test]
fn hits_and_misses_follow_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cached = Cached::new(
        Store::create(dir.path(), StoreOptions::new()).unwrap(),
        &tables_for_all(),
    );
    let id = DocId::from(7u64);
    cached.inner_mut().put(id, "one").unwrap();
    let counts = |c: &Cached<Store>| (c.stats().hits(), c.stats().misses(), c.stats().docs());
    assert_eq!(&*cached.get(id).unwrap().unwrap(), "one");
    assert_eq!(counts(&cached), (0, 1, 1));
    assert_eq!(&*cached.get(id).unwrap().unwrap(), "one");
    assert_eq!(counts(&cached), (1, 1, 1));
    cached.inner_mut().put(id, "two").unwrap();
    assert_eq!(&*cached.get(id).unwrap().unwrap(), "two");
    assert_eq!(counts(&cached), (1, 2, 2));
    cached.inner_mut().delete(id).unwrap();
    assert!(cached.get(id).unwrap().is_none());
    // A miss of a deleted or absent document is neither a hit nor a miss of the cache.
    assert!(cached.get(DocId::from(8u64)).unwrap().is_none());
    assert_eq!(counts(&cached), (1, 2, 2));
    assert_eq!(cached.stats().hit_ratio(), 1.0 / 3.0);
}

#[test]
fn large_documents_resolve_ranges_through_one_table_per_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut cached = Cached::new(
        Store::create(dir.path(), StoreOptions::new()).unwrap(),
        &CacheOptions::default(),
    );
    let id = DocId::from(1u64);
    let text: String = (0..20_000).map(|n| format!("línea {n}\n")).collect();
    cached.inner_mut().put(id, &text).unwrap();
    let plain = |range: TextRange| text[range.resolve(&text).unwrap()].to_owned();
    for range in [
        TextRange::lines(1, 1),
        TextRange::lines(10_000, 10_002),
        TextRange::lines(20_000, 20_000),
        TextRange::chars(0..5),
        TextRange::chars(100_000..100_100),
    ] {
        assert_eq!(&*cached.extract(id, range).unwrap(), plain(range));
        assert_eq!(&*cached.extract(id, range).unwrap(), plain(range));
    }
    assert_eq!(
        (cached.stats().table_builds(), cached.stats().table_hits()),
        (2, 8)
    );
    assert!(matches!(
        cached.extract(id, TextRange::lines(20_000, 20_001)),
        Err(Error::Range { .. })
    ));
    // A small document scans: no table is built for it.
    cached.inner_mut().put(DocId::from(2u64), "a\nb\n").unwrap();
    assert_eq!(
        &*cached
            .extract(DocId::from(2u64), TextRange::lines(2, 2))
            .unwrap(),
        "b\n"
    );
    assert_eq!(cached.stats().table_builds(), 2);
    // A new version gets a table of its own.
    cached.inner_mut().put(id, "new\ntext\n").unwrap();
    let options = tables_for_all();
    let cached = Cached::new(cached.close(&dir.path().join("hot")).unwrap(), &options);
    assert_eq!(
        &*cached.extract(id, TextRange::lines(2, 2)).unwrap(),
        "text\n"
    );
    assert_eq!(cached.stats().table_builds(), 1);
}

/// Drops the store's pages from the page cache.
fn evict(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            let file = std::fs::File::open(&path).unwrap();
            file.sync_all().unwrap();
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
    }
}

#[test]
fn the_ids_hot_at_close_are_prefetched_at_open() {
    // Under the target directory, on the disk the build uses: on a tmpfs (where the system's
    // temporary directory may be) pages cannot be evicted.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store_dir = dir.path().join("store");
    let hot_file = dir.path().join("hot-ids");
    let open = || {
        ConcurrentStore::open_or_create(&store_dir, StoreOptions::new(), WriterOptions::default())
            .unwrap()
    };
    let options = CacheOptions {
        hot_ids: 3,
        ..CacheOptions::default()
    };
    let (cached, prefetched) = Cached::open(open(), &options, &hot_file).unwrap();
    assert_eq!(prefetched, 0, "no hot-id file yet");
    let text = |n: u64| format!("{n} ").repeat(2000);
    for n in 0..50 {
        cached
            .inner()
            .put(DocId::from(n), text(n))
            .unwrap()
            .wait()
            .unwrap();
    }
    // Reads: id 10 most, then 20, then 30; the rest once each.
    for (id, reads) in [(10, 40), (20, 30), (30, 20)] {
        for _ in 0..reads {
            assert_eq!(&*cached.get(DocId::from(id)).unwrap().unwrap(), text(id));
        }
    }
    for n in 0..50u64 {
        cached.get(DocId::from(n)).unwrap().unwrap();
    }
    let hot = [10u64, 20, 30].map(DocId::from);
    assert_eq!(cached.hottest(3), hot);
    cached.close(&hot_file).unwrap().close().unwrap();
    let saved = std::fs::read_to_string(&hot_file).unwrap();
    assert_eq!(saved.lines().count(), 4, "{saved}");

    // Evicted after the open, whose own reads of the segment could bring pages back in.
    let store = open();
    evict(&store_dir);
    assert!(hot.iter().all(|&id| !store.is_resident(id).unwrap()));
    let (cached, prefetched) = Cached::open(store, &options, &hot_file).unwrap();
    assert_eq!(prefetched, 3);
    // The kernel reads the advised pages in the background; wait for them, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hot
        .iter()
        .all(|&id| cached.inner().is_resident(id).unwrap())
    {
        assert!(
            Instant::now() < deadline,
            "the hot records were not read in"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(&*cached.get(hot[0]).unwrap().unwrap(), text(10));
}

#[test]
fn a_damaged_hot_id_file_is_an_error_that_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store"), StoreOptions::new()).unwrap();
    let hot_file = dir.path().join("hot-ids");
    std::fs::write(&hot_file, "textstore hot ids v1\n1\nnot an id\n").unwrap();
    let err = Cached::open(store, &CacheOptions::default(), &hot_file)
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("hot-ids line 3") && matches!(err, Error::BadHotFile { line: 3, .. }),
        "{message}"
    );
    std::fs::write(&hot_file, "something else\n").unwrap();
    let store = Store::open(dir.path().join("store"), StoreOptions::new()).unwrap();
    let err = Cached::open(store, &CacheOptions::default(), &hot_file)
        .err()
        .unwrap();
    assert!(matches!(err, Error::BadHotFile { line: 1, .. }), "{err}");
}

#[test]
fn documents_under_the_size_floor_bypass_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut cached = Cached::new(
        Store::create(dir.path(), StoreOptions::new()).unwrap(),
        &CacheOptions::default(),
    );
    let (small, large) = (DocId::from(1u64), DocId::from(2u64));
    let large_text = "x".repeat(8 << 10);
    cached.inner_mut().put(small, "short").unwrap();
    cached.inner_mut().put(large, &large_text).unwrap();
    for _ in 0..3 {
        assert_eq!(&*cached.get(small).unwrap().unwrap(), "short");
        assert_eq!(&*cached.get(large).unwrap().unwrap(), large_text);
    }
    let stats = cached.stats();
    assert_eq!((stats.hits(), stats.misses(), stats.docs()), (2, 1, 1));
}

/// A hot document held by the cache across a compaction: the segment it was read from is
/// retired, and its file goes away while the document keeps being read through the cache.
#[test]
fn a_cached_document_does_not_keep_a_retired_segment_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConcurrentStore::create(
        dir.path().join("store"),
        StoreOptions::new()
            .segment_capacity(64 << 10)
            .max_document_bytes(8 << 10),
        WriterOptions::default().compaction(store_mmap::CompactionPolicy::manual()),
    )
    .unwrap();
    let options = CacheOptions {
        doc_min_bytes: 0,
        ..CacheOptions::default()
    };
    let cached = Cached::new(store, &options);
    let hot = DocId::from(1u64);
    let text = "hot document ".repeat(100);
    cached
        .inner()
        .put(hot, text.clone())
        .unwrap()
        .wait()
        .unwrap();
    let first_segment = dir.path().join("store/0000000001.seg");
    // Fill the first segment with versions that die, so that compaction replaces it.
    for round in 0..200u64 {
        let cold = DocId::from(1000 + round % 10);
        cached
            .inner()
            .put(cold, format!("{round} ").repeat(100))
            .unwrap()
            .wait()
            .unwrap();
    }
    for _ in 0..3 {
        assert_eq!(&*cached.get(hot).unwrap().unwrap(), text);
    }
    assert!(cached.stats().hits() >= 2, "{:?}", cached.stats());
    cached.inner().compact().unwrap();
    assert!(
        cached.inner().compaction_stats().completed() >= 1,
        "compaction ran"
    );
    // The cache dropped what it held once the records moved: each round reads the document
    // (from its new place) and commits, and a commit removes the retired files no reader
    // holds. crossbeam's epochs, under moka, may defer dropping the old entry for a while.
    let mut rounds = 0;
    while first_segment.exists() {
        rounds += 1;
        assert!(rounds <= 1000, "the retired segment is still on disk");
        assert_eq!(&*cached.get(hot).unwrap().unwrap(), text);
        cached
            .inner()
            .put(DocId::from(5u64), "tick")
            .unwrap()
            .wait()
            .unwrap();
    }
    assert_eq!(&*cached.get(hot).unwrap().unwrap(), text);
    assert!(
        cached.stats().hits() >= 3,
        "the cache kept serving: {:?}",
        cached.stats()
    );
}

/// The documents' weight is their text plus a fixed 128 bytes an entry, and every figure of
/// the stats reaches an exporter.
#[test]
fn stats_weigh_each_document_and_reach_an_exporter() {
    let cached = Cached::new(MemoryStore::new(), &tables_for_all());
    for (id, len) in [(1u64, 100), (2, 300)] {
        cached
            .put(DocId::from(id), "a".repeat(len))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(cached.get(DocId::from(id)).unwrap().unwrap().len(), len);
    }
    cached.get(DocId::from(1u64)).unwrap();
    cached
        .extract(DocId::from(1u64), TextRange::lines(1, 1))
        .unwrap();
    let stats = cached.stats();
    assert_eq!(
        (stats.docs(), stats.doc_bytes()),
        (2, 100 + 128 + 300 + 128)
    );
    let figures = store_format::Figures::of(&stats);
    for (name, value) in [
        ("textstore_cache_hits_total", stats.hits()),
        ("textstore_cache_misses_total", stats.misses()),
        ("textstore_cache_documents", 2),
        ("textstore_cache_document_bytes", 656),
        ("textstore_cache_table_hits_total", stats.table_hits()),
        ("textstore_cache_table_builds_total", 1),
    ] {
        assert_eq!(figures.get(name), Some(value as f64), "{name}");
    }
    assert_eq!((stats.hits(), stats.misses()), (2, 2));
}

/// A document exactly at the cache's size floor is cached, and one exactly at the table's
/// floor gets a table: each floor is the least size that takes part.
#[test]
fn each_floor_takes_a_document_of_exactly_its_size() {
    let options = CacheOptions {
        doc_min_bytes: 10,
        table_min_doc_bytes: 10,
        ..CacheOptions::default()
    };
    let cached = Cached::new(MemoryStore::new(), &options);
    let (at, under) = (DocId::from(1u64), DocId::from(2u64));
    cached.put(at, "0123456789").unwrap().wait().unwrap();
    cached.put(under, "012345678").unwrap().wait().unwrap();
    for _ in 0..2 {
        cached.get(at).unwrap();
        cached.get(under).unwrap();
    }
    // The one cached is the one at the floor: 10 bytes and an entry's 128.
    let stats = cached.stats();
    assert_eq!((stats.docs(), stats.doc_bytes()), (1, 138), "{stats:?}");
    assert_eq!(&*cached.extract(at, TextRange::chars(2..4)).unwrap(), "23");
    assert_eq!(
        &*cached.extract(under, TextRange::chars(2..4)).unwrap(),
        "23"
    );
    assert_eq!(cached.stats().table_builds(), 1);
}

/// What the cache does not keep goes to the reader and back: the header, the placement
/// epoch, residency, prefetch, sync and close, each with the reader's answer or error.
#[test]
fn the_calls_the_cache_passes_through_reach_the_reader() {
    let cached = Cached::new(MemoryStore::new(), &tables_for_all());
    let id = DocId::from(1u64);
    let seq = cached.put(id, "passed through").unwrap().wait().unwrap();
    let meta = cached.meta(id).unwrap().unwrap();
    assert_eq!((meta.seq, meta.text_len), (seq, 14));
    use store_format::{Prefetch, Residency};
    let resident = cached.get_if_resident(id).unwrap().unwrap().unwrap();
    assert_eq!(&*resident, "passed through");
    assert_eq!(
        cached.get_if_resident(DocId::from(2u64)).unwrap(),
        Some(None)
    );
    let part = cached
        .extract_if_resident(id, TextRange::chars(0..6))
        .unwrap();
    assert_eq!(part.as_deref(), Some("passed"));
    cached.inner().fail_with(Some(ErrorKind::Io));
    assert!(cached.refresh_residency().is_err());
    assert!(cached.prefetch(&[id]).is_err());
    assert!(DocWrite::sync(&cached).is_err());
    cached.inner().fail_with(None);
    DocWrite::close(&cached).unwrap();
    assert!(cached.inner().get(id).is_err(), "the reader was not closed");

    // The engine's placement epoch, which moves with each compaction.
    let dir = tempfile::tempdir().unwrap();
    let mut cached = Cached::new(
        Store::create(dir.path(), StoreOptions::new()).unwrap(),
        &tables_for_all(),
    );
    // Rounds of overwrites and compactions until two have taken effect.
    for round in 0..10 {
        if DocRead::placement_epoch(cached.inner()) >= 2 {
            break;
        }
        for k in 0..10u64 {
            cached
                .inner_mut()
                .put(DocId::from(k), &format!("{round}"))
                .unwrap();
        }
        cached.inner_mut().compact().unwrap();
    }
    let epoch = DocRead::placement_epoch(cached.inner());
    assert!(epoch >= 2, "{epoch}");
    assert_eq!(DocRead::placement_epoch(&cached), epoch);
}

/// A read noted resident through the cache reaches the concurrent handle's residency.
#[test]
fn a_read_noted_through_the_cache_counts_as_resident() {
    use store_format::Residency;
    let dir = tempfile::tempdir().unwrap();
    let store = ConcurrentStore::create(
        dir.path().join("store"),
        StoreOptions::new(),
        WriterOptions::default(),
    )
    .unwrap();
    let cached = Cached::new(store, &tables_for_all());
    let id = DocId::from(1u64);
    cached.inner().put(id, "noted").unwrap().wait().unwrap();
    assert!(!cached.inner().was_resident(id).unwrap());
    cached.note_resident(id);
    assert!(cached.inner().was_resident(id).unwrap());
}
