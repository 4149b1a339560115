//! The channel itself — Go's `hchan`: a queue, two waiter lists and the handle counts, under
//! one short-held `std::sync::Mutex`.
//!
//! Invariants, all kept under the lock:
//! - A *live* receiver waits (an entry whose signal is still WAITING sits in `recvq`) only
//!   while the queue is empty: every send first hands its value to a live receiver.
//! - A live sender waits only while the queue is full (for `bounded(0)`: always): every
//!   receive that frees a place refills it from a live sender, so FIFO order per sender holds.
//! - Once `senders` is 0 no new receiver waits and every waiting one was woken with an empty
//!   slot; once `receivers` is 0 the same for senders, and the queue was emptied.
//!
//! Each operation collects the task to wake under the lock and unparks it after the lock is
//! released; values being discarded are dropped after it too, so no user code runs under it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{TryRecvError, TrySendError};
use super::waiter::{Entry, Signal};
use crate::runtime::task::Task;

pub(crate) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    /// `None`: unbounded. `Some(0)`: rendezvous, nothing is ever queued.
    cap: Option<usize>,
}

struct Inner<T> {
    queue: VecDeque<T>,
    /// Blocked receivers, oldest first (stale entries are skipped and dropped when met).
    recvq: VecDeque<Arc<Entry<T>>>,
    /// Blocked senders, each holding its value in its entry's slot.
    sendq: VecDeque<Arc<Entry<T>>>,
    senders: usize,
    receivers: usize,
}

/// What the caller must do once the channel lock is released.
type Wake = Option<Arc<Task>>;

impl<T> Chan<T> {
    /// A channel with one sender and one receiver handle counted.
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            inner: Mutex::new(Inner {
                queue: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
                senders: 1,
                receivers: 1,
            }),
            cap,
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Nothing that can panic runs under this lock except allocation failure, which
        // aborts; a poisoned lock still guards consistent state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends without blocking: to a waiting receiver, else into the queue if there is room.
    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let (res, wake) = {
            let mut g = self.lock();
            self.send_locked(&mut g, v)
        };
        unpark(wake);
        res
    }

    fn send_locked(&self, g: &mut Inner<T>, v: T) -> (Result<(), TrySendError<T>>, Wake) {
        if g.receivers == 0 {
            return (Err(TrySendError::Disconnected(v)), None);
        }
        let mut v = Some(v);
        while let Some(e) = g.recvq.pop_front() {
            if let Some(((), task)) = e.complete(|slot| *slot = v.take()) {
                log::trace!("chan: send handed a value to waiting task {}", task.id);
                return (Ok(()), Some(task));
            }
        }
        let v = v.expect("value still ours: no receiver took it");
        if self.cap.map_or(true, |c| g.queue.len() < c) {
            g.queue.push_back(v);
            (Ok(()), None)
        } else {
            (Err(TrySendError::Full(v)), None)
        }
    }

    /// Receives without blocking: from the queue (refilling it from a waiting sender), or
    /// straight from a waiting sender when nothing is queued (`bounded(0)`).
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let (res, wake) = {
            let mut g = self.lock();
            Self::recv_locked(&mut g)
        };
        unpark(wake);
        res
    }

    fn recv_locked(g: &mut Inner<T>) -> (Result<T, TryRecvError>, Wake) {
        if let Some(v) = g.queue.pop_front() {
            // A place just opened: move the oldest live sender's value into it.
            while let Some(e) = g.sendq.pop_front() {
                if let Some((sent, task)) = e.complete(Option::take) {
                    g.queue
                        .push_back(sent.expect("a waiting sender's slot holds its value"));
                    return (Ok(v), Some(task));
                }
            }
            return (Ok(v), None);
        }
        while let Some(e) = g.sendq.pop_front() {
            if let Some((sent, task)) = e.complete(Option::take) {
                log::trace!("chan: recv took a value from waiting task {}", task.id);
                return (
                    Ok(sent.expect("a waiting sender's slot holds its value")),
                    Some(task),
                );
            }
        }
        if g.senders == 0 {
            (Err(TryRecvError::Disconnected), None)
        } else {
            (Err(TryRecvError::Empty), None)
        }
    }

    /// Queues `entry` as a blocked receiver, unless a receive could proceed now (a value,
    /// a live sender other than the entry's own select, or disconnection): then it returns
    /// false and queues nothing, and the caller retries.
    pub(crate) fn register_recv(&self, entry: &Arc<Entry<T>>) -> bool {
        let mut g = self.lock();
        let ready = !g.queue.is_empty() || g.senders == 0 || has_live_peer(&g.sendq, &entry.signal);
        if !ready {
            g.recvq.push_back(entry.clone());
        }
        !ready
    }

    /// Queues `entry` (whose slot holds the value) as a blocked sender, unless a send could
    /// proceed now; see [`register_recv`](Chan::register_recv).
    pub(crate) fn register_send(&self, entry: &Arc<Entry<T>>) -> bool {
        let mut g = self.lock();
        let ready = g.receivers == 0
            || self.cap.map_or(true, |c| g.queue.len() < c)
            || has_live_peer(&g.recvq, &entry.signal);
        if !ready {
            g.sendq.push_back(entry.clone());
        }
        !ready
    }

    /// Removes `entry` from both waiter lists (the owner's clean-up after waking).
    pub(crate) fn unregister(&self, entry: &Arc<Entry<T>>) {
        let mut g = self.lock();
        g.recvq.retain(|e| !Arc::ptr_eq(e, entry));
        g.sendq.retain(|e| !Arc::ptr_eq(e, entry));
    }

    pub(crate) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    pub(crate) fn add_receiver(&self) {
        self.lock().receivers += 1;
    }

    /// The last sender is gone: wake every blocked receiver with an empty slot.
    pub(crate) fn drop_sender(&self) {
        let waiters = {
            let mut g = self.lock();
            g.senders -= 1;
            if g.senders > 0 {
                return;
            }
            log::trace!(
                "chan: last sender dropped, waking {} receiver(s)",
                g.recvq.len()
            );
            std::mem::take(&mut g.recvq)
        };
        wake_all(waiters);
    }

    /// The last receiver is gone: wake every blocked sender (its value stays in its slot and
    /// goes back to it) and drop what is queued — nobody can receive it any more.
    pub(crate) fn drop_receiver(&self) {
        let (waiters, queued) = {
            let mut g = self.lock();
            g.receivers -= 1;
            if g.receivers > 0 {
                return;
            }
            log::trace!(
                "chan: last receiver dropped, waking {} sender(s)",
                g.sendq.len()
            );
            (std::mem::take(&mut g.sendq), std::mem::take(&mut g.queue))
        };
        wake_all(waiters);
        drop(queued);
    }
}

/// Is some entry of `q` still waiting, other than one of `me`'s own arms? (A select with a
/// send and a receive arm on one rendezvous channel must not meet itself, as in Go.)
fn has_live_peer<T>(q: &VecDeque<Arc<Entry<T>>>, me: &Signal) -> bool {
    q.iter()
        .any(|e| e.signal.is_waiting() && !e.signal.same(me))
}

/// Completes every entry that is still live without touching its slot, then unparks the
/// owners. Runs after the channel lock is released; the entries are already off the list.
fn wake_all<T>(entries: VecDeque<Arc<Entry<T>>>) {
    for e in entries {
        if let Some(((), task)) = e.complete(|_| ()) {
            task.unpark();
        }
    }
}

fn unpark(wake: Wake) {
    if let Some(t) = wake {
        t.unpark();
    }
}
