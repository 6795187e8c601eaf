//! The open after a crash: what it takes from the index journal, what it does when the
//! journal is torn, damaged or left from an older index file, and how far it reads the
//! newest segment.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{CompactionScope, Durability, IndexLoad, Store, StoreOptions};

use crate::{Fixture, id};

/// Writes `rounds` commits of puts and deletes over 300 ids, and applies them to `model`.
fn churn(store: &mut Store, model: &mut BTreeMap<u64, String>, rounds: u64, salt: &str) {
    for k in 0..rounds {
        let key = (k * 7) % 300;
        if k % 5 == 4 {
            store.delete(id(key)).unwrap();
            model.remove(&key);
        } else {
            let text = format!("{salt} {k} {}", "t".repeat((k % 50) as usize));
            store.put(id(key), &text).unwrap();
            model.insert(key, text);
        }
    }
}

/// A store with `options` holding an index file of a first churn (it was closed and
/// reopened), then `rounds` more commits since: the journal's material. Returns it and what
/// each id holds.
fn journaled(options: StoreOptions, rounds: u64) -> (Fixture, BTreeMap<u64, String>) {
    let mut f = Fixture::with(options);
    let mut model = BTreeMap::new();
    churn(f.store(), &mut model, 20, "first");
    f.reopen();
    churn(f.store(), &mut model, rounds, "second");
    (f, model)
}

/// [`journaled`] over a [`FaultStorage`], with a frame at every commit.
fn journaled_on_faults(rounds: u64) -> (Fixture, BTreeMap<u64, String>, Arc<FaultStorage>) {
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new()
        .journal_bytes(Some(1))
        .storage(storage.clone());
    let (f, model) = journaled(options, rounds);
    (f, model, storage)
}

fn assert_holds(store: &Store, model: &BTreeMap<u64, String>) {
    assert_eq!(store.len(), model.len(), "live documents");
    for k in 0..300 {
        let got = store.get(id(k)).unwrap().map(|doc| doc.to_string());
        assert_eq!(got.as_ref(), model.get(&k), "document {k}");
    }
    let stats = store.stats().unwrap();
    let text: usize = model.values().map(String::len).sum();
    assert_eq!(stats.text_bytes(), text as u64, "text bytes");
}

/// Kills the store's writer and reopens it: the open must take one journal frame, replay
/// nothing, and read `model`.
fn crash_and_reopen_from_one_frame(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    f.crash();
    let store = f.reopen();
    assert_eq!(store.recovery().journal_frames, 1, "{:?}", store.recovery());
    assert_eq!(store.recovery().bytes_replayed, 0);
    assert_holds(store, model);
}

/// Kills the store's writer and reopens it: the open must take more than `frames` journal
/// frames.
fn crash_and_reopen_taking_frames(f: &mut Fixture, frames: u64) -> &mut Store {
    f.crash();
    let store = f.reopen();
    assert!(
        store.recovery().journal_frames > frames,
        "{:?}",
        store.recovery()
    );
    store
}

/// Reopens the store, whose journal goes on top of an older index file: the open takes
/// none of its frames, says why, and finds `model`.
fn assert_left_alone_on_open(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    let store = f.reopen();
    let report = store.recovery().clone();
    assert_eq!(report.journal_frames, 0, "{report:?}");
    assert_eq!(
        report.journal_stopped.as_deref(),
        Some("it goes on top of another index file")
    );
    assert_holds(store, model);
}

fn journal_path(dir: &Path) -> std::path::PathBuf {
    dir.join("index.tsj")
}

/// A writer killed while it commits continuously leaves at most one journal interval to
/// replay: the open takes the journal's frames, whose counts are exact.
#[test]
fn the_replay_after_a_crash_is_bounded_by_the_journal_interval() {
    let interval = 4096;
    let mut f = Fixture::with(StoreOptions::new().journal_bytes(Some(interval)));
    let mut model = BTreeMap::new();
    churn(f.store(), &mut model, 50, "first");
    f.reopen();
    churn(f.store(), &mut model, 3000, "second");
    f.crash();
    let store = f.reopen();
    let report = store.recovery().clone();
    assert!(report.journal_frames > 10, "{report:?}");
    assert!(
        report.bytes_replayed < interval,
        "replayed {} bytes, over the interval of {interval}",
        report.bytes_replayed
    );
    assert!(
        matches!(report.index, IndexLoad::Loaded { .. }),
        "{report:?}"
    );
    assert_holds(store, &model);
    // The writer goes on, starts a journal of its own, and a second crash reads it.
    churn(store, &mut model, 400, "third");
    let store = crash_and_reopen_taking_frames(&mut f, 0);
    assert_holds(store, &model);
}

