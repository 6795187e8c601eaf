//! Byte, char and line ranges of a text, resolved to byte ranges.

use std::fmt;
use std::ops::Range;

/// A part of a document's text to extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRange {
    /// Bytes `start..end`: zero-based, end exclusive. Both ends must fall on character
    /// boundaries.
    Bytes {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Characters (Unicode scalar values) `start..end`: zero-based, end exclusive.
    Chars {
        /// First character.
        start: u64,
        /// One past the last character.
        end: u64,
    },
    /// Lines `first..=last`: one-based and inclusive, like `sed -n 'first,last p'`. A line
    /// ends after its `\n`, which is part of the extracted text; the text after the last
    /// `\n`, if not empty, is one more line.
    Lines {
        /// First line, counting from 1.
        first: u64,
        /// Last line, included.
        last: u64,
    },
}

/// The unit a range counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeUnit {
    /// Bytes of UTF-8.
    Bytes,
    /// Unicode scalar values.
    Chars,
    /// Lines.
    Lines,
}

impl fmt::Display for RangeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeUnit::Bytes => "byte",
            RangeUnit::Chars => "char",
            RangeUnit::Lines => "line",
        })
    }
}

/// Why a range cannot be extracted from a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// The range ends before it starts.
    #[error("{unit} range from {start} to {end} ends before it starts")]
    Inverted {
        /// The unit.
        unit: RangeUnit,
        /// Start as given (for lines: the first line).
        start: u64,
        /// End as given (for lines: the last line).
        end: u64,
    },
    /// A byte or char range reaches past the end of the text.
    #[error("{unit} range {start}..{end} is out of bounds: the text has {len} {unit}s")]
    OutOfBounds {
        /// The unit.
        unit: RangeUnit,
        /// Start as given.
        start: u64,
        /// End as given.
        end: u64,
        /// Length of the text in that unit.
        len: u64,
    },
    /// A line range reaches past the last line.
    #[error("lines {first}-{last} are out of bounds: the text has {line_count} lines")]
    LinesOutOfBounds {
        /// First line as given.
        first: u64,
        /// Last line as given.
        last: u64,
        /// Number of lines in the text.
        line_count: u64,
    },
    /// A start plus a length does not fit in 64 bits.
    #[error("{unit} range starting at {start} with length {len} overflows 64 bits")]
    Overflow {
        /// The unit.
        unit: RangeUnit,
        /// Start as given.
        start: u64,
        /// Length as given.
        len: u64,
    },
    /// Line numbers count from 1.
    #[error("line numbers start at 1; line 0 does not exist")]
    LineZero,
    /// A byte range boundary falls inside a multi-byte character.
    #[error("byte offset {offset} splits the UTF-8 character at bytes {char_start}..{char_end}")]
    SplitsChar {
        /// The offending boundary.
        offset: u64,
        /// Start of the character it splits.
        char_start: u64,
        /// End of the character it splits.
        char_end: u64,
    },
}

impl TextRange {
    /// The byte range `start..end`.
    pub fn bytes(range: Range<u64>) -> TextRange {
        TextRange::Bytes {
            start: range.start,
            end: range.end,
        }
    }

    /// The char range `start..end`.
    pub fn chars(range: Range<u64>) -> TextRange {
        TextRange::Chars {
            start: range.start,
            end: range.end,
        }
    }

    /// Lines `first..=last`, one-based.
    pub fn lines(first: u64, last: u64) -> TextRange {
        TextRange::Lines { first, last }
    }

    /// `len` units from `start`; fails when the end does not fit in 64 bits.
    pub fn starting_at(unit: RangeUnit, start: u64, len: u64) -> Result<TextRange, RangeError> {
        let end = start
            .checked_add(len)
            .ok_or(RangeError::Overflow { unit, start, len })?;
        Ok(match unit {
            RangeUnit::Bytes => TextRange::Bytes { start, end },
            RangeUnit::Chars => TextRange::Chars { start, end },
            RangeUnit::Lines if start == 0 => return Err(RangeError::LineZero),
            RangeUnit::Lines if len == 0 => {
                return Err(RangeError::Inverted {
                    unit,
                    start,
                    end: start - 1,
                });
            }
            RangeUnit::Lines => TextRange::Lines {
                first: start,
                last: end - 1,
            },
        })
    }

    /// The byte range of `text` this range names.
    pub fn resolve(&self, text: &str) -> Result<Range<usize>, RangeError> {
        match *self {
            TextRange::Bytes { start, end } => resolve_bytes(text, start, end),
            TextRange::Chars { start, end } => resolve_chars(text, start, end),
            TextRange::Lines { first, last } => resolve_lines(text, first, last),
        }
    }
}

fn resolve_bytes(text: &str, start: u64, end: u64) -> Result<Range<usize>, RangeError> {
    let unit = RangeUnit::Bytes;
    if start > end {
        return Err(RangeError::Inverted { unit, start, end });
    }
    let len = text.len() as u64;
    if end > len {
        return Err(RangeError::OutOfBounds {
            unit,
            start,
            end,
            len,
        });
    }
    // Both fit in usize: they are at most `text.len()`.
    let (start, end) = (start as usize, end as usize);
    for offset in [start, end] {
        if !text.is_char_boundary(offset) {
            let char_start = text.floor_char_boundary(offset);
            let char_end = text.ceil_char_boundary(offset);
            return Err(RangeError::SplitsChar {
                offset: offset as u64,
                char_start: char_start as u64,
                char_end: char_end as u64,
            });
        }
    }
    Ok(start..end)
}

fn resolve_chars(text: &str, start: u64, end: u64) -> Result<Range<usize>, RangeError> {
    let unit = RangeUnit::Chars;
    if start > end {
        return Err(RangeError::Inverted { unit, start, end });
    }
    let mut byte_start = None;
    let mut chars_seen = 0u64;
    for (byte, _) in text.char_indices() {
        if chars_seen == start {
            byte_start = Some(byte);
        }
        if chars_seen == end {
            return Ok(byte_start.unwrap_or(byte)..byte);
        }
        chars_seen += 1;
    }
    if chars_seen == end {
        return Ok(byte_start.unwrap_or(text.len())..text.len());
    }
    Err(RangeError::OutOfBounds {
        unit,
        start,
        end,
        len: chars_seen,
    })
}

fn resolve_lines(text: &str, first: u64, last: u64) -> Result<Range<usize>, RangeError> {
    let unit = RangeUnit::Lines;
    if first == 0 {
        return Err(RangeError::LineZero);
    }
    if first > last {
        return Err(RangeError::Inverted {
            unit,
            start: first,
            end: last,
        });
    }
    // Line n (one-based) starts after the (n-1)-th newline and ends after the n-th.
    let mut line_start = None;
    let mut lines_ended = 0u64;
    let mut current_start = 0usize;
    for newline in memchr::memchr_iter(b'\n', text.as_bytes()) {
        lines_ended += 1;
        if lines_ended == first {
            line_start = Some(current_start);
        }
        if lines_ended == last {
            return Ok(line_start.unwrap_or(current_start)..newline + 1);
        }
        current_start = newline + 1;
    }
    let line_count = lines_ended + u64::from(current_start < text.len());
    if last == line_count {
        // `last` is the unterminated final line.
        return Ok(line_start.unwrap_or(current_start)..text.len());
    }
    Err(RangeError::LinesOutOfBounds {
        first,
        last,
        line_count,
    })
}
