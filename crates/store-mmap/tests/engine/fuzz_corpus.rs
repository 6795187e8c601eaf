//! The fuzz targets' checks, run over the committed corpus in `fuzz/corpus/` (the seeds
//! and every input a fuzzing run found worth keeping), so that CI replays them without
//! libFuzzer. The seeds are valid encodings built here; a format change that makes them
//! stale fails `seed_corpus_is_current`, and `TEXTSTORE_BLESS_SEEDS=1` rewrites them.

#[allow(
    unreachable_pub,
    reason = "the file is the public API of the fuzz crate"
)]
#[path = "../../../../fuzz/src/format.rs"]
mod format;
#[allow(
    unreachable_pub,
    reason = "the file is the public API of the fuzz crate"
)]
#[path = "../../../../fuzz/src/open.rs"]
mod open;

use std::path::{Path, PathBuf};

use store_format::{
    BatchOp, DocId, IndexEntry, Position, SEGMENT_HEADER_LEN, SegmentHeader, StoreMeta,
    encode_index, encode_ops, record_len,
};

type Check = fn(&[u8]);

/// Every fuzz target and its check.
const TARGETS: [(&str, Check); 7] = [
    ("decode_record", format::record),
    ("decode_segment_header", format::segment_header),
    ("decode_meta", format::meta),
    ("decode_index", format::index),
    ("parse_id", format::id_text),
    ("resolve_range", format::text_range),
    ("open_store", open::open_store),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

const UID: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;

const FIRST_TEXT: &str = "first document\nsecond line\n";
const SECOND_TEXT: &str = "naïve résumé, 日本語";

/// A commit group of three puts and a delete, as the engine writes it, at offset 0.
fn commit_group() -> Vec<u8> {
    let ops = [
        BatchOp::Put {
            id: DocId::from(1u64),
            text: FIRST_TEXT,
        },
        BatchOp::Put {
            id: DocId::from(2u64),
            text: SECOND_TEXT,
        },
        BatchOp::Put {
            id: DocId::from(3u64),
            text: "",
        },
        BatchOp::Delete {
            id: DocId::from(3u64),
        },
    ];
    let mut out = Vec::new();
    encode_ops(ops.into_iter(), 1, &mut out, Some(0));
    out
}

/// A store of one segment holding [`commit_group`], with and without its index file.
fn store_files(with_index: bool) -> Vec<u8> {
    let meta = StoreMeta {
        store_uid: UID,
        max_document_bytes: 4096,
        segment_capacity: 65536,
        change_floor: Some(0),
    }
    .encode();
    let mut segment = SegmentHeader {
        segment_id: 1,
        store_uid: UID,
        capacity: 65536,
        sealed_before: None,
    }
    .encode()
    .to_vec();
    let group = commit_group();
    segment.extend_from_slice(&group);
    let index = if with_index {
        let second = record_len(FIRST_TEXT.len() as u32) as u32;
        let entries = [
            (1u64, 0, FIRST_TEXT.len() as u32),
            (2, second, SECOND_TEXT.len() as u32),
        ]
        .map(|(id, offset, len)| IndexEntry {
            id: DocId::from(id),
            seq: id,
            position: Position {
                segment: 1,
                offset: SEGMENT_HEADER_LEN as u32 + offset,
            },
            text_len: len,
        });
        let end = Position {
            segment: 1,
            offset: segment.len() as u32,
        };
        let checkpoint = store_format::IndexCheckpoint {
            store_uid: UID,
            checkpoint: end,
            last_seq: 4,
            hash_seed: 7,
        };
        encode_index(checkpoint, entries.into_iter())
    } else {
        Vec::new()
    };
    open::Files {
        meta: &meta,
        index: &index,
        segment: &segment,
    }
    .join()
}

fn range_seed(unit: u8, start: u64, end: u64, text: &str) -> Vec<u8> {
    let mut seed = vec![unit];
    seed.extend_from_slice(&start.to_le_bytes());
    seed.extend_from_slice(&end.to_le_bytes());
    seed.extend_from_slice(text.as_bytes());
    seed
}

/// The seeds of each target, by file name.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let group = commit_group();
    let mut at_second = (record_len(FIRST_TEXT.len() as u32) as u16)
        .to_le_bytes()
        .to_vec();
    at_second.extend_from_slice(&group);
    let mut at_first = vec![0, 0];
    at_first.extend_from_slice(&group);
    let id = DocId::from_key("guides/intro.md");
    let text = "one\ntwo ü\nthree 日本\n";
    vec![
        ("decode_record", "seed-first", at_first),
        ("decode_record", "seed-second", at_second),
        (
            "decode_segment_header",
            "seed",
            SegmentHeader {
                segment_id: 7,
                store_uid: UID,
                capacity: 1 << 20,
                sealed_before: Some(store_format::SealedSegment {
                    segment_id: 6,
                    len_bytes: 4096,
                    last_seq: 300,
                    commit_continues: false,
                    reuses_file: false,
                }),
            }
            .encode()
            .to_vec(),
        ),
        (
            "decode_meta",
            "seed",
            StoreMeta {
                store_uid: UID,
                max_document_bytes: 1 << 20,
                segment_capacity: 1 << 24,
                change_floor: Some(0),
            }
            .encode()
            .to_vec(),
        ),
        ("decode_index", "seed", {
            let files = store_files(true);
            open::Files::split(&files).unwrap().index.to_vec()
        }),
        ("parse_id", "seed-ulid", id.to_ulid_string().into_bytes()),
        ("parse_id", "seed-display", id.to_string().into_bytes()),
        ("parse_id", "seed-decimal", b"18446744073709551617".to_vec()),
        ("resolve_range", "seed-bytes", range_seed(0, 4, 9, text)),
        ("resolve_range", "seed-chars", range_seed(1, 2, 12, text)),
        ("resolve_range", "seed-lines", range_seed(2, 2, 3, text)),
        ("open_store", "seed-indexed", store_files(true)),
        ("open_store", "seed-replayed", store_files(false)),
    ]
}

