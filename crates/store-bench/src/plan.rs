//! What every engine is given to measure: how long each workload runs ([`Settings`]), and
//! the documents to write and the choices of documents and ranges to read, drawn once for
//! all engines before any clock starts ([`Plan`]).

use std::ops::Range;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store_mmap::DocId;

use crate::corpus::{Corpus, rewritten};
use crate::keys::KeyChooser;

/// How long or how many times each workload runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Seed of every random choice.
    pub seed: u64,
    /// Time of each get and substring throughput loop, in each round.
    pub read_time: Duration,
    /// Time of the pass that times single reads for their percentiles, in each round.
    pub latency_time: Duration,
    /// Rounds of each workload measured in rounds
    /// ([`Workload::in_rounds`](crate::workload::Workload::in_rounds)). Engines take turns
    /// round by round, and each engine's median round is reported beside every
    /// round's figure: a burst of the machine's other work that slows one window of one
    /// engine no longer decides a row (one window of textstore's snippets measured 0.53× the
    /// HashMap's in a run whose latencies, and two runs after it, said 0.8×; textstore's
    /// durable single puts measured 6.4k to 9.6k a second in three consecutive runs, against
    /// a flush limit measured once).
    pub rounds: usize,
    /// Longest time and most commits of the durable single puts, in each round (and of
    /// each thread's puts in the puts from threads).
    pub durable_put_time: Duration,
    /// See `durable_put_time`.
    pub durable_put_max: usize,
    /// Longest time and most commits of the batched puts, in each round.
    pub batch_time: Duration,
    /// See `batch_time`.
    pub batch_max: usize,
    /// Documents per batched commit.
    pub batch_docs: usize,
    /// Text bytes each engine rewrites before its batched puts in steady state: 2 GiB, eight
    /// of textstore's segments. The first compactions lag behind the rewrites (they copy at
    /// most 128 MiB/s, and a replaced file becomes a spare once an index file reflects the
    /// compaction); past 1.3 GiB or so, on the reference machine, every other segment is
    /// written over a spare file while the rewrites run flat out (a compaction's cycle takes
    /// longer than a segment takes to fill).
    pub steady_bytes: u64,
    /// Time the readers read while the writer writes, in each round.
    pub readers_time: Duration,
    /// Reader threads beside the writer.
    pub readers: usize,
    /// Times the engine is reopened; the median is reported.
    pub reopen_rounds: usize,
    /// Times the corpus is ingested, each time into a new store; the fastest round is
    /// reported, beside every round's figure. On the reference machine the copy of a large
    /// write into the page cache runs several times slower in some rounds than in others,
    /// for every engine and for the sequential-write limit alike (docs/PERFORMANCE.md):
    /// what the engine does shows in its fastest round.
    pub ingest_rounds: usize,
    /// The longest wait, before each measurement, for the engines' background work to end
    /// (zero: no wait; see `run`).
    pub quiet_max: Duration,
}

impl Settings {
    /// The settings of `cargo xtask bench`: about 35 s per engine and corpus on 2 cores (a
    /// run of both corpora with every peer, `--no-open`: 510 s).
    pub fn standard(seed: u64) -> Settings {
        Settings {
            seed,
            read_time: Duration::from_millis(400),
            latency_time: Duration::from_millis(100),
            rounds: 3,
            durable_put_time: Duration::from_millis(1500),
            durable_put_max: 2000,
            batch_time: Duration::from_millis(1500),
            batch_max: 200,
            batch_docs: 100,
            steady_bytes: 2 << 30,
            readers_time: Duration::from_millis(1000),
            readers: 2,
            reopen_rounds: 3,
            ingest_rounds: 3,
            quiet_max: Duration::from_secs(10),
        }
    }

    /// A few milliseconds per workload: enough to check that every engine runs every
    /// workload correctly, not to measure anything.
    pub fn smoke(seed: u64) -> Settings {
        Settings {
            seed,
            read_time: Duration::from_millis(5),
            latency_time: Duration::from_millis(5),
            rounds: 1,
            durable_put_time: Duration::from_millis(20),
            durable_put_max: 5,
            batch_time: Duration::from_millis(20),
            batch_max: 3,
            batch_docs: 10,
            steady_bytes: 1 << 20,
            readers_time: Duration::from_millis(20),
            readers: 2,
            reopen_rounds: 1,
            ingest_rounds: 1,
            quiet_max: Duration::ZERO,
        }
    }
}

/// What every engine is given: the corpus, its second versions, and the choices of
/// documents drawn once for all engines.
#[derive(Debug)]
pub struct Plan<'c> {
    pub(crate) corpus: &'c Corpus,
    pub(crate) settings: Settings,
    /// A second version of every document, of the same length.
    pub(crate) rewrites: Vec<String>,
    /// Each document's text length, by index: what a read's length is checked against.
    pub(crate) lens: Vec<u32>,
    /// Documents for the uniform gets.
    pub(crate) uniform: Vec<u32>,
    /// Documents for the zipf gets.
    pub(crate) zipf: Vec<u32>,
    /// Documents for the durable puts.
    pub(crate) writes: Vec<u32>,
    /// Documents and byte ranges for the snippets.
    pub(crate) substrings: Vec<(u32, Range<usize>)>,
}

