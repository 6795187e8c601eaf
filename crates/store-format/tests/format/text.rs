use bytes::Bytes;
use bytestring::ByteString;
use store_format::{Doc, RangeError, RangeUnit, Text, TextRange};

/// Every way to make a `Text` holds the same characters, and every way to read one gives
/// them back.
#[test]
fn a_text_reads_back_the_same_whichever_way_it_was_made() {
    const WORDS: &str = "two words\nγράμμα";
    let made = [
        Text::from_utf8(Bytes::from_static(WORDS.as_bytes())).unwrap(),
        Text::from_byte_string(ByteString::from_static(WORDS)),
        Text::from_static(WORDS),
        Text::from(WORDS.to_owned()),
        Text::from(WORDS),
    ];
    for text in made {
        assert_eq!(text.as_str(), WORDS);
        assert_eq!(&*text, WORDS);
        assert_eq!(AsRef::<str>::as_ref(&text), WORDS);
        assert_eq!(AsRef::<[u8]>::as_ref(&text), WORDS.as_bytes());
        assert_eq!(text.as_bytes(), WORDS.as_bytes());
        assert!(text == *WORDS && text == WORDS);
        assert!(text != *"two words" && text != "two words");
        assert_eq!(text.to_string(), WORDS);
        assert_eq!(format!("{text:?}"), format!("{WORDS:?}"));
        assert_eq!(
            text.clone().into_bytes(),
            Bytes::from_static(WORDS.as_bytes())
        );
    }
    assert!(Text::from_utf8(Bytes::from_static(b"ok \xff")).is_err());
}

/// A slice or an extract shares the text's memory and holds the named part.
#[test]
fn slices_and_extracts_share_the_text() {
    let text = Text::from("first line\nsecond line\nthird");
    let second = text.extract(TextRange::lines(2, 2)).unwrap();
    assert_eq!(second, "second line\n");
    let shared = text.as_bytes().as_ptr() as usize + "first line\n".len();
    assert_eq!(second.as_bytes().as_ptr() as usize, shared);
    let word = text.slice(0..5);
    assert_eq!(word, "first");
    assert_eq!(word.as_bytes().as_ptr(), text.as_bytes().as_ptr());
    assert_eq!(
        text.extract(TextRange::chars(3..40)),
        Err(RangeError::OutOfBounds {
            unit: RangeUnit::Chars,
            start: 3,
            end: 40,
            len: 28
        })
    );
}

#[test]
fn a_doc_is_its_text_and_the_write_that_made_it() {
    let doc = Doc::new(41, Text::from("body"));
    assert_eq!(doc.seq(), 41);
    assert_eq!(doc.text(), "body");
    assert_eq!(&*doc, "body");
    assert_eq!(doc.clone().into_text(), Text::from("body"));
    assert_ne!(doc, Doc::new(42, Text::from("body")));
}
