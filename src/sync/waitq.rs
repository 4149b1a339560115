//! The waiter queue all seven `sync` types park through.
//!
//! A [`WaitQueue`] is a FIFO of [`Waiter`] records behind a short `std::sync::Mutex`, next
//! to whatever bookkeeping the owning type keeps under the same lock (`S`: the barrier's
//! arrival count, nothing for most). The lock is only ever held for a few pointer moves:
//! never across a park, never while user code runs.
//!
//! Each waiter carries a `grant` word:
//!
//! ```text
//!  grant      meaning                              who moves it
//!  --------   ----------------------------------   -----------------------------------------
//!  WAITING    queued (or about to be), asleep      a waker, under the queue lock, as it pops
//!                                                  the waiter: WAITING → code (nonzero)
//!  code > 0   granted; the owner type says what    the waiter reads it and returns; a Mutex
//!             the code means (lock handed over,    waiter that must retry re-queues itself
//!             woken to retry, notified, ...)       under the lock: code → WAITING
//! ```
//!
//! The invariant that makes timeouts race-free: **a waiter is in the queue exactly while its
//! grant is `WAITING`**, because both change together under the queue lock. A waiter whose
//! deadline passed takes the lock and removes itself; if it is no longer there, a waker
//! granted it meanwhile and the grant code is already set — it keeps what it was given.
//!
//! Wakers collect under the lock and wake after it (`wake_all`): the grant is published
//! first, the unpark second, so a waiter that sees its grant early (a spurious wake) simply
//! returns, and the late unpark costs it one spurious wake-up elsewhere, which every park
//! loop tolerates.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard};
use std::time::Instant;

use crate::runtime::park;
use crate::runtime::task::{Task, Wait};

/// The grant value of a waiter nobody has granted yet.
pub(crate) const WAITING: u8 = 0;

/// One parked (or parking) coroutine or thread.
pub(crate) struct Waiter {
    /// Who to unpark.
    task: Arc<Task>,
    /// `WAITING`, or the owner type's grant code (see the table above).
    grant: AtomicU8,
    /// What the waiter asks for, in the owner type's terms (RwLock: read or write).
    pub(crate) kind: u8,
    /// When it first began to wait; the Mutex hands the lock straight to a waiter that has
    /// waited too long. Kept across re-queues, so a waiter's age only grows.
    pub(crate) since: Option<Instant>,
}

impl Waiter {
    /// A waiter record for the calling coroutine or thread.
    pub(crate) fn new(kind: u8, since: Option<Instant>) -> Arc<Waiter> {
        Arc::new(Waiter {
            task: park::current(),
            grant: AtomicU8::new(WAITING),
            kind,
            since,
        })
    }

    /// The grant code, or `WAITING`.
    pub(crate) fn granted(&self) -> u8 {
        self.grant.load(Ordering::Acquire)
    }

    /// Parks until granted; returns the grant code. Loops over spurious wake-ups.
    pub(crate) fn wait(&self) -> u8 {
        loop {
            let g = self.granted();
            if g != WAITING {
                return g;
            }
            park::park(Wait::Sync);
        }
    }

    /// Parks until granted or until `deadline`; returns the grant code, or `WAITING` if the
    /// deadline passed first. Then the waiter may still be queued: the caller must take the
    /// queue lock and [`Queue::remove`] it (or find it granted after all).
    pub(crate) fn wait_until(&self, deadline: Instant) -> u8 {
        loop {
            let g = self.granted();
            if g != WAITING || Instant::now() >= deadline {
                return g;
            }
            park::park_until(Some(deadline), Wait::Sync);
        }
    }

    /// Unparks the waiter. Call after the queue lock is released.
    pub(crate) fn wake(&self) {
        self.task.unpark();
    }
}

/// Wakes every waiter in `ws` (already granted), after the queue lock is released.
pub(crate) fn wake_all(ws: impl IntoIterator<Item = Arc<Waiter>>) {
    for w in ws {
        w.wake();
    }
}

/// A FIFO of waiters plus the owner's bookkeeping `S`, under one short lock.
pub(crate) struct WaitQueue<S> {
    inner: StdMutex<Queue<S>>,
}

