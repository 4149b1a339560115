//! `select!`: wait on several channel operations, complete exactly one — Go's `selectgo`.
//!
//! A select is a pass over its arms in a fresh random order (so no ready arm starves),
//! taking each arm's channel lock once (a select that must not wait and finds nothing makes
//! a second; see below):
//!
//! 1. if the arm can proceed, complete it and return — but if earlier arms are already
//!    queued, first abort the select's [`Signal`], since a peer may be claiming one of them
//!    right now: the CAS decides. Lost: wait for that peer's arm instead;
//! 2. else, unless the select must not wait (`default`, or a deadline already passed), link
//!    the arm's [`Waiter`] into the channel's queue — one per arm, all sharing one signal,
//!    no helper coroutine;
//! 3. every arm queued: park until a peer completes one (it wins the CAS and does the
//!    transfer) or the deadline aborts the signal; then take every other waiter back off its
//!    queue.
//!
//! A select that must not wait and finds no arm ready must still decide at one instant, as
//! Go's does with every channel locked at once (`sellock`): one pass over channels locked
//! one at a time can see `c2` empty just before a value lands there and `c1` empty just
//! after its value was taken, and take `default` though one of them was ready throughout
//! (Go's `TestNonblockSelectRace`; found by the sixth audit). So it reads each channel's
//! lock count again (`Chan::version`, bumped by every taking of the lock): if none moved
//! since its arm looked, every channel stood still from its look to that second reading, so
//! all were as seen at the first second reading, and `default` is right. If one moved, it
//! makes one more pass, linking its waiters, and aborts at once when the last is linked:
//! whatever became ready after its arm was looked at reaches that arm's waiter. The counts
//! spare the common case that pass, which alone cost 3.5-4 times the first (the seventh
//! audit's measure; with the counts a select over two empty channels costs 1.2 times what
//! it did without either). One difference from Go is left: while a select makes that second
//! pass, its linked waiters can meet another operation that must not wait (a `try_recv`
//! can take a send arm's value), which in Go two such operations never do. A select of one
//! arm needs neither: one look under one lock is that instant.
//!
//! The waiters live inside the arms, which live on the caller's stack; [`run`] unlinks every
//! one of them before it returns or unwinds (the stack invariant in `waiter.rs`). Arms are
//! only ever used through `&`, so a peer reaching a waiter through its raw pointer never
//! aliases a `&mut`.
//!
//! `run` can only keep that invariant if each arm's `unlink` takes back what its `poll`
//! linked, and if it is the only user of its arms while it runs. Neither can be checked, so
//! [`Arm`] is an `unsafe trait` and `run` an `unsafe fn`: the items are public (`select!`
//! expands to them in the caller's crate), but safe code outside this crate cannot reach
//! either promise.
//!
//! A send arm's value is evaluated once, on entry, as in Go; if another arm is chosen the
//! value is dropped.

use std::cell::{Cell, OnceCell};
use std::time::{Duration, Instant};

use super::channel::{unpark, Chan, NOBODY};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::receiver::Receiver;
use super::sender::Sender;
use super::waiter::{self, Outcome, Signal, Waiter};
use crate::runtime::task::Wait;

/// The most arms one `select!` may have, not counting `default`; a select with more does
/// not compile ("select!: at most 32 arms").
///
/// ```compile_fail
/// let (_s, r) = coronet::chan::unbounded::<()>();
/// coronet::select! {
///     recv(r) -> _ => {}
///     // ... 32 more `recv(r)` arms: one too many
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// }
/// ```
pub const MAX_ARMS: usize = 32;

/// How long a select may wait when no arm is ready.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Block {
    /// No `default` arm: wait for an arm.
    Forever,
    /// `default =>`: never wait.
    Now,
    /// `default(timeout) =>`: wait until this instant.
    Until(Instant),
}

impl Block {
    /// `default(timeout)`: a timeout too long for the clock means no timeout.
    pub fn after(timeout: Duration) -> Block {
        Instant::now()
            .checked_add(timeout)
            .map_or(Block::Forever, Block::Until)
    }
}