/// Without the journal the index file's interval bounds the replay.
#[test]
fn without_the_journal_the_replay_is_bounded_by_the_checkpoint_interval() {
    let interval = 64 << 10;
    let options = StoreOptions::new()
        .checkpoint_bytes(Some(interval))
        .journal_bytes(None);
    let mut f = Fixture::with(options);
    let text = "r".repeat(1000);
    for k in 0..3000u64 {
        f.store().put(id(k % 500), &text).unwrap();
    }
    f.crash();
    let store = f.reopen();
    assert_eq!(store.recovery().journal_frames, 0);
    assert!(!journal_path(&f.path()).exists());
    let store = f.store();
    let replayed = store.recovery().bytes_replayed;
    assert!(replayed <= interval, "replayed {replayed} bytes");
    assert_eq!(store.len(), 500);
}

/// A journal torn by the crash or damaged afterwards is read up to its last good frame; the
/// data after it is replayed, and no document is lost or wrong.
#[test]
fn a_torn_or_damaged_journal_costs_replay_never_a_document() {
    type Damage = (&'static str, fn(&mut Vec<u8>));
    let damages: [Damage; 3] = [
        ("cut in the middle of a frame", |journal| {
            let len = journal.len();
            journal.truncate(len - len / 3 - 7);
        }),
        ("a byte flipped in a frame", |journal| {
            let at = journal.len() / 2;
            journal[at] ^= 0x20;
        }),
        ("the header damaged", |journal| journal[20] ^= 1),
    ];
    for (what, damage) in damages {
        let (mut f, model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 600);
        f.crash();
        let path = journal_path(&f.path());
        let whole = std::fs::read(&path).unwrap();
        let mut damaged = whole.clone();
        damage(&mut damaged);
        std::fs::write(&path, &damaged).unwrap();
        let store = f.reopen();
        let report = store.recovery().clone();
        assert!(report.journal_stopped.is_some(), "{what}: {report:?}");
        assert!(report.records_replayed > 0, "{what}: {report:?}");
        assert_holds(store, &model);
    }
}

/// A journal left from an older index file (its removal lost in a crash) is not applied on
/// top of the newer one.
#[test]
fn a_journal_of_an_older_index_file_is_left_alone() {
    let (mut f, mut model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 200);
    let old = std::fs::read(journal_path(&f.path())).unwrap();
    f.store().checkpoint().unwrap();
    assert!(
        !journal_path(&f.path()).exists(),
        "a new index file retires the journal"
    );
    churn(f.store(), &mut model, 5, "third");
    f.crash();
    std::fs::write(journal_path(&f.path()), &old).unwrap();
    assert_left_alone_on_open(&mut f, &model);
}

/// Under write-back, a frame claims only synced data: none is appended before a sync, and
/// one is at the first sync after the interval.
#[test]
fn under_write_back_frames_wait_for_a_sync() {
    let options = StoreOptions::new()
        .durability(Durability::WriteBack)
        .journal_bytes(Some(1));
    let (mut f, model) = journaled(options, 100);
    assert!(!journal_path(&f.path()).exists());
    f.store().sync().unwrap();
    assert!(journal_path(&f.path()).exists());
    crash_and_reopen_from_one_frame(&mut f, &model);
}

/// A read-only open of a store whose writer was killed takes the journal too, and changes
/// no file.
#[test]
fn a_read_only_open_takes_the_journal_and_writes_nothing() {
    let (mut f, model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 300);
    f.crash();
    f.close();
    let journal = std::fs::read(journal_path(&f.path())).unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new().storage(storage.clone());
    let store = Store::open_read_only(f.path(), options).unwrap();
    assert!(
        store.recovery().journal_frames > 100,
        "{:?}",
        store.recovery()
    );
    assert_holds(&store, &model);
    drop(store);
    assert_eq!(std::fs::read(journal_path(&f.path())).unwrap(), journal);
    // Not even a sync: the writer's next open makes the crashed writer's data durable.
    for op in FaultOp::ALL {
        assert_eq!(storage.count(op), 0, "the read-only open called {op:?}");
    }
}

/// A reader that opens beside a live writer takes the writer's journal up to the position
/// the writer published, and replays nothing: the writer appends each frame at the
/// position it has just published.
#[test]
fn a_reader_beside_a_live_writer_takes_its_journal() {
    let (f, model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 300);
    let reader = Store::open_read_only(f.path(), StoreOptions::new()).unwrap();
    let report = reader.recovery().clone();
    assert!(report.journal_frames > 100, "{report:?}");
    assert_eq!(report.bytes_replayed, 0, "{report:?}");
    assert_holds(&reader, &model);
}

/// A new index file retires the journal, and the next commit starts the next one at once
/// rather than an interval later: the frames of the old journal covered the commits made
/// while the new file was written.
#[test]
fn a_new_index_file_starts_the_next_journal_at_the_next_commit() {
    let (mut f, mut model) = journaled(StoreOptions::new().journal_bytes(Some(1 << 20)), 20);
    f.store().checkpoint().unwrap();
    assert!(!journal_path(&f.path()).exists());
    f.store().put(id(1), "after the index file").unwrap();
    model.insert(1, "after the index file".to_owned());
    assert!(
        journal_path(&f.path()).exists(),
        "no frame at the next commit"
    );
    crash_and_reopen_from_one_frame(&mut f, &model);
}

/// The open of a crashed store reads the newest segment up to its last stretch of data,
/// skipping the holes of its preallocation; a hole inside the data (blocks a file system
/// lost) is not taken for the end: the commits after it are found, and the open refuses.
#[test]
fn a_hole_inside_the_newest_segment_is_damage_not_its_end() {
    use rustix::fs::{FallocateFlags, fallocate};
    let mut f = Fixture::with(StoreOptions::new().journal_bytes(None));
    let text = "h".repeat(2000);
    for k in 0..300u64 {
        f.store().put(id(k), &text).unwrap();
    }
    f.crash();
    let segment = crate::segment_files(&f.path()).pop().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    fallocate(&file, flags, 64 << 10, 16 << 10).unwrap();
    drop(file);
    let opened = f.try_reopen();
    assert!(
        matches!(&opened, Err(err) if err.is_corruption()),
        "{:?}",
        opened.as_ref().map(|store| store.recovery().clone())
    );
}

/// A sealed segment whose last blocks the file system lost (they read as a hole, the
/// file's length unchanged) is damage, not the segment's end: where the newest segment's
/// holes are preallocation, a sealed segment was trimmed to its data, so the open reads it
/// whole and refuses.
#[test]
fn a_hole_at_the_end_of_a_sealed_segment_is_damage_not_its_end() {
    let options = StoreOptions::new()
        .segment_capacity(64 << 10)
        .max_document_bytes(8 << 10)
        .journal_bytes(None)
        .checkpoint_bytes(None);
    let mut f = Fixture::with(options);
    // Records of 48 + 3,984 bytes, then of 48 + 4,048: after the 64-byte segment header,
    // every record from the second on starts on a 4 KiB block, so that the hole starts at
    // a record.
    f.store().put(id(0), &"a".repeat(3984)).unwrap();
    for k in 1..24 {
        f.store().put(id(k), &"b".repeat(4048)).unwrap();
    }
    f.crash();
    let sealed = f.segment_files()[0].clone();
    let len = std::fs::metadata(&sealed).unwrap().len();
    assert_eq!(len % 4096, 0, "{len}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap();
    file.set_len(len - 8192).unwrap();
    file.set_len(len).unwrap();
    drop(file);
    let opened = f.try_reopen();
    match opened {
        Err(err) => assert!(
            err.is_corruption() && err.to_string().contains(&sealed.display().to_string()),
            "{err}"
        ),
        Ok(store) => panic!("opened: {:?}", store.recovery()),
    }
}

fn assert_no_journal(f: &Fixture, why: &str) {
    assert!(!journal_path(&f.path()).exists(), "{why}");
}

/// Closes and reopens the store: the close leaves no journal, and the open replays nothing
/// and finds `model`.
fn reopen_as_after_a_clean_close(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    f.close();
    assert_no_journal(f, "the close left a journal");
    let store = f.reopen();
    assert_eq!(store.recovery().journal_frames, 0, "{:?}", store.recovery());
    assert_eq!(store.recovery().bytes_replayed, 0);
    assert_holds(store, model);
}

/// A writer that goes idle after a checkpoint, or after commits, closes without a journal:
/// an open takes a journal as the sign of a crash, and syncs and reads before it serves.
#[test]
fn a_clean_close_leaves_no_journal() {
    let mut f = Fixture::with(StoreOptions::new());
    let mut model = BTreeMap::new();
    churn(f.store(), &mut model, 20, "first");
    f.reopen();
    // Idle right after the index file was written: nothing for a journal to hold.
    f.store().checkpoint().unwrap();
    f.store().tend_checkpoint(true).unwrap();
    assert_no_journal(&f, "a journal started with nothing to hold");
    // Commits journalled, then a close.
    churn(f.store(), &mut model, 1000, "second");
    assert!(
        journal_path(&f.path()).exists(),
        "the commits were journalled"
    );
    reopen_as_after_a_clean_close(&mut f, &model);
    // A new store (no index file yet, so a pause writes one on the engine's own thread),
    // commits, the checkpoint installed at a later pause, one more pause, then a close.
    let mut f = Fixture::with(StoreOptions::new());
    let mut model = BTreeMap::new();
    churn(f.store(), &mut model, 1000, "third");
    let store = f.store();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.stats().unwrap().checkpoints() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint at a pause"
        );
        store.tend_checkpoint(true).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    store.tend_checkpoint(true).unwrap();
    assert_no_journal(&f, "a journal started with nothing to hold");
    reopen_as_after_a_clean_close(&mut f, &model);
}

/// The segments a compaction of everything would take: those with dead bytes, by the
/// index's live bytes per segment.
fn compaction_inputs(store: &mut Store) -> Vec<u32> {
    store
        .plan_compaction(&CompactionScope::Everything)
        .unwrap()
        .map(|plan| plan.inputs())
        .unwrap_or_default()
}

/// A copy of the store at `dir`, changed by `change` (given the copy's directory), opened.
fn opened_copy(
    dir: &Path,
    options: StoreOptions,
    change: impl FnOnce(&Path),
) -> (tempfile::TempDir, Store) {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    change(copy.path());
    let store = Store::open(copy.path(), options).unwrap();
    (copy, store)
}

/// A frame after a journal's first holds the rows of the segments whose live bytes it
/// changed, not the whole table, so that it costs what changed however many segments the
/// store has. After a crash, the frames bring the index file's table forward to what the
/// data says, all of them or those before a damaged one with the rest replayed: a
/// compaction picks the same segments as one over an index rebuilt from the data.
#[test]
fn a_frame_holds_the_rows_of_the_segments_it_changed() {
    let options = StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(4096)
        .journal_bytes(Some(1));
    let mut f = Fixture::with(options.clone());
    let text = |k: u64, salt: &str| format!("{salt} {k} {}", "s".repeat(900));
    let mut model = BTreeMap::new();
    for k in 0..1500 {
        f.store().put(id(k), &text(k, "first")).unwrap();
        model.insert(k, text(k, "first"));
    }
    f.reopen();
    let segments = f.store().stats().unwrap().segments();
    assert!(segments > 80, "{segments} segments");
    // Overwrites spread over the older segments, then deletes that empty a run of them.
    for k in (0..1500).step_by(97) {
        f.store().put(id(k), &text(k, "second")).unwrap();
        model.insert(k, text(k, "second"));
    }
    for k in 600..700 {
        f.store().delete(id(k)).unwrap();
        model.remove(&k);
    }
    let journal_len = std::fs::metadata(journal_path(&f.path())).unwrap().len();
    f.crash();
    // Beside the crashed store: the same files with a frame damaged part way through the
    // journal (the open takes the frames before it and replays the rest), and without the
    // index file and journal (the index rebuilt from the data alone).
    let (_damaged_dir, mut damaged) = opened_copy(&f.path(), options.clone(), |copy| {
        let mut journal = std::fs::read(journal_path(copy)).unwrap();
        let at = journal.len() * 3 / 5;
        journal[at] ^= 0x40;
        std::fs::write(journal_path(copy), journal).unwrap();
    });
    assert!(
        damaged.recovery().journal_stopped.is_some() && damaged.recovery().bytes_replayed > 0,
        "{:?}",
        damaged.recovery()
    );
    let (_rebuilt_dir, mut rebuilt) = opened_copy(&f.path(), options, |copy| {
        std::fs::remove_file(copy.join("index.tsi")).unwrap();
        std::fs::remove_file(journal_path(copy)).unwrap();
    });
    assert_eq!(rebuilt.recovery().index, IndexLoad::Missing);
    let store = f.reopen();
    let report = store.recovery().clone();
    assert!(report.journal_frames > 100, "{report:?}");
    assert_eq!(report.bytes_replayed, 0, "{report:?}");
    // The first frame holds the whole table; each later one, at most the segment its
    // change left, the active segment and the one a commit rolled into.
    use store_format::{
        INDEX_SEGMENT_LEN, JOURNAL_ENTRY_LEN, JOURNAL_FRAME_HEADER_LEN, JOURNAL_HEADER_LEN,
    };
    let row = INDEX_SEGMENT_LEN as u64;
    let most = JOURNAL_HEADER_LEN as u64
        + segments * row
        + report.journal_frames * (JOURNAL_FRAME_HEADER_LEN as u64 + 3 * row)
        + report.journal_changes * JOURNAL_ENTRY_LEN as u64;
    assert!(
        journal_len <= most,
        "a journal of {journal_len} bytes for {} frames of {} changes over {segments} segments",
        report.journal_frames,
        report.journal_changes
    );
    assert_eq!(store.len(), model.len());
    for (k, text) in &model {
        assert_eq!(store.get(id(*k)).unwrap().unwrap().to_string(), *text);
    }
    let expected = compaction_inputs(&mut rebuilt);
    assert!(
        !expected.is_empty() && (expected.len() as u64) < segments / 2,
        "{expected:?} of {segments} segments"
    );
    assert_eq!(compaction_inputs(f.store()), expected, "all frames taken");
    assert_eq!(
        compaction_inputs(&mut damaged),
        expected,
        "frames up to the damage"
    );
}

/// A frame whose put names a segment the store does not hold stops the open's reading of
/// the journal there, with the document and segment named; the records after the frame
/// before it are replayed, and no document is lost.
#[test]
fn a_frame_naming_a_missing_segment_stops_the_journal_there() {
    use store_format::crc32c;
    let (mut f, model) = journaled(StoreOptions::new().journal_bytes(Some(2048)), 400);
    f.crash();
    let path = journal_path(&f.path());
    let mut journal = std::fs::read(&path).unwrap();
    let frames: Vec<_> = frames_of(&journal).collect::<Result<_, _>>().unwrap();
    // The last put of a middle frame that holds several: point it at a segment no store
    // has, after puts into one it has.
    let (frame_at, entry_at, id) = frames
        .iter()
        .skip(frames.len() / 2)
        .find_map(|frame| {
            let puts: Vec<usize> = frame
                .changes()
                .enumerate()
                .filter_map(|(k, (_, entry))| entry.map(|_| k))
                .collect();
            let k = *puts.get(1..)?.last()?;
            let id = frame.changes().nth(k).unwrap().0;
            let entry_at = frame.entries_offset() as usize + k * store_format::JOURNAL_ENTRY_LEN;
            Some((frame.offset as usize, entry_at, id))
        })
        .unwrap();
    let frame_end = frames
        .iter()
        .find(|frame| frame.offset as usize > frame_at)
        .map_or(journal.len(), |next| next.offset as usize);
    drop(frames);
    journal[entry_at + 24..entry_at + 28].copy_from_slice(&9_999u32.to_le_bytes());
    let head = store_format::JOURNAL_FRAME_HEADER_LEN;
    let body_crc = crc32c(&journal[frame_at + head..frame_end]);
    journal[frame_at + 72..frame_at + 76].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = crc32c(&journal[frame_at..frame_at + 76]);
    journal[frame_at + 76..frame_at + 80].copy_from_slice(&head_crc.to_le_bytes());
    std::fs::write(&path, &journal).unwrap();
    let store = f.reopen();
    let report = store.recovery().clone();
    let stopped = report.journal_stopped.clone().unwrap_or_default();
    assert!(
        stopped.contains(&format!("document {id} is in segment 9999")),
        "{report:?}"
    );
    assert!(report.bytes_replayed > 0, "{report:?}");
    assert_holds(store, &model);
}

/// A writer that opens after a crash starts a journal of its own on top of the same index
/// file, which begins with a copy of the frames the open took (up to a damaged one, when
/// there is one) and goes on with a frame of what the open replayed and the commits since:
/// after a second crash, the open takes that journal alone, replays nothing, and finds every
/// document as committed.
#[test]
fn a_journal_started_after_a_crash_carries_the_frames_of_the_one_it_replaces() {
    for damaged in [false, true] {
        let (mut f, mut model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 300);
        f.crash();
        let mut old = std::fs::read(journal_path(&f.path())).unwrap();
        if damaged {
            let at = old.len() * 3 / 5;
            old[at] ^= 0x40;
            std::fs::write(journal_path(&f.path()), &old).unwrap();
        }
        let store = f.reopen();
        let first = store.recovery().clone();
        assert!(first.journal_frames > 100, "{first:?}");
        assert_eq!(first.bytes_replayed > 0, damaged, "{first:?}");
        store.put(id(1), "after the first crash").unwrap();
        model.insert(1, "after the first crash".to_owned());
        f.crash();
        let new = std::fs::read(journal_path(&f.path())).unwrap();
        // The header names the same index file; the frames taken follow it unchanged.
        let taken = taken_len(&old);
        assert_eq!(new[..taken], old[..taken], "damaged: {damaged}");
        let store = f.reopen();
        let second = store.recovery().clone();
        assert_eq!(
            second.journal_frames,
            first.journal_frames + 1,
            "{second:?}"
        );
        assert_eq!(second.bytes_replayed, 0, "{second:?}");
        assert_holds(store, &model);
    }
}

/// The frames of `journal`, checked with the hash seed its header names.
fn frames_of(journal: &[u8]) -> store_format::JournalFrames<'_> {
    let seed = store_format::JournalHeader::decode(journal)
        .unwrap()
        .base
        .hash_seed;
    store_format::JournalFrames::new(journal, seed)
}

