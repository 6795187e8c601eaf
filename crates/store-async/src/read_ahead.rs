//! Sequential access detection: gets of consecutive ids make the store ask the kernel for the
//! records of the next ids. Only pages are read ahead; no text is kept, so nothing can go
//! stale.

use std::sync::Mutex;

use store_format::DocId;

/// Consecutive gets in a row that make a run sequential.
const RUN: u32 = 3;

/// The run of consecutive ids the gets are walking, and how far ahead it was advised.
#[derive(Default)]
pub(crate) struct Sequence {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: u128,
    run: u32,
    /// Ids below this one have been advised already.
    advised_until: u128,
}

impl Sequence {
    /// Notes a get of `id`; returns the ids to read ahead, if the run calls for it: the next
    /// `window` ids, once the gets have used up half of the last window. `can_advise` is false
    /// while an earlier read-ahead still runs: the run is followed, and its ids are left for a
    /// later call to name.
    pub(crate) fn next(&self, id: DocId, window: u32, can_advise: bool) -> Option<Vec<DocId>> {
        if window == 0 {
            return None;
        }
        let id = id.as_u128();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.run = if state.last.checked_add(1) == Some(id) {
            state.run.saturating_add(1)
        } else {
            0
        };
        state.last = id;
        if !can_advise
            || state.run + 1 < RUN
            || id.saturating_add(u128::from(window / 2)) < state.advised_until
        {
            return None;
        }
        let from = (id + 1).max(state.advised_until);
        let until = id.saturating_add(1 + u128::from(window));
        state.advised_until = until;
        Some((from..until).map(DocId::from_u128).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_consecutive_ids_reads_ahead_once_per_half_window() {
        let sequence = Sequence::default();
        let next = |n: u128| sequence.next(DocId::from_u128(n), 8, true);
        assert_eq!(next(10), None);
        assert_eq!(next(11), None);
        assert_eq!(
            sequence.next(DocId::from_u128(12), 8, false),
            None,
            "a read-ahead still runs"
        );
        let first = next(13).expect("a run of four");
        assert_eq!(first, (14..22).map(DocId::from_u128).collect::<Vec<_>>());
        let sequence = Sequence::default();
        let next = |n: u128| sequence.next(DocId::from_u128(n), 8, true);
        assert_eq!(next(10), None);
        assert_eq!(next(11), None);
        let first = next(12).expect("three in a row");
        assert_eq!(first, (13..21).map(DocId::from_u128).collect::<Vec<_>>());
        assert_eq!(next(13), None, "still well inside the advised window");
        assert_eq!(next(16), None, "a jump breaks the run");
        assert_eq!(next(17), None);
        let second = next(18).expect("a new run past half the window");
        assert_eq!(second, (21..27).map(DocId::from_u128).collect::<Vec<_>>());
        // At exactly half the window left (23 + 4 = 27), it reads ahead again.
        for n in 19..23 {
            assert_eq!(next(n), None, "{n}");
        }
        let third = next(23).expect("half the window used up");
        assert_eq!(third, (27..32).map(DocId::from_u128).collect::<Vec<_>>());
        assert_eq!(Sequence::default().next(DocId::from_u128(1), 0, true), None);
    }
}
