//! The scan and the change feed across kills: what a follower of the store (an indexer)
//! sees when the writer is killed between its polls.

use std::collections::BTreeMap;

use store_mmap::{Change, DocId, Error, Store};

use crate::Report;

/// What the follower knows: the position its next feed starts after, and each live
/// document's sequence number as of it.
#[derive(Default)]
pub(crate) struct Follower {
    known: Option<(u64, BTreeMap<DocId, u64>)>,
}

impl Follower {
    /// Scans the reopened store, then checks the feed from the last position against it: the
    /// changes, applied to what was known, give exactly what the scan found; or the feed is
    /// refused because a compaction dropped a delete after the position.
    pub(crate) fn check(&mut self, store: &Store, report: &mut Report) -> Result<(), String> {
        let scan = store.scan();
        let as_of = scan.as_of();
        let mut now = BTreeMap::new();
        for found in scan {
            let (id, doc) = found.map_err(|err| format!("the scan failed: {err}"))?;
            if now.insert(id, doc.seq()).is_some() {
                return Err(format!("the scan yielded document {id} twice"));
            }
        }
        if now.len() != store.len() {
            return Err(format!(
                "the scan yielded {} documents, the store holds {}",
                now.len(),
                store.len()
            ));
        }
        if let Some((position, mut state)) = self.known.take() {
            match store.changes_since(position) {
                Ok(changes) => {
                    let upto = changes.upto();
                    let mut previous = position;
                    for change in changes {
                        let change = change.map_err(|err| format!("the feed failed: {err}"))?;
                        if change.seq() <= previous {
                            return Err(format!(
                                "the feed went from seq {previous} to {}",
                                change.seq()
                            ));
                        }
                        previous = change.seq();
                        match change {
                            Change::Put { id, doc } => state.insert(id, doc.seq()),
                            Change::Delete { id, .. } => state.remove(&id),
                        };
                    }
                    if state != now {
                        let differ: Vec<_> = state
                            .keys()
                            .chain(now.keys())
                            .filter(|id| state.get(id) != now.get(id))
                            .map(|id| (id.to_string(), state.get(id), now.get(id)))
                            .collect();
                        return Err(format!(
                            "the feed from seq {position} to {upto} (floor {floor}) applied to what was known differs from the scan as of {as_of} in {} documents (id, fed, scanned): {differ:?}",
                            differ.len(),
                            floor = store.change_floor(),
                        ));
                    }
                    report.feeds_followed += 1;
                }
                Err(Error::ChangesCompacted { floor, .. }) if floor > position => {
                    report.feeds_refused += 1;
                }
                Err(err) => return Err(format!("the feed from seq {position} failed: {err}")),
            }
        }
        self.known = Some((as_of, now));
        Ok(())
    }
}
