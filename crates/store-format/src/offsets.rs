//! Offset tables of one text, so that a line or char range resolves without scanning the
//! text from its start. They give exactly what [`TextRange::resolve`] gives, errors included.
//!
//! Offsets are `u32`: a document is smaller than 4 GiB (the record's length field).

use std::ops::Range;

use crate::range::{RangeError, RangeUnit, TextRange};

/// Where every line of a text ends: the byte offset of each `'\n'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOffsets {
    newlines: Vec<u32>,
    text_len: u32,
}

impl LineOffsets {
    /// The table of `text`, which must be under 4 GiB.
    pub fn new(text: &str) -> LineOffsets {
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes())
            .map(|offset| u32::try_from(offset).expect("a document is under 4 GiB"))
            .collect();
        LineOffsets {
            newlines,
            text_len: u32::try_from(text.len()).expect("a document is under 4 GiB"),
        }
    }

    /// Lines of the text: one per newline, plus an unterminated last line.
    pub fn line_count(&self) -> u64 {
        let last_line_start = self.newlines.last().map_or(0, |&nl| nl + 1);
        self.newlines.len() as u64 + u64::from(last_line_start < self.text_len)
    }

    /// Heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.newlines.capacity() * size_of::<u32>()
    }

    /// The byte range of lines `first..=last` (one-based) of the text the table was built
    /// from, as [`TextRange::Lines`] resolves it.
    pub fn resolve(&self, first: u64, last: u64) -> Result<Range<usize>, RangeError> {
        if first == 0 {
            return Err(RangeError::LineZero);
        }
        if first > last {
            return Err(RangeError::Inverted {
                unit: RangeUnit::Lines,
                start: first,
                end: last,
            });
        }
        let line_count = self.line_count();
        if last > line_count {
            return Err(RangeError::LinesOutOfBounds {
                first,
                last,
                line_count,
            });
        }
        // Line n starts after the (n-1)-th newline and ends after the n-th, or at the end of
        // the text for an unterminated last line. Both indexes are below `line_count`, which
        // counts entries of `newlines`, so they fit in usize.
        let start = match first {
            1 => 0,
            _ => self.newlines[first as usize - 2] as usize + 1,
        };
        let end = match self.newlines.get(last as usize - 1) {
            Some(&newline) => newline as usize + 1,
            None => self.text_len as usize,
        };
        Ok(start..end)
    }
}

/// Chars between two entries of a [`CharOffsets`] table: a lookup walks at most this many.
pub const CHAR_STRIDE: usize = 64;

/// The byte offset of every [`CHAR_STRIDE`]-th char of a text, and its char count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharOffsets {
    marks: Vec<u32>,
    char_count: u64,
}

impl CharOffsets {
    /// The table of `text`, which must be under 4 GiB.
    pub fn new(text: &str) -> CharOffsets {
        let mut marks = Vec::with_capacity(text.len() / CHAR_STRIDE + 1);
        let mut char_count = 0u64;
        for (chars_before, (byte, _)) in text.char_indices().enumerate() {
            if chars_before % CHAR_STRIDE == 0 {
                marks.push(u32::try_from(byte).expect("a document is under 4 GiB"));
            }
            char_count += 1;
        }
        CharOffsets { marks, char_count }
    }

    /// Chars of the text.
    pub fn char_count(&self) -> u64 {
        self.char_count
    }

    /// Heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.marks.capacity() * size_of::<u32>()
    }

    /// The byte range of chars `start..end` of `text`, which must be the text the table was
    /// built from, as [`TextRange::Chars`] resolves it.
    pub fn resolve(&self, text: &str, start: u64, end: u64) -> Result<Range<usize>, RangeError> {
        if start > end {
            return Err(RangeError::Inverted {
                unit: RangeUnit::Chars,
                start,
                end,
            });
        }
        if end > self.char_count {
            return Err(RangeError::OutOfBounds {
                unit: RangeUnit::Chars,
                start,
                end,
                len: self.char_count,
            });
        }
        let byte_start = self.byte_of(text, start);
        Ok(byte_start..self.byte_of(text, end))
    }

    /// The byte offset of char `index <= char_count`: its mark, then a walk of fewer than
    /// [`CHAR_STRIDE`] chars.
    fn byte_of(&self, text: &str, index: u64) -> usize {
        if index == self.char_count {
            return text.len();
        }
        // `index < char_count`, so the mark exists and the walk stays inside the text.
        let stride = CHAR_STRIDE as u64;
        let mark = self.marks[(index / stride) as usize] as usize;
        let walk = (index % stride) as usize;
        text[mark..]
            .char_indices()
            .nth(walk)
            .map_or(text.len(), |(byte, _)| mark + byte)
    }
}

impl TextRange {
    /// [`TextRange::resolve`] through the tables that are given: a line range through
    /// `lines`, a char range through `chars`. Each table must be that of `text`.
    pub fn resolve_with(
        &self,
        text: &str,
        lines: Option<&LineOffsets>,
        chars: Option<&CharOffsets>,
    ) -> Result<Range<usize>, RangeError> {
        match (*self, lines, chars) {
            (TextRange::Lines { first, last }, Some(lines), _) => lines.resolve(first, last),
            (TextRange::Chars { start, end }, _, Some(chars)) => chars.resolve(text, start, end),
            _ => self.resolve(text),
        }
    }
}
