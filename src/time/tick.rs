//! Periodic timers as channels: [`tick`] and [`Ticker`] (Go's `time.Tick`, `time.NewTicker`).
//!
//! A tick is a callback timer that sends the time and re-arms itself on its own worker. The
//! channel holds one tick: a receiver that falls behind finds one waiting and the rest
//! dropped, and ticks stay on the grid `start + k·period` (Go's ticker does the same), so a
//! slow receiver never gets a burst of stale ticks.
//!
//! Both run on `after.rs`'s `ChanTimer`, which `Timer` shares: a `Ticker`'s stop and reset
//! discard a tick being sent and drain one waiting, as Go 1.23's do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::after::ChanTimer;
use crate::chan::Receiver;

/// A channel that receives the time every `period` — Go's `time.Tick`.
///
/// Ticking stops once every clone of the receiver is dropped, and the timer and channel are
/// freed then (from another worker, at that worker's next timer pass), so a `select!` loop
/// may take a fresh `tick` arm on every turn. Use a [`Ticker`] to stop it explicitly.
///
/// # Panics
///
/// If `period` is zero (a timer that is always due would keep a worker from sleeping).
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let ticks = coronet::time::tick(Duration::from_millis(5));
/// let first = ticks.recv().unwrap();
/// let second = ticks.recv().unwrap();
/// // ticks keep to the grid start + k·period, never early
/// assert!(first >= start + Duration::from_millis(5));
/// assert!(second >= start + Duration::from_millis(10));
/// ```
pub fn tick(period: Duration) -> Receiver<Instant> {
    check_period(period, "a ticker's period must be greater than zero");
    let (timer, rx) = ChanTimer::new();
    timer.reset(&rx, period, Some(period));
    // Found by an audit: a fresh `tick(60 s)` arm per turn of a `select!` loop kept every
    // dropped ticker, with its channel, until its next tick (120 MB over 300,000 turns),
    // as `after` did before it stopped on its last receiver's drop. Weak: the channel
    // holds the hook and the timer holds the channel's sender, and the ticker lives in its
    // heap entry anyway.
    let weak = Arc::downgrade(&timer);
    rx.chan.on_no_receivers(Box::new(move || {
        if let Some(timer) = weak.upgrade() {
            timer.stop_unread();
        }
    }));
    rx
}

/// A periodic timer that can be stopped and reset — Go's `time.NewTicker`, with Go 1.23's
/// semantics.
///
/// As in Go 1.23, [`stop`](Ticker::stop) and [`reset`](Ticker::reset) also take back a tick
/// that is waiting in the channel: once either returns, no receive gets a tick from before
/// it. Dropping the ticker stops it too. Its ticks are entries in the heap of the thread
/// that created it or last moved its next tick earlier (a coroutine's worker, or the shared
/// timer thread for a plain thread; a reset to a later time keeps the entry where it is);
/// a stop from that thread, or for the shared heap from anywhere, frees the
/// pending entry at once; from another worker the cancel is queued there, and that worker
/// frees the entry at its next timer pass (if the entry comes due first, it finds itself
/// stopped and does nothing). Its channel never disconnects, as Go's never closes.
///
/// ```
/// use std::time::Duration;
/// let ticker = coronet::time::Ticker::new(Duration::from_millis(5));
/// let ticks: Vec<_> = ticker.receiver().iter().take(3).collect();
/// ticker.stop();
/// assert!(ticks[0] < ticks[1] && ticks[1] < ticks[2]); // one per period, in order
/// ```
#[derive(Debug)]
pub struct Ticker {
    rx: Receiver<Instant>,
    timer: Arc<ChanTimer>,
}

impl Ticker {
    /// Starts ticking every `period`; the first tick comes one period from now.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// ```
    /// use coronet::time::Ticker;
    /// use std::time::{Duration, Instant};
    ///
    /// let start = Instant::now();
    /// let ticker = Ticker::new(Duration::from_millis(5));
    /// let mut last = start;
    /// for _ in 0..3 {
    ///     last = ticker.receiver().recv().unwrap(); // the time of the tick
    /// }
    /// ticker.stop();
    /// assert!(last >= start + Duration::from_millis(15)); // never early
    /// ```
    pub fn new(period: Duration) -> Ticker {
        check_period(period, "a ticker's period must be greater than zero");
        let (timer, rx) = ChanTimer::new();
        timer.reset(&rx, period, Some(period));
        Ticker { rx, timer }
    }

