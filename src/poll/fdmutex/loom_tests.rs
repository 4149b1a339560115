//! loom models of the lifetime word: the real `FdMutex` and `Sema` code on loom's atomics and
//! locks.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//!
//! Real: `rwlock` (fast and slow paths, the waiter count, `Sema::acquire` with its queue and
//! its look after each wake-up), `rwunlock` (the permit it hands on), `close` (waking every
//! counted waiter), `decref`, `uncount` for a waiter whose time ran out, and the token moves
//! of `Task::unpark` for the wake.
//!
//! Modelled:
//! - a waiter's sleep: `park::park_sleeping`, the real token parked as a thread record,
//!   which only an unpark ends (the runtime's park would also end at the deadline);
//! - std's per-call timeout: the waiter's `until` is already past, and a "timer" thread
//!   unparks it, as the park's timer (or poll's timeout) would, at any point of the model.
//!
//! Checked in every execution: every call returns (a lost lock wake-up leaves a waiter
//! asleep with everyone else done, which loom reports as a deadlock); at most one holder
//! per direction at a time, and each holder sees the writes of the one before it through
//! the lock's orderings alone (the data is `Relaxed`); the socket is retired (a `true` from
//! `decref`/`rwunlock`) exactly once after `close`, never before; and at the end no waiter
//! is left counted in the word, and at most one permit is left stored (the surplus
//! `FdMutex::uncount` describes). 29–162,016 executions per model, about 8 s in all.
//!
//! The models can fail (each checked on its own, then the code restored):
//! - `rwunlock_slow` taking the waiter out of the count without `release(1)`:
//!   `loom_fdmutex_two_readers`, `loom_fdmutex_three_readers` and
//!   `loom_fdmutex_close_wakes_waiter` deadlock (the waiter sleeps for good).
//! - `rwlock`'s compare-exchanges `Relaxed` instead of `Acquire`, or `rwunlock`'s `Relaxed`
//!   and `Acquire` instead of `Release` and `AcqRel`: `loom_fdmutex_two_readers` finds a
//!   holder that missed the previous holder's write.
//! - `close` clearing the counts without releasing the waiters:
//!   `loom_fdmutex_close_wakes_waiter` deadlocks.
//! - a waiter that times out without `uncount` (the fifth audit's bug):
//!   `loom_fdmutex_timeout_behind_holder` finds its count left in the word. (Against an
//!   unlock, `loom_fdmutex_timeout_against_unlock`, the unlock consumes the stray count
//!   into one stored permit, which the invariant allows: the bug shows only behind a
//!   holder that stays.)
//! - `acquire` taking every wake-up for a grant (leaving the queue and returning `true`):
//!   `loom_fdmutex_timeout_behind_holder` deadlocks (the waiter, woken by its timer, counts
//!   itself again and waits with no timer left). Mutual exclusion holds even then: a
//!   granted waiter competes for the lock again, it is not handed it.
//!
//! Not covered: the write lane beyond two writers (the same code through `Lane`), counts
//! reaching their limits (`TooMany`), and `OnceLock`'s own publication of the semaphores
//! (std's).

use super::{FdMutex, RWAIT_MASK, WWAIT_MASK};
use crate::poll::desc::Dir;
use crate::runtime::park::loom_explore as explore;
use crate::runtime::task::Task;
use loom::sync::atomic::AtomicUsize;
use loom::thread;
use std::cell::RefCell;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

loom::thread_local! {
    /// The thread's own record, set by the model before it locks (`park::current`).
    static ME: RefCell<Option<Arc<Task>>> = RefCell::new(None);
}

/// `park::current` under loom: the record the model gave this thread.
pub(super) fn current() -> Arc<Task> {
    ME.with(|m| {
        m.borrow()
            .clone()
            .expect("the model sets each thread's record")
    })
}

fn become_task(task: &Arc<Task>) {
    ME.with(|m| *m.borrow_mut() = Some(task.clone()));
}

