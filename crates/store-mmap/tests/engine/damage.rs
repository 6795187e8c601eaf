//! The corruption matrix: every kind of damage at every record of a store of many commit
//! groups in several segments, with and without an index checkpoint, on real files.
//!
//! Claims, for every case:
//! - `verify_dir` reports the damage: never a clean report;
//! - the open either fails with `Corrupt` naming the damaged segment, or it succeeds and
//!   every document reads back exactly, or its read fails with `Corrupt` naming that
//!   segment, or the open reports the torn final group it cut (damage in the last commit of
//!   the newest segment looks like a torn write) and every document reads as of the commit
//!   before it. No document reads as missing or older without one of those;
//! - `recover` restores every document whose latest record lies outside the damaged range,
//!   byte for byte, and gives every other document one of its real versions or none;
//! - nothing panics.
//!
//! One case is beyond any check of the format: when everything in the newest segment from a
//! commit boundary past the last checkpoint to the end of its data is gone (cut off, or
//! zeroed up to the unwritten space), the store reads as one whose last commits never
//! happened. It is counted as its own outcome and asserted to be exactly that case.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use store_format::{RecordKind, SEGMENT_HEADER_LEN, decode_record};
use store_mmap::{DocId, Error, Store, StoreOptions, WriteBatch};

use crate::{Fixture, segment_files};

const PAGE: usize = 4096;

fn options() -> StoreOptions {
    StoreOptions::new()
        .segment_capacity(16 << 10)
        .max_document_bytes(2048)
}

/// One commit: its operations (`None`: a delete) and sequence numbers.
struct Commit {
    ops: Vec<(DocId, Option<String>)>,
}

/// What was written, in order.
struct History {
    commits: Vec<Commit>,
}

impl History {
    /// Every document's text after the first `n` commits.
    fn state_after(&self, n: usize) -> BTreeMap<DocId, String> {
        let mut state = BTreeMap::new();
        for commit in &self.commits[..n] {
            for (id, text) in &commit.ops {
                match text {
                    Some(text) => state.insert(*id, text.clone()),
                    None => state.remove(id),
                };
            }
        }
        state
    }

    /// Every text each document ever had.
    fn versions(&self) -> HashMap<DocId, Vec<String>> {
        let mut versions: HashMap<DocId, Vec<String>> = HashMap::new();
        for commit in &self.commits {
            for (id, text) in &commit.ops {
                if let Some(text) = text {
                    versions.entry(*id).or_default().push(text.clone());
                }
            }
        }
        versions
    }
}

fn text(n: usize) -> String {
    let words = ["segment", "naïve", "日本語", "commit", "🦀", "record"];
    let mut text = format!("version {n}:");
    while text.len() < 40 + (n * 131) % 700 {
        text.push(' ');
        text.push_str(words[(text.len() + n) % words.len()]);
    }
    text
}

/// How the base store was left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Closed: the index checkpoint covers everything.
    Closed,
    /// Killed without a checkpoint: the newest segment keeps its preallocated tail.
    CrashedWithoutCheckpoint,
    /// Killed after a checkpoint written halfway.
    CrashedAfterCheckpoint,
}

/// Writes single puts, overwrites, batches of three and deletes across several segments.
fn base_store(ending: Ending) -> (Fixture, History) {
    let mut f = Fixture::with(options());
    let mut commits = Vec::new();
    for n in 0..60usize {
        let doc = |k: usize| DocId::from((k % 23) as u64);
        let ops: Vec<(DocId, Option<String>)> = match n % 5 {
            0 | 2 => vec![(doc(n), Some(text(n)))],
            1 => vec![
                (doc(n + 3), Some(text(n))),
                (doc(n + 7), Some(text(n + 1))),
                (doc(n + 11), Some(text(n + 2))),
            ],
            3 => vec![(doc(n + 5), None)],
            _ => vec![(doc(n * 7), Some(text(n)))],
        };
        let mut batch = WriteBatch::new();
        for (id, text) in &ops {
            match text {
                Some(text) => batch.put(*id, text),
                None => batch.delete(*id),
            };
        }
        f.store().put_batch(&batch).unwrap();
        commits.push(Commit { ops });
        if ending == Ending::CrashedAfterCheckpoint && n == 30 {
            f.store().checkpoint().unwrap();
        }
    }
    assert!(
        f.segment_files().len() >= 3,
        "the store spans several segments"
    );
    match ending {
        Ending::Closed => f.close(),
        Ending::CrashedWithoutCheckpoint | Ending::CrashedAfterCheckpoint => f.crash(),
    }
    (f, History { commits })
}

