//! Read-only handles beside a writer and without one: what they see, when, and that they
//! never change a file.

use std::cell::{Cell, RefCell};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use store_mmap::{
    CompactionScope, DocId, DocRead, Error, IndexLoad, Refreshed, Store, StoreOptions, WriteBatch,
};

use store_mmap::sync_point::{SyncPoint, SyncPoints, on_sync_points};

use crate::{id, snapshot};

fn text_of(store: &Store, k: u64) -> Option<String> {
    store.get(id(k)).unwrap().map(|doc| doc.to_string())
}

/// Where the lock file's shared page holds the position the writer published
/// (docs/CONCURRENCY.md, "Between processes").
const POSITION_AT: u64 = 32;

/// The store's lock file, open to read and write, and the position its writer published,
/// as the page holds it: a test writes it back to stand for a writer's page at another
/// moment.
fn published_position(dir: &Path) -> (std::fs::File, [u8; 8]) {
    use std::os::unix::fs::FileExt;
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("LOCK"))
        .unwrap();
    let mut position = [0u8; 8];
    lock.read_exact_at(&mut position, POSITION_AT).unwrap();
    (lock, position)
}

/// A new store of [`small_segments`] in a temporary directory: the directory's guard, the
/// store's path, and its writer.
fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let writer = Store::create(&dir, small_segments()).unwrap();
    (root, dir, writer)
}

fn small_segments() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(8 << 10)
}

/// A reader beside a live writer sees what was published when it opened, and each refresh
/// brings in exactly what was committed before it, whole batches included; writes through
/// it fail.
#[test]
fn a_reader_sees_each_commit_at_its_first_refresh() {
    let (_root, dir, mut writer) = new_store();
    writer.put(id(1), "one").unwrap();
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(text_of(&reader, 1).as_deref(), Some("one"));
    assert!(matches!(
        reader.put(id(2), "no"),
        Err(Error::ReadOnly { .. })
    ));
    assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
    // Enough commits to roll over several segments, each seen at the first refresh.
    for round in 0..60u64 {
        let mut batch = WriteBatch::new();
        for k in 0..4 {
            batch.put(
                id(10 + k),
                &format!("round {round} doc {k} {}", "x".repeat(300)),
            );
        }
        if round % 7 == 3 {
            batch.delete(id(1));
        }
        writer.put_batch(&batch).unwrap();
        assert_eq!(text_of(&reader, 10).is_some(), round > 0);
        assert!(matches!(
            reader.refresh().unwrap(),
            Refreshed::Appended { .. } | Refreshed::Reloaded
        ));
        for k in 0..4 {
            let text = text_of(&reader, 10 + k).expect("a committed batch is seen whole");
            assert!(
                text.starts_with(&format!("round {round} doc {k} ")),
                "{text}"
            );
        }
        assert_eq!(reader.len(), writer.len());
        assert_eq!(reader.last_seq(), writer.last_seq());
    }
    assert!(writer.stats().unwrap().segments() > 2);
    drop(writer);
    // The writer closed: the reader still reads, and a refresh finds nothing new.
    assert!(text_of(&reader, 12).is_some());
    assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
    assert!(reader.verify().is_clean());
}

/// A refresh applies the commits made on top of the index file the reader read, and loads
/// the view afresh only once the writer put a new index file in its place and published a
/// commit after it.
#[test]
fn a_refresh_loads_afresh_only_for_a_new_index_file() {
    let (_root, dir, mut writer) = new_store();
    writer.put(id(1), "one").unwrap();
    writer.checkpoint().unwrap();
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    for k in 0..3 {
        writer.put(id(10 + k), &format!("doc {k}")).unwrap();
        assert_eq!(
            reader.refresh().unwrap(),
            Refreshed::Appended { records: 1 },
            "put {k}"
        );
        assert_eq!(text_of(&reader, 10 + k), Some(format!("doc {k}")));
    }
    // A checkpoint publishes no commit: the view stays as it is until the next one.
    writer.checkpoint().unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
    // Documents move only at a reload: layers that cache where they are start over then.
    assert_eq!(DocRead::placement_epoch(&reader), 0);
    writer.put(id(20), "after").unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    assert_eq!(DocRead::placement_epoch(&reader), 1);
    assert_eq!(reader.len(), 5);
    assert_eq!(text_of(&reader, 20).as_deref(), Some("after"));
}

