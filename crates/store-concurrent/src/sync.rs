//! Every synchronization primitive of this crate, switched between std and loom.
//!
//! Built with `--cfg textstore_loom`, the atomics, locks, `Arc` and threads come from loom, so
//! that the models in `loom_models` explore every interleaving of the real code. The other
//! modules never name `std::sync` or `loom` themselves.
//!
//! [`AtomicArc`] is the one wrapper: arc-swap in production, and under loom a mutex around an
//! `Arc`. The loom version is a model of arc-swap's contract that the protocols rely on: a
//! load returns the value of the latest store in the modification order that happens before
//! it (or a later one), and a store happens before every load that returns it. arc-swap
//! itself is not modelled; its own test suite covers it.
//!
//! The request channel (crossbeam) is not modelled either: the code that uses it, the writer
//! loop and the handle, is left out of loom builds, and the models drive the ticket handshake
//! and the publication protocol directly.

/// An `Arc` that loom does not model, for immutable data shared as a trait object (the
/// engine's checkpointed index): its contents need no ordering, and loom's `Arc` cannot
/// hold an unsized value.
pub(crate) use std::sync::Arc as StdArc;
#[cfg(not(textstore_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(textstore_loom))]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}
#[cfg(not(textstore_loom))]
pub(crate) use crossbeam_channel as channel;
#[cfg(not(textstore_loom))]
pub(crate) use std::thread;

#[cfg(textstore_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(textstore_loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
}
#[cfg(textstore_loom)]
pub(crate) use loom::thread;

/// An `Arc<T>` that can be replaced while other threads read it.
pub(crate) struct AtomicArc<T> {
    #[cfg(not(textstore_loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(textstore_loom)]
    inner: Mutex<Arc<T>>,
}

/// What [`AtomicArc::load`] returns: derefs to the `Arc<T>` that was current.
#[cfg(not(textstore_loom))]
pub(crate) type Guard<T> = arc_swap::Guard<Arc<T>>;
/// What [`AtomicArc::load`] returns: derefs to the `Arc<T>` that was current.
#[cfg(textstore_loom)]
pub(crate) type Guard<T> = LoomGuard<T>;

/// The loom stand-in for arc-swap's guard.
#[cfg(textstore_loom)]
pub(crate) struct LoomGuard<T>(Arc<T>);

#[cfg(textstore_loom)]
impl<T> std::ops::Deref for LoomGuard<T> {
    type Target = Arc<T>;

    fn deref(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T> AtomicArc<T> {
    pub(crate) fn new(value: Arc<T>) -> AtomicArc<T> {
        AtomicArc {
            #[cfg(not(textstore_loom))]
            inner: arc_swap::ArcSwap::new(value),
            #[cfg(textstore_loom)]
            inner: Mutex::new(value),
        }
    }

    /// The current value. In production this takes no lock and, in the common case, does
    /// not touch the `Arc`'s shared reference count, so readers do not contend.
    pub(crate) fn load(&self) -> Guard<T> {
        #[cfg(not(textstore_loom))]
        {
            self.inner.load()
        }
        #[cfg(textstore_loom)]
        {
            LoomGuard(Arc::clone(&self.inner.lock().unwrap()))
        }
    }

    /// Replaces the value. The old one is freed once no guard refers to it.
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(textstore_loom))]
        {
            self.inner.store(value);
        }
        #[cfg(textstore_loom)]
        {
            *self.inner.lock().unwrap() = value;
        }
    }
}

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every critical
/// section of this crate leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
