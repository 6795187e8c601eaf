//! An incremental re-indexer: keeps a derived index (here, the words of every document) in
//! step with a store, re-reading only what changed since its last run.
//!
//! ```sh
//! reindex STORE_DIR STATE_FILE
//! ```
//!
//! The first run scans the store and records the sequence number the scan was as of; each
//! later run follows the change feed from there. When compaction has dropped a delete the
//! feed would need, the store says so, and the re-indexer scans again instead of missing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use textstore::{Change, DocId, DocWrite, ErrorKind, Textstore};

/// What the re-indexer keeps between runs: how far it has read, and the index itself.
#[derive(Default, Serialize, Deserialize)]
struct State {
    /// Every change up to this sequence number is in `words`.
    seq: u64,
    /// The words of each document, sorted and deduplicated: a stand-in for an embedding or
    /// a search index entry.
    words: BTreeMap<DocId, Vec<String>>,
}

fn words_of(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

fn load(path: &Path) -> Result<Option<State>, Box<dyn std::error::Error>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Writes the state under a temporary name, syncs it and renames it into place, so that a
/// crash or a power cut leaves the old state or the new one.
fn save(path: &Path, state: &State) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;

    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec(state)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Indexes every live document from scratch.
fn rescan(store: &Textstore) -> textstore::Result<State> {
    let scan = store.scan()?;
    let mut state = State {
        seq: scan.as_of(),
        words: BTreeMap::new(),
    };
    for found in scan {
        let (id, doc) = found?;
        state.words.insert(id, words_of(&doc));
    }
    // Documents written while the scan ran are in the feed from `seq` on: catch up now.
    let changed = follow(store, &mut state)?;
    println!(
        "scanned {} documents, then applied {changed} changes; up to seq {}",
        state.words.len(),
        state.seq
    );
    Ok(state)
}

/// Applies the changes since `state.seq`; returns how many there were.
fn follow(store: &Textstore, state: &mut State) -> textstore::Result<u64> {
    let changes = store.changes_since(state.seq)?;
    let upto = changes.upto();
    let mut applied = 0;
    for change in changes {
        match change? {
            Change::Put { id, doc } => {
                state.words.insert(id, words_of(&doc));
            }
            Change::Delete { id, .. } => {
                state.words.remove(&id);
            }
        }
        applied += 1;
    }
    state.seq = upto;
    Ok(applied)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(store_dir), Some(state_file)) = (args.next(), args.next()) else {
        eprintln!("usage: reindex STORE_DIR STATE_FILE");
        std::process::exit(2);
    };
    let state_file = PathBuf::from(state_file);
    let store = Textstore::builder(store_dir).must_exist().open()?;
    let state = match load(&state_file)? {
        None => rescan(&store)?,
        Some(mut state) => match follow(&store, &mut state) {
            Ok(applied) => {
                println!(
                    "applied {applied} changes; {} documents, up to seq {}",
                    state.words.len(),
                    state.seq
                );
                state
            }
            // Compaction dropped a delete after our position (or the store lost commits
            // we saw): the feed cannot bring us up to date, a scan can. Other errors (a
            // damaged record, the disk) are not the position's fault: they stop the run.
            Err(err) if err.kind() == ErrorKind::InvalidInput => {
                println!("the change feed refused: {err}");
                rescan(&store)?
            }
            Err(err) => return Err(err.into()),
        },
    };
    save(&state_file, &state)?;
    store.close()?;
    Ok(())
}
