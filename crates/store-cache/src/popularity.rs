//! Which ids are read most, in bounded memory, and the file that carries them across a
//! close and an open.

use std::hash::BuildHasher;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;

use store_format::DocId;

use crate::error::Error;

/// Entries per set: an id competes for a place only with the ids of its own set.
const WAYS: usize = 4;

/// The first line of a hot-id file, which names its format.
const HOT_FILE_HEADER: &str = "textstore hot ids v1";

/// Counts reads per id for the ids that are read most, in a fixed number of entries.
///
/// The table is set-associative: an id hashes to a set of four entries. A read of a tracked
/// id adds one to its count. A read of an untracked id takes an empty entry, or else takes
/// one from the set's least-read entry, which is replaced when that reaches zero. An id read
/// often keeps its place; ids read once wear each other out. Memory is fixed at creation,
/// and each read locks one set.
pub struct Popularity {
    sets: Box<[Mutex<[Slot; WAYS]>]>,
    hasher: foldhash::fast::FixedState,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    id: DocId,
    /// Zero: the slot is empty.
    count: u32,
}

impl Popularity {
    /// A table tracking at most `ids` ids (rounded up to a power of two, at least 4).
    pub fn new(ids: usize) -> Popularity {
        let sets = ids.div_ceil(WAYS).max(1).next_power_of_two();
        Popularity {
            sets: (0..sets)
                .map(|_| Mutex::new([Slot::default(); WAYS]))
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x7465_7874_7374_6f72),
        }
    }

    /// Counts one read of `id`.
    pub fn record(&self, id: DocId) {
        let set = self.hasher.hash_one(id) as usize & (self.sets.len() - 1);
        // A panic cannot interrupt the update below halfway, so a poisoned set is whole.
        let mut set = self.sets[set]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = set.iter_mut().find(|s| s.count > 0 && s.id == id) {
            slot.count = slot.count.saturating_add(1);
            return;
        }
        let weakest = set
            .iter_mut()
            .min_by_key(|s| s.count)
            .expect("a set has entries");
        weakest.count = weakest.count.saturating_sub(1);
        if weakest.count == 0 {
            *weakest = Slot { id, count: 1 };
        }
    }

    /// The `n` most read ids tracked, most read first.
    pub fn hottest(&self, n: usize) -> Vec<DocId> {
        let mut slots: Vec<Slot> = self
            .sets
            .iter()
            .flat_map(|set| *set.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
            .filter(|slot| slot.count > 0)
            .collect();
        slots.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        slots.into_iter().take(n).map(|slot| slot.id).collect()
    }
}

/// Writes `ids` to `path`, replacing it whole: a crash leaves the old file or the new one.
pub(crate) fn save<E>(path: &Path, ids: &[DocId]) -> Result<(), Error<E>> {
    let fail = |action, source| Error::HotFile {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::with_capacity(HOT_FILE_HEADER.len() + 1 + ids.len() * 27);
    text.push_str(HOT_FILE_HEADER);
    text.push('\n');
    for id in ids {
        text.push_str(&id.to_string());
        text.push('\n');
    }
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).map_err(|err| fail("create", err))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|err| fail("write", err))?;
    std::fs::rename(&temporary, path).map_err(|err| fail("rename", err))
}

/// Reads the ids `save` wrote; a missing file holds none.
pub(crate) fn load<E>(path: &Path) -> Result<Vec<DocId>, Error<E>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::HotFile {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let bad = |line, reason: String| Error::BadHotFile {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut ids = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::HotFile {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if i == 0 {
            if line != HOT_FILE_HEADER {
                return Err(bad(
                    1,
                    format!("expected \"{HOT_FILE_HEADER}\", found {line:?}"),
                ));
            }
            continue;
        }
        ids.push(DocId::parse(&line).map_err(|err| bad(i + 1, err.to_string()))?);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each id keeps a count of its own, beside others of its set (a table of four entries
    /// is one set); the hottest come most read first, and no empty entry is taken for an
    /// id.
    #[test]
    fn the_hottest_are_the_most_read() {
        let popularity = Popularity::new(4);
        for (id, reads) in [(5u64, 7), (9, 3), (2, 5)] {
            for _ in 0..reads {
                popularity.record(DocId::from(id));
            }
        }
        let ids = |ids: &[u64]| ids.iter().map(|&id| DocId::from(id)).collect::<Vec<_>>();
        assert_eq!(popularity.hottest(2), ids(&[5, 2]));
        assert_eq!(popularity.hottest(10), ids(&[5, 2, 9]));
        assert!(Popularity::new(64).hottest(10).is_empty());
    }

    /// A hot-id file that cannot be read for another reason than its absence is an error
    /// naming the file; an absent one holds no ids.
    #[test]
    fn only_an_absent_hot_file_holds_no_ids() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("hot");
        assert!(load::<std::io::Error>(&absent).unwrap().is_empty());
        let not_a_directory = dir.path().join("file");
        std::fs::write(&not_a_directory, "").unwrap();
        let under_a_file = not_a_directory.join("hot");
        let err = load::<std::io::Error>(&under_a_file).unwrap_err();
        assert!(
            err.to_string().contains(&*under_a_file.to_string_lossy()),
            "{err}"
        );
    }
}