/// The state one select shares with its arms while it polls them.
#[doc(hidden)]
pub struct Round {
    /// Made on first need (the first arm to queue): a select that finds an arm ready at
    /// once never looks up its task.
    sig: OnceCell<Signal>,
    /// Bit `i`: arm `i`'s waiter may be linked (a peer may have unlinked it since).
    queued: Cell<u32>,
    /// May arms be queued? False for the first pass of a select that must not wait
    /// (`default`, or a deadline already passed); see `run` for what may follow it.
    wait: Cell<bool>,
    /// Arm `i`'s channel's lock count as its last look left it (`Chan::version`).
    seen: [Cell<u64>; MAX_ARMS],
}

impl Round {
    /// This select's signal as the `me` that channel operations skip.
    fn me(&self) -> *const Signal {
        self.sig.get().map_or(NOBODY, |s| s)
    }

    fn signal(&self) -> &Signal {
        // Not `get_or_init`: the reference it returns on the initialising call is derived
        // from the `&mut` std's `OnceCell::try_insert` writes through, and a later write
        // through a reference from `get` (an abort) invalidates it under both Stacked and
        // Tree Borrows, while a peer still holds it in a linked waiter. Every reference to
        // the signal comes from `get`.
        if self.sig.get().is_none() {
            let _ = self.sig.set(Signal::new());
        }
        self.sig.get().expect("the signal was just set")
    }
}

/// What polling one arm did.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Completed now (including with a disconnect error); the outcome is stored.
    Ready,
    /// Not ready; its waiter is linked.
    Queued,
    /// Not ready, and the select may not wait.
    NotReady,
    /// A peer claimed an earlier queued arm before this one could complete.
    Lost,
    /// Looked ready, so the signal was aborted, but the peer it saw gave up meanwhile: this
    /// pass is void; unlink and poll again.
    Retry,
}

/// One operation of a select, type-erased so arms over different `T` share one slice.
/// Used only through `&`: a linked waiter inside may be touched by peers.
///
/// # Safety
///
/// [`run`] hands peers raw pointers to the waiters an arm links, and trusts the arm to keep
/// them valid (the stack invariant in `waiter.rs`). An implementation must:
///
/// - link waiters only in `poll`, only waiters inside the arm itself (so alive and unmoved
///   while `run` borrows it), each into one channel's queue as arm `index` of `round`'s
///   signal, and record that in `round` (which only [`RecvArm`] and [`SendArm`] can do);
/// - in `unlink`, take every waiter `poll` linked back out of its queue, so that no channel
///   can reach the arm once it returns;
/// - in `complete`, touch only waiters a peer has completed (and so unlinked).
///
/// Calling the methods is safe: `poll` needs a [`Round`], which only `run` makes, and
/// outside a `run` an arm has no waiter linked for `unlink` or `complete` to race with.
///
/// Only [`RecvArm`] and [`SendArm`] implement it. Safe code cannot, so it cannot hand `run`
/// an arm whose `unlink` leaves a waiter linked for a later `send` to walk after the arm is
/// freed:
///
/// ```compile_fail,E0200
/// use coronet::chan::__private::{Arm, Poll, RecvArm, Round};
///
/// struct Leaky<'a>(Box<RecvArm<'a, i32>>);
///
/// impl Arm for Leaky<'_> {
///     fn poll(&self, round: &Round, index: usize) -> Poll {
///         self.0.poll(round, index) // links the boxed waiter
///     }
///     fn unlink(&self) {} // and leaves it linked
///     fn complete(&self) {
///         self.0.complete()
///     }
/// }
/// ```
#[doc(hidden)]
pub unsafe trait Arm {
    /// Under the arm's channel lock: completes it if it can proceed, else queues its waiter
    /// as arm `index` of the round's signal (if the round may wait).
    fn poll(&self, round: &Round, index: usize) -> Poll;
    /// Takes the waiter back off its queue (a no-op if a peer already did).
    fn unlink(&self);
    /// A peer completed this arm: read the outcome from the waiter's slot.
    fn complete(&self);
    /// The arm's channel's lock count now (`Chan::version`), to compare with the one its
    /// last look recorded in the round; `None`: unknown, so a select may not rely on it.
    fn version(&self) -> Option<u64> {
        None
    }
}