/// Choices drawn for the read loops; they wrap around when a loop runs longer.
pub(crate) const CHOICES: usize = 1 << 20;

impl<'c> Plan<'c> {
    /// Draws every choice of the run.
    ///
    /// # Panics
    /// If the corpus is empty.
    pub fn new(corpus: &'c Corpus, settings: Settings) -> Plan<'c> {
        let docs = corpus.len();
        let seed = settings.seed;
        let substrings = substrings(corpus, seed);
        Plan {
            corpus,
            settings,
            rewrites: corpus
                .docs()
                .iter()
                .map(|doc| rewritten(&doc.text))
                .collect(),
            lens: corpus
                .docs()
                .iter()
                .map(|doc| doc.text.len() as u32)
                .collect(),
            uniform: KeyChooser::Uniform.indices(docs, CHOICES, seed),
            zipf: KeyChooser::Zipf { exponent: 0.99 }.indices(docs, CHOICES, seed + 1),
            writes: KeyChooser::Uniform.indices(docs, CHOICES, seed + 2),
            substrings,
        }
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        self.corpus
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn id(&self, index: u32) -> DocId {
        self.corpus.docs()[index as usize].id
    }

    /// The first `n` (at least one) texts the durable single puts write, in order: what the
    /// limits they are held to write.
    pub fn put_texts(&self, n: usize) -> Vec<&[u8]> {
        (0..n.max(1)).map(|i| self.write(i).1.as_bytes()).collect()
    }

    /// The first `n` (at least one) texts each of `threads` threads writes in the durable
    /// puts from threads, thread by thread: what the grouped limit writes.
    pub fn thread_put_texts(&self, threads: usize, n: usize) -> Vec<Vec<&[u8]>> {
        (0..threads)
            .map(|t| {
                (0..n.max(1))
                    .map(|i| self.write_of_thread(t, threads, i).1.as_bytes())
                    .collect()
            })
            .collect()
    }

    /// The texts of the first `n` (at least one) batches of the batched puts, batch by
    /// batch, in order: what the limits of the batched puts write.
    pub fn batch_texts(&self, n: usize) -> Vec<Vec<&[u8]>> {
        let docs = self.settings.batch_docs;
        (0..n.max(1))
            .map(|batch| {
                (0..docs)
                    .map(|j| self.write(batch * docs + j).1.as_bytes())
                    .collect()
            })
            .collect()
    }

    /// The `i`-th write: a document and its second version.
    pub(crate) fn write(&self, i: usize) -> (DocId, &str) {
        let index = self.writes[i % self.writes.len()];
        (self.id(index), &self.rewrites[index as usize])
    }

    /// The `i`-th write of thread `thread` of `threads`: threads write disjoint documents,
    /// so that no engine sees two writers of one document at once.
    pub(crate) fn write_of_thread(&self, thread: usize, threads: usize, i: usize) -> (DocId, &str) {
        let own = (self.rewrites.len() / threads).max(1);
        let index = ((i % own) * threads + thread) % self.rewrites.len();
        (self.id(index as u32), &self.rewrites[index])
    }
}

/// Byte ranges of 64 to 256 bytes (less in shorter documents), on char boundaries.
fn substrings(corpus: &Corpus, seed: u64) -> Vec<(u32, Range<usize>)> {
    let mut rng = StdRng::seed_from_u64(seed + 3);
    KeyChooser::Uniform
        .indices(corpus.len(), CHOICES / 4, seed + 4)
        .into_iter()
        .map(|index| {
            let text = &corpus.docs()[index as usize].text;
            let len = rng.random_range(64..=256).min(text.len());
            let start = text.floor_char_boundary(rng.random_range(0..=text.len() - len));
            let end = text.floor_char_boundary(start + len);
            (index, start..end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The substrings are 64 to 256 bytes of their document (fewer only in a document
    /// shorter than 64), inside it and on char boundaries.
    #[test]
    fn substrings_are_64_to_256_bytes_of_their_document() {
        let corpus = Corpus::synthetic(300, 3);
        let ranges = substrings(&corpus, 5);
        assert_eq!(ranges.len(), CHOICES / 4);
        let (mut shortest, mut longest) = (usize::MAX, 0);
        for (index, range) in &ranges {
            let text = &corpus.docs()[*index as usize].text;
            assert!(
                text.get(range.clone()).is_some(),
                "{range:?} of {}",
                text.len()
            );
            // A cut on a char boundary gives up to 3 bytes of the length drawn.
            assert!(
                range.len() + 3 >= 64.min(text.len()) && range.len() <= 256,
                "{range:?}"
            );
            shortest = shortest.min(range.len());
            longest = longest.max(range.len());
        }
        assert!(shortest < 70 && longest > 250, "{shortest}..{longest}");
    }
}
