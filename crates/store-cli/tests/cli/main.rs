//! End-to-end tests of the `textstore` binary: outputs, stderr sentences and exit codes.

mod ux;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// One data-driven helper: run `textstore --store <store> args...` with `stdin`, and check
/// the exit code; returns (stdout, stderr).
pub(crate) fn run(store: &Path, args: &[&str], stdin: &str, code: i32) -> (String, String) {
    let mut command = Command::cargo_bin("textstore").unwrap();
    command
        .arg("--store")
        .arg(store)
        .args(args)
        .write_stdin(stdin);
    outcome(command, code)
}

/// Runs `command`, checks its exit code and returns (stdout, stderr).
pub(crate) fn outcome(mut command: Command, code: i32) -> (String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(code),
        "{command:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

pub(crate) fn store_dir() -> (TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    (root, store)
}

#[test]
fn put_get_delete_round_trip() {
    let (_root, store) = store_dir();
    let text = "héllo\n🦀 world\n";
    run(&store, &["put", "42", "-"], "via dash", 0);
    assert_eq!(run(&store, &["get", "42"], "", 0).0, "via dash");
    run(&store, &["put", "42", "/no/such/file"], "", 2);
    run(&store, &["put", "42"], text, 0);
    assert_eq!(run(&store, &["get", "42"], "", 0).0, text);
    // The same id in its canonical ULID form.
    assert_eq!(
        run(&store, &["get", "0000000000000000000000001A"], "", 0).0,
        text
    );
    let file = _root.path().join("doc.txt");
    std::fs::write(&file, "from a file").unwrap();
    run(
        &store,
        &["put", "01ARZ3NDEKTSV4RRFFQ69G5FAV", file.to_str().unwrap()],
        "",
        0,
    );
    assert_eq!(
        run(&store, &["get", "01arz3ndektsv4rrffq69g5fav"], "", 0).0,
        "from a file"
    );
    run(&store, &["put", "7"], "", 0);
    assert_eq!(
        run(&store, &["get", "7"], "", 0).0,
        "",
        "empty text is a document"
    );
    run(&store, &["delete", "42"], "", 0);
    let (_, err) = run(&store, &["get", "42"], "", 1);
    assert!(
        err.contains("0000000000000000000000001A not found"),
        "{err}"
    );
    run(&store, &["delete", "42"], "", 1);
}

#[test]
fn exit_codes_and_messages() {
    let (root, store) = store_dir();
    // Reading a store that does not exist: storage error, nothing created.
    let (_, err) = run(&store, &["get", "1"], "", 3);
    assert!(
        err.starts_with("textstore: ") && err.contains("not a textstore store"),
        "{err}"
    );
    assert!(!store.exists());
    let (_, err) = run(&store, &["get", "not-an-id"], "", 2);
    assert!(err.contains("\"not-an-id\""), "{err}");
    run(&store, &["frobnicate"], "", 2);
    run(&store, &["put", "1"], "text", 0);
    run(
        &store,
        &["get", "99999999999999999999999999999999999999999"],
        "",
        2,
    );
    // Not UTF-8 on stdin.
    let output = Command::cargo_bin("textstore")
        .unwrap()
        .args(["--store", store.to_str().unwrap(), "put", "2"])
        .write_stdin(vec![b'a', 0xff, b'b'])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("offset 1"));
    // A store another handle writes: reading works, writing is refused.
    let _held = store_mmap::Store::open(&store, store_mmap::StoreOptions::new()).unwrap();
    assert_eq!(run(&store, &["get", "1"], "", 0).0, "text");
    let (_, err) = run(&store, &["put", "3"], "x", 3);
    assert!(err.contains("locked"), "{err}");
    drop(_held);
    // A file where a store should be.
    let file = root.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    run(&file, &["put", "1"], "x", 3);
}

