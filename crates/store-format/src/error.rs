//! Decoding errors, and the checks that produce them.

use crate::codec::{get_u16, get_u32};

/// Which structure a decoding error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The 64-byte header at the start of a segment file.
    SegmentHeader,
    /// The header of a data record.
    Record,
    /// The header of the index (hint) file.
    IndexHeader,
    /// The entry table of the index file.
    IndexEntries,
    /// The store's metadata file.
    StoreMeta,
    /// The list of segments retired by compaction.
    RetiredList,
    /// The index journal: the index's changes since the index file.
    IndexJournal,
    /// A slot of the write-limit file.
    WriteLimit,
}

impl std::fmt::Display for Structure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Structure::SegmentHeader => "segment header",
            Structure::Record => "record",
            Structure::IndexHeader => "index header",
            Structure::IndexEntries => "index entries",
            Structure::StoreMeta => "store metadata",
            Structure::RetiredList => "retired segment list",
            Structure::IndexJournal => "index journal",
            Structure::WriteLimit => "write limit",
        })
    }
}

/// Why bytes do not decode. Every variant carries the offset, within the buffer handed to
/// the decoder, of the structure at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes remain than the structure needs.
    #[error("{what} at offset {offset} is truncated: it needs {needed} bytes, {available} remain")]
    Truncated {
        /// The structure.
        what: Structure,
        /// Where it starts.
        offset: u64,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that remain.
        available: u64,
    },
    /// The magic bytes are not this structure's.
    #[error("{what} at offset {offset} has bad magic bytes {found:02x?}")]
    BadMagic {
        /// The structure.
        what: Structure,
        /// Where it starts.
        offset: u64,
        /// The bytes found instead of the magic.
        found: Vec<u8>,
    },
    /// Written by a format version this build does not read.
    #[error(
        "{what} at offset {offset} has format version {found}; this build reads version {supported}"
    )]
    UnsupportedVersion {
        /// The structure.
        what: Structure,
        /// Where it starts.
        offset: u64,
        /// The version found.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// The stored checksum does not match the bytes.
    #[error(
        "{what} at offset {offset} fails its checksum: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// The structure.
        what: Structure,
        /// Where it starts.
        offset: u64,
        /// The checksum stored in the structure.
        stored: u32,
        /// The checksum of the bytes as they are.
        computed: u32,
    },
    /// A field holds a value the format does not allow.
    #[error("{what} at offset {offset} has an invalid {field}: {value}")]
    InvalidField {
        /// The structure.
        what: Structure,
        /// Where it starts.
        offset: u64,
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
}

impl FormatError {
    /// The offset of the structure at fault, within the buffer handed to the decoder.
    pub fn offset(&self) -> u64 {
        match self {
            FormatError::Truncated { offset, .. }
            | FormatError::BadMagic { offset, .. }
            | FormatError::UnsupportedVersion { offset, .. }
            | FormatError::ChecksumMismatch { offset, .. }
            | FormatError::InvalidField { offset, .. } => *offset,
        }
    }
}

/// The error for a field of `what` (which starts at `offset`) holding `value`, which the
/// format does not allow. Cold, like the other error constructors here, so that a decoder
/// on the path of every get keeps its failures out of the way of its success.
#[cold]
pub(crate) fn invalid_at(
    what: Structure,
    offset: u64,
    field: &'static str,
    value: u64,
) -> FormatError {
    FormatError::InvalidField {
        what,
        offset,
        field,
        value,
    }
}

/// [`invalid_at`] for a structure at the start of the buffer.
pub(crate) fn invalid(what: Structure, field: &'static str, value: u64) -> FormatError {
    invalid_at(what, 0, field, value)
}

/// Checks that `buf[offset..]` holds at least `needed` bytes.
#[inline]
pub(crate) fn need(
    what: Structure,
    buf: &[u8],
    offset: usize,
    needed: usize,
) -> Result<(), FormatError> {
    let available = buf.len().saturating_sub(offset);
    if available < needed {
        return Err(truncated(what, offset, needed, available));
    }
    Ok(())
}

#[cold]
fn truncated(what: Structure, offset: usize, needed: usize, available: usize) -> FormatError {
    FormatError::Truncated {
        what,
        offset: offset as u64,
        needed: needed as u64,
        available: available as u64,
    }
}

/// Compares the stored checksum with the computed one.
pub(crate) fn check_crc(
    what: Structure,
    offset: usize,
    stored: u32,
    computed: u32,
) -> Result<(), FormatError> {
    if stored != computed {
        return Err(FormatError::ChecksumMismatch {
            what,
            offset: offset as u64,
            stored,
            computed,
        });
    }
    Ok(())
}

/// The error for a structure at `offset` that does not start with its magic (`found`).
#[cold]
pub(crate) fn bad_magic(what: Structure, offset: usize, found: &[u8]) -> FormatError {
    FormatError::BadMagic {
        what,
        offset: offset as u64,
        found: found.to_vec(),
    }
}

/// Checks the common prologue of the fixed-size headers (metadata, segment, index): length,
/// 8-byte magic, CRC32C of everything before the last 4 bytes, format version at offset 8 and
/// header length at offset 10. Returns the header's bytes.
pub(crate) fn check_header<'a>(
    what: Structure,
    buf: &'a [u8],
    magic: &[u8; 8],
    len: usize,
) -> Result<&'a [u8], FormatError> {
    need(what, buf, 0, len)?;
    let buf = &buf[..len];
    if buf[..8] != *magic {
        return Err(bad_magic(what, 0, &buf[..8]));
    }
    let crc_at = len - 4;
    check_crc(
        what,
        0,
        get_u32(buf, crc_at),
        crate::checksum::crc32c(&buf[..crc_at]),
    )?;
    let version = get_u16(buf, 8);
    if !(crate::OLDEST_READ_VERSION..=crate::FORMAT_VERSION).contains(&version) {
        return Err(FormatError::UnsupportedVersion {
            what,
            offset: 0,
            found: version,
            supported: crate::FORMAT_VERSION,
        });
    }
    let header_len = get_u16(buf, 10);
    if usize::from(header_len) != len {
        return Err(invalid_at(what, 0, "header length", u64::from(header_len)));
    }
    Ok(buf)
}
