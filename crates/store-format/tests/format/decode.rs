use proptest::prelude::*;
use store_format::{
    BatchOp, DocId, FormatError, GroupEnd, INDEX_ENTRY_LEN, INDEX_HEADER_LEN, INDEX_LAYOUT_VERSION,
    INDEX_PAGE_LEN, IndexCheckpoint, IndexEntry, IndexHeader, MAX_LOAD_PERCENT, Position,
    RECORD_ALIGN, RECORD_HEADER_LEN, RETIRED_HEADER_LEN, RecordKind, RetiredList, SLOTS_PER_PAGE,
    SealedSegment, SegmentHeader, StoreMeta, Structure, WriteBatch, check_index_page, decode_index,
    decode_record, decode_record_header, encode_index, encode_record, encode_record_header,
    index_lookup, index_page_entries, index_slot_count, open_index, padding_len, record_len,
};

fn one_record(kind: RecordKind, id: u128, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let group_len = record_len(payload.len() as u32) as u32;
    encode_record(
        &mut out,
        kind,
        DocId::from_u128(id),
        seq,
        payload,
        Some(group_len),
    );
    out
}

#[test]
fn record_layout_is_aligned_and_sized() {
    for len in 0..40u32 {
        let payload = vec![b'x'; len as usize];
        let buf = one_record(RecordKind::Put, 1, 1, &payload);
        assert_eq!(buf.len() as u64, record_len(len));
        assert_eq!(buf.len() % RECORD_ALIGN, 0);
        assert!(buf.len() >= RECORD_HEADER_LEN + len as usize);
    }
}

#[test]
fn record_errors_name_the_failure_and_offset() {
    let mut segment = vec![0u8; 16];
    segment.extend(one_record(RecordKind::Put, 7, 9, b"hello"));
    let ok = decode_record(&segment, 16).unwrap();
    assert_eq!(ok.payload, b"hello");
    assert_eq!(ok.header.id, DocId::from_u128(7));
    assert_eq!(ok.header.seq, 9);
    assert!(ok.header.commit);

    // A flipped payload byte: checksum mismatch at the record's offset.
    let mut flipped = segment.clone();
    flipped[16 + RECORD_HEADER_LEN + 1] ^= 0x20;
    assert!(matches!(
        decode_record(&flipped, 16),
        Err(FormatError::ChecksumMismatch {
            what: Structure::Record,
            offset: 16,
            ..
        })
    ));

    // Bad magic.
    let mut bad_magic = segment.clone();
    bad_magic[16] = b'Z';
    assert!(matches!(
        decode_record(&bad_magic, 16),
        Err(FormatError::BadMagic { offset: 16, .. })
    ));

    // Payload cut short.
    let cut = &segment[..16 + RECORD_HEADER_LEN + 2];
    assert!(matches!(
        decode_record(cut, 16),
        Err(FormatError::Truncated { offset: 16, needed, available: 50, .. }) if needed == record_len(5)
    ));

    // Padding that is not zeros: the checksum does not cover it, the decoder checks it.
    let mut bad_padding = segment.clone();
    let last = 16 + record_len(5) as usize - 1;
    bad_padding[last] = 0x3b;
    assert!(matches!(
        decode_record(&bad_padding, 16),
        Err(FormatError::InvalidField {
            offset: 16,
            field: "padding",
            value: 0x3b,
            ..
        })
    ));

    // Unknown kind.
    let mut bad_kind = segment.clone();
    bad_kind[16 + 4] = 9;
    assert!(matches!(
        decode_record(&bad_kind, 16),
        Err(FormatError::InvalidField {
            field: "kind",
            value: 9,
            ..
        })
    ));
}

