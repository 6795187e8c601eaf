//! The documents a run writes and reads: a synthetic corpus generated from a seed, a
//! directory of files, or a JSONL file.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde::Deserialize;
use store_mmap::DocId;

use crate::error::{Error, Result};

/// One document of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its id in every engine.
    pub id: DocId,
    /// Its text.
    pub text: String,
}

/// The documents of a run, in the order they are ingested.
#[derive(Debug, Clone)]
pub struct Corpus {
    description: String,
    docs: Vec<Document>,
}

/// Median size of a synthetic document, in bytes.
pub const SYNTHETIC_MEDIAN_BYTES: f64 = 2048.0;
/// The log-normal's σ: about 1 in 6 documents is over 2.7× the median, as in collections of
/// web pages and source files, where a long tail of large documents holds much of the text.
pub const SYNTHETIC_SIGMA: f64 = 1.0;
/// Smallest synthetic document, in bytes.
pub const SYNTHETIC_MIN_BYTES: usize = 64;
/// Largest synthetic document, in bytes.
pub const SYNTHETIC_MAX_BYTES: usize = 256 << 10;

/// The words of synthetic text. One in eight is multi-byte UTF-8 (2, 3 and 4-byte
/// characters), so that char and line extraction and UTF-8 validation meet real work.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "an",
    "which",
    "at",
    "not",
    "have",
    "index",
    "document",
    "segment",
    "record",
    "search",
    "vector",
    "query",
    "token",
    "store",
    "page",
    "version",
    "commit",
    "reader",
    "writer",
    "storage",
    "engine",
    "memory",
    "snippet",
    "latency",
    "throughput",
    "checksum",
    "recovery",
    "compaction",
    "cache",
    "pipeline",
    "retrieval",
    "embedding",
    "ranking",
    "corpus",
    "language",
    "function",
    "return",
    "value",
    "café",
    "naïve",
    "Straße",
    "東京",
    "данные",
    "ελληνικά",
    "données",
    "😀",
];

impl Corpus {
    /// `docs` synthetic documents: sizes drawn from a log-normal with median 2 KiB clipped to
    /// [64 B, 256 KiB], text of words with some multi-byte characters and a line break every
    /// few words. The same seed always gives the same corpus.
    pub fn synthetic(docs: usize, seed: u64) -> Corpus {
        let mut rng = StdRng::seed_from_u64(seed);
        let sizes = LogNormal::new(SYNTHETIC_MEDIAN_BYTES.ln(), SYNTHETIC_SIGMA)
            .expect("the log-normal's parameters are finite and σ > 0");
        let docs = (0..docs as u64)
            .map(|i| {
                let len = (sizes.sample(&mut rng) as usize)
                    .clamp(SYNTHETIC_MIN_BYTES, SYNTHETIC_MAX_BYTES);
                Document {
                    id: DocId::from_key(&format!("synthetic/{seed}/{i}")),
                    text: words(&mut rng, len),
                }
            })
            .collect();
        Corpus {
            description: format!(
                "synthetic, seed {seed}: log-normal sizes (median {SYNTHETIC_MEDIAN_BYTES} B, σ {SYNTHETIC_SIGMA}) clipped to [{SYNTHETIC_MIN_BYTES} B, {SYNTHETIC_MAX_BYTES} B], words with multi-byte UTF-8"
            ),
            docs,
        }
    }

    /// Every UTF-8 file under `root`, in file-name order, each under the id
    /// [`DocId::from_key`] gives its path relative to `root` (as `textstore import` does).
    /// Files that are not UTF-8 are skipped and counted in the description: a directory of
    /// real files holds images and binaries that no text store would be given.
    pub fn from_dir(root: &Path) -> Result<Corpus> {
        let files = files_under(root)?;
        Corpus::from_files(root, &files, String::new())
    }

    /// About `docs` of the files under `root`, spread over it: every n-th file in file-name
    /// order, so that a part of a large tree holds some of each of its directories. Only
    /// the files picked are read; the UTF-8 ones among them are the corpus, as in
    /// [`Corpus::from_dir`].
    pub fn from_dir_spread(root: &Path, docs: usize) -> Result<Corpus> {
        let files = files_under(root)?;
        if files.len() <= docs {
            return Corpus::from_files(root, &files, String::new());
        }
        let step = files.len() as f64 / docs as f64;
        let picked: Vec<PathBuf> = (0..docs)
            .map(|i| files[(i as f64 * step) as usize].clone())
            .collect();
        let note = format!(
            ", every {step:.2}th of its {} files in name order",
            files.len()
        );
        Corpus::from_files(root, &picked, note)
    }

