use proptest::prelude::*;
use store_format::{CharOffsets, LineOffsets, RangeError, RangeUnit, TextRange};

/// One data-driven helper: extract `range` from `text`, rendering the outcome as a string so
/// every case reads as input => expected.
fn extract(text: &str, range: TextRange) -> Result<&str, RangeError> {
    range.resolve(text).map(|r| &text[r])
}

#[test]
fn byte_ranges() {
    let text = "héllo wörld"; // é and ö are two bytes each
    assert_eq!(extract(text, TextRange::bytes(0..1)), Ok("h"));
    assert_eq!(extract(text, TextRange::bytes(0..3)), Ok("hé"));
    assert_eq!(extract(text, TextRange::bytes(3..3)), Ok(""));
    assert_eq!(extract(text, TextRange::bytes(13..13)), Ok(""));
    assert_eq!(extract(text, TextRange::bytes(0..13)), Ok(text));
    assert_eq!(
        extract(text, TextRange::bytes(2..4)),
        Err(RangeError::SplitsChar {
            offset: 2,
            char_start: 1,
            char_end: 3
        })
    );
    assert_eq!(
        extract(text, TextRange::bytes(0..14)),
        Err(RangeError::OutOfBounds {
            unit: RangeUnit::Bytes,
            start: 0,
            end: 14,
            len: 13
        })
    );
    assert_eq!(
        extract(text, TextRange::Bytes { start: 5, end: 4 }),
        Err(RangeError::Inverted {
            unit: RangeUnit::Bytes,
            start: 5,
            end: 4
        })
    );
    assert_eq!(
        extract(text, TextRange::bytes(u64::MAX - 1..u64::MAX)),
        Err(RangeError::OutOfBounds {
            unit: RangeUnit::Bytes,
            start: u64::MAX - 1,
            end: u64::MAX,
            len: 13
        })
    );
    assert_eq!(extract("", TextRange::bytes(0..0)), Ok(""));
}

#[test]
fn char_ranges() {
    let text = "a🦀b\u{301}c"; // crab is 4 bytes; U+0301 is a combining mark (its own char)
    assert_eq!(extract(text, TextRange::chars(0..2)), Ok("a🦀"));
    assert_eq!(extract(text, TextRange::chars(1..2)), Ok("🦀"));
    assert_eq!(extract(text, TextRange::chars(2..4)), Ok("b\u{301}"));
    assert_eq!(extract(text, TextRange::chars(5..5)), Ok(""));
    assert_eq!(extract(text, TextRange::chars(0..5)), Ok(text));
    assert_eq!(
        extract(text, TextRange::chars(4..6)),
        Err(RangeError::OutOfBounds {
            unit: RangeUnit::Chars,
            start: 4,
            end: 6,
            len: 5
        })
    );
    assert_eq!(
        extract(text, TextRange::chars(6..6)),
        Err(RangeError::OutOfBounds {
            unit: RangeUnit::Chars,
            start: 6,
            end: 6,
            len: 5
        })
    );
    assert_eq!(
        extract(text, TextRange::Chars { start: 3, end: 1 }),
        Err(RangeError::Inverted {
            unit: RangeUnit::Chars,
            start: 3,
            end: 1
        })
    );
    assert_eq!(extract("", TextRange::chars(0..0)), Ok(""));
}

#[test]
fn line_ranges() {
    let text = "one\ntwo\r\nthree\n\nfive";
    assert_eq!(extract(text, TextRange::lines(1, 1)), Ok("one\n"));
    assert_eq!(extract(text, TextRange::lines(2, 3)), Ok("two\r\nthree\n"));
    assert_eq!(extract(text, TextRange::lines(4, 4)), Ok("\n"));
    assert_eq!(extract(text, TextRange::lines(5, 5)), Ok("five"));
    assert_eq!(extract(text, TextRange::lines(1, 5)), Ok(text));
    assert_eq!(
        extract(text, TextRange::lines(5, 6)),
        Err(RangeError::LinesOutOfBounds {
            first: 5,
            last: 6,
            line_count: 5
        })
    );
    assert_eq!(
        extract(text, TextRange::lines(0, 1)),
        Err(RangeError::LineZero)
    );
    assert_eq!(
        extract(text, TextRange::lines(3, 2)),
        Err(RangeError::Inverted {
            unit: RangeUnit::Lines,
            start: 3,
            end: 2
        })
    );
    // A final newline ends the last line; it does not start another.
    assert_eq!(extract("a\nb\n", TextRange::lines(2, 2)), Ok("b\n"));
    assert_eq!(
        extract("a\nb\n", TextRange::lines(3, 3)),
        Err(RangeError::LinesOutOfBounds {
            first: 3,
            last: 3,
            line_count: 2
        })
    );
    assert_eq!(
        extract("", TextRange::lines(1, 1)),
        Err(RangeError::LinesOutOfBounds {
            first: 1,
            last: 1,
            line_count: 0
        })
    );
    assert_eq!(
        extract(text, TextRange::lines(1, u64::MAX)),
        Err(RangeError::LinesOutOfBounds {
            first: 1,
            last: u64::MAX,
            line_count: 5
        })
    );
}

