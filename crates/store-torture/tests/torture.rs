//! A short torture run, with the real child process: every cycle's checks must pass, and
//! the children must have had acknowledged writes for the checks to hold them against.

use std::time::Duration;

use store_torture::{Config, run};

#[test]
fn killed_children_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        dir: dir.path().to_path_buf(),
        cycles: 24,
        seed: 7,
        child: env!("CARGO_BIN_EXE_textstore-torture").into(),
        max_kill_delay: Duration::from_millis(100),
    };
    let mut seen = 0;
    let report = run(&config, |report| {
        seen += 1;
        assert_eq!(report.cycles, seen);
    })
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(report.cycles, 24);
    assert!(report.acked_puts > 0, "no put was acknowledged: {report:?}");
    assert!(
        report.acked_batches > 0,
        "no batch was acknowledged: {report:?}"
    );
    assert_eq!(report.verify_passes, 1);
    assert_eq!(report.index_pages_damaged, 2, "{report:?}");
}

/// Reader processes beside writer processes that are killed with SIGKILL and restarted
/// (and beside the parent's own writer opens between them): every text a reader gets is
/// one that was written, every batch is seen whole, no version goes back, and the readers
/// keep working throughout, seeing the writes of several writers' lives.
#[test]
fn reader_processes_survive_killed_writers() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_textstore-torture");
    let store = dir.path().join("store");
    let stop = dir.path().join("stop");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(exe)
                .args(["reader", "--store"])
                .arg(&store)
                .arg("--stop")
                .arg(&stop)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let config = Config {
        dir: dir.path().to_path_buf(),
        cycles: 8,
        seed: 11,
        child: exe.into(),
        max_kill_delay: Duration::from_millis(250),
    };
    let result = run(&config, |_| {});
    std::fs::write(&stop, b"").unwrap();
    for reader in readers {
        let output = reader.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "a reader failed: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = store_torture::reader::ReaderReport::parse(stdout.trim())
            .unwrap_or_else(|| panic!("a reader printed {stdout:?}"));
        assert!(report.passes > 1, "{report}");
        assert!(
            report.refreshes > 0,
            "the reader never saw a commit: {report}"
        );
        assert!(
            report.cycles_seen > 1,
            "the reader saw the writes of one writer only: {report}"
        );
    }
    let report = result.unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(report.cycles, 8);
}
