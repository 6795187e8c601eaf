//! The read handle: cheap, clonable, `Send + Sync`, derefs to `&str`.

use std::fmt;
use std::ops::{Deref, Range};
use std::str::Utf8Error;

use bytes::Bytes;
use bytestring::ByteString;

use crate::range::{RangeError, TextRange};

/// Text of a document as returned by a read.
///
/// A `Text` shares the memory it was read from (for the engine: the memory-mapped segment)
/// and keeps it alive, so a read copies nothing and the text stays valid for as long as the
/// handle lives, whatever the store does meanwhile. Cloning is a reference-count increment.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(ByteString);

impl Text {
    /// Wraps `bytes` after checking that they are UTF-8 (with the standard library's
    /// validator; the engine uses a SIMD one on its read path).
    pub fn from_utf8(bytes: Bytes) -> Result<Text, Utf8Error> {
        ByteString::try_from(bytes).map(Text)
    }

    /// Wraps a string already known to be UTF-8.
    pub fn from_byte_string(text: ByteString) -> Text {
        Text(text)
    }

    /// A text that borrows a static string.
    pub const fn from_static(text: &'static str) -> Text {
        Text(ByteString::from_static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared bytes behind the text.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Gives up the UTF-8 guarantee and returns the shared bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// The sub-text at `range`, sharing the same memory.
    ///
    /// # Panics
    /// If `range` is out of bounds or does not fall on character boundaries; ranges from
    /// [`crate::TextRange::resolve`] always do.
    pub fn slice(&self, range: Range<usize>) -> Text {
        Text(self.0.slice_ref(&self.0[range]))
    }

    /// The part of the text that `range` names, sharing the memory.
    pub fn extract(&self, range: TextRange) -> Result<Text, RangeError> {
        Ok(self.slice(range.resolve(self)?))
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(ByteString::from(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(ByteString::from(text))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// The latest version of a document: its text and the sequence number of the write that
/// produced it. Derefs to the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    seq: u64,
    text: Text,
}

impl Doc {
    /// Pairs a text with the sequence number of its write.
    pub fn new(seq: u64, text: Text) -> Doc {
        Doc { seq, text }
    }

    /// Sequence number of the write that produced this version. A later write of the same
    /// document has a larger number, so `(id, seq)` names one version for ever.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The text.
    pub fn text(&self) -> &Text {
        &self.text
    }

    /// The text, without the sequence number.
    pub fn into_text(self) -> Text {
        self.text
    }
}

impl Deref for Doc {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// What the index knows of a document without reading its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocMeta {
    /// Sequence number of the latest write.
    pub seq: u64,
    /// Length of the text in bytes.
    pub text_len: u64,
}
