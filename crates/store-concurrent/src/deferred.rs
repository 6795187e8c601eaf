//! Threads an open does not wait for: the compaction and scrub threads are spawned by the
//! writer thread once it runs, so that opening a store costs one thread spawn, not three.

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex, lock, thread};

/// Where a deferred thread's handle goes once it runs; stopping it before then means it
/// never starts.
#[derive(Default)]
pub(crate) struct ThreadSlot {
    stopped: AtomicBool,
    handle: Mutex<Option<thread::JoinHandle<()>>>,
}

/// A thread to spawn later: its name and body, the slot it reports to, and what to do if
/// it cannot be spawned.
pub(crate) struct Deferred {
    slot: Arc<ThreadSlot>,
    name: &'static str,
    body: Box<dyn FnOnce() + Send>,
    failed: Box<dyn FnOnce(std::io::Error) + Send>,
}

impl ThreadSlot {
    /// A thread for `slot` to start later, running `body`.
    pub(crate) fn defer(
        slot: &Arc<ThreadSlot>,
        name: &'static str,
        body: impl FnOnce() + Send + 'static,
        failed: impl FnOnce(std::io::Error) + Send + 'static,
    ) -> Deferred {
        Deferred {
            slot: Arc::clone(slot),
            name,
            body: Box::new(body),
            failed: Box::new(failed),
        }
    }

    /// Joins the thread if it started, and keeps it from starting if not. Idempotent.
    pub(crate) fn stop(&self) {
        let handle = {
            let mut handle = lock(&self.handle);
            self.stopped.store(true, Ordering::Release);
            handle.take()
        };
        if let Some(handle) = handle {
            // The thread reports its errors in its owner's stats.
            let _ = handle.join();
        }
    }
}

impl Deferred {
    /// Spawns the thread unless its slot was stopped first. A thread that cannot be spawned
    /// is reported to its owner, whose stats say so: the store works without it.
    pub(crate) fn spawn(self) {
        let mut handle = lock(&self.slot.handle);
        if self.slot.stopped.load(Ordering::Acquire) {
            return;
        }
        match thread::Builder::new()
            .name(self.name.to_owned())
            .spawn(self.body)
        {
            Ok(spawned) => *handle = Some(spawned),
            Err(err) => (self.failed)(err),
        }
    }
}