/// What the model shares: the word, the direction its callers lock, the count of holders
/// inside, the data the lock guards and how many holders updated it, and the retirements.
struct Bed {
    mu: FdMutex,
    dir: Dir,
    inside: AtomicUsize,
    /// Read and written with `Relaxed` by holders only: each must see the last holder's
    /// write, which only the lock's own orderings can guarantee.
    data: AtomicUsize,
    holders: AtomicUsize,
    retired: AtomicUsize,
}

impl Bed {
    fn new(dir: Dir) -> Arc<Bed> {
        Arc::new(Bed {
            mu: FdMutex::new(),
            dir,
            inside: AtomicUsize::new(0),
            data: AtomicUsize::new(0),
            holders: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
        })
    }

    /// Takes the bed's lock with `until`; on success checks it holds it alone and unlocks.
    /// Returns whether it got the lock.
    fn lock_once(&self, until: Option<Instant>) -> bool {
        match self.mu.rwlock(self.dir, until) {
            Ok(()) => {
                // All Relaxed: the lock's orderings alone must order one holder after another
                // (a read-modify-write sees the latest value whatever its ordering).
                assert_eq!(
                    self.inside.fetch_add(1, Relaxed),
                    0,
                    "two callers hold the lock"
                );
                let seen = self.data.load(Relaxed);
                self.data.store(seen + 1, Relaxed);
                self.holders.fetch_add(1, Relaxed);
                self.inside.fetch_sub(1, Relaxed);
                self.unlock();
                true
            }
            Err(_) => false,
        }
    }

    /// A bed whose read lock the calling thread holds.
    fn held() -> Arc<Bed> {
        let bed = Bed::new(Dir::Read);
        become_task(&Task::new_thread());
        bed.mu.rwlock(Dir::Read, None).unwrap();
        bed
    }

    fn unlock(&self) {
        if self.mu.rwunlock(self.dir) {
            self.retired.fetch_add(1, SeqCst);
        }
    }

    /// At the end: every holder saw the one before it, no waiter is counted, at most one
    /// permit is stored.
    fn check_quiet(&self) {
        assert_eq!(
            self.data.load(SeqCst),
            self.holders.load(SeqCst),
            "a holder missed an earlier holder's write"
        );
        let word = self.mu.state.load(SeqCst);
        assert_eq!(
            word & (RWAIT_MASK | WWAIT_MASK),
            0,
            "a waiter left counted: {word:#x}"
        );
        for sema in self.mu.semas.get().into_iter().flat_map(|s| s.iter()) {
            let permits = sema.state().permits;
            assert!(permits <= 1, "{permits} permits left stored");
        }
    }
}

/// A thread that locks once as `task`, its call's time already run out if `timed_out`;
/// joins to whether it got the lock.
fn locker(bed: &Arc<Bed>, task: Arc<Task>, timed_out: bool) -> thread::JoinHandle<bool> {
    let bed = bed.clone();
    thread::spawn(move || {
        become_task(&task);
        let until = timed_out.then(|| Instant::now() - Duration::from_millis(1));
        bed.lock_once(until)
    })
}

/// `n` callers locking `dir` of one fd, this thread one of them: each gets the lock in
/// turn, a waiter waking when the holder before it unlocks.
fn contenders(name: &'static str, dir: Dir, n: usize) {
    explore(name, None, move || {
        let bed = Bed::new(dir);
        let others: Vec<_> = (1..n)
            .map(|_| locker(&bed, Task::new_thread(), false))
            .collect();
        become_task(&Task::new_thread());
        assert!(bed.lock_once(None));
        for t in others {
            assert!(t.join().unwrap());
        }
        assert_eq!(bed.mu.state.load(SeqCst), 0);
        assert_eq!(bed.retired.load(SeqCst), 0, "retired while open");
        bed.check_quiet();
    });
}

