//! Callback timers: run a small function at an instant, without a coroutine per timer.
//!
//! `after`, `tick`, `Timer` and context deadlines all need "do this at `when`" and must stay
//! cheap enough to create per request, so none of them spawns anything. A timer armed on a
//! worker thread (from a coroutine) goes into that worker's own heap next to the sleep
//! timers (`runtime/worker.rs`), and the worker runs it between coroutines; one armed on a
//! plain thread goes to a single shared timer thread, started on first use.
//!
//! # The callback's contract
//!
//! A callback runs on a worker's scheduler loop (or the timer thread), not in a coroutine,
//! so it must never park or block, and it must not panic: it is crate code only — a
//! `try_send` on a channel, a context cancel, a deadline change — never user code.
//!
//! # Cancelling
//!
//! A [`TimerHandle`] removes the entry at once when it is cancelled on the thread that owns
//! the heap (the usual case: a coroutine never changes workers, so it cancels its own timers
//! there) or when it lives in the shared heap. From any other thread the cancel is queued
//! for the owning worker, which removes the entry on its next timer pass; until then it may
//! still fire, so every callback checks its own "still wanted?" flag first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use super::timers::{TimerId, Timers};
use crate::runtime::task::Task;
use crate::runtime::worker;

/// A boxed callback (see the module's contract).
pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// What a worker's timer does when it fires (`Local::fire_timers`).
pub(crate) enum Action {
    /// A coroutine's park timer (`sleep`, a deadline on a park): wake it if it still waits
    /// for a deadline that has passed (see `worker::ParkTimer`).
    Unpark(Arc<Task>),
    /// Run a callback.
    Call(Callback),
}

/// Where a timer is armed.
#[derive(Clone, Copy, Debug)]
enum Home {
    /// In the heap of worker `n`; only that worker's thread may touch it.
    Worker(usize),
    /// In the shared timer thread's heap.
    Shared,
}

/// A way to disarm a callback timer (see "Cancelling" above).
#[derive(Debug)]
pub(crate) struct TimerHandle {
    home: Home,
    id: TimerId,
}

impl TimerHandle {
    /// Removes the timer if it is still armed and reachable from here; true if it was. False
    /// means it fired, or it stays armed and its callback must find itself unwanted.
    pub(crate) fn cancel(&self) -> bool {
        match self.home {
            Home::Worker(n) if worker::worker_index() == Some(n) => worker::cancel_timer(self.id),
            Home::Worker(n) => {
                worker::cancel_timer_elsewhere(n, self.id);
                false
            }
            Home::Shared => {
                // dropped after the lock, like the worker's cancel: captures may wake tasks
                let f = SHARED.lock().timers.cancel(self.id);
                f.is_some()
            }
        }
    }
}

/// Runs `f` at `when` (at once, on the next timer pass, if `when` has passed). Never early.
pub(crate) fn schedule(when: Instant, f: impl FnOnce() + Send + 'static) -> TimerHandle {
    match worker::try_arm(when, Action::Call(Box::new(f))) {
        Ok((n, id)) => TimerHandle {
            home: Home::Worker(n),
            id,
        },
        Err(Action::Call(f)) => TimerHandle {
            home: Home::Shared,
            id: SHARED.insert(when, f),
        },
        Err(Action::Unpark(_)) => unreachable!("try_arm handed back another action"),
    }
}

/// The timer thread for plain-thread callers: a heap under a mutex and a condvar that the
/// thread sleeps on until the earliest deadline (or until an earlier one is armed).
struct Shared {
    heap: Mutex<SharedHeap>,
    cond: Condvar,
    /// Whether the thread runs. Set once, under `starting`; a start that fails (no thread or
    /// memory to spare for now) is tried again by the next insert.
    started: AtomicBool,
    starting: Mutex<()>,
}

struct SharedHeap {
    timers: Timers<Callback>,
    /// When the thread will next look at the heap on its own (None: only when notified).
    /// Only an insert before it needs a notify, so arming and cancelling timers that lie
    /// behind the earliest one costs no syscall.
    wake_at: Option<Instant>,
}

