//! A small lock for the scheduler's shared queues, cheaper than `std::sync::Mutex` when
//! nobody contends.
//!
//! Every spawn takes two of these (its worker's queue of unstarted coroutines, and the
//! registry of live ones) and each is almost always uncontended: only a stealer, a plain
//! thread spawning, or `dump()` ever meets the owner there. `std`'s mutex unlocks with an
//! atomic swap, to learn whether a sleeper needs a futex wake; this lock never puts a waiter
//! to sleep, so it unlocks with a plain release store and a lock/unlock pair costs one atomic
//! read-modify-write instead of two. A waiter spins briefly, then yields its thread: critical
//! sections here are a queue push, pop or split, or `dump()` copying a list.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (see `lock`), so
// sharing the lock shares a `T` only by moving access between threads: `T: Send` suffices,
// as for `std::sync::Mutex`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Spin rounds before each `yield_now` while another thread holds the lock.
const SPINS: u32 = 64;

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if !self.locked.swap(true, Ordering::Acquire) {
                return SpinGuard {
                    lock: self,
                    _marker: std::marker::PhantomData,
                };
            }
            // Wait for a release without writing to the line the holder needs.
            let mut spins = 0;
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    spins = 0;
                    std::thread::yield_now();
                }
            }
        }
    }
}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// Opts out of the auto traits, which would follow `&SpinLock<T>` (`Sync` for any
    /// `T: Send`) and let two threads share a guard's `&T` for a `T` that is not `Sync`.
    _marker: std::marker::PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so sharing it needs `T: Sync`, as std's guard.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}
// SAFETY: the unlock is a plain store, valid from any thread; moving the guard moves `&mut T`
// access, which `T: Send` allows.
unsafe impl<T: Send> Send for SpinGuard<'_, T> {}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock (its Acquire swap
        // saw `false`), so no other reference to `value` exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // Release: everything written under the lock is seen by the next Acquire swap.
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn guards_exclude_each_other_across_threads() {
        // A non-atomic read-modify-write under the lock loses no update only if the lock
        // really excludes: 4 threads x 20,000 increments must add up.
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut g = lock.lock();
                        let v = *g;
                        std::hint::black_box(&mut *g);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }

    #[test]
    fn a_held_lock_makes_others_wait_until_it_is_dropped() {
        let lock = Arc::new(SpinLock::new(Vec::new()));
        let g = lock.lock();
        let other = {
            let lock = lock.clone();
            std::thread::spawn(move || lock.lock().push(2))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut g = g;
        g.push(1); // still ours: the other thread is waiting
        drop(g);
        other.join().unwrap();
        assert_eq!(*lock.lock(), vec![1, 2]);
    }
}
