//! One-shot timers as channels: [`after`] and [`Timer`] (Go's `time.After`, `time.NewTimer`),
//! and [`ChanTimer`], the stoppable, resettable channel timer behind `Timer`, `Ticker` and
//! `tick` (Go's runtime `timer` with `isChan`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::callback::{self, TimerHandle};
use super::tick::next_tick;
use crate::chan::{self, Receiver, Sender, TrySendError};

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

/// A one-shot timer that can be stopped and reset — Go's `time.NewTimer`, with Go 1.23's
/// semantics.
///
/// Its [`receiver`](Timer::receiver) gets the current time once the duration has passed,
/// unless [`stop`](Timer::stop) came first. [`reset`](Timer::reset) re-arms it for a new
/// duration. As in Go 1.23, a stop or reset also takes back a value that fired but was not
/// received yet: once either call returns, no receive gets a time from before it, so
/// neither needs Go's old "stop, then drain the channel" dance.
///
/// Dropping the timer stops it; on the thread that last armed it (the one that created or
/// last reset it; a coroutine always is), or from anywhere if that was a plain thread (its
/// timers live in the shared timer thread's heap), that also frees its heap entry at once,
/// which makes a `Timer` the right tool for a long timeout created per request. Otherwise
/// the entry stays in its worker's heap until its time and then fires as a no-op.
///
/// ```
/// use std::time::Duration;
/// let t = coronet::time::Timer::new(Duration::from_millis(10));
/// assert!(t.receiver().recv().is_ok());
/// assert!(!t.stop(), "already fired and received");
///
/// let t = coronet::time::Timer::new(Duration::from_secs(3600));
/// assert!(t.stop(), "stopped before it fired");
/// ```
#[derive(Debug)]
pub struct Timer {
    rx: Receiver<Instant>,
    timer: Arc<ChanTimer>,
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
        let (timer, rx) = ChanTimer::new();
        timer.reset(&rx, dur, None);
        Timer { rx, timer }
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

    /// Stops the timer — Go 1.23's `Timer.Stop`. True if this call stopped it before its
    /// value was received: while it was still armed, or after it fired into the channel with
    /// nobody receiving yet (that value is taken back). False if the value was already
    /// received or the timer was already stopped.
    ///
    /// Once it returns, no receive gets a value from before the call, even when the timer
    /// was firing at this very moment. Callable from any thread or coroutine, any number of
    /// times.
    ///
    /// ```
    /// use coronet::time::{sleep, Timer};
    /// use std::time::Duration;
    ///
    /// let t = Timer::new(Duration::from_secs(60));
    /// assert!(t.stop());
    /// assert!(!t.stop(), "already stopped");
    ///
    /// // Fired but not received: stop still counts, and the channel is empty after it.
    /// let t = Timer::new(Duration::from_millis(1));
    /// while t.receiver().is_empty() {
    ///     sleep(Duration::from_millis(1));
    /// }
    /// assert!(t.stop());
    /// assert!(t.receiver().try_recv().is_err());
    /// ```
    pub fn stop(&self) -> bool {
        self.timer.stop(&self.rx)
    }

