//! What the child writes and logs, shared by the child that writes it and the parent that
//! checks it: document ids, texts that can be regenerated from their first line, and the
//! lines of the acknowledgement log.

use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use store_mmap::DocId;

/// Ids of single documents are `0..SINGLE_KEYS`; thread `t` of a child owns the keys
/// congruent to `t` modulo the number of threads, so each key's writes are ordered.
pub const SINGLE_KEYS: u64 = 256;

/// When a write happened: the child's cycle and the writing thread's operation counter.
/// Versions of one key are ordered, because one thread writes each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The child process's cycle.
    pub cycle: u32,
    /// The operation's number within its thread and cycle.
    pub op: u64,
}

/// Batches write to slots `0..BATCH_SLOTS`, owned by threads like the single keys. A slot
/// is [`BATCH_MEMBERS`] documents: a batch of `len` puts members `0..len` and deletes the
/// rest, so after any crash every member of a slot must show the same batch.
pub const BATCH_SLOTS: u64 = 64;

/// Documents of a batch slot.
pub const BATCH_MEMBERS: u32 = 6;

/// The id of member `i` of batch slot `slot`.
pub fn member_id(slot: u64, i: u32) -> DocId {
    DocId::from(1u128 << 127 | u128::from(slot) << 32 | u128::from(i))
}

/// The text member `i` of a batch of `len` in `slot` at `version` puts.
///
/// One batch in eight has members of about [`LARGE_MEMBER_BYTES`]: with several members it
/// is larger than a segment ([`crate::store_options`]), so kills land in commits that span
/// segments too.
pub fn member_text(slot: u64, version: Version, len: u32, i: u32) -> String {
    let header = format!("b {slot} {} {} {len} {i}\n", version.cycle, version.op);
    let mut text = body(
        header,
        hash(&[1, slot, version.cycle.into(), version.op, i.into()]),
    );
    if hash(&[2, slot, version.cycle.into(), version.op]).is_multiple_of(8) {
        while text.len() < LARGE_MEMBER_BYTES {
            text.push_str(" spans segments");
        }
    }
    text
}

/// The size of the members of the batches larger than a segment.
pub const LARGE_MEMBER_BYTES: usize = 240 << 10;

/// Parses the first line of a batch member's text: its slot, version, batch length and
/// member number.
pub fn parse_member(text: &str) -> Option<(u64, Version, u32, u32)> {
    let mut fields = text.lines().next()?.split(' ');
    if fields.next()? != "b" {
        return None;
    }
    let slot = fields.next()?.parse().ok()?;
    let cycle = fields.next()?.parse().ok()?;
    let op = fields.next()?.parse().ok()?;
    let len = fields.next()?.parse().ok()?;
    let i = fields.next()?.parse().ok()?;
    Some((slot, Version { cycle, op }, len, i))
}

/// The id of single key `key`.
pub fn single_id(key: u64) -> DocId {
    DocId::from(key)
}

/// The text a put of `key` at `version` writes. Its first line names both, so the text
/// found in a store can be regenerated and compared byte for byte.
pub fn single_text(key: u64, version: Version) -> String {
    let header = format!("s {key} {} {}\n", version.cycle, version.op);
    body(header, hash(&[0, key, version.cycle.into(), version.op]))
}

/// Parses the first line of a single document's text.
pub fn parse_single(text: &str) -> Option<(u64, Version)> {
    let mut fields = text.lines().next()?.split(' ');
    if fields.next()? != "s" {
        return None;
    }
    let key = fields.next()?.parse().ok()?;
    let cycle = fields.next()?.parse().ok()?;
    let op = fields.next()?.parse().ok()?;
    Some((key, Version { cycle, op }))
}

/// Appends to `header` a body of words, some of them multi-byte UTF-8, whose length
/// (0 to about 6 KiB) and content follow from `seed`.
fn body(mut text: String, seed: u64) -> String {
    const WORDS: [&str; 8] = [
        "store",
        "segment",
        "fdatasync",
        "crash",
        "résumé",
        "日本語",
        "naïve",
        "Ω",
    ];
    let mut rng = SmallRng::seed_from_u64(seed);
    let words = match rng.random_range(0..10) {
        0 => 0,
        1 => rng.random_range(200..800),
        _ => rng.random_range(1..120),
    };
    for i in 0..words {
        if i > 0 {
            text.push(if rng.random_range(0..12) == 0 {
                '\n'
            } else {
                ' '
            });
        }
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    text
}

/// A stable 64-bit mix of `parts` (SplitMix64 steps).
fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for &part in parts {
        h ^= part;
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h = z ^ (z >> 31);
    }
    h
}

/// One line of the log: an operation about to be submitted (an intent) or acknowledged as
/// durable (an ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Written before the operation is submitted.
    Intent(Op),
    /// Written after the store acknowledged the operation as committed and durable.
    Ack(Op),
}

/// An operation of the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A put of a single key.
    Put(u64, Version),
    /// A delete of a single key.
    Delete(u64, Version),
    /// A batch of `len` puts (and deletes of the other members) in a batch slot.
    Batch {
        /// The slot.
        slot: u64,
        /// Its version.
        version: Version,
        /// Members put.
        len: u32,
    },
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, op) = match self {
            Line::Intent(op) => ('I', op),
            Line::Ack(op) => ('A', op),
        };
        match op {
            Op::Put(key, v) => writeln!(f, "{tag} P {key} {} {}", v.cycle, v.op),
            Op::Delete(key, v) => writeln!(f, "{tag} D {key} {} {}", v.cycle, v.op),
            Op::Batch { slot, version, len } => {
                writeln!(f, "{tag} B {slot} {} {} {len}", version.cycle, version.op)
            }
        }
    }
}

impl Line {
    /// Parses a line without its newline.
    pub fn parse(line: &str) -> Option<Line> {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
        let op = match *fields.get(1)? {
            "P" | "D" => {
                let key = num(2)?;
                let version = Version {
                    cycle: u32::try_from(num(3)?).ok()?,
                    op: num(4)?,
                };
                if fields[1] == "P" {
                    Op::Put(key, version)
                } else {
                    Op::Delete(key, version)
                }
            }
            "B" => Op::Batch {
                slot: num(2)?,
                version: Version {
                    cycle: u32::try_from(num(3)?).ok()?,
                    op: num(4)?,
                },
                len: u32::try_from(num(5)?).ok()?,
            },
            _ => return None,
        };
        match *fields.first()? {
            "I" => Some(Line::Intent(op)),
            "A" => Some(Line::Ack(op)),
            _ => None,
        }
    }
}