#[test]
fn extract_ranges() {
    let (_root, store) = store_dir();
    run(&store, &["put", "1"], "one\ntwo 🦀\nthree\n", 0);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--bytes", "0..3"], 0, "one"),
        (&["--bytes", "4..4"], 0, ""),
        (&["--chars", "8..9"], 0, "🦀"),
        (&["--lines", "2-3"], 0, "two 🦀\nthree\n"),
        (&["--lines", "3-3"], 0, "three\n"),
        (
            &["--bytes", "8..10"],
            2,
            "splits the UTF-8 character at bytes 8..12",
        ),
        (
            &["--bytes", "0..100"],
            2,
            "out of bounds: the text has 19 bytes",
        ),
        (&["--lines", "0-1"], 2, "line numbers start at 1"),
        (&["--lines", "2-9"], 2, "the text has 3 lines"),
        (
            &["--chars", "0..18446744073709551616"],
            2,
            "larger than the largest position",
        ),
        (&["--chars", "5..2"], 2, "ends before it starts"),
        (&["--lines", "2..3"], 2, "--lines takes A-B"),
        (
            &["--lines=-3"],
            2,
            "--lines: \"\" is not a non-negative integer",
        ),
        (
            &["--bytes", "a..3"],
            2,
            "--bytes: \"a\" is not a non-negative integer",
        ),
        (
            &["--chars", "1..+3"],
            2,
            "--chars: \"+3\" is not a non-negative integer",
        ),
    ];
    for (range, code, expected) in cases {
        let mut args = vec!["extract", "1"];
        args.extend_from_slice(range);
        let (out, err) = run(&store, &args, "", *code);
        let shown = if *code == 0 { out } else { err };
        assert!(shown.contains(expected), "{range:?}: {shown:?}");
    }
    run(&store, &["extract", "1"], "", 2);
    run(&store, &["extract", "2", "--bytes", "0..0"], "", 1);
}

#[test]
fn import_a_directory_then_export_and_list() {
    let (root, store) = store_dir();
    let docs = root.path().join("docs");
    std::fs::create_dir_all(docs.join("guide")).unwrap();
    std::fs::write(docs.join("README.md"), "# Title\n").unwrap();
    std::fs::write(docs.join("guide/intro.txt"), "Intro ✓").unwrap();
    std::fs::write(docs.join("guide/empty.txt"), "").unwrap();
    let (out, err) = run(&store, &["import", docs.to_str().unwrap()], "", 0);
    assert!(err.contains("imported 3 documents"), "{err}");
    let lines: Vec<(&str, &str)> = out.lines().map(|l| l.split_once('\t').unwrap()).collect();
    let paths: Vec<&str> = lines.iter().map(|(_, p)| *p).collect();
    assert_eq!(paths, ["README.md", "guide/empty.txt", "guide/intro.txt"]);
    for (id, path) in &lines {
        assert_eq!(*id, store_mmap::DocId::from_key(path).to_string());
        let expected = std::fs::read_to_string(docs.join(path)).unwrap();
        assert_eq!(run(&store, &["get", id], "", 0).0, expected);
    }
    let (ids, _) = run(&store, &["ids"], "", 0);
    let mut expected: Vec<&str> = lines.iter().map(|(id, _)| *id).collect();
    expected.sort();
    assert_eq!(ids.lines().collect::<Vec<_>>(), expected);
    let (export, _) = run(&store, &["export"], "", 0);
    let exported: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 3);
    assert_eq!(
        exported
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        expected
    );
    // Export feeds import: a second store ends up with the same documents.
    let (_root2, copy) = store_dir();
    run(&copy, &["import", "-"], &export, 0);
    assert_eq!(run(&copy, &["export"], "", 0).0, export);
}

/// A directory larger than a segment: each commit of the import may span segments, and
/// every file reads back whole.
#[test]
fn import_a_directory_larger_than_a_segment() {
    let (root, store) = store_dir();
    let capacity = 64 << 10;
    store_mmap::Store::create(
        &store,
        store_mmap::StoreOptions::new()
            .segment_capacity(capacity)
            .max_document_bytes(16 << 10),
    )
    .unwrap()
    .close()
    .unwrap();
    let docs = root.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let text = |n: usize| format!("file {n}: {}\n", "é".repeat(2000 + n * 37));
    let files = 60;
    for n in 0..files {
        std::fs::write(docs.join(format!("{n:03}.txt")), text(n)).unwrap();
    }
    let total: usize = (0..files).map(|n| text(n).len()).sum();
    assert!(total > 3 * capacity as usize, "{total} bytes");
    let (out, err) = run(&store, &["import", docs.to_str().unwrap()], "", 0);
    assert!(
        err.contains(&format!("imported {files} documents")),
        "{err}"
    );
    assert_eq!(out.lines().count(), files);
    for line in out.lines() {
        let (id, path) = line.split_once('\t').unwrap();
        let n: usize = path.trim_end_matches(".txt").parse().unwrap();
        assert_eq!(run(&store, &["get", id], "", 0).0, text(n), "{path}");
    }
    let opened = store_mmap::Store::open(&store, store_mmap::StoreOptions::new()).unwrap();
    assert_eq!(opened.len(), files);
    assert!(
        opened.active_segment() >= 4,
        "{:?}",
        opened.active_segment()
    );
}