    /// Re-arms the timer to fire once `dur` has passed from now — Go 1.23's `Timer.Reset`.
    /// True if the timer was still pending (armed, or fired with its value not received
    /// yet), false if its value had been received or it had been stopped.
    ///
    /// Whatever it returns, exactly one value arrives afterwards, at the new time, unless the
    /// timer is stopped or reset again: a value from before the call is never received once
    /// it returns (one sitting in the channel is taken back). Callable from any thread or
    /// coroutine, while the timer fires too.
    ///
    /// The old deadline's heap entry is freed at once only when the reset runs on the thread
    /// whose heap holds it (the one that last armed the timer); from elsewhere it stays until
    /// its old deadline and then fires as a no-op. Resetting one long timer from coroutines
    /// on different workers in turn therefore keeps one small entry per reset alive until
    /// the old deadlines pass; reset it from one coroutine where that matters.
    ///
    /// ```
    /// use coronet::time::Timer;
    /// use std::time::{Duration, Instant};
    ///
    /// let t = Timer::new(Duration::from_secs(3600));
    /// let reset_at = Instant::now();
    /// assert!(t.reset(Duration::from_millis(10)), "it was armed");
    /// let at = t.receiver().recv().unwrap();
    /// assert!(at >= reset_at + Duration::from_millis(10));
    ///
    /// assert!(!t.reset(Duration::from_millis(5)), "its value was received");
    /// assert!(t.receiver().recv().is_ok(), "and it fires again");
    ///
    /// t.stop();
    /// assert!(!t.reset(Duration::from_millis(5)), "it was stopped");
    /// ```
    pub fn reset(&self, dur: Duration) -> bool {
        self.timer.reset(&self.rx, dur, None)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A channel timer that can be stopped and reset from any thread: the state `Timer`,
/// `Ticker` and `tick` share with their heap entries (Go's runtime `timer` with `isChan`).
///
/// # Why no stale value is received after a stop or reset
///
/// Every stop and reset bumps `seq` and drains the channel; every heap entry carries the
/// `seq` it was armed with and sends only if that is still the current one. Both happen
/// under `state`'s lock, and the entry's send step runs with the lock held, so a stop or
/// reset and a firing entry are ordered: either the entry sent first — its value is then in
/// the channel, where the drain takes it, or a receiver already waiting took it, which makes
/// it a receive that happened before the call — or the call came first and the entry finds
/// a newer `seq` and sends nothing. `seq` only grows, so an entry armed before a stop or reset
/// can never send after it. Holding the lock across the send is cheap and cannot block: it
/// is the channel's non-blocking send step into a one-slot channel.
///
/// Only crate code runs under the lock: the channel's send step and, for a stop or reset, a
/// non-blocking receive, each taking the channel's own lock inside ours (the one lock order;
/// nothing takes ours under the channel's). Nothing logs under it: the receiver a send hands
/// its value to is woken (which may log) after it is released, and arming and cancelling
/// heap entries (which may start the timer thread, and log) happen outside it too, so it is
/// never held while a heap is borrowed or locked, and a logger never runs while it is held.
///
/// A stop or reset also cancels the entry it supersedes (see [`TimerHandle::cancel`]: that
/// frees it only on the thread whose heap holds it; elsewhere it fires later as a no-op).
#[derive(Debug)]
pub(super) struct ChanTimer {
    tx: Sender<Instant>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Bumped by every stop and reset; an entry sends only while its own `seq` is this one.
    seq: u64,
    /// A one-shot timer's entry of the current `seq` has not sent yet (or was too far out
    /// for the clock and never will): what, with a drained value, makes it "pending".
    armed: bool,
    /// The latest entry armed for the current `seq` and its deadline, for a stop or reset to
    /// cancel. It may have fired already: cancelling it then does nothing (its id is stale).
    entry: Option<(Instant, TimerHandle)>,
}

impl ChanTimer {
    /// A stopped timer and its channel (one slot, never disconnects); `reset` arms it.
    pub(super) fn new() -> (Arc<ChanTimer>, Receiver<Instant>) {
        let (tx, rx) = chan::bounded(1);
        keep_open(&tx);
        let state = Mutex::new(State {
            seq: 0,
            armed: false,
            entry: None,
        });
        (Arc::new(ChanTimer { tx, state }), rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only the channel's own steps run under it, and they do not panic (a poisoned lock
        // would still guard consistent state).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the timer; `rx` is its channel's receiver. True if it was pending: armed, or
    /// fired with the value still in the channel (drained now).
    pub(super) fn stop(&self, rx: &Receiver<Instant>) -> bool {
        let (pending, old, _) = self.supersede(rx, false);
        if let Some((_, h)) = old {
            h.cancel();
        }
        pending
    }

    /// Stops the timer and arms it anew to fire `dur` from now, then every `period` if
    /// there is one; true if it was pending (as for [`stop`](ChanTimer::stop)).
    pub(super) fn reset(
        self: &Arc<Self>,
        rx: &Receiver<Instant>,
        dur: Duration,
        period: Option<Duration>,
    ) -> bool {
        // Before the new `seq` exists: its value is never earlier than the call plus `dur`.
        let when = Instant::now().checked_add(dur);
        let (pending, old, seq) = self.supersede(rx, true);
        if let Some((_, h)) = old {
            h.cancel();
        }
        // Longer than the clock can express: it never fires (but stays pending).
        if let Some(when) = when {
            self.arm(seq, when, period);
        }
        pending
    }

    /// The locked half of a stop or reset: a new `seq`, so no entry armed before can send,
    /// and the channel drained of a value one sent already. Returns whether the timer was
    /// pending, the entry to cancel (after the lock is released) and the new `seq`.
    fn supersede(
        &self,
        rx: &Receiver<Instant>,
        rearm: bool,
    ) -> (bool, Option<(Instant, TimerHandle)>, u64) {
        let mut g = self.lock();
        g.seq += 1;
        // Only this timer's entries send on the channel, and only under this lock, so what is
        // queued now is a value from before this call. Nobody ever waits to send on it, so
        // the receive step wakes no one (and logs nothing).
        let drained = rx.try_recv().is_ok();
        let pending = std::mem::replace(&mut g.armed, rearm) || drained;
        (pending, g.entry.take(), g.seq)
    }

    /// Arms an entry of `seq` at `when`. Called without the lock: scheduling may start the
    /// timer thread, which logs.
    fn arm(self: &Arc<Self>, seq: u64, when: Instant, period: Option<Duration>) {
        let me = self.clone();
        let handle = callback::schedule(when, move || me.fire(seq, when, period));
        let mut g = self.lock();
        if g.seq != seq {
            // Stopped or reset meanwhile: this entry is stale already.
            drop(g);
            handle.cancel();
        } else if g.entry.as_ref().map_or(true, |(w, _)| *w < when) {
            // A ticker's entries of one `seq` form a chain with growing deadlines, and only
            // the last is armed; if it fired and re-armed before we got here, keep the newer.
            g.entry = Some((when, handle));
        }
    }

    /// The heap entry of `seq`, armed for `when`, fires: send the time unless a stop or
    /// reset superseded it, and re-arm a ticker on the grid `when + k·period`.
    fn fire(self: &Arc<Self>, seq: u64, when: Instant, period: Option<Duration>) {
        let now = Instant::now();
        let (sent, wake) = {
            let mut g = self.lock();
            if g.seq != seq {
                return; // stopped or reset since it was armed
            }
            if period.is_none() {
                g.armed = false;
            }
            // The channel's non-blocking send step, under its lock and ours. A receiver it
            // hands the value to is woken after ours is released (the wake may log).
            let c = &self.tx.chan;
            c.send_locked(&mut c.lock(), now, chan::NOBODY)
        };
        chan::unpark(wake);
        match sent {
            // every receiver is gone (a `tick` nobody reads): stop re-arming
            Err(TrySendError::Disconnected(_)) => return,
            // Full: a ticker's receiver has not taken the last tick; this one is dropped
            Ok(()) | Err(TrySendError::Full(_)) => {}
        }
        if let Some(next) = period.and_then(|p| next_tick(when, p, now)) {
            self.arm(seq, next, period);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry firing after a stop or reset: from another thread a superseded entry cannot
    /// be cancelled, so it always comes due, and must send nothing. Driven by hand here, so
    /// each interleaving is exact.
    #[test]
    fn a_superseded_entry_sends_nothing() {
        let hour = Duration::from_secs(3600);
        let (t, rx) = ChanTimer::new();
        assert!(!t.reset(&rx, hour, None), "new: nothing was pending");
        let first = t.lock().seq;

        // The current entry fires: its value waits in the channel, and counts as pending.
        t.fire(first, Instant::now(), None);
        assert_eq!(rx.len(), 1);
        assert!(t.stop(&rx), "fired, not received: pending");
        assert!(rx.is_empty(), "the stop drained it");

        // The same entry fires again, as a copy nobody could cancel would: nothing is sent.
        t.fire(first, Instant::now(), None);
        assert!(rx.is_empty());
        assert!(!t.stop(&rx));

        // After a reset only the new entry sends.
        assert!(!t.reset(&rx, hour, None), "stopped: not pending");
        let second = t.lock().seq;
        t.fire(first, Instant::now(), None);
        assert!(rx.is_empty(), "an entry from before the stop");
        t.fire(second, Instant::now(), None);
        assert!(rx.try_recv().is_ok());
        assert!(!t.stop(&rx), "received: not pending");
    }

    /// A ticker's entry of an old `seq` neither sends nor re-arms.
    #[test]
    fn a_superseded_tick_does_not_rearm() {
        let ms = Duration::from_millis;
        let (t, rx) = ChanTimer::new();
        t.reset(
            &rx,
            Duration::from_secs(3600),
            Some(Duration::from_secs(3600)),
        );
        let old = t.lock().seq;
        t.reset(
            &rx,
            Duration::from_secs(3600),
            Some(Duration::from_secs(3600)),
        );
        let before = t.lock().entry.as_ref().map(|(w, _)| *w);
        t.fire(old, Instant::now() - ms(1), Some(ms(1)));
        assert!(rx.is_empty());
        assert_eq!(
            t.lock().entry.as_ref().map(|(w, _)| *w),
            before,
            "not re-armed"
        );
        t.stop(&rx);
    }
}
