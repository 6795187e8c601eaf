//! After warm-up, zero-copy gets allocate nothing: a document is a slice of the mapping.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

mod support;

use store_mmap::DocId;

/// The test's entry point. The file has no test harness (`harness = false`): the harness
/// runs a test on a thread of its own while its main thread keeps its books, and the
/// allocations of that bookkeeping would land in the count.
fn main() {
    zero_copy_gets_allocate_nothing();
    eprintln!("zero_copy_gets_allocate_nothing: ok");
}

fn zero_copy_gets_allocate_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let dir = tempfile::tempdir().unwrap();
    let store = support::store(dir.path());
    let mut bytes = 0;
    let mut read_all = || {
        for i in 0..support::DOCS {
            let doc = store.get(DocId::from(i)).unwrap().unwrap();
            bytes += doc.len();
        }
    };
    read_all();
    let blocks = support::blocks_allocated_by(|| {
        for _ in 0..10 {
            read_all();
        }
    });
    dhat::assert_eq!(blocks, 0, "10,000 gets allocated {} blocks", blocks);
    // The gets read the documents: 11 passes over every text.
    let expected: usize = (0..support::DOCS).map(|i| support::text(i).len()).sum();
    dhat::assert_eq!(bytes, 11 * expected);
    // A miss allocates nothing either.
    let misses = support::blocks_allocated_by(|| {
        for i in 0..1000 {
            assert!(store.get(DocId::from(support::DOCS + i)).unwrap().is_none());
        }
    });
    dhat::assert_eq!(misses, 0);
}
