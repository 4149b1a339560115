//! `RwLock`: many readers or one writer; writers are not starved.
//!
//! The lock word counts readers and holds two bits:
//!
//! ```text
//!  bits          meaning                               changed by
//!  -----------   -----------------------------------   ---------------------------------------
//!  WRITER        a writer holds it                     try_write CAS 0 → WRITER; unlock
//!  WAITERS       the queue is non-empty                only under the queue lock
//!  n × READER    n readers hold it                     try_read CAS +READER; read unlock −READER
//! ```
//!
//! Fast paths run only while `WAITERS` is clear. Once anyone queues, nobody takes the lock
//! on the fast path any more: new readers queue behind a waiting writer (that is the writer
//! preference, and why a stream of readers cannot starve a writer), and the lock goes to
//! waiters in FIFO order. Whenever the lock is free and `WAITERS` is set, `grant_locked`
//! (under the queue lock) hands it to the head: a writer alone, or the run of readers at the
//! head together.
//!
//! A waiter queues, sets `WAITERS`, and then runs `grant_locked` itself: if the holder let
//! go after the waiter looked but before `WAITERS` was set, that unlock took the fast path
//! and woke nobody, and this catches it.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::waitq::{wake_all, Queue, WaitQueue, Waiter};

const WRITER: usize = 1;
const WAITERS: usize = 2;
const READER: usize = 4;

/// Waiter kinds.
const READ: u8 = 0;
const WRITE: u8 = 1;

/// Grant code: the lock (of the kind asked for) is now held on the waiter's behalf.
const GRANTED: u8 = 1;

/// A reader-writer lock that parks coroutines (and blocks plain threads) while it waits.
///
/// std's `RwLock` API without poisoning. Many readers may hold it at once; a writer
/// excludes everyone. While a writer waits, new readers queue behind it, so writers are not
/// starved by a stream of readers; waiters are served in arrival order.
///
/// ```
/// use coronet::sync::RwLock;
/// let lock = RwLock::new(5);
/// {
///     let r1 = lock.read();
///     let r2 = lock.read(); // readers share
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write() += 1;
/// assert_eq!(*lock.read(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    queue: WaitQueue<()>,
    data: UnsafeCell<T>,
}

// SAFETY: as std's RwLock: moving the lock moves T (T: Send).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers share `&T` across threads (T: Sync) and a writer's `&mut T` may be taken
// on any thread (T: Send); the lock word keeps the two apart.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared read access to a [`RwLock`]; released when dropped. Not `Send`, as std's.
///
/// ```
/// use coronet::sync::RwLock;
///
/// let config = RwLock::new(String::from("v1"));
/// let a = config.read();
/// let b = config.read(); // readers share the lock
/// assert_eq!((a.as_str(), b.as_str()), ("v1", "v1"));
/// drop((a, b)); // both guards gone: a writer may enter
/// config.write().push_str(".1");
/// assert_eq!(*config.read(), "v1.1");
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive write access to a [`RwLock`]; released when dropped. Not `Send`, as std's.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let l = coronet::sync::RwLock::new(0);
/// needs_send(l.write());
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard gives only `&T`: T: Sync is what sharing it needs (std's bound).
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above, `&RwLockWriteGuard` gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `t`. Usable in a `static`.
    ///
    /// ```
    /// use coronet::sync::RwLock;
    ///
    /// static ROUTES: RwLock<Vec<&str>> = RwLock::new(Vec::new());
    /// ROUTES.write().push("/health");
    /// assert_eq!(ROUTES.read().len(), 1);
    /// ```
    pub const fn new(t: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            queue: WaitQueue::new(()),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the lock and returns the data.
    ///
    /// ```
    /// assert_eq!(coronet::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes shared read access, parking while a writer holds the lock or waits for it.
    ///
    /// Because waiting writers go first, taking a second read lock while already holding
    /// one can deadlock if a writer queued in between (std gives the same warning).
    ///
    /// # Panics
    ///
    /// If the number of readers would overflow (over `usize::MAX / 4`).
    ///
    /// ```
    /// let l = coronet::sync::RwLock::new(String::from("hi"));
    /// assert_eq!(l.read().len(), 2);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_read_fast() {
            self.lock_slow(READ);
        }
        RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes exclusive write access, parking until all readers and writers are gone.
    ///
    /// ```
    /// let l = coronet::sync::RwLock::new(vec![1]);
    /// l.write().push(2);
    /// assert_eq!(*l.read(), [1, 2]);
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if !self.try_write_fast() {
            self.lock_slow(WRITE);
        }
        RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes read access if no writer holds the lock or waits for it right now.
    ///
    /// ```
    /// let l = coronet::sync::RwLock::new(0);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_read_fast().then(|| RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Takes write access if the lock is entirely free right now.
    ///
    /// ```
    /// let l = coronet::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_write_fast().then(|| RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// ```
    /// let mut l = coronet::sync::RwLock::new(0);
    /// *l.get_mut() = 9;
    /// assert_eq!(*l.read(), 9);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_read_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | WAITERS) == 0 {
            let n = s
                .checked_add(READER)
                .expect("RwLock: too many readers at once");
            match self
                .state
                .compare_exchange_weak(s, n, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    fn try_write_fast(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn lock_slow(&self, kind: u8) {
        let fast = |l: &Self| {
            if kind == READ {
                l.try_read_fast()
            } else {
                l.try_write_fast()
            }
        };
        let w = Waiter::new(kind, None);
        let wake = {
            let mut q = self.queue.lock();
            // WAITERS only changes under this lock: re-check before queueing
            if fast(self) {
                return;
            }
            q.push_back(w.clone());
            self.state.fetch_or(WAITERS, Ordering::AcqRel);
            self.grant_locked(&mut q)
        };
        wake_all(wake); // no log line: this thread is queued, and a logger may take this lock
        let g = w.wait();
        assert_eq!(g, GRANTED, "RwLock: waiter granted unknown code {g}");
    }

    /// If the lock is free, hands it to the head of the queue: one writer, or every reader
    /// up to the first writer. Returns the waiters to wake once the queue lock is released.
    fn grant_locked(&self, q: &mut Queue<()>) -> Vec<Arc<Waiter>> {
        // No one to grant to. Then WAITERS is clear (it is set exactly while the queue is
        // non-empty, both changed under this lock), the fast paths are live, and the load and
        // swap below could wipe a lock one of them took in between: a last reader out that
        // saw WAITERS gets here after other threads have emptied the queue.
        if q.is_empty() {
            return Vec::new();
        }
        let s = self.state.load(Ordering::Acquire);
        if s & WRITER != 0 || s >= READER {
            return Vec::new(); // still held: its release will come back here
        }
        // The head's run: one writer, or the readers up to the first writer.
        let mut n = 0;
        let mut held = 0;
        while let Some(w) = q.get(n) {
            match w.kind {
                WRITE if n == 0 => {
                    held = WRITER;
                    n = 1;
                    break;
                }
                WRITE => break,
                _ => {
                    held += READER;
                    n += 1;
                }
            }
        }
        let waiters = if q.len() > n { WAITERS } else { 0 };
        #[cfg(test)]
        tests::before_count(self);
        // Nobody else writes the word now: it is free (no holder to release) and the fast
        // paths stay off while WAITERS is set.
        let prev = self.state.swap(held | waiters, Ordering::AcqRel);
        debug_assert_eq!(prev, s, "RwLock: lock word changed under the queue lock");
        // Grants only now that the word counts their holders: a waiter woken spuriously
        // returns the moment it sees its grant, and a reader could then unlock before it was
        // counted (Miri found it: the word went below zero, and the count restored here then
        // held the lock for good for a reader long gone).
        (0..n).filter_map(|_| q.pop_granted(GRANTED)).collect()
    }

    fn read_unlock(&self) {
        let prev = self.state.fetch_sub(READER, Ordering::Release);
        if prev == READER | WAITERS {
            // last reader out with waiters queued
            self.unlock_slow(0);
        }
    }

    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(WRITER);
        }
    }

    #[cold]
    fn unlock_slow(&self, clear: usize) {
        let wake = {
            let mut q = self.queue.lock();
            if clear != 0 {
                self.state.fetch_and(!clear, Ordering::Release);
            }
            self.grant_locked(&mut q)
        };
        wake_granted(wake);
    }
}

