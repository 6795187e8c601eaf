//! What a person at a terminal and a script see: the store from `TEXTSTORE_DIR`, `--key`,
//! `--json` on every command that prints data, sizes for people, completions, and progress
//! bars drawn on a terminal only.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use assert_cmd::Command;

use crate::{outcome, run, store_dir};

/// A directory of three small documents, as `import` reads them.
fn docs(root: &Path) -> std::path::PathBuf {
    let docs = root.join("docs");
    std::fs::create_dir_all(docs.join("guide")).unwrap();
    std::fs::write(docs.join("README.md"), "# Title\n").unwrap();
    std::fs::write(docs.join("guide/intro.md"), "Intro\nSecond line\n").unwrap();
    std::fs::write(docs.join("guide/empty.md"), "").unwrap();
    docs
}

/// `textstore ARGS` with the store in `TEXTSTORE_DIR` instead of `--store`.
fn run_env(store: &Path, args: &[&str], stdin: &str, code: i32) -> (String, String) {
    let mut command = Command::cargo_bin("textstore").unwrap();
    command
        .env("TEXTSTORE_DIR", store)
        .args(args)
        .write_stdin(stdin);
    outcome(command, code)
}

#[test]
fn the_store_comes_from_the_environment_and_documents_from_their_keys() {
    let (root, store) = store_dir();
    let docs = docs(root.path());
    run_env(&store, &["import", docs.to_str().unwrap()], "", 0);
    assert_eq!(
        run_env(&store, &["get", "--key", "guide/intro.md"], "", 0).0,
        "Intro\nSecond line\n"
    );
    assert_eq!(
        run_env(
            &store,
            &["extract", "--key", "guide/intro.md", "--lines", "2-2"],
            "",
            0
        )
        .0,
        "Second line\n"
    );
    run_env(&store, &["put", "--key", "notes/new.md"], "new text", 0);
    let file = root.path().join("file.txt");
    std::fs::write(&file, "from a file").unwrap();
    run_env(
        &store,
        &["put", "--key", "notes/file.md", file.to_str().unwrap()],
        "",
        0,
    );
    assert_eq!(
        run_env(&store, &["get", "--key", "notes/new.md"], "", 0).0,
        "new text"
    );
    assert_eq!(
        run_env(&store, &["get", "--key", "notes/file.md"], "", 0).0,
        "from a file"
    );
    let id = store_mmap::DocId::from_key("notes/new.md").to_string();
    assert_eq!(run_env(&store, &["get", &id], "", 0).0, "new text");
    run_env(&store, &["delete", "--key", "notes/new.md"], "", 0);
    run_env(&store, &["get", "--key", "notes/new.md"], "", 1);
    // An id and a key at once, or neither, is a usage error.
    run_env(&store, &["get", &id, "--key", "notes/new.md"], "", 2);
    run_env(&store, &["get"], "", 2);
    // Without either, the message says how to name the store.
    let mut bare = Command::cargo_bin("textstore").unwrap();
    bare.env_remove("TEXTSTORE_DIR").args(["ids"]);
    let (_, err) = outcome(bare, 2);
    assert!(err.contains("TEXTSTORE_DIR"), "{err}");
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text:?}"))
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(json).collect()
}

