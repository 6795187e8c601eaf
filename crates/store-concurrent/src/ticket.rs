//! The handshake between a submitter and the writer thread: a [`Ticket`] the submitter waits
//! on, and a `Completer` that travels with the request.
//!
//! Every ticket is completed exactly once: `Completer::complete` consumes the completer, and
//! a completer dropped without completing (the writer stopped, the queue was discarded at
//! shutdown) completes its ticket with [`Error::Closed`]. A ticket may be dropped unread;
//! the write it stands for goes ahead.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::sync::{Arc, Condvar, Mutex, StdArc, lock};

/// What a submitter waiting for its write may do instead of sleeping: commit the queued
/// writes itself, if no other thread is the writer now (`writer::WriterCore`).
pub(crate) trait Helper: Send + Sync {
    /// Commits queued writes, a group at a time in queue order, until `done()` (the
    /// caller's own write has its outcome), if no other thread is the writer now; returns
    /// at once if one is.
    fn help(&self, done: &dyn Fn() -> bool);
}

struct Slot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    result: Option<Result<T>>,
    /// Set once the result is in, so that a taken result is not mistaken for a pending one.
    completed: bool,
    /// A thread is blocked in [`Ticket::wait`]; only then does completing pay for a wake-up.
    sleeping: bool,
    /// The task that last polled the ticket as a future.
    waker: Option<Waker>,
}

/// The outcome of a submitted write, delivered when its group commit is durable (or failed).
///
/// Wait for it with [`Ticket::wait`], or `.await` it. Dropping it does not cancel the write.
#[must_use = "a ticket says whether the write committed; drop it explicitly to ignore that"]
pub struct Ticket<T> {
    slot: Arc<Slot<T>>,
    /// For a write: the writer's core, which [`Ticket::wait`] may take to commit the write
    /// on the waiting thread.
    helper: Option<StdArc<dyn Helper>>,
}

/// The writer's end of a ticket.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A connected completer and ticket.
pub(crate) fn ticket<T>() -> (Completer<T>, Ticket<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State {
            result: None,
            completed: false,
            sleeping: false,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Completer {
            slot: Some(Arc::clone(&slot)),
        },
        Ticket { slot, helper: None },
    )
}

impl<T> Completer<T> {
    /// Delivers the result to the ticket.
    pub(crate) fn complete(mut self, result: Result<T>) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, result);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, Err(Error::Closed));
        }
    }
}

fn deliver<T>(slot: &Slot<T>, result: Result<T>) {
    let (sleeping, waker) = {
        let mut state = lock(&slot.state);
        assert!(!state.completed, "a ticket is completed exactly once");
        state.completed = true;
        state.result = Some(result);
        (state.sleeping, state.waker.take())
    };
    if sleeping {
        slot.ready.notify_all();
    }
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> Ticket<T> {
    /// A ticket whose waiter may commit the queued writes itself.
    pub(crate) fn helped_by(mut self, helper: StdArc<dyn Helper>) -> Ticket<T> {
        self.helper = Some(helper);
        self
    }

    /// Blocks until the write has committed (or failed) and returns its outcome. When no
    /// other thread is committing, the waiting thread commits the queued writes up to its
    /// own, instead of waking the writer thread and sleeping until it is done; writes queued
    /// after its own are left to the writer thread, so that a submitter's wait is bounded by
    /// the queue ahead of it, not by how long other threads keep the queue full.
    pub fn wait(self) -> Result<T> {
        if let Some(helper) = &self.helper
            && !self.is_ready()
        {
            helper.help(&|| self.is_ready());
        }
        let mut state = lock(&self.slot.state);
        while !state.completed {
            state.sleeping = true;
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state
            .result
            .take()
            .expect("a completed ticket holds its result until it is taken")
    }

    /// Whether the outcome is in: [`Ticket::wait`] would not block.
    pub fn is_ready(&self) -> bool {
        lock(&self.slot.state).completed
    }
}

/// Awaiting a ticket parks the task, not the thread; the writer thread wakes it.
impl<T> Future for Ticket<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut state = lock(&self.slot.state);
        if state.completed {
            return Poll::Ready(
                state
                    .result
                    .take()
                    .expect("a ticket future is not polled after it returned Ready"),
            );
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T: Send + 'static> store_format::WriteTicket for Ticket<T> {
    type Value = T;
    type Error = Error;

    fn wait(self) -> Result<T> {
        Ticket::wait(self)
    }

    fn is_ready(&self) -> bool {
        Ticket::is_ready(self)
    }
}

impl<T> std::fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("ready", &self.is_ready())
            .finish()
    }
}

#[cfg(all(test, not(textstore_loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use store_format::WriteTicket;

    use super::*;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A completer dropped without completing (its request was dropped) fails its ticket
    /// with `Closed`, and wakes whoever waits on it: a thread asleep in `wait`, or a task.
    #[test]
    fn a_dropped_completer_fails_its_ticket_with_closed() {
        let (done, mut awaited) = ticket::<u64>();
        let wakes = StdArc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(StdArc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut awaited).poll(&mut cx).is_pending());
        drop(done);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
        let polled = Pin::new(&mut awaited).poll(&mut cx);
        assert!(
            matches!(polled, Poll::Ready(Err(Error::Closed))),
            "{polled:?}"
        );

        let (done, waited) = ticket::<u64>();
        let waiter = std::thread::spawn(move || waited.wait());
        drop(done);
        assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
    }

    /// The vocabulary's ticket trait and `Debug` say whether the outcome is in.
    #[test]
    fn the_trait_and_debug_say_whether_the_outcome_is_in() {
        let (done, ticket) = ticket::<u64>();
        assert!(!WriteTicket::is_ready(&ticket));
        assert_eq!(format!("{ticket:?}"), "Ticket { ready: false }");
        done.complete(Ok(7));
        assert!(WriteTicket::is_ready(&ticket));
        assert_eq!(format!("{ticket:?}"), "Ticket { ready: true }");
        assert_eq!(WriteTicket::wait(ticket).unwrap(), 7);
    }
}
