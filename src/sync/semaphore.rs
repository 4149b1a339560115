//! `Semaphore`: a count of permits, handed to waiters in FIFO order.
//!
//! The word is `permits × PERMIT | WAITERS`. While `WAITERS` is clear, acquire and release
//! are one CAS on the count. Once anyone queues, both go through the queue lock, and a
//! released permit is handed straight to the head waiter (`grant_locked`), so a fresh
//! acquirer cannot overtake a waiter. As in the RwLock, a new waiter runs `grant_locked`
//! itself after setting `WAITERS`, catching a release that took the fast path just before.
//!
//! A waiter that times out removes itself under the queue lock; if it is gone, it was
//! granted a permit meanwhile and keeps it (the acquire succeeds).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waitq::{wake_all, Queue, WaitQueue, Waiter, WAITING};

const WAITERS: usize = 1;
const PERMIT: usize = 2;

/// The most permits a semaphore can hold.
const MAX_PERMITS: usize = usize::MAX / PERMIT;

/// Grant code: a permit now belongs to the waiter.
const GRANTED: u8 = 1;

/// A counting semaphore: at most `n` holders of a permit at a time.
///
/// Waiters are served in arrival order. Permits are returned when their
/// [`SemaphorePermit`] is dropped.
///
/// ```
/// use coronet::sync::Semaphore;
/// use std::sync::Arc;
///
/// let sem = Arc::new(Semaphore::new(2)); // at most two requests in flight
/// let handles: Vec<_> = (0..8)
///     .map(|i| {
///         let sem = sem.clone();
///         coronet::go(move || {
///             let _permit = sem.acquire();
///             i * 2 // ... the rate-limited work ...
///         })
///     })
///     .collect();
/// let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(total, 56);
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    queue: WaitQueue<()>,
}