/// A `recv(r) -> msg` arm. Built by `select!`; not for direct use.
///
/// The fields are private so that every arm starts as `new` makes it: `run` is then never
/// handed a waiter that holds a value, or an outcome set before it started.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    chan: &'a Receiver<T>,
    /// Empty until a sender fills it.
    waiter: Waiter<T>,
    result: Cell<Option<Result<T, RecvError>>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm that receives from `chan`. (`select!` binds `&r` in a `let` of its own first,
    /// so that a temporary receiver, as in `recv(after(d))`, lives as long as the arm.)
    pub fn new(chan: &'a Receiver<T>) -> RecvArm<'a, T> {
        RecvArm {
            chan,
            waiter: Waiter::new(None),
            result: Cell::new(None),
        }
    }

    /// The outcome of the chosen arm.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result
            .into_inner()
            .expect("select! chose an arm without an outcome")
    }
}

// SAFETY: `poll` links only `self.waiter`, into `self.chan`'s receivers' queue as arm
// `index`, and marks it in `round`; `unlink` takes it out of that queue; `complete` reads a
// slot a peer completed. `run` borrows the arm, so the waiter stays put while linked.
unsafe impl<T> Arm for RecvArm<'_, T> {
    fn poll(&self, round: &Round, index: usize) -> Poll {
        let chan = &*self.chan.chan;
        let mut g = chan.lock();
        let me = round.me();
        // With arms queued, a peer may be claiming one right now: only abort (and let the
        // CAS decide) if this arm can really proceed.
        let aborted = round.queued.get() != 0 && Chan::recv_ready(&mut g, me);
        if aborted && !round.signal().abort() {
            return Poll::Lost;
        }
        match Chan::recv_locked(&mut g, me) {
            (Ok(v), wake) => {
                drop(g);
                unpark(wake);
                self.result.set(Some(Ok(v)));
                Poll::Ready
            }
            (Err(TryRecvError::Disconnected), _) => {
                self.result.set(Some(Err(RecvError)));
                Poll::Ready
            }
            (Err(TryRecvError::Empty), _) if aborted => Poll::Retry,
            (Err(TryRecvError::Empty), _) if !round.wait.get() => {
                round.seen[index].set(chan.version());
                Poll::NotReady
            }
            (Err(TryRecvError::Empty), _) => {
                // SAFETY: the waiter lives in this arm, which `run` borrows (so it cannot
                // move) and unlinks from this queue before returning or unwinding; it is in
                // no queue now (`run` unlinks every arm before a new pass).
                unsafe { Chan::link_recv(&mut g, &self.waiter, round.signal(), index) };
                round.queued.set(round.queued.get() | 1 << index);
                Poll::Queued
            }
        }
    }

    fn unlink(&self) {
        // SAFETY: this waiter is only ever linked into this channel's receivers' queue.
        unsafe { self.chan.chan.unlink_recv(&self.waiter) }
    }

    fn version(&self) -> Option<u64> {
        Some(self.chan.chan.version())
    }

    fn complete(&self) {
        // SAFETY: `run` calls this once a peer completed the arm, unlinked the waiter and was
        // done with its slot; anyone else can only call it outside a `run` (`run`'s contract),
        // when the waiter is in no queue. An empty slot is a disconnect.
        let v = unsafe { self.waiter.take() };
        self.result.set(Some(v.ok_or(RecvError)));
    }
}

/// A `send(s, v) -> res` arm. Built by `select!`; not for direct use. Private fields, as
/// [`RecvArm`]'s.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    chan: &'a Sender<T>,
    /// Holds the value until it is sent, also while unlinked.
    waiter: Waiter<T>,
    result: Cell<Option<Result<(), SendError<T>>>>,
}

