//! CRC32C (Castagnoli), the one checksum of the format, computed by `crc-fast`: on x86_64
//! it folds with (VP)CLMULQDQ and the SSE4.2 CRC instruction, chosen at run time, and on
//! processors without them it falls back to its portable table code. The values are the
//! same CRC-32/ISCSI as the `crc32c` crate's, which the tests check on random inputs.

/// The CRC32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(bytes)
}

/// The CRC32C of the bytes whose CRC32C is `crc`, followed by `bytes`.
pub fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    // The digest's state is the register before the final inversion.
    let mut digest =
        crc_fast::Digest::new_with_init_state(crc_fast::CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(bytes);
    digest.finalize() as u32
}
