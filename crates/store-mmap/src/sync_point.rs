//! Sync points: places in the engine where a test runs code of its own, to force an
//! interleaving that no schedule reaches reliably (RocksDB's `TEST_SYNC_POINT`).
//!
//! A read-only handle lists a store's files and then opens them, while the writer, in
//! another process, may remove a file between the two steps (a compaction's input, once
//! its checkpoint is in place). The handle retries its load when that happens; a test
//! that wants to see the retry must make the writer act at that very moment. The hook a
//! test sets runs on the thread that set it, at each point that thread passes, until the
//! guard [`on_sync_points`] returns is dropped. Built only with the `fault-injection`
//! feature; without it the points are not compiled in.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::path::Path;

/// A place a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPoint {
    /// A read-only handle, loading or refreshing its view, is about to open the segment
    /// file it found listed under the path the hook gets.
    ReaderOpensSegment,
}

type Hook = Box<dyn FnMut(SyncPoint, &Path)>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Keeps a hook set on this thread; dropping it removes the hook.
#[must_use = "the hook is removed when the guard is dropped"]
pub struct SyncPoints {
    /// The hook belongs to the thread that set it.
    _thread: PhantomData<*const ()>,
}

impl Drop for SyncPoints {
    fn drop(&mut self) {
        HOOK.with(|slot| slot.borrow_mut().take());
    }
}

/// Runs `hook` at every sync point this thread passes, with the point and the path of the
/// file it is about, until the guard is dropped; it replaces a hook set before. The hook
/// may call into any store: the points those calls pass run no hook.
pub fn on_sync_points(hook: impl FnMut(SyncPoint, &Path) + 'static) -> SyncPoints {
    HOOK.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
    SyncPoints {
        _thread: PhantomData,
    }
}

/// Runs this thread's hook, if it has one, at `point`.
pub(crate) fn reached(point: SyncPoint, path: &Path) {
    // Taken out while it runs, so that the stores it calls into find no hook.
    let Some(mut hook) = HOOK.with(|slot| slot.borrow_mut().take()) else {
        return;
    };
    hook(point, path);
    HOOK.with(|slot| {
        // A hook the running one set in its place stays.
        slot.borrow_mut().get_or_insert(hook);
    });
}