/// Bytes of `journal` up to the end of the last frame an open would take.
fn taken_len(journal: &[u8]) -> usize {
    frames_of(journal)
        .map_while(Result::ok)
        .last()
        .map_or(store_format::JOURNAL_HEADER_LEN, |frame| {
            frame.end() as usize
        })
}

/// An index file written after an open that took frames replaces what they held: the next
/// journal goes on top of the new file and starts without them.
#[test]
fn a_new_index_file_after_a_crash_starts_a_journal_without_the_old_frames() {
    let (mut f, mut model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 300);
    let store = crash_and_reopen_taking_frames(&mut f, 100);
    store.checkpoint().unwrap();
    store.put(id(2), "after the new index file").unwrap();
    model.insert(2, "after the new index file".to_owned());
    f.crash();
    let store = f.reopen();
    let report = store.recovery().clone();
    assert_eq!(report.journal_frames, 1, "{report:?}");
    assert_eq!(report.journal_stopped, None, "{report:?}");
    assert_eq!(report.bytes_replayed, 0, "{report:?}");
    assert_holds(store, &model);
}

/// The frames an open carried into the next journal file are taken when that file is
/// started, whether or not the start succeeds: when it fails, the file started after it
/// holds their changes itself, and the open after the next crash still finds every document.
#[test]
fn a_journal_whose_start_fails_after_a_crash_holds_the_carried_changes_in_the_next() {
    let (mut f, mut model, storage) = journaled_on_faults(300);
    // A frame of many changes, besides the frames of one.
    let mut batch = store_mmap::WriteBatch::new();
    for k in 0..50 {
        let text = format!("batched {k}");
        batch.put(id(k), &text);
        model.insert(k, text);
    }
    f.store().put_batch(&batch).unwrap();
    let store = crash_and_reopen_taking_frames(&mut f, 100);
    // The rename that puts the new journal file in place, after the carried frames were
    // written into it: the commit stands, the journal is started again at the next.
    storage.inject(Fault::Fail(FaultOp::Rename), 0);
    store.put(id(1), "the journal's start failed").unwrap();
    assert_eq!(storage.injected(Fault::Fail(FaultOp::Rename)), 1);
    store.put(id(2), "the journal started again").unwrap();
    model.insert(1, "the journal's start failed".to_owned());
    model.insert(2, "the journal started again".to_owned());
    f.crash();
    let store = f.reopen();
    let report = store.recovery().clone();
    assert_eq!(report.journal_frames, 1, "{report:?}");
    assert_eq!(report.bytes_replayed, 0, "{report:?}");
    assert_holds(store, &model);
}