impl<'a, T> SendArm<'a, T> {
    /// An arm that sends `value` on `chan` (a `let` first, as for [`RecvArm::new`]).
    pub fn new(chan: &'a Sender<T>, value: T) -> SendArm<'a, T> {
        SendArm {
            chan,
            waiter: Waiter::new(Some(value)),
            result: Cell::new(None),
        }
    }

    /// The outcome of the chosen arm.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result
            .into_inner()
            .expect("select! chose an arm without an outcome")
    }
}

// SAFETY: as for `RecvArm`, with the senders' queue; the value stays in the slot while the
// waiter is linked, and `complete` reads it back only after a peer completed the arm.
unsafe impl<T> Arm for SendArm<'_, T> {
    fn poll(&self, round: &Round, index: usize) -> Poll {
        let chan = &*self.chan.chan;
        let mut g = chan.lock();
        let me = round.me();
        // as in `RecvArm::poll`
        let aborted = round.queued.get() != 0 && chan.send_ready(&mut g, me);
        if aborted && !round.signal().abort() {
            return Poll::Lost;
        }
        // SAFETY: the waiter is in no queue (`run` unlinks every arm before a new pass), so
        // its slot is ours.
        let v = unsafe { self.waiter.take() }.expect("a pending send arm holds its value");
        match chan.send_locked(&mut g, v, me) {
            (Ok(()), wake) => {
                drop(g);
                unpark(wake);
                self.result.set(Some(Ok(())));
                Poll::Ready
            }
            (Err(TrySendError::Disconnected(v)), _) => {
                self.result.set(Some(Err(SendError(v))));
                Poll::Ready
            }
            (Err(TrySendError::Full(v)), _) => {
                // SAFETY: still in no queue.
                unsafe { self.waiter.put(v) };
                if aborted {
                    Poll::Retry
                } else if !round.wait.get() {
                    round.seen[index].set(chan.version());
                    Poll::NotReady
                } else {
                    // SAFETY: as in `RecvArm::poll`; the slot holds the value, as a queued
                    // sender's must.
                    unsafe { Chan::link_send(&mut g, &self.waiter, round.signal(), index) };
                    round.queued.set(round.queued.get() | 1 << index);
                    Poll::Queued
                }
            }
        }
    }

    fn unlink(&self) {
        // SAFETY: this waiter is only ever linked into this channel's senders' queue.
        unsafe { self.chan.chan.unlink_send(&self.waiter) }
    }

    fn version(&self) -> Option<u64> {
        Some(self.chan.chan.version())
    }

    fn complete(&self) {
        // SAFETY: as in `RecvArm::complete`. After a peer, the slot is empty (a receiver took
        // the value) or still holds it (every receiver left).
        let v = unsafe { self.waiter.take() };
        self.result.set(Some(match v {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        }));
    }
}

/// Unlinks every queued arm, now or when dropped: the select's frame never ends with a waiter
/// linked, even if it unwinds.
struct Cleanup<'r, 'a> {
    arms: &'r [&'a dyn Arm],
    round: &'r Round,
}

impl Cleanup<'_, '_> {
    fn unlink_all(&self) {
        let mut q = self.round.queued.replace(0);
        while q != 0 {
            let i = q.trailing_zeros() as usize;
            self.arms[i].unlink();
            q &= q - 1;
        }
    }
}

impl Drop for Cleanup<'_, '_> {
    fn drop(&mut self) {
        self.unlink_all();
    }
}