#[test]
fn import_jsonl_with_every_id_form() {
    let (root, store) = store_dir();
    let jsonl = root.path().join("docs.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": 5, \"text\": \"number\"}\n\n{\"id\": \"6\", \"text\": \"decimal string\"}\n{\"id\": \"01ARZ3NDEKTSV4RRFFQ69G5FAV\", \"text\": \"ulid\", \"lang\": \"en\"}\n",
    )
    .unwrap();
    run(&store, &["import", jsonl.to_str().unwrap()], "", 0);
    assert_eq!(run(&store, &["get", "5"], "", 0).0, "number");
    assert_eq!(run(&store, &["get", "6"], "", 0).0, "decimal string");
    assert_eq!(
        run(&store, &["get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], "", 0).0,
        "ulid"
    );
    let (_, err) = run(
        &store,
        &["import", "-"],
        "{\"id\": 8, \"text\": \"ok\"}\n{\"id\": -1, \"text\": \"x\"}\n",
        2,
    );
    assert!(err.contains("stdin line 2"), "{err}");
    // What came before the bad line is committed.
    assert_eq!(run(&store, &["get", "8"], "", 0).0, "ok");
    let (_, err) = run(&store, &["import", "-"], "not json\n", 2);
    assert!(err.contains("stdin line 1"), "{err}");
}

#[test]
fn import_skips_the_file_that_is_not_utf8_and_says_why() {
    let (root, store) = store_dir();
    let docs = root.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.txt"), "fine").unwrap();
    std::fs::write(docs.join("b.bin"), [0x66, 0x6f, 0xc3, 0x28]).unwrap();
    std::fs::write(docs.join("c.txt"), "after").unwrap();
    let (out, err) = run(&store, &["import", docs.to_str().unwrap()], "", 0);
    // The summary counts what was imported and names the file left out, and why.
    assert!(err.contains("imported 2 documents"), "{err}");
    assert!(err.contains("documents/s"), "{err}");
    assert!(err.contains("skipped 1 file:"), "{err}");
    assert!(
        err.contains("b.bin is not UTF-8 text: invalid byte at offset 2"),
        "{err}"
    );
    // The files around it are imported and listed.
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("\ta.txt\n") && out.ends_with("\tc.txt\n"),
        "{out}"
    );
    let (ids, _) = run(&store, &["ids"], "", 0);
    assert_eq!(ids.lines().count(), 2);
    // `put` of the same file says the same, and writes nothing.
    let bin = docs.join("b.bin");
    let (_, err) = run(&store, &["put", "9", bin.to_str().unwrap()], "", 2);
    assert!(
        err.contains("b.bin is not UTF-8 text: invalid byte at offset 2"),
        "{err}"
    );
    run(&store, &["get", "9"], "", 1);
    run(
        &store,
        &["import", root.path().join("nothing.txt").to_str().unwrap()],
        "",
        2,
    );
}

#[test]
fn stat_and_verify() {
    let (_root, store) = store_dir();
    for i in 0..5 {
        run(
            &store,
            &["put", &i.to_string()],
            &format!("document {i}"),
            0,
        );
    }
    run(&store, &["put", "1"], "replaced", 0);
    let (human, _) = run(&store, &["stat"], "", 0);
    assert!(human.contains("documents            5"), "{human}");
    let (json, _) = run(&store, &["stat", "--json"], "", 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["documents"], 5);
    assert_eq!(value["text_bytes"], 4 * 10 + 8);
    assert!(value["dead_bytes"].as_u64().unwrap() > 0);
    assert!(value["filesystem_available_bytes"].as_u64().unwrap() > 0);
    assert!(human.contains("file system free"), "{human}");
    // The one segment holds a replaced version: compacting it copies every live record.
    assert_eq!(value["compaction_copy_bytes"], value["live_bytes"]);
    assert!(human.contains("compaction copies"), "{human}");
    // A few hundred dead bytes are not worth a compaction.
    assert_eq!(value["advice"], serde_json::json!([]));
    assert!(human.contains("advice               none"), "{human}");
    let (text, _) = run(&store, &["stat", "--prometheus"], "", 0);
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let documents = scrape
        .samples
        .iter()
        .find(|s| s.metric == "textstore_documents")
        .expect("the documents gauge");
    assert_eq!(documents.value, prometheus_parse::Value::Gauge(5.0));
    let (_, err) = run(&store, &["verify"], "", 0);
    assert!(err.contains("store is intact"), "{err}");
    // Damage the text of document 3 and verify again.
    let segment = store.join("0000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(10).position(|w| w == b"document 3").unwrap();
    bytes[at] = b'D';
    std::fs::write(&segment, bytes).unwrap();
    let (out, err) = run(&store, &["verify"], "", 3);
    assert!(out.contains("fails its checksum"), "{out}");
    assert!(err.contains("1 problem found"), "{err}");
    let (_, err) = run(&store, &["get", "3"], "", 3);
    assert!(err.contains("corruption in"), "{err}");
    assert_eq!(run(&store, &["get", "2"], "", 0).0, "document 2");
}

/// A damaged page of slots of the index file: `verify` names the file and points to
/// `rebuild-index`, which rebuilds the file from the segments (and says so, as JSON too); after it
/// the store verifies clean and every document reads back. `rebuild-index` of an intact store
/// changes nothing, and one of a store whose data is damaged fails, naming the place, and
/// points to `recover`.
#[test]
fn rebuild_index_rebuilds_a_damaged_index_page_and_refuses_damaged_data() {
    let (_root, store) = store_dir();
    let mut engine = store_mmap::Store::create(&store, store_mmap::StoreOptions::new()).unwrap();
    let mut batch = store_mmap::WriteBatch::new();
    for i in 0..600u64 {
        batch.put(
            store_mmap::DocId::parse(&i.to_string()).unwrap(),
            &format!("document {i}"),
        );
    }
    engine.put_batch(&batch).unwrap();
    engine.close().unwrap();
    let index = store.join("index.tsi");
    let mut bytes = std::fs::read(&index).unwrap();
    let page = u32::from_le_bytes(bytes[92..96].try_into().unwrap()) as usize + 2 * 4096;
    bytes[page + 20] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();

    let (out, err) = run(&store, &["verify"], "", 3);
    assert!(out.contains("index.tsi"), "{out}");
    assert!(err.contains("textstore rebuild-index"), "{err}");
    assert!(!err.contains("recover"), "{err}");
    let (out, err) = run(&store, &["rebuild-index", "--json"], "", 0);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["rebuilt"], true, "{out}");
    assert!(err.contains("rebuilt from the data"), "{err}");
    let (_, err) = run(&store, &["verify"], "", 0);
    assert!(err.contains("store is intact"), "{err}");
    let rebuilt = std::fs::read(&index).unwrap();
    let (_, err) = run(&store, &["rebuild-index"], "", 0);
    assert!(err.contains("intact; nothing to rebuild"), "{err}");
    assert_eq!(std::fs::read(&index).unwrap(), rebuilt);
    for i in [0u64, 299, 599] {
        let (out, _) = run(&store, &["get", &i.to_string()], "", 0);
        assert_eq!(out, format!("document {i}"));
    }

    // Damage in the data as well: the rebuild reads past nothing.
    let segment = store.join("0000000001.seg");
    let mut data = std::fs::read(&segment).unwrap();
    let at = data.windows(12).position(|w| w == b"document 300").unwrap();
    data[at] = b'D';
    std::fs::write(&segment, data).unwrap();
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[page + 20] ^= 0x01;
    std::fs::write(&index, &bytes).unwrap();
    let (out, err) = run(&store, &["verify"], "", 3);
    assert!(err.contains("textstore recover"), "{err}");
    assert!(out.contains("0000000001.seg"), "{out}");
    let (_, err) = run(&store, &["rebuild-index"], "", 3);
    assert!(err.contains("0000000001.seg"), "{err}");
    assert!(err.contains("textstore recover"), "{err}");
    // The damaged document is an error, never a document that is not there.
    let (_, err) = run(&store, &["get", "300"], "", 3);
    assert!(err.contains("corruption in"), "{err}");
}

#[test]
fn bad_stores_and_oversized_documents_are_refused_by_name() {
    let (root, store) = store_dir();
    let opened = store_mmap::Store::create(
        &store,
        store_mmap::StoreOptions::new().max_document_bytes(100),
    )
    .unwrap();
    opened.close().unwrap();

    // The limit persisted with the store holds for the CLI, and the refused put writes nothing.
    let (_, err) = run(&store, &["put", "7"], &"x".repeat(101), 2);
    assert!(
        err.contains(
            "document 00000000000000000000000007 is 101 bytes, over the store's limit of 100 bytes"
        ),
        "{err}"
    );
    run(&store, &["get", "7"], "", 1);
    let jsonl = root.path().join("docs.jsonl");
    let big = "y".repeat(101);
    std::fs::write(
        &jsonl,
        format!("{{\"id\": 1, \"text\": \"small\"}}\n{{\"id\": 2, \"text\": \"{big}\"}}\n"),
    )
    .unwrap();
    let (_, err) = run(&store, &["import", jsonl.to_str().unwrap()], "", 2);
    assert!(
        err.contains("docs.jsonl line 2 is 101 bytes, over the store's limit of 100 bytes"),
        "{err}"
    );
    // A document of exactly the limit is imported, from JSONL and from a directory; a file
    // one byte over it is skipped by name.
    let exact = "z".repeat(100);
    run(
        &store,
        &["import", "-"],
        &format!("{{\"id\": 3, \"text\": \"{exact}\"}}\n"),
        0,
    );
    assert_eq!(run(&store, &["get", "3"], "", 0).0, exact);
    let docs = root.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("exact.txt"), &exact).unwrap();
    std::fs::write(docs.join("over.txt"), &big).unwrap();
    let (_, err) = run(&store, &["import", docs.to_str().unwrap()], "", 0);
    assert!(err.contains("imported 1 document (100 B)"), "{err}");
    assert!(
        err.contains("over.txt: 101 bytes, over the store's limit of 100 bytes"),
        "{err}"
    );
    assert_eq!(run(&store, &["get", "--key", "exact.txt"], "", 0).0, exact);

    // A store written by a newer format version: refused, naming the version.
    let meta = store.join("textstore.meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    // A version far above any this build writes.
    bytes[8] = 200;
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&meta, bytes).unwrap();
    let (_, err) = run(&store, &["get", "1"], "", 3);
    assert!(
        err.contains("written by format version 200") && err.contains("use a newer textstore"),
        "{err}"
    );

    // A directory that holds other files: refused by name, and left as it was.
    let other = root.path().join("notes");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("todo.txt"), "buy milk").unwrap();
    let (_, err) = run(&other, &["put", "1"], "text", 3);
    assert!(
        err.contains("notes is not a textstore store: it has no textstore.meta file"),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(&other)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["todo.txt"]);
}

