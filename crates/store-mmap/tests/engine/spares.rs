//! Spare files: a retired segment's file written over as a new segment, what a crash leaves
//! in one, and the readers whose mappings keep a file from being written over.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_format::RecordKind;
use store_mmap::fault::{Fault, FaultOp, FaultStorage};
use store_mmap::{CompactionPolicy, CompactionReport, CompactionScope, Error, Store, StoreOptions};

use crate::{Fixture, files_with_extension, id, segment_files, segment_id};

/// 16 KiB segments, no checkpoint but those the tests ask for and no journal: an open after
/// a crash walks every commit made since the last compaction.
fn small_segments() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(4000)
        .checkpoint_bytes(None)
        .journal_bytes(None)
}

/// A compaction due by its policy, as the concurrent handle's automatic one runs, then the
/// checkpoint that lets the replaced segments go.
pub(crate) fn compact_due(store: &mut Store) -> CompactionReport {
    let policy = CompactionPolicy {
        min_dead_bytes: 1,
        dead_ratio: Some(0.2),
        ..CompactionPolicy::default()
    };
    let plan = store
        .plan_compaction(&CompactionScope::Due(policy))
        .unwrap()
        .expect("a compaction is due");
    let report = store
        .install_compaction(plan.run().unwrap())
        .unwrap()
        .report;
    store.checkpoint().unwrap();
    report
}

fn text(k: u64, version: u32) -> String {
    format!(
        "document {k}, version {version}: {}",
        "ü".repeat(150 + (k % 7) as usize * 40)
    )
}

fn spare_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "spare")
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Whether the segment file's header says that the file held an earlier segment.
fn reuses_file(path: &Path) -> bool {
    let header = std::fs::read(path).unwrap();
    header[52] & 0b10 != 0
}

/// 40 documents over several segments, all of them overwritten, then a compaction due by
/// its policy: the retired segments go, and one file stays as a spare. The compaction's
/// outputs take ids left free below the segment receiving writes, which goes on receiving
/// them (no roll at the install, which would seal it early).
fn store_with_a_spare(options: StoreOptions) -> (Fixture, BTreeMap<u64, String>) {
    let mut f = Fixture::with(options);
    let mut model = BTreeMap::new();
    for version in 1..=2 {
        for k in 0..40 {
            f.store().put(id(k), &text(k, version)).unwrap();
            model.insert(k, text(k, version));
        }
    }
    let active = f.store().active_segment();
    let report = compact_due(f.store());
    assert!(report.segments_in > 1, "{report:?}");
    assert_eq!(f.store().retired_segments(), 0);
    assert_eq!(f.store().active_segment(), active);
    (f, model)
}

/// Puts new documents from `*next` on until the writer creates a segment, and returns its
/// file.
fn put_until_roll(f: &mut Fixture, model: &mut BTreeMap<u64, String>, next: &mut u64) -> PathBuf {
    let before = segment_files(&f.path());
    for _ in 0..100 {
        f.store().put(id(*next), &text(*next, 1)).unwrap();
        model.insert(*next, text(*next, 1));
        *next += 1;
        let after = segment_files(&f.path());
        if let Some(new) = after.iter().find(|p| !before.contains(p)) {
            return new.clone();
        }
    }
    panic!("no segment was created in 100 puts");
}

