//! The channel itself — Go's `hchan`: a queue, two waiter queues and the handle counts, under
//! one short-held `std::sync::Mutex`.
//!
//! Invariants, all kept under the lock:
//! - A *live* receiver waits (a waiter whose signal is still WAITING sits in `recvq`) only
//!   while the queue is empty: every send first hands its value to a live receiver.
//! - A live sender waits only while the queue is full (for `bounded(0)`: always): every
//!   receive that frees a place refills it from a live sender, so FIFO order per sender holds.
//! - Once `senders` is 0 no new receiver waits and every waiting one was woken with an empty
//!   slot; once `receivers` is 0 the same for senders, and the queue was emptied.
//!
//! One operation takes the lock once: it completes against a waiting peer (moving the value
//! straight into or out of the peer's slot, as Go's `send`/`recv` do), or uses the queue, or
//! links its own waiter, all in one critical section. The task to wake is collected under
//! the lock and unparked after it is released; values being discarded are dropped after it
//! too, so no user code runs under it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{TryRecvError, TrySendError};
use super::waiter::{Signal, WaitQueue, Waiter};
use crate::runtime::task::Task;

pub(crate) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    /// `None`: unbounded. `Some(0)`: rendezvous, nothing is ever queued.
    cap: Option<usize>,
    /// Bumped by every taking of `inner`'s lock, before anything under it can change: a
    /// select that must not wait, having found every arm not ready, reads it again, and a
    /// channel whose count is the same has not changed since its arm looked (see
    /// `select::run`).
    version: AtomicU64,
}

pub(crate) struct Inner<T> {
    queue: VecDeque<T>,
    /// Blocked receivers, oldest first.
    recvq: WaitQueue<T>,
    /// Blocked senders, oldest first, each holding its value in its waiter's slot.
    sendq: WaitQueue<T>,
    senders: usize,
    receivers: usize,
    /// Run once, after the lock, when the last receiver is gone: `time::after` disarms its
    /// timer with it, so a receiver dropped unread gives the timer's memory back at once.
    on_no_receivers: Option<Box<dyn FnOnce() + Send>>,
}

/// The channel, locked.
pub(crate) type Locked<'a, T> = MutexGuard<'a, Inner<T>>;

/// What the caller must unpark once the channel lock is released.
pub(crate) type Wake = Option<Arc<Task>>;

/// For operations that are not part of a select: no waiter of theirs can be queued.
pub(crate) const NOBODY: *const Signal = std::ptr::null();

