//! The receiving half: `recv`, its non-blocking and timed forms, and the iterators.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Chan;
use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use super::waiter::{Entry, Outcome, Signal};
use crate::runtime::task::Wait;

/// The receiving half of a channel. Clone it for more consumers (each value goes to one of
/// them); when the last clone is dropped, sends fail and hand their values back.
///
/// ```
/// let (s, r) = coronet::chan::unbounded();
/// let r2 = r.clone();
/// s.send(1).unwrap();
/// s.send(2).unwrap();
/// assert_eq!(r.recv(), Ok(1));
/// assert_eq!(r2.recv(), Ok(2));
/// ```
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next value, waiting until one arrives. Parks only the calling
    /// coroutine; on a plain thread it blocks the thread.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender is gone.
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(0);
    /// coronet::go(move || s.send(7).unwrap());
    /// assert_eq!(r.recv(), Ok(7));
    /// assert!(r.recv().is_err()); // the sender finished and was dropped
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is ready now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is ready, [`TryRecvError::Disconnected`] if
    /// nothing ever will be.
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded();
    /// assert!(r.try_recv().unwrap_err().is_empty());
    /// s.send(1).unwrap();
    /// assert_eq!(r.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when time runs out, [`RecvTimeoutError::Disconnected`]
    /// once the channel is empty and every sender is gone.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_s, r) = coronet::chan::unbounded::<()>();
    /// assert!(r.recv_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Receives a value, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Receiver::recv_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (s, r) = coronet::chan::unbounded();
    /// coronet::go(move || s.send(1));
    /// assert_eq!(r.recv_deadline(Instant::now() + Duration::from_secs(10)), Ok(1));
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    /// The blocking loop: try, register, park, then read the slot (see `waiter.rs`).
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        loop {
            match self.chan.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let sig = Signal::new();
            let entry = Entry::new(&sig, 0, None);
            if !self.chan.register_recv(&entry) {
                continue; // a value (or the disconnect) arrived since the try
            }
            return match sig.wait(deadline, Wait::ChanRecv) {
                // an empty slot: the last sender left while we waited
                Outcome::Selected(_) => entry.take().ok_or(RecvTimeoutError::Disconnected),
                Outcome::Aborted => {
                    self.chan.unregister(&entry);
                    Err(RecvTimeoutError::Timeout)
                }
            };
        }
    }

    /// A blocking iterator: yields values until the channel is empty and disconnected.
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded();
    /// coronet::go(move || (1..=3).for_each(|i| s.send(i).unwrap()));
    /// assert_eq!(r.iter().sum::<i32>(), 6);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { r: self }
    }

    /// A non-blocking iterator: yields the values ready now.
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded();
    /// s.send(1).unwrap();
    /// s.send(2).unwrap();
    /// assert_eq!(r.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { r: self }
    }

    /// Values queued now (always 0 for `bounded(0)`).
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(2);
    /// s.send(1).unwrap();
    /// assert_eq!(r.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if nothing is queued.
    ///
    /// ```
    /// let (_s, r) = coronet::chan::bounded::<()>(2);
    /// assert!(r.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the queue is at capacity (always for `bounded(0)`).
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(1);
    /// s.send(()).unwrap();
    /// assert!(r.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|c| self.len() >= c)
    }

    /// The capacity: `Some(n)` for `bounded(n)`, `None` for `unbounded()`.
    ///
    /// ```
    /// assert_eq!(coronet::chan::unbounded::<()>().1.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// True if both receivers drain the same channel.
    ///
    /// ```
    /// let (_s, r) = coronet::chan::unbounded::<()>();
    /// assert!(r.same_channel(&r.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// A blocking iterator over received values; see [`Receiver::iter`].
///
/// ```
/// let (s, r) = coronet::chan::unbounded();
/// coronet::go(move || {
///     for word in ["a", "b", "c"] {
///         s.send(word).unwrap();
///     }
/// }); // the sender drops here, which ends the loop below
/// let mut got = String::new();
/// for word in r.iter() {
///     got.push_str(word);
/// }
/// assert_eq!(got, "abc");
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    r: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.r.recv().ok()
    }
}

/// A non-blocking iterator over the values ready now; see [`Receiver::try_iter`].
///
/// ```
/// let (s, r) = coronet::chan::unbounded();
/// s.send(1).unwrap();
/// s.send(2).unwrap();
/// // Drain what is queued now, without waiting for more (the sender is still alive).
/// assert_eq!(r.try_iter().collect::<Vec<_>>(), [1, 2]);
/// assert_eq!(r.try_iter().next(), None);
/// # drop(s);
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    r: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.r.try_recv().ok()
    }
}

/// A blocking iterator that owns its receiver; see [`Receiver`]'s `IntoIterator`.
///
/// ```
/// let (s, r) = coronet::chan::bounded(4);
/// // The consumer owns the receiver: `for x in r` runs until every sender is gone.
/// let consumer = coronet::go(move || r.into_iter().map(|x: u64| x * 2).sum::<u64>());
/// for x in 1..=4 {
///     s.send(x).unwrap();
/// }
/// drop(s);
/// assert_eq!(consumer.join().unwrap(), 20);
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    r: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.r.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { r: self }
    }
}
