use proptest::prelude::*;
use store_format::{DocId, IdError};

#[test]
fn ulid_text_round_trips_and_is_canonical() {
    let id = DocId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
    assert_eq!(id.to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    // Crockford base32 is case-insensitive; printing gives the canonical upper case.
    let lower = DocId::parse("01arz3ndektsv4rrffq69g5fav").unwrap();
    assert_eq!(lower, id);
}

#[test]
fn printed_ids_that_are_all_digits_parse_back_as_ulids() {
    // 4388 prints as 00000000000000000000000494: all digits, and still the ULID form, so
    // it must not be read as the decimal 494 (found by the parse_id fuzz target).
    let id = DocId::from(4388u64);
    assert_eq!(id.to_string(), "00000000000000000000000494");
    assert_eq!(DocId::parse(&id.to_string()), Ok(id));
    // A 26-digit decimal is written with a leading zero.
    assert_eq!(
        DocId::parse("012345678901234567890123456"),
        Ok(DocId::from_u128(12_345_678_901_234_567_890_123_456))
    );
}

proptest! {
    #[test]
    fn every_printed_id_parses_back(raw in any::<u128>()) {
        let id = DocId::from_u128(raw);
        prop_assert_eq!(DocId::parse(&id.to_string()), Ok(id));
    }
}

#[test]
fn decimal_ids_name_the_same_id_as_the_integer() {
    assert_eq!(DocId::parse("42").unwrap(), DocId::from(42u64));
    assert_eq!(DocId::parse("0").unwrap(), DocId::ZERO);
    assert_eq!(
        DocId::parse("340282366920938463463374607431768211455").unwrap(),
        DocId::from_u128(u128::MAX)
    );
    assert_eq!(DocId::from(42u64).to_string(), "0000000000000000000000001A");
}

#[test]
fn bad_ids_get_precise_errors() {
    type Check = fn(&IdError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| *e == IdError::Empty),
        ("340282366920938463463374607431768211456", |e| {
            matches!(e, IdError::DecimalOverflow { .. })
        }),
        ("not-an-id", |e| matches!(e, IdError::Invalid { .. })),
        ("01ARZ3NDEKTSV4RRFFQ69G5FA", |e| {
            matches!(e, IdError::Invalid { .. })
        }),
        ("-1", |e| matches!(e, IdError::Invalid { .. })),
    ];
    for (text, expected) in cases {
        let err = DocId::parse(text).unwrap_err();
        assert!(expected(&err), "{text:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn key_derivation_is_stable() {
    // These values are part of the format: if this test fails, ids derived by earlier
    // versions no longer match and every user's imported store is orphaned.
    assert_eq!(DocId::from_key("docs/README.md").to_string(), KEY_README);
    assert_eq!(DocId::from_key("").to_string(), KEY_EMPTY);
    assert_ne!(DocId::from_key("a"), DocId::from_key("b"));
}

// Cross-checked against the Python `xxhash` package: xxh3_128_intdigest(b"textstore.docid.v1\0" + key).
const KEY_README: &str = "231650H32A0ZZ7M640X3BPB0BZ";
const KEY_EMPTY: &str = "3YKG7YG2EQ94VN6M1BJ6133QCE";

proptest! {
    #[test]
    fn any_id_round_trips_through_text_and_bytes(raw: u128) {
        let id = DocId::from_u128(raw);
        prop_assert_eq!(DocId::parse(&id.to_string()).unwrap(), id);
        prop_assert_eq!(DocId::parse(&raw.to_string()).unwrap(), id);
        prop_assert_eq!(DocId::from_le_bytes(id.to_le_bytes()), id);
    }
}

/// Every way into and out of an id names the same 128 bits.
#[test]
fn conversions_agree_on_the_id() {
    let raw = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
    let id = DocId::from(raw);
    assert_eq!(id, DocId::from_u128(raw));
    assert_eq!(id.as_u128(), raw);
    assert_eq!(DocId::from(ulid::Ulid(raw)), id);
    // Crockford base32 of the 128 bits, five at a time from the top (computed apart).
    let text = "014D2PF2DBSQQZXQ5TK1V58CGG";
    assert_eq!(id.to_ulid_string(), text);
    assert_eq!(id.to_string(), text);
    assert_eq!(text.parse::<DocId>(), Ok(id));
    assert_eq!("".parse::<DocId>(), Err(IdError::Empty));
    assert_eq!(format!("{id:?}"), format!("DocId({text})"));
}

/// With the `serde` feature an id is its ULID text in JSON, both ways; text that is not an
/// id is an error that names what was wrong.
#[cfg(feature = "serde")]
#[test]
fn ids_serialize_as_their_ulid_text() {
    let id = DocId::from_key("guide/intro.md");
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{}\"", id.to_ulid_string()));
    assert_eq!(serde_json::from_str::<DocId>(&json).unwrap(), id);
    assert_eq!(
        serde_json::from_str::<DocId>("\"42\"").unwrap(),
        DocId::from(42u64)
    );
    let err = serde_json::from_str::<DocId>("\"not an id\"").unwrap_err();
    assert!(err.to_string().contains("neither a ULID"), "{err}");
    // A number is not an id's text, and the error says what was expected.
    let err = serde_json::from_str::<DocId>("17").unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a document id: 26 characters of ULID text"),
        "{err}"
    );
}