/// A record of the base store, where it lies and which commit wrote it.
#[derive(Clone, Debug)]
struct Place {
    segment: usize,
    offset: usize,
    len: usize,
    id: DocId,
    kind: RecordKind,
    /// Index into the history.
    commit: usize,
    /// Whether a commit record ends its group at a later offset of the same segment, so the
    /// group starts at `group_start`.
    group_start: usize,
}

/// Every record of the base store, in segment and offset order, with its commit.
fn places(dir: &Path, history: &History) -> Vec<Place> {
    let seq_to_commit: Vec<usize> = history
        .commits
        .iter()
        .enumerate()
        .flat_map(|(i, c)| std::iter::repeat_n(i, c.ops.len()))
        .collect();
    let mut out = Vec::new();
    for (segment, path) in segment_files(dir).iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let mut offset = SEGMENT_HEADER_LEN;
        let mut group_start = offset;
        let mut group = Vec::new();
        while let Ok(record) = decode_record(&bytes, offset) {
            let len = record.header.record_len() as usize;
            group.push(Place {
                segment,
                offset,
                len,
                id: record.header.id,
                kind: record.header.kind,
                commit: seq_to_commit[record.header.seq as usize - 1],
                group_start,
            });
            offset += len;
            if record.header.commit {
                out.append(&mut group);
                group_start = offset;
            }
        }
        assert!(group.is_empty(), "the base store has no torn group");
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ZeroHeaderAtRecord,
    ZeroHeaderInsideRecord,
    ZeroPageAtRecord,
    ZeroPageInsideRecord,
    FlipHeaderBit,
    FlipTextBit,
    PageCopiedFromElsewhere,
    TruncateAtRecord,
    TruncateInsideRecord,
}

const KINDS: [Kind; 9] = [
    Kind::ZeroHeaderAtRecord,
    Kind::ZeroHeaderInsideRecord,
    Kind::ZeroPageAtRecord,
    Kind::ZeroPageInsideRecord,
    Kind::FlipHeaderBit,
    Kind::FlipTextBit,
    Kind::PageCopiedFromElsewhere,
    Kind::TruncateAtRecord,
    Kind::TruncateInsideRecord,
];

/// Applies `kind` at `place` to `bytes` (the segment file); returns the damaged range, or
/// `None` when it changed nothing.
fn damage(kind: Kind, place: &Place, source: &[u8], bytes: &mut Vec<u8>) -> Option<(usize, usize)> {
    let before = bytes.clone();
    let len = bytes.len();
    let zero = |bytes: &mut Vec<u8>, start: usize, n: usize| {
        let end = (start + n).min(len);
        bytes[start..end].fill(0);
        (start, end)
    };
    let range = match kind {
        Kind::ZeroHeaderAtRecord => zero(bytes, place.offset, 48),
        Kind::ZeroHeaderInsideRecord => zero(bytes, place.offset + place.len / 2, 48),
        Kind::ZeroPageAtRecord => zero(bytes, place.offset, PAGE),
        Kind::ZeroPageInsideRecord => {
            let page = (place.offset + place.len / 2) / PAGE * PAGE;
            zero(bytes, page, PAGE)
        }
        Kind::FlipHeaderBit => {
            bytes[place.offset + 20] ^= 0x10;
            (place.offset + 20, place.offset + 21)
        }
        Kind::FlipTextBit => {
            // A tombstone has no text: its reserved bytes instead.
            let at = match place.len > 48 {
                true => place.offset + 48 + (place.len - 48) / 2,
                false => place.offset + 44,
            };
            bytes[at] ^= 0x01;
            (at, at + 1)
        }
        Kind::PageCopiedFromElsewhere => {
            let end = (place.offset + PAGE).min(len);
            let n = (end - place.offset).min(source.len());
            bytes[place.offset..place.offset + n].copy_from_slice(&source[..n]);
            (place.offset, place.offset + n)
        }
        Kind::TruncateAtRecord => {
            bytes.truncate(place.offset);
            (place.offset, len)
        }
        Kind::TruncateInsideRecord => {
            bytes.truncate(place.offset + place.len / 2);
            (place.offset + place.len / 2, len)
        }
    };
    (*bytes != before).then_some(range)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    /// The open failed with `Corrupt` naming the damaged segment.
    OpenRefused,
    /// Every document read back exactly.
    AllExact,
    /// Every document read back exactly or its read failed with `Corrupt` naming the
    /// damaged segment.
    ReadsRefused,
    /// The open reported the torn final group it cut, and every document reads as of the
    /// commit before it.
    TornGroupCut,
    /// Everything in the newest segment from a commit boundary past the last checkpoint on
    /// was erased (cut off or zeroed to the end): it reads as never written.
    TailErasedAtCommitBoundary,
}

