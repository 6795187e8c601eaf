//! Reading a store's files without opening it, for [`crate::verify_dir`] and
//! [`crate::recover()`]: on a store that will not open, that is damaged, or that lives on a
//! read-only file system.
//!
//! Nothing here changes a file. Segments are read with `read(2)` into memory rather than
//! mapped, so a file that another process truncates cannot fault this one. The shared lock
//! on `LOCK` (when the file exists) keeps a writer from opening the store while the files
//! are read, and makes this fail with [`Error::Locked`] while one has it open.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use store_format::{
    DocId, IndexEntry, Position, RecordKind, RetiredList, SEGMENT_HEADER_LEN, SegmentHeader,
    StoreMeta, decode_index,
};

use crate::error::{Error, Result};
use crate::layout::{
    INDEX_FILE, LOCK_FILE, META_FILE, RETIRED_FILE, UNFINISHED_SUFFIX, parse_segment_file_name,
    segment_file_name,
};
use crate::progress::Progress;
use crate::spans;
use crate::walk;
use crate::walk::Problem;

/// A store directory, read-locked, with its metadata and the segments an open would read.
pub(crate) struct StoreFiles {
    pub(crate) dir: PathBuf,
    /// Held while the files are read.
    _lock: Option<File>,
    /// The metadata, when it decodes.
    pub(crate) meta: Option<StoreMeta>,
    /// The segments an open would read, oldest first: not the outputs of an unfinished
    /// compaction, nor the inputs a finished one replaced.
    pub(crate) segments: Vec<(u32, PathBuf)>,
    /// Where the index checkpoint says committed data reaches, when the index decodes and
    /// belongs to the store: every byte before it was committed.
    pub(crate) checkpoint: Option<Position>,
    /// The index checkpoint's entries, when it decodes and belongs to the store.
    pub(crate) index_entries: Vec<IndexEntry>,
    /// What is wrong with the metadata or the retired-segment list.
    pub(crate) problems: Vec<Problem>,
}

impl StoreFiles {
    pub(crate) fn open(dir: &Path) -> Result<StoreFiles> {
        let meta_path = dir.join(META_FILE);
        if !dir.is_dir() || !meta_path.exists() {
            return Err(Error::NotAStore {
                path: dir.into(),
                reason: format!("it is not a directory holding a {META_FILE} file"),
            });
        }
        let lock = lock_shared(dir)?;
        let mut problems = Vec::new();
        let raw = std::fs::read(&meta_path).map_err(Error::io("read", &meta_path))?;
        let meta = match StoreMeta::decode(&raw) {
            Ok(meta) => Some(meta),
            Err(err) => {
                problems.push(Problem::whole_file(&meta_path, raw.len(), err.to_string()));
                None
            }
        };
        let retired = retired_segments(dir, &mut problems)?;
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
            let entry = entry.map_err(Error::io("list", dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(UNFINISHED_SUFFIX) {
                continue;
            }
            if let Some(id) = parse_segment_file_name(name)
                && !retired.contains(&id)
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let segments = ids
            .into_iter()
            .map(|id| (id, dir.join(segment_file_name(id))))
            .collect();
        let index = std::fs::read(dir.join(INDEX_FILE))
            .ok()
            .and_then(|raw| decode_index(&raw).ok())
            .filter(|(header, _)| meta.is_some_and(|m| m.store_uid == header.store_uid));
        let (checkpoint, index_entries) = match index {
            Some((header, entries)) => (Some(header.checkpoint), entries),
            None => (None, Vec::new()),
        };
        Ok(StoreFiles {
            dir: dir.to_path_buf(),
            _lock: lock,
            meta,
            segments,
            checkpoint,
            index_entries,
            problems,
        })
    }

    /// Reads one segment file whole, checking its header against the store.
    pub(crate) fn read_segment(&self, id: u32, path: &Path) -> Result<SegmentBytes> {
        let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
        let mut problems = Vec::new();
        let header_len = bytes.len().min(SEGMENT_HEADER_LEN);
        let header = SegmentHeader::decode(&bytes[..header_len]);
        match &header {
            Err(err) => problems.push(Problem::range(path, 0, header_len, err.to_string())),
            Ok(header) if header.segment_id != id => problems.push(Problem::range(
                path,
                12,
                16,
                format!(
                    "the segment header says id {}, the file name says {id}",
                    header.segment_id
                ),
            )),
            Ok(header) => {
                if let Some(meta) = &self.meta
                    && header.store_uid != meta.store_uid
                {
                    problems.push(Problem::range(
                        path,
                        16,
                        32,
                        format!(
                            "the segment belongs to store {:032x}, not this store {:032x}",
                            header.store_uid, meta.store_uid
                        ),
                    ));
                }
            }
        }
        Ok(SegmentBytes {
            sealed_before: header.ok().and_then(|h| h.sealed_before),
            bytes,
            problems,
        })
    }
}

/// A segment file read whole.
pub(crate) struct SegmentBytes {
    pub(crate) bytes: Vec<u8>,
    /// What its header records of its sealed predecessor, when the header is intact.
    pub(crate) sealed_before: Option<store_format::SealedSegment>,
    /// What is wrong with its header.
    pub(crate) problems: Vec<Problem>,
}

/// Takes the shared lock on `LOCK` when the file exists. The file is opened read-only, so a
/// store on a read-only file system can be read.
fn lock_shared(dir: &Path) -> Result<Option<File>> {
    let path = dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("open lock file", &path)(err)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
        Err(std::fs::TryLockError::Error(err)) => Err(Error::io("lock", &path)(err)),
    }
}

/// The segments a finished compaction replaced, which an open removes before reading.
fn retired_segments(dir: &Path, problems: &mut Vec<Problem>) -> Result<HashSet<u32>> {
    let path = dir.join(RETIRED_FILE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(err) => return Err(Error::io("read", &path)(err)),
    };
    match RetiredList::decode(&raw) {
        Ok(list) => Ok(list.segments.into_iter().collect()),
        Err(err) => {
            problems.push(Problem::whole_file(&path, raw.len(), err.to_string()));
            Ok(HashSet::new())
        }
    }
}

/// The latest intact record of a document, as the walk of every segment found it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latest {
    pub(crate) seq: u64,
    pub(crate) segment: u32,
    pub(crate) offset: u32,
    pub(crate) kind: RecordKind,
}

