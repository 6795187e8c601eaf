//! A store on a file system that fills up: a size-limited tmpfs, mounted by the test when
//! it may mount (root, or CAP_SYS_ADMIN), and skipped with the reason printed otherwise,
//! except under CI (the `CI` variable set), where a refused mount fails the test: CI must
//! not pass without running it.
//!
//! Claims: the write that finds the disk full gets `Error::DiskFull` naming a file of the
//! store (never a SIGBUS); every write acknowledged before it reads back, before and after a
//! reopen; the store reopens and verifies clean.

use std::path::{Path, PathBuf};
use std::process::Command;

use store_mmap::{CompactionPolicy, CompactionScope, DocId, Error, Store, StoreOptions};

/// A tmpfs mounted for the test, unmounted when dropped.
pub(crate) struct Mount {
    path: PathBuf,
}

impl Mount {
    pub(crate) fn tmpfs(path: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(path).map_err(|err| err.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount {
            path: path.to_path_buf(),
        })
    }
}

/// Reports why a test that needs a mount does not run: a failure when `CI` is set, a
/// printed skip otherwise.
pub(crate) fn skip_without_mount(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test, and it needs a tmpfs mount: {reason}"
    );
    eprintln!("skipped: needs a size-limited tmpfs, and {reason}");
}

impl Mount {
    /// Makes the mount read-only.
    pub(crate) fn remount_read_only(&self) -> Result<(), String> {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.path)
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -o remount,ro failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// 1 MiB segments, so that a few MiB of disk hold several, and documents of up to 64 KiB.
fn small_disk_options() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(1 << 20)
        .max_document_bytes(64 << 10)
}

fn text(i: u64) -> String {
    let words = ["append", "only", "segment", "naïve", "日本"];
    let mut text = format!("document {i}\n");
    while text.len() < 8_000 + (i as usize * 997) % 16_000 {
        text.push_str(words[(text.len() + i as usize) % words.len()]);
        text.push(' ');
    }
    text
}

/// Puts documents from `first` on until a put fails; returns the ids written and the error.
fn fill(store: &mut Store, first: u64) -> (Vec<u64>, Error) {
    let mut written = Vec::new();
    for i in first..first + 10_000 {
        match store.put(DocId::from(i), &text(i)) {
            Ok(_) => written.push(i),
            Err(err) => return (written, err),
        }
    }
    panic!("10,000 documents fit on a 3 MiB file system");
}

fn assert_all_there(store: &Store, ids: &[u64]) {
    for &i in ids {
        let doc = store
            .get(DocId::from(i))
            .unwrap_or_else(|err| panic!("document {i}: {err}"))
            .unwrap_or_else(|| panic!("document {i} is lost"));
        assert_eq!(*doc, *text(i), "document {i}");
    }
}

fn assert_disk_full(err: &Error, mount: &Path) {
    match err {
        Error::DiskFull { path } => assert!(
            path.starts_with(mount),
            "the error names {}, outside the store",
            path.display()
        ),
        other => panic!("expected a full disk, got: {other}"),
    }
}

#[test]
fn a_full_disk_is_an_error_and_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mount = match Mount::tmpfs(&root.path().join("mnt"), "3m") {
        Ok(mount) => mount,
        Err(reason) => return skip_without_mount(&reason),
    };
    let dir = mount.path.join("store");
    let options = small_disk_options();

    let mut store = Store::create(&dir, options.clone()).unwrap();
    let (mut acked, err) = fill(&mut store, 0);
    eprintln!("the disk was full after {} documents", acked.len());
    assert!(acked.len() > 10, "only {} documents fit", acked.len());
    assert_disk_full(&err, &mount.path);
    assert_all_there(&store, &acked);
    // Closing writes an index checkpoint, which may itself find the disk full; either way
    // the data is already durable.
    if let Err(err) = store.close() {
        assert_disk_full(&err, &mount.path);
    }

    let mut store = Store::open(&dir, options.clone()).unwrap();
    assert_all_there(&store, &acked);
    assert!(store.verify().is_clean());

    // Full again after the reopen: the same clean error, and still nothing lost.
    let (more, err) = fill(&mut store, 100_000);
    assert_disk_full(&err, &mount.path);
    eprintln!("after the reopen, full again after {} more", more.len());
    acked.extend(more);
    drop(store);
    let store = Store::open(&dir, options).unwrap();
    assert_all_there(&store, &acked);
    assert!(store.verify().is_clean());
    drop(store);
    drop(mount);
}

