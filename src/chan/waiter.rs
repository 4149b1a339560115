//! The waiter record of a blocked channel operation — Go's `sudog` — its queue, and the
//! compare-and-swap that decides which operation of a select happens.
//!
//! A blocked `send`, `recv` or `select` owns one [`Signal`]: the task to wake and a word
//! saying how the wait ended. For each operation (arm) it links one [`Waiter`] into that
//! channel's [`WaitQueue`]. Both live **on the blocked caller's stack**: a blocking operation
//! allocates nothing. The first peer to claim any arm wins a compare-and-swap on the shared
//! word; every other waiter of the same signal becomes stale, and whoever meets it next under
//! its channel's lock (a peer passing by, or the owner cleaning up) unlinks it.
//!
//! ```text
//!  signal state  meaning                                  who moves it out
//!  ------------  ---------------------------------------  -------------------------------------
//!  WAITING       waiters may be queued; owner parked      a peer, under a channel lock: CAS →
//!                (or about to park)                       CLAIMED; the owner: CAS → ABORTED
//!  CLAIMED       a peer holding arm k's channel lock is   that peer: store arm k, then (after
//!                moving the value through arm k's slot    its lock is released) unpark
//!  arm k (k+3)   arm k completed by a peer; final         nobody
//!  ABORTED       owner gave up (timeout, or another arm   nobody
//!                of its select was ready); final
//! ```
//!
//! The value crosses in the waiter's `slot`. A peer touches the slot only between winning
//! the CAS and storing "arm k" (release); the owner touches it only before linking the
//! waiter, after loading "arm k" (acquire), or after an abort once it has unlinked the
//! waiter under the channel lock. So the slot never has two users at once:
//!
//! | arm  | slot after completion            | meaning                             |
//! |------|----------------------------------|-------------------------------------|
//! | recv | `Some(v)`                        | a sender handed over `v`            |
//! | recv | `None`                           | every sender is gone: disconnected  |
//! | send | `None`                           | a receiver took the value           |
//! | send | `Some(v)` (still there)          | every receiver is gone: `v` returns |
//!
//! # The stack invariant
//!
//! Channels hold raw pointers to waiters and signals on other tasks' stacks. That is sound
//! because **a waiter is out of every queue before the frame that holds it returns or
//! unwinds**, on every path:
//!
//! - completed: the peer unlinked it (and read the task to wake) before storing "arm k", and
//!   touches neither waiter nor signal after that store;
//! - aborted (timeout, select cleanup, disconnect seen elsewhere): the owner unlinks it under
//!   the channel lock, which also waits out a peer that is mid-claim on that channel;
//! - unwinding (a bug panicked while parked, or a coroutine's stack is force-unwound): the
//!   owner's guard (`Queued` in `sender.rs`/`receiver.rs`, the cleanup in `select.rs`) does
//!   the same in its `Drop`.
//!
//! A parked coroutine's stack does not move (corosensei stacks are fixed mappings), and a
//! waiter is only ever used through `&` once linked, never moved.

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::park;
use crate::runtime::task::{Task, Wait};

const WAITING: usize = 0;
const ABORTED: usize = 1;
const CLAIMED: usize = 2;
/// Arm `k` is stored as `k + ARM0`.
const ARM0: usize = 3;

/// The shared state of one blocked operation or select (see the module table). Lives on the
/// owner's stack.
pub(crate) struct Signal {
    state: AtomicUsize,
    /// Who to unpark once an arm completes: the owner.
    task: Arc<Task>,
}

/// How a wait on a [`Signal`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A peer completed this arm.
    Selected(usize),
    /// The owner gave up first (its deadline passed).
    Aborted,
}

impl Signal {
    /// A fresh signal for the calling task.
    pub(crate) fn new() -> Signal {
        Signal {
            state: AtomicUsize::new(WAITING),
            task: park::current(),
        }
    }

