//! The files of a store directory: every name the engine gives a file is spelled here.
//!
//! | file | what it holds | written |
//! |---|---|---|
//! | `LOCK` | the writer's lock, and the page through which it tells readers in other processes how far the data is committed (`shared.rs`) | by the writer, in place; never durable |
//! | `textstore.meta` | the store's uid and settings | once, atomically (`write_atomic`) |
//! | `0000000001.seg` ... | segments: the records | appended; sealed segments never change |
//! | `index.tsi` | the index checkpoint, probed in place | whole, atomically |
//! | `index.tsj` | the index journal: the index's changes since `index.tsi`, in frames | appended by the writer; started afresh under `index.tsj.tmp` |
//! | `retired.tsr` | segments a compaction replaced, and those holding their copies | whole, atomically |
//! | `0000000007.seg.tmp` | a compaction output before it takes its name | by the compaction |
//! | `limit.tsl` | the write limit of the newest segment when its file held an earlier segment (`limit.rs`) | by the writer: one of two slots in place, synced before the segment's records pass the last limit |
//! | `0000000003.spare` | the file of retired segment 3, kept to be written over as a new segment (`StoreOptions::spare_files`) | renamed from the segment's name, and to the new segment's |

/// The lock file, which also holds the writer's shared page.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// The metadata file.
pub(crate) const META_FILE: &str = "textstore.meta";
/// The index file.
pub(crate) const INDEX_FILE: &str = "index.tsi";
/// The index journal.
pub(crate) const JOURNAL_FILE: &str = "index.tsj";
/// The retired-segment list.
pub(crate) const RETIRED_FILE: &str = "retired.tsr";
/// The write limit of a segment written over a spare file.
pub(crate) const LIMIT_FILE: &str = "limit.tsl";
/// Suffix of a file being written before it takes its name: a compaction output, or the
/// temporary file of an atomic replacement.
pub(crate) const UNFINISHED_SUFFIX: &str = ".tmp";

/// Name of the segment file with this id.
pub(crate) fn segment_file_name(id: u32) -> String {
    format!("{id:010}.seg")
}

/// The segment id a file name denotes, if it names a segment.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u32> {
    parse_digits(name.strip_suffix(".seg")?)
}

/// The ten decimal digits of a file name's id.
fn parse_digits(digits: &str) -> Option<u32> {
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Name of the spare file that segment `id`'s file becomes once the segment is retired.
pub(crate) fn spare_file_name(id: u32) -> String {
    format!("{id:010}.spare")
}

/// Whether a file name names a spare file.
pub(crate) fn is_spare_file_name(name: &str) -> bool {
    parse_spare_file_name(name).is_some()
}

/// The id of the segment a spare file was, if the name names a spare file.
pub(crate) fn parse_spare_file_name(name: &str) -> Option<u32> {
    parse_digits(name.strip_suffix(".spare")?)
}

/// The name of compaction output `id` before it is in place.
pub(crate) fn unfinished_segment_file_name(id: u32) -> String {
    format!("{}{UNFINISHED_SUFFIX}", segment_file_name(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_or_spare_name_is_exactly_ten_digits_and_its_suffix() {
        for id in [0, 1, 42, u32::MAX] {
            assert_eq!(parse_segment_file_name(&segment_file_name(id)), Some(id));
            assert_eq!(parse_spare_file_name(&spare_file_name(id)), Some(id));
            assert!(is_spare_file_name(&spare_file_name(id)));
            assert_eq!(
                parse_segment_file_name(&unfinished_segment_file_name(id)),
                None,
                "an unfinished output is not a segment yet"
            );
        }
        // Names another program, or an earlier crash, could leave beside the store's own:
        // none of them is a segment or a spare, whatever `str::parse` would make of it.
        for stem in [
            "1",
            "000000001",
            "00000000001",
            "+000000001",
            "000000000a",
            " 000000001",
            "4294967296",
            "",
        ] {
            for (name, parsed) in [
                (
                    format!("{stem}.seg"),
                    parse_segment_file_name as fn(&str) -> _,
                ),
                (format!("{stem}.spare"), parse_spare_file_name),
            ] {
                assert_eq!(parsed(&name), None, "{name:?}");
            }
        }
        assert_eq!(parse_segment_file_name("0000000001.spare"), None);
        assert_eq!(parse_spare_file_name("0000000001.seg"), None);
        assert!(!is_spare_file_name("0000000001.seg"));
    }
}
