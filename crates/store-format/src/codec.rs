//! Little-endian field access over fixed-size arrays.
//!
//! Every structure of the format is a fixed-size array whose fields live at constant offsets,
//! so the decoders read fields out of a `&[u8; N]` that has already been length-checked. The
//! offsets are constants; reading past them is a bug in this crate, caught by the round-trip
//! tests, never a condition input can trigger.
//!
//! Every accessor is `#[inline]`: without it, a release build called each one out of line
//! from decoders in other codegen units (four calls to decode a record header, on the path
//! of every get, for what is a load or two). A resident get measured 195-201 µs per 4096
//! with them inlined against 200-202 µs before, three runs each (`cargo bench -p
//! store-metrics --bench overhead -- get/plain`).

#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(array(buf, at))
}

#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(buf, at))
}

#[inline]
pub(crate) fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(buf, at))
}

#[inline]
pub(crate) fn get_u128(buf: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(array(buf, at))
}

#[inline]
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

#[inline]
fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

/// True when every byte in `buf` is zero: reserved fields must be, so that a later version can
/// give them a meaning.
#[inline]
pub(crate) fn all_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}
