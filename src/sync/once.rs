//! `Once`: run an initialiser exactly once, however many callers race.
//!
//! ```text
//!  state        meaning                      moved by
//!  ----------   --------------------------   -------------------------------------------
//!  INCOMPLETE   nobody has started           first caller: CAS → RUNNING, then runs f
//!  RUNNING      f is running                 the runner, when f returns → COMPLETE, or
//!                                            panics → POISONED; then wakes the waiters
//!  POISONED     an f panicked                `call_once_force`: CAS → RUNNING, runs f
//!  COMPLETE     done for good                (final)
//! ```
//!
//! Callers that find RUNNING queue, re-checking the state under the queue lock, which the
//! runner takes after storing its outcome, so none is left behind; woken, they look again
//! from the top (a waiter of `call_once_force` may then run f itself).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use super::waitq::{wake_all, WaitQueue, Waiter};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;
const POISONED: u8 = 3;

/// Grant code: the runner finished (returned or panicked); look at the state again.
const RELEASED: u8 = 1;

/// Runs a one-time initialisation, as std's `Once` (and Go's `sync.Once`). Callers that
/// arrive while it runs park until it has finished.
///
/// If the closure panics, the `Once` is poisoned, as std's is: the panic goes to the caller
/// that ran it, and every waiting and later [`call_once`](Once::call_once) panics too, so
/// that `call_once` returning always means the initialisation finished (unsafe code may
/// rely on that, as it does with std's). [`call_once_force`](Once::call_once_force) runs the
/// closure again on a poisoned `Once`. (Go's `Once` counts a panicked run as done; std's
/// rule wins here, so that ported code keeps its guarantee.)
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

/// What [`Once::call_once_force`] tells its closure: whether an earlier run panicked.
#[derive(Debug)]
pub struct OnceState {
    poisoned: bool,
}

impl OnceState {
    /// True if an earlier initialiser of this `Once` panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
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
    /// When this returns, the initialisation is complete.
    ///
    /// Calling `call_once` on the same `Once` from inside `f` deadlocks.
    ///
    /// # Panics
    ///
    /// If `f` panics (the panic is `f`'s own), or if this `Once` was poisoned by an earlier
    /// `f`'s panic, also one that happened while this call waited.
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
        let mut f = Some(f);
        self.call_slow(false, &mut |_| (f.take().expect("runs once"))());
    }

    /// [`call_once`](Once::call_once) that also runs `f` on a poisoned `Once`, telling it
    /// so: for an initialiser that can repair what a panicked one left.
    ///
    /// ```
    /// use coronet::sync::Once;
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let once = Once::new();
    /// let r = catch_unwind(AssertUnwindSafe(|| once.call_once(|| panic!("half done"))));
    /// assert!(r.is_err());
    /// assert!(!once.is_completed());
    /// once.call_once_force(|state| assert!(state.is_poisoned()));
    /// assert!(once.is_completed());
    /// ```
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            return;
        }
        let mut f = Some(f);
        self.call_slow(true, &mut |state| (f.take().expect("runs once"))(state));
    }

    /// True once an initialiser has returned (not while it runs, nor after it panicked).
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
    fn call_slow(&self, force: bool, f: &mut dyn FnMut(&OnceState)) {
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED if !force => poisoned(),
                state @ (INCOMPLETE | POISONED) => {
                    if self
                        .state
                        .compare_exchange(state, RUNNING, Ordering::Acquire, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    // POISONED on unwind, COMPLETE once `f` has returned
                    let mut done = Done {
                        once: self,
                        outcome: POISONED,
                    };
                    f(&OnceState {
                        poisoned: state == POISONED,
                    });
                    done.outcome = COMPLETE;
                    return;
                }
                _ => {
                    let w = Waiter::new(0, None);
                    {
                        let mut q = self.queue.lock();
                        if self.state.load(Ordering::Acquire) != RUNNING {
                            continue;
                        }
                        q.push_back(w.clone());
                    }
                    w.wait();
                }
            }
        }
    }
}

#[cold]
fn poisoned() -> ! {
    panic!("Once instance has previously been poisoned");
}

/// Stores the runner's outcome and releases the waiters when dropped, on return and on
/// unwind alike.
struct Done<'a> {
    once: &'a Once,
    outcome: u8,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.once.state.store(self.outcome, Ordering::Release);
        let ws = self.once.queue.lock().drain_granted(RELEASED);
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
