//! `Mutex`: Go's `sync.Mutex` algorithm behind std's `Mutex` API, without poisoning.
//!
//! The lock word holds two bits:
//!
//! ```text
//!  state            meaning                                 moved by
//!  --------------   -------------------------------------   ---------------------------------
//!  0                free, nobody parked                     lock: CAS → LOCKED (fast path)
//!  LOCKED           held, nobody parked                     unlock: CAS → 0 (fast path)
//!                                                           locker: CAS → LOCKED|PARKED
//!  LOCKED|PARKED    held, waiters queued (or about to be)   unlock_slow, under the queue lock
//!  PARKED           free, waiters queued; a woken waiter    lock: CAS → LOCKED|PARKED (barging)
//!                   is on its way to retry
//! ```
//!
//! While `PARKED` is set the bit only changes under the queue lock, so a locker that set it
//! re-checks the word under that lock before it queues: if an unlock slipped in between, it
//! retries instead of sleeping through a free lock.
//!
//! Fairness follows Go's two modes. Normally an unlock wakes the head waiter and frees the
//! lock, and a running coroutine may take it first (barging keeps the lock on the CPU that
//! is already running — fast under contention). A waiter that loses that race goes back to
//! the *head* of the queue, keeping its age; once the head has waited longer than
//! [`STARVATION`], unlock hands the lock to it directly, leaving `LOCKED` set so nobody can
//! barge. So no waiter starves, and the common case does not pay for a hand-off.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::waitq::{WaitQueue, Waiter};

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

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

    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
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

    /// One CAS when nobody is parked.
    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
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
            // 1. free (or freed for a woken waiter): take it, even ahead of the queue
            if s & LOCKED == 0 {
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
            // 4. queue, unless an unlock slipped in since step 3; a re-queued waiter goes
            //    to the head with its age (Go's LIFO re-queue)
            let w = waiter.get_or_insert_with(|| Waiter::new(0, Some(Instant::now())));
            {
                let mut q = self.queue.lock();
                if self.state.load(Ordering::Relaxed) != LOCKED | PARKED {
                    drop(q);
                    s = self.state.load(Ordering::Relaxed);
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

    #[cold]
    fn unlock_slow(&self) {
        let woken = {
            let mut q = self.queue.lock();
            // Nobody else changes the word while PARKED is set and we hold the queue lock.
            debug_assert_eq!(self.state.load(Ordering::Relaxed), LOCKED | PARKED);
            let starving = q
                .front()
                .and_then(|w| w.since)
                .is_some_and(|t| t.elapsed() > STARVATION);
            let more = if q.len() > 1 { PARKED } else { 0 };
            if starving {
                // hand-off: LOCKED stays set, so the lock passes straight to the waiter
                log::trace!("mutex: hand-off to a waiter past {STARVATION:?}");
                self.state.store(LOCKED | more, Ordering::Release);
                q.pop_granted(HANDOFF)
            } else {
                self.state.store(more, Ordering::Release);
                q.pop_granted(WOKEN)
            }
        };
        if let Some(w) = woken {
            w.wake();
        }
    }
}

/// A mutual exclusion lock that parks coroutines (and blocks plain threads) while it waits.
///
/// The API is std's `Mutex` without poisoning: [`lock`](Mutex::lock) returns the guard
/// directly, and a panic while the guard is held simply unlocks. Locking and unlocking an
/// uncontended mutex is one atomic compare-and-swap each.
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
