use store_async::{AsyncOptions, AsyncStore, Reads};
use store_mmap::{StoreOptions, TextRange};

use crate::{id, open};

/// Drops the store's synced pages from the page cache.
fn evict(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir.join("store")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            let file = std::fs::File::open(&path).unwrap();
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
    }
}

/// Reads of records whose pages were evicted go to the blocking pool and return the same
/// text as resident ones, under every placement; prefetch and read-ahead leave the text
/// unchanged, since they only ask for pages.
#[tokio::test(flavor = "current_thread")]
async fn cold_and_warm_reads_return_the_same_text_under_every_placement() {
    // Under the target directory, on the disk the build uses: on a tmpfs (where the system's
    // temporary directory may be) pages cannot be evicted.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = open(dir.path(), StoreOptions::new(), AsyncOptions::new()).await;
    let text = |n: u64| format!("{n} ").repeat(3000);
    for n in 0..20 {
        store.put(id(n), text(n)).await.unwrap();
    }
    store.sync().await.unwrap();
    evict(dir.path());
    assert!(!store.inner().is_resident(id(3)).unwrap());

    for reads in [Reads::CheckResidency, Reads::Blocking, Reads::Inline] {
        let placed = AsyncStore::new(store.inner().clone(), AsyncOptions::new().reads(reads));
        // Consecutive ids, which start a read-ahead.
        for n in 0..20 {
            let doc = placed.get(id(n)).await.unwrap().unwrap();
            assert_eq!(doc.text().as_str(), text(n), "{reads:?}");
        }
        let part = placed.extract(id(7), TextRange::bytes(0..2)).await.unwrap();
        assert_eq!(&*part, "7 ");
        evict(dir.path());
    }
    store.prefetch(vec![id(1), id(2), id(99)]).await.unwrap();
    assert_eq!(
        store.get(id(2)).await.unwrap().unwrap().text().as_str(),
        text(2)
    );
    assert!(store.get(id(99)).await.unwrap().is_none());
    store.close().await.unwrap();
    let closed = store.get(id(1)).await.unwrap_err();
    assert!(closed.to_string().contains("closed"), "{closed}");
}
