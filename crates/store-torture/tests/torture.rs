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
}