#[test]
fn seed_corpus_is_current() {
    let bless = std::env::var_os("TEXTSTORE_BLESS_SEEDS").is_some();
    for (target, name, seed) in seeds() {
        let path = corpus_dir(target).join(name);
        if bless {
            std::fs::create_dir_all(corpus_dir(target)).unwrap();
            std::fs::write(&path, &seed).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "{}: {err} (TEXTSTORE_BLESS_SEEDS=1 writes it)",
                path.display()
            )
        });
        assert!(
            committed == seed,
            "{} is stale (TEXTSTORE_BLESS_SEEDS=1 rewrites it)",
            path.display()
        );
    }
}

#[test]
fn seeds_are_accepted_by_their_decoders() {
    // A seed that its decoder refuses would start the fuzzer from nothing.
    let files = store_files(true);
    let files = open::Files::split(&files).unwrap();
    assert!(StoreMeta::decode(files.meta).is_ok());
    assert!(store_format::decode_index(files.index).is_ok());
    assert!(SegmentHeader::decode(files.segment).is_ok());
    let second = record_len(FIRST_TEXT.len() as u32) as usize;
    assert!(store_format::decode_record(&commit_group(), second).is_ok());
    let dir = tempfile::tempdir().unwrap();
    files.write(dir.path());
    let store = store_mmap::Store::open(dir.path(), store_mmap::StoreOptions::new()).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(
        &*store.get(DocId::from(2u64)).unwrap().unwrap(),
        SECOND_TEXT
    );
}

#[test]
fn corpus_replays_cleanly() {
    for (target, check) in TARGETS {
        let dir = corpus_dir(target);
        let mut inputs = 0;
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                panic!("{target}: {} fails its check", path.display());
            }
            inputs += 1;
        }
        assert!(inputs > 0, "{target} has no corpus in {}", dir.display());
    }
}