    /// The channel the ticks arrive on (Go's `t.C`); use it in [`select!`](crate::select).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ticker = coronet::time::Ticker::new(Duration::from_millis(5));
    /// let (_s, r) = coronet::chan::unbounded::<()>();
    /// coronet::select! {
    ///     recv(r) -> _ => unreachable!(),
    ///     recv(ticker.receiver()) -> t => assert!(t.is_ok()),
    /// }
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticks — Go 1.23's `Ticker.Stop`. A tick waiting in the channel is taken
    /// back, and one being sent at this very moment is discarded: once this returns, no
    /// receive gets a tick until a [`reset`](Ticker::reset). Callable from any thread or
    /// coroutine, any number of times.
    ///
    /// ```
    /// use coronet::time::{sleep, Ticker};
    /// use std::time::Duration;
    ///
    /// let ticker = Ticker::new(Duration::from_millis(1));
    /// while ticker.receiver().is_empty() {
    ///     sleep(Duration::from_millis(1)); // a tick arrives, nobody takes it
    /// }
    /// ticker.stop();
    /// assert!(ticker.receiver().try_recv().is_err(), "the waiting tick is gone");
    /// assert!(ticker.receiver().recv_timeout(Duration::from_millis(20)).is_err());
    /// ```
    pub fn stop(&self) {
        self.timer.stop(&self.rx);
    }

    /// Stops the ticker and starts it again with a new `period`: the next tick comes one
    /// `period` from now — Go 1.23's `Ticker.Reset`. As with [`stop`](Ticker::stop), no
    /// receive gets a tick from before the call once it returns. Works on a stopped ticker
    /// too. Callable from any thread or coroutine.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// ```
    /// use coronet::time::Ticker;
    /// use std::time::{Duration, Instant};
    ///
    /// let ticker = Ticker::new(Duration::from_secs(3600));
    /// let reset_at = Instant::now();
    /// ticker.reset(Duration::from_millis(5));
    /// let first = ticker.receiver().recv().unwrap();
    /// let second = ticker.receiver().recv().unwrap();
    /// assert!(first >= reset_at + Duration::from_millis(5));
    /// assert!(second >= reset_at + Duration::from_millis(10));
    /// ```
    pub fn reset(&self, period: Duration) {
        check_period(
            period,
            "Ticker::reset: a ticker's period must be greater than zero",
        );
        self.timer.reset(&self.rx, period, Some(period));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A zero period is refused: a timer that is always due would keep a worker from sleeping.
#[track_caller]
fn check_period(period: Duration, what: &str) {
    assert!(!period.is_zero(), "coronet::time: {what}");
}

/// Pure policy: the first instant on the grid `when + k·period` (k ≥ 1) that is after `now`,
/// so ticks missed while a worker was busy are skipped rather than fired in a burst. None
/// when the clock cannot express it.
pub(super) fn next_tick(when: Instant, period: Duration, now: Instant) -> Option<Instant> {
    let behind = now.saturating_duration_since(when).as_nanos();
    let steps = behind / period.as_nanos() + 1;
    let ahead = period.as_nanos().checked_mul(steps)?;
    when.checked_add(Duration::from_nanos(u64::try_from(ahead).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_stays_on_the_grid_and_skips_missed_ticks() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_tick(t0, ms(10), t0), Some(t0 + ms(10)));
        assert_eq!(next_tick(t0, ms(10), t0 + ms(3)), Some(t0 + ms(10)));
        assert_eq!(next_tick(t0, ms(10), t0 + ms(10)), Some(t0 + ms(20)));
        assert_eq!(next_tick(t0, ms(10), t0 + ms(47)), Some(t0 + ms(50)));
        assert_eq!(next_tick(t0, Duration::MAX, t0), None);
    }
}