/// An index file whose header fails its check is discarded by the read-only open, which
/// reads every record instead; a refresh does not load that file again (a reload would read
/// every record again), but applies the commits since, and reloads once the writer has put
/// a new index file in its place.
#[test]
fn a_view_that_discarded_a_damaged_index_file_does_not_load_it_again() {
    let (_root, dir, mut writer) = new_store();
    for k in 0..20 {
        writer.put(id(k), &format!("doc {k}")).unwrap();
    }
    writer.close().unwrap();
    let index = dir.join("index.tsi");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();

    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert!(
        matches!(reader.recovery().index, IndexLoad::Discarded { .. }),
        "{:?}",
        reader.recovery()
    );
    assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
    let mut writer = Store::open(&dir, small_segments()).unwrap();
    // The view was loaded without a writer: the writer's first commit reloads it.
    writer.put(id(20), "doc 20").unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    for k in 21..24 {
        writer.put(id(k), &format!("doc {k}")).unwrap();
        assert_eq!(
            reader.refresh().unwrap(),
            Refreshed::Appended { records: 1 },
            "put {k}"
        );
    }
    assert_eq!(
        std::fs::read(&index).unwrap(),
        bytes,
        "the writer wrote no index file"
    );
    writer.checkpoint().unwrap();
    writer.put(id(24), "doc 24").unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    assert!(reader.checkpointed_index().is_some());
    for k in 0..25 {
        assert_eq!(text_of(&reader, k), Some(format!("doc {k}")), "doc {k}");
    }
}

/// A writer that holds the lock but shows a position below the reader's view (a writer
/// still opening shows the page its predecessor left) has nothing new for the reader: the
/// refresh changes nothing, and the next commit the writer publishes is applied alone.
#[test]
fn a_refresh_ignores_a_published_position_below_its_view() {
    use std::os::unix::fs::FileExt;
    let (_root, dir, mut writer) = new_store();
    writer.put(id(1), "one").unwrap();
    let (lock, early) = published_position(&dir);
    writer.put(id(2), "two").unwrap();
    writer.put(id(3), "three").unwrap();
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    lock.write_all_at(&early, POSITION_AT).unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Unchanged);
    assert_eq!(reader.len(), 3);
    assert_eq!(text_of(&reader, 3).as_deref(), Some("three"));
    writer.put(id(4), "four").unwrap();
    assert_eq!(
        reader.refresh().unwrap(),
        Refreshed::Appended { records: 1 }
    );
    assert_eq!(text_of(&reader, 4).as_deref(), Some("four"));
}

/// A read-only open beside a writer that has published no position yet (a writer still
/// opening) waits for one: it opens once the position is there, and fails as locked,
/// naming the lock file, when none comes.
#[test]
fn a_read_only_open_waits_for_an_opening_writer_to_publish() {
    use std::os::unix::fs::FileExt;
    let (_root, dir, mut writer) = new_store();
    writer.put(id(1), "one").unwrap();
    let (lock, published) = published_position(&dir);
    assert_ne!(published, [0; 8]);
    lock.write_all_at(&[0; 8], POSITION_AT).unwrap();
    let err = Store::open_read_only(&dir, StoreOptions::new())
        .err()
        .expect("no position came");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"), "{err}");

    let publishing = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        lock.write_all_at(&published, POSITION_AT).unwrap();
    });
    let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    publishing.join().unwrap();
    assert_eq!(text_of(&reader, 1).as_deref(), Some("one"));
    drop(writer);
}

/// Twenty rounds of puts of ten documents, each round replacing the last: the store's
/// sealed segments hold dead versions only, besides the last round's.
fn put_rounds_of_ten(writer: &mut Store) {
    for round in 0..20u64 {
        for k in 0..10 {
            writer
                .put(id(k), &format!("{round}:{k}:{}", "y".repeat(400)))
                .unwrap();
        }
    }
}

/// Compacts every sealed segment and checkpoints, so that the writer removes the inputs
/// (none of their mappings is held in this process).
fn compact_and_remove_the_inputs(writer: &mut Store) {
    let plan = writer
        .plan_compaction(&CompactionScope::Everything)
        .unwrap()
        .expect("there are dead bytes");
    writer.install_compaction(plan.run().unwrap()).unwrap();
    writer.checkpoint().unwrap();
    assert_eq!(
        writer.retired_segments(),
        0,
        "the writer removed the inputs"
    );
}