#[test]
fn loom_fdmutex_two_readers() {
    contenders("two_readers", Dir::Read, 2);
}

/// Two may wait at once; each unlock hands the lock on to one of them.
#[test]
fn loom_fdmutex_three_readers() {
    contenders("three_readers", Dir::Read, 3);
}

/// The write lane: its own bit, count and semaphore.
#[test]
fn loom_fdmutex_two_writers() {
    contenders("two_writers", Dir::Write, 2);
}

/// A reader holds the lock, a second waits for it, a third closes: the waiter returns
/// (with the lock if it came before the close, else refused), and the socket is retired
/// exactly once, by whoever drops the last reference.
#[test]
fn loom_fdmutex_close_wakes_waiter() {
    explore("close_wakes_waiter", None, || {
        let bed = Bed::held();
        let waiter = locker(&bed, Task::new_thread(), false);
        let closer = {
            let bed = bed.clone();
            thread::spawn(move || {
                bed.mu.close().unwrap();
                if bed.mu.decref() {
                    bed.retired.fetch_add(1, SeqCst);
                }
            })
        };
        bed.unlock();
        waiter.join().unwrap();
        closer.join().unwrap();
        assert_eq!(bed.retired.load(SeqCst), 1, "retired other than once");
        assert!(bed.mu.is_closed());
        bed.check_quiet();
    });
}

/// A reader whose call's time has already run out, and the timer that unparks it (as the
/// park's timer would, at any point of the model); joins to whether it got the lock.
fn timed_out_reader(bed: &Arc<Bed>) -> (thread::JoinHandle<bool>, thread::JoinHandle<()>) {
    let task = Task::new_thread();
    let waiter = locker(bed, task.clone(), true);
    (waiter, thread::spawn(move || task.unpark()))
}

/// A reader holds the lock; a second waits with its time already run out, and a timer
/// unparks it at any moment, while the holder unlocks. The waiter gets the lock or times
/// out; either way no count is left behind, and a later reader gets the lock at once.
#[test]
fn loom_fdmutex_timeout_against_unlock() {
    explore("timeout_against_unlock", None, || {
        let bed = Bed::held();
        let (waiter, timer) = timed_out_reader(&bed);
        bed.unlock();
        waiter.join().unwrap();
        timer.join().unwrap();
        bed.check_quiet();
        // the lock is free and nobody waits: a reader takes it at once
        assert!(bed.lock_once(None));
        assert_eq!(bed.retired.load(SeqCst), 0);
    });
}

/// A reader holds the lock until a second, whose time has run out, has given up: the
/// waiter must time out (nothing else will wake it once the timer has), and must take its
/// count out of the word itself, since no unlock comes to do it.
#[test]
fn loom_fdmutex_timeout_behind_holder() {
    explore("timeout_behind_holder", None, || {
        let bed = Bed::held();
        let (waiter, timer) = timed_out_reader(&bed);
        assert!(!waiter.join().unwrap(), "got a lock that is held");
        timer.join().unwrap();
        bed.check_quiet();
        bed.unlock();
        bed.check_quiet();
        assert_eq!(bed.mu.state.load(SeqCst), 0);
    });
}

/// A reader and a writer hold their locks at the same time: neither waits for the other.
#[test]
fn loom_fdmutex_reader_and_writer() {
    explore("reader_and_writer", None, || {
        let mu = Arc::new(FdMutex::new());
        let writer = {
            let mu = mu.clone();
            thread::spawn(move || {
                mu.rwlock(Dir::Write, None).unwrap();
                assert!(!mu.rwunlock(Dir::Write));
            })
        };
        mu.rwlock(Dir::Read, None).unwrap();
        assert!(!mu.rwunlock(Dir::Read));
        writer.join().unwrap();
        assert_eq!(mu.state.load(SeqCst), 0);
        assert!(
            mu.semas.get().is_none(),
            "a semaphore made without contention"
        );
    });
}