struct Case<'a> {
    ending: Ending,
    kind: Kind,
    place: &'a Place,
}

impl fmt::Display for Case<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} at segment {} offset {} (commit {})",
            self.ending, self.kind, self.place.segment, self.place.offset, self.place.commit
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn is_corrupt_naming(err: &Error, segment: &Path) -> bool {
    matches!(err, Error::Corrupt { path, .. } if path == segment)
}

/// Runs one case in `dir` (a damaged copy of the base store); returns its outcome.
fn run_case(
    case: &Case<'_>,
    dir: &Path,
    segment: &Path,
    history: &History,
    places: &[Place],
    tail_erased: Option<usize>,
) -> Outcome {
    let report = store_mmap::verify_dir(dir).unwrap_or_else(|err| panic!("{case}: verify: {err}"));
    let final_state = history.state_after(history.commits.len());
    let newest = places.last().unwrap().segment;
    if let Some(commit) = tail_erased {
        // Nothing in the files says the erased commits ever existed; what remains is exact.
        assert!(report.is_clean(), "{case}: {report:?}");
        let store = Store::open(dir, options()).unwrap();
        assert_reads(&store, &history.state_after(commit), case);
        return Outcome::TailErasedAtCommitBoundary;
    }
    assert!(!report.is_clean(), "{case}: verify reported nothing");
    assert!(
        report.problems.iter().any(|p| p.path == segment
            || p.path.file_name().is_some_and(|n| n == "index.tsi")
            || p.what.contains("sealed")),
        "{case}: no problem names the damaged segment: {report:?}"
    );

    match Store::open(dir, options()) {
        Err(err) => {
            assert!(is_corrupt_naming(&err, segment), "{case}: {err}");
            Outcome::OpenRefused
        }
        Ok(store) => match store.recovery().dropped_tail.clone() {
            Some(dropped) => {
                assert_eq!(dropped.path, segment, "{case}: {dropped:?}");
                let first_cut = places
                    .iter()
                    .find(|p| p.segment == newest && p.offset >= dropped.offset as usize)
                    .unwrap_or_else(|| panic!("{case}: cut past every record: {dropped:?}"));
                assert!(
                    first_cut.commit >= checkpointed(case.ending, history),
                    "{case}: cut checkpointed data"
                );
                assert_reads(&store, &history.state_after(first_cut.commit), case);
                Outcome::TornGroupCut
            }
            None => {
                let mut refused = false;
                for (id, text) in &final_state {
                    match store.get(*id) {
                        Ok(Some(doc)) => assert_eq!(&*doc, text, "{case}: {id}"),
                        Ok(None) => panic!("{case}: {id} lost silently"),
                        Err(err) => {
                            assert!(is_corrupt_naming(&err, segment), "{case}: {err}");
                            refused = true;
                        }
                    }
                }
                assert_eq!(store.len(), final_state.len(), "{case}");
                if refused {
                    Outcome::ReadsRefused
                } else {
                    Outcome::AllExact
                }
            }
        },
    }
}

/// The number of commits the index checkpoint covers.
fn checkpointed(ending: Ending, history: &History) -> usize {
    match ending {
        Ending::Closed => history.commits.len(),
        Ending::CrashedWithoutCheckpoint => 0,
        Ending::CrashedAfterCheckpoint => 31,
    }
}

fn assert_reads(store: &Store, expected: &BTreeMap<DocId, String>, case: &Case<'_>) {
    assert_eq!(store.len(), expected.len(), "{case}");
    for (id, text) in expected {
        let doc = store.get(*id).unwrap_or_else(|err| panic!("{case}: {err}"));
        assert_eq!(doc.as_deref(), Some(text.as_str()), "{case}: {id}");
    }
}

