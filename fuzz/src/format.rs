//! What the fuzz targets of store-format's decoders check, one function per target. Each
//! takes arbitrary bytes and panics only when a decoder breaks its contract: every input
//! must decode or be refused with an error, and whatever decodes must encode back to the
//! same bytes.

use store_format::{
    CharOffsets, DocId, FORMAT_VERSION, LineOffsets, META_LEN, SEGMENT_HEADER_LEN, SegmentHeader,
    StoreMeta, TextRange, decode_index, decode_record, decode_record_header, encode_index,
    encode_record_header, padding_len,
};

/// The first two bytes choose an offset into the rest, where one record is decoded.
pub fn record(data: &[u8]) {
    let Some((offset, buf)) = split_offset(data) else {
        return;
    };
    let header = decode_record_header(buf, offset);
    if let Ok(record) = decode_record(buf, offset) {
        let header = header.expect("a record that decodes has a header that decodes");
        assert_eq!(header, record.header);
        let mut encoded = encode_record_header(
            record.header.kind,
            record.header.id,
            record.header.seq,
            record.payload,
            record.header.group_end(),
        )
        .to_vec();
        encoded.extend_from_slice(record.payload);
        encoded.resize(encoded.len() + padding_len(record.payload.len()), 0);
        assert_eq!(encoded, buf[offset..offset + encoded.len()]);
    }
}

/// A segment header. One written by an earlier version re-encodes as the current version,
/// so only current ones must come back byte for byte.
pub fn segment_header(data: &[u8]) {
    if let Ok(header) = SegmentHeader::decode(data)
        && is_current(data)
    {
        assert_eq!(header.encode()[..], data[..SEGMENT_HEADER_LEN]);
    }
}

/// A store's metadata file, re-encoded as [`segment_header`] is.
pub fn meta(data: &[u8]) {
    if let Ok(meta) = StoreMeta::decode(data)
        && is_current(data)
    {
        assert_eq!(meta.encode()[..], data[..META_LEN]);
    }
}

/// Whether a header that decoded was written by this format version (bytes 8..10).
fn is_current(data: &[u8]) -> bool {
    data[8..10] == FORMAT_VERSION.to_le_bytes()
}

/// A whole index file.
pub fn index(data: &[u8]) {
    if let Ok((header, entries)) = decode_index(data) {
        // Slots are placed by the hash and the order of insertion decides collisions:
        // re-encoding in slot order gives the same file.
        let checkpoint = store_format::IndexCheckpoint {
            store_uid: header.store_uid,
            checkpoint: header.checkpoint,
            last_seq: header.last_seq,
            hash_seed: header.hash_seed,
        };
        let encoded = encode_index(checkpoint, entries.into_iter());
        let (again, _) = decode_index(&encoded).expect("an encoded index decodes");
        assert_eq!(again.live_docs, header.live_docs);
        assert_eq!(
            again.slot_count,
            store_format::index_slot_count(header.live_docs)
        );
    }
}

/// A document id in text form.
pub fn id_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = DocId::parse(text) {
        assert_eq!(DocId::parse(&id.to_string()), Ok(id));
        assert_eq!(DocId::parse(&id.to_ulid_string()), Ok(id));
    }
}

/// A range over a text: byte 0 chooses the unit, the next 16 bytes the bounds, the rest
/// (made UTF-8) is the text. Resolving through the offset tables must give what resolving
/// by a scan gives, errors included, and a resolved range must cut at char boundaries.
pub fn text_range(data: &[u8]) {
    if data.len() < 17 {
        return;
    }
    let start = u64::from_le_bytes(data[1..9].try_into().unwrap()) % 4096;
    let end = u64::from_le_bytes(data[9..17].try_into().unwrap()) % 4096;
    let text = String::from_utf8_lossy(&data[17..]);
    let range = match data[0] % 3 {
        0 => TextRange::bytes(start..end),
        1 => TextRange::chars(start..end),
        _ => TextRange::lines(start, end),
    };
    let resolved = range.resolve(&text);
    if let Ok(span) = &resolved {
        assert!(
            text.get(span.clone()).is_some(),
            "{range:?} cut {text:?} inside a char"
        );
    }
    let lines = matches!(range, TextRange::Lines { .. }).then(|| LineOffsets::new(&text));
    let chars = matches!(range, TextRange::Chars { .. }).then(|| CharOffsets::new(&text));
    assert_eq!(
        range.resolve_with(&text, lines.as_ref(), chars.as_ref()),
        resolved
    );
}

fn split_offset(data: &[u8]) -> Option<(usize, &[u8])> {
    let (head, buf) = data.split_at_checked(2)?;
    let offset = usize::from(u16::from_le_bytes([head[0], head[1]]));
    Some((offset % (buf.len() + 1), buf))
}