impl<T> Chan<T> {
    /// A channel with one sender and one receiver handle counted.
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            inner: Mutex::new(Inner {
                queue: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                recvq: WaitQueue::new(),
                sendq: WaitQueue::new(),
                senders: 1,
                receivers: 1,
                on_no_receivers: None,
            }),
            cap,
            version: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub(crate) fn lock(&self) -> Locked<'_, T> {
        // Nothing that can panic runs under this lock except allocation failure, which
        // aborts, and bug checks; a poisoned lock still guards consistent state.
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // A plain load and store, not a read-modify-write (which cost a send and receive
        // pair 30 %): only the lock's holder writes it. Whoever has seen a change made under
        // this lock, through the lock or anything ordered after it, also sees the new count,
        // which was stored before the change; a select whose second reading still finds the
        // old count has seen nothing that came after the change, so the change may be taken
        // to come after its decision.
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Release);
        g
    }

    /// The lock count; under the lock, the one its holder's taking left.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Sends without blocking: to a waiting receiver, else into the queue if there is room.
    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let (res, wake) = self.send_locked(&mut self.lock(), v, NOBODY);
        unpark(wake);
        res
    }

    /// The send step under the lock; `me` is the caller's select, whose own waiters it skips.
    pub(crate) fn send_locked(
        &self,
        g: &mut Inner<T>,
        v: T,
        me: *const Signal,
    ) -> (Result<(), TrySendError<T>>, Wake) {
        if g.receivers == 0 {
            return (Err(TrySendError::Disconnected(v)), None);
        }
        let v = match g.recvq.give(me, v) {
            Ok(task) => return (Ok(()), Some(task)),
            Err(v) => v,
        };
        if self.has_room(g) {
            g.queue.push_back(v);
            (Ok(()), None)
        } else {
            (Err(TrySendError::Full(v)), None)
        }
    }

    /// Receives without blocking: from the queue (refilling it from a waiting sender), or
    /// straight from a waiting sender when nothing is queued (`bounded(0)`).
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let (res, wake) = Self::recv_locked(&mut self.lock(), NOBODY);
        unpark(wake);
        res
    }

    /// The receive step under the lock; `me` as in [`send_locked`](Chan::send_locked).
    pub(crate) fn recv_locked(
        g: &mut Inner<T>,
        me: *const Signal,
    ) -> (Result<T, TryRecvError>, Wake) {
        if let Some(v) = g.queue.pop_front() {
            // A place just opened: move the oldest live sender's value into it.
            return match g.sendq.take(me) {
                Some((sent, task)) => {
                    g.queue.push_back(sent);
                    (Ok(v), Some(task))
                }
                None => (Ok(v), None),
            };
        }
        if let Some((sent, task)) = g.sendq.take(me) {
            return (Ok(sent), Some(task));
        }
        if g.senders == 0 {
            (Err(TryRecvError::Disconnected), None)
        } else {
            (Err(TryRecvError::Empty), None)
        }
    }

    /// Could a send by `me` proceed now (a live receiver, room, or disconnection)?
    pub(crate) fn send_ready(&self, g: &mut Inner<T>, me: *const Signal) -> bool {
        g.receivers == 0 || self.has_room(g) || g.recvq.has_live(me)
    }

    /// Could a receive by `me` proceed now (a value, a live sender, or disconnection)?
    pub(crate) fn recv_ready(g: &mut Inner<T>, me: *const Signal) -> bool {
        !g.queue.is_empty() || g.senders == 0 || g.sendq.has_live(me)
    }

    fn has_room(&self, g: &Inner<T>) -> bool {
        self.cap.map_or(true, |c| g.queue.len() < c)
    }

    /// Links `w` (its slot holding the value) as a blocked sender: arm `arm` of `sig`.
    ///
    /// # Safety
    ///
    /// As [`WaitQueue::push_back`]: `w` and `sig` outlive their time in the queue, and the
    /// caller takes `w` out again with [`unlink_send`](Chan::unlink_send) unless a peer
    /// completes it.
    pub(crate) unsafe fn link_send(g: &mut Inner<T>, w: &Waiter<T>, sig: &Signal, arm: usize) {
        // SAFETY: passed on to our caller.
        unsafe { g.sendq.push_back(w, sig, arm) }
    }

    /// Links `w` as a blocked receiver; see [`link_send`](Chan::link_send).
    ///
    /// # Safety
    ///
    /// As for `link_send`.
    pub(crate) unsafe fn link_recv(g: &mut Inner<T>, w: &Waiter<T>, sig: &Signal, arm: usize) {
        // SAFETY: passed on to our caller.
        unsafe { g.recvq.push_back(w, sig, arm) }
    }

    /// Takes `w` back out of the senders' queue, if no peer already did.
    ///
    /// # Safety
    ///
    /// `w` was only ever linked into this channel's senders' queue (or never linked).
    pub(crate) unsafe fn unlink_send(&self, w: &Waiter<T>) {
        // SAFETY: passed on to our caller.
        unsafe { self.lock().sendq.remove(w) }
    }

    /// Takes `w` back out of the receivers' queue, if no peer already did.
    ///
    /// # Safety
    ///
    /// `w` was only ever linked into this channel's receivers' queue (or never linked).
    pub(crate) unsafe fn unlink_recv(&self, w: &Waiter<T>) {
        // SAFETY: passed on to our caller.
        unsafe { self.lock().recvq.remove(w) }
    }

    pub(crate) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    pub(crate) fn add_receiver(&self) {
        self.lock().receivers += 1;
    }

    /// The last sender is gone: wake every blocked receiver with an empty slot.
    pub(crate) fn drop_sender(&self) {
        let tasks = {
            let mut g = self.lock();
            g.senders -= 1;
            if g.senders > 0 {
                return;
            }
            g.recvq.wake_all()
        };
        let n = tasks.len();
        tasks.into_iter().for_each(Task::unpark_owned);
        rt_log!(Trace, "chan: last sender dropped, woke {n} receiver(s)");
    }

    /// The last receiver is gone: wake every blocked sender (its value stays in its slot and
    /// goes back to it) and drop what is queued — nobody can receive it any more.
    pub(crate) fn drop_receiver(&self) {
        let (tasks, queued, hook) = {
            let mut g = self.lock();
            g.receivers -= 1;
            if g.receivers > 0 {
                return;
            }
            let hook = g.on_no_receivers.take();
            (g.sendq.wake_all(), std::mem::take(&mut g.queue), hook)
        };
        let n = tasks.len();
        tasks.into_iter().for_each(Task::unpark_owned);
        rt_log!(Trace, "chan: last receiver dropped, woke {n} sender(s)");
        drop(queued);
        if let Some(f) = hook {
            f();
        }
    }

    /// Has `f` run once the last receiver is gone (at once if it already is).
    pub(crate) fn on_no_receivers(&self, f: Box<dyn FnOnce() + Send>) {
        let mut g = self.lock();
        if g.receivers == 0 {
            drop(g);
            f();
        } else {
            g.on_no_receivers = Some(f);
        }
    }
}

/// Unparks the task an operation collected, now that the channel lock is released.
///
/// Channels log only here and after the last sender's or receiver's drop: after the lock is
/// released and the peers are woken. A logger is user code, and one that forwards records
/// through a coronet channel (maybe this one) takes that lock and may wait on those peers.
pub(crate) fn unpark(wake: Wake) {
    if let Some(t) = wake {
        let id = t.id;
        t.unpark_owned();
        rt_log!(Trace, "chan: value handed over with task {id}, woke it");
    }
}

/// A plain `send`'s or `recv`'s waiter while it may be queued. Dropping this takes the waiter
/// out of its queue — on a timeout, and on any unwinding — so the frame holding the waiter
/// never ends with it linked (the stack invariant in `waiter.rs`). A completed wait disarms it
/// instead: the peer already unlinked the waiter.
pub(crate) struct Queued<'a, T> {
    chan: &'a Chan<T>,
    w: &'a Waiter<T>,
    send: bool,
    armed: bool,
}

impl<'a, T> Queued<'a, T> {
    /// # Safety
    ///
    /// `w` was linked into `chan`'s senders' queue (`send`) or receivers' queue, and nowhere
    /// else.
    pub(crate) unsafe fn new(chan: &'a Chan<T>, w: &'a Waiter<T>, send: bool) -> Self {
        Queued {
            chan,
            w,
            send,
            armed: true,
        }
    }

    /// A peer completed the waiter (and unlinked it): nothing left to undo.
    pub(crate) fn completed(mut self) {
        self.armed = false;
    }
}

impl<T> Drop for Queued<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: `w` was only ever linked into this queue (`Queued::new`'s contract).
            unsafe {
                match self.send {
                    true => self.chan.unlink_send(self.w),
                    false => self.chan.unlink_recv(self.w),
                }
            }
        }
    }
}