/// A journal that cannot be started (here, its leftover temporary file cannot be removed)
/// costs the commit nothing: the commit stands, no journal file takes the name, and the
/// next commit starts one that an open after a crash takes whole.
#[test]
fn a_journal_that_cannot_be_started_fails_alone_and_starts_at_the_next_commit() {
    let (mut f, mut model, storage) = journaled_on_faults(0);
    assert!(!journal_path(&f.path()).exists());
    let tmp = f.path().join("index.tsj.tmp");
    storage.inject_on(Fault::Fail(FaultOp::Remove), &tmp);
    f.store().put(id(1), "no journal yet").unwrap();
    model.insert(1, "no journal yet".to_owned());
    assert_eq!(storage.injected(Fault::Fail(FaultOp::Remove)), 1);
    assert!(!journal_path(&f.path()).exists());
    f.store().put(id(2), "a journal").unwrap();
    model.insert(2, "a journal".to_owned());
    assert!(journal_path(&f.path()).exists());
    crash_and_reopen_from_one_frame(&mut f, &model);
}

/// A failed sync of the journal drops its file: pages a failed sync left may no longer be
/// dirty, so no later sync of the same file could vouch for the frames in them. The
/// commit stands; the next frame starts a new file, which holds every change since the
/// index file, and a power cut after its sync replays no more than the interval.
#[test]
fn a_failed_journal_sync_starts_a_new_journal_file() {
    use std::os::unix::fs::MetadataExt;
    let interval = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::new());
    let options = StoreOptions::new()
        .storage(storage.clone())
        .checkpoint_bytes(Some(interval))
        .journal_bytes(Some(4096));
    let mut store = Store::create(dir.path(), options.clone()).unwrap();
    let mut model = BTreeMap::new();
    churn(&mut store, &mut model, 300, "first");
    store.checkpoint().unwrap();
    let text = "s".repeat(1000);
    let fault = Fault::Fail(FaultOp::Sync);
    storage.inject_on(fault, &journal_path(dir.path()));
    let mut k = 0;
    while storage.injected(fault) == 0 {
        assert!(k < 200, "no put synced the journal in {k} puts");
        store.put(id(k % 300), &text).unwrap();
        model.insert(k % 300, text.clone());
        k += 1;
    }
    assert_eq!(store.stats().unwrap().checkpoint_failures(), 1);
    let journal = journal_path(dir.path());
    let failed_file = std::fs::metadata(&journal).unwrap().ino();
    for j in 0..80 {
        store.put(id((k + j) % 300), &text).unwrap();
        model.insert((k + j) % 300, text.clone());
    }
    assert_ne!(
        std::fs::metadata(&journal).unwrap().ino(),
        failed_file,
        "the frames after the failed sync went into the same file"
    );
    let store = crate::faults::open_after_power_cut(store, &storage, dir.path(), options);
    let report = store.recovery().clone();
    assert!(report.journal_frames > 0, "{report:?}");
    assert!(report.bytes_replayed <= interval, "{report:?}");
    assert_holds(&store, &model);
}