#[test]
fn every_command_that_prints_data_prints_json_that_parses() {
    let (root, store) = store_dir();
    let docs = docs(root.path());
    let (out, _) = run(&store, &["--json", "import", docs.to_str().unwrap()], "", 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "three documents and the summary: {out}");
    assert_eq!(lines[0]["path"], "README.md");
    assert_eq!(lines[3]["summary"]["documents"], 3);
    let intro = lines[2]["id"].as_str().unwrap().to_owned();

    let put = json(&run(&store, &["put", "7", "--json"], "seven", 0).0);
    assert_eq!(put["id"], "00000000000000000000000007");
    let seq = put["seq"].as_u64().unwrap();
    assert_eq!(seq, 4);
    let got = json(&run(&store, &["get", "7", "--json"], "", 0).0);
    assert_eq!(
        (got["text"].as_str(), got["seq"].as_u64()),
        (Some("seven"), Some(seq))
    );
    let part = json(
        &run(
            &store,
            &["extract", &intro, "--chars", "0..5", "--json"],
            "",
            0,
        )
        .0,
    );
    assert_eq!(part["text"], "Intro");
    assert_eq!(part["range"]["chars"], serde_json::json!([0, 5]));
    let ids = json_lines(&run(&store, &["ids", "--json"], "", 0).0);
    assert_eq!(ids.len(), 4);
    let export = json_lines(&run(&store, &["export", "--json"], "", 0).0);
    assert_eq!(export.len(), 4);
    let deleted = json(&run(&store, &["delete", "7", "--json"], "", 0).0);
    assert_eq!(deleted["seq"], 5);
    let changes = json_lines(&run(&store, &["changes", "--since", "3", "--json"], "", 0).0);
    let ops: Vec<_> = changes.iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["put", "delete"]);
    assert_eq!(changes[0]["text"], "seven");
    let (plain, _) = run(&store, &["changes", "--since", "4"], "", 0);
    assert_eq!(plain, "5\tdelete\t00000000000000000000000007\n");
    let stat = json(&run(&store, &["stat", "--json"], "", 0).0);
    assert_eq!(stat["documents"], 3);
    let verify = json(&run(&store, &["verify", "--json"], "", 0).0);
    assert_eq!(verify["clean"], true);
    let compact = json(&run(&store, &["compact", "--json"], "", 0).0);
    assert!(compact["allocated_bytes_after"].is_u64(), "{compact}");
    let backup_dir = root.path().join("backup");
    let backup = json(
        &run(
            &store,
            &["backup", backup_dir.to_str().unwrap(), "--json"],
            "",
            0,
        )
        .0,
    );
    assert_eq!(backup["documents"], 3);
    let recovered_dir = root.path().join("recovered");
    let mut recover = Command::cargo_bin("textstore").unwrap();
    recover
        .args(["--json", "recover"])
        .arg(&store)
        .arg(&recovered_dir);
    let recovered = json(&outcome(recover, 0).0);
    assert_eq!(recovered["complete"], true);
    // A feed from before a delete that compaction dropped says to rescan.
    let (_, err) = run(&store, &["changes", "--since", "0"], "", 2);
    assert!(err.contains("rescan"), "{err}");
}

#[test]
fn stat_prints_sizes_for_people_and_exact_bytes_on_request() {
    let (_root, store) = store_dir();
    run(&store, &["put", "1"], &"x".repeat(3000), 0);
    let (human, _) = run(&store, &["stat"], "", 0);
    let text_row = human.lines().find(|l| l.starts_with("text ")).unwrap();
    assert!(text_row.ends_with("2.93 KiB"), "{text_row}");
    let (exact, _) = run(&store, &["stat", "--bytes"], "", 0);
    let text_row = exact.lines().find(|l| l.starts_with("text ")).unwrap();
    assert!(text_row.ends_with("3000 bytes"), "{text_row}");
    run(&store, &["stat", "--json", "--prometheus"], "", 2);
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, mark) in [
        ("bash", "_textstore()"),
        ("zsh", "#compdef textstore"),
        ("fish", "complete -c textstore"),
    ] {
        let mut command = Command::cargo_bin("textstore").unwrap();
        command.args(["completions", shell]);
        let (script, _) = outcome(command, 0);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(
            script.contains("changes"),
            "{shell} completes the subcommands"
        );
    }
}

/// Runs `textstore ARGS` with stderr on a pseudo-terminal of 120 columns; returns what the
/// terminal showed.
fn on_a_terminal(args: &[&std::ffi::OsStr]) -> String {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    rustix::termios::tcsetwinsize(
        &terminal,
        rustix::termios::Winsize {
            ws_row: 24,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("textstore"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(terminal))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child, the terminal's last holder, has exited.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&buf[..n]);
        }
        shown
    });
    assert!(child.wait().unwrap().success());
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

#[test]
fn progress_bars_reach_their_total_on_a_terminal_and_stay_off_a_pipe() {
    let (root, store) = store_dir();
    let docs = docs(root.path());
    let args = |command: &[&str]| -> Vec<std::ffi::OsString> {
        let mut args = vec!["--store".into(), store.clone().into_os_string()];
        args.extend(command.iter().map(Into::into));
        args
    };
    let import = args(&["import", docs.to_str().unwrap()]);
    let shown = on_a_terminal(&import.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    assert!(
        shown.contains("3/3 files"),
        "the bar reaches the total: {shown:?}"
    );
    assert!(shown.contains("imported 3 documents"), "{shown:?}");
    let export = args(&["export"]);
    let shown = on_a_terminal(&export.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    assert!(shown.contains("3/3 documents"), "{shown:?}");
    let verify = args(&["verify"]);
    let shown = on_a_terminal(&verify.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    assert!(
        shown.contains("verify") && shown.contains("store is intact"),
        "{shown:?}"
    );
    // Off a terminal, stderr holds the summary alone.
    let (_root2, other) = store_dir();
    let (_, err) = run(&other, &["import", docs.to_str().unwrap()], "", 0);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("textstore: imported 3 documents"),
        "{err:?}"
    );
    let (_, err) = run(&other, &["verify"], "", 0);
    assert_eq!(err.lines().count(), 1, "{err:?}");
}