/// A record inside a damaged range, named by its header where it still decodes or by the
/// index checkpoint's entry for it: probably a version of its document that is lost. A
/// header may itself be damaged, so this is a lead, not a fact.
#[derive(Debug, Clone)]
pub(crate) struct DamagedHeader {
    pub(crate) path: PathBuf,
    pub(crate) offset: u64,
    pub(crate) id: DocId,
    pub(crate) seq: u64,
    pub(crate) kind: RecordKind,
}

/// What walking every segment of a store found.
#[derive(Default)]
pub(crate) struct Salvage {
    pub(crate) segments: u64,
    pub(crate) records_ok: u64,
    /// Each document's latest intact record, tombstones included, wherever it lies: in the
    /// torn final group of the newest segment too, which an open would cut.
    pub(crate) latest: HashMap<DocId, Latest, foldhash::fast::RandomState>,
    /// Every intact put, by place, for checking the index file against the data.
    pub(crate) puts: HashMap<(u32, u32), (DocId, u64), foldhash::fast::RandomState>,
    pub(crate) damaged_headers: Vec<DamagedHeader>,
    /// Damage and other problems, in file order.
    pub(crate) problems: Vec<Problem>,
    /// The incomplete final group of the newest segment, when no committed data follows it:
    /// what an open would cut as a torn write.
    pub(crate) torn_tail: Option<Problem>,
    /// Intact records of that group.
    pub(crate) torn_records: u64,
    /// Intact records of batches that spanned segments and never completed: never
    /// acknowledged, so not part of any document's history.
    pub(crate) abandoned_records: u64,
}

