//! [`timeout`]: run a function with a time limit.

use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::chan::{self, RecvTimeoutError};

/// The error of [`timeout`]: the function did not finish in time.
///
/// Converts into an `io::Error` of kind `TimedOut`.
///
/// ```
/// let e = coronet::time::Elapsed::default();
/// assert_eq!(e.to_string(), "deadline has elapsed");
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}

/// Runs `f` on a new coroutine and waits up to `dur` for its result.
///
/// Coroutines are not preemptible, so nothing can stop `f` from the outside: on
/// `Err(Elapsed)` it keeps running, detached, and its result is dropped when it ends. To make
/// `f` itself give up, hand it a [`Context`](crate::context::Context) with a deadline and
/// have it check `ctx.done()` — coronet's I/O does that for you through
/// [`Dialer::dial_context`](crate::net::Dialer::dial_context). Works from a coroutine (which
/// parks) and from a plain thread (which blocks).
///
/// # Errors
///
/// [`Elapsed`] if `f` has not returned after `dur`.
///
/// # Panics
///
/// A panic in `f` within the limit is resumed on the caller, as [`run`](crate::run) resumes
/// one: the payload unchanged, the panic hook run again there. Also panics if the coroutine
/// cannot start (no stack could be mapped; see [`go`](crate::go)).
///
/// ```
/// use std::time::Duration;
/// use coronet::time::{sleep, timeout};
///
/// assert_eq!(timeout(Duration::from_secs(10), || 6 * 7), Ok(42));
/// let slow = timeout(Duration::from_millis(10), || sleep(Duration::from_secs(1)));
/// assert!(slow.is_err());
/// ```
#[track_caller]
pub fn timeout<F, T>(dur: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = chan::bounded(1);
    crate::go(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let _ = tx.try_send(r); // fails only if the caller gave up: the result is dropped
    });
    match rx.recv_timeout(dur) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(payload)) => crate::runtime::resume_here(payload),
        Err(RecvTimeoutError::Timeout) => Err(Elapsed(())),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("coronet::time::timeout: the coroutine for `f` could not start (no stack)")
        }
    }
}