/// Recovers the damaged copy (pristine as damaged, before any open changed it) and checks
/// what came back.
fn check_recover(
    case: &Case<'_>,
    damaged: &Path,
    dest: &Path,
    range: (usize, usize),
    history: &History,
    places: &[Place],
) -> bool {
    let report =
        store_mmap::recover(damaged, dest).unwrap_or_else(|err| panic!("{case}: recover: {err}"));
    let store = Store::open(dest, options()).unwrap_or_else(|err| panic!("{case}: {err}"));
    let final_state = history.state_after(history.commits.len());
    let versions = history.versions();
    // Where each document's latest record (put or tombstone) lies.
    let mut latest: HashMap<DocId, &Place> = HashMap::new();
    for place in places {
        let newer = latest
            .get(&place.id)
            .is_none_or(|p| p.commit < place.commit);
        if newer {
            latest.insert(place.id, place);
        }
    }
    for (id, place) in &latest {
        let hit = place.segment == case.place.segment
            && place.offset < range.1
            && range.0 < place.offset + place.len;
        let got = store.get(*id).unwrap().map(|d| d.to_string());
        if hit {
            if let Some(text) = &got {
                assert!(
                    versions[id].contains(text),
                    "{case}: {id} came back with a text it never had"
                );
            }
        } else {
            let expected = match place.kind {
                RecordKind::Put => final_state.get(id).cloned(),
                _ => None,
            };
            assert_eq!(got, expected, "{case}: {id} outside the damage");
        }
    }
    report.is_complete()
}

#[test]
fn every_kind_of_damage_at_every_record_is_found_and_nothing_is_lost_silently() {
    let mut counts: BTreeMap<(Kind, Outcome), u64> = BTreeMap::new();
    let mut unchanged = 0u64;
    let mut recover_incomplete = 0u64;
    let mut cases = 0u64;
    for ending in [
        Ending::Closed,
        Ending::CrashedWithoutCheckpoint,
        Ending::CrashedAfterCheckpoint,
    ] {
        let (f, history) = base_store(ending);
        let base = f.path();
        let places = places(&base, &history);
        let checkpointed = checkpointed(ending, &history);
        let newest = places.last().unwrap().segment;
        let files = segment_files(&base);
        let root = tempfile::tempdir().unwrap();
        for (i, place) in places.iter().enumerate() {
            for kind in KINDS {
                let case = Case {
                    ending,
                    kind,
                    place,
                };
                // A page from elsewhere in the store: seven records on, in another segment
                // or the same one.
                let other = &places[(i + 7) % places.len()];
                let other_bytes = std::fs::read(&files[other.segment]).unwrap();
                let source =
                    &other_bytes[other.offset..(other.offset + PAGE).min(other_bytes.len())];

                let dir = root.path().join("case");
                copy_dir(&base, &dir);
                let segment: PathBuf = segment_files(&dir)[place.segment].clone();
                let mut bytes = std::fs::read(&segment).unwrap();
                let Some(range) = damage(kind, place, source, &mut bytes) else {
                    unchanged += 1;
                    std::fs::remove_dir_all(&dir).unwrap();
                    continue;
                };
                std::fs::write(&segment, &bytes).unwrap();
                // Erased from a commit boundary past the checkpoint to the end of the data.
                let tail_erased = places
                    .iter()
                    .find(|p| {
                        p.segment == newest && p.group_start == range.0 && p.offset == range.0
                    })
                    .filter(|p| {
                        place.segment == newest
                            && p.commit >= checkpointed
                            && bytes[range.0.min(bytes.len())..].iter().all(|&b| b == 0)
                    })
                    .map(|p| p.commit);
                let pristine = root.path().join("as-damaged");
                copy_dir(&dir, &pristine);

                cases += 1;
                let outcome = run_case(&case, &dir, &segment, &history, &places, tail_erased);
                *counts.entry((kind, outcome)).or_default() += 1;
                let dest = root.path().join("recovered");
                let complete = check_recover(&case, &pristine, &dest, range, &history, &places);
                assert_eq!(
                    complete,
                    outcome == Outcome::TailErasedAtCommitBoundary,
                    "{case}: recover's report"
                );
                if !complete {
                    recover_incomplete += 1;
                }
                for path in [&dir, &pristine, &dest] {
                    std::fs::remove_dir_all(path).unwrap();
                }
            }
        }
    }
    eprintln!(
        "corruption matrix: {cases} cases ({unchanged} damages changed no byte and were skipped)"
    );
    for ((kind, outcome), n) in &counts {
        eprintln!("  {kind:?}: {outcome:?} {n}");
    }
    eprintln!("  recover reported damage in {recover_incomplete} cases");
    assert!(cases > 1000, "{cases} cases");
    // Every outcome that needs damage to show itself did.
    for outcome in [
        Outcome::OpenRefused,
        Outcome::AllExact,
        Outcome::ReadsRefused,
        Outcome::TornGroupCut,
        Outcome::TailErasedAtCommitBoundary,
    ] {
        assert!(
            counts.keys().any(|(_, o)| *o == outcome),
            "no case ended {outcome:?}"
        );
    }
}

