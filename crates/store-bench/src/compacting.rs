//! Durable puts beside a compaction: what reclaiming space costs the commits that go on
//! meanwhile.
//!
//! textstore's own puts, before and during its compaction, in the same run: compaction is
//! what an append-only store pays to reclaim space, and it copies live records on a thread
//! of its own while the writer commits. The peers reclaim space otherwise (LMDB reuses free
//! pages inside its commits, fjall compacts on a schedule of its own, redb's and SQLite's
//! compactions hold the writer), so no peer's row would measure the same work. The figure is
//! the puts' latencies while a compaction paced as the engine's own runs, against the same
//! puts into the same store just before it.

use std::fmt::Write as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use store_mmap::{
    BatchOp, CompactionPolicy, CompactionScope, MIN_SEGMENT_CAPACITY, Store, StoreOptions,
};

use crate::corpus::{Corpus, Document};
use crate::error::{Error, Result};
use crate::measure::{Latencies, Percentiles};
use crate::run::settle;

const NAME: &str = "textstore";

/// Of the first half of the corpus, which fills the first segment, the share written a
/// second time before the compaction: that segment is this much dead, past the default
/// policy's 30% for a segment, and the compaction copies the rest.
pub const OVERWRITTEN_PERCENT: usize = 35;

/// The puts beside a compaction and before it.
#[derive(Debug, Clone)]
pub struct BesideCompaction {
    /// The puts just before the compaction, alone.
    pub alone: Percentiles,
    /// How long the puts alone ran, seconds.
    pub alone_secs: f64,
    /// The puts while it ran.
    pub beside: Percentiles,
    /// How long the puts beside it ran, seconds: from the compaction's start to the first
    /// put that ended after it.
    pub beside_secs: f64,
    /// How long the compaction took to write its outputs, pauses for its pace included.
    pub compaction_secs: f64,
    /// Bytes of the segments it wrote.
    pub bytes_out: u64,
    /// Its pace, in bytes read and written a second.
    pub pace_bytes_per_sec: u64,
}

/// Ingests `corpus` into a store of segments half its size, writes the first
/// [`OVERWRITTEN_PERCENT`] of its first half again, and writes an index checkpoint; once the
/// disk is quiet (at most `quiet_max`), times durable puts of its texts for `alone`, and
/// again while a compaction of the segments holding the first versions runs, paced as the
/// default [`CompactionPolicy`] paces the engine's own. The store is removed after.
pub fn puts_beside_compaction(
    scratch: &Path,
    corpus: &Corpus,
    alone: Duration,
    quiet_max: Duration,
) -> Result<BesideCompaction> {
    let dir = scratch.join("compacting");
    let docs = corpus.docs();
    let longest = docs.iter().map(|doc| doc.text.len()).max().unwrap_or(0) as u64;
    // Two segments at least for the first versions, so that a sealed one holds dead bytes,
    // each with room for its header and twice the longest text.
    let capacity = (corpus.text_bytes() / 2)
        .clamp(u64::from(MIN_SEGMENT_CAPACITY), 256 << 20)
        .max(2 * longest);
    let options = StoreOptions::new()
        .segment_capacity(u32::try_from(capacity).expect("at most 256 MiB"))
        .max_document_bytes(longest.max(1));
    let mut store = Store::create(&dir, options).map_err(Error::engine(NAME, "create"))?;
    let overwritten = docs.len() / 2 * OVERWRITTEN_PERCENT / 100;
    for batch in docs.chunks(100).chain(docs[..overwritten].chunks(100)) {
        let ops = batch.iter().map(|doc| BatchOp::Put {
            id: doc.id,
            text: &doc.text,
        });
        store
            .commit_ops(ops)
            .map_err(Error::engine(NAME, "commit_ops"))?;
    }
    // The ingest's own checkpoint and write-back are not the puts' to wait for.
    store
        .checkpoint()
        .map_err(Error::engine(NAME, "checkpoint"))?;
    settle(scratch, quiet_max)?;
    let mut order = put_order(docs);
    let mut put = |store: &mut Store, latencies: &mut Latencies| -> Result<()> {
        let doc = order.next().expect("the order goes round and round");
        let start = Instant::now();
        store
            .put(doc.id, &doc.text)
            .map_err(Error::engine(NAME, "put"))?;
        latencies.record(start.elapsed());
        Ok(())
    };

    let mut before = Latencies::default();
    let started = Instant::now();
    while before.percentiles().is_none() || started.elapsed() < alone {
        put(&mut store, &mut before)?;
    }
    let alone_secs = started.elapsed().as_secs_f64();

    let policy = CompactionPolicy {
        dead_ratio: Some(0.0),
        min_dead_bytes: 0,
        ..CompactionPolicy::default()
    };
    let pace_bytes_per_sec = policy.max_bytes_per_sec.unwrap_or(0);
    let plan = store
        .plan_compaction(&CompactionScope::Due(policy))
        .map_err(Error::engine(NAME, "plan_compaction"))?
        .ok_or_else(|| Error::WrongResult {
            engine: NAME,
            what: format!(
                "no compaction was due after overwriting {overwritten} of {} documents",
                docs.len()
            ),
        })?;
    let mut beside = Latencies::default();
    let mut beside_secs = 0.0;
    let started = Instant::now();
    let compacted = thread::scope(|scope| -> Result<_> {
        let compaction = scope.spawn(move || plan.run());
        while beside.percentiles().is_none() || !compaction.is_finished() {
            put(&mut store, &mut beside)?;
        }
        beside_secs = started.elapsed().as_secs_f64();
        compaction
            .join()
            .expect("the compaction thread panicked")
            .map_err(Error::engine(NAME, "compact"))
    })?;
    let installed = store
        .install_compaction(compacted)
        .map_err(Error::engine(NAME, "install_compaction"))?;
    store.close().map_err(Error::engine(NAME, "close"))?;
    std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    let percentiles = |latencies: &Latencies| {
        latencies
            .percentiles()
            .expect("at least one put is timed in each phase")
    };
    Ok(BesideCompaction {
        alone: percentiles(&before),
        alone_secs,
        beside: percentiles(&beside),
        beside_secs,
        compaction_secs: installed.report.copy_time.as_secs_f64(),
        bytes_out: installed.report.bytes_out,
        pace_bytes_per_sec,
    })
}