/// A new index file retires the journal on top of the old one by removing it. Where there
/// is none to remove, nothing failed; where the removal fails, the checkpoint still stands
/// (the failure is counted), and an open after a crash leaves the old journal alone.
#[test]
fn a_journal_that_cannot_be_removed_costs_the_new_index_file_nothing() {
    let storage = Arc::new(FaultStorage::new());
    // Under write-back a frame waits for a sync, so that a checkpoint may find no journal.
    let options = StoreOptions::new()
        .durability(Durability::WriteBack)
        .journal_bytes(Some(1))
        .storage(storage.clone());
    let (mut f, mut model) = journaled(options, 10);
    assert!(!journal_path(&f.path()).exists());
    f.store().checkpoint().unwrap();
    assert_eq!(f.store().stats().unwrap().checkpoint_failures(), 0);
    churn(f.store(), &mut model, 30, "journaled");
    f.store().sync().unwrap();
    assert!(journal_path(&f.path()).exists());
    storage.inject_on(Fault::Fail(FaultOp::Remove), &journal_path(&f.path()));
    f.store().checkpoint().unwrap();
    assert_eq!(storage.injected(Fault::Fail(FaultOp::Remove)), 1);
    assert_eq!(f.store().stats().unwrap().checkpoint_failures(), 1);
    assert!(journal_path(&f.path()).exists());
    f.crash();
    assert_left_alone_on_open(&mut f, &model);
}