fn check(f: &mut Fixture, model: &BTreeMap<u64, String>) {
    for (&k, text) in model {
        assert_eq!(f.text(k).as_deref(), Some(text.as_str()), "document {k}");
    }
    assert_eq!(f.store().len(), model.len());
    let report = f.store().verify();
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// The writer's next segment is written over the spare file: same file, its earlier bytes
/// past the new data, read as unwritten space by an open after a crash, which keeps every
/// commit and cuts nothing; a rebuild from the data alone agrees.
#[test]
fn the_next_segment_is_written_over_a_spare_file_and_survives_a_crash() {
    let (mut f, mut model) = store_with_a_spare(small_segments());
    let spares = spare_files(&f.path());
    assert_eq!(spares.len(), 1, "{spares:?}");
    let spare_inode = inode(&spares[0]);
    let spare_len = std::fs::metadata(&spares[0]).unwrap().len();

    let mut next = 100;
    let reused = put_until_roll(&mut f, &mut model, &mut next);
    assert_eq!(
        inode(&reused),
        spare_inode,
        "{reused:?} is not the spare file"
    );
    assert!(spare_files(&f.path()).is_empty());
    assert!(reuses_file(&reused));
    // A few commits into it, far from its end: the earlier segment's bytes follow them.
    for _ in 0..3 {
        f.store().put(id(next), &text(next, 1)).unwrap();
        model.insert(next, text(next, 1));
        next += 1;
    }
    assert_eq!(std::fs::metadata(&reused).unwrap().len(), spare_len);
    check(&mut f, &model);

    f.crash();
    let store = f.reopen();
    let report = store.recovery().clone();
    assert_eq!(report.dropped_tail, None, "{report:?}");
    assert!(report.records_replayed > 3, "{report:?}");
    check(&mut f, &model);
    assert_eq!(f.rebuilt(next).unwrap(), model);

    // The written space stays the segment's after the open, and commits go on into it.
    // (The crash copied the files: the segment is the same by name, not by inode.)
    let reused = f.path().join(reused.file_name().unwrap());
    assert_eq!(std::fs::metadata(&reused).unwrap().len(), spare_len);
    for _ in 0..3 {
        f.store().put(id(next), &text(next, 2)).unwrap();
        model.insert(next, text(next, 2));
        next += 1;
    }
    check(&mut f, &model);
    // A close seals it: cut at its data, so that no earlier byte outlives the handle.
    f.close();
    let data_end = std::fs::metadata(&reused).unwrap().len();
    assert!(data_end < spare_len, "{data_end} of {spare_len}");
    f.reopen();
    check(&mut f, &model);
}

/// A store whose newest segment was written over a spare and took commits, as a kill left
/// it.
struct Crashed {
    f: Fixture,
    /// The documents committed.
    model: BTreeMap<u64, String>,
    /// The segment's file, its bytes, and the spare's bytes before it became the segment.
    reused: PathBuf,
    bytes: Vec<u8>,
    spare: Vec<u8>,
}

fn crashed_in_a_reused_segment() -> Crashed {
    let (mut f, mut model) = store_with_a_spare(small_segments());
    let spare = std::fs::read(&spare_files(&f.path())[0]).unwrap();
    let mut next = 100;
    let reused = put_until_roll(&mut f, &mut model, &mut next);
    assert!(reuses_file(&reused));
    for _ in 0..3 {
        f.store().put(id(next), &text(next, 1)).unwrap();
        model.insert(next, text(next, 1));
        next += 1;
    }
    f.crash();
    let reused = f.path().join(reused.file_name().unwrap());
    let bytes = std::fs::read(&reused).unwrap();
    Crashed {
        f,
        model,
        reused,
        bytes,
        spare,
    }
}

/// Where the records of the segment in `bytes` end: the first offset from its header on
/// that holds no intact record above the floor its header records.
fn data_end(bytes: &[u8]) -> usize {
    let floor = u64::from_le_bytes(bytes[44..52].try_into().unwrap());
    let mut at = store_format::SEGMENT_HEADER_LEN;
    while let Ok(record) = store_format::decode_record(bytes, at) {
        if record.header.seq <= floor {
            break;
        }
        at += record.header.record_len() as usize;
    }
    at
}

/// The newest slot of the store's write-limit file.
fn write_limit(dir: &Path) -> store_format::WriteLimit {
    let meta = std::fs::read(dir.join("textstore.meta")).unwrap();
    let store_uid = store_format::StoreMeta::decode(&meta).unwrap().store_uid;
    let file = std::fs::read(dir.join("limit.tsl")).unwrap();
    store_format::WriteLimit::newest(&file, store_uid).expect("a slot of this store decodes")
}

/// The writer syncs a write limit past its records before it writes them, and an open
/// after a crash reads a reused segment's file only up to it. A commit of the segment
/// planted past the limit, among the earlier segment's bytes, shows it: a walk of the
/// whole file (the limit file gone) finds that commit after bytes that are no record of
/// the segment and refuses the open as damage before committed data; with the limit, the
/// open reads no further, keeps every commit, and the writer goes on.
#[test]
fn an_open_after_a_crash_reads_a_reused_segment_up_to_its_write_limit() {
    let Crashed {
        mut f,
        mut model,
        reused,
        mut bytes,
        ..
    } = crashed_in_a_reused_segment();
    let limit = write_limit(&f.path());
    assert_eq!(limit.segment_id, segment_id(&reused));
    let end = data_end(&bytes);
    let limit_at = limit.limit as usize;
    assert!(
        end <= limit_at && limit_at < bytes.len(),
        "data end {end}, limit {limit_at}, file {}",
        bytes.len()
    );

    // The segment's last commit (one put), copied again past the limit.
    let mut last = store_format::SEGMENT_HEADER_LEN;
    while let Ok(record) = store_format::decode_record(&bytes, last)
        && last + record.header.record_len() as usize != end
    {
        last += record.header.record_len() as usize;
    }
    let planted = (limit_at + 64).next_multiple_of(store_format::RECORD_ALIGN);
    assert!(
        planted + (end - last) <= bytes.len(),
        "no room past the limit"
    );
    bytes.copy_within(last..end, planted);
    std::fs::write(&reused, &bytes).unwrap();

    let limit_file = f.path().join("limit.tsl");
    let saved = std::fs::read(&limit_file).unwrap();
    std::fs::remove_file(&limit_file).unwrap();
    let err = f
        .try_reopen()
        .err()
        .expect("a walk of the whole file refuses");
    assert!(
        err.to_string().contains(&format!("offsets {planted}..")),
        "{err}"
    );

    std::fs::write(&limit_file, &saved).unwrap();
    // A read-only open, which recovers in memory, reads up to the limit too.
    let reader = Store::open_read_only(f.path(), small_segments()).unwrap();
    for (&k, text) in &model {
        let doc = reader.get(id(k)).unwrap().expect("every commit is kept");
        assert_eq!(&*doc, text.as_str(), "document {k}");
    }
    drop(reader);
    let report = f.reopen().recovery().clone();
    assert_eq!(report.dropped_tail, None, "{report:?}");
    check(&mut f, &model);
    // The open gave the segment back the limit it read: a commit that fits below it
    // writes no new one.
    assert!(end + 256 <= limit_at, "data end {end}, limit {limit_at}");
    f.store().put(id(199), "below the limit").unwrap();
    model.insert(199, "below the limit".to_owned());
    assert_eq!(write_limit(&f.path()).generation, limit.generation);
    // Commits go on past the limit: the writer moves it first.
    for k in 200..260 {
        f.store().put(id(k), &text(k, 3)).unwrap();
        model.insert(k, text(k, 3));
    }
    assert!(write_limit(&f.path()).generation > limit.generation);
    f.crash();
    f.reopen();
    check(&mut f, &model);
}

/// A write limit that the segment's data runs past (the limit file copied from a live store
/// before the segment was) is not the writer's last: the open finds the segment's record
/// where the bounded walk found the data's end, reads the whole file, and keeps every
/// commit.
#[test]
fn a_write_limit_the_data_runs_past_is_read_as_stale() {
    let (mut f, mut model) = store_with_a_spare(small_segments());
    let mut next = 100;
    let reused = put_until_roll(&mut f, &mut model, &mut next);
    assert!(reuses_file(&reused));
    let limit_file = f.path().join("limit.tsl");
    let early = std::fs::read(&limit_file).unwrap();
    let early_limit = write_limit(&f.path()).limit as usize;
    while data_end(&std::fs::read(&reused).unwrap()) <= early_limit + 512 {
        f.store().put(id(next), &text(next, 1)).unwrap();
        model.insert(next, text(next, 1));
        next += 1;
    }
    assert_eq!(f.store().active_segment(), segment_id(&reused));
    f.crash();
    std::fs::write(f.path().join("limit.tsl"), &early).unwrap();
    let report = f.reopen().recovery().clone();
    assert_eq!(report.dropped_tail, None, "{report:?}");
    check(&mut f, &model);
}

/// Damage in a reused segment with commits after it is damage, not the earlier segment's
/// bytes: the open refuses and names the place.
#[test]
fn damage_before_commits_in_a_reused_segment_fails_the_open() {
    let Crashed {
        mut f,
        reused,
        mut bytes,
        ..
    } = crashed_in_a_reused_segment();
    // Zero the first record of the segment, which later commits follow.
    bytes[64..128].fill(0);
    std::fs::write(&reused, &bytes).unwrap();
    let err = f.try_reopen().err().expect("the open must refuse");
    let message = err.to_string();
    assert!(message.contains(&reused.display().to_string()), "{message}");
    assert!(message.contains("offset 64"), "{message}");
    assert!(message.contains("damage"), "{message}");
}

/// A commit whose bytes are the earlier segment's again (under write-back a power cut may
/// keep a later commit and not an earlier one) with a later commit on disk: the walk steps
/// over the earlier segment's records only where they are whole, finds the later commit
/// and refuses the open.
#[test]
fn a_commit_gone_back_to_the_earlier_segments_bytes_before_a_later_one_fails_the_open() {
    let Crashed {
        mut f,
        reused,
        mut bytes,
        spare,
        ..
    } = crashed_in_a_reused_segment();
    let first = store_format::decode_record_header(&bytes, 64).unwrap();
    let first_end = 64 + first.record_len() as usize;
    // The earlier segment's bytes where the first commit was, as the spare held them.
    bytes[64..first_end].copy_from_slice(&spare[64..first_end]);
    std::fs::write(&reused, &bytes).unwrap();
    let err = f.try_reopen().err().expect("the open must refuse");
    assert!(err.to_string().contains("offset 64"), "{err}");

    // The same with an earlier record there whose header says it runs past every later
    // commit: its bytes are not whole (the later commits wrote over them), so the walk does
    // not step over it.
    let mut earlier = Vec::new();
    store_format::encode_record(&mut earlier, RecordKind::Put, id(1), 1, b"small", None);
    let long = "l".repeat(bytes.len());
    store_format::encode_record(
        &mut earlier,
        RecordKind::Put,
        id(2),
        2,
        long.as_bytes(),
        None,
    );
    bytes[64..first_end].copy_from_slice(&earlier[..first_end - 64]);
    std::fs::write(&reused, &bytes).unwrap();
    let err = f.try_reopen().err().expect("the open must refuse");
    let message = err.to_string();
    assert!(message.contains(&reused.display().to_string()), "{message}");
    assert!(message.contains("offset 64"), "{message}");
}

/// A file that a read-only handle maps, or a document read through it still holds, is not
/// written over: the writer creates a new file instead, and the reader's text stays right.
/// Once the last of them is gone, the next segment takes the spare.
#[test]
fn a_file_a_reader_maps_is_not_written_over() {
    let mut f = Fixture::with(small_segments());
    let dir = f.path();
    let mut model = BTreeMap::new();
    for k in 0..40 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    let mut reader = Store::open_read_only(&dir, StoreOptions::new()).unwrap();
    let held = reader.get(id(0)).unwrap().unwrap();
    for k in 0..40 {
        f.store().put(id(k), &text(k, 2)).unwrap();
        model.insert(k, text(k, 2));
    }
    compact_due(f.store());
    let spares = spare_files(&dir);
    assert_eq!(spares.len(), 1, "{spares:?}");
    let spare_inode = inode(&spares[0]);

    let mut next = 100;
    let created = put_until_roll(&mut f, &mut model, &mut next);
    assert_ne!(inode(&created), spare_inode);
    assert!(!reuses_file(&created));
    assert_eq!(spare_files(&dir), spares);

    // The reader lets the segments go; the document it holds keeps the file's mapping.
    reader.refresh().unwrap();
    for (&k, text) in &model {
        let doc = reader.get(id(k)).unwrap();
        assert_eq!(doc.as_deref(), Some(text.as_str()), "document {k}");
    }
    drop(reader);
    let created = put_until_roll(&mut f, &mut model, &mut next);
    assert_ne!(inode(&created), spare_inode);
    assert_eq!(&*held, text(0, 1));

    drop(held);
    let reused = put_until_roll(&mut f, &mut model, &mut next);
    assert_eq!(inode(&reused), spare_inode);
    check(&mut f, &model);
}

/// With no spare files, a compaction gives every replaced file back; so does `compact`,
/// which is asked for space, with the spares kept before; an open with fewer spare files
/// than the directory holds removes the others.
#[test]
fn spare_files_follow_the_setting() {
    let (mut f, _) = store_with_a_spare(small_segments().spare_files(0));
    assert!(spare_files(&f.path()).is_empty());
    f.close();

    // Two spares, and dead records in the active segment, fewer than fill it: `compact`
    // seals it and takes one spare for the next segment, and gives the other back.
    let (mut f, model) = store_with_a_spare(small_segments().spare_files(2));
    assert_eq!(f.store().stats().unwrap().spare_files(), 2);
    for (&k, text) in model.iter().take(5) {
        f.store().put(id(k), &format!("{text}, again")).unwrap();
    }
    assert_eq!(spare_files(&f.path()).len(), 2);
    f.store().compact().unwrap();
    assert!(spare_files(&f.path()).is_empty());
    assert_eq!(f.store().stats().unwrap().spare_files(), 0);
    f.close();

    let (mut f, model) = store_with_a_spare(small_segments());
    assert_eq!(spare_files(&f.path()).len(), 1);
    f.close();
    let store = Store::open(f.path(), small_segments().spare_files(0)).unwrap();
    assert!(spare_files(&f.path()).is_empty());
    for (&k, text) in &model {
        let doc = store.get(id(k)).unwrap();
        assert_eq!(doc.as_deref(), Some(text.as_str()), "document {k}");
    }
}

/// A spare file is named by the id of the segment it was: a new segment never takes an id
/// that a file of the directory names, so that no later spare is renamed over it.
#[test]
fn a_new_segment_takes_no_id_a_spare_file_names() {
    let (mut f, mut model) = store_with_a_spare(small_segments().spare_files(2));
    f.close();
    let spare = spare_files(&f.path()).remove(0);
    let renamed = f.path().join("0000000099.spare");
    std::fs::rename(&spare, &renamed).unwrap();
    f.reopen();
    let mut next = 100;
    let created = put_until_roll(&mut f, &mut model, &mut next);
    let id = segment_id(&created);
    assert!(id > 99, "{created:?}");
    check(&mut f, &model);
}

/// A backup hard-links the sealed segments: a replaced segment whose file a backup also
/// names is removed, never kept as a spare and written over, and the backup keeps its
/// documents.
#[test]
fn a_file_a_backup_links_is_never_written_over() {
    let mut f = Fixture::with(small_segments());
    let mut model = BTreeMap::new();
    for k in 0..40 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    let backup = f.path().with_file_name("backup");
    let report = f.store().backup(&backup).unwrap();
    assert!(report.segments_linked > 0, "{report:?}");
    let backed_up = model.clone();
    for k in 0..40 {
        f.store().put(id(k), &text(k, 2)).unwrap();
        model.insert(k, text(k, 2));
    }
    compact_due(f.store());
    let linked: Vec<u64> = segment_files(&backup).iter().map(|p| inode(p)).collect();
    for spare in spare_files(&f.path()) {
        assert!(
            !linked.contains(&inode(&spare)),
            "{spare:?} is a backup's segment"
        );
    }
    let mut next = 100;
    for _ in 0..3 {
        put_until_roll(&mut f, &mut model, &mut next);
    }
    check(&mut f, &model);
    let backup = Store::open(&backup, small_segments()).unwrap();
    for (&k, text) in &backed_up {
        let doc = backup.get(id(k)).unwrap();
        assert_eq!(
            doc.as_deref(),
            Some(text.as_str()),
            "document {k} of the backup"
        );
    }
}

/// A spare longer than the segments the store now makes (its segment capacity was lowered)
/// is let go: the roll makes a new file, and the store goes on.
#[test]
fn a_spare_longer_than_a_new_segment_is_let_go() {
    let (mut f, mut model) = store_with_a_spare(small_segments());
    f.close();
    let spare = spare_files(&f.path()).remove(0);
    assert!(std::fs::metadata(&spare).unwrap().len() > 8 << 10);
    let mut store = Store::open(f.path(), small_segments().segment_capacity(8 << 10)).unwrap();
    let active = store.active_segment();
    let mut next = 100;
    while store.active_segment() == active {
        store.put(id(next), &text(next, 1)).unwrap();
        model.insert(next, text(next, 1));
        next += 1;
    }
    assert!(!spare.exists());
    for (&k, text) in &model {
        let doc = store.get(id(k)).unwrap();
        assert_eq!(doc.as_deref(), Some(text.as_str()), "document {k}");
    }
}

/// A disk too full for the write-limit file fails the commit that needed a new limit with
/// `DiskFull`, before it wrote anything, and leaves the store taking writes. The file the
/// failed commit created is preallocated before a slot is written into it: while the disk
/// stays full the next commit fails the same way, and once there is room it writes the
/// limit, and every commit survives a crash.
#[test]
fn a_full_disk_at_the_write_limit_fails_the_commit_alone() {
    let storage = Arc::new(FaultStorage::new());
    let (mut f, mut model) =
        store_with_a_spare(small_segments().storage(Arc::clone(&storage) as _));
    let mut next = 100;
    let reused = put_until_roll(&mut f, &mut model, &mut next);
    assert!(reuses_file(&reused));
    // After a crash, without its limit file: the next commit into the segment creates it.
    f.crash();
    std::fs::remove_file(f.path().join("limit.tsl")).unwrap();
    f.reopen();
    let limit_file = f.path().join("limit.tsl");
    for failed in 1..=2 {
        storage.inject(Fault::Fail(FaultOp::Allocate), 0);
        let err = f.store().put(id(next), &text(next, 1)).unwrap_err();
        assert!(matches!(err, Error::DiskFull { .. }), "{err}");
        assert!(err.to_string().contains("limit.tsl"), "{err}");
        assert_eq!(storage.injected(Fault::Fail(FaultOp::Allocate)), failed);
        assert_eq!(std::fs::metadata(&limit_file).unwrap().len(), 0);
    }
    for k in next..next + 3 {
        f.store().put(id(k), &text(k, 1)).unwrap();
        model.insert(k, text(k, 1));
    }
    assert_eq!(write_limit(&f.path()).segment_id, segment_id(&reused));
    assert_eq!(
        std::fs::metadata(&limit_file).unwrap().len(),
        store_format::WRITE_LIMIT_FILE_LEN as u64,
        "both slots' blocks are allocated"
    );
    check(&mut f, &model);
    f.crash();
    f.reopen();
    check(&mut f, &model);
}

/// An open after a clean close of a store that holds as many spare files as its setting
/// keeps changes nothing and flushes nothing: the open removes spares (and syncs the
/// directory) only where there are more than the setting keeps.
#[test]
fn an_open_that_keeps_every_spare_flushes_nothing() {
    let (mut f, model) = store_with_a_spare(small_segments());
    f.close();
    assert_eq!(spare_files(&f.path()).len(), 1);
    let storage = Arc::new(FaultStorage::new());
    let store = Store::open(f.path(), small_segments().storage(storage.clone())).unwrap();
    for op in [FaultOp::Sync, FaultOp::SyncDir, FaultOp::Remove] {
        assert_eq!(storage.count(op), 0, "{op:?}");
    }
    assert_eq!(spare_files(&f.path()).len(), 1);
    for (&k, text) in &model {
        assert_eq!(store.get(id(k)).unwrap().as_deref(), Some(text.as_str()));
    }
}