#[test]
fn span_flags_round_trip_on_commit_records_only() {
    for (next, prev) in [(true, false), (true, true), (false, true)] {
        let end = GroupEnd {
            len_bytes: record_len(5) as u32,
            continues_in_next: next,
            continues_from_prev: prev,
        };
        let mut buf =
            encode_record_header(RecordKind::Put, DocId::from_u128(9), 3, b"hello", Some(end))
                .to_vec();
        buf.extend_from_slice(b"hello");
        buf.resize(buf.len() + padding_len(5), 0);
        assert_eq!(buf.len() as u64, record_len(5));
        let rec = decode_record(&buf, 0).unwrap();
        assert_eq!(rec.header.group_end(), Some(end));
        assert_eq!(rec.payload, b"hello");
    }
    // A span flag on a record that ends no group is damage, even under a valid checksum.
    let mut buf = one_record(RecordKind::Put, 1, 1, b"abc");
    let mut plain = Vec::new();
    encode_record(
        &mut plain,
        RecordKind::Put,
        DocId::from_u128(1),
        1,
        b"abc",
        None,
    );
    plain[5] = 0b10;
    reseal_record(&mut plain);
    let err = decode_record(&plain, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::InvalidField {
                field: "flags",
                value: 2,
                ..
            }
        ),
        "{err}"
    );
    // An unknown flag is damage too.
    buf[5] |= 0b1000;
    assert!(decode_record(&buf, 0).is_err());
}

/// A header whose fields contradict each other is damage even under a valid checksum, and
/// the header-only decode that recovery's walk uses refuses it the same way as the full one.
#[test]
fn record_headers_with_a_bad_field_are_refused_by_name() {
    let own = record_len(5) as u32;
    // Each case: the field the decoders must name, the record's group length (`None`: it
    // ends no group), and the bytes to set in the header.
    type Patch = &'static [(usize, u8)];
    let cases: [(&str, Option<u32>, Patch); 8] = [
        ("reserved bytes", Some(own), &[(6, 1)]),
        ("reserved bytes", Some(own), &[(7, 0x80)]),
        ("reserved bytes", Some(own), &[(44, 1)]),
        ("reserved bytes", Some(own), &[(47, 0x80)]),
        ("flags", Some(own), &[(5, 0b1001)]),
        // A group must hold its own record and end on a record boundary.
        ("group length", Some(own + 4), &[]),
        ("group length", Some(own - RECORD_ALIGN as u32), &[]),
        // A record that ends no group carries no group length.
        ("group length", None, &[(40, RECORD_ALIGN as u8)]),
    ];
    for (field, group_len, bytes) in cases {
        let mut segment = vec![0u8; 64];
        encode_record(
            &mut segment,
            RecordKind::Put,
            DocId::from_u128(4),
            8,
            b"hello",
            group_len,
        );
        for &(at, value) in bytes {
            segment[64 + at] = value;
        }
        reseal_record(&mut segment[64..]);
        let refused = |err: &FormatError| matches!(err, FormatError::InvalidField { offset: 64, field: f, .. } if *f == field);
        let full = decode_record(&segment, 64).unwrap_err();
        assert!(refused(&full), "{field} {bytes:?}: {full}");
        assert_eq!(
            full.offset(),
            64,
            "the record's place, whatever the failure"
        );
        let header = decode_record_header(&segment, 64).unwrap_err();
        assert!(refused(&header), "{field} {bytes:?}: {header}");
    }
}

