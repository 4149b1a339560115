//! `WaitGroup`: Go's `sync.WaitGroup` — wait for a counted set of tasks to finish.
//!
//! The counter is an atomic; waiters queue only while it is nonzero. Whoever brings it to
//! zero takes the queue lock and releases every waiter. A waiter checks the counter again
//! under that lock before it queues, so it cannot queue after the final `done` has already
//! looked at the queue.

use std::fmt;
use std::sync::atomic::{AtomicIsize, Ordering};

use super::waitq::{wake_all, WaitQueue, Waiter};

/// Grant code: the counter reached zero.
const RELEASED: u8 = 1;

/// Waits for a collection of coroutines (or threads) to finish, as Go's `sync.WaitGroup`.
///
/// [`add`](WaitGroup::add) the number of tasks, have each call [`done`](WaitGroup::done)
/// when it finishes, and [`wait`](WaitGroup::wait) until the count is back to zero. It is
/// not `Clone`: share it by `Arc` or by reference.
///
/// ```
/// use coronet::sync::WaitGroup;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let wg = Arc::new(WaitGroup::new());
/// let hits = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     wg.add(1);
///     let (wg, hits) = (wg.clone(), hits.clone());
///     coronet::go(move || {
///         hits.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(hits.load(Ordering::Relaxed), 100);
/// ```
pub struct WaitGroup {
    count: AtomicIsize,
    queue: WaitQueue<()>,
}

impl WaitGroup {
    /// A wait group with a zero counter. Usable in a `static`.
    ///
    /// ```
    /// use coronet::sync::WaitGroup;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// static PENDING: WaitGroup = WaitGroup::new();
    /// static DONE: AtomicU32 = AtomicU32::new(0);
    ///
    /// for _ in 0..3 {
    ///     PENDING.add(1);
    ///     coronet::go(|| {
    ///         DONE.fetch_add(1, Ordering::Relaxed);
    ///         PENDING.done();
    ///     });
    /// }
    /// PENDING.wait();
    /// assert_eq!(DONE.load(Ordering::Relaxed), 3);
    /// ```
    pub const fn new() -> WaitGroup {
        WaitGroup {
            count: AtomicIsize::new(0),
            queue: WaitQueue::new(()),
        }
    }

    /// Adds `delta` (which may be negative) to the counter. When it reaches zero, every
    /// waiter is released. Call it with a positive delta *before* starting what it counts,
    /// as in Go.
    ///
    /// # Panics
    ///
    /// With Go's message `sync: negative WaitGroup counter` if the counter goes below zero,
    /// and with `sync: WaitGroup counter overflow` if it would pass `isize::MAX` (the counter
    /// is then left as it was).
    ///
    /// ```
    /// let wg = coronet::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-2);
    /// wg.wait(); // zero: returns at once
    /// ```
    pub fn add(&self, delta: isize) {
        let old = self.count.fetch_add(delta, Ordering::AcqRel);
        let Some(v) = old.checked_add(delta) else {
            // The add wrapped: put the counter back (a wrapping add undoes it exactly).
            self.count.fetch_sub(delta, Ordering::AcqRel);
            panic!("sync: WaitGroup counter overflow");
        };
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 && delta != 0 {
            let ws = self.queue.lock().drain_granted(RELEASED);
            let n = ws.len();
            wake_all(ws);
            // After the wakes: a logger is user code, and may wait on one of those waiters.
            if n > 0 {
                log::trace!("waitgroup: zero, released {n} waiter(s)");
            }
        }
    }

    /// Decrements the counter by one: the same as `add(-1)`.
    ///
    /// # Panics
    ///
    /// With `sync: negative WaitGroup counter` if it was already zero.
    ///
    /// ```should_panic
    /// coronet::sync::WaitGroup::new().done(); // panics: sync: negative WaitGroup counter
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks until the counter is zero (returns at once if it is).
    ///
    /// ```
    /// let wg = coronet::sync::WaitGroup::new();
    /// wg.add(1);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| wg.done());
    ///     wg.wait();
    /// });
    /// ```
    pub fn wait(&self) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let w = Waiter::new(0, None);
        {
            let mut q = self.queue.lock();
            // The final add takes this lock after its decrement: re-checking here means we
            // either see zero or are queued before it drains.
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            q.push_back(w.clone());
        }
        w.wait();
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
