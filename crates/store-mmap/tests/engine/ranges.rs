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
