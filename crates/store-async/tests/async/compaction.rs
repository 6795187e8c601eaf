use store_async::AsyncOptions;
use store_mmap::{Store, StoreOptions};

use crate::{id, open};

/// Compaction and backup run on the blocking pool; the runtime's one thread serves reads
/// meanwhile and both results are whole.
#[tokio::test(flavor = "current_thread")]
async fn compaction_and_backup_run_off_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(1000);
    let store = open(dir.path(), options, AsyncOptions::new()).await;
    for version in 0..4 {
        for k in 0..100 {
            store.put(id(k), format!("{k} v{version}")).await.unwrap();
        }
    }
    let compaction = tokio::spawn({
        let store = store.clone();
        async move { store.run_blocking("compact", |s| s.compact()).await }
    });
    for k in 0..100 {
        let doc = store.get(id(k)).await.unwrap().unwrap();
        assert_eq!(doc.text().as_str(), format!("{k} v3"));
    }
    let report = compaction.await.unwrap().unwrap();
    assert!(report.segments_in > 0, "{report:?}");
    assert_eq!(report.records_copied, 100);

    let backup = dir.path().join("backup");
    let written = store
        .run_blocking("backup", {
            let backup = backup.clone();
            move |s| s.backup(backup)
        })
        .await
        .unwrap();
    assert_eq!(written.documents, 100);
    store.close().await.unwrap();
    let copy = Store::open(&backup, StoreOptions::new()).unwrap();
    for k in 0..100 {
        assert_eq!(
            copy.get(id(k)).unwrap().unwrap().text().as_str(),
            format!("{k} v3")
        );
    }
}
