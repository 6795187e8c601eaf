//! Long operations tell a `Progress` their total and then reach it.

use std::sync::{Arc, Mutex};

use store_mmap::{Progress, Store, StoreOptions, recover_with, verify_dir_with};

use crate::{Fixture, id};

/// What an operation told: its totals and the sum of the work it reported.
#[derive(Default)]
struct Recorded {
    totals: Mutex<Vec<u64>>,
    done: Mutex<u64>,
}

impl Progress for Recorded {
    fn start(&self, total: u64) {
        self.totals.lock().unwrap().push(total);
    }

    fn advance(&self, done: u64) {
        *self.done.lock().unwrap() += done;
    }
}

impl Recorded {
    /// The one total stated, which must be reached exactly.
    fn reached(&self) -> u64 {
        let totals = self.totals.lock().unwrap().clone();
        assert_eq!(totals.len(), 1, "one total: {totals:?}");
        assert_eq!(
            *self.done.lock().unwrap(),
            totals[0],
            "the work reaches the total"
        );
        totals[0]
    }
}

fn store_of_several_segments() -> Fixture {
    let mut f = Fixture::with(
        StoreOptions::new()
            .segment_capacity(16 << 10)
            .max_document_bytes(2000),
    );
    for round in 0..3 {
        for k in 0..40 {
            let text = format!("{round} {}", "p".repeat(500));
            f.store().put(id(k), &text).unwrap();
        }
    }
    f
}

#[test]
fn verify_recover_compact_and_backup_reach_their_totals() {
    let mut f = store_of_several_segments();
    let root = tempfile::tempdir().unwrap();

    let open_verify = Recorded::default();
    assert!(f.store().verify_with(&open_verify).is_clean());
    assert!(open_verify.reached() > 16 << 10);

    let compact = Arc::new(Recorded::default());
    let report = f.store().compact_with(Some(compact.clone())).unwrap();
    // The records copied: every output's bytes past its header.
    let copied = compact.reached();
    let headers = report.segments_out * store_format::SEGMENT_HEADER_LEN as u64;
    assert!(
        copied > 0 && copied == report.bytes_out - headers,
        "{copied} of {report:?}"
    );

    let backup = Recorded::default();
    f.store()
        .plan_backup()
        .unwrap()
        .write_to_with(root.path().join("backup"), &backup)
        .unwrap();
    assert!(backup.reached() > 0);
    f.close();

    let files_verify = Recorded::default();
    assert!(verify_dir_with(f.path(), &files_verify).unwrap().is_clean());
    let segment_bytes = files_verify.reached();

    let recover = Recorded::default();
    let report = recover_with(f.path(), root.path().join("recovered"), &recover).unwrap();
    assert!(report.is_complete());
    assert_eq!(
        recover.reached(),
        2 * segment_bytes,
        "every segment read twice"
    );
    let recovered = Store::open(root.path().join("recovered"), StoreOptions::new()).unwrap();
    assert_eq!(recovered.len(), 40);
}
