//! What the fault models of the engine (`tests/engine/faults.rs`) and of the concurrent
//! handle (`store-concurrent`'s `tests/concurrent/faults.rs`, which includes this file) share:
//! the model of a store's documents, what a power cut may leave of it, and the texts and
//! faults they draw.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use store_mmap::fault::{Fault, FaultOp};
use store_mmap::{Change, Changes, DocId, DocRead, Durability};

/// The documents, by key.
pub(crate) type Model = BTreeMap<u64, String>;

/// `model` with `writes` applied in order: a text puts, `None` deletes.
pub(crate) fn applied<'a>(
    model: &Model,
    writes: impl IntoIterator<Item = (u64, Option<&'a String>)>,
) -> Model {
    let mut next = model.clone();
    for (k, text) in writes {
        match text {
            Some(text) => next.insert(k, text.clone()),
            None => next.remove(&k),
        };
    }
    next
}

/// What `store` holds of the documents `0..keys`, which must be all of its `len`
/// documents. A read that fails is a failure of the test.
pub(crate) fn held(store: &impl DocRead, keys: u64, len: usize) -> Result<Model, TestCaseError> {
    let mut found = Model::new();
    for k in 0..keys {
        match store.get(DocId::from(k)) {
            Ok(Some(doc)) => {
                found.insert(k, doc.to_string());
            }
            Ok(None) => {}
            Err(err) => return Err(TestCaseError::fail(format!("get {k}: {err}"))),
        }
    }
    prop_assert_eq!(len, found.len(), "documents outside the model's keys");
    Ok(found)
}

/// The change feed `feed`, from the start, applied in order to an empty model of the
/// documents `0..keys`; its sequence numbers must rise.
pub(crate) fn folded(feed: Changes, keys: u64) -> Result<Model, TestCaseError> {
    let mut model = Model::new();
    let mut last = 0;
    for change in feed {
        let change = change.map_err(|err| TestCaseError::fail(format!("the feed: {err}")))?;
        prop_assert!(
            change.seq() > last,
            "the feed went back to {}",
            change.seq()
        );
        last = change.seq();
        let k = (0..keys)
            .find(|&k| DocId::from(k) == change.id())
            .expect("the feed names a model document");
        match change {
            Change::Put { doc, .. } => model.insert(k, doc.to_string()),
            Change::Delete { .. } => model.remove(&k),
        };
    }
    Ok(model)
}

/// Runs `check` over `cases` random sequences of 1 to `max_steps` steps drawn from `step`,
/// each case on fresh files; panics with the shrunk sequence of the first that fails.
pub(crate) fn check_sequences<S: Strategy>(
    cases: u32,
    step: S,
    max_steps: usize,
    check: impl Fn(Vec<S::Value>) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(err) = runner.run(&proptest::collection::vec(step, 1..max_steps), check) {
        panic!("{err}");
    }
}

/// Texts the models write: empty, short ASCII, any printable characters (multi-byte ones
/// included), and runs long enough to fill small segments quickly.
pub(crate) fn texts() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        Just(String::new()),
        "[a-z ]{1,40}",
        "\\PC{1,200}",
        "x{300,900}"
    ]
}

/// Every fault the models inject: a short write, or any operation failing. A commit starts
/// a write-back only past 8 MiB, far above the models' commits (the round-trip tests fail
/// those).
pub(crate) fn model_faults() -> Vec<Fault> {
    std::iter::once(Fault::ShortWrite)
        .chain(
            FaultOp::ALL
                .into_iter()
                .filter(|&op| op != FaultOp::WriteBack)
                .map(Fault::Fail),
        )
        .collect()
}

/// What a power cut may leave of the commits: the state after the last commit a sync made
/// durable, then the state after each commit since. Under `Durability::Sync` a commit is
/// durable when it returns, so only the last state is left.
pub(crate) struct Durable {
    durability: Durability,
    states: Vec<Model>,
}

impl Durable {
    pub(crate) fn new(durability: Durability) -> Durable {
        Durable {
            durability,
            states: vec![Model::new()],
        }
    }

    /// What the store holds now.
    pub(crate) fn current(&self) -> &Model {
        self.states.last().expect("a state")
    }

    pub(crate) fn committed(&mut self, next: Model) {
        if self.durability == Durability::Sync {
            self.states.clear();
        }
        self.states.push(next);
    }

    /// Every commit so far is durable.
    pub(crate) fn synced(&mut self) {
        self.states.drain(..self.states.len() - 1);
    }

    /// The store holds `found` after an open that followed a power cut (`cut`) or a handle
    /// dropped or closed: after a cut, one of the states, else the current one; either way
    /// or with `failed` (a write that failed, whole or not at all) applied. What an open
    /// serves is durable. Returns how many commits the cut took.
    pub(crate) fn reopened(
        &mut self,
        found: Model,
        cut: bool,
        failed: Option<&Model>,
    ) -> Result<u64, TestCaseError> {
        let kept = if failed == Some(&found) {
            Some(self.states.len() - 1)
        } else if cut {
            self.states.iter().rposition(|state| *state == found)
        } else {
            Some(self.states.len() - 1).filter(|_| found == *self.current())
        };
        let Some(kept) = kept else {
            return Err(TestCaseError::fail(format!(
                "after {}, the store holds {found:?}: expected {}{:?}{}",
                if cut { "a power cut" } else { "a reopen" },
                if cut { "one of " } else { "" },
                if cut {
                    &self.states[..]
                } else {
                    &self.states[self.states.len() - 1..]
                },
                failed.map_or(String::new(), |f| format!(" or {f:?}")),
            )));
        };
        let lost = self.states.len() - 1 - kept;
        self.states = vec![found];
        Ok(lost as u64)
    }
}