    /// The owner gives up: true if it did, false if a peer claimed an arm first (the owner
    /// must then wait for that arm to complete).
    pub(crate) fn abort(&self) -> bool {
        match self
            .state
            .compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(ABORTED) => panic!("chan: a signal aborted twice"),
            Err(_) => false,
        }
    }

    /// Makes an aborted signal usable for a new select round.
    ///
    /// The caller must have unlinked every waiter of this signal first, so no peer can reach
    /// it; it is then the owner's alone.
    pub(crate) fn reset(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
    }

    /// Parks until a peer completes an arm, or `deadline` passes and the owner aborts first.
    /// Loops over spurious wake-ups, as the park protocol requires.
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: Wait) -> Outcome {
        loop {
            let mut until = None;
            match self.state.load(Ordering::Acquire) {
                WAITING => {
                    if let Some(d) = deadline {
                        if Instant::now() >= d {
                            if self.abort() {
                                return Outcome::Aborted;
                            }
                            continue; // a peer claimed an arm just now: wait for it
                        }
                        until = Some(d);
                    }
                }
                // a peer is moving the value under its channel lock; it unparks us after
                CLAIMED => {}
                ABORTED => panic!("chan: waiting on an aborted signal"),
                k => return Outcome::Selected(k - ARM0),
            }
            park::park_current_until(&self.task, until, why, -1);
        }
    }

    /// A peer claims this signal (for the arm it is about to complete), under that arm's
    /// channel lock.
    fn claim(&self) -> bool {
        self.state
            .compare_exchange(WAITING, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    fn same(&self, other: *const Signal) -> bool {
        ptr::eq(self, other)
    }
}

/// One arm of a blocked operation: linked into one channel's queue, holding the value in
/// flight. Lives on the owner's stack (see the module's stack invariant).
pub(crate) struct Waiter<T> {
    /// Guarded by the lock of the channel whose queue holds (or held) this waiter.
    link: UnsafeCell<Link<T>>,
    /// The value in flight; who may touch it when is in the module doc.
    slot: UnsafeCell<Option<T>>,
}

struct Link<T> {
    prev: *const Waiter<T>,
    next: *const Waiter<T>,
    /// The owner's signal and this waiter's arm index in it; set when linked.
    signal: *const Signal,
    arm: usize,
    /// In a queue now. Whoever unlinks it (a peer or the owner) clears it, under the lock.
    queued: bool,
}

impl<T> Waiter<T> {
    /// A waiter holding `value` (a sender's value; `None` for a receiver).
    pub fn new(value: Option<T>) -> Waiter<T> {
        Waiter {
            link: UnsafeCell::new(Link {
                prev: ptr::null(),
                next: ptr::null(),
                signal: ptr::null(),
                arm: 0,
                queued: false,
            }),
            slot: UnsafeCell::new(value),
        }
    }

    /// The owner takes the value out of the slot.
    ///
    /// # Safety
    ///
    /// No peer may be able to reach the slot: the waiter is not queued (never linked, or
    /// unlinked under its channel lock), and any claim of it has completed (the owner saw
    /// "arm k" on its signal, or aborted it). See the module doc.
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: the caller guarantees nobody else touches the slot now.
        unsafe { (*self.slot.get()).take() }
    }

    /// The owner puts a value (back) into the slot.
    ///
    /// # Safety
    ///
    /// As for [`take`](Waiter::take).
    pub(crate) unsafe fn put(&self, v: T) {
        // SAFETY: the caller guarantees nobody else touches the slot now.
        unsafe { *self.slot.get() = Some(v) }
    }
}

/// A channel's queue of blocked senders or receivers: an intrusive doubly linked list of
/// [`Waiter`]s, oldest first, with O(1) removal. Lives under the channel's lock, and every
/// method takes `&mut self`, so holding one proves that lock is held.
pub(crate) struct WaitQueue<T> {
    head: *const Waiter<T>,
    tail: *const Waiter<T>,
}