/// Runs a select over `arms`: the index of the arm that completed, or `None` for the
/// default/timeout. Called by `select!`.
///
/// # Panics
///
/// If an arm appears in `arms` twice: its waiter would be linked twice and the queue
/// broken. The macro lists each arm once, but its inner rules can be invoked directly,
/// with names of the caller's choosing (found by an audit: `select!(@build …)` with two
/// arms named alike left a channel's queue pointing into a dead frame), so `run` checks.
///
/// # Safety
///
/// Nothing else uses the arms until `run` returns: no other `run`, and no call of their
/// methods, say by another coroutine on this thread while this one is parked.
///
/// Safe code cannot call it, so it cannot break that rule:
///
/// ```compile_fail,E0133
/// use coronet::chan::__private::{run, Arm, Block, RecvArm};
///
/// let (_s, r) = coronet::chan::unbounded::<i32>();
/// let arm = RecvArm::new(&r);
/// run(&[&arm as &dyn Arm], Block::Now); // unsafe: only the macro may call it
/// ```
#[doc(hidden)]
pub unsafe fn run(arms: &[&dyn Arm], block: Block) -> Option<usize> {
    assert!(arms.len() <= MAX_ARMS, "select!: at most {MAX_ARMS} arms");
    // Before any arm is polled, so nothing is linked yet when it panics. At most 32 arms,
    // and usually two or three: pairs are cheaper than sorting.
    let at = |a: &&dyn Arm| (*a as *const dyn Arm).cast::<()>();
    for (i, a) in arms.iter().enumerate() {
        assert!(
            !arms[..i].iter().any(|b| at(b) == at(a)),
            "select!: arm {i} is listed twice"
        );
    }
    let (wait, mut deadline) = match block {
        Block::Now => (false, None),
        Block::Until(d) => (Instant::now() < d, Some(d)),
        Block::Forever => (true, None),
    };
    let round = Round {
        sig: OnceCell::new(),
        queued: Cell::new(0),
        wait: Cell::new(wait),
        seen: [const { Cell::new(0) }; MAX_ARMS],
    };
    // a select that must not wait: its second, linked pass is still to come (module docs)
    let mut settle = !wait && arms.len() > 1;
    let cleanup = Cleanup {
        arms,
        round: &round,
    };
    let mut order = [0usize; MAX_ARMS];
    let order = &mut order[..arms.len()];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    loop {
        waiter::shuffle(order);
        let mut lost = false;
        let mut retry = false;
        for &i in order.iter() {
            #[cfg(test)]
            tests::between_arms(i);
            match arms[i].poll(&round, i) {
                Poll::Ready => return Some(i), // `cleanup` unlinks the queued arms
                Poll::Queued | Poll::NotReady => {}
                Poll::Lost => lost = true,
                Poll::Retry => retry = true,
            }
            if lost || retry {
                break;
            }
        }
        if retry {
            cleanup.unlink_all();
            round.signal().reset(); // no waiter of it is linked any more
            continue;
        }
        if !round.wait.get() {
            // No channel taken since its arm looked: each stood still from its look to
            // its second reading, so all were as seen at once, at the first of those.
            let still =
                || (arms.iter().enumerate()).all(|(i, a)| a.version() == Some(round.seen[i].get()));
            if settle && !still() {
                settle = false;
                round.wait.set(true);
                // the deadline has passed (or there is none): abort once all are linked
                deadline = Some(deadline.unwrap_or_else(Instant::now));
                continue;
            }
            return None;
        }
        let sig = round.signal();
        let outcome = match lost {
            true => sig.wait(None, Wait::Select),
            false => sig.wait(deadline, Wait::Select),
        };
        return match outcome {
            Outcome::Selected(k) => {
                // the peer unlinked arm k; `cleanup` unlinks the rest
                round.queued.set(round.queued.get() & !(1 << k));
                arms[k].complete();
                rt_log!(Trace, "select: arm {k} completed by a peer");
                Some(k)
            }
            Outcome::Aborted => None,
        };
    }
}

