//! The waiter record of a blocked channel operation — Go's `sudog` — and how it is completed.
//!
//! A blocked `send`, `recv` or `select` owns one [`Signal`]: the task to wake and a word saying
//! which of its operations (arms) happened. For each arm it puts one [`Entry`] on that
//! channel's waiter list. The first peer to complete any arm wins a compare-and-swap on the
//! shared word; every other entry of the same signal becomes stale and is dropped by whoever
//! meets it next (a peer skips it, the owner removes it on wake-up).
//!
//! ```text
//!  signal state   meaning                                  who moves it out
//!  ------------   --------------------------------------   ------------------------------
//!  WAITING        entries may be queued; owner parked      a peer: CAS → arm k (+ unpark)
//!                 (or about to park)                       the owner: CAS → ABORTED
//!  arm k (k+2)    arm k completed by a peer; final         nobody
//!  ABORTED        owner gave up (timeout, or a channel     nobody
//!                 became ready while it registered)
//! ```
//!
//! The value crosses in the entry's `slot`, under the slot's own lock, which the completing
//! peer holds from before its CAS until the transfer is done. So an owner that sees "arm k"
//! and then locks arm k's slot always finds the transfer finished:
//!
//! | arm  | slot after completion            | meaning                             |
//! |------|----------------------------------|-------------------------------------|
//! | recv | `Some(v)`                        | a sender handed over `v`            |
//! | recv | `None`                           | every sender is gone: disconnected  |
//! | send | `None`                           | a receiver took the value           |
//! | send | `Some(v)` (still there)          | every receiver is gone: `v` returns |

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::runtime::park;
use crate::runtime::task::{Task, Wait};

const WAITING: usize = 0;
const ABORTED: usize = 1;
/// Arm `k` is stored as `k + ARM0`.
const ARM0: usize = 2;

/// The shared state of one blocked operation or select (see the module table).
pub struct Signal {
    /// Who to unpark once an arm completes.
    task: Arc<Task>,
    state: AtomicUsize,
}

/// How a wait on a [`Signal`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A peer completed this arm.
    Selected(usize),
    /// The owner gave up first (deadline, or it saw a channel become ready).
    Aborted,
}

impl Signal {
    /// A fresh signal for the calling task.
    pub(crate) fn new() -> Arc<Signal> {
        Arc::new(Signal {
            task: park::current(),
            state: AtomicUsize::new(WAITING),
        })
    }

    /// A peer claims arm `arm`; true if it won (the owner must then be unparked).
    fn try_select(&self, arm: usize) -> bool {
        self.state
            .compare_exchange(WAITING, arm + ARM0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The owner gives up; returns how the wait really ended (a peer may have won first).
    pub(crate) fn abort(&self) -> Outcome {
        match self
            .state
            .compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Outcome::Aborted,
            Err(s) => decode(s).expect("an aborting signal is not waiting"),
        }
    }

    /// Still waiting for a peer?
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Is this the signal `other` (the same blocked operation)?
    pub(crate) fn same(&self, other: &Signal) -> bool {
        std::ptr::eq(self, other)
    }

    /// Parks until a peer completes an arm or `deadline` passes (then aborts).
    /// Loops over spurious wake-ups, as the park protocol requires.
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: Wait) -> Outcome {
        loop {
            if let Some(o) = decode(self.state.load(Ordering::Acquire)) {
                return o;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.abort();
            }
            park::park_until(deadline, why);
        }
    }
}

fn decode(s: usize) -> Option<Outcome> {
    match s {
        WAITING => None,
        ABORTED => Some(Outcome::Aborted),
        k => Some(Outcome::Selected(k - ARM0)),
    }
}

/// One arm of a blocked operation, queued on one channel's waiter list.
///
/// The owner keeps its own `Arc` until it has removed the entry from every list (or a peer
/// has), so a list dropping its `Arc` never drops the value in `slot`: no user `Drop` runs
/// under a channel lock.
pub struct Entry<T> {
    pub(crate) signal: Arc<Signal>,
    arm: usize,
    /// The value in flight: the sender's value, or where a receiver gets it (module table).
    slot: Mutex<Option<T>>,
}

impl<T> Entry<T> {
    pub(crate) fn new(signal: &Arc<Signal>, arm: usize, value: Option<T>) -> Arc<Entry<T>> {
        Arc::new(Entry {
            signal: signal.clone(),
            arm,
            slot: Mutex::new(value),
        })
    }

    /// A peer tries to complete this entry: on success `transfer` runs on the slot while its
    /// lock is held, and the task to unpark (after the channel lock is released) comes back.
    /// `None` means the entry was stale: its owner already finished another way.
    pub(crate) fn complete<R>(
        &self,
        transfer: impl FnOnce(&mut Option<T>) -> R,
    ) -> Option<(R, Arc<Task>)> {
        let mut slot = self.lock();
        if !self.signal.try_select(self.arm) {
            return None;
        }
        let r = transfer(&mut slot);
        drop(slot);
        Some((r, self.signal.task.clone()))
    }

    /// The owner takes the slot's content once the wait is over (selected, or aborted and
    /// removed from its list).
    pub(crate) fn take(&self) -> Option<T> {
        self.lock().take()
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        // A panic while holding a slot lock can only come from our own code; the Option
        // is still consistent, so a poisoned lock is used as is.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A cheap per-thread xorshift generator for select's random arm order (Go's `cheaprand`).
pub(crate) fn cheap_rand() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 32) as u32
    })
}

/// A nonzero seed that differs between threads and runs (splitmix64 of a counter and time).
fn seed() -> u64 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z =
        t ^ (COUNTER.fetch_add(1, Ordering::Relaxed) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// A uniformly random permutation of `0..n` (Fisher–Yates), for select's poll order.
pub(crate) fn shuffle(order: &mut [usize]) {
    for i in (1..order.len()).rev() {
        let j = (cheap_rand() as usize) % (i + 1);
        order.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_completer_wins_and_the_rest_are_stale() {
        let sig = Signal::new();
        let a = Entry::new(&sig, 0, None::<u32>);
        let b = Entry::new(&sig, 1, None::<u32>);
        assert!(a.complete(|s| *s = Some(7)).is_some());
        assert!(b.complete(|s| *s = Some(8)).is_none());
        assert_eq!(sig.wait(None, Wait::Select), Outcome::Selected(0));
        assert_eq!(a.take(), Some(7));
        assert_eq!(b.take(), None);
        assert_eq!(sig.abort(), Outcome::Selected(0));
    }

    #[test]
    fn abort_beats_a_later_completer() {
        let sig = Signal::new();
        let e = Entry::new(&sig, 3, Some("v"));
        assert_eq!(sig.abort(), Outcome::Aborted);
        assert!(e.complete(|s| s.take()).is_none());
        assert_eq!(e.take(), Some("v"));
    }

    #[test]
    fn wait_times_out_by_aborting() {
        let sig = Signal::new();
        let d = Instant::now() + std::time::Duration::from_millis(20);
        assert_eq!(sig.wait(Some(d), Wait::ChanRecv), Outcome::Aborted);
        assert!(Instant::now() >= d);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..10).collect();
        shuffle(&mut v);
        let mut s = v.clone();
        s.sort_unstable();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }
}
