//! Time: `sleep` and `sleep_until`, on the running worker's timer heap.
//!
//! A coroutine that sleeps arms a timer on its own worker (`timers.rs`, a 4-ary heap) and
//! parks; the worker fires due timers between coroutines and turns the nearest deadline
//! into its `epoll_wait` timeout, so an idle worker sleeps exactly until then. On a plain
//! thread these block the thread, as `std::thread::sleep` does.

pub(crate) mod timers;

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
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    // Wake-ups may be spurious (a stray unpark): loop until the deadline really passed.
    while Instant::now() < deadline {
        park::park_until(Some(deadline), Wait::Sleep);
    }
}