#[test]
fn lengths_that_overflow_are_their_own_error() {
    assert_eq!(
        TextRange::starting_at(RangeUnit::Bytes, u64::MAX, 1),
        Err(RangeError::Overflow {
            unit: RangeUnit::Bytes,
            start: u64::MAX,
            len: 1
        })
    );
    assert_eq!(
        TextRange::starting_at(RangeUnit::Chars, 2, 3),
        Ok(TextRange::chars(2..5))
    );
    assert_eq!(
        TextRange::starting_at(RangeUnit::Lines, 2, 3),
        Ok(TextRange::lines(2, 4))
    );
    assert_eq!(
        TextRange::starting_at(RangeUnit::Lines, 0, 3),
        Err(RangeError::LineZero)
    );
    // No lines from line 5: the range ends at line 4, before it starts.
    assert_eq!(
        TextRange::starting_at(RangeUnit::Lines, 5, 0),
        Err(RangeError::Inverted {
            unit: RangeUnit::Lines,
            start: 5,
            end: 4
        })
    );
}

/// Each message names the unit and the values at fault, as a user reads it.
#[test]
fn errors_name_the_unit_and_the_values() {
    let cases = [
        (
            RangeError::Inverted {
                unit: RangeUnit::Chars,
                start: 9,
                end: 3,
            },
            "char range from 9 to 3 ends before it starts",
        ),
        (
            RangeError::OutOfBounds {
                unit: RangeUnit::Bytes,
                start: 2,
                end: 40,
                len: 12,
            },
            "byte range 2..40 is out of bounds: the text has 12 bytes",
        ),
        (
            RangeError::Overflow {
                unit: RangeUnit::Lines,
                start: u64::MAX,
                len: 2,
            },
            "line range starting at 18446744073709551615 with length 2 overflows 64 bits",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message);
    }
}

/// What a cache charges for keeping a table: its heap, four bytes a newline or a mark, and
/// no more than the allocator's rounding up to twice that.
#[test]
fn offset_tables_report_the_heap_they_hold() {
    let text = "line of eight chars\n".repeat(1_000);
    let lines = LineOffsets::new(&text).heap_bytes();
    assert!((4_000..=8_000).contains(&lines), "{lines}");
    let marks = text.chars().count().div_ceil(64);
    let chars = CharOffsets::new(&text).heap_bytes();
    assert!(
        (4 * marks..=8 * (marks + 1)).contains(&chars),
        "{chars} for {marks} marks"
    );
}

proptest! {
    #[test]
    fn char_ranges_agree_with_a_collected_model(text in "\\PC{0,40}", a in 0u64..50, b in 0u64..50) {
        let chars: Vec<char> = text.chars().collect();
        let got = extract(&text, TextRange::chars(a..b));
        if a <= b && b as usize <= chars.len() {
            let expected: String = chars[a as usize..b as usize].iter().collect();
            prop_assert_eq!(got, Ok(expected.as_str()));
        } else {
            prop_assert!(got.is_err());
        }
    }

    #[test]
    fn line_ranges_agree_with_split_inclusive(text in "[ab\n]{0,30}", a in 1u64..12, b in 1u64..12) {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let got = extract(&text, TextRange::lines(a, b));
        if a <= b && b as usize <= lines.len() {
            let expected = lines[a as usize - 1..b as usize].concat();
            prop_assert_eq!(got, Ok(expected.as_str()));
        } else {
            prop_assert!(got.is_err());
        }
    }

    #[test]
    fn offset_tables_resolve_exactly_as_a_scan_does(
        text in "(\\PC|\\n){0,300}",
        (a, b) in (0u64..320, 0u64..320),
        line in any::<bool>(),
    ) {
        let (lines, chars) = (LineOffsets::new(&text), CharOffsets::new(&text));
        let range = if line { TextRange::lines(a, b) } else { TextRange::chars(a..b) };
        prop_assert_eq!(
            range.resolve_with(&text, Some(&lines), Some(&chars)),
            range.resolve(&text),
            "{:?} of {:?}", range, text
        );
        prop_assert_eq!(chars.char_count(), text.chars().count() as u64);
    }
}

#[test]
fn offset_tables_cross_their_strides_and_the_ends() {
    // 200 chars of one to four bytes, so char marks fall on every width; the last line is
    // unterminated, and the text is resolved at, around and past every boundary.
    let text: String = (0..200)
        .map(|i| ['a', 'é', '€', '😀', '\n'][i % 5])
        .collect();
    let (lines, chars) = (LineOffsets::new(&text), CharOffsets::new(&text));
    assert_eq!(lines.line_count(), 40);
    for a in 0..=210 {
        for b in [a, a + 1, 63, 64, 65, 128, 199, 200, 201] {
            let range = TextRange::chars(a..b);
            assert_eq!(
                range.resolve_with(&text, None, Some(&chars)),
                range.resolve(&text)
            );
        }
    }
    for first in 0..=42 {
        for last in [first, first + 1, 39, 40, 41] {
            let range = TextRange::lines(first, last);
            assert_eq!(
                range.resolve_with(&text, Some(&lines), None),
                range.resolve(&text)
            );
        }
    }
}
