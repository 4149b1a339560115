//! `Once`: run an initialiser exactly once, however many callers race.
//!
//! ```text
//!  state        meaning                      moved by
//!  ----------   --------------------------   -------------------------------------------
//!  INCOMPLETE   nobody has started           first caller: CAS → RUNNING, then runs f
//!  RUNNING      f is running                 the runner, when f returns or panics:
//!                                            → COMPLETE, then releases the waiters
//!  COMPLETE     done for good                (final)
//! ```
//!
//! Callers that find RUNNING queue; as in `WaitGroup`, they re-check for COMPLETE under the
//! queue lock, which the runner takes after storing COMPLETE, so none is left behind.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use super::waitq::{wake_all, WaitQueue, Waiter};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

/// Grant code: the initialiser finished.
const RELEASED: u8 = 1;

/// Runs a one-time initialisation, as Go's `sync.Once` (and std's `Once`, without
/// poisoning). Callers that arrive while it runs park until it has finished.
///
/// If the closure panics, the `Once` still counts as complete (Go's rule): the panic goes
/// to the caller that ran it, and nobody runs it again.
///
/// ```
/// use coronet::sync::Once;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// let hs: Vec<_> = (0..10)
///     .map(|_| coronet::go(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::SeqCst); })))
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    state: AtomicU8,
    queue: WaitQueue<()>,
}

impl Once {
    /// A `Once` that has not run yet. Usable in a `static`.
    ///
    /// ```
    /// use coronet::sync::Once;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// static SETUP: Once = Once::new();
    /// static CALLS: AtomicU32 = AtomicU32::new(0);
    ///
    /// fn setup() {
    ///     SETUP.call_once(|| {
    ///         CALLS.fetch_add(1, Ordering::Relaxed);
    ///     });
    /// }
    /// setup();
    /// setup();
    /// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    /// ```
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            queue: WaitQueue::new(()),
        }
    }

    /// Runs `f` if no call has run one yet; otherwise waits until that call is finished.
    /// When this returns, the initialisation is complete (or it panicked).
    ///
    /// Calling `call_once` on the same `Once` from inside `f` deadlocks.
    ///
    /// ```
    /// let once = coronet::sync::Once::new();
    /// let mut n = 0;
    /// once.call_once(|| n += 1);
    /// once.call_once(|| n += 1);
    /// assert_eq!(n, 1);
    /// ```
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            return;
        }
        self.call_once_slow(f);
    }

    /// True once an initialiser has finished (returned or panicked).
    ///
    /// ```
    /// let once = coronet::sync::Once::new();
    /// assert!(!once.is_completed());
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    #[cold]
    fn call_once_slow<F: FnOnce()>(&self, f: F) {
        match self
            .state
            .compare_exchange(INCOMPLETE, RUNNING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // completes on return and on unwind alike
                let _done = Complete(self);
                f();
            }
            Err(COMPLETE) => {}
            Err(_) => {
                let w = Waiter::new(0, None);
                {
                    let mut q = self.queue.lock();
                    if self.state.load(Ordering::Acquire) == COMPLETE {
                        return;
                    }
                    q.push_back(w.clone());
                }
                w.wait();
            }
        }
    }
}

/// Marks the `Once` complete and releases its waiters when dropped.
struct Complete<'a>(&'a Once);

impl Drop for Complete<'_> {
    fn drop(&mut self) {
        self.0.state.store(COMPLETE, Ordering::Release);
        let ws = self.0.queue.lock().drain_granted(RELEASED);
        wake_all(ws);
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}