#[test]
fn compact_reclaims_space_and_backup_writes_a_store() {
    let (root, store) = store_dir();
    let text = "a line of text that takes some room\n".repeat(200);
    for k in 0..40 {
        run(&store, &["put", &k.to_string()], &text, 0);
    }
    for k in 0..40 {
        run(
            &store,
            &["put", &k.to_string()],
            &format!("{k} rewritten"),
            0,
        );
    }
    run(&store, &["delete", "3"], "", 0);
    let (_, summary) = run(&store, &["compact"], "", 0);
    assert!(summary.contains("39 records copied"), "{summary}");
    assert!(summary.contains("1 tombstone dropped"), "{summary}");
    let disk: Vec<u64> = summary
        .rsplit("disk use ")
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(disk[1] < disk[0] / 4, "{summary}");
    assert_eq!(run(&store, &["get", "5"], "", 0).0, "5 rewritten");
    run(&store, &["get", "3"], "", 1);
    run(&store, &["verify"], "", 0);

    let backup = root.path().join("backup");
    let (_, summary) = run(&store, &["backup", backup.to_str().unwrap()], "", 0);
    assert!(summary.contains("backed up 39 documents"), "{summary}");
    assert_eq!(run(&backup, &["get", "5"], "", 0).0, "5 rewritten");
    run(&backup, &["verify"], "", 0);
    // A directory that holds a store (or anything) is refused, by name.
    let (_, err) = run(&store, &["backup", backup.to_str().unwrap()], "", 3);
    assert!(err.contains(backup.to_str().unwrap()), "{err}");
    // So is compacting a store that does not exist.
    let (_, err) = run(&root.path().join("none"), &["compact"], "", 3);
    assert!(err.contains("none"), "{err}");
}