static SHARED: LazyLock<Shared> = LazyLock::new(|| Shared {
    heap: Mutex::new(SharedHeap {
        timers: Timers::new(),
        wake_at: None,
    }),
    cond: Condvar::new(),
    started: AtomicBool::new(false),
    starting: Mutex::new(()),
});

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedHeap> {
        // No code panics while holding it (callbacks run after it is released).
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&'static self, when: Instant, f: Callback) -> TimerId {
        if !self.started.load(Ordering::Acquire) {
            self.start();
        }
        let mut heap = self.lock();
        let id = heap.timers.insert(when, f);
        let earlier = heap.wake_at.map_or(true, |w| when < w);
        if earlier {
            // the thread recomputes `wake_at` when it wakes; until then, no second notify
            heap.wake_at = Some(when);
        }
        drop(heap);
        if earlier {
            self.cond.notify_one();
        }
        id
    }

    /// Starts the timer thread unless it runs. A failure leaves the timer armed in the heap,
    /// where the thread finds it once a later insert has started it: a panic here would
    /// fail every timer made on a plain thread for the rest of the process.
    fn start(&'static self) {
        let result = {
            let _starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
            if self.started.load(Ordering::Acquire) {
                return;
            }
            let r = std::thread::Builder::new()
                .name("coronet-timer".into())
                .spawn(|| SHARED.run());
            if r.is_ok() {
                self.started.store(true, Ordering::Release);
            }
            r
        };
        // Logged after the lock: a logger is user code, and one that arms a timer would
        // wait on it from inside.
        match result {
            Ok(_) => rt_log!(Debug, "timer thread started"),
            Err(e) => rt_log!(
                Error,
                "coronet: cannot start the timer thread ({e}); timers armed on plain threads \
                 wait until a later one can start it"
            ),
        }
    }

    fn run(&self) -> ! {
        let mut due = Vec::new();
        let mut heap = self.lock();
        loop {
            // 1. collect what is due under the lock
            let now = Instant::now();
            while let Some((_, f)) = heap.timers.pop_expired(now) {
                due.push(f);
            }
            // 2. run it after releasing the lock (a callback may arm the next tick)
            if !due.is_empty() {
                drop(heap);
                due.drain(..).for_each(|f| f());
                heap = self.lock();
                continue;
            }
            // 3. sleep until the earliest deadline; early or spurious wake-ups loop to 1
            heap.wake_at = heap.timers.next_deadline();
            heap = match heap.wake_at {
                None => self.cond.wait(heap).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let r = self.cond.wait_timeout(heap, d - now);
                    r.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn shared_thread_fires_in_order_and_not_early() {
        let (tx, rx) = std::sync::mpsc::channel();
        // All three deadlines lie well after the last `schedule` returns, even on a loaded
        // machine or under valgrind, so the order they fire in is the heap's, not the
        // order they were scheduled in.
        let start = Instant::now() + Duration::from_millis(300);
        for ms in [30u64, 10, 20] {
            let tx = tx.clone();
            schedule(start + Duration::from_millis(ms), move || {
                tx.send((ms, Instant::now())).unwrap();
            });
        }
        for want in [10, 20, 30] {
            let (ms, at) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(ms, want);
            assert!(at >= start + Duration::from_millis(ms));
        }
    }

    #[test]
    fn cancel_on_the_shared_heap_removes_the_timer() {
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        // 200 ms: far enough that `cancel` runs first even under valgrind, near enough to
        // wait past it and see that nothing fired.
        let due = Instant::now() + Duration::from_millis(200);
        let h = schedule(due, move || {
            f.fetch_add(1, Ordering::SeqCst);
        });
        if !h.cancel() {
            // Only a thread stalled past the due time may find it gone: no verdict then.
            assert!(
                Instant::now() >= due,
                "cancel found nothing before the timer was due"
            );
            return;
        }
        assert!(!h.cancel(), "a second cancel finds nothing");
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }
}
