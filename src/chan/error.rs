//! Channel errors: typed, and every failed send hands its value back.
//!
//! The wording matches crossbeam-channel's, so code moving between the two reads the same.

use std::error::Error;
use std::fmt;

/// A [`send`](super::Sender::send) failed because every receiver is gone; the value is
/// returned inside.
///
/// ```
/// let (s, r) = coronet::chan::unbounded();
/// drop(r);
/// let err = s.send("lost").unwrap_err();
/// assert_eq!(err.to_string(), "sending on a disconnected channel");
/// assert_eq!(err.into_inner(), "lost");
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// A [`try_send`](super::Sender::try_send) could not send at once.
///
/// ```
/// use coronet::chan::TrySendError;
/// let (s, _r) = coronet::chan::bounded(1);
/// s.try_send(1).unwrap();
/// assert_eq!(s.try_send(2), Err(TrySendError::Full(2)));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (for `bounded(0)`: no receiver is waiting); the value returns.
    Full(T),
    /// Every receiver is gone; the value returns.
    Disconnected(T),
}

/// A [`send_timeout`](super::Sender::send_timeout) could not send in time.
///
/// ```
/// use coronet::chan::SendTimeoutError;
/// use std::time::Duration;
/// let (s, _r) = coronet::chan::bounded(0);
/// let err = s.send_timeout(5, Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err, SendTimeoutError::Timeout(5));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The deadline passed with the channel still full; the value returns.
    Timeout(T),
    /// Every receiver is gone; the value returns.
    Disconnected(T),
}

/// A [`recv`](super::Receiver::recv) failed: the channel is empty and every sender is gone.
///
/// ```
/// let (s, r) = coronet::chan::unbounded::<u8>();
/// drop(s);
/// assert_eq!(r.recv(), Err(coronet::chan::RecvError));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// A [`try_recv`](super::Receiver::try_recv) found no value.
///
/// ```
/// use coronet::chan::TryRecvError;
/// let (s, r) = coronet::chan::unbounded::<u8>();
/// assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
/// drop(s);
/// assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing is queued, but senders remain.
    Empty,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

/// A [`recv_timeout`](super::Receiver::recv_timeout) or
/// [`recv_deadline`](super::Receiver::recv_deadline) got no value in time.
///
/// ```
/// use coronet::chan::RecvTimeoutError;
/// use std::time::Duration;
/// let (_s, r) = coronet::chan::unbounded::<u8>();
/// assert_eq!(r.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// The deadline passed with nothing to receive.
    Timeout,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded();
    /// drop(r);
    /// // Nobody will read the job: keep it for a retry elsewhere.
    /// let job = s.send(String::from("job 7")).unwrap_err().into_inner();
    /// assert_eq!(job, "job 7");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let (s, _r) = coronet::chan::bounded(1);
    /// s.try_send("first").unwrap();
    /// let back = s.try_send("second").unwrap_err().into_inner();
    /// assert_eq!(back, "second");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }

    /// True for [`TrySendError::Full`].
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(2);
    /// let mut dropped = 0;
    /// for event in 0..5 {
    ///     // Shed load instead of waiting when the consumer falls behind.
    ///     if let Err(e) = s.try_send(event) {
    ///         assert!(e.is_full());
    ///         dropped += 1;
    ///     }
    /// }
    /// assert_eq!((r.len(), dropped), (2, 3));
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True for [`TrySendError::Disconnected`].
    ///
    /// ```
    /// let (s, r) = coronet::chan::bounded(1);
    /// drop(r);
    /// assert!(s.try_send(1).unwrap_err().is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (s, _r) = coronet::chan::bounded(0); // nobody receives
    /// let err = s.send_timeout(vec![1, 2, 3], Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.into_inner(), [1, 2, 3]);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
        }
    }

    /// True for [`SendTimeoutError::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (s, _r) = coronet::chan::bounded(0);
    /// assert!(s.send_timeout(1, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// True for [`SendTimeoutError::Disconnected`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (s, r) = coronet::chan::bounded(0);
    /// drop(r);
    /// // A disconnect fails at once; it does not wait for the timeout.
    /// assert!(s.send_timeout(1, Duration::from_secs(10)).unwrap_err().is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }
}

impl TryRecvError {
    /// True for [`TryRecvError::Empty`].
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded::<u32>();
    /// assert!(r.try_recv().unwrap_err().is_empty());
    /// s.send(1).unwrap();
    /// assert_eq!(r.try_recv(), Ok(1));
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// True for [`TryRecvError::Disconnected`].
    ///
    /// ```
    /// let (s, r) = coronet::chan::unbounded();
    /// s.send(1).unwrap();
    /// drop(s);
    /// assert_eq!(r.try_recv(), Ok(1)); // what was queued still arrives
    /// assert!(r.try_recv().unwrap_err().is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

impl RecvTimeoutError {
    /// True for [`RecvTimeoutError::Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_s, r) = coronet::chan::unbounded::<u8>();
    /// assert!(r.recv_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// True for [`RecvTimeoutError::Disconnected`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (s, r) = coronet::chan::unbounded::<u8>();
    /// drop(s);
    /// // A disconnect fails at once; it does not wait for the timeout.
    /// assert!(r.recv_timeout(Duration::from_secs(10)).unwrap_err().is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }
}

// Debug never prints the value: T need not be Debug, and the value may be large.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("SendError { .. }")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.pad("Full(..)"),
            TrySendError::Disconnected(_) => f.pad("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.pad("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.pad("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("sending on a disconnected channel")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.pad("sending on a full channel"),
            TrySendError::Disconnected(_) => f.pad("sending on a disconnected channel"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.pad("timed out waiting on send operation"),
            SendTimeoutError::Disconnected(_) => f.pad("sending on a disconnected channel"),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("receiving on an empty and disconnected channel")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.pad("receiving on an empty channel"),
            TryRecvError::Disconnected => f.pad("receiving on an empty and disconnected channel"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.pad("timed out waiting on receive operation"),
            RecvTimeoutError::Disconnected => f.pad("channel is empty and disconnected"),
        }
    }
}

impl<T: Send> Error for SendError<T> {}
impl<T: Send> Error for TrySendError<T> {}
impl<T: Send> Error for SendTimeoutError<T> {}
impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Disconnected(e.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}
