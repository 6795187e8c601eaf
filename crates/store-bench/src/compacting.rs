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

use store_mmap::{BatchOp, CompactionPolicy, CompactionScope, Store, StoreOptions};

use crate::corpus::Corpus;
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
    /// The puts while it ran.
    pub beside: Percentiles,
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
    // Two segments at least for the first versions, so that a sealed one holds dead bytes.
    let capacity = (corpus.text_bytes() / 2)
        .clamp(1 << 20, 256 << 20)
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
    let mut next = 0usize;
    let mut put = |store: &mut Store, latencies: &mut Latencies| -> Result<()> {
        let doc = &docs[next.wrapping_mul(7919) % docs.len()];
        next += 1;
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
    let compacted = thread::scope(|scope| -> Result<_> {
        let compaction = scope.spawn(move || plan.run());
        while beside.percentiles().is_none() || !compaction.is_finished() {
            put(&mut store, &mut beside)?;
        }
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
        beside: percentiles(&beside),
        compaction_secs: installed.report.copy_time.as_secs_f64(),
        bytes_out: installed.report.bytes_out,
        pace_bytes_per_sec,
    })
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
        "  {:<8}{:>10}{:>10}{:>10}{:>10}{:>12}",
        "", "puts", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, p) in [("alone", alone), ("beside", beside)] {
        let _ = writeln!(
            out,
            "  {name:<8}{:>10}{:>10.0}{:>10.0}{:>10.0}{:>12.0}",
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