/// The documents the timed puts write, round and round: each of `docs` once a round, in one
/// shuffled order, so that consecutive puts are not neighbours in the store.
fn put_order(docs: &[Document]) -> impl Iterator<Item = &Document> {
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(7919));
    order.into_iter().cycle().map(move |i| &docs[i])
}

/// The figure as plain text, each percentile beside the puts alone.
pub fn to_text(figure: &BesideCompaction) -> String {
    let (alone, beside) = (&figure.alone, &figure.beside);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "durable puts beside a compaction ({:.0} MB written in {:.2} s, paced at {} MiB/s read + written), against the same puts just before it",
        figure.bytes_out as f64 / 1e6,
        figure.compaction_secs,
        figure.pace_bytes_per_sec >> 20
    );
    let _ = writeln!(
        out,
        "  {:<8}{:>10}{:>10}{:>10}{:>10}{:>10}{:>12}",
        "", "puts", "seconds", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, p, secs) in [
        ("alone", alone, figure.alone_secs),
        ("beside", beside, figure.beside_secs),
    ] {
        let _ = writeln!(
            out,
            "  {name:<8}{:>10}{secs:>10.2}{:>10.0}{:>10.0}{:>10.0}{:>12.0}",
            p.count, p.p50_us, p.p99_us, p.p999_us, p.max_us
        );
    }
    let _ = writeln!(
        out,
        "  beside / alone: p50 {:.2}×, p99 {:.2}×, p99.9 {:.2}×, max {:.2}×",
        beside.p50_us / alone.p50_us,
        beside.p99_us / alone.p99_us,
        beside.p999_us / alone.p999_us,
        beside.max_us / alone.max_us
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each round puts every document once, in an order that is not the corpus's, and the
    /// rounds repeat it.
    #[test]
    fn the_puts_go_round_the_corpus_each_document_once_a_round() {
        for len in [1, 2, 10, 2_000] {
            let corpus = Corpus::synthetic(len, 1);
            let at = |doc: &Document| corpus.docs().iter().position(|d| d.id == doc.id).unwrap();
            let rounds: Vec<usize> = put_order(corpus.docs()).take(2 * len).map(at).collect();
            assert_eq!(rounds[..len], rounds[len..], "{len}");
            let mut first = rounds[..len].to_vec();
            first.sort_unstable();
            assert_eq!(first, (0..len).collect::<Vec<_>>(), "{len}");
            if len >= 10 {
                assert_ne!(rounds[..len], first, "{len}: in the corpus's order");
            }
        }
    }
}