/// Walks every segment of `files` once.
pub(crate) fn salvage(files: &StoreFiles, progress: &dyn Progress) -> Result<Salvage> {
    let mut out = Salvage::default();
    let newest = files.segments.last().map(|(id, _)| *id);
    let mut lens = Vec::new();
    let mut groups = Vec::new();
    let mut intact = Vec::new();
    for (id, path) in &files.segments {
        let (id, is_last) = (*id, Some(*id) == newest);
        let SegmentBytes {
            bytes,
            sealed_before,
            problems,
        } = files.read_segment(id, path)?;
        progress.advance(bytes.len() as u64);
        out.segments += 1;
        out.problems.extend(problems);
        lens.push(walk::SegmentLen {
            id,
            path,
            file_len: bytes.len() as u64,
            sealed_before,
        });
        let floor = sealed_before.map_or(0, |sealed| sealed.last_seq);
        let earlier_life = is_last && sealed_before.is_some_and(|sealed| sealed.reuses_file);
        let scan = walk::scan(
            &bytes,
            SEGMENT_HEADER_LEN.min(bytes.len()),
            floor,
            earlier_life,
        );
        out.problems.extend(walk::problems(path, &scan, !is_last));
        for damage in &scan.damage {
            out.damaged_headers
                .extend(damage.headers.iter().map(|(offset, header)| DamagedHeader {
                    path: path.clone(),
                    offset: *offset as u64,
                    id: header.id,
                    seq: header.seq,
                    kind: header.kind,
                }));
        }
        // Every byte before the checkpoint was committed: there, zeros and cuts are damage.
        let committed_end = files
            .checkpoint
            .filter(|cp| cp.segment == id)
            .map(|cp| cp.offset as usize);
        if let Some(committed_end) = committed_end {
            let data_end = scan.unwritten_from.unwrap_or(bytes.len());
            if data_end < committed_end {
                let what = match scan.unwritten_from {
                    Some(_) => "zero bytes where the index checkpoint records committed data",
                    None => {
                        "the segment was cut short: the index checkpoint records committed data up to here"
                    }
                };
                out.problems
                    .push(Problem::range(path, data_end, committed_end, what));
            }
        }
        let torn_from = match (is_last, scan.is_clean(), &scan.committed_after) {
            (true, false, None) if committed_end.is_none_or(|end| scan.clean_end >= end) => {
                Some(scan.clean_end)
            }
            _ => None,
        };
        if let Some(from) = torn_from {
            let range = scan.broken_range();
            out.torn_records = scan.records_after_clean_end() as u64;
            out.torn_tail = Some(Problem::range(
                path,
                range.start,
                range.end,
                format!(
                    "the final commit group is incomplete ({}): a write that never completed, or damage to the last commit; \
                     opening the store cuts it",
                    scan.broken_reason()
                ),
            ));
            // Its damage is reported as the torn tail, once.
            out.problems
                .retain(|p| p.path != *path || (p.offset as usize) < from);
        }
        groups.push(spans::SegmentGroups::of(
            id,
            path,
            sealed_before.map(|sealed| sealed.segment_id),
            SEGMENT_HEADER_LEN,
            &scan,
            scan.len,
        ));
        for scanned in &scan.records {
            out.records_ok += 1;
            let header = scanned.header();
            let offset = u32::try_from(scanned.offset).expect("segment offsets are 32-bit");
            if header.kind == RecordKind::Put {
                out.puts.insert((id, offset), (header.id, header.seq));
            }
            intact.push((
                header.id,
                Latest {
                    seq: header.seq,
                    segment: id,
                    offset,
                    kind: header.kind,
                },
            ));
        }
    }
    out.problems.extend(walk::sealed_length_problems(&lens));
    let resolved = spans::resolve(&groups);
    out.problems.extend(resolved.problems.iter().cloned());
    for (id, record) in intact {
        if resolved.is_abandoned(record.segment, record.offset as usize) {
            out.abandoned_records += 1;
            continue;
        }
        let newer = out
            .latest
            .get(&id)
            .is_none_or(|latest| latest.seq < record.seq);
        if newer {
            out.latest.insert(id, record);
        }
    }
    // The index names the documents whose latest records lay in damaged ranges, where no
    // header may have survived to say.
    for entry in &files.index_entries {
        let Some((_, path)) = files
            .segments
            .iter()
            .find(|(id, _)| *id == entry.position.segment)
        else {
            continue;
        };
        let offset = u64::from(entry.position.offset);
        let damaged = out
            .problems
            .iter()
            .any(|p| p.path == *path && p.offset <= offset && offset < p.end);
        let named = out
            .damaged_headers
            .iter()
            .any(|h| h.id == entry.id && h.seq == entry.seq);
        if damaged && !named {
            out.damaged_headers.push(DamagedHeader {
                path: path.clone(),
                offset,
                id: entry.id,
                seq: entry.seq,
                kind: RecordKind::Put,
            });
        }
    }
    Ok(out)
}
