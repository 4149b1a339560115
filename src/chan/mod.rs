//! Channels: Go's `chan` for coroutines and threads alike, with crossbeam-channel's API.
//!
//! ```
//! use coronet::chan;
//!
//! let (jobs, queue) = chan::bounded(16);
//! let (done, results) = chan::unbounded();
//! for _ in 0..4 {
//!     let (queue, done) = (queue.clone(), done.clone());
//!     coronet::go(move || {
//!         for n in queue {
//!             done.send(n * n).unwrap();
//!         }
//!     });
//! }
//! drop(done); // the workers hold the remaining senders
//! for n in 1..=10 {
//!     jobs.send(n).unwrap();
//! }
//! drop(jobs); // ends the workers' loops once the queue drains
//! assert_eq!(results.iter().sum::<i32>(), 385);
//! ```
//!
//! # The contract
//!
//! - [`bounded(n)`](bounded) holds up to `n` values; `bounded(0)` holds none, so a send
//!   completes only when a receiver takes the value (a rendezvous). [`unbounded()`]
//!   never makes a sender wait.
//! - Senders and receivers are `Clone` (many producers, many consumers); each value is
//!   received exactly once, and the values of one sender arrive in the order it sent them.
//! - Dropping every [`Sender`] is Go's `close`: receivers drain what is queued, then get
//!   [`RecvError`]. Dropping every [`Receiver`] fails later sends and hands each value back.
//! - A blocked operation parks its coroutine (never the worker thread); on a plain thread it
//!   blocks the thread. Both kinds can share a channel.
//! - [`select!`](crate::select) waits on several operations at once (see `select.rs`);
//!   [`never()`] is a receiver that is never ready, to switch an arm off (Go's nil channel).
//! - Errors are typed and hand an unsent value back: [`SendError`], [`TrySendError`],
//!   [`SendTimeoutError`]; receives fail with [`RecvError`], [`TryRecvError`],
//!   [`RecvTimeoutError`].
//!
//! # Files
//!
//! - `channel.rs`: the channel state (Go's `hchan`) and its invariants.
//! - `waiter.rs`: the record of a blocked operation (Go's `sudog`, kept on the blocked
//!   caller's stack), the intrusive queue of them, and the CAS that decides which operation
//!   of a select happens.
//! - `sender.rs`, `receiver.rs`: the handles and their blocking loops.
//! - `select.rs`: `select!` and the round it runs.
//! - `error.rs`: the error types.

mod channel;
mod error;
mod receiver;
mod select;
mod sender;
mod waiter;

// For time's channel timers, whose send step runs under a lock of their own.
pub(crate) use self::channel::{unpark, NOBODY};
use std::sync::Arc;

pub use self::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use self::receiver::{IntoIter, Iter, Receiver, TryIter};
pub use self::select::MAX_ARMS;
pub use self::sender::Sender;

/// Creates a channel that holds up to `cap` values; `bounded(0)` is a rendezvous channel.
///
/// ```
/// let (s, r) = coronet::chan::bounded(1);
/// s.send(1).unwrap();
/// assert!(s.try_send(2).is_err()); // full
/// assert_eq!(r.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    pair(channel::Chan::new(Some(cap)))
}

/// Creates a channel with no capacity limit: sends never wait.
///
/// ```
/// let (s, r) = coronet::chan::unbounded();
/// for i in 0..1000 {
///     s.send(i).unwrap();
/// }
/// assert_eq!(r.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(channel::Chan::new(None))
}

/// A receiver that never receives anything: useful as a `select!` arm that is switched
/// off, like a nil channel in Go.
///
/// ```
/// use std::time::Duration;
/// let r = coronet::chan::never::<u8>();
/// let got = coronet::select! {
///     recv(r) -> _ => "impossible",
///     default(Duration::from_millis(10)) => "timed out",
/// };
/// assert_eq!(got, "timed out");
/// ```
pub fn never<T>() -> Receiver<T> {
    let (s, r) = bounded(0);
    // A sender counted without a handle: the channel never disconnects, and nobody can
    // send on it. It is freed with the last receiver.
    s.chan.add_sender();
    drop(s);
    r
}

fn pair<T>(chan: channel::Chan<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(chan);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// What `select!` expands to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{run, Arm, Block, Poll, RecvArm, Round, SendArm};
}

#[allow(dead_code)]
fn _assert_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Sender<String>>();
    send_sync::<Receiver<String>>();
    send_sync::<SendError<String>>();
}