// SAFETY: the queue only holds pointers to waiters that stay alive while linked (the module's
// stack invariant); it touches their links only under the channel lock that guards the queue
// itself, and moves `T` values between threads only for `T: Send`.
unsafe impl<T: Send> Send for WaitQueue<T> {}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> WaitQueue<T> {
        WaitQueue {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }

    /// Links `w` at the back as arm `arm` of `signal`.
    ///
    /// # Safety
    ///
    /// `w` and `signal` stay alive and unmoved until `w` is out of this queue again, and `w`
    /// is in no queue now (the module's stack invariant; the owner keeps it).
    pub(crate) unsafe fn push_back(&mut self, w: &Waiter<T>, signal: &Signal, arm: usize) {
        // SAFETY: `w` is in no queue, so only its owner (us) touches its link.
        let l = unsafe { &mut *w.link.get() };
        // A real check, not a debug one: linked twice, the queue would keep a pointer to
        // `w` after its owner unlinked it once. Before any write, so the first link is
        // still recorded and its owner's cleanup takes it out.
        assert!(!l.queued, "chan: a waiter linked twice");
        *l = Link {
            prev: self.tail,
            next: ptr::null(),
            signal,
            arm,
            queued: true,
        };
        match self.tail_link() {
            Some(t) => t.next = w,
            None => self.head = w,
        }
        self.tail = w;
    }

    /// Takes `w` out of this queue if it is still there (a peer may have done it already).
    ///
    /// # Safety
    ///
    /// `w` is in this queue or in none: it was only ever linked here.
    pub(crate) unsafe fn remove(&mut self, w: &Waiter<T>) {
        // SAFETY: we hold the lock guarding `w`'s link (`&mut self`); the caller says `w`,
        // if queued, is in this queue.
        unsafe {
            if (*w.link.get()).queued {
                self.unlink(w);
            }
        }
    }

    /// Is some waiter still waiting, other than one of `me`'s own arms? (A select with a
    /// send and a receive arm on one rendezvous channel must not meet itself, as in Go.)
    /// Stale waiters met on the way are unlinked.
    pub(crate) fn has_live(&mut self, me: *const Signal) -> bool {
        self.find(me, false).is_some()
    }

    /// Hands `v` to the oldest live waiter not of `me` (a blocked receiver): returns its
    /// task, to unpark once the channel lock is released. `Err(v)` if there is none.
    pub(crate) fn give(&mut self, me: *const Signal, v: T) -> Result<Arc<Task>, T> {
        match self.find(me, true) {
            // SAFETY: we won the claim, so the slot is ours until `complete`.
            Some(w) => Ok(unsafe {
                *(*w).slot.get() = Some(v);
                complete(w)
            }),
            None => Err(v),
        }
    }

    /// Takes the value of the oldest live waiter not of `me` (a blocked sender), with its
    /// task to unpark once the channel lock is released.
    pub(crate) fn take(&mut self, me: *const Signal) -> Option<(T, Arc<Task>)> {
        let w = self.find(me, true)?;
        // SAFETY: we won the claim, so the slot is ours until `complete`.
        unsafe {
            let v = (*(*w).slot.get())
                .take()
                .expect("chan: a blocked sender's slot holds its value");
            Some((v, complete(w)))
        }
    }

    /// Completes every live waiter without touching its slot (a disconnect) and empties the
    /// queue; returns the tasks to unpark once the channel lock is released.
    pub(crate) fn wake_all(&mut self) -> Vec<Arc<Task>> {
        let mut tasks = Vec::new();
        while let Some(w) = self.find(ptr::null(), true) {
            // SAFETY: we won the claim; the slot is left as it is (module table).
            tasks.push(unsafe { complete(w) });
        }
        tasks
    }