/// Waits on several channel operations and runs the arm of the one that completes.
///
/// The syntax is crossbeam-channel's:
///
/// - `recv(r) -> msg => body` — `msg` is `Result<T, RecvError>`; an arm whose channel is
///   empty and disconnected is ready with `Err`.
/// - `send(s, v) -> res => body` — `res` is `Result<(), SendError<T>>`. Every `v` is
///   evaluated once, when the select starts (as in Go); the values of arms not chosen are
///   dropped.
/// - `default => body` — runs if no arm is ready right away.
/// - `default(timeout) => body` — runs if no arm becomes ready within `timeout`.
///
/// When several arms are ready, one is chosen at random, as in Go, so none starves. With no
/// arm and no default the select waits forever, like Go's `select {}`. A select parks only
/// its coroutine (a plain thread blocks) and registers once on each channel. At most
/// 32 arms.
///
/// ```
/// use coronet::chan;
/// use std::time::Duration;
///
/// let (s1, r1) = chan::unbounded::<i32>();
/// let (s2, r2) = chan::bounded::<&str>(0);
/// coronet::go(move || s2.send("hello").unwrap());
///
/// let got = coronet::select! {
///     recv(r1) -> msg => format!("r1: {:?}", msg),
///     recv(r2) -> msg => format!("r2: {}", msg.unwrap()),
///     default(Duration::from_secs(10)) => "timed out".to_string(),
/// };
/// assert_eq!(got, "r2: hello");
/// # drop(s1);
/// ```
///
/// A send arm and a `default`:
///
/// ```
/// let (s, r) = coronet::chan::bounded(1);
/// for i in 0..3 {
///     coronet::select! {
///         send(s, i) -> res => res.unwrap(),
///         default => println!("full, dropping {i}"),
///     }
/// }
/// assert_eq!(r.try_iter().collect::<Vec<_>>(), [0]);
/// ```
#[macro_export]
macro_rules! select {
    // ---- parsing: normalise each arm to `(kind (args) (pat) (body))` ----
    (@parse [$($arms:tt)*] $def:tt []) => {
        $crate::select!(@build [$($arms)*] $def []
            [__a0 __a1 __a2 __a3 __a4 __a5 __a6 __a7 __a8 __a9 __a10 __a11 __a12 __a13 __a14
             __a15 __a16 __a17 __a18 __a19 __a20 __a21 __a22 __a23 __a24 __a25 __a26 __a27
             __a28 __a29 __a30 __a31]
            [0])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt [recv($r:expr $(,)?) -> $res:pat => $body:expr]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [])
    };
    (@parse $arms:tt [] [default => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:expr]) => {
        $crate::select!(@parse $arms [(now () ($body))] [])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:expr]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [])
    };
    (@parse $arms:tt $def:tt [default $($rest:tt)*]) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    (@parse $arms:tt $def:tt [$($rest:tt)*]) => {
        ::core::compile_error!(
            "select!: expected `recv(r) -> msg => ...`, `send(s, v) -> res => ...`, \
             `default => ...` or `default(timeout) => ...`"
        )
    };

    // ---- naming: give each arm a variable and an index ----
    (@build [($kind:ident $args:tt $res:tt $body:tt) $($arms:tt)*] $def:tt [$($done:tt)*]
        [$id:ident $($ids:ident)*] [$($idx:tt)*]) => {
        $crate::select!(@build [$($arms)*] $def
            [$($done)* ($id ($($idx)*) $kind $args $res $body)] [$($ids)*] [$($idx)* + 1])
    };
    (@build [$($arms:tt)+] $def:tt $done:tt [] $idx:tt) => {
        ::core::compile_error!("select!: at most 32 arms")
    };

    // ---- output ----
    (@build [] [$(($dkind:ident $dargs:tt $dbody:tt))?]
        [$(($id:ident $idx:tt $kind:ident $args:tt ($res:pat) $body:tt))*] $ids:tt $nidx:tt) => {{
        $( $crate::select!(@arm $id $kind $args); )*
        let __arms: &[&dyn $crate::chan::__private::Arm] = &[$(&$id),*];
        let __block = $crate::select!(@block $(($dkind $dargs))?);
        // SAFETY: the arms are this select's own, each made just above by `RecvArm::new` or
        // `SendArm::new` as a local of this block; no code runs between here and `run`'s
        // return that could name them (the arms' expressions ran above, the bodies run
        // below). `run` itself refuses an arm listed twice, which a direct call of this
        // rule with names of the caller's choosing could do.
        let __chosen = unsafe { $crate::chan::__private::run(__arms, __block) };
        match __chosen {
            $( ::core::option::Option::Some(__i) if __i == $idx => {
                let $res = $id.into_result();
                $body
            } )*
            _ => $crate::select!(@default $($dbody)?),
        }
    }};
    // The borrow gets a `let` of its own, which keeps a temporary (`recv(after(d))`) alive
    // for the whole select; a temporary in a function's argument would die with the `let`.
    (@arm $id:ident recv ($r:expr)) => {
        let $id = &$r;
        let $id = $crate::chan::__private::RecvArm::new($id);
    };
    (@arm $id:ident send ($s:expr, $v:expr)) => {
        let $id = &$s;
        let $id = $crate::chan::__private::SendArm::new($id, $v);
    };
    (@block) => { $crate::chan::__private::Block::Forever };
    (@block (now ())) => { $crate::chan::__private::Block::Now };
    (@block (after ($d:expr))) => { $crate::chan::__private::Block::after($d) };
    (@default) => { ::core::unreachable!("select! without default returned no arm") };
    (@default $body:tt) => { $body };

    // ---- entry ----
    ($($tokens:tt)*) => {
        $crate::select!(@parse [] [] [$($tokens)*])
    };
}