/// Writes `record`'s checksum again after a test changed it on purpose.
fn reseal_record(record: &mut [u8]) {
    let crc = bitwise_record_crc(record);
    record[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// The record checksum over bytes 0..12, 16..48 and the payload, computed bit by bit.
fn bitwise_record_crc(record: &[u8]) -> u32 {
    let len = u32::from_le_bytes(record[8..12].try_into().unwrap()) as usize;
    let mut covered = record[..12].to_vec();
    covered.extend_from_slice(&record[16..RECORD_HEADER_LEN + len]);
    bitwise_crc32c(&covered)
}

#[test]
fn tombstones_carry_no_payload() {
    let buf = one_record(RecordKind::Tombstone, 3, 4, b"");
    let rec = decode_record(&buf, 0).unwrap();
    assert_eq!(rec.header.kind, RecordKind::Tombstone);
    assert!(rec.payload.is_empty());
}

#[test]
fn batch_encoding_marks_only_the_last_record_as_commit() {
    let mut batch = WriteBatch::new();
    batch
        .put(DocId::from(1u64), "one")
        .delete(DocId::from(2u64))
        .put(DocId::from(3u64), "");
    // A group that already holds 8 bytes of another batch, after 8 bytes of an earlier
    // group: the commit record counts the group from where it began.
    let mut out = vec![0u8; 16];
    batch.encode(100, &mut out, Some(8));
    assert_eq!(out.len() as u64, 16 + batch.encoded_len());
    let mut offset = 16;
    let mut seen = Vec::new();
    while offset < out.len() {
        let rec = decode_record(&out, offset).unwrap();
        seen.push((
            rec.header.seq,
            rec.header.kind,
            rec.header.commit,
            rec.header.group_len,
        ));
        offset += rec.header.record_len() as usize;
    }
    let group = out.len() as u32 - 8;
    assert_eq!(
        seen,
        vec![
            (100, RecordKind::Put, false, 0),
            (101, RecordKind::Tombstone, false, 0),
            (102, RecordKind::Put, true, group)
        ]
    );
}

/// What a batch reports of itself: its operations in order, its text, and the memory it
/// keeps across a `clear` for reuse.
#[test]
fn a_batch_counts_its_operations_text_and_memory() {
    let mut batch = WriteBatch::with_capacity(4, 64);
    assert!(batch.is_empty());
    assert_eq!((batch.len(), batch.text_bytes()), (0, 0));
    let reserved = batch.capacity_bytes();
    // The text's 64 bytes and four operations of at least an id each, and no more than
    // twice what the two allocations could round up to.
    assert!(
        (64 + 4 * size_of::<u128>()..=2 * (64 + 4 * 64)).contains(&reserved),
        "{reserved}"
    );
    batch
        .put(DocId::from(1u64), "alpha")
        .delete(DocId::from(2u64))
        .put(DocId::from(3u64), "γράμμα");
    assert!(!batch.is_empty());
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.text_bytes(), "alpha".len() + "γράμμα".len());
    assert_eq!(
        batch.capacity_bytes(),
        reserved,
        "filled within its capacity"
    );
    let ops: Vec<_> = batch.iter().map(|op| (op.id(), op)).collect();
    assert_eq!(
        ops,
        [
            (
                DocId::from(1u64),
                BatchOp::Put {
                    id: DocId::from(1u64),
                    text: "alpha"
                }
            ),
            (
                DocId::from(2u64),
                BatchOp::Delete {
                    id: DocId::from(2u64)
                }
            ),
            (
                DocId::from(3u64),
                BatchOp::Put {
                    id: DocId::from(3u64),
                    text: "γράμμα"
                }
            ),
        ]
    );
    assert_eq!(
        batch.encoded_len(),
        record_len(5) + record_len(0) + record_len("γράμμα".len() as u32)
    );
    batch.clear();
    assert!(batch.is_empty());
    assert_eq!((batch.len(), batch.text_bytes()), (0, 0));
    assert_eq!(batch.capacity_bytes(), reserved, "clear keeps the capacity");
    assert_eq!(batch.iter().count(), 0);
}

#[test]
fn headers_reject_other_versions_and_corruption() {
    let header = SegmentHeader {
        segment_id: 5,
        store_uid: 77,
        capacity: 1 << 20,
        sealed_before: Some(SealedSegment {
            segment_id: 4,
            len_bytes: 123_456,
            last_seq: 9_876,
            commit_continues: false,
            reuses_file: false,
        }),
    };
    let buf = header.encode();
    assert_eq!(SegmentHeader::decode(&buf).unwrap(), header);

    let with_version = |version: u8, buf: &[u8; 64]| {
        let mut out = *buf;
        out[8] = version;
        // Recompute the checksum so that the version check, not the checksum, decides.
        let crc = bitwise_crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    };
    assert!(matches!(
        SegmentHeader::decode(&with_version(7, &buf)),
        Err(FormatError::UnsupportedVersion {
            found: 7,
            supported: 6,
            ..
        })
    ));
    // Version 1 wrote zeros where version 2 records the sealed predecessor.
    let first = SegmentHeader {
        sealed_before: None,
        ..header
    };
    assert_eq!(
        SegmentHeader::decode(&with_version(1, &first.encode())).unwrap(),
        first
    );
    let mut half = with_version(2, &first.encode());
    half[40] = 1;
    let crc = bitwise_crc32c(&half[..60]);
    half[60..64].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        SegmentHeader::decode(&half),
        Err(FormatError::InvalidField {
            field: "sealed predecessor",
            ..
        })
    ));

    // Version 3 records whether a commit goes on from the predecessor; only bit 0 is known,
    // and only with a predecessor.
    let continuing = SegmentHeader {
        sealed_before: header.sealed_before.map(|sealed| SealedSegment {
            commit_continues: true,
            ..sealed
        }),
        ..header
    };
    let encoded = continuing.encode();
    assert_eq!(encoded[52], 1);
    assert_eq!(SegmentHeader::decode(&encoded).unwrap(), continuing);
    // Version 6 records whether the file held an earlier segment: bit 1, which version 5
    // did not know.
    let reusing = SegmentHeader {
        sealed_before: continuing.sealed_before.map(|sealed| SealedSegment {
            reuses_file: true,
            ..sealed
        }),
        ..header
    };
    let reusing_encoded = reusing.encode();
    assert_eq!(reusing_encoded[52], 0b11);
    assert_eq!(SegmentHeader::decode(&reusing_encoded).unwrap(), reusing);
    for (base, flags, field) in [
        (&encoded, 4u8, "flags"),
        (&with_version(5, &encoded), 2u8, "flags"),
        (&first.encode(), 1u8, "sealed predecessor"),
    ] {
        let mut bad = *base;
        bad[52] = flags;
        let crc = bitwise_crc32c(&bad[..60]);
        bad[60..64].copy_from_slice(&crc.to_le_bytes());
        let err = SegmentHeader::decode(&bad).unwrap_err();
        assert!(
            matches!(err, FormatError::InvalidField { field: f, .. } if f == field),
            "{err}"
        );
    }

    // A segment holds at least its header.
    let smallest = SegmentHeader {
        capacity: 64,
        ..header
    };
    assert_eq!(SegmentHeader::decode(&smallest.encode()), Ok(smallest));
    let too_small = SegmentHeader {
        capacity: 63,
        ..header
    };
    assert!(matches!(
        SegmentHeader::decode(&too_small.encode()),
        Err(FormatError::InvalidField {
            field: "capacity",
            value: 63,
            ..
        })
    ));

    let mut flipped = buf;
    flipped[20] ^= 1;
    assert!(matches!(
        SegmentHeader::decode(&flipped),
        Err(FormatError::ChecksumMismatch { .. })
    ));
    assert!(matches!(
        SegmentHeader::decode(&buf[..10]),
        Err(FormatError::Truncated { .. })
    ));

    let meta = StoreMeta {
        store_uid: 1,
        max_document_bytes: 1 << 20,
        segment_capacity: 1 << 24,
        change_floor: Some(0),
    };
    assert_eq!(StoreMeta::decode(&meta.encode()).unwrap(), meta);
    let floored = StoreMeta {
        change_floor: Some(77),
        ..meta
    };
    assert_eq!(StoreMeta::decode(&floored.encode()).unwrap(), floored);
    // A file of version 4 did not record the floor: its bytes 44..52 are reserved.
    let mut old = floored.encode();
    old[8..10].copy_from_slice(&4u16.to_le_bytes());
    let crc = bitwise_crc32c(&old[..60]);
    old[60..64].copy_from_slice(&crc.to_le_bytes());
    assert!(
        StoreMeta::decode(&old).is_err(),
        "a version 4 file with bytes in 44..52"
    );
    old[44..52].fill(0);
    let crc = bitwise_crc32c(&old[..60]);
    old[60..64].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(StoreMeta::decode(&old).unwrap().change_floor, None);
}

