//! The format's CRC32C (crc-fast, hardware-folded where the processor allows) against two
//! references: the `crc32c` crate, and a bitwise implementation in these tests.

use proptest::prelude::*;

#[test]
fn the_check_value_of_crc32c() {
    assert_eq!(store_format::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(store_format::crc32c(b""), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn crc32c_agrees_with_both_references(
        bytes in prop::collection::vec(any::<u8>(), 0..9000),
        split in any::<prop::sample::Index>(),
    ) {
        let ours = store_format::crc32c(&bytes);
        prop_assert_eq!(ours, crc32c::crc32c(&bytes));
        prop_assert_eq!(ours, crate::decode::bitwise_crc32c(&bytes));
        // Appending continues the checksum, as the record's does across its parts.
        let at = split.index(bytes.len() + 1);
        let head = store_format::crc32c(&bytes[..at]);
        prop_assert_eq!(store_format::crc32c_append(head, &bytes[at..]), ours);
        prop_assert_eq!(
            crc32c::crc32c_append(head, &bytes[at..]),
            store_format::crc32c_append(head, &bytes[at..])
        );
    }
}
