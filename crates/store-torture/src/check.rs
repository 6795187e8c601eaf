//! The parent's model of what the store must hold, built from the children's logs, and
//! the check of a store against it.

use std::collections::HashMap;

use store_mmap::Store;

use crate::Report;
use crate::workload::{
    BATCH_MEMBERS, BATCH_SLOTS, Line, Op, SINGLE_KEYS, Version, member_id, member_text,
    parse_member, parse_single, single_id, single_text,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Delete,
}

/// What is known of one document or batch slot.
#[derive(Debug, Default)]
struct KeyState {
    /// The newest operation known to be durable (acknowledged, or seen after a crash); the
    /// store must reflect it or a later attempt. `None`: nothing of the key is durable yet.
    floor: Option<(Version, Kind)>,
    /// Operations attempted after the floor and not acknowledged.
    attempts: Vec<(Version, Kind)>,
}

/// A document, or a batch slot, whose writes the model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Single(u64),
    Slot(u64),
}

/// What the store must hold.
#[derive(Debug, Default)]
pub(crate) struct Model {
    targets: HashMap<Target, KeyState>,
}

impl Model {
    /// Takes in one cycle's log. A last line without its newline was cut by the kill.
    pub(crate) fn absorb(&mut self, log: &str, report: &mut Report) -> Result<(), String> {
        let complete = match log.rfind('\n') {
            Some(end) => &log[..end],
            None => "",
        };
        for raw in complete.lines() {
            let line = Line::parse(raw).ok_or_else(|| format!("unreadable log line {raw:?}"))?;
            let (op, acked) = match line {
                Line::Intent(op) => (op, false),
                Line::Ack(op) => (op, true),
            };
            let (target, version, kind) = match op {
                Op::Put(key, v) => (Target::Single(key), v, Kind::Put),
                Op::Delete(key, v) => (Target::Single(key), v, Kind::Delete),
                Op::Batch { slot, version, .. } => (Target::Slot(slot), version, Kind::Put),
            };
            let state = self.targets.entry(target).or_default();
            if !acked {
                state.attempts.push((version, kind));
                continue;
            }
            match op {
                Op::Put(..) => report.acked_puts += 1,
                Op::Delete(..) => report.acked_deletes += 1,
                Op::Batch { .. } => report.acked_batches += 1,
            }
            state.floor = Some((version, kind));
            state.attempts.retain(|&(v, _)| v > version);
        }
        Ok(())
    }

    /// Checks every document the model knows of against `store`, then makes what it found
    /// the new floor: a later crash may not take the store back before it.
    pub(crate) fn check(&mut self, store: &Store, report: &mut Report) -> Result<(), String> {
        for key in 0..SINGLE_KEYS {
            let found = read_single(store, key, report)?;
            self.settle(Target::Single(key), found, report)?;
        }
        for slot in 0..BATCH_SLOTS {
            let found = read_slot(store, slot, report)?;
            self.settle(Target::Slot(slot), found, report)?;
        }
        Ok(())
    }

    /// Checks that `found` (a put's version, or `None` for no document) is the floor of
    /// `target` or one of its attempts since, and makes it the new floor.
    fn settle(
        &mut self,
        target: Target,
        found: Option<Version>,
        report: &mut Report,
    ) -> Result<(), String> {
        let state = self.targets.entry(target).or_default();
        let found = match found {
            Some(version) => (version, Kind::Put),
            None => match state.floor {
                None | Some((_, Kind::Delete)) => {
                    state.attempts.clear();
                    return Ok(());
                }
                Some((floor, Kind::Put)) => {
                    let deleted = state
                        .attempts
                        .iter()
                        .find(|&&(_, kind)| kind == Kind::Delete);
                    match deleted {
                        Some(&found) => found,
                        None => {
                            return Err(format!("{target:?}, acknowledged at {floor:?}, is lost"));
                        }
                    }
                }
            },
        };
        if state.floor != Some(found) {
            if !state.attempts.contains(&found) {
                return Err(format!(
                    "{target:?} is at {found:?}, which is neither its acknowledged state {:?} nor a later attempt",
                    state.floor
                ));
            }
            report.unacked_found += 1;
            state.floor = Some(found);
        }
        state.attempts.clear();
        Ok(())
    }
}

/// The version of the put that single document `key` holds, after checking its text byte
/// for byte.
pub(crate) fn read_single(
    store: &Store,
    key: u64,
    report: &mut Report,
) -> Result<Option<Version>, String> {
    let id = single_id(key);
    let got = store.get(id).map_err(|err| format!("get {id}: {err}"))?;
    report.docs_checked += 1;
    let Some(doc) = got else { return Ok(None) };
    match parse_single(&doc) {
        Some((holder, version)) if holder == key && *doc == *single_text(key, version) => {
            Ok(Some(version))
        }
        _ => Err(format!(
            "document {key} holds text that was never written: {:?}",
            first_line(&doc)
        )),
    }
}

/// The version of the batch that slot `slot` holds, after checking that every member
/// shows that batch (present with its text below its length, absent past it).
pub(crate) fn read_slot(
    store: &Store,
    slot: u64,
    report: &mut Report,
) -> Result<Option<Version>, String> {
    let mut seen: Option<(Version, u32)> = None;
    let mut present = Vec::new();
    for i in 0..BATCH_MEMBERS {
        let id = member_id(slot, i);
        let got = store.get(id).map_err(|err| format!("get {id}: {err}"))?;
        report.docs_checked += 1;
        let Some(doc) = got else { continue };
        let (holder, version, len, member) = parse_member(&doc)
            .filter(|&(holder, version, len, member)| {
                *doc == *member_text(holder, version, len, member)
            })
            .ok_or_else(|| {
                format!(
                    "batch member {id} holds text that was never written: {:?}",
                    first_line(&doc)
                )
            })?;
        if holder != slot || member != i {
            return Err(format!(
                "batch member {id} holds the text of slot {holder} member {member}"
            ));
        }
        if seen.is_some_and(|s| s != (version, len)) {
            return Err(format!(
                "batch slot {slot} mixes two batches: {seen:?} and {:?}",
                (version, len)
            ));
        }
        seen = Some((version, len));
        present.push(i);
    }
    match seen {
        None => Ok(None),
        Some((version, len)) if present == (0..len).collect::<Vec<_>>() => Ok(Some(version)),
        Some((version, len)) => Err(format!(
            "batch slot {slot} holds members {present:?} of the batch at {version:?}, which put members 0..{len}: the batch is partly there"
        )),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
