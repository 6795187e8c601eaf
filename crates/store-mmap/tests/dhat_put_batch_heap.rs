//! A `put_batch` of 1 GiB of text, larger than a segment, allocates nothing in proportion
//! to its text beyond the batch itself: the heap's peak stays within 1.1 times the batch's
//! text (the batch holds it once; the commit writes it from there).

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use store_mmap::{DocId, Durability, Store, StoreOptions, WriteBatch};

/// The test's entry point. The file has no test harness (`harness = false`): the harness
/// runs a test on a thread of its own while its main thread keeps its books, and the
/// allocations of that bookkeeping would land in the count.
fn main() {
    one_gib_batch_peaks_within_a_tenth_above_its_text();
    eprintln!("one_gib_batch_peaks_within_a_tenth_above_its_text: ok");
}

fn one_gib_batch_peaks_within_a_tenth_above_its_text() {
    const TEXT_BYTES: usize = 1 << 30;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Write-back: the commit's cost, not the disk's, is what is measured; sealing each
    // full segment still syncs it.
    let mut store = Store::create(
        dir.path().join("store"),
        StoreOptions::new().durability(Durability::WriteBack),
    )
    .unwrap();
    let _profiler = dhat::Profiler::builder().testing().build();
    // Texts of 1 to 12 KiB (6.5 KiB on average) cut from one template.
    let template: String = (0..12 << 10)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let len_of = |n: usize| 1024 + (n * 7919) % (11 << 10);
    let docs = {
        let (mut docs, mut bytes) = (0, 0);
        while bytes < TEXT_BYTES {
            bytes += len_of(docs);
            docs += 1;
        }
        docs
    };
    let total: usize = (0..docs).map(len_of).sum();
    let mut batch = WriteBatch::with_capacity(docs, total);
    for n in 0..docs {
        batch.put(DocId::from(n as u64), &template[..len_of(n)]);
    }
    assert_eq!(batch.text_bytes(), total);
    let last = store.put_batch(&batch).unwrap();
    let peak = dhat::HeapStats::get().max_bytes;
    dhat::assert_eq!(last, docs as u64);
    dhat::assert!(
        peak as f64 <= 1.1 * total as f64,
        "the heap peaked at {peak} bytes for a batch of {total} bytes of text ({:.3}x)",
        peak as f64 / total as f64
    );
    eprintln!(
        "{docs} documents, {total} bytes of text; heap peak {peak} bytes ({:.3}x)",
        peak as f64 / total as f64
    );
    drop(batch);
    // Every document is there: the first and last of every part, and a sample between.
    for n in (0..docs).step_by(997).chain([docs - 1]) {
        let doc = store.get(DocId::from(n as u64)).unwrap().unwrap();
        dhat::assert_eq!(doc.len(), len_of(n));
    }
    dhat::assert!(store.active_segment() >= 5, "1 GiB spans segments");
}