pub(crate) fn bitwise_crc32c(bytes: &[u8]) -> u32 {
    // CRC32C (Castagnoli), bitwise, independent of the crate under test.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn index_entries(n: u32) -> Vec<IndexEntry> {
    (0..n)
        .map(|i| IndexEntry {
            id: DocId::from(u64::from(i) * 1000),
            seq: u64::from(i) + 1,
            position: Position {
                segment: 1 + i % 3,
                offset: 64 + i * 56,
            },
            text_len: i,
        })
        .collect()
}

fn index_checkpoint(seed: u64) -> IndexCheckpoint {
    IndexCheckpoint {
        store_uid: 9,
        checkpoint: Position {
            segment: 3,
            offset: 400,
        },
        last_seq: 500,
        hash_seed: seed,
    }
}

#[test]
fn index_round_trips_is_probed_in_place_and_detects_damage() {
    let entries = index_entries(500);
    let buf = encode_index(index_checkpoint(17), entries.clone().into_iter());
    let (header, mut decoded) = decode_index(&buf).unwrap();
    decoded.sort_by_key(|e| e.seq);
    assert_eq!(decoded, entries);
    assert_eq!(header.checkpoint, index_checkpoint(17).checkpoint);
    assert_eq!(header.last_seq, 500);
    assert_eq!(header.store_uid, 9);
    assert_eq!(header.live_docs, 500);
    assert!(header.live_docs * 100 <= header.slot_count * MAX_LOAD_PERCENT);
    assert_eq!(header.slot_count, index_slot_count(500));
    let (_, segments) = open_index(&buf).unwrap();
    let total: u64 = segments.iter().map(|s| s.live_record_bytes).sum();
    assert_eq!(total, header.live_record_bytes);
    assert_eq!(segments.len(), 3);
    // Every document is found where a probe starts, and ids never put are not.
    let mut pages_checked = std::collections::BTreeSet::new();
    for entry in &entries {
        let found = index_lookup(&buf, &header, entry.id, |page| {
            pages_checked.insert(page);
            check_index_page(&buf, &header, page)
        })
        .unwrap();
        assert_eq!(found, Some(*entry));
    }
    assert_eq!(pages_checked.len() as u64, header.page_count());
    // Page by page, the occupied slots are the entries, each once.
    let mut paged: Vec<IndexEntry> = (0..header.page_count())
        .flat_map(|page| index_page_entries(&buf, &header, page))
        .collect::<Result<_, _>>()
        .unwrap();
    paged.sort_by_key(|e| e.seq);
    assert_eq!(paged, entries);
    for absent in [1u64, 999, 1_000_001] {
        let found = index_lookup(&buf, &header, DocId::from(absent), |_| Ok(())).unwrap();
        assert_eq!(found, None);
    }

    // A flipped byte in a page is found by that page's check, and by the full decode.
    let mut damaged = buf.clone();
    let at = header.page_offset(0) + 7;
    damaged[at] ^= 0xff;
    assert!(matches!(
        check_index_page(&damaged, &header, 0),
        Err(FormatError::ChecksumMismatch {
            what: Structure::IndexEntries,
            ..
        })
    ));
    assert!(decode_index(&damaged).is_err());
    // A flipped byte in the header or the segment table stops the open.
    for at in [20, INDEX_HEADER_LEN + 3] {
        let mut damaged = buf.clone();
        damaged[at] ^= 0x01;
        assert!(open_index(&damaged).is_err(), "flip at {at}");
    }
    assert!(open_index(&buf[..buf.len() - 1]).is_err());
}