/// A journal cut at its header, as a crash after the new file took its name and before its
/// first frame leaves it, holds no frame and nothing wrong: the open replays the data after
/// the index file. One cut inside the header says so.
#[test]
fn a_journal_cut_at_or_inside_its_header_costs_replay_only() {
    let header = store_format::JOURNAL_HEADER_LEN;
    for (cut, stopped) in [
        (header, None),
        (
            header - 1,
            Some(format!(
                "it is {} bytes, shorter than its header",
                header - 1
            )),
        ),
        (0, Some("it is 0 bytes, shorter than its header".to_owned())),
    ] {
        let (mut f, model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 100);
        f.crash();
        let path = journal_path(&f.path());
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..cut]).unwrap();
        let store = f.reopen();
        let report = store.recovery().clone();
        assert_eq!(report.journal_frames, 0, "cut at {cut}: {report:?}");
        assert_eq!(report.journal_stopped, stopped, "cut at {cut}");
        assert!(report.records_replayed > 0, "cut at {cut}: {report:?}");
        assert_holds(store, &model);
    }
}

/// Frames go forward: one whose position is before the frame's before it (here a copy of
/// the first frame, whole and checksummed, appended after the last) is not taken, and the
/// open says where the journal stopped and why.
#[test]
fn a_frame_that_goes_back_stops_the_journal() {
    let (mut f, model) = journaled(StoreOptions::new().journal_bytes(Some(1)), 100);
    f.crash();
    let path = journal_path(&f.path());
    let mut journal = std::fs::read(&path).unwrap();
    let frames: Vec<_> = frames_of(&journal)
        .map(|frame| {
            let frame = frame.unwrap();
            (
                frame.offset as usize,
                frame.end() as usize,
                frame.frame.position,
            )
        })
        .collect();
    let (first_start, first_end, first_position) = frames[0];
    let (_, last_end, last_position) = *frames.last().unwrap();
    assert_eq!(last_end, journal.len());
    assert!(first_position < last_position);
    journal.extend_from_within(first_start..first_end);
    std::fs::write(&path, &journal).unwrap();
    let store = f.reopen();
    let report = store.recovery().clone();
    assert_eq!(report.journal_frames, frames.len() as u64, "{report:?}");
    assert_eq!(
        report.journal_stopped,
        Some(format!(
            "the frame at offset {last_end}: its position {first_position:?} is before {last_position:?}"
        ))
    );
    assert_eq!(report.bytes_replayed, 0, "{report:?}");
    assert_holds(store, &model);
}

