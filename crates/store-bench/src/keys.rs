//! Which documents a workload touches, and in what order.

use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// A distribution of document choices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyChooser {
    /// Every document equally likely.
    Uniform,
    /// The document of popularity rank `k` is chosen with probability proportional to
    /// `1 / k^exponent`. Ranks are assigned by a seeded shuffle, so the popular documents are
    /// scattered through the store instead of being the first ones written.
    Zipf {
        /// The skew: 0 is uniform, 0.99 is the YCSB default, larger is more skewed.
        exponent: f64,
    },
    /// Documents in ingest order, wrapping around.
    Sequential,
}

impl KeyChooser {
    /// `count` choices among `docs` documents (indexes into the corpus), drawn before a timed
    /// loop so that the random number generator is not what it measures.
    ///
    /// # Panics
    /// If `docs` is 0 or above `u32::MAX`, or a Zipf exponent is negative or not finite.
    pub fn indices(self, docs: usize, count: usize, seed: u64) -> Vec<u32> {
        assert!(docs > 0, "choosing among no documents");
        let docs = u32::try_from(docs).expect("at most u32::MAX documents");
        let mut rng = StdRng::seed_from_u64(seed);
        match self {
            KeyChooser::Uniform => (0..count).map(|_| rng.random_range(0..docs)).collect(),
            KeyChooser::Sequential => (0..count as u64)
                .map(|i| (i % u64::from(docs)) as u32)
                .collect(),
            KeyChooser::Zipf { exponent } => {
                let zipf = Zipf::new(f64::from(docs), exponent)
                    .unwrap_or_else(|err| panic!("Zipf exponent {exponent}: {err}"));
                let mut by_rank: Vec<u32> = (0..docs).collect();
                by_rank.shuffle(&mut rng);
                (0..count)
                    .map(|_| {
                        // Zipf yields ranks 1..=docs as floats.
                        let rank = zipf.sample(&mut rng) as usize;
                        by_rank[rank.clamp(1, by_rank.len()) - 1]
                    })
                    .collect()
            }
        }
    }
}

impl fmt::Display for KeyChooser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyChooser::Uniform => f.write_str("uniform"),
            KeyChooser::Zipf { exponent } => write!(f, "zipf({exponent})"),
            KeyChooser::Sequential => f.write_str("sequential"),
        }
    }
}
