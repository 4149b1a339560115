//! The sending half: `send`, its non-blocking and timed forms, and handle counting.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::{unpark, Chan, Queued, NOBODY};
use super::error::{SendError, SendTimeoutError, TrySendError};
use super::waiter::{Outcome, Signal, Waiter};
use crate::runtime::task::Wait;

/// The sending half of a channel. Clone it for more producers; when the last clone is
/// dropped, receivers get the queued values and then [`RecvError`](super::RecvError).
///
/// ```
/// let (s, r) = coronet::chan::bounded(4);
/// let s2 = s.clone();
/// coronet::go(move || s2.send(1).unwrap());
/// s.send(2).unwrap();
/// drop(s);
/// let mut got: Vec<i32> = r.iter().collect();
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// ```
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, waiting while the channel is full (for `bounded(0)`: until a receiver
    /// takes it). Parks only the calling coroutine; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// Every receiver is gone: the value comes back in the [`SendError`].
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(0);
    /// let h = coronet::go(move || r.recv().unwrap());
    /// s.send("hi").unwrap(); // returns once the coroutine has taken it
    /// assert_eq!(h.join().unwrap(), "hi");
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.send_until(v, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v` if that is possible right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full (for `bounded(0)`: no receiver waits),
    /// [`TrySendError::Disconnected`] if every receiver is gone; either way `v` comes back.
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(1);
    /// assert!(s.try_send(1).is_ok());
    /// assert!(s.try_send(2).unwrap_err().is_full());
    /// drop(r);
    /// assert!(s.try_send(3).unwrap_err().is_disconnected());
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v)
    }

    /// Sends `v`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] when time runs out, [`SendTimeoutError::Disconnected`]
    /// if every receiver is gone; either way `v` comes back.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (s, _r) = coronet::chan::bounded(1);
    /// s.send(1).unwrap();
    /// let err = s.send_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Instant::now().checked_add(timeout))
    }

    /// Sends `v`, waiting for room until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Sender::send_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (s, r) = coronet::chan::bounded(0);
    /// coronet::go(move || r.recv());
    /// s.send_deadline(1, Instant::now() + Duration::from_secs(10)).unwrap();
    /// ```
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Some(deadline))
    }

    /// The blocking path, under one lock: hand off to a waiting receiver, or queue the value,
    /// or link a waiter (on this stack, holding the value) and park until a receiver takes it,
    /// the receivers all leave, or the deadline passes.
    fn send_until(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let chan = &*self.chan;
        let mut g = chan.lock();
        let v = match chan.send_locked(&mut g, v, NOBODY) {
            (Ok(()), wake) => {
                drop(g);
                unpark(wake);
                return Ok(());
            }
            (Err(TrySendError::Disconnected(v)), _) => {
                return Err(SendTimeoutError::Disconnected(v))
            }
            (Err(TrySendError::Full(v)), _) => v,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendTimeoutError::Timeout(v));
        }
        let sig = Signal::new();
        let w = Waiter::new(Some(v));
        // SAFETY: `sig` and `w` live in this frame and are not moved; `queued` (dropped
        // before them) or the completing receiver takes `w` out of the queue first.
        unsafe { Chan::link_send(&mut g, &w, &sig, 0) };
        drop(g);
        // SAFETY: linked just above into this channel's senders' queue.
        let queued = unsafe { Queued::new(chan, &w, true) };
        match sig.wait(deadline, Wait::ChanSend) {
            Outcome::Selected(_) => {
                queued.completed();
                // SAFETY: completed: the receiver unlinked `w` and is done with its slot.
                match unsafe { w.take() } {
                    None => Ok(()),
                    Some(x) => Err(SendTimeoutError::Disconnected(x)),
                }
            }
            Outcome::Aborted => {
                drop(queued); // unlinks `w` under the lock
                              // SAFETY: aborted and unlinked: no receiver can reach the slot any more.
                let x = unsafe { w.take() };
                Err(SendTimeoutError::Timeout(
                    x.expect("an aborted send keeps its value"),
                ))
            }
        }
    }

    /// Values queued now (always 0 for `bounded(0)`).
    ///
    /// ```
    /// let (s, _r) = coronet::chan::unbounded();
    /// s.send(()).unwrap();
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if nothing is queued.
    ///
    /// ```
    /// let (s, _r) = coronet::chan::unbounded::<()>();
    /// assert!(s.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a send would wait now for lack of room (always for `bounded(0)`).
    ///
    /// ```
    /// let (s, _r) = coronet::chan::bounded(1);
    /// s.send(()).unwrap();
    /// assert!(s.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|c| self.len() >= c)
    }

    /// The capacity: `Some(n)` for `bounded(n)`, `None` for `unbounded()`.
    ///
    /// ```
    /// assert_eq!(coronet::chan::bounded::<()>(3).0.capacity(), Some(3));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// True if both senders feed the same channel.
    ///
    /// ```
    /// let (s, _r) = coronet::chan::unbounded::<()>();
    /// assert!(s.same_channel(&s.clone()));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}