/// An open after a clean close flushes nothing: the close's checkpoint covers every byte
/// and file. After a crash, shown by the journal left behind, the writer's open makes what
/// it serves durable first.
#[test]
fn only_an_open_after_a_crash_flushes() {
    for crashed in [false, true] {
        let (mut f, _) = journaled(StoreOptions::new().journal_bytes(Some(1)), 50);
        if crashed {
            f.crash();
        }
        f.close();
        assert_eq!(journal_path(&f.path()).exists(), crashed);
        let storage = Arc::new(FaultStorage::new());
        let store = Store::open(f.path(), StoreOptions::new().storage(storage.clone())).unwrap();
        let flushes = storage.count(FaultOp::Sync) + storage.count(FaultOp::SyncDir);
        assert_eq!(
            flushes > 0,
            crashed,
            "crashed: {crashed}: {flushes} flushes"
        );
        drop(store);
    }
}

/// The checkpointed index a layer publishes to its readers, after an open that took the
/// journal: its pages, the index file's and then the journal's, hold every live document
/// once, a document the journal changed or deleted in the journal's pages only, and one
/// it did not change in the index file's.
#[test]
fn the_checkpointed_index_pages_hold_each_live_document_once() {
    let mut f = Fixture::with(StoreOptions::new().journal_bytes(Some(1)));
    let mut model = BTreeMap::new();
    // Ids the churns do not touch: in the index file's pages only.
    for k in 300..310 {
        let text = format!("index file only {k}");
        f.store().put(id(k), &text).unwrap();
        model.insert(k, text);
    }
    churn(f.store(), &mut model, 20, "first");
    f.reopen();
    churn(f.store(), &mut model, 300, "second");
    f.crash();
    let store = f.reopen();
    assert!(
        store.recovery().journal_changes > 0,
        "{:?}",
        store.recovery()
    );
    assert_eq!(store.recovery().bytes_replayed, 0);
    // The second churn's 240 puts, each to an id of its own; its deletes find nothing to
    // delete (the first churn deleted the same ids), and change nothing.
    let stats = store.stats().unwrap();
    assert_eq!(stats.index_changes(), 240);
    // The journal's table: two 8-byte slots a change at least.
    assert!(stats.index_memory_bytes() >= 240 * 16, "{stats:?}");
    let checkpoint = store.checkpointed_index().expect("an index file");
    let mut ids: Vec<_> = (0..checkpoint.page_count())
        .flat_map(|page| checkpoint.page_ids(page).unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected: Vec<_> = model.keys().map(|&k| id(k)).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    for &k in model.keys() {
        assert!(checkpoint.find(id(k)).unwrap().is_some(), "document {k}");
    }
}