/// Runs `textstore args...` without `--store`, checking the exit code; returns (stdout,
/// stderr).
fn run_bare(args: &[&Path], code: i32) -> (String, String) {
    let mut command = Command::cargo_bin("textstore").unwrap();
    command.args(args);
    outcome(command, code)
}

/// Every file of the store directory, by name, with its bytes.
fn snapshot(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// A store of 30 documents put one by one, without its index checkpoint (as after a crash
/// before one), with one record damaged by `damage`; returns the store and the offset of
/// the damaged record, document 10's. `older`: a version of document 10 put first.
fn damaged_store(
    root: &Path,
    older: Option<&str>,
    damage: impl FnOnce(&mut Vec<u8>, usize),
) -> (PathBuf, usize) {
    let store = root.join("store");
    if let Some(older) = older {
        run(&store, &["put", "10"], older, 0);
    }
    for i in 0..30 {
        run(
            &store,
            &["put", &i.to_string()],
            &format!("document number {i}"),
            0,
        );
    }
    std::fs::remove_file(store.join("index.tsi")).unwrap();
    let segment = store.join("0000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes
        .windows(18)
        .position(|w| w == b"document number 10")
        .unwrap()
        - 48;
    damage(&mut bytes, at);
    std::fs::write(&segment, bytes).unwrap();
    (store, at)
}

#[test]
fn zeros_before_committed_data_fail_the_open_and_verify_and_recover_get_the_rest() {
    let root = tempfile::tempdir().unwrap();
    // A zeroed record header at a record boundary: it once read as the end of the data.
    let (store, at) = damaged_store(root.path(), None, |bytes, at| bytes[at..at + 48].fill(0));
    let before = snapshot(&store);

    let (_, err) = run(&store, &["get", "11"], "", 3);
    for part in [
        "corruption in",
        &format!("bytes {at}.."),
        "textstore recover",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let (out, err) = run(&store, &["verify"], "", 3);
    assert!(out.contains(&format!("bytes {at}..")), "{out}");
    assert!(out.contains("zero bytes"), "{out}");
    assert!(!err.contains("store is intact"), "{err}");
    assert_eq!(
        snapshot(&store),
        before,
        "reading commands changed the store"
    );

    let dest = root.path().join("recovered");
    let (_, err) = run_bare(&[Path::new("recover"), &store, &dest], 3);
    assert!(
        err.contains(&format!("damaged: {}", store.display())),
        "{err}"
    );
    assert!(err.contains("something was lost"), "{err}");
    assert!(err.contains("copied 29 documents"), "{err}");
    assert_eq!(snapshot(&store), before, "recover changed the store");
    for i in (0..30).filter(|&i| i != 10) {
        assert_eq!(
            run(&dest, &["get", &i.to_string()], "", 0).0,
            format!("document number {i}")
        );
    }
    run(&dest, &["get", "10"], "", 1);
    let (_, err) = run(&dest, &["verify"], "", 0);
    assert!(err.contains("store is intact"), "{err}");
    // A store with nothing wrong recovers whole, with exit 0.
    let again = root.path().join("again");
    let (_, err) = run_bare(&[Path::new("recover"), &dest, &again], 0);
    assert!(err.contains("everything was recovered"), "{err}");
}

#[test]
fn recover_names_the_documents_whose_latest_version_may_be_lost_as_json() {
    let root = tempfile::tempdir().unwrap();
    // A flipped bit in the text: the header survives and names the document.
    let (store, at) = damaged_store(root.path(), None, |bytes, at| bytes[at + 50] ^= 1);
    let dest = root.path().join("recovered");
    let (out, err) = run_bare(
        &[Path::new("recover"), &store, &dest, Path::new("--json")],
        3,
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["complete"], false, "{report:#}");
    assert_eq!(report["documents"], 29);
    assert_eq!(report["damage"][0]["start"], at as u64, "{report:#}");
    let lost = &report["lost"];
    assert_eq!(lost[0]["id"], "0000000000000000000000000A", "{report:#}");
    assert_eq!(lost[0]["recovered_seq"], serde_json::Value::Null);
    assert!(err.contains("something was lost"), "{err}");
    // Without --json the same record is named in words.
    let (_, err) = run_bare(
        &[Path::new("recover"), &store, &root.path().join("words")],
        3,
    );
    assert!(
        err.contains("latest version may be lost: document 0000000000000000000000000A"),
        "{err}"
    );
    assert!(err.contains("no version of it is intact"), "{err}");

    // With an older version intact, the damaged latest comes back at that one; with the
    // older one damaged and the latest intact, nothing is lost.
    let older = "the first text of 10";
    for (damaged, record, outcome, recovered) in [
        (
            "document number 10",
            "(put at seq 12,",
            "it comes back at its older version, seq 1",
            older,
        ),
        (
            older,
            "(put at seq 1,",
            "a newer version, seq 12, is intact: nothing lost",
            "document number 10",
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let (store, _) = damaged_store(root.path(), Some(older), |bytes, _| {
            let at = bytes
                .windows(damaged.len())
                .position(|w| w == damaged.as_bytes())
                .unwrap();
            bytes[at] ^= 1;
        });
        let dest = root.path().join("out");
        let (_, err) = run_bare(&[Path::new("recover"), &store, &dest], 3);
        assert!(err.contains(record) && err.contains(outcome), "{err}");
        assert_eq!(run(&dest, &["get", "10"], "", 0).0, recovered);
    }
}

/// The reading commands work while another process writes the store, see what it has
/// committed, and never change a file of a closed store.
#[test]
fn reading_commands_work_beside_a_writer_and_change_nothing() {
    let (_root, store) = store_dir();
    run(&store, &["put", "1"], "first", 0);
    let reading: &[&[&str]] = &[
        &["get", "1"],
        &["extract", "1", "--bytes", "0..3"],
        &["ids"],
        &["export"],
        &["stat"],
        &["stat", "--json"],
        &["changes", "--since", "0"],
        &["verify"],
    ];
    let before = snapshot(&store);
    for args in reading {
        run(&store, args, "", 0);
    }
    assert_eq!(snapshot(&store), before, "a reading command changed a file");

    let mut writer = store_mmap::Store::open(&store, store_mmap::StoreOptions::new()).unwrap();
    writer.put(store_mmap::DocId::from(2u64), "second").unwrap();
    for args in reading {
        run(&store, args, "", 0);
    }
    assert_eq!(run(&store, &["get", "2"], "", 0).0, "second");
    assert_eq!(run(&store, &["ids"], "", 0).0.lines().count(), 2);
    writer.put(store_mmap::DocId::from(2u64), "third").unwrap();
    assert_eq!(run(&store, &["get", "2"], "", 0).0, "third");
    let (_, err) = run(&store, &["verify"], "", 0);
    assert!(err.contains("intact"), "{err}");
    drop(writer);
}

/// Imports `files` (name, text) into a new store, and kills the import once it prints its
/// first line, while it is held writing to a stdout pipe of one page that the test does not
/// read further. Returns the first line and the ids the store holds after, sorted.
fn interrupted_import(files: &[(String, String)]) -> (String, Vec<String>) {
    let (root, store) = store_dir();
    let docs = root.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in files {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let (read_end, write_end) = rustix::pipe::pipe().unwrap();
    let page = rustix::pipe::fcntl_setpipe_size(&read_end, 4096).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("textstore"))
        .arg("--store")
        .arg(&store)
        .arg("import")
        .arg(&docs)
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::fs::File::from(read_end);
    let mut first = Vec::new();
    let mut byte = [0u8];
    while first.last() != Some(&b'\n') {
        use std::io::Read;
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "stdout ended");
        first.push(byte[0]);
    }
    // The lines of the first commit, longer than the pipe holds, keep the import from
    // going past their write: the kill lands after one commit and before a second.
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(page < 8192, "a pipe of {page} bytes");
    let (ids, _) = run(&store, &["ids"], "", 0);
    (
        String::from_utf8(first).unwrap(),
        ids.lines().map(str::to_owned).collect(),
    )
}

/// An import commits its documents in batches of at most 1,000 documents and 8 MiB (with
/// 64 bytes for each document beside its text), in name order, and prints a document only
/// once it is committed: an import killed after its first line holds its first batch whole
/// and nothing of the rest.
#[test]
fn an_interrupted_import_keeps_its_commits_whole() {
    let cases: &[(&str, usize, usize, usize)] = &[
        // (what cuts the first commit, files, their text length, the first commit's files)
        ("documents", 2500, 10, 1000),
        // 8 MiB holds 28 texts of 299,560 bytes but 27 of them with 64 bytes each beside.
        ("bytes", 60, 299_560, 27),
    ];
    for &(bound, count, len, first_commit) in cases {
        // Long names, so that a commit's lines outgrow the pipe's page.
        let name = |n: usize| format!("{n:05}-{}.txt", "n".repeat(150));
        let files: Vec<(String, String)> = (0..count)
            .map(|n| (name(n), format!("{n:05}").repeat(len / 5)))
            .collect();
        let (first_line, ids) = interrupted_import(&files);
        assert_eq!(
            first_line,
            format!("{}\t{}\n", store_mmap::DocId::from_key(&name(0)), name(0)),
            "{bound}"
        );
        let mut expected: Vec<String> = (0..first_commit)
            .map(|n| store_mmap::DocId::from_key(&name(n)).to_string())
            .collect();
        expected.sort();
        assert_eq!(
            ids.len(),
            first_commit,
            "cut by {bound}: the store holds {} documents",
            ids.len()
        );
        assert_eq!(ids, expected, "cut by {bound}");
    }
}

/// The import's summary counts the documents and bytes it committed, and its rate is the
/// one those make in the time it gives.
#[test]
fn the_import_summary_counts_what_it_committed() {
    let (_root, store) = store_dir();
    let jsonl = "{\"id\": 1, \"text\": \"one\"}\n{\"id\": 2, \"text\": \"two 🦀\"}\n{\"id\": 3, \"text\": \"\"}\n";
    let (out, _) = run(&store, &["--json", "import", "-"], jsonl, 0);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let summary = &summary["summary"];
    assert_eq!(summary["documents"], 3, "{summary}");
    assert_eq!(summary["text_bytes"], 3 + 8, "{summary}");
    let seconds = summary["seconds"].as_f64().unwrap();
    let rate = summary["documents_per_sec"].as_f64().unwrap();
    assert!(
        seconds > 0.0 && (rate * seconds - 3.0).abs() < 1e-6,
        "{summary}"
    );
    let (_, err) = run(&store, &["import", "-"], jsonl, 0);
    assert!(err.contains("imported 3 documents (11 B)"), "{err}");
}

/// A reader that closes the pipe early (`textstore get ID | head -c 10`) ends the command
/// quietly, as `cat` ends: a large text's write finds the pipe closed. Any other failed
/// write is an error.
#[test]
fn a_closed_pipe_ends_the_output_without_an_error() {
    let (_root, store) = store_dir();
    run(&store, &["put", "1"], &"x".repeat(1 << 20), 0);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("textstore"))
        .arg("--store")
        .arg(&store)
        .args(["get", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the text, larger than a pipe holds, is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    // A write that fails for another reason (a full device) is an error that says so.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("textstore"))
        .arg("--store")
        .arg(&store)
        .args(["get", "1"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write to stdout"), "{err}");
}
