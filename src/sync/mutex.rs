//! `Mutex`: Go's `sync.Mutex` algorithm behind std's `Mutex` API, without poisoning.
//!
//! The lock word holds three bits, as Go's `mutexLocked | mutexWoken | mutexStarving` (we
//! need no "woken" bit; `PARKED` stands in for Go's waiter count):
//!
//! ```text
//!  bit        meaning                                  set by                cleared by
//!  --------   --------------------------------------   -------------------   -------------------
//!  LOCKED     someone holds the lock                   lock (CAS), or        unlock (fetch_sub)
//!                                                      unlock_slow for a
//!                                                      hand-off
//!  PARKED     waiters are queued, or one is about to   a locker, before it   unlock_slow, when
//!             queue: unlock must take the slow path    queues (CAS)          the queue is empty
//!  STARVING   the head waiter has waited too long:     unlock_slow           unlock_slow, when
//!             nobody may take the free lock but it                           the next head is
//!                                                                            young or none is left
//! ```
//!
//! Uncontended, lock is one CAS `0 → LOCKED` and unlock one `fetch_sub(LOCKED)` that finds
//! nothing else set. PARKED and STARVING are only *cleared* under the queue lock, and
//! STARVING only set there, so a locker that announced itself re-checks the word under that
//! lock before it sleeps: it queues only while the lock is held (LOCKED) or promised to the
//! queue (STARVING, with an unlock on its way to `unlock_slow`); otherwise it retries.
//!
//! Fairness follows Go's two modes. Normally unlock frees the lock and wakes the head
//! waiter, and a running coroutine may take the lock first (barging keeps the lock on the
//! CPU already running — fast under contention). A woken waiter that loses goes back to the
//! *head* of the queue with its age. Once the head has waited longer than [`STARVATION`],
//! unlock sets STARVING and takes the lock on the head's behalf — a hand-off: lockers see
//! STARVING and queue instead of barging, so no waiter starves, and the common case does
//! not pay for a hand-off.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::waitq::{WaitQueue, Waiter};

const LOCKED: u8 = 1;
const PARKED: u8 = 2;
const STARVING: u8 = 4;

/// Grant codes: woken to retry (the lock was freed), or given the lock outright.
const WOKEN: u8 = 1;
const HANDOFF: u8 = 2;

/// How long the head waiter may wait before unlock hands it the lock (Go: 1 ms).
const STARVATION: Duration = Duration::from_millis(1);

/// Spin rounds before parking while the holder might be about to unlock on another CPU.
const SPINS: u32 = 4;

/// The lock itself, without data: shared by `Mutex` and usable on its own inside the crate.
pub(crate) struct RawMutex {
    state: AtomicU8,
    queue: WaitQueue<()>,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU8::new(0),
            queue: WaitQueue::new(()),
        }
    }

    /// One CAS when the lock is free.
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    /// Takes the lock if it is free and not promised to a starving waiter.
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (LOCKED | STARVING) == 0 {
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    /// One `fetch_sub` when nobody is parked. The lock is free once it returns; the slow
    /// path only decides whom to wake or hand it to.
    #[inline]
    pub(crate) fn unlock(&self) {
        if self.state.fetch_sub(LOCKED, Ordering::Release) != LOCKED {
            self.unlock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0;
        let mut waiter: Option<std::sync::Arc<Waiter>> = None;
        let mut woken = false;
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            // 1. free and not promised to a starving waiter: take it, even ahead of the queue
            if s & (LOCKED | STARVING) == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    s | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(x) => {
                        s = x;
                        continue;
                    }
                }
            }
            // 2. held and nobody queued: the holder may be about to let go on another CPU
            if s & PARKED == 0 && spins < SPINS {
                spins += 1;
                for _ in 0..30 {
                    std::hint::spin_loop();
                }
                s = self.state.load(Ordering::Relaxed);
                continue;
            }
            // 3. announce that a waiter is coming, so unlock takes the slow path
            if s & PARKED == 0 {
                if let Err(x) = self.state.compare_exchange_weak(
                    s,
                    s | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    s = x;
                    continue;
                }
            }
            // 4. queue only if the lock is held or promised to the queue (an unlock that
            //    saw PARKED is then bound for unlock_slow, which needs this lock); a woken
            //    waiter that lost goes back to the head with its age (Go's LIFO re-queue)
            let w = waiter.get_or_insert_with(|| Waiter::new(0, Some(Instant::now())));
            {
                let mut q = self.queue.lock();
                s = self.state.load(Ordering::Relaxed);
                if s & PARKED == 0 || s & (LOCKED | STARVING) == 0 {
                    continue;
                }
                if woken {
                    q.push_front(w.clone());
                } else {
                    q.push_back(w.clone());
                }
            }
            // 5. sleep until unlock wakes us or hands us the lock
            match w.wait() {
                HANDOFF => return,
                WOKEN => {
                    woken = true;
                    spins = 0;
                    s = self.state.load(Ordering::Relaxed);
                }
                g => panic!("Mutex: waiter granted unknown code {g}"),
            }
        }
    }

    /// After an unlock that found PARKED set: the lock is already free. Wakes the head
    /// waiter, or hands the lock to it if it is starving.
    #[cold]
    fn unlock_slow(&self) {
        let mut handed_off = false;
        let woken = {
            let mut q = self.queue.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                // Only bargers race with us here, and only on LOCKED (never while STARVING):
                // every other bit changes under this lock, so each CAS retry is about them.
                let Some(head) = q.front() else {
                    // a locker announced itself and then found the lock free: clear the mark
                    match self.state.compare_exchange_weak(
                        s,
                        s & LOCKED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break None,
                        Err(x) => {
                            s = x;
                            continue;
                        }
                    }
                };
                if s & LOCKED != 0 {
                    // A barger took the freed lock first; its unlock comes back here. If
                    // the head is starving, stop the next barger.
                    if s & STARVING != 0 || !waited_too_long(head) {
                        break None;
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        s | STARVING,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break None,
                        Err(x) => {
                            s = x;
                            continue;
                        }
                    }
                }
                if s & STARVING != 0 || waited_too_long(head) {
                    // hand-off: take the lock on the head's behalf; stay starving while the
                    // next head has waited too long as well
                    let next_starving = q.get(1).is_some_and(waited_too_long);
                    let rest = match (q.len() > 1, next_starving) {
                        (false, _) => 0,
                        (true, false) => PARKED,
                        (true, true) => PARKED | STARVING,
                    };
                    match self.state.compare_exchange_weak(
                        s,
                        LOCKED | rest,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            handed_off = true;
                            break q.pop_granted(HANDOFF);
                        }
                        Err(x) => {
                            s = x;
                            continue;
                        }
                    }
                }
                // normal mode: wake the head to compete for the free lock
                let rest = if q.len() > 1 { PARKED } else { 0 };
                match self.state.compare_exchange_weak(
                    s,
                    rest,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break q.pop_granted(WOKEN),
                    Err(x) => s = x,
                }
            }
        };
        if let Some(w) = woken {
            w.wake();
        }
        // Only now, with the queue lock released and the new owner woken: a logger is user
        // code, and may take this very mutex.
        if handed_off {
            rt_log!(Trace, "mutex: hand-off to a waiter past {STARVATION:?}");
        }
    }
}