/// A compaction, asked for or due by its policy, where its copies do not fit is refused
/// before it writes one: the error names what the copies need and what the file system
/// has, and the store keeps every document and takes writes. Once there is room the same
/// compaction runs.
#[test]
fn a_compaction_without_room_for_its_copies_is_refused_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mount = match Mount::tmpfs(&root.path().join("mnt"), "8m") {
        Ok(mount) => mount,
        Err(reason) => return skip_without_mount(&reason),
    };
    let dir = mount.path.join("store");
    let options = small_disk_options();
    let mut store = Store::create(&dir, options).unwrap();
    let ids: Vec<u64> = (0..120).collect();
    for &i in &ids {
        store.put(DocId::from(i), &text(i)).unwrap();
    }
    // New versions of the first segment's documents leave old ones dead in it alone.
    for i in 0..30u64 {
        store.put(DocId::from(i), &text(i)).unwrap();
    }
    let stats = store.stats().unwrap();
    let copies = stats.compaction_copy_bytes();
    assert!(copies > 0 && stats.dead_bytes() > 0, "{stats:?}");
    let policy = CompactionPolicy {
        dead_ratio: Some(0.1),
        min_dead_bytes: 1,
        ..CompactionPolicy::default()
    };
    assert!(store.compaction_due(&policy), "{stats:?}");

    // Fill the file system until it has room for half the copies.
    let available = store.disk_space().unwrap().available_bytes();
    let ballast = mount.path.join("ballast");
    std::fs::write(&ballast, vec![1u8; (available - copies / 2) as usize]).unwrap();
    let left = store.disk_space().unwrap().available_bytes();
    assert!(left < copies, "{left} bytes left, copies need {copies}");

    let refused = |result: Result<Option<store_mmap::Compaction>, Error>| match result {
        Err(Error::NoRoomToCompact {
            dir: at,
            needed_bytes,
            available_bytes,
        }) => {
            assert_eq!(at, dir);
            assert!(needed_bytes >= copies, "{needed_bytes} < {copies}");
            assert!(available_bytes < needed_bytes);
        }
        Err(other) => panic!("expected the compaction refused for room, got {other}"),
        Ok(plan) => panic!(
            "expected the compaction refused for room, got a plan: {}",
            plan.is_some()
        ),
    };
    refused(store.plan_compaction(&CompactionScope::Due(policy.clone())));
    refused(store.compact().map(|_| None));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|name| name.ends_with(".tmp")),
        "{names:?}"
    );
    assert_eq!(store.stats().unwrap().dead_bytes(), stats.dead_bytes());
    assert_all_there(&store, &ids);
    store.put(DocId::from(0u64), "still writable").unwrap();

    std::fs::remove_file(&ballast).unwrap();
    let report = store.compact().unwrap();
    assert!(report.segments_in > 0, "{report:?}");
    assert_eq!(store.stats().unwrap().dead_bytes(), 0);
    assert_all_there(&store, &ids[1..]);
    assert_eq!(
        store.get(DocId::from(0u64)).unwrap().unwrap().to_string(),
        "still writable"
    );
    drop(store);
    drop(mount);
}

/// A vectored write that the file system takes only in part: the storage goes on from
/// where the kernel stopped, and reports the full disk it then meets, never a success for
/// bytes it did not write.
#[test]
fn a_vectored_write_the_disk_takes_in_part_is_an_error() {
    use std::io::IoSlice;
    use store_mmap::{OsStorage, Storage};
    let root = tempfile::tempdir().unwrap();
    let mount = match Mount::tmpfs(&root.path().join("mnt"), "1m") {
        Ok(mount) => mount,
        Err(reason) => return skip_without_mount(&reason),
    };
    let path = mount.path.join("file");
    let file = OsStorage.create_new(&path).unwrap();
    let slice = vec![7u8; 768 << 10];
    let err = OsStorage
        .write_vectored_at(
            &file,
            &path,
            &[IoSlice::new(&slice), IoSlice::new(&slice)],
            0,
        )
        .expect_err("1.5 MiB written on a 1 MiB file system");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // The kernel took the first part of the write: the bytes it holds are the slices'.
    let written = std::fs::read(&path).unwrap();
    assert!(!written.is_empty(), "the disk took none of the write");
    assert!(written.iter().all(|&b| b == 7));
    drop(file);
    drop(mount);
}