/// Wakes the waiters `grant_locked` granted, once the queue lock is released. The log line
/// comes after both: a logger is user code, and may take this very lock.
fn wake_granted(granted: Vec<Arc<Waiter>>) {
    let n = granted.len();
    wake_all(granted);
    if n > 0 {
        rt_log!(Trace, "rwlock: granted {n} waiter(s)");
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while its reader is counted in the lock word,
        // which excludes a writer, so only shared borrows of T exist.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard exists only while WRITER is set on its behalf: no other
        // guard, hence no other borrow of T, exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::RwLock;
    use crate::runtime::park;

    type Hook = Box<dyn FnOnce() + Send>;

    /// A pause for one lock (by address) in `grant_locked`, just before the word counts
    /// the waiters it grants.
    static BEFORE_COUNT: Mutex<Option<(usize, Hook)>> = Mutex::new(None);

    pub(super) fn before_count<T: ?Sized>(l: &RwLock<T>) {
        let hook = BEFORE_COUNT.lock().unwrap().take();
        match hook {
            Some((at, f)) if at == l as *const RwLock<T> as *const () as usize => f(),
            other => *BEFORE_COUNT.lock().unwrap() = other,
        }
    }

    /// A queued reader that wakes spuriously, again and again, while the writer's unlock
    /// grants it the lock: it must not see the grant before the lock word counts it, or its
    /// unlock takes a reader away that was never added, and the lock ends up held for good.
    #[test]
    fn a_reader_woken_early_is_counted_before_it_sees_its_grant() {
        let lock = Arc::new(RwLock::new(0u32));
        let w = lock.write();
        let (task_tx, task_rx) = std::sync::mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (lock, done) = (lock.clone(), done.clone());
            std::thread::spawn(move || {
                task_tx.send(park::current()).unwrap();
                let v = *lock.read();
                done.store(true, Ordering::SeqCst);
                v
            })
        };
        let task = task_rx.recv().unwrap();
        // until the reader has queued (WAITERS set)
        while lock.state.load(Ordering::SeqCst) & super::WAITERS == 0 {
            std::thread::yield_now();
        }
        // spurious wake-ups, which every park loop must tolerate, all through the grant
        let spam = {
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    task.unpark();
                    std::thread::yield_now();
                }
            })
        };
        let at = &*lock as *const RwLock<u32> as *const () as usize;
        let pause: Hook = Box::new(|| std::thread::sleep(Duration::from_millis(50)));
        *BEFORE_COUNT.lock().unwrap() = Some((at, pause));
        drop(w); // the grant: pauses before the count
        assert_eq!(reader.join().unwrap(), 0);
        spam.join().unwrap();
        assert_eq!(
            lock.state.load(Ordering::SeqCst),
            0,
            "the lock is free again"
        );
        assert!(lock.try_write().is_some());
    }
}
