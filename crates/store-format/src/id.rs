//! Document ids: 128 bits, printed as ULIDs.

use std::fmt;
use std::str::FromStr;

/// The 128-bit id of a document.
///
/// The canonical text form is a 26-character ULID (Crockford base32), which is what every
/// tool prints. [`DocId::parse`] also accepts a decimal integer, so small numeric ids from
/// another system can be used directly; `DocId::parse("42")` and `DocId::from(42u128)` are the
/// same id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DocId(u128);

/// Domain separator mixed into [`DocId::from_key`], so that key-derived ids do not coincide
/// with the plain XXH3 hash of the same bytes computed for another purpose.
const KEY_DOMAIN: &[u8] = b"textstore.docid.v1\0";

/// Length of an id's text form.
const ULID_LEN: usize = 26;

impl DocId {
    /// The id with all bits zero.
    pub const ZERO: DocId = DocId(0);

    /// The id holding this integer.
    pub const fn from_u128(value: u128) -> DocId {
        DocId(value)
    }

    /// The id as an integer.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Derives an id from an arbitrary string key (a path, a URL, a primary key of another
    /// system).
    ///
    /// The function is XXH3-128 (seed 0) over the bytes `"textstore.docid.v1\0"` followed by
    /// the UTF-8 bytes of `key`. It is part of the format: it never changes between versions,
    /// so the same key maps to the same id in every release. It is not a cryptographic hash;
    /// do not derive ids from keys an adversary chooses if collisions matter to you.
    pub fn from_key(key: &str) -> DocId {
        let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
        hasher.update(KEY_DOMAIN);
        hasher.update(key.as_bytes());
        DocId(hasher.digest128())
    }

    /// Parses a ULID (26 Crockford base32 characters, case-insensitive) or a decimal integer
    /// below 2^128.
    ///
    /// Text of exactly 26 characters is always read as a ULID, even when it is all digits:
    /// that is the form ids are printed in, and the ULID of a small id (such as
    /// `00000000000000000000000010`, which is 32) is all digits. A decimal integer of 26
    /// digits is written with a leading zero.
    pub fn parse(text: &str) -> Result<DocId, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        if text.len() != ULID_LEN && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u128>()
                .map(DocId)
                .map_err(|_| IdError::DecimalOverflow {
                    text: text.to_owned(),
                });
        }
        ulid::Ulid::from_string(text)
            .map(|ulid| DocId(ulid.0))
            .map_err(|_| IdError::Invalid {
                text: text.to_owned(),
            })
    }

    /// The canonical 26-character ULID form.
    pub fn to_ulid_string(self) -> String {
        ulid::Ulid(self.0).to_string()
    }

    /// Encodes the id as 16 little-endian bytes, the on-disk form.
    pub const fn to_le_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// Decodes the on-disk form written by [`DocId::to_le_bytes`].
    pub const fn from_le_bytes(bytes: [u8; 16]) -> DocId {
        DocId(u128::from_le_bytes(bytes))
    }
}

impl From<u128> for DocId {
    fn from(value: u128) -> DocId {
        DocId(value)
    }
}

impl From<u64> for DocId {
    fn from(value: u64) -> DocId {
        DocId(u128::from(value))
    }
}

impl From<ulid::Ulid> for DocId {
    fn from(value: ulid::Ulid) -> DocId {
        DocId(value.0)
    }
}

impl FromStr for DocId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<DocId, IdError> {
        DocId::parse(text)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ulid::ULID_LEN];
        let text = ulid::Ulid(self.0).array_to_str(&mut buf);
        f.write_str(text)
    }
}

/// The ULID text, as [`fmt::Display`] writes it: ids read the same in JSON, logs and the
/// command line.
#[cfg(feature = "serde")]
impl serde::Serialize for DocId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ulid::ULID_LEN];
        serializer.serialize_str(ulid::Ulid(self.0).array_to_str(&mut buf))
    }
}

/// From a string [`DocId::parse`] accepts (the ULID text, or a decimal number); a string it
/// refuses is an error that says why.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for DocId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<DocId, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = DocId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a document id: 26 characters of ULID text, or a decimal number")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DocId, E> {
                DocId::parse(text).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

/// Why a string is not a document id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string was empty.
    #[error("a document id cannot be empty; give a ULID or a decimal integer")]
    Empty,
    /// All digits, but too large for 128 bits.
    #[error("document id {text:?} is a decimal number larger than 2^128 - 1")]
    DecimalOverflow {
        /// The rejected text.
        text: String,
    },
    /// Neither a ULID nor a decimal integer.
    #[error(
        "document id {text:?} is neither a ULID (26 Crockford base32 characters) nor a decimal integer"
    )]
    Invalid {
        /// The rejected text.
        text: String,
    },
}