    /// The UTF-8 files of `files` (under `root`), in that order.
    fn from_files(root: &Path, files: &[PathBuf], note: String) -> Result<Corpus> {
        let mut docs = Vec::new();
        let mut skipped = 0u64;
        for path in files {
            let bytes = std::fs::read(path).map_err(Error::io(path))?;
            let Ok(text) = String::from_utf8(bytes) else {
                skipped += 1;
                continue;
            };
            let relative = path.strip_prefix(root).unwrap_or(path);
            let key = relative.to_string_lossy().replace('\\', "/");
            docs.push(Document {
                id: DocId::from_key(&key),
                text,
            });
        }
        if docs.is_empty() {
            return Err(Error::Corpus {
                path: root.to_path_buf(),
                line: None,
                message: format!("holds no UTF-8 file to use as a document ({skipped} skipped)"),
            });
        }
        Ok(Corpus {
            description: format!(
                "the {} UTF-8 files under {}{note} ({skipped} other files skipped)",
                docs.len(),
                root.display()
            ),
            docs,
        })
    }

    /// The documents of a JSONL file, one `{"id": ..., "text": ...}` object per line as
    /// `textstore import` reads them: an id is a ULID string or an integer; a line without an
    /// id gets [`DocId::from_key`] of its line number.
    pub fn from_jsonl(path: &Path) -> Result<Corpus> {
        #[derive(Deserialize)]
        struct Line {
            id: Option<serde_json::Value>,
            text: String,
        }
        let file = std::fs::File::open(path).map_err(Error::io(path))?;
        let fault = |line: u64, message: String| Error::Corpus {
            path: path.to_path_buf(),
            line: Some(line),
            message,
        };
        let mut docs = Vec::new();
        for (number, line) in (1u64..).zip(std::io::BufReader::new(file).lines()) {
            let line = line.map_err(|err| fault(number, format!("cannot read it: {err}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line).map_err(|err| {
                fault(
                    number,
                    format!("expected {{\"id\": ..., \"text\": ...}}: {err}"),
                )
            })?;
            let id = match parsed.id {
                None => DocId::from_key(&format!("line {number}")),
                Some(serde_json::Value::String(text)) => DocId::parse(&text)
                    .map_err(|err| fault(number, format!("id {text:?}: {err}")))?,
                Some(serde_json::Value::Number(n)) => {
                    n.as_u64().map(DocId::from).ok_or_else(|| {
                        fault(number, format!("id {n} is not an integer in [0, 2^64)"))
                    })?
                }
                Some(other) => {
                    return Err(fault(
                        number,
                        format!("id {other} is neither a string nor a number"),
                    ));
                }
            };
            docs.push(Document {
                id,
                text: parsed.text,
            });
        }
        if docs.is_empty() {
            return Err(Error::Corpus {
                path: path.to_path_buf(),
                line: None,
                message: "holds no document".to_owned(),
            });
        }
        Ok(Corpus {
            description: format!("the {} documents of {}", docs.len(), path.display()),
            docs,
        })
    }

    /// A directory or a `.jsonl` file, told apart by what `path` is.
    pub fn load(path: &Path) -> Result<Corpus> {
        if path.is_dir() {
            Corpus::from_dir(path)
        } else {
            Corpus::from_jsonl(path)
        }
    }

    /// The first `docs` documents only.
    pub fn truncate(&mut self, docs: usize) {
        self.docs.truncate(docs);
    }

    /// Where the documents come from, for the report.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The documents, in ingest order.
    pub fn docs(&self) -> &[Document] {
        &self.docs
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the corpus has no document.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Total text bytes.
    pub fn text_bytes(&self) -> u64 {
        self.docs.iter().map(|doc| doc.text.len() as u64).sum()
    }

    /// Text byte size of the document at the middle of the sorted sizes.
    pub fn median_bytes(&self) -> usize {
        let mut sizes: Vec<usize> = self.docs.iter().map(|doc| doc.text.len()).collect();
        sizes.sort_unstable();
        sizes.get(sizes.len() / 2).copied().unwrap_or(0)
    }
}

/// A new version of `text` of the same length: the text rotated at the char boundary nearest
/// its middle. Overwrites made of it keep the live bytes of a store unchanged, so space
/// amplification before and after overwriting compares like with like.
pub fn rewritten(text: &str) -> String {
    let middle = text.floor_char_boundary(text.len() / 2);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[middle..]);
    out.push_str(&text[..middle]);
    out
}

/// `len` bytes (or up to 3 fewer, to end on a char boundary) of words.
fn words(rng: &mut StdRng, len: usize) -> String {
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        let word = WORDS[rng.random_range(0..WORDS.len())];
        text.push_str(word);
        text.push(if rng.random_ratio(1, 12) { '\n' } else { ' ' });
    }
    let end = text.floor_char_boundary(len);
    text.truncate(end);
    text
}

/// A corpus source named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusSource {
    /// [`Corpus::synthetic`] with this seed.
    Synthetic {
        /// The generator's seed.
        seed: u64,
    },
    /// [`Corpus::load`] of this path.
    Path(PathBuf),
}

/// Every regular file under `root`, in file-name order.
fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|err| {
            let path = err.path().unwrap_or(root).to_path_buf();
            Error::Io {
                path,
                source: err.into(),
            }
        })?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}
