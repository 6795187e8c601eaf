//! Copying every intact record of a damaged store into a new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use store_format::{BatchOp, DocId, RecordKind, decode_record};

use crate::error::{Error, Result};
use crate::offline::{StoreFiles, salvage};
use crate::options::{
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_SEGMENT_CAPACITY, Durability, StoreOptions,
};
use crate::progress::{Progress, file_bytes};
use crate::store::Store;
use crate::walk::Problem;

/// Text bytes gathered into one commit of the new store.
const COMMIT_BYTES: usize = 8 << 20;

/// What [`recover`] found and copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoverReport {
    /// Segment files read.
    pub segments: u64,
    /// Intact records found (checksum and UTF-8 verified).
    pub records_intact: u64,
    /// Live documents written into the new store: each at its latest intact version.
    pub documents: u64,
    /// Their text, in bytes.
    pub text_bytes: u64,
    /// Documents whose latest intact record is a tombstone, and so are not copied.
    pub deleted: u64,
    /// Every damaged byte range and every file that failed its checks, in file order.
    pub damage: Vec<Problem>,
    /// The incomplete final commit group of the newest segment, when nothing committed
    /// follows it: a torn write, or damage to the last commit (the two look the same). An
    /// open would cut it; recover copies its intact records like any others, so a batch
    /// that never completed may come back in part.
    pub torn_tail: Option<Problem>,
    /// Intact records in that group, copied.
    pub torn_records: u64,
    /// Intact records of batches that spanned segments and were cut short before their last
    /// part: never acknowledged, and not copied, as an open would not apply them.
    pub abandoned_records: u64,
    /// Records inside damaged ranges that a surviving header or the index checkpoint names:
    /// versions that are probably lost, with what came back of their documents instead.
    pub damaged_records: Vec<DamagedRecord>,
}

impl RecoverReport {
    /// True when nothing was damaged: every committed record was copied.
    pub fn is_complete(&self) -> bool {
        self.damage.is_empty() && self.torn_tail.is_none()
    }

    /// The damaged records whose document came back at an older version.
    pub fn older_versions(&self) -> impl Iterator<Item = &DamagedRecord> {
        self.damaged_records
            .iter()
            .filter(|r| r.recovered_seq.is_some_and(|seq| seq < r.seq))
    }

    /// The damaged records whose document has no intact version at all.
    pub fn lost(&self) -> impl Iterator<Item = &DamagedRecord> {
        self.damaged_records
            .iter()
            .filter(|r| r.recovered_seq.is_none())
    }
}

/// A record found in a damaged range, by its surviving header or by the index checkpoint's
/// entry pointing there. A header may be damaged too (the checksum covers it), so its
/// fields are leads, not facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRecord {
    /// The document, as the header says.
    pub id: DocId,
    /// The version's sequence number, as the header says.
    pub seq: u64,
    /// Whether the record was a tombstone (a delete) rather than a put.
    pub tombstone: bool,
    /// The segment file.
    pub path: PathBuf,
    /// Where the record starts.
    pub offset: u64,
    /// The sequence number of the document's latest intact record (a put or a tombstone),
    /// which is what the new store holds; `None` when no version of it is intact. Above
    /// `seq`, nothing was lost: a newer version supersedes the damaged one.
    pub recovered_seq: Option<u64>,
}

/// Reads the store in `src` without changing a byte of it, and writes every document's latest
/// intact version into a new store at `dest` (absent or empty), with the same size limits.
///
/// Every segment is walked record by record; at damage the walk resynchronises on the next
/// offset where a record decodes with a valid checksum, so one bad record costs only itself.
/// Every intact record counts, those of commit groups that damage broke included (each is
/// intact on its own), and those of the incomplete final group of the newest segment, which
/// an open would cut as a torn write: so a batch that damage or a crash cut short may come
/// back in part. The report lists each damaged range, the documents whose latest version may
/// be lost, and what came back of them.
///
/// The new store's sequence numbers start afresh; documents keep their ids. Fails with
/// [`Error::Locked`] while a writer has `src` open, and with [`Error::AlreadyExists`] when
/// `dest` holds anything.
pub fn recover(src: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<RecoverReport> {
    recover_with(src, dest, &())
}

/// [`recover`], telling `progress` the bytes of segment files it read: each is read twice,
/// once to find what is intact and once to copy it.
pub fn recover_with(
    src: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    progress: &dyn Progress,
) -> Result<RecoverReport> {
    let files = StoreFiles::open(src.as_ref())?;
    progress.start(2 * file_bytes(files.segments.iter().map(|(_, path)| path.as_path())));
    let found = salvage(&files, progress)?;
    let (max_document_bytes, segment_capacity) = files.meta.as_ref().map_or(
        (DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_SEGMENT_CAPACITY),
        |meta| (meta.max_document_bytes, meta.segment_capacity),
    );
    let mut store = Store::create(
        dest,
        StoreOptions::new()
            .max_document_bytes(max_document_bytes)
            .segment_capacity(segment_capacity)
            .durability(Durability::WriteBack),
    )?;

    let mut report = RecoverReport {
        segments: found.segments,
        records_intact: found.records_ok,
        damage: files.problems.clone(),
        torn_tail: found.torn_tail.clone(),
        torn_records: found.torn_records,
        abandoned_records: found.abandoned_records,
        ..RecoverReport::default()
    };
    report.damage.extend(found.problems.iter().cloned());

    // The latest puts, segment by segment in file order. Each file is read a second time
    // here, one at a time, so that memory holds one segment rather than the whole store.
    let mut wanted: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for latest in found.latest.values() {
        match latest.kind {
            RecordKind::Put => wanted
                .entry(latest.segment)
                .or_default()
                .push(latest.offset),
            _ => report.deleted += 1,
        }
    }
    for (id, path) in &files.segments {
        let Some(offsets) = wanted.get_mut(id) else {
            progress.advance(file_bytes(std::iter::once(path.as_path())));
            continue;
        };
        offsets.sort_unstable();
        let bytes = files.read_segment(*id, path)?.bytes;
        progress.advance(bytes.len() as u64);
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for &offset in offsets.iter() {
            let record = decode_record(&bytes, offset as usize)
                .map_err(|err| Error::format(path, 0, &err))?;
            let text = std::str::from_utf8(record.payload).map_err(|err| {
                Error::corrupt(
                    path,
                    u64::from(offset) + err.valid_up_to() as u64,
                    "the text changed while it was read: another process writes the store",
                )
            })?;
            report.documents += 1;
            report.text_bytes += text.len() as u64;
            batch_bytes += text.len();
            batch.push(BatchOp::Put {
                id: record.header.id,
                text,
            });
            if batch_bytes >= COMMIT_BYTES {
                store.commit_ops(std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        store.commit_ops(batch)?;
    }
    store.sync()?;
    store.close()?;

    report.damaged_records = found
        .damaged_headers
        .iter()
        .map(|damaged| DamagedRecord {
            id: damaged.id,
            seq: damaged.seq,
            tombstone: damaged.kind == RecordKind::Tombstone,
            path: damaged.path.clone(),
            offset: damaged.offset,
            recovered_seq: found.latest.get(&damaged.id).map(|latest| latest.seq),
        })
        .collect();
    Ok(report)
}