/// One permit of a [`Semaphore`]; dropping it returns the permit.
///
/// ```
/// use coronet::sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// {
///     let _permit = sem.acquire();
///     assert!(sem.try_acquire().is_none()); // held
/// } // dropped here: the permit goes back
/// assert!(sem.try_acquire().is_some());
/// ```
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits. Usable in a `static`.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds `usize::MAX / 2`.
    ///
    /// ```
    /// use coronet::sync::Semaphore;
    ///
    /// // At most 8 requests to the backend at once, process-wide.
    /// static BACKEND: Semaphore = Semaphore::new(8);
    /// let _permit = BACKEND.acquire();
    /// assert_eq!(BACKEND.available_permits(), 7);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= MAX_PERMITS,
            "Semaphore::new: at most usize::MAX / 2 permits"
        );
        Semaphore {
            state: AtomicUsize::new(permits * PERMIT),
            queue: WaitQueue::new(()),
        }
    }

    /// Takes a permit, parking until one is free.
    ///
    /// ```
    /// let sem = coronet::sync::Semaphore::new(1);
    /// let p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        if !self.try_acquire_fast() {
            let got = self.acquire_slow(None);
            debug_assert!(got, "an acquire without deadline always gets a permit");
        }
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free right now and nobody is queued for one.
    ///
    /// ```
    /// let sem = coronet::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        // not `then_some`: it would build (and drop, releasing) a permit on failure
        if self.try_acquire_fast() {
            Some(SemaphorePermit { sem: self })
        } else {
            None
        }
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none came in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = coronet::sync::Semaphore::new(1);
    /// let _p = sem.acquire();
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if self.try_acquire_fast() {
            return Some(SemaphorePermit { sem: self });
        }
        let deadline = Instant::now().checked_add(timeout);
        if self.acquire_slow(deadline) {
            Some(SemaphorePermit { sem: self })
        } else {
            None
        }
    }

    /// The permits free right now (a snapshot; it may change at once).
    ///
    /// ```
    /// use coronet::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let held = [sem.acquire(), sem.acquire()];
    /// assert_eq!(sem.available_permits(), 1);
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Relaxed) / PERMIT
    }

    /// Adds `n` permits, waking waiters that can now have one.
    ///
    /// # Panics
    ///
    /// If the total would exceed `usize::MAX / 2`.
    ///
    /// ```
    /// let sem = coronet::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let add = n
            .checked_mul(PERMIT)
            .expect("Semaphore::add_permits: too many permits");
        let mut s = self.state.load(Ordering::Relaxed);
        while s & WAITERS == 0 {
            let new = s
                .checked_add(add)
                .expect("Semaphore::add_permits: too many permits");
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(x) => s = x,
            }
        }
        let wake = {
            let mut q = self.queue.lock();
            // The waiters may all have timed out since WAITERS was seen, turning the fast
            // paths back on: add atomically, and check before the word can wrap.
            self.state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| s.checked_add(add))
                .expect("Semaphore::add_permits: too many permits");
            self.grant_locked(&mut q)
        };
        wake_all(wake);
    }

    fn try_acquire_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & WAITERS == 0 && s >= PERMIT {
            match self.state.compare_exchange_weak(
                s,
                s - PERMIT,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    /// Queues for a permit; true once one is ours, false if `deadline` passed first.
    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        let w = Waiter::new(0, None);
        let wake = {
            let mut q = self.queue.lock();
            if self.try_acquire_fast() {
                return true;
            }
            q.push_back(w.clone());
            self.state.fetch_or(WAITERS, Ordering::AcqRel);
            self.grant_locked(&mut q)
        };
        wake_all(wake);
        let g = match deadline {
            None => w.wait(),
            Some(d) => w.wait_until(d),
        };
        if g != WAITING {
            return true;
        }
        let mut q = self.queue.lock();
        if !q.remove(&w) {
            return true; // granted just as time ran out: the permit is ours
        }
        if q.is_empty() {
            self.state.fetch_and(!WAITERS, Ordering::Relaxed);
        }
        false
    }

    /// Hands free permits to the head waiters. Returns them to wake after unlocking.
    fn grant_locked(&self, q: &mut Queue<()>) -> Vec<Arc<Waiter>> {
        // No one to grant to: then WAITERS is clear (it is set exactly while the queue is
        // non-empty, both changed under this lock), the fast paths are live, and the load
        // and store below could undo an acquire made in between — one permit too many, for
        // good. A release that saw WAITERS gets here after the last waiter timed out.
        if q.is_empty() {
            return Vec::new();
        }
        // While WAITERS is set nobody outside the queue lock changes the word.
        let s = self.state.load(Ordering::Acquire);
        let mut permits = s / PERMIT;
        let mut granted = Vec::new();
        while permits > 0 {
            match q.pop_granted(GRANTED) {
                Some(w) => granted.push(w),
                None => break,
            }
            permits -= 1;
        }
        let waiters = if q.is_empty() { 0 } else { WAITERS };
        self.state
            .store((permits * PERMIT) | waiters, Ordering::Release);
        granted
    }

    fn release(&self) {
        self.add_permits(1);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// Single-threaded permit bookkeeping against a counter, by proptest.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        TryAcquire,
        TimeoutZero,
        Release,
        Add(usize),
    }

    proptest! {
        #[test]
        fn permits_match_a_counter(
            start in 0usize..4,
            ops in proptest::collection::vec(prop_oneof![
                Just(Op::TryAcquire),
                Just(Op::TimeoutZero),
                Just(Op::Release),
                (0usize..3).prop_map(Op::Add),
            ], 0..40),
        ) {
            let sem = Semaphore::new(start);
            let mut free = start;
            let mut held = Vec::new();
            for op in ops {
                match op {
                    Op::TryAcquire => {
                        let p = sem.try_acquire();
                        prop_assert_eq!(p.is_some(), free > 0);
                        if let Some(p) = p {
                            free -= 1;
                            held.push(p);
                        }
                    }
                    Op::TimeoutZero => {
                        // queues, times out at once, leaves: nothing may change
                        let p = sem.acquire_timeout(Duration::ZERO);
                        prop_assert_eq!(p.is_some(), free > 0);
                        if let Some(p) = p {
                            free -= 1;
                            held.push(p);
                        }
                    }
                    Op::Release => {
                        if held.pop().is_some() {
                            free += 1;
                        }
                    }
                    Op::Add(n) => {
                        sem.add_permits(n);
                        free += n;
                    }
                }
                prop_assert_eq!(sem.available_permits(), free);
                prop_assert_eq!(sem.state.load(Ordering::Relaxed) & WAITERS, 0);
            }
        }
    }
}