/// The writer's compaction and checkpoints do not disturb a reader: a text it holds stays
/// readable, its next refresh loads the new layout, and every document reads the same.
#[test]
fn a_reader_survives_the_writers_compaction() {
    let (_root, dir, mut writer) = new_store();
    put_rounds_of_ten(&mut writer);
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    let held = reader.get(id(3)).unwrap().unwrap();
    let before: Vec<Option<String>> = (0..10).map(|k| text_of(&reader, k)).collect();
    compact_and_remove_the_inputs(&mut writer);
    // Still the old layout: the reader maps the removed files.
    assert_eq!(held.to_string(), before[3].clone().unwrap());
    assert_eq!(
        (0..10).map(|k| text_of(&reader, k)).collect::<Vec<_>>(),
        before
    );
    let epoch = DocRead::placement_epoch(&reader);
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    assert_eq!(DocRead::placement_epoch(&reader), epoch + 1);
    assert_eq!(
        (0..10).map(|k| text_of(&reader, k)).collect::<Vec<_>>(),
        before
    );
    assert_eq!(held.to_string(), before[3].clone().unwrap());
    writer.put(id(3), "after").unwrap();
    reader.refresh().unwrap();
    assert_eq!(text_of(&reader, 3).as_deref(), Some("after"));
}

/// Runs, at the first segment file a reader of this thread is about to open, the writer's
/// compaction of everything sealed and the removal of its inputs, as a writer in another
/// process may between a reader's listing of the files and its open of one. Returns the
/// guard that keeps the hook, and the file the reader went on to open, gone by then.
fn compact_as_the_reader_opens(
    writer: &Rc<RefCell<Store>>,
) -> (SyncPoints, Rc<RefCell<Option<PathBuf>>>) {
    let removed = Rc::new(RefCell::new(None));
    let points = on_sync_points({
        let (writer, removed) = (Rc::clone(writer), Rc::clone(&removed));
        move |point, path| {
            assert_eq!(point, SyncPoint::ReaderOpensSegment);
            if removed.borrow().is_some() {
                return;
            }
            compact_and_remove_the_inputs(&mut writer.borrow_mut());
            assert!(!path.exists(), "the compaction removed {}", path.display());
            *removed.borrow_mut() = Some(path.to_path_buf());
        }
    });
    (points, removed)
}

/// A segment file the writer removes between a reader's listing and its open of the file
/// (a compaction's input, once the checkpoint after it is in place) fails the open's first
/// attempt as gone: the open loads again, and reads every document as the writer does.
#[test]
fn an_open_that_finds_a_listed_segment_removed_loads_again() {
    let (_root, dir, mut writer) = new_store();
    put_rounds_of_ten(&mut writer);
    let writer = Rc::new(RefCell::new(writer));
    let (points, removed) = compact_as_the_reader_opens(&writer);
    let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    drop(points);
    assert!(removed.borrow().is_some(), "the reader opened no segment");
    for k in 0..10 {
        assert_eq!(text_of(&reader, k), text_of(&writer.borrow(), k), "doc {k}");
    }
    assert!(reader.verify().is_clean());
}

/// The same removal between a refresh's listing of the segments the writer created since
/// the view and its open of the first: the refresh loads the view afresh.
#[test]
fn a_refresh_that_finds_a_new_segment_removed_loads_afresh() {
    let (_root, dir, mut writer) = new_store();
    writer.put(id(0), "first").unwrap();
    writer.checkpoint().unwrap();
    let index_file = || std::fs::metadata(dir.join("index.tsi")).unwrap().ino();
    let before = index_file();
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    put_rounds_of_ten(&mut writer);
    // No new index file: the refresh maps the new segments instead of loading afresh.
    assert_eq!(index_file(), before);
    assert!(writer.stats().unwrap().segments() > 2);
    let writer = Rc::new(RefCell::new(writer));
    let (points, removed) = compact_as_the_reader_opens(&writer);
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    drop(points);
    assert!(removed.borrow().is_some(), "the refresh opened no segment");
    for k in 0..10 {
        assert_eq!(text_of(&reader, k), text_of(&writer.borrow(), k), "doc {k}");
    }
}

