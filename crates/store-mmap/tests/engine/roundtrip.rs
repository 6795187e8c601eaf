use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{Error, StoreOptions, WriteBatch};

use crate::{Fixture, id};

fn samples() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        "a",
        "plain ASCII text\n",
        "Ελληνικά, Русский, العربية, עברית, हिन्दी, 中文, 日本語, 한국어, ไทย",
        "emoji 🦀🎉👩‍👩‍👧‍👦 flags 🇺🇦🇯🇵",
        "combining: e\u{301} a\u{308} Z\u{335}\u{32c}\u{36b}",
        "controls: \u{0}\u{1}\t\r\n\u{7f}\u{85}\u{2028}",
        "\u{feff}byte order mark and \u{fffd} replacement",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Sizes around every alignment boundary of the 8-byte record padding and of pages.
    for len in (0..=17).chain([63, 64, 65, 4047, 4048, 4049, 4095, 4096, 4097, 65_536]) {
        texts.push("x".repeat(len));
    }
    texts
}

#[test]
fn texts_read_back_identical_before_and_after_reopen() {
    let mut f = Fixture::new();
    let texts = samples();
    for (i, text) in texts.iter().enumerate() {
        f.store().put(id(i as u64), text).unwrap();
    }
    for pass in ["open", "reopened", "crashed"] {
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(
                f.text(i as u64).as_deref(),
                Some(text.as_str()),
                "{pass}: doc {i}"
            );
            assert_eq!(
                f.store().text_len(id(i as u64)).unwrap(),
                Some(text.len() as u64)
            );
        }
        match pass {
            "open" => {
                f.reopen();
            }
            _ => {
                f.crash();
                f.reopen();
            }
        }
    }
}

#[test]
fn size_limit_is_exact_and_persisted() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .max_document_bytes(100)
            .segment_capacity(4096),
    );
    f.store().put(id(1), &"y".repeat(100)).unwrap();
    let before = f.store().stats().unwrap();
    let err = f.store().put(id(2), &"y".repeat(101)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DocumentTooLarge {
                len: 101,
                limit: 100,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&id(2).to_string()));
    // A rejected batch writes nothing, not even its valid part.
    let mut batch = WriteBatch::new();
    batch.put(id(3), "fine").put(id(4), &"z".repeat(101));
    assert!(matches!(
        f.store().put_batch(&batch),
        Err(Error::DocumentTooLarge { .. })
    ));
    assert_eq!(f.store().stats().unwrap(), before);
    assert_eq!(f.text(3), None);

    // Reopening with default options keeps the persisted limit.
    f.options = StoreOptions::new();
    f.reopen();
    assert_eq!(f.store().max_document_bytes(), 100);
    assert!(matches!(
        f.store().put(id(5), &"y".repeat(101)),
        Err(Error::DocumentTooLarge { .. })
    ));
    // An explicit option changes it, and the change persists; so does the capacity of the
    // segments the store creates.
    let capacity = f.store().segment_capacity();
    f.options = StoreOptions::new()
        .max_document_bytes(200)
        .segment_capacity(capacity * 2);
    f.reopen();
    f.options = StoreOptions::new();
    f.reopen();
    assert_eq!(f.store().max_document_bytes(), 200);
    assert_eq!(f.store().segment_capacity(), capacity * 2);
    f.store().put(id(5), &"y".repeat(101)).unwrap();
    assert!(!f.store().is_empty());
}

/// The refusal of a document size no segment holds names the largest one that fits, and that
/// one does fit: a document of exactly that size is stored and read back.
#[test]
fn the_largest_document_a_segment_holds_is_accepted_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for capacity in [4096u32, 65_536] {
        let create = |name: &str, max: u64| {
            store_mmap::Store::create(
                dir.path().join(format!("{name}-{capacity}")),
                StoreOptions::new()
                    .segment_capacity(capacity)
                    .max_document_bytes(max),
            )
        };
        let err = create("over", u64::from(capacity))
            .err()
            .expect("a document as large as a segment cannot be accepted");
        assert!(matches!(err, Error::InvalidOptions { .. }), "{err}");
        let message = err.to_string();
        let largest: u64 = message
            .rsplit("at most ")
            .next()
            .and_then(|rest| rest.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("the refusal names the largest size: {message}"));
        assert!(
            create("one-more", largest + 1).is_err(),
            "{largest} + 1 bytes accepted in segments of {capacity}"
        );
        let mut store = create("largest", largest).unwrap();
        let text = "x".repeat(largest as usize);
        store.put(id(1), &text).unwrap();
        store.put(id(2), &text).unwrap();
        store.close().unwrap();
        let store = store_mmap::Store::open(
            dir.path().join(format!("largest-{capacity}")),
            StoreOptions::new(),
        )
        .unwrap();
        assert_eq!(
            store.stats().unwrap().segments(),
            2,
            "one document a segment"
        );
        for key in [1, 2] {
            assert_eq!(
                store.get(id(key)).unwrap().map(|doc| doc.len() as u64),
                Some(largest)
            );
        }
    }
}

