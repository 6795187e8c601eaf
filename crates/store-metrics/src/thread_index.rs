//! A small index for each live thread, handed back when the thread exits, so that per-thread
//! counters are one array lookup away.
//!
//! The lookup is a read of a thread-local `Cell<usize>` that is initialised by a constant and
//! has no destructor: the compiler makes it a plain load relative to the thread pointer, with
//! no state to check. The `thread_local` crate's lookup goes from the thread to a bucket, then
//! to a presence flag, then to the counters. In the criterion `overhead` bench, counters
//! reached with no per-thread lookup at all cost a get 3.1 to 4.7% against 7% through that
//! chain: the most a cheaper lookup can save.
//!
//! Invariant: an index belongs to at most one live thread. It returns to the free list from
//! the destructor of its thread's guard, after that thread's last use of it (the guard is
//! registered when the index is taken), and the free list's mutex orders the old owner's
//! writes before the next owner's.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

/// What [`current`] returns before the thread has an index, and what [`assign`] returns to a
/// thread it cannot give one (a thread whose thread-locals are being destroyed).
pub(crate) const NONE: usize = usize::MAX;

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(NONE) };
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

/// The indexes handed out: `next` has never been used, `free` were released. The smallest
/// free index goes first, so that indexes stay dense and fit a collector's array.
struct Indexes {
    next: usize,
    free: BinaryHeap<Reverse<usize>>,
}

static INDEXES: Mutex<Indexes> = Mutex::new(Indexes {
    next: 0,
    free: BinaryHeap::new(),
});

fn indexes() -> std::sync::MutexGuard<'static, Indexes> {
    // The critical sections below cannot panic midway, so a poisoned lock holds valid data.
    INDEXES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Releases its thread's index when the thread exits.
struct Guard(usize);

impl Drop for Guard {
    fn drop(&mut self) {
        INDEX.set(NONE);
        indexes().free.push(Reverse(self.0));
    }
}

/// The calling thread's index, or [`NONE`] if it has none yet.
#[inline(always)]
pub(crate) fn current() -> usize {
    INDEX.get()
}

/// Gives the calling thread an index, or returns the one it has.
#[cold]
#[inline(never)]
pub(crate) fn assign() -> usize {
    let index = current();
    if index != NONE {
        return index;
    }
    let index = {
        let mut indexes = indexes();
        match indexes.free.pop() {
            Some(Reverse(index)) => index,
            None => {
                indexes.next += 1;
                indexes.next - 1
            }
        }
    };
    let guarded = GUARD.try_with(|guard| *guard.borrow_mut() = Some(Guard(index)));
    if guarded.is_err() {
        // The thread is exiting and its guard is gone: the index could never come back.
        indexes().free.push(Reverse(index));
        return NONE;
    }
    INDEX.set(index);
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests of this module take and release indexes; each runs alone so that it sees
    /// the free list as its own actions left it.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn free() -> Vec<usize> {
        let mut free: Vec<usize> = indexes().free.iter().map(|&Reverse(i)| i).collect();
        free.sort_unstable();
        free
    }

    #[test]
    fn an_index_is_kept_by_its_thread_and_reused_after_it_exits() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mine = assign();
        assert_ne!(mine, NONE);
        assert_eq!(assign(), mine);
        assert_eq!(current(), mine);

        let exited = std::thread::spawn(assign).join().unwrap();
        assert_ne!(exited, mine);
        assert!(
            free().contains(&exited),
            "index {exited} not free: {:?}",
            free()
        );

        // The next thread takes the smallest free index.
        let smallest = free()[0];
        let next = std::thread::spawn(assign).join().unwrap();
        assert_eq!(next, smallest);
    }

    #[test]
    fn live_threads_have_distinct_indexes() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let index = assign();
                    // All eight hold their index at once before any exits.
                    barrier.wait();
                    index
                })
            })
            .collect();
        let mut seen: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|&i| free().contains(&i)));
    }
}
