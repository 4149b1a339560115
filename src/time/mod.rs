//! Time: sleeping, timer channels, tickers and time limits.
//!
//! - [`sleep`] and [`sleep_until`] park the coroutine (a plain thread blocks).
//! - [`after`] and [`Timer`] deliver the time once on a channel; [`tick`] and [`Ticker`]
//!   deliver it periodically. They are [`chan::Receiver`](crate::chan::Receiver)s, so they
//!   work in [`select!`](crate::select).
//! - [`Timer`] and [`Ticker`] can be stopped and reset, from any thread or coroutine, with
//!   Go 1.23's semantics: once `stop` or `reset` returns, no receive gets a value from before
//!   the call — a value waiting unreceived in the channel is taken back, and one being sent
//!   at that moment is discarded — so Go's old "stop, then drain the channel" idiom is not
//!   needed. [`Timer::stop`] and [`Timer::reset`] report whether the timer was pending
//!   (armed, or fired with its value not yet received).
//! - [`timeout`] runs a function on a coroutine and waits for it up to a limit.
//!
//! ```
//! use coronet::time::{after, sleep};
//! use std::time::Duration;
//!
//! let (tx, rx) = coronet::chan::bounded(1);
//! coronet::go(move || {
//!     sleep(Duration::from_millis(10)); // parks this coroutine only
//!     tx.send("reply").unwrap();
//! });
//! // Wait for the reply, but not forever.
//! let got = coronet::select! {
//!     recv(rx) -> msg => msg.unwrap(),
//!     recv(after(Duration::from_secs(30))) -> _ => "timed out",
//! };
//! assert_eq!(got, "reply");
//! ```
//!
//! # How timers work
//!
//! Each worker owns a timer heap (`timers.rs`, 4-ary): a sleeping coroutine arms an entry
//! that unparks it, a timer channel arms a callback that sends the time (`callback.rs`). The
//! worker fires due entries between coroutines and turns the nearest deadline into its
//! `epoll_wait` timeout, so an idle worker sleeps exactly until then. Timer channels made on
//! plain threads use one shared timer thread instead. No timer spawns a coroutine, so one per
//! request is cheap: creating and dropping an `after` or a `Timer` costs a few hundred
//! nanoseconds (a channel, a boxed callback, a heap entry), and dropping either disarms it,
//! so a `select!` loop with a fresh `after` arm on every turn holds one timer at a time.
//!
//! Timers never fire early: the time received is at or after the requested instant.
//!
//! A `Timer` or `Ticker` carries its next due time and one live heap entry. An entry sends
//! only if it is the live one and the due time has come; the check and the send run under a
//! small per-timer lock, which stop and reset also hold while they change the due time and
//! drain the channel (Go 1.23's runtime does the same). A reset to a later time keeps the
//! live entry, which follows the new time when it comes due; a cancel from another worker is
//! queued for the owning worker, which frees the entry at its next timer pass (until then
//! the entry may still fire, as a no-op).
//!
//! # Files
//!
//! - `timers.rs`: the heap (plain data, owned by one thread).
//! - `callback.rs`: callback timers on the worker heaps and the shared timer thread.
//! - `after.rs`: `after`, `Timer`, and `ChanTimer` (the stoppable, resettable timer channel
//!   under `Timer`, `Ticker` and `tick`); `tick.rs`: `tick` and `Ticker`.
//! - `timeout.rs`: `timeout` and `Elapsed`.

mod after;
pub(crate) mod callback;
mod tick;
mod timeout;
pub(crate) mod timers;

pub use self::after::{after, Timer};
pub use self::tick::{tick, Ticker};
pub use self::timeout::{timeout, Elapsed};

use std::time::{Duration, Instant};

use crate::runtime::park;
use crate::runtime::task::Wait;
use crate::runtime::worker;

/// Puts the current coroutine to sleep for at least `dur`; other coroutines run meanwhile.
/// On a plain thread it blocks the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// let slept = coronet::run(|| {
///     let t = Instant::now();
///     coronet::time::sleep(Duration::from_millis(20));
///     t.elapsed()
/// });
/// assert!(slept >= Duration::from_millis(20));
/// ```
pub fn sleep(dur: Duration) {
    match Instant::now().checked_add(dur) {
        Some(deadline) => sleep_until(deadline),
        // Longer than the clock can express: sleep "forever", in coroutine-sized steps.
        None => loop {
            sleep(Duration::from_secs(86_400 * 365));
        },
    }
}

/// Puts the current coroutine to sleep until `deadline` (returns at once if it passed).
///
/// ```
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(10);
/// coronet::go(move || coronet::time::sleep_until(deadline)).join().unwrap();
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    if !worker::in_coroutine() {
        sleep_thread_until(deadline);
        return;
    }
    // Wake-ups may be spurious (a stray unpark): loop until the deadline really passed.
    while Instant::now() < deadline {
        park::park_until(Some(deadline), Wait::Sleep);
    }
}

/// A plain thread's sleep to an absolute deadline: `clock_nanosleep` on `CLOCK_MONOTONIC`
/// (`Instant`'s clock) with `TIMER_ABSTIME`, again after each signal. std's `sleep` is
/// relative: after a signal it sleeps the remainder the kernel reports, which runs to the
/// timer's expiry plus its slack (50 µs), so signals coming faster than that kept it from
/// ever finishing (found by an audit: five 2 ms sleeps under a tight `pthread_kill` storm
/// ran past 15 s; a coroutine's sleep, on the worker's absolute timers, took 10 ms).
fn sleep_thread_until(deadline: Instant) {
    let now = Instant::now();
    let Some(left) = deadline.checked_duration_since(now) else {
        return;
    };
    #[cfg(not(miri))]
    {
        // SAFETY: all-zero is a valid `timespec`.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `ts` is valid to write.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0 {
            let nanos = ts.tv_nsec as u64 + u64::from(left.subsec_nanos());
            let secs = (ts.tv_sec as u64)
                .saturating_add(left.as_secs())
                .saturating_add(nanos / 1_000_000_000);
            let until = libc::timespec {
                tv_sec: secs.min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: (nanos % 1_000_000_000) as _,
            };
            loop {
                // SAFETY: `until` is a valid timespec; no remainder is asked for.
                let rc = unsafe {
                    libc::clock_nanosleep(
                        libc::CLOCK_MONOTONIC,
                        libc::TIMER_ABSTIME,
                        &until,
                        std::ptr::null_mut(),
                    )
                };
                match rc {
                    0 => return,
                    libc::EINTR => continue,
                    _ => break, // cannot happen with these arguments; std's sleep below
                }
            }
        }
    }
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
}