#[test]
fn segments_roll_and_batches_stay_whole() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(4096)
            .max_document_bytes(1000),
    );
    for i in 0..40u64 {
        f.store().put(id(i), &format!("{i}:").repeat(40)).unwrap();
    }
    let mut batch = WriteBatch::new();
    for i in 100..106u64 {
        batch.put(id(i), &"b".repeat(500));
    }
    f.store().put_batch(&batch).unwrap();
    let mut spanning = WriteBatch::new();
    for i in 200..220u64 {
        spanning.put(id(i), &"s".repeat(500));
    }
    spanning.delete(id(0));
    let segments = f.segment_files().len();
    f.store().put_batch(&spanning).unwrap();
    assert!(
        f.segment_files().len() >= segments + 2,
        "{:?}",
        f.segment_files()
    );
    assert!(f.segment_files().len() >= 3, "{:?}", f.segment_files());
    f.reopen();
    for i in 1..40u64 {
        assert_eq!(f.text(i), Some(format!("{i}:").repeat(40)));
    }
    for i in 100..106u64 {
        assert_eq!(f.text(i).map(|t| t.len()), Some(500));
    }
    for i in 200..220u64 {
        assert_eq!(f.text(i).map(|t| t.len()), Some(500));
    }
    assert_eq!(f.text(0), None);
}

/// A commit that fits the active segment's room exactly stays in it; one that does not fit
/// the room but would fit an empty segment goes whole into a new one, and is never split.
#[test]
fn a_commit_that_an_empty_segment_holds_goes_into_one_segment() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(4096)
            .max_document_bytes(1000),
    );
    let store = f.store();
    let segment_of =
        |store: &store_mmap::Store, n: u64| store.location(id(n)).unwrap().unwrap().segment;
    let batch_of = |ids: std::ops::Range<u64>, lens: &[usize]| {
        let mut batch = WriteBatch::new();
        for (n, &len) in ids.zip(lens) {
            batch.put(id(n), &"c".repeat(len));
        }
        batch
    };
    // One record of 1,048 bytes after the segment's header leaves 2,984: three records of
    // 1,048, 1,048 and 888 fill it exactly.
    store.put(id(1), &"a".repeat(1000)).unwrap();
    let first = segment_of(store, 1);
    store
        .put_batch(&batch_of(10..13, &[1000, 1000, 840]))
        .unwrap();
    assert!(
        (10..13).all(|n| segment_of(store, n) == first),
        "the room fits it"
    );
    // A record in a new segment leaves 2,984 bytes; three of 1,048 do not fit them.
    store.put(id(2), &"a".repeat(1000)).unwrap();
    let second = segment_of(store, 2);
    assert_ne!(second, first);
    store
        .put_batch(&batch_of(20..23, &[1000, 1000, 1000]))
        .unwrap();
    let third = segment_of(store, 20);
    assert_ne!(third, second, "the batch went to a new segment");
    assert!((20..23).all(|n| segment_of(store, n) == third), "whole");
}

