use store_mmap::{Error, RangeError, RangeUnit, TextRange};

use crate::{Fixture, id};

#[test]
fn extraction_through_the_store() {
    let mut f = Fixture::new();
    f.store().put(id(1), "line one\nline two 🦀\nlast").unwrap();
    f.store().put(id(2), "").unwrap();
    f.reopen();
    let s = f.store();
    let cases: Vec<(u64, TextRange, Result<&str, RangeError>)> = vec![
        (1, TextRange::bytes(0..4), Ok("line")),
        (1, TextRange::bytes(5..5), Ok("")),
        (1, TextRange::bytes(27..27), Ok("")),
        (1, TextRange::chars(18..19), Ok("🦀")),
        (1, TextRange::lines(2, 2), Ok("line two 🦀\n")),
        (1, TextRange::lines(3, 3), Ok("last")),
        (2, TextRange::bytes(0..0), Ok("")),
        (2, TextRange::chars(0..0), Ok("")),
        (
            1,
            TextRange::bytes(19..20),
            Err(RangeError::SplitsChar {
                offset: 19,
                char_start: 18,
                char_end: 22,
            }),
        ),
        (
            1,
            TextRange::bytes(0..28),
            Err(RangeError::OutOfBounds {
                unit: RangeUnit::Bytes,
                start: 0,
                end: 28,
                len: 27,
            }),
        ),
        (
            1,
            TextRange::chars(0..u64::MAX),
            Err(RangeError::OutOfBounds {
                unit: RangeUnit::Chars,
                start: 0,
                end: u64::MAX,
                len: 24,
            }),
        ),
        (
            1,
            TextRange::lines(4, u64::MAX),
            Err(RangeError::LinesOutOfBounds {
                first: 4,
                last: u64::MAX,
                line_count: 3,
            }),
        ),
        (
            2,
            TextRange::lines(1, 1),
            Err(RangeError::LinesOutOfBounds {
                first: 1,
                last: 1,
                line_count: 0,
            }),
        ),
    ];
    for (doc, range, expected) in cases {
        let got = s.extract(id(doc), range);
        match (got, expected) {
            (Ok(text), Ok(want)) => assert_eq!(&*text, want, "{range:?}"),
            (Err(Error::Range { id: got_id, source }), Err(want)) => {
                assert_eq!(got_id, id(doc));
                assert_eq!(source, want, "{range:?}");
            }
            (got, want) => panic!("{range:?}: got {got:?}, want {want:?}"),
        }
    }
    assert!(matches!(
        s.extract(id(3), TextRange::bytes(0..0)),
        Err(Error::NotFound { .. })
    ));
}

/// The reference a range extraction must equal: `str` slicing, `chars()` and `lines()` over
/// the text (a line keeps its `\n`, as `split_inclusive` does).
fn reference(text: &str, range: TextRange) -> Option<String> {
    match range {
        TextRange::Bytes { start, end } => text
            .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
            .map(str::to_owned),
        TextRange::Chars { start, end } => {
            let count = text.chars().count() as u64;
            (start <= end && end <= count).then(|| {
                text.chars()
                    .skip(start as usize)
                    .take((end - start) as usize)
                    .collect()
            })
        }
        TextRange::Lines { first, last } => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            (first >= 1 && first <= last && last <= lines.len() as u64)
                .then(|| lines[first as usize - 1..last as usize].concat())
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Extraction equals the reference on every range kind, on the first read of a record
    /// in a process (which checks it whole) and on later ones (which trust that check).
    #[test]
    fn extraction_equals_the_reference_before_and_after_the_record_is_checked(
        text in "(\\PC|\\n){0,300}",
        ranges in proptest::collection::vec((0u8..3, 0u64..320, 0u64..320), 1..12),
    ) {
        let mut f = Fixture::new();
        f.store().put(id(1), &text).unwrap();
        let range_of = |&(kind, a, b): &(u8, u64, u64)| match kind {
            0 => TextRange::bytes(a..b),
            1 => TextRange::chars(a..b),
            _ => TextRange::lines(a, b),
        };
        // Each range as the first read of the record in a fresh open (replay not needed:
        // the checkpoint covers it, so nothing has checked the record yet).
        for range in ranges.iter().map(range_of) {
            f.reopen();
            let got = f.store().extract(id(1), range).ok().map(|t| t.to_string());
            proptest::prop_assert_eq!(got, reference(&text, range), "first read {:?}", range);
        }
        // Then each again, served from what that read checked.
        for range in ranges.iter().map(range_of) {
            let got = f.store().extract(id(1), range).ok().map(|t| t.to_string());
            proptest::prop_assert_eq!(got, reference(&text, range), "checked {:?}", range);
        }
    }
}

/// The reading trait a layer is generic over answers for the engine as the engine does.
#[test]
fn the_reading_trait_reads_what_the_store_reads() {
    use store_mmap::DocRead;

    fn through_the_trait<R: DocRead>(reader: &R) -> (String, String, bool) {
        let doc = reader.get(id(1)).expect("a read").expect("document 1");
        let part = reader
            .extract(id(1), TextRange::bytes(6..12))
            .expect("bytes 6..12");
        let absent = reader.contains(id(9)).expect("a lookup");
        (doc.to_string(), part.to_string(), absent)
    }

    let mut f = Fixture::new();
    f.store().put(id(1), "first\nsecond\nthird").unwrap();
    let store = f.store();
    assert_eq!(
        through_the_trait(&*store),
        (
            "first\nsecond\nthird".to_owned(),
            "second".to_owned(),
            false
        )
    );
    assert_eq!(
        store
            .extract(id(1), TextRange::bytes(6..12))
            .unwrap()
            .to_string(),
        "second"
    );
}