    /// Walks from the front, unlinking stale waiters and skipping `me`'s own, to the first
    /// live one. With `claim`, it wins that waiter's CAS (or, losing it, finds it stale and
    /// goes on) and unlinks it; without, it leaves it queued (a peek).
    fn find(&mut self, me: *const Signal, claim: bool) -> Option<*const Waiter<T>> {
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: `cur` is linked here, so it is alive (stack invariant) and its link and
            // signal are ours to read under the lock we hold.
            unsafe {
                let l = &*(*cur).link.get();
                let (next, sig) = (l.next, &*l.signal);
                if sig.same(me) {
                    // our own arm: neither a peer nor stale
                } else if !claim && sig.state.load(Ordering::Acquire) == WAITING {
                    return Some(cur);
                } else if claim && sig.claim() {
                    self.unlink(cur);
                    return Some(cur);
                } else {
                    // stale: its owner finished another way (a state never returns to
                    // WAITING while the waiter is linked)
                    self.unlink(cur);
                }
                cur = next;
            }
        }
        None
    }

    /// # Safety
    ///
    /// `w` is in this queue, and we hold its lock.
    unsafe fn unlink(&mut self, w: *const Waiter<T>) {
        // SAFETY: `w` and its neighbours are linked here (caller), so alive and guarded by
        // the lock we hold.
        unsafe {
            let l = &mut *(*w).link.get();
            match l.prev.is_null() {
                true => self.head = l.next,
                false => (*(*l.prev).link.get()).next = l.next,
            }
            match l.next.is_null() {
                true => self.tail = l.prev,
                false => (*(*l.next).link.get()).prev = l.prev,
            }
            l.prev = ptr::null();
            l.next = ptr::null();
            l.queued = false;
        }
    }

    fn tail_link(&mut self) -> Option<&mut Link<T>> {
        // SAFETY: the tail is linked here, so alive, and its link is guarded by our lock.
        (!self.tail.is_null()).then(|| unsafe { &mut *(*self.tail).link.get() })
    }
}