/// A batch larger than a segment whose first record does not fit the active segment's room
/// starts in the next segment: no part of it is left in the segment before, and it reads
/// back whole after a crash, and from the data alone.
#[test]
fn a_spanning_batch_whose_first_record_does_not_fit_starts_in_the_next_segment() {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(4096)
            .max_document_bytes(1000),
    );
    // Three records of 1,048 bytes after the segment's header leave 888.
    for n in 1..=3 {
        f.store().put(id(n), &"a".repeat(1000)).unwrap();
    }
    let mut batch = WriteBatch::new();
    for n in 10..15 {
        batch.put(id(n), &format!("{n}").repeat(500));
    }
    f.store().put_batch(&batch).unwrap();
    let first = f.store().location(id(1)).unwrap().unwrap().segment;
    assert!((10..15).all(|n| f.store().location(id(n)).unwrap().unwrap().segment > first));
    f.crash();
    f.reopen();
    assert_eq!(f.store().recovery().records_replayed, 8);
    for n in 10..15 {
        assert_eq!(f.text(n), Some(format!("{n}").repeat(500)), "doc {n}");
    }
    assert!(f.store().verify().is_clean());
    let rebuilt = f.rebuilt(20).unwrap();
    assert_eq!(rebuilt.len(), 8);
    assert!((10..15).all(|n| rebuilt.get(&n) == Some(&format!("{n}").repeat(500))));
}

/// A segment's view, for readers that do not go through the handle, reads what the store
/// reads, and stays readable after the store is closed; a segment the store does not
/// hold has none.
#[test]
fn a_segment_view_reads_what_the_store_reads() {
    let mut f = Fixture::new();
    f.store().put(id(1), "seen through the view").unwrap();
    let at = f.store().location(id(1)).unwrap().unwrap();
    let view = f
        .store()
        .segment_map(at.segment)
        .expect("the store holds it");
    assert_eq!(view.id(), at.segment);
    assert!(f.store().segment_map(at.segment + 1).is_none());
    f.close();
    let doc = view.read_doc(id(1), at.offset).unwrap();
    assert_eq!(doc.text().as_str(), "seen through the view");
}

/// Under `Durability::Sync` the zeroing thread writes the preallocated space past the
/// commits ahead of them, so that a commit's flush finds it written (docs/PERFORMANCE.md,
/// "Zeros beside the commits"); after a reopen too.
#[test]
fn the_space_past_the_commits_is_written_ahead_of_them() {
    // Where the data from `from` ends: preallocated space never written is a hole.
    let written_to = |path: &std::path::Path, from: u64| {
        let file = std::fs::File::open(path).unwrap();
        rustix::fs::seek(&file, rustix::fs::SeekFrom::Hole(from)).unwrap()
    };
    let mut f = Fixture::new();
    for round in 0..2 {
        f.store().put(id(round), "one").unwrap();
        let at = f.store().location(id(round)).unwrap().unwrap();
        let end = u64::from(at.offset) + store_format::record_len(3);
        let segment = f.segment_files().pop().unwrap();
        assert!(
            crate::within_ten_seconds(|| written_to(&segment, end) >= end + (256 << 10)),
            "round {round}: written to {} past a commit ending at {end}",
            written_to(&segment, end)
        );
        f.reopen();
    }
}

/// The engine's prefetch reads a whole record in, one longer than the kernel's readahead
/// window too, from the length the index holds.
#[test]
fn prefetch_reads_a_whole_long_record_in() {
    use store_mmap::Prefetch;
    // On the disk the build uses, where pages can be evicted (not on a tmpfs); no zeros
    // written ahead, which would bring pages in.
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut store = store_mmap::Store::create(
        root.path().join("store"),
        StoreOptions::new().zero_ahead(false),
    )
    .unwrap();
    store.put(id(1), &"p".repeat(24 << 20)).unwrap();
    let at = store.location(id(1)).unwrap().unwrap();
    let view = store.segment_map(at.segment).unwrap();
    let file = std::fs::File::open(view.path()).unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    assert!(!view.is_resident(at.offset).unwrap(), "evicted");
    store.prefetch(&[id(1), id(2)]).unwrap();
    assert!(crate::within_ten_seconds(|| view
        .is_resident(at.offset)
        .unwrap()));
}

/// A store dropped without `close` closes as `close` does: the next open loads the index
/// file and replays nothing.
#[test]
fn a_dropped_store_is_closed_like_a_closed_one() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("store");
    let mut store = store_mmap::Store::create(&path, StoreOptions::new()).unwrap();
    for k in 0..10 {
        store.put(id(k), "kept").unwrap();
    }
    drop(store);
    let reopened = store_mmap::Store::open(&path, StoreOptions::new()).unwrap();
    let report = reopened.recovery();
    assert!(
        matches!(report.index, store_mmap::IndexLoad::Loaded { entries: 10 }),
        "{report:?}"
    );
    assert_eq!(report.records_replayed, 0, "{report:?}");
    assert_eq!(reopened.len(), 10);
}

