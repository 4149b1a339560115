//! `WaitGroup`: Go's `sync.WaitGroup` — wait for a counted set of tasks to finish.
//!
//! The counter is an atomic; waiters queue only while it is nonzero. Whoever brings it to
//! zero takes the queue lock and, if the counter is still zero, releases every waiter. A
//! waiter checks the counter again under that lock before it queues, so it cannot queue
//! after the final `done` has already looked at the queue; and an `add` between the final
//! `done` and its look at the queue keeps the waiters that queued for the new count.

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
    /// waiter is released (unless an `add` has raised it again first, as Go allows: the
    /// waiters then wait for the next zero). Call it with a positive delta *before* starting what it counts,
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
        // Checked before it is stored: an add that would wrap must not publish the wrapped
        // value even for a moment, or a concurrent `done` would see a negative counter.
        let old = match self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                c.checked_add(delta)
            }) {
            Ok(old) => old,
            Err(_) => panic!("sync: WaitGroup counter overflow"),
        };
        let v = old + delta;
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 && delta != 0 {
            #[cfg(test)]
            tests::at_zero(self);
            let ws = {
                let mut q = self.queue.lock();
                // Only if it is still zero: an `add` since ours (legal: Go allows an add at
                // zero before the next `wait`) may have let a `wait` queue for the new count,
                // and that waiter must wait for the next zero. Waiters queue only under this
                // lock with a nonzero count, so whoever brings it to zero last drains them.
                if self.count.load(Ordering::Acquire) == 0 {
                    q.drain_granted(RELEASED)
                } else {
                    Vec::new()
                }
            };
            let n = ws.len();
            wake_all(ws);
            // After the wakes: a logger is user code, and may wait on one of those waiters.
            if n > 0 {
                rt_log!(Trace, "waitgroup: zero, released {n} waiter(s)");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::thread;
    use std::time::Duration;

    type Hook = Box<dyn Fn() + Send>;

    /// A pause for one wait group (by address) between its count reaching zero and its
    /// look at the queue, where a race with `add` and `wait` lies.
    static AT_ZERO: Mutex<Option<(usize, Hook)>> = Mutex::new(None);

    pub(super) fn at_zero(wg: &WaitGroup) {
        let hook = AT_ZERO.lock().unwrap().take();
        match hook {
            Some((at, f)) if at == wg as *const WaitGroup as usize => f(),
            other => *AT_ZERO.lock().unwrap() = other,
        }
    }

    /// Go allows an `add` at zero before the next `wait`: that `wait` waits for the new
    /// count, even when the `done` that reached zero has not yet looked at the queue.
    #[test]
    fn a_wait_after_an_add_at_zero_waits_for_the_new_count() {
        let wg = Arc::new(WaitGroup::new());
        let (zero_tx, zero_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        *AT_ZERO.lock().unwrap() = Some((
            Arc::as_ptr(&wg) as usize,
            Box::new(move || {
                zero_tx.send(()).unwrap();
                go_rx.lock().unwrap().recv().unwrap();
            }),
        ));
        wg.add(1); // task X
        let x = {
            let wg = wg.clone();
            thread::spawn(move || wg.done()) // reaches zero, then pauses before the queue
        };
        zero_rx.recv().unwrap();
        wg.add(1); // task Y, before the wait
        let y_done = Arc::new(AtomicBool::new(false));
        let y = {
            let (wg, y_done) = (wg.clone(), y_done.clone());
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(300));
                y_done.store(true, Ordering::SeqCst);
                wg.done();
            })
        };
        // X's done looks at the queue while we are queued in `wait`
        let release = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            go_tx.send(()).unwrap();
        });
        wg.wait();
        assert!(
            y_done.load(Ordering::SeqCst),
            "wait returned before Y was done"
        );
        for t in [x, y, release] {
            t.join().unwrap();
        }
    }
}