/// A load that finds a listed segment gone at every attempt gives up after eight, with
/// the error of the file it could not open; nothing of the store changes, and with the
/// file back it opens.
#[test]
fn a_load_that_finds_a_segment_gone_at_every_attempt_gives_up_naming_it() {
    let (_root, dir, mut writer) = new_store();
    put_rounds_of_ten(&mut writer);
    writer.close().unwrap();
    let attempts = Rc::new(Cell::new(0));
    let aside = Rc::new(RefCell::new(None::<(PathBuf, PathBuf)>));
    let points = on_sync_points({
        let (attempts, aside) = (Rc::clone(&attempts), Rc::clone(&aside));
        move |_, path| {
            attempts.set(attempts.get() + 1);
            if aside.borrow().is_some() {
                return;
            }
            // The name stays listed, and leads nowhere: each attempt finds it and fails.
            let moved = path.with_extension("aside");
            std::fs::rename(path, &moved).unwrap();
            std::os::unix::fs::symlink(path.with_extension("nowhere"), path).unwrap();
            *aside.borrow_mut() = Some((path.to_path_buf(), moved));
        }
    });
    let err = Store::open_read_only(&dir, StoreOptions::new())
        .err()
        .expect("the segment is gone at every attempt");
    drop(points);
    assert_eq!(attempts.get(), 8, "{err}");
    let (path, moved) = aside.borrow_mut().take().expect("the hook ran");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );

    std::fs::remove_file(&path).unwrap();
    std::fs::rename(&moved, &path).unwrap();
    let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    for k in 0..10 {
        assert_eq!(
            text_of(&reader, k),
            Some(format!("19:{k}:{}", "y".repeat(400))),
            "doc {k}"
        );
    }
}

/// A compaction takes effect with its retired-segment list, before any index file reflects
/// it: a reader's next refresh loads the new layout at once, and with it the change floor
/// the compaction raised by dropping a delete, so that its feed says to rescan.
#[test]
fn a_refresh_loads_a_compaction_before_the_index_file_reflects_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let index_file = || {
        std::fs::metadata(dir.join("index.tsi"))
            .ok()
            .map(|m| m.ino())
    };
    let mut writer = Store::create(&dir, small_segments()).unwrap();
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    // Held in the writer's process, each compaction's inputs stay listed past the
    // checkpoint: the second compaction changes a list that is there.
    let mut held = Vec::new();
    for (round, k) in [1, 2].into_iter().enumerate() {
        writer.put(id(k), "first").unwrap();
        writer.put(id(k + 10), "other").unwrap();
        writer.delete(id(k)).unwrap();
        let deleted_at = writer.last_seq();
        // Every segment before holds a version this replaces, so the compaction takes them
        // all and drops the delete.
        for j in 11..=k + 10 {
            writer.put(id(j), "kept").unwrap();
        }
        reader.refresh().unwrap();
        assert!(reader.change_floor() < deleted_at);
        assert_eq!(dir.join("retired.tsr").exists(), round > 0, "round {round}");
        held.push(writer.get(id(k + 10)).unwrap().unwrap());

        let before = index_file();
        let plan = writer
            .plan_compaction(&CompactionScope::Everything)
            .unwrap()
            .expect("there are dead bytes");
        let installed = writer.install_compaction(plan.run().unwrap()).unwrap();
        assert!(
            installed.report.tombstones_dropped >= 1,
            "{:?}",
            installed.report
        );
        assert_eq!(index_file(), before, "the install wrote an index file");

        assert_eq!(
            reader.refresh().unwrap(),
            Refreshed::Reloaded,
            "round {round}"
        );
        assert_eq!(reader.change_floor(), deleted_at);
        assert!(matches!(
            reader.changes_since(deleted_at - 1),
            Err(Error::ChangesCompacted { floor, .. }) if floor == deleted_at
        ));
        assert_eq!(text_of(&reader, k), None);
        assert_eq!(text_of(&reader, k + 10).as_deref(), Some("kept"));
        writer.checkpoint().unwrap();
    }
    assert!(held.iter().all(|doc| doc.to_string() == "kept"));
}