#[test]
fn a_small_store_stays_small_on_disk() {
    let mut f = Fixture::new();
    let text = "small document text ".repeat(100); // 2000 bytes
    for i in 0..200u64 {
        f.store().put(id(i), &text).unwrap();
    }
    let stored = 200 * text.len() as u64;
    let open = f.store().stats().unwrap();
    // While open: the data, plus bounded preallocation (1 MiB at this size).
    assert!(
        open.allocated_bytes() <= stored + stored / 20 + (1 << 20) + (64 << 10),
        "{open:?}"
    );
    f.reopen();
    let closed = f.store().stats().unwrap();
    // Closed and reopened: preallocation is given back; record headers, the index and the
    // metadata are the overhead, and the file system rounds up to its blocks.
    assert!(
        closed.allocated_bytes() <= stored + stored / 20 + (64 << 10),
        "{closed:?}"
    );
    assert_eq!(closed.documents(), 200);
    assert_eq!(closed.text_bytes(), stored);
    assert_eq!(closed.dead_bytes(), 0);
}

#[test]
fn stats_count_live_and_dead_bytes() {
    let mut f = Fixture::new();
    f.store().put(id(1), "aaaa").unwrap();
    f.store().put(id(2), "bbbbbbbb").unwrap();
    let s = f.store().stats().unwrap();
    assert_eq!((s.documents(), s.text_bytes(), s.dead_bytes()), (2, 12, 0));
    assert_eq!(s.live_bytes(), 56 + 56);
    f.store().put(id(1), "cc").unwrap();
    f.store().delete(id(2)).unwrap();
    let s = f.store().stats().unwrap();
    assert_eq!((s.documents(), s.text_bytes()), (1, 2));
    // Dead: the first version of 1, the only version of 2, and the tombstone.
    assert_eq!(s.dead_bytes(), 56 + 56 + 48);
    assert_eq!(s.segments(), 1);
    f.reopen();
    let again = f.store().stats().unwrap();
    assert_eq!(
        (again.documents(), again.text_bytes(), again.dead_bytes()),
        (1, 2, 160)
    );
}

/// The index's figures: the changes held in memory since the index file and their heap
/// (at least a 16-byte id and a control byte each), then, after a checkpoint, the file that
/// holds them instead.
#[test]
fn stats_count_the_index_in_memory_and_in_its_file() {
    let mut f = Fixture::with(StoreOptions::new().checkpoint_bytes(None));
    for k in 0..1000 {
        f.store().put(id(k), "indexed").unwrap();
    }
    f.store().delete(id(0)).unwrap();
    let s = f.store().stats().unwrap();
    assert_eq!(s.index_changes(), 1000, "{s:?}");
    assert_eq!(s.index_file_bytes(), 0, "{s:?}");
    assert!(s.index_memory_bytes() >= 1000 * 17, "{s:?}");
    f.store().checkpoint().unwrap();
    let s = f.store().stats().unwrap();
    assert_eq!(s.index_changes(), 0, "{s:?}");
    let file = std::fs::metadata(f.path().join("index.tsi")).unwrap().len();
    assert_eq!(s.index_file_bytes(), file, "{s:?}");
    assert!(s.index_memory_bytes() < 1000 * 17, "{s:?}");
}

/// The `VmFlags` line of the mapping of `path` in this process, from `/proc/self/smaps`.
fn vm_flags_of(path: &std::path::Path) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.canonicalize().unwrap().display().to_string();
    let mut lines = smaps.lines().skip_while(|l| !l.ends_with(&name));
    lines
        .find(|l| l.starts_with("VmFlags:"))
        .unwrap_or_else(|| panic!("no mapping of {name}"))
        .to_owned()
}

#[test]
fn access_pattern_reaches_the_kernel() {
    use store_mmap::AccessPattern;
    // smaps shows MADV_RANDOM as `rr` and MADV_SEQUENTIAL as `sr`.
    for (pattern, flag) in [
        (AccessPattern::Random, "rr"),
        (AccessPattern::Sequential, "sr"),
    ] {
        let mut f = Fixture::with(StoreOptions::new().access_pattern(pattern).prefault(true));
        f.store().put(id(1), "x").unwrap();
        f.reopen();
        let flags = vm_flags_of(&f.segment_files()[0]);
        assert!(
            flags.split_whitespace().any(|w| w == flag),
            "{pattern:?}: {flags}"
        );
        assert_eq!(f.text(1).as_deref(), Some("x"));
    }
    let f = Fixture::new();
    let flags = vm_flags_of(&f.segment_files()[0]);
    assert!(!flags.contains(" rr") && !flags.contains(" sr"), "{flags}");
}

