//! Each example, run as a user would run it: on real files, over loopback, within a time
//! bound.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use textstore::{DocId, DocRead, DocWrite, Textstore, WriteTicket};

/// Runs example `bin` with `args`, which must succeed; returns its stdout.
fn run(bin: &str, args: &[&Path]) -> String {
    let output = Command::new(bin).args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{bin} {args:?}: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A directory of documents: `rivers.md` holds "river" far into a long text.
fn docs(root: &Path) -> PathBuf {
    let docs = root.join("docs");
    std::fs::create_dir_all(docs.join("guide")).unwrap();
    let long = format!(
        "{} The Salinas river runs deep and green. {}",
        "Before. ".repeat(40),
        "After. ".repeat(40)
    );
    std::fs::write(docs.join("rivers.md"), long).unwrap();
    std::fs::write(
        docs.join("guide/intro.md"),
        "Intro\nThe second line\nThird\n",
    )
    .unwrap();
    std::fs::write(docs.join("guide/sea.md"), "The old man and the sea.").unwrap();
    docs
}

#[test]
fn search_prints_hits_with_highlighted_snippets_cut_from_the_store() {
    let root = tempfile::tempdir().unwrap();
    let docs = docs(root.path());
    let work = root.path().join("work");
    let bin = env!("CARGO_BIN_EXE_search");
    let out = run(bin, &[Path::new("index"), &docs, &work]);
    assert_eq!(out, "indexed 3 documents\n");
    // A second run replaces the entries: still one hit per document.
    run(bin, &[Path::new("index"), &docs, &work]);
    let out = run(bin, &[Path::new("query"), &work, Path::new("River")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("rivers.md ("), "{out}");
    // Sixty characters each side of the match, cut from the middle of the text.
    assert!(
        lines[1].contains("The Salinas **river** runs deep"),
        "{out}"
    );
    assert!(
        lines[1].trim_start().starts_with('…') && lines[1].ends_with('…'),
        "{out}"
    );
    let out = run(bin, &[Path::new("query"), &work, Path::new("whale")]);
    assert_eq!(out, "no document matches \"whale\"\n");
}

#[test]
fn bulk_import_imports_a_tree_and_counts_what_it_skipped() {
    let root = tempfile::tempdir().unwrap();
    let docs = docs(root.path());
    std::fs::write(docs.join("binary.bin"), [0xff, 0xfe, 0x00]).unwrap();
    let store_dir = root.path().join("store");
    let out = run(env!("CARGO_BIN_EXE_bulk_import"), &[&docs, &store_dir]);
    assert!(out.starts_with("imported 3 documents"), "{out}");
    assert!(out.contains("skipped 1 files"), "{out}");
    let store = Textstore::builder(&store_dir).must_exist().open().unwrap();
    let intro = store
        .get(DocId::from_key("guide/intro.md"))
        .unwrap()
        .unwrap();
    assert_eq!(&*intro, "Intro\nThe second line\nThird\n");
    assert_eq!(store.len(), 3);
    store.close().unwrap();
}

#[test]
fn reindex_scans_once_then_follows_the_changes_and_rescans_when_told() {
    let root = tempfile::tempdir().unwrap();
    let store_dir = root.path().join("store");
    let state = root.path().join("state.json");
    let bin = env!("CARGO_BIN_EXE_reindex");
    let open = || Textstore::builder(&store_dir).open().unwrap();
    let store = open();
    for (key, text) in [
        ("a", "alpha beta"),
        ("b", "beta gamma"),
        ("c", "gamma delta"),
    ] {
        store
            .put(DocId::from_key(key), text)
            .unwrap()
            .wait()
            .unwrap();
    }
    store.close().unwrap();
    let out = run(bin, &[&store_dir, &state]);
    assert_eq!(
        out,
        "scanned 3 documents, then applied 0 changes; up to seq 3\n"
    );

    let store = open();
    store
        .put(DocId::from_key("a"), "alpha epsilon")
        .unwrap()
        .wait()
        .unwrap();
    store.delete(DocId::from_key("b")).unwrap().wait().unwrap();
    store.close().unwrap();
    let out = run(bin, &[&store_dir, &state]);
    assert_eq!(out, "applied 2 changes; 2 documents, up to seq 5\n");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let words = &saved["words"][DocId::from_key("a").to_string()];
    assert_eq!(words, &serde_json::json!(["alpha", "epsilon"]));

    // A delete that a compaction then drops: the feed from seq 5 would miss it.
    let store = open();
    store.delete(DocId::from_key("c")).unwrap().wait().unwrap();
    store.compact().unwrap();
    store.close().unwrap();
    let out = run(bin, &[&store_dir, &state]);
    assert!(out.starts_with("the change feed refused:"), "{out}");
    assert!(out.contains("rescan"), "{out}");
    assert!(
        out.ends_with("scanned 1 documents, then applied 0 changes; up to seq 6\n"),
        "{out}"
    );
}

/// The HTTP service, over loopback: a document, a line range, a miss, the metrics, and a
/// clean stop on SIGINT, each bounded in time.
#[test]
fn the_http_service_serves_documents_lines_and_metrics() {
    let root = tempfile::tempdir().unwrap();
    let store_dir = root.path().join("store");
    let store = Textstore::builder(&store_dir).open().unwrap();
    let intro = DocId::from_key("guide/intro.md");
    store
        .put(intro, "Intro\nThe second line\nThird\n")
        .unwrap()
        .wait()
        .unwrap();
    store.close().unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_http_service"))
        .arg(&store_dir)
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let fetch = |path: &str| {
        let mut response = agent.get(format!("{base}{path}")).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    };
    assert_eq!(
        fetch(&format!("/docs/{intro}")),
        (200, "Intro\nThe second line\nThird\n".to_owned())
    );
    assert_eq!(
        fetch("/docs/guide%2Fintro.md/lines/2/2"),
        (200, "The second line\n".to_owned())
    );
    assert_eq!(fetch("/docs/nothing-here").0, 404);
    assert_eq!(fetch(&format!("/docs/{intro}/lines/9/9")).0, 400);
    let (status, metrics) = fetch("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("textstore_documents 1"), "{metrics}");
    assert!(metrics.contains("textstore_operations_total"), "{metrics}");

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