/// A reader opens right after the writer's `compact()`, before any further commit. The
/// compaction moved writes to a new segment and wrote an index checkpoint there; the
/// writer's published position stayed in the sealed segment, below the checkpoint, and the
/// reader refused to open ("cannot catch up") until the next commit moved it. Found by the
/// fault model's reader. Rolls now publish the new segment's start.
#[test]
fn a_reader_opens_beside_a_writer_that_just_compacted() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let mut writer = Store::create(&dir, StoreOptions::new()).unwrap();
    // A segment of dead bytes only: the compaction moves writes to a new segment, copies
    // nothing, and writes its checkpoint in the new segment.
    writer.put(id(5), "").unwrap();
    writer.delete(id(5)).unwrap();
    let report = writer.compact().unwrap();
    assert_eq!(report.segments_in, 1, "{report:?}");

    let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert_eq!(text_of(&reader, 5), None);
    assert!(reader.is_empty());
}

/// A store whose writer died (no close, no checkpoint) is read by a read-only open as
/// recovery would read it, without a byte of any file changing; the writer's next open
/// then recovers it as usual.
#[test]
fn a_read_only_open_of_a_crashed_store_changes_nothing() {
    let mut f = crate::Fixture::with(StoreOptions::new().checkpoint_bytes(None));
    for k in 0..50u64 {
        f.store().put(id(k), &format!("text {k}")).unwrap();
    }
    f.store().delete(id(7)).unwrap();
    f.crash();
    let dir = f.path();
    let before = snapshot(&dir);
    {
        let reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
        assert_eq!(reader.len(), 49);
        assert_eq!(text_of(&reader, 8).as_deref(), Some("text 8"));
        assert_eq!(text_of(&reader, 7), None);
        assert!(reader.recovery().records_replayed >= 51);
        assert!(reader.verify().is_clean());
        let ids: Vec<DocId> = reader.ids().collect::<Result<_, _>>().unwrap();
        assert_eq!(ids.len(), 49);
    }
    assert_eq!(snapshot(&dir), before, "a read-only open changed a file");
    let store = f.reopen();
    assert_eq!(store.len(), 49);
}

/// Read-only opens and reads of a closed store leave every file byte-identical, and any
/// number of them may be open at once.
#[test]
fn read_only_opens_of_a_closed_store_change_nothing() {
    let mut f = crate::Fixture::new();
    for k in 0..20u64 {
        f.store().put(id(k), &format!("text {k}")).unwrap();
    }
    f.close();
    let dir = f.path();
    let before = snapshot(&dir);
    let readers: Vec<Store> = (0..3)
        .map(|_| Store::open_read_only(&dir, StoreOptions::new()).unwrap())
        .collect();
    for reader in &readers {
        assert_eq!(reader.len(), 20);
        assert_eq!(text_of(reader, 19).as_deref(), Some("text 19"));
        assert!(reader.verify().is_clean());
        reader.stats().unwrap();
    }
    drop(readers);
    assert_eq!(snapshot(&dir), before, "a read-only open changed a file");
}

/// A view loaded without a writer is loaded again once a writer is live, even before its
/// first commit: the writer publishes at its open the very position the view ends at, which
/// is no writer still opening. The writer's commits are then applied as they come.
#[test]
fn a_view_loaded_without_a_writer_loads_again_when_one_opens() {
    let (_root, dir, mut writer) = new_store();
    writer.put(id(1), "one").unwrap();
    drop(writer);
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    let mut writer = Store::open(&dir, StoreOptions::new()).unwrap();
    assert_eq!(reader.refresh().unwrap(), Refreshed::Reloaded);
    assert_eq!(text_of(&reader, 1).as_deref(), Some("one"));
    writer.put(id(2), "two").unwrap();
    assert_eq!(
        reader.refresh().unwrap(),
        Refreshed::Appended { records: 1 }
    );
    assert_eq!(text_of(&reader, 2).as_deref(), Some("two"));
}

