//! One-shot timers as channels: [`after`] and [`Timer`] (Go's `time.After`, `time.NewTimer`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::callback::{self, TimerHandle};
use crate::chan::{self, Receiver, Sender};

/// A channel that receives the current time once `dur` has passed — Go's `time.After`.
///
/// It works in [`select!`](crate::select) like any receiver. The channel holds one value and
/// never disconnects (after the value is taken, later receives wait forever, as on Go's
/// channel), and nothing is spawned: the timer is an entry in the caller's worker's heap (a
/// plain thread's goes to a shared timer thread).
///
/// Dropping the receiver does not disarm the timer: the entry stays armed until `dur` ends
/// and then fires into a channel nobody reads. For a long timeout created per request, a
/// [`Timer`] is removed when dropped.
///
/// ```
/// use std::time::Duration;
/// let (_s, r) = coronet::chan::unbounded::<u32>();
/// let got = coronet::select! {
///     recv(r) -> msg => format!("got {msg:?}"),
///     recv(coronet::time::after(Duration::from_millis(20))) -> _ => "timed out".to_string(),
/// };
/// assert_eq!(got, "timed out");
/// ```
pub fn after(dur: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    keep_open(&tx);
    // Longer than the clock can express: it never fires.
    if let Some(when) = Instant::now().checked_add(dur) {
        callback::schedule(when, move || {
            let _ = tx.try_send(Instant::now()); // fails only if every receiver is gone
        });
    }
    rx
}

/// Timer channels never disconnect, as Go's never close: a sender counted without a handle
/// keeps them open after the timer's own sender is dropped (the trick of `chan::never`).
pub(super) fn keep_open<T>(tx: &Sender<T>) {
    tx.chan.add_sender();
}

/// `Timer::state` values; only the first move out of `ARMED` counts.
const ARMED: u8 = 0;
const FIRED: u8 = 1;
const STOPPED: u8 = 2;

/// A one-shot timer that can be stopped — Go's `time.NewTimer`.
///
/// Its [`receiver`](Timer::receiver) gets the current time once the duration has passed,
/// unless [`stop`](Timer::stop) came first. Dropping the timer stops it; on the thread that
/// created it (a coroutine always is) that also frees its heap entry at once, which makes a
/// `Timer` the right tool for a long timeout created per request.
///
/// ```
/// use std::time::Duration;
/// let t = coronet::time::Timer::new(Duration::from_millis(10));
/// assert!(t.receiver().recv().is_ok());
/// assert!(!t.stop(), "already fired");
///
/// let t = coronet::time::Timer::new(Duration::from_secs(3600));
/// assert!(t.stop(), "stopped before it fired");
/// ```
#[derive(Debug)]
pub struct Timer {
    rx: Receiver<Instant>,
    /// ARMED → FIRED (the callback) or ARMED → STOPPED (`stop`); shared with the callback so
    /// a stop from any thread wins or loses cleanly even when the heap entry stays behind.
    state: Arc<AtomicU8>,
    /// None when the duration is too long for the clock (the timer never fires).
    handle: Option<TimerHandle>,
}

impl Timer {
    /// Starts a timer that fires once `dur` has passed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let t = coronet::time::Timer::new(Duration::from_millis(10));
    /// let fired_at = t.receiver().recv().unwrap();
    /// assert!(fired_at >= start + Duration::from_millis(10));
    /// ```
    pub fn new(dur: Duration) -> Timer {
        let (tx, rx) = chan::bounded(1);
        keep_open(&tx);
        let state = Arc::new(AtomicU8::new(ARMED));
        let theirs = state.clone();
        let handle = Instant::now().checked_add(dur).map(|when| {
            callback::schedule(when, move || {
                if theirs
                    .compare_exchange(ARMED, FIRED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let _ = tx.try_send(Instant::now()); // fails only if the Timer is gone
                }
            })
        });
        Timer { rx, state, handle }
    }

    /// The channel the time arrives on (Go's `t.C`); use it in [`select!`](crate::select).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = coronet::time::Timer::new(Duration::from_millis(5));
    /// coronet::select! {
    ///     recv(t.receiver()) -> at => assert!(at.is_ok()),
    /// }
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer; true if this call stopped it before it fired. Callable from any
    /// thread, any number of times.
    ///
    /// ```
    /// let t = coronet::time::Timer::new(std::time::Duration::from_secs(60));
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// ```
    pub fn stop(&self) -> bool {
        let stopped = self
            .state
            .compare_exchange(ARMED, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if stopped {
            if let Some(h) = &self.handle {
                // Frees the heap entry when we are on its thread; elsewhere it fires later
                // and finds the state STOPPED.
                h.cancel();
            }
        }
        stopped
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop();
    }
}