impl<S> WaitQueue<S> {
    pub(crate) const fn new(state: S) -> WaitQueue<S> {
        WaitQueue {
            inner: StdMutex::new(Queue {
                state,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Locks the queue. Never poisoned in practice (no user code runs under it), and a
    /// poisoned lock is taken anyway: the queue is consistent after every single operation.
    pub(crate) fn lock(&self) -> StdMutexGuard<'_, Queue<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue's contents, reached only through [`WaitQueue::lock`].
pub(crate) struct Queue<S> {
    /// The owner type's bookkeeping kept under the same lock.
    pub(crate) state: S,
    waiters: VecDeque<Arc<Waiter>>,
}

impl<S> Queue<S> {
    /// Queues `w` last (first wait, or FIFO-fair types).
    pub(crate) fn push_back(&mut self, w: Arc<Waiter>) {
        w.grant.store(WAITING, Ordering::Relaxed);
        self.waiters.push_back(w);
    }

    /// Queues `w` first: a Mutex waiter that was woken but lost the race goes back to the
    /// head, as in Go, so its age keeps counting toward a hand-off.
    pub(crate) fn push_front(&mut self, w: Arc<Waiter>) {
        w.grant.store(WAITING, Ordering::Relaxed);
        self.waiters.push_front(w);
    }

    /// The first waiter, if any.
    pub(crate) fn front(&self) -> Option<&Waiter> {
        self.waiters.front().map(|w| &**w)
    }

    /// The `i`-th waiter from the head, if any.
    pub(crate) fn get(&self, i: usize) -> Option<&Waiter> {
        self.waiters.get(i).map(|w| &**w)
    }

    /// Pops the first waiter and grants it `code`; the caller wakes it after unlocking.
    pub(crate) fn pop_granted(&mut self, code: u8) -> Option<Arc<Waiter>> {
        debug_assert_ne!(code, WAITING, "grant code must be nonzero");
        let w = self.waiters.pop_front()?;
        w.grant.store(code, Ordering::Release);
        Some(w)
    }

    /// Pops every waiter, granting each `code`; the caller wakes them after unlocking.
    pub(crate) fn drain_granted(&mut self, code: u8) -> Vec<Arc<Waiter>> {
        debug_assert_ne!(code, WAITING, "grant code must be nonzero");
        self.waiters
            .drain(..)
            .inspect(|w| w.grant.store(code, Ordering::Release))
            .collect()
    }

    /// Removes `w` if it is still queued (a timed-out waiter leaving). False means it was
    /// granted meanwhile and its grant code is set.
    pub(crate) fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        match self.waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }
}

/// The queue's bookkeeping driven against a plain `VecDeque` model by proptest.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        PushBack,
        PushFront,
        Pop(u8),
        Drain(u8),
        /// Remove the waiter at this index of all waiters ever made (queued or not).
        Remove(usize),
        /// Re-queue an already granted waiter at the front (the Mutex retry path).
        Requeue(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::PushBack),
            1 => Just(Op::PushFront),
            2 => (1u8..4).prop_map(Op::Pop),
            1 => (1u8..4).prop_map(Op::Drain),
            2 => (0usize..64).prop_map(Op::Remove),
            1 => (0usize..64).prop_map(Op::Requeue),
        ]
    }

    /// Checks the order against the model, that queued waiters are WAITING, and that every
    /// waiter holds the code the model says it was last granted (a waiter that removed
    /// itself keeps WAITING: nobody granted it).
    fn check(q: &Queue<()>, model: &VecDeque<usize>, all: &[Arc<Waiter>], codes: &[u8]) {
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_empty(), model.is_empty());
        for (w, &i) in q.waiters.iter().zip(model) {
            assert!(
                Arc::ptr_eq(w, &all[i]),
                "queue order differs from the model"
            );
        }
        for &i in model {
            assert_eq!(
                all[i].granted(),
                WAITING,
                "waiter {i} queued but not WAITING"
            );
        }
        for (i, w) in all.iter().enumerate() {
            assert_eq!(w.granted(), codes[i], "waiter {i} holds the wrong grant");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn queue_matches_model(ops in proptest::collection::vec(op(), 0..60)) {
            let wq = WaitQueue::new(());
            let mut q = wq.lock();
            let mut model: VecDeque<usize> = VecDeque::new();
            let mut all: Vec<Arc<Waiter>> = Vec::new();
            let mut codes: Vec<u8> = Vec::new(); // last grant code given to each waiter
            for op in ops {
                match op {
                    Op::PushBack => {
                        all.push(Waiter::new(0, None));
                        codes.push(WAITING);
                        q.push_back(all.last().unwrap().clone());
                        model.push_back(all.len() - 1);
                    }
                    Op::PushFront => {
                        all.push(Waiter::new(0, None));
                        codes.push(WAITING);
                        q.push_front(all.last().unwrap().clone());
                        model.push_front(all.len() - 1);
                    }
                    Op::Pop(code) => {
                        let got = q.pop_granted(code);
                        let want = model.pop_front();
                        prop_assert_eq!(got.is_some(), want.is_some());
                        if let (Some(w), Some(i)) = (got, want) {
                            prop_assert!(Arc::ptr_eq(&w, &all[i]));
                            prop_assert_eq!(w.granted(), code);
                            codes[i] = code;
                        }
                    }
                    Op::Drain(code) => {
                        let got = q.drain_granted(code);
                        prop_assert_eq!(got.len(), model.len());
                        for (w, i) in got.iter().zip(model.drain(..)) {
                            prop_assert!(Arc::ptr_eq(w, &all[i]));
                            codes[i] = code;
                        }
                    }
                    Op::Remove(i) if i < all.len() => {
                        let queued = model.iter().position(|&m| m == i);
                        prop_assert_eq!(q.remove(&all[i]), queued.is_some());
                        if let Some(p) = queued {
                            model.remove(p);
                        } else {
                            // not queued: it keeps the code it was granted
                            prop_assert_eq!(all[i].granted(), codes[i]);
                        }
                    }
                    Op::Requeue(i) if i < all.len() && !model.contains(&i) => {
                        q.push_front(all[i].clone());
                        model.push_front(i);
                        codes[i] = WAITING;
                    }
                    Op::Remove(_) | Op::Requeue(_) => {}
                }
                check(&q, &model, &all, &codes);
            }
        }
    }

    #[test]
    fn wait_until_times_out_when_never_granted() {
        let w = Waiter::new(0, None);
        let start = Instant::now();
        assert_eq!(w.wait_until(start + Duration::from_millis(20)), WAITING);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn grant_from_another_thread_ends_wait() {
        for _ in 0..100 {
            let wq = Arc::new(WaitQueue::new(()));
            let w = Waiter::new(0, None);
            wq.lock().push_back(w.clone());
            let wq2 = wq.clone();
            let t = std::thread::spawn(move || {
                let ws = wq2.lock().drain_granted(7);
                wake_all(ws);
            });
            assert_eq!(w.wait(), 7);
            t.join().unwrap();
        }
    }
}