/// A retired-segment list or an index file that cannot be read is an error naming it at a
/// refresh, never taken for one that is not there (a refresh cannot tell whether it
/// changed). An open refuses the list too, and reads the data past an index file it
/// cannot use, as a writer's open does.
#[test]
fn an_unreadable_retired_list_or_index_file_is_an_error() {
    for name in ["retired.tsr", "index.tsi"] {
        let (_root, dir, mut writer) = new_store();
        writer.put(id(1), "one").unwrap();
        drop(writer);
        let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let err = reader.refresh().expect_err("refreshed");
        assert!(err.to_string().contains(name), "{name}: {err}");
        let opened = Store::open_read_only(&dir, StoreOptions::new());
        if name == "index.tsi" {
            assert_eq!(text_of(&opened.unwrap(), 1).as_deref(), Some("one"));
        } else {
            let err = opened.err().expect("opened");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}

/// A reader holds the store's lock only while it reads a store that has no writer, so a
/// writer opens beside a reader; a second writer is still refused.
#[test]
fn writers_wait_for_readers_and_refuse_each_other() {
    let mut f = crate::Fixture::new();
    f.store().put(id(1), "one").unwrap();
    f.close();
    let dir = f.path();
    let _reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    let writer = Store::open(&dir, StoreOptions::new()).unwrap();
    let second = Store::open(&dir, StoreOptions::new());
    assert!(
        matches!(second, Err(Error::Locked { .. })),
        "{:?}",
        second.err()
    );
    drop(writer);
}

/// A store on a read-only file system (a shipped data set, a read-only mount) opens
/// read-only, crashed or not, and reads every document; a writer's open fails clearly.
#[test]
fn a_store_on_a_read_only_file_system_opens_read_only() {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mount_at = root.path().join("ro");
    let mount = match crate::disk_full::Mount::tmpfs(&mount_at, "16m") {
        Ok(mount) => mount,
        Err(reason) => return crate::disk_full::skip_without_mount(&reason),
    };
    let closed = mount_at.join("closed");
    let crashed = mount_at.join("crashed");
    let copy_into = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    let mut store = Store::create(root.path().join("closed"), StoreOptions::new()).unwrap();
    for k in 0..20u64 {
        store.put(id(k), &format!("text {k}")).unwrap();
    }
    store.close().unwrap();
    copy_into(&root.path().join("closed"), &closed);
    let options = StoreOptions::new().checkpoint_bytes(None);
    let mut store = Store::create(root.path().join("crashed"), options).unwrap();
    for k in 0..20u64 {
        store.put(id(k), &format!("crashed {k}")).unwrap();
    }
    // The files as a process killed now leaves them: no close, no checkpoint.
    copy_into(&root.path().join("crashed"), &crashed);
    drop(store);
    mount.remount_read_only().unwrap();

    for (dir, prefix) in [(&closed, "text"), (&crashed, "crashed")] {
        let reader = Store::open_read_only(dir, StoreOptions::new()).unwrap();
        assert_eq!(reader.len(), 20);
        // The crashed store has no checkpoint: the open read its records as recovery would.
        assert_eq!(reader.recovery().records_replayed > 0, prefix == "crashed");
        for k in 0..20u64 {
            assert_eq!(text_of(&reader, k), Some(format!("{prefix} {k}")));
        }
        assert!(reader.verify().is_clean());
        let refused = Store::open(dir, StoreOptions::new())
            .err()
            .expect("a writer cannot open");
        assert!(refused.to_string().contains("LOCK"), "{refused}");
    }
}

/// A reader that opens while the writer's commit waits for its flush reads the store as of
/// the position the writer published: the commit's records are in the file already, but it
/// is not acknowledged, and the reader sees it only at a refresh after the writer
/// published it.
#[test]
fn a_reader_does_not_see_a_commit_its_writer_has_not_published() {
    use std::sync::Arc;
    use store_mmap::fault::{FaultOp, FaultStorage};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let storage = Arc::new(FaultStorage::new());
    // No zeroing thread, whose syncs of the segment would wait at the hold too.
    let options = StoreOptions::new()
        .storage(storage.clone())
        .zero_ahead(false);
    let mut writer = Store::create(&dir, options).unwrap();
    writer.put(id(1), "published").unwrap();
    let segment = crate::segment_files(&dir).pop().unwrap();
    storage.hold(FaultOp::Sync, &segment);
    let committing = std::thread::spawn(move || {
        writer.put(id(2), "waiting for its flush").unwrap();
        writer
    });
    assert!(
        crate::within_ten_seconds(|| storage.waiting(FaultOp::Sync, &segment) > 0),
        "no commit reached its flush"
    );
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    assert_eq!(text_of(&reader, 1).as_deref(), Some("published"));
    assert_eq!(text_of(&reader, 2), None);
    assert_eq!(reader.len(), 1);
    storage.release(FaultOp::Sync, &segment);
    let writer = committing.join().unwrap();
    assert!(matches!(
        reader.refresh().unwrap(),
        Refreshed::Appended { .. }
    ));
    assert_eq!(
        text_of(&reader, 2).as_deref(),
        Some("waiting for its flush")
    );
    assert_eq!(reader.last_seq(), writer.last_seq());
}