#[test]
fn write_back_mode_loses_nothing_when_the_process_dies() {
    let mut f = Fixture::with(StoreOptions::new().durability(store_mmap::Durability::WriteBack));
    for i in 0..100u64 {
        f.store().put(id(i), &format!("text {i}")).unwrap();
    }
    f.store().sync().unwrap();
    f.store().put(id(100), "after the sync").unwrap();
    f.crash();
    f.reopen();
    for i in 0..100u64 {
        assert_eq!(f.text(i), Some(format!("text {i}")));
    }
    assert_eq!(f.text(100).as_deref(), Some("after the sync"));
    let mut buf = String::new();
    assert!(f.store().read_into(id(5), &mut buf).unwrap());
    assert_eq!(buf, "text 5");
}

/// A large commit under per-commit syncs starts the write-back of what it wrote, every
/// 8 MiB, in order and without a gap, while it writes the rest; a small one, and any commit
/// under write-back durability, starts none. Every document reads back after a reopen.
#[test]
fn a_large_commit_starts_writing_back_as_it_goes() {
    use store_mmap::Durability;
    let text = "w".repeat(1 << 20);
    for durability in [Durability::Sync, Durability::WriteBack] {
        let storage = std::sync::Arc::new(FaultStorage::new());
        let options = StoreOptions::new()
            .durability(durability)
            .storage(storage.clone());
        let mut f = Fixture::with(options);
        f.store().put(id(0), "small").unwrap();
        assert!(storage.write_backs().is_empty(), "a small commit");
        let mut batch = WriteBatch::new();
        for k in 1..=30 {
            batch.put(id(k), &text);
        }
        f.store().put_batch(&batch).unwrap();
        let ranges = storage.write_backs();
        match durability {
            Durability::Sync => {
                assert!(ranges.len() >= 3, "{ranges:?}");
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "{ranges:?}");
                }
                assert!(ranges.iter().all(|&(_, len)| len >= 8 << 20), "{ranges:?}");
                let written: u64 = ranges.iter().map(|&(_, len)| len).sum();
                assert!(written <= 31 << 20, "{ranges:?}");
            }
            Durability::WriteBack => assert!(ranges.is_empty(), "{ranges:?}"),
        }
        let store = f.reopen();
        for k in 1..=30 {
            assert_eq!(store.get(id(k)).unwrap().unwrap().text().as_str(), text);
        }
        assert_eq!(store.get(id(0)).unwrap().unwrap().text().as_str(), "small");
    }
}

/// A write-back that fails to start fails its commit, which names the file, and poisons the
/// store; after a reopen the commit is absent and what came before it is whole.
#[test]
fn a_write_back_that_fails_to_start_fails_its_commit_and_loses_nothing_else() {
    let storage = std::sync::Arc::new(FaultStorage::new());
    let mut f = Fixture::with(StoreOptions::new().storage(storage.clone()));
    f.store().put(id(0), "before").unwrap();
    storage.inject(Fault::Fail(FaultOp::WriteBack), 0);
    let mut batch = WriteBatch::new();
    let text = "w".repeat(1 << 20);
    for k in 1..=20 {
        batch.put(id(k), &text);
    }
    let err = f.store().put_batch(&batch).unwrap_err();
    assert!(err.to_string().contains(".seg"), "{err}");
    assert!(
        f.store().put(id(99), "after").is_err(),
        "the store is poisoned"
    );
    assert_eq!(storage.injected(Fault::Fail(FaultOp::WriteBack)), 1);
    // A poisoned store refuses to close as well: it goes as a killed process would.
    f.crash();
    let store = f.reopen();
    assert_eq!(store.get(id(0)).unwrap().unwrap().text().as_str(), "before");
    for k in 1..=20 {
        assert!(store.get(id(k)).unwrap().is_none(), "document {k}");
    }
    assert_eq!(store.len(), 1);
}
