//! `Condvar`: wait for a condition under a [`Mutex`](super::Mutex).
//!
//! A waiter queues itself *before* it unlocks the mutex, so a notifier that takes the mutex
//! after that point always finds it: no notification between "checked the condition" and
//! "asleep" is lost. A notify grants the head waiter (or all) and wakes it; a waiter whose
//! timeout passes removes itself under the queue lock, or finds it was notified meanwhile
//! and reports that instead of a timeout.

use std::fmt;
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::waitq::{wake_all, WaitQueue, Waiter, WAITING};

/// Grant code: a notify reached this waiter.
const NOTIFIED: u8 = 1;

/// A condition variable: coroutines and threads sleep on it until notified.
///
/// As with std, wake-ups may be spurious: check the condition in a loop, or use
/// [`wait_while`](Condvar::wait_while).
///
/// ```
/// use coronet::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// coronet::go(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let (ready, cv) = &*pair;
/// let mut g = ready.lock();
/// while !*g {
///     g = cv.wait(g);
/// }
/// ```
pub struct Condvar {
    queue: WaitQueue<()>,
}

/// Whether [`Condvar::wait_timeout`] returned because its time ran out.
///
/// ```
/// use coronet::sync::{Condvar, Mutex};
/// use std::time::Duration;
///
/// let (queue, cv) = (Mutex::new(Vec::<u32>::new()), Condvar::new());
/// let (q, res) = cv.wait_timeout_while(queue.lock(), Duration::from_millis(10), |q| q.is_empty());
/// assert!(res.timed_out()); // nobody pushed: the wait gave up
/// assert!(q.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout passed, not a notification.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
    /// assert!(r.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A new condition variable with nobody waiting. Usable in a `static`.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    ///
    /// static READY: Mutex<bool> = Mutex::new(false);
    /// static CHANGED: Condvar = Condvar::new();
    ///
    /// coronet::go(|| {
    ///     *READY.lock() = true;
    ///     CHANGED.notify_all();
    /// });
    /// let ready = CHANGED.wait_while(READY.lock(), |ready| !*ready);
    /// assert!(*ready);
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            queue: WaitQueue::new(()),
        }
    }

    /// Unlocks the guard's mutex, parks until notified, and locks it again.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p = pair.clone();
    /// let t = std::thread::spawn(move || {
    ///     *p.0.lock() = 1;
    ///     p.1.notify_all();
    /// });
    /// let mut g = pair.0.lock();
    /// while *g == 0 {
    ///     g = pair.1.wait(g);
    /// }
    /// t.join().unwrap();
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let m = MutexGuard::mutex(&guard);
        let w = Waiter::new(0, None);
        self.queue.lock().push_back(w.clone());
        drop(guard); // after queueing: a notify from the next holder finds us
        w.wait();
        m.lock()
    }

    /// Waits while `condition` returns true, re-checking it after every wake-up.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p = pair.clone();
    /// coronet::go(move || {
    ///     for _ in 0..3 {
    ///         *p.0.lock() += 1;
    ///         p.1.notify_one();
    ///     }
    /// });
    /// let g = pair.1.wait_while(pair.0.lock(), |n| *n < 3);
    /// assert_eq!(*g, 3);
    /// ```
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Condvar::wait), but gives up after `dur`. The mutex is re-locked
    /// either way; the result says whether time ran out (a notification that races with
    /// the timeout counts as a notification).
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// coronet::run(|| {
    ///     let (m, cv) = (Mutex::new(7), Condvar::new());
    ///     let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(10));
    ///     assert!(r.timed_out());
    ///     assert_eq!(*g, 7);
    /// });
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let Some(deadline) = Instant::now().checked_add(dur) else {
            // beyond what the clock can express: no timeout at all
            return (self.wait(guard), WaitTimeoutResult(false));
        };
        let m = MutexGuard::mutex(&guard);
        let w = Waiter::new(0, None);
        self.queue.lock().push_back(w.clone());
        drop(guard);
        let timed_out = w.wait_until(deadline) == WAITING && self.queue.lock().remove(&w);
        (m.lock(), WaitTimeoutResult(timed_out))
    }

    /// Waits while `condition` holds, for at most `dur` in total. Returns the guard and
    /// whether time ran out with the condition still true.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    /// let (m, cv) = (Mutex::new(false), Condvar::new());
    /// let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(5), |ok| !*ok);
    /// assert!(r.timed_out() && !*g);
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let start = Instant::now();
        while condition(&mut *guard) {
            let Some(left) = dur.checked_sub(start.elapsed()) else {
                return (guard, WaitTimeoutResult(true));
            };
            guard = self.wait_timeout(guard, left).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes one waiter, the one that has waited longest. Does nothing if none waits.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p = pair.clone();
    /// let waiter = coronet::go(move || {
    ///     let mut n = p.0.lock();
    ///     while *n == 0 {
    ///         n = p.1.wait(n);
    ///     }
    ///     *n
    /// });
    /// *pair.0.lock() = 5;
    /// pair.1.notify_one();
    /// assert_eq!(waiter.join().unwrap(), 5);
    /// ```
    pub fn notify_one(&self) {
        let w = self.queue.lock().pop_granted(NOTIFIED);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Wakes every current waiter.
    ///
    /// ```
    /// use coronet::sync::{Condvar, Mutex};
    /// use std::sync::Arc;
    ///
    /// let gate = Arc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let g = gate.clone();
    ///         coronet::go(move || {
    ///             let mut open = g.0.lock();
    ///             while !*open {
    ///                 open = g.1.wait(open);
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// *gate.0.lock() = true;
    /// gate.1.notify_all(); // one call wakes all three
    /// for w in waiters {
    ///     w.join().unwrap();
    /// }
    /// ```
    pub fn notify_all(&self) {
        let ws = self.queue.lock().drain_granted(NOTIFIED);
        wake_all(ws);
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