/// An index file's header whose fields disagree with each other is refused by the field at
/// fault, under a valid checksum; one at each field's limit is taken.
#[test]
fn index_headers_whose_fields_disagree_are_refused_by_name() {
    // Ten pages: their slots at the most load make a whole number of documents.
    let slots = SLOTS_PER_PAGE as u64 * 10;
    assert_eq!(slots * MAX_LOAD_PERCENT % 100, 0);
    let valid = IndexHeader {
        store_uid: 9,
        checkpoint: Position {
            segment: 3,
            offset: 400,
        },
        last_seq: 500,
        live_docs: 10,
        live_record_bytes: 1_000,
        text_bytes: 600,
        slot_count: slots,
        hash_seed: 17,
        segment_count: 2,
        table_offset: INDEX_PAGE_LEN as u32,
        segments_crc: 0,
    };
    let sealed = |mut buf: [u8; INDEX_HEADER_LEN]| {
        let crc = bitwise_crc32c(&buf[..124]);
        buf[124..].copy_from_slice(&crc.to_le_bytes());
        buf
    };
    let with = |change: &dyn Fn(&mut IndexHeader)| {
        let mut header = valid;
        change(&mut header);
        header
    };
    // The most documents the slots may hold, and segment rows that end where the table
    // starts.
    let at_the_limits = [
        with(&|h| h.live_docs = slots * MAX_LOAD_PERCENT / 100),
        with(&|h| h.segment_count = ((INDEX_PAGE_LEN - INDEX_HEADER_LEN) / 16) as u32),
    ];
    for header in at_the_limits {
        assert_eq!(IndexHeader::decode(&header.encode()), Ok(header));
    }
    let refused = [
        (with(&|h| h.slot_count = 0).encode(), "slot count"),
        (with(&|h| h.slot_count = slots + 1).encode(), "slot count"),
        (
            with(&|h| h.live_docs = slots * MAX_LOAD_PERCENT / 100 + 1).encode(),
            "live documents",
        ),
        (with(&|h| h.table_offset += 8).encode(), "table offset"),
        // 256 rows of 16 bytes after the header reach past the first page.
        (with(&|h| h.segment_count = 256).encode(), "table offset"),
        (sealed(patched(valid.encode(), 14, 1)), "reserved bytes"),
        (sealed(patched(valid.encode(), 123, 1)), "reserved bytes"),
    ];
    for (buf, field) in refused {
        let err = IndexHeader::decode(&buf).unwrap_err();
        assert!(
            matches!(err, FormatError::InvalidField { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    // A file of the layout before the hash table says so by its version, before the
    // checksum that the new layout puts elsewhere could fail; the layout's own version
    // reads.
    let older = patched(valid.encode(), 8, (INDEX_LAYOUT_VERSION - 1) as u8);
    let err = IndexHeader::decode(&older).unwrap_err();
    assert!(
        matches!(err, FormatError::UnsupportedVersion { offset: 8, found, .. } if found == INDEX_LAYOUT_VERSION - 1),
        "{err}"
    );
    let layout = sealed(patched(valid.encode(), 8, INDEX_LAYOUT_VERSION as u8));
    assert_eq!(IndexHeader::decode(&layout), Ok(valid));
}

/// `buf` with byte `at` set to `value`.
fn patched<const N: usize>(mut buf: [u8; N], at: usize, value: u8) -> [u8; N] {
    buf[at] = value;
    buf
}

/// The segment rows follow the header, and the slot pages start at the first page boundary
/// after them: past the first page once there are more than 248 rows.
#[test]
fn an_index_of_many_segments_starts_its_table_after_their_rows() {
    for (segments, table_offset) in [
        (3, INDEX_PAGE_LEN),
        (248, INDEX_PAGE_LEN),
        (249, 2 * INDEX_PAGE_LEN),
    ] {
        let entries: Vec<IndexEntry> = (0..segments)
            .map(|i| IndexEntry {
                id: DocId::from(u64::from(i) + 1),
                seq: u64::from(i) + 1,
                position: Position {
                    segment: i + 1,
                    offset: 64,
                },
                text_len: 10,
            })
            .collect();
        let buf = encode_index(index_checkpoint(3), entries.iter().copied());
        let (header, rows) = open_index(&buf).unwrap();
        assert_eq!(
            header.table_offset as usize, table_offset,
            "{segments} segments"
        );
        assert_eq!(rows.len(), segments as usize);
        assert_eq!(decode_index(&buf).unwrap().1.len(), segments as usize);
    }
}

/// Rewrites page `page`'s CRC after a test changed the page on purpose.
fn reseal_index_page(buf: &mut [u8], header: &IndexHeader, page: u64) {
    let start = header.page_offset(page);
    let crc = bitwise_crc32c(&buf[start..start + INDEX_PAGE_LEN - 4]);
    buf[start + INDEX_PAGE_LEN - 4..start + INDEX_PAGE_LEN].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_slot_whose_stored_probe_distance_is_wrong_is_refused_by_the_full_decode() {
    let buf = encode_index(index_checkpoint(5), index_entries(90).into_iter());
    let (header, _) = decode_index(&buf).unwrap();
    let start = header.page_offset(0);
    let occupied = (0..SLOTS_PER_PAGE)
        .map(|slot| start + slot * INDEX_ENTRY_LEN)
        .find(|&at| buf[at + 36] & 1 == 1)
        .expect("90 entries in 102 slots occupy one");
    let mut damaged = buf.clone();
    // The distance is the flags word's upper half: make it one more than it is.
    let distance = u16::from_le_bytes([damaged[occupied + 38], damaged[occupied + 39]]);
    damaged[occupied + 38..occupied + 40].copy_from_slice(&(distance + 1).to_le_bytes());
    reseal_index_page(&mut damaged, &header, 0);
    check_index_page(&damaged, &header, 0).unwrap();
    match decode_index(&damaged) {
        Err(FormatError::InvalidField {
            field,
            offset,
            value,
            ..
        }) => {
            assert_eq!(field, "distance from the home slot");
            assert_eq!(offset, occupied as u64);
            assert_eq!(value, u64::from(distance) + 1);
        }
        other => panic!("expected the distance to be refused, got {other:?}"),
    }
    // A reserved flag bit is refused by any read of the slot.
    let mut damaged = buf.clone();
    damaged[occupied + 36] |= 0x02;
    reseal_index_page(&mut damaged, &header, 0);
    assert!(matches!(
        decode_index(&damaged),
        Err(FormatError::InvalidField {
            field: "slot flags",
            ..
        })
    ));
    // A slot whose flags say empty holds only zeros: bytes in one are damage, not a slot to
    // skip.
    let empty = (0..SLOTS_PER_PAGE)
        .map(|slot| start + slot * INDEX_ENTRY_LEN)
        .find(|&at| buf[at..at + INDEX_ENTRY_LEN].iter().all(|&b| b == 0))
        .expect("90 entries in 102 slots leave one empty");
    let mut damaged = buf.clone();
    damaged[empty + 20] = 1;
    reseal_index_page(&mut damaged, &header, 0);
    match decode_index(&damaged) {
        Err(FormatError::InvalidField { field, offset, .. }) => {
            assert_eq!(field, "empty slot");
            assert_eq!(offset, empty as u64);
        }
        other => panic!("expected the empty slot to be refused, got {other:?}"),
    }
}

#[test]
fn an_empty_index_has_one_page_and_finds_nothing() {
    let buf = encode_index(index_checkpoint(0), std::iter::empty());
    let (header, entries) = decode_index(&buf).unwrap();
    assert!(entries.is_empty());
    assert_eq!(header.page_count(), 1);
    assert_eq!(buf.len() as u64, header.file_len());
    assert_eq!(
        index_lookup(&buf, &header, DocId::from(5u64), |_| Ok(())).unwrap(),
        None
    );
}

#[test]
fn retired_list_round_trips_and_refuses_damage() {
    let list = RetiredList {
        store_uid: 0xabc,
        segments: vec![2, 3, 9],
        copies: vec![10, 11],
    };
    let buf = list.encode();
    assert_eq!(RetiredList::decode(&buf).unwrap(), list);
    let empty = RetiredList {
        store_uid: 1,
        segments: Vec::new(),
        copies: Vec::new(),
    };
    assert_eq!(RetiredList::decode(&empty.encode()).unwrap(), empty);

    for at in 0..buf.len() {
        let mut damaged = buf.clone();
        damaged[at] ^= 0x10;
        assert!(RetiredList::decode(&damaged).is_err(), "flip at {at}");
    }
    assert!(RetiredList::decode(&buf[..buf.len() - 1]).is_err());

    let unsorted = RetiredList {
        store_uid: 1,
        segments: vec![4, 4],
        copies: Vec::new(),
    };
    let err = RetiredList::decode(&unsorted.encode()).unwrap_err();
    assert!(err.to_string().contains("not ascending"), "{err}");
    // The error names the id out of order and its place: the copies follow the segments,
    // four bytes an id after the header.
    let unsorted_copies = RetiredList {
        store_uid: 1,
        segments: vec![2, 3],
        copies: vec![10, 12, 11],
    };
    match RetiredList::decode(&unsorted_copies.encode()) {
        Err(FormatError::InvalidField { offset, value, .. }) => {
            assert_eq!((offset, value), (RETIRED_HEADER_LEN as u64 + 4 * 4, 11));
        }
        other => panic!("expected the copies' order to be refused, got {other:?}"),
    }
}

proptest! {
    #[test]
    fn records_round_trip(id: u128, seq: u64, text in ".{0,300}", tomb: bool) {
        let (kind, payload) = if tomb { (RecordKind::Tombstone, "") } else { (RecordKind::Put, text.as_str()) };
        let buf = one_record(kind, id, seq, payload.as_bytes());
        let rec = decode_record(&buf, 0).unwrap();
        prop_assert_eq!(rec.header.id, DocId::from_u128(id));
        prop_assert_eq!(rec.header.seq, seq);
        prop_assert_eq!(rec.header.kind, kind);
        prop_assert_eq!(rec.payload, payload.as_bytes());
    }

    #[test]
    fn any_single_byte_flip_is_detected(text in ".{1,100}", at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let buf = one_record(RecordKind::Put, 5, 6, text.as_bytes());
        // The padding is checked too: every byte of the record is covered.
        let mut damaged = buf.clone();
        damaged[at.index(buf.len())] ^= 1 << bit;
        prop_assert!(decode_record(&damaged, 0).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), offset in 0usize..700) {
        let _ = decode_record(&bytes, offset);
        let _ = SegmentHeader::decode(&bytes);
        let _ = StoreMeta::decode(&bytes);
        let _ = decode_index(&bytes);
        let _ = RetiredList::decode(&bytes);
    }

    #[test]
    fn valid_header_with_random_contents_never_panics(
        tail in prop::collection::vec(any::<u8>(), 0..9000),
        slots in 0u64..2000,
        segments in 0u32..300,
        docs in 0u64..2000,
    ) {
        // Headers that pass their checksum but describe absurd contents.
        let mut buf = encode_index(index_checkpoint(3), std::iter::empty());
        buf.truncate(INDEX_HEADER_LEN);
        buf[48..56].copy_from_slice(&docs.to_le_bytes());
        buf[72..80].copy_from_slice(&slots.to_le_bytes());
        buf[88..92].copy_from_slice(&segments.to_le_bytes());
        let crc = bitwise_crc32c(&buf[..124]);
        buf[124..128].copy_from_slice(&crc.to_le_bytes());
        buf.extend(tail);
        let _ = decode_index(&buf);
        if let Ok((header, _)) = open_index(&buf) {
            for page in 0..header.page_count() {
                let _ = check_index_page(&buf, &header, page);
            }
        }
    }

    #[test]
    fn index_lookups_agree_with_a_map(
        ids in prop::collection::btree_set(any::<u128>(), 0..400),
        probes in prop::collection::vec(any::<u128>(), 0..50),
        seed: u64,
    ) {
        let entries: Vec<IndexEntry> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| IndexEntry {
                id: DocId::from_u128(id),
                seq: i as u64,
                position: Position { segment: 1, offset: 64 + 8 * i as u32 },
                text_len: i as u32,
            })
            .collect();
        let buf = encode_index(index_checkpoint(seed), entries.clone().into_iter());
        let (header, _) = decode_index(&buf).unwrap();
        for entry in &entries {
            prop_assert_eq!(index_lookup(&buf, &header, entry.id, |_| Ok(())).unwrap(), Some(*entry));
        }
        for probe in probes {
            let expected = entries.iter().find(|e| e.id.as_u128() == probe).copied();
            prop_assert_eq!(index_lookup(&buf, &header, DocId::from_u128(probe), |_| Ok(())).unwrap(), expected);
        }
    }
}