/// The peer's last touch of a claimed waiter: publishes "arm k" and returns the task to
/// unpark.
///
/// # Safety
///
/// The caller claimed `w` (so it is alive until this store) and has unlinked it; it must not
/// touch `w` or its signal afterwards: the owner may return as soon as it sees the store.
unsafe fn complete<T>(w: *const Waiter<T>) -> Arc<Task> {
    // SAFETY: claimed by us, so the owner waits for our store before it can return.
    unsafe {
        let l = &*(*w).link.get();
        let sig = &*l.signal;
        let task = sig.task.clone();
        sig.state.store(l.arm + ARM0, Ordering::Release);
        task
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
    use crate::chan::channel::NOBODY;
    use std::time::Duration;

    /// The owner's view after a wait: what the slot holds (the waiter must be out of its queue).
    fn slot_of<T>(w: &Waiter<T>) -> Option<T> {
        // SAFETY: callers only ask once the waiter is completed or removed.
        unsafe { w.take() }
    }

    fn queued<T>(w: &Waiter<T>) -> bool {
        // SAFETY: single-threaded test; nobody else touches the link.
        unsafe { (*w.link.get()).queued }
    }

    #[test]
    fn waiters_are_served_oldest_first_and_removed_from_the_middle() {
        let (a, b, c) = (Signal::new(), Signal::new(), Signal::new());
        let (wa, wb, wc) = (Waiter::new(None), Waiter::new(None), Waiter::new(None));
        let mut q = WaitQueue::new();
        // SAFETY: the waiters and signals outlive `q`'s use of them; each is removed or
        // completed below before the test returns.
        unsafe {
            q.push_back(&wa, &a, 0);
            q.push_back(&wb, &b, 0);
            q.push_back(&wc, &c, 0);
            q.remove(&wb);
        }
        assert!(!queued(&wb));
        assert!(q.give(NOBODY, 1).is_ok());
        assert!(q.give(NOBODY, 2).is_ok());
        assert_eq!(q.give(NOBODY, 3).err(), Some(3), "the queue is empty");
        assert_eq!(a.wait(None, Wait::ChanRecv), Outcome::Selected(0));
        assert_eq!(c.wait(None, Wait::ChanRecv), Outcome::Selected(0));
        assert_eq!(
            (slot_of(&wa), slot_of(&wb), slot_of(&wc)),
            (Some(1), None, Some(2))
        );
        // SAFETY: `wb` was only ever in `q`; removing twice is a no-op.
        unsafe { q.remove(&wb) };
        assert!(q.head.is_null() && q.tail.is_null());
    }

    #[test]
    fn the_first_claim_wins_and_the_other_arms_go_stale() {
        let sig = Signal::new();
        let (w0, w1) = (Waiter::new(None::<u32>), Waiter::new(None));
        let (mut q0, mut q1) = (WaitQueue::new(), WaitQueue::new());
        // SAFETY: both outlive the queues' use of them (completed or unlinked below).
        unsafe {
            q0.push_back(&w0, &sig, 0);
            q1.push_back(&w1, &sig, 1);
        }
        assert!(q1.give(NOBODY, 8).is_ok());
        assert!(!q0.has_live(NOBODY), "arm 0 is stale once arm 1 won");
        assert!(!queued(&w0), "meeting a stale waiter unlinks it");
        assert_eq!(q0.give(NOBODY, 7).err(), Some(7));
        assert_eq!(sig.wait(None, Wait::Select), Outcome::Selected(1));
        assert_eq!((slot_of(&w0), slot_of(&w1)), (None, Some(8)));
        assert!(!sig.abort(), "a completed signal cannot be aborted");
    }

    #[test]
    fn a_select_does_not_meet_its_own_arms() {
        let sig = Signal::new();
        let w = Waiter::new(Some(5u32));
        let mut q = WaitQueue::new();
        // SAFETY: `w` is removed below, before the test returns.
        unsafe { q.push_back(&w, &sig, 0) };
        assert!(!q.has_live(&sig), "its own arm is not a peer");
        assert!(q.take(&sig).is_none());
        assert!(queued(&w), "its own arm stays queued");
        assert!(q.has_live(NOBODY), "but it is one for everybody else");
        // SAFETY: only ever in `q`.
        unsafe { q.remove(&w) };
        assert_eq!(slot_of(&w), Some(5));
    }

    #[test]
    fn an_abort_beats_a_later_peer_and_keeps_the_value() {
        let sig = Signal::new();
        let w = Waiter::new(Some("v"));
        let mut q = WaitQueue::new();
        // SAFETY: unlinked by `take` below (as stale), before the test returns.
        unsafe { q.push_back(&w, &sig, 3) };
        assert!(sig.abort());
        assert!(q.take(NOBODY).is_none(), "an aborted sender is stale");
        assert!(!queued(&w));
        assert_eq!(slot_of(&w), Some("v"));
        sig.reset();
        assert!(sig.abort(), "a reset signal is waiting again");
    }

    #[test]
    fn disconnect_wakes_every_live_waiter_and_leaves_slots_alone() {
        let (a, b) = (Signal::new(), Signal::new());
        let (wa, wb) = (Waiter::new(Some(1)), Waiter::new(Some(2)));
        let mut q = WaitQueue::new();
        // SAFETY: `wake_all` empties the queue before the test returns.
        unsafe {
            q.push_back(&wa, &a, 0);
            q.push_back(&wb, &b, 2);
        }
        assert!(b.abort());
        assert_eq!(q.wake_all().len(), 1, "only the live waiter is woken");
        assert!(!queued(&wa) && !queued(&wb) && q.head.is_null());
        assert_eq!(a.wait(None, Wait::ChanSend), Outcome::Selected(0));
        assert_eq!((slot_of(&wa), slot_of(&wb)), (Some(1), Some(2)));
    }

    #[test]
    fn wait_times_out_by_aborting() {
        let sig = Signal::new();
        let d = Instant::now() + Duration::from_millis(20);
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