/// `recover` tells a torn tail, which an open cuts, from damage to committed data: a
/// damaged last record of a closed store, whose index checkpoint covers it, is damage; and
/// a torn tail in the newest segment leaves every other segment's damage in the report,
/// wherever in its file it lies.
#[test]
fn recover_tells_a_torn_tail_from_damage() {
    let root = tempfile::tempdir().unwrap();
    let recovered = |dir: &Path, case: &str| {
        let dest = root.path().join(format!("recovered {case}"));
        store_mmap::recover(dir, dest).unwrap_or_else(|err| panic!("{case}: {err}"))
    };
    let damaged = |dir: &Path, place: &Place, kind: Kind| {
        let segment = segment_files(dir)[place.segment].clone();
        let mut bytes = std::fs::read(&segment).unwrap();
        damage(kind, place, &[], &mut bytes).expect("a change");
        std::fs::write(&segment, bytes).unwrap();
        segment
    };

    let (f, history) = base_store(Ending::Closed);
    let records = places(&f.path(), &history);
    let last = records.last().unwrap();
    let segment = damaged(&f.path(), last, Kind::FlipTextBit);
    let report = recovered(&f.path(), "closed");
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(
        report.damage.iter().any(|problem| problem.path == segment),
        "{report:?}"
    );

    let (f, history) = base_store(Ending::CrashedWithoutCheckpoint);
    let records = places(&f.path(), &history);
    let last = records.last().unwrap();
    let newest = damaged(&f.path(), last, Kind::TruncateInsideRecord);
    let older = records
        .iter()
        .find(|place| place.segment < last.segment && place.offset > last.offset)
        .expect("a record of an older segment past the torn tail's offset");
    let older = damaged(&f.path(), older, Kind::FlipTextBit);
    let report = recovered(&f.path(), "crashed");
    assert!(
        report
            .torn_tail
            .as_ref()
            .is_some_and(|torn| torn.path == newest),
        "{report:?}"
    );
    assert!(
        report.damage.iter().any(|problem| problem.path == older),
        "{report:?}"
    );
}

/// `recover` names the document of a damaged record, and no other: by the record's header
/// where it still decodes, and by the index checkpoint's entry for that place where it does
/// not. The record after it, where the damaged range ends, is intact.
#[test]
fn recover_names_the_documents_of_damaged_records() {
    let (f, history) = base_store(Ending::Closed);
    let records = places(&f.path(), &history);
    let latest = |place: &Place| {
        records
            .iter()
            .filter(|other| other.id == place.id)
            .all(|other| other.commit <= place.commit)
    };
    // A document's latest record, a put in a sealed segment, followed by another
    // document's: the index points at both, and committed data follows them.
    let newest = records.last().unwrap().segment;
    let place = records
        .windows(2)
        .find(|pair| {
            let (place, next) = (&pair[0], &pair[1]);
            place.segment == next.segment
                && place.segment < newest
                && place.kind == RecordKind::Put
                && next.kind == RecordKind::Put
                && next.id != place.id
                && latest(place)
                && latest(next)
        })
        .map(|pair| &pair[0])
        .expect("two latest puts side by side in a sealed segment");
    let root = tempfile::tempdir().unwrap();
    for kind in [Kind::ZeroHeaderAtRecord, Kind::FlipTextBit] {
        let dir = root.path().join(format!("{kind:?}"));
        copy_dir(&f.path(), &dir);
        let segment = segment_files(&dir)[place.segment].clone();
        let mut bytes = std::fs::read(&segment).unwrap();
        damage(kind, place, &[], &mut bytes).expect("a change");
        std::fs::write(&segment, bytes).unwrap();
        let report = store_mmap::recover(&dir, root.path().join(format!("{kind:?} recovered")))
            .unwrap_or_else(|err| panic!("{kind:?}: {err}"));
        let named: Vec<_> = report
            .damaged_records
            .iter()
            .map(|record| (record.id, record.path.clone(), record.offset))
            .collect();
        assert_eq!(
            named,
            [(place.id, segment, place.offset as u64)],
            "{kind:?}"
        );
    }
}
