//! Periodic timers as channels: [`tick`] and [`Ticker`] (Go's `time.Tick`, `time.NewTicker`).
//!
//! A tick is a callback timer that sends the time and re-arms itself on its own worker. The
//! channel holds one tick: a receiver that falls behind finds one waiting and the rest
//! dropped, and ticks stay on the grid `start + k·period` (Go's ticker does the same), so a
//! slow receiver never gets a burst of stale ticks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::after::keep_open;
use super::callback;
use crate::chan::{self, Receiver, Sender, TrySendError};

/// A channel that receives the time every `period` — Go's `time.Tick`.
///
/// Ticking stops by itself once every clone of the receiver is dropped (within one period).
/// Use a [`Ticker`] to stop it explicitly.
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
    start(period, Arc::new(AtomicBool::new(false)))
}

/// A periodic timer that can be stopped — Go's `time.NewTicker`.
///
/// Dropping it stops it too. A stopped ticker's heap entry is freed when its next tick comes
/// due (at most one period later); its channel never disconnects, as Go's never closes.
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
    stopped: Arc<AtomicBool>,
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
        let stopped = Arc::new(AtomicBool::new(false));
        Ticker {
            rx: start(period, stopped.clone()),
            stopped,
        }
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

    /// Stops the ticks. A tick already queued stays, and one being sent at this very moment
    /// may still arrive; none starts after this returns. Callable from any thread, any
    /// number of times.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ticker = coronet::time::Ticker::new(Duration::from_millis(1));
    /// ticker.stop();
    /// coronet::time::sleep(Duration::from_millis(10));
    /// let _ = ticker.receiver().try_iter().count(); // what came before the stop
    /// assert!(ticker.receiver().recv_timeout(Duration::from_millis(20)).is_err());
    /// ```
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start(period: Duration, stopped: Arc<AtomicBool>) -> Receiver<Instant> {
    assert!(
        !period.is_zero(),
        "coronet::time: a ticker's period must be greater than zero"
    );
    let (tx, rx) = chan::bounded(1);
    keep_open(&tx);
    if let Some(first) = Instant::now().checked_add(period) {
        arm(first, period, tx, stopped);
    }
    rx
}

fn arm(when: Instant, period: Duration, tx: Sender<Instant>, stopped: Arc<AtomicBool>) {
    callback::schedule(when, move || {
        // A tick that passed this check just before a `stop` may still land (see `stop`).
        if stopped.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        match tx.try_send(now) {
            // every receiver is gone: stop re-arming, the entry and channel go away
            Err(TrySendError::Disconnected(_)) => return,
            // Full: the receiver has not taken the last tick; this one is dropped
            Ok(()) | Err(TrySendError::Full(_)) => {}
        }
        if let Some(next) = next_tick(when, period, now) {
            arm(next, period, tx, stopped);
        }
    });
}

/// Pure policy: the first instant on the grid `when + k·period` (k ≥ 1) that is after `now`,
/// so ticks missed while a worker was busy are skipped rather than fired in a burst. None
/// when the clock cannot express it.
fn next_tick(when: Instant, period: Duration, now: Instant) -> Option<Instant> {
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