/// Whether a waiter has waited past the hand-off threshold.
fn waited_too_long(w: &Waiter) -> bool {
    w.since.is_some_and(|t| t.elapsed() > STARVATION)
}

/// A mutual exclusion lock that parks coroutines (and blocks plain threads) while it waits.
///
/// The API is std's `Mutex` without poisoning: [`lock`](Mutex::lock) returns the guard
/// directly, and a panic while the guard is held simply unlocks. Locking and unlocking an
/// uncontended mutex is one atomic instruction each (a CAS, then a `fetch_sub`).
///
/// It is fair in Go's sense: a waiter that has waited over a millisecond is handed the lock
/// directly, so one coroutine re-locking in a loop cannot starve the others.
///
/// Holding the guard across a park (I/O, sleep, channel) is fine: other coroutines run and
/// queue for the lock meanwhile.
///
/// ```
/// use coronet::sync::Mutex;
/// use std::sync::Arc;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let c = counter.clone();
///         coronet::go(move || *c.lock() += 1)
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out `&mut T` to one holder at a time (the RawMutex protocol), so
// sharing it between threads only ever moves T's use between threads: T: Send suffices, as
// for std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex<T>` gives access to T only through the exclusive guard.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Holds a [`Mutex`] locked; dereferences to the data and unlocks when dropped.
///
/// Like std's `MutexGuard` it is not `Send`: the unlock belongs to the coroutine or thread
/// that locked.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let m = coronet::sync::Mutex::new(0);
/// needs_send(m.lock());
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    lock: &'a Mutex<T>,
    /// `!Send`, as std's guard.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so sharing it across threads needs T: Sync,
// exactly std's bound. (The raw pointer marker is there only to opt out of Send.)
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `t`. Usable in a `static`.
    ///
    /// ```
    /// static HITS: coronet::sync::Mutex<u32> = coronet::sync::Mutex::new(0);
    /// *HITS.lock() += 1;
    /// assert_eq!(*HITS.lock(), 1);
    /// ```
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns the data.
    ///
    /// ```
    /// let m = coronet::sync::Mutex::new(vec![1]);
    /// m.lock().push(2);
    /// assert_eq!(m.into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the coroutine (or blocking the thread) until it is free.
    ///
    /// Locking a mutex the caller already holds deadlocks, as with std.
    ///
    /// ```
    /// let m = coronet::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Locks the mutex if it is free right now.
    ///
    /// ```
    /// let m = coronet::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// ```
    /// let mut m = coronet::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for `Condvar`, which unlocks and re-locks it).
    pub(crate) fn mutex(this: &Self) -> &'a Mutex<T> {
        this.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this holder owns the lock, so no `&mut T`
        // exists elsewhere.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    /// Unlocks; also on unwind, which is why there is no poisoning.
    fn drop(&mut self) {
        self.lock.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}
