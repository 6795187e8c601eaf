//! A reader process: opens the store read-only beside the writing children (and between
//! them, while no writer is live), and reads every document again and again, refreshing
//! between passes, until told to stop.
//!
//! What each pass checks, in the view of one refresh:
//! - every text is one that was written, byte for byte (its first line names its version);
//! - every batch slot shows one batch whole;
//! - no document goes back to an older version than an earlier pass saw.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use store_mmap::{Error as StoreError, Refreshed, Store};

use crate::check::{read_single, read_slot};
use crate::workload::{BATCH_SLOTS, SINGLE_KEYS, Version};
use crate::{Error, Report, store_options};

/// What a reader did, printed as one line for the parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderReport {
    /// Full passes over every document.
    pub passes: u64,
    /// Refreshes that brought in new commits or a new layout.
    pub refreshes: u64,
    /// Documents read and checked.
    pub docs: u64,
    /// Distinct writer cycles whose writes the reader saw.
    pub cycles_seen: u64,
}

impl std::fmt::Display for ReaderReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "passes {} refreshes {} docs {} cycles {}",
            self.passes, self.refreshes, self.docs, self.cycles_seen
        )
    }
}

impl ReaderReport {
    /// Parses the line [`std::fmt::Display`] writes.
    pub fn parse(line: &str) -> Option<ReaderReport> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| fields.get(i)?.parse().ok();
        Some(ReaderReport {
            passes: num(1)?,
            refreshes: num(3)?,
            docs: num(5)?,
            cycles_seen: num(7)?,
        })
    }
}

/// Reads the store at `store` until the file `stop` exists.
pub fn run(store: &Path, stop: &Path) -> Result<ReaderReport, Error> {
    let mut view = loop {
        match Store::open_read_only(store, store_options()) {
            Ok(view) => break view,
            // The first writer has not created the store yet.
            Err(StoreError::NotAStore { .. }) if !stop.exists() => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(err) => return Err(err.into()),
        }
    };
    let mut report = ReaderReport::default();
    let mut latest: HashMap<(bool, u64), Version> = HashMap::new();
    let mut cycles = std::collections::BTreeSet::new();
    let mut checked = Report::default();
    while !stop.exists() {
        for key in 0..SINGLE_KEYS {
            let found = read_single(&view, key, &mut checked).map_err(violation)?;
            settle(&mut latest, (false, key), found, &mut cycles)?;
        }
        for slot in 0..BATCH_SLOTS {
            let found = read_slot(&view, slot, &mut checked).map_err(violation)?;
            settle(&mut latest, (true, slot), found, &mut cycles)?;
        }
        report.passes += 1;
        if view.refresh()? != Refreshed::Unchanged {
            report.refreshes += 1;
        }
    }
    report.docs = checked.docs_checked;
    report.cycles_seen = cycles.len() as u64;
    Ok(report)
}

/// Checks that `target` is not older than it was, and notes its version.
fn settle(
    latest: &mut HashMap<(bool, u64), Version>,
    target: (bool, u64),
    found: Option<Version>,
    cycles: &mut std::collections::BTreeSet<u32>,
) -> Result<(), Error> {
    let Some(version) = found else {
        // Deleted: a later put must still be newer than what was seen.
        return Ok(());
    };
    cycles.insert(version.cycle);
    if let Some(before) = latest.insert(target, version)
        && before > version
    {
        return Err(violation(format!(
            "{target:?} went back from {before:?} to {version:?}"
        )));
    }
    Ok(())
}

fn violation(what: String) -> Error {
    Error::Violation { cycle: 0, what }
}