#[cfg(test)]
mod tests {
    use crate::chan;
    use std::cell::RefCell;

    type Hook = Box<dyn FnMut(usize)>;

    thread_local! {
        /// Called before each arm's poll, with its index: a test's way into the moment
        /// between two arms.
        static BETWEEN_ARMS: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(super) fn between_arms(i: usize) {
        BETWEEN_ARMS.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(i)
            }
        });
    }

    /// Go's `TestNonblockSelectRace`, made exact: `c1` holds a value; between the look at
    /// `c2` (empty) and the look at `c1`, a value lands in `c2` and `c1`'s is taken. One of
    /// them was ready at every instant, so `default` must not run (it did: found by the
    /// sixth audit with a spin-aligned race). The arms' order is random, so the select
    /// runs until it has looked at `c2` first a few times.
    #[test]
    fn a_nonblocking_select_never_misses_an_arm_that_was_always_ready() {
        let mut smeared = 0;
        for _ in 0..200 {
            let (s1, r1) = chan::bounded::<u32>(1);
            let (s2, r2) = chan::bounded::<u32>(1);
            s1.send(1).unwrap();
            let (r1_taker, s2_filler) = (r1.clone(), s2.clone());
            let seen = std::rc::Rc::new(std::cell::Cell::new(Vec::<usize>::new()));
            let seen_in_hook = seen.clone();
            let hook: Hook = Box::new(move |i| {
                let mut order = seen_in_hook.take();
                order.push(i);
                // the second look of the first pass, after a look at `c2` (arm 1)
                if order == [1, 0] {
                    s2_filler.send(2).unwrap();
                    assert_eq!(r1_taker.try_recv(), Ok(1));
                }
                seen_in_hook.set(order);
            });
            BETWEEN_ARMS.with(|h| *h.borrow_mut() = Some(hook));
            let got = crate::select! {
                recv(r1) -> v => Some(v.unwrap()),
                recv(r2) -> v => Some(v.unwrap()),
                default => None,
            };
            BETWEEN_ARMS.with(|h| *h.borrow_mut() = None);
            let order = seen.take();
            if order.starts_with(&[1, 0]) {
                smeared += 1;
                assert_eq!(got, Some(2), "default taken with c2 ready since c1 emptied");
            } else {
                assert_eq!(got, Some(1));
            }
            drop((s1, s2));
        }
        assert!(
            smeared >= 10,
            "c2 was looked at first only {smeared} times in 200"
        );
    }
}
