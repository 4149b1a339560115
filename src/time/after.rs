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
/// Dropping the receiver (every clone of it) disarms the timer and frees it, as Go 1.23
/// frees an `After` timer nobody references: the usual `select!` loop with a fresh
/// `after(timeout)` arm on every turn holds no more than one timer at a time.
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
        let timer = callback::schedule(when, move || {
            let _ = tx.try_send(Instant::now()); // fails only if every receiver is gone
        });
        // Found by the fifth audit: an `after` arm per turn of a `select!` loop kept every
        // dropped timer (and its channel) until it fired, 66 MB over 300,000 turns of a
        // 60 s timeout. A cancel from another worker is queued to the timer's own.
        rx.chan.on_no_receivers(Box::new(move || {
            timer.cancel();
        }));
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
/// Dropping the timer stops it and frees its heap entry: at once on the thread whose heap
/// holds it (the worker of the coroutine that armed it, or any thread for one armed on a
/// plain thread, whose timers live in the shared timer thread's heap), and from anywhere
/// else at that worker's next timer pass. So a `Timer` is the right tool for a long timeout
/// created per request.
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
    /// A reset to a later time (an idle timeout pushed back on every read) costs no new
    /// heap entry: the armed one follows the new time when it comes due, from whichever
    /// thread or worker the reset ran on.
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
/// Every stop and reset sets the next due time (`due`, None once stopped) and drains the
/// channel; an entry sends only if it is the timer's one live entry and `due` has come, and
/// both happen under `state`'s lock, with the entry's send step run while the lock is
/// held. So a stop or reset and a firing entry are ordered: either the entry sent first —
/// its value is then in the channel, where the drain takes it, or a receiver already
/// waiting took it, which makes it a receive that happened before the call — or the call
/// came first, and the entry finds `due` gone or later and sends nothing. Holding the lock
/// across the send is cheap and cannot block: it is the channel's non-blocking send step
/// into a one-slot channel.
///
/// # One live entry, as in Go
///
/// A heap entry is freed at once only on the thread whose heap holds it; from elsewhere its
/// cancel is queued for that worker (see [`TimerHandle::cancel`]). So a reset to a later
/// time keeps the live entry: when it comes due it finds `due` moved and re-arms itself
/// there, on its own thread, with no cancel at all. Only a reset to an earlier time (or
/// after a stop) arms a new entry and cancels the old one. Without this, a timer reset in
/// turn from coroutines on two workers left one entry per reset until its old deadline (an
/// audit measured 26 MB for 200,000 resets of an hour-long timeout).
///
/// Only crate code runs under the lock: the channel's send step and, for a stop or reset, a
/// non-blocking receive, each taking the channel's own lock inside ours (the one lock order;
/// nothing takes ours under the channel's). Nothing logs under it: the receiver a send hands
/// its value to is woken (which may log) after it is released, and arming and cancelling
/// heap entries (which may start the timer thread, and log) happen outside it too, so it is
/// never held while a heap is borrowed or locked, and a logger never runs while it is held.
#[derive(Debug)]
pub(super) struct ChanTimer {
    tx: Sender<Instant>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the next value is due; None when stopped (or too far out for the clock).
    due: Option<Instant>,
    /// A ticker's period; None for a one-shot timer.
    period: Option<Duration>,
    /// A one-shot timer has not sent for its current arming yet (also when its time is too
    /// far out for the clock and never comes): what, with a drained value, makes it
    /// "pending".
    armed: bool,
    /// The one heap entry allowed to act; any other that fires does nothing.
    live: Option<Live>,
    /// Ids for entries.
    next_id: u64,
}

#[derive(Debug)]
struct Live {
    id: u64,
    /// When the entry comes due in its heap.
    when: Instant,
    /// To cancel it; None until `schedule` has installed it.
    handle: Option<TimerHandle>,
}

impl State {
    /// Makes a new entry of `when` the live one; the caller schedules it after unlocking.
    fn new_live(&mut self, when: Instant) -> (u64, Option<Live>) {
        self.next_id += 1;
        let id = self.next_id;
        let old = self.live.replace(Live {
            id,
            when,
            handle: None,
        });
        (id, old)
    }
}

impl ChanTimer {
    /// A stopped timer and its channel (one slot, never disconnects); `reset` arms it.
    pub(super) fn new() -> (Arc<ChanTimer>, Receiver<Instant>) {
        let (tx, rx) = chan::bounded(1);
        keep_open(&tx);
        let state = Mutex::new(State {
            due: None,
            period: None,
            armed: false,
            live: None,
            next_id: 0,
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
        let (pending, old) = {
            let mut g = self.lock();
            let pending = Self::drain(&mut g, rx, false);
            g.due = None;
            (pending, g.live.take())
        };
        cancel(old);
        pending
    }

    /// Stops a timer whose receivers are all gone, so nothing is left to drain: its entry
    /// is cancelled (at once on its own thread, else at its worker's next timer pass).
    pub(super) fn stop_unread(&self) {
        let old = {
            let mut g = self.lock();
            g.due = None;
            g.armed = false;
            g.live.take()
        };
        cancel(old);
    }

    /// Stops the timer and arms it anew to fire `dur` from now, then every `period` if
    /// there is one; true if it was pending (as for [`stop`](ChanTimer::stop)).
    pub(super) fn reset(
        self: &Arc<Self>,
        rx: &Receiver<Instant>,
        dur: Duration,
        period: Option<Duration>,
    ) -> bool {
        // Before the drain: a value is never earlier than the call plus `dur`.
        let when = Instant::now().checked_add(dur);
        let (pending, new, old) = {
            let mut g = self.lock();
            let pending = Self::drain(&mut g, rx, true);
            g.due = when;
            g.period = period;
            match (when, &g.live) {
                // The live entry comes due first and will follow `due` from its own thread.
                (Some(when), Some(live)) if live.when <= when => (pending, None, None),
                // Longer than the clock can express: it never fires (but stays pending).
                (None, _) => (pending, None, g.live.take()),
                (Some(when), _) => {
                    let (id, old) = g.new_live(when);
                    (pending, Some((id, when)), old)
                }
            }
        };
        cancel(old);
        if let Some((id, when)) = new {
            self.schedule(id, when);
        }
        pending
    }

    /// The locked part of a stop or reset: the channel drained of a value an entry sent
    /// already. Returns whether the timer was pending.
    fn drain(g: &mut State, rx: &Receiver<Instant>, rearm: bool) -> bool {
        // Only this timer's entries send on the channel, and only under this lock, so what is
        // queued now is a value from before this call. Nobody ever waits to send on it, so
        // the receive step wakes no one (and logs nothing).
        let drained = rx.try_recv().is_ok();
        std::mem::replace(&mut g.armed, rearm) || drained
    }

    /// Puts entry `id` in the heap for `when` (this thread's, or the shared one). Called
    /// without the lock: scheduling may start the timer thread, which logs.
    fn schedule(self: &Arc<Self>, id: u64, when: Instant) {
        let me = self.clone();
        let handle = callback::schedule(when, move || me.fire(id));
        let mut g = self.lock();
        match g.live.as_mut() {
            Some(live) if live.id == id => live.handle = Some(handle),
            _ => {
                // Superseded meanwhile: this entry is stale already.
                drop(g);
                handle.cancel();
            }
        }
    }

    /// Entry `id` comes due: if it is the live one, send the time when `due` has come (and
    /// re-arm a ticker on the grid `due + k·period`), or follow `due` if a reset moved it.
    fn fire(self: &Arc<Self>, id: u64) {
        let now = Instant::now();
        let (wake, next) = {
            let mut g = self.lock();
            if !g.live.as_ref().is_some_and(|l| l.id == id) {
                return; // stopped or reset since it was armed
            }
            let Some(due) = g.due else {
                g.live = None; // stopped, or too far out for the clock
                return;
            };
            if due > now {
                // A reset moved it later: follow from this thread.
                let (id, _) = g.new_live(due);
                drop(g);
                return self.schedule(id, due);
            }
            if g.period.is_none() {
                g.armed = false;
            }
            // The channel's non-blocking send step, under its lock and ours. A receiver it
            // hands the value to is woken after ours is released (the wake may log).
            let c = &self.tx.chan;
            let (sent, wake) = c.send_locked(&mut c.lock(), now, chan::NOBODY);
            let next = match (&sent, g.period) {
                // every receiver is gone (a `tick` nobody reads): stop re-arming
                (Err(TrySendError::Disconnected(_)), _) | (_, None) => None,
                // (Full: a ticker's receiver has not taken the last tick; this one is dropped)
                (_, Some(p)) => next_tick(due, p, now),
            };
            g.due = next;
            let next = next.map(|when| (g.new_live(when).0, when));
            if next.is_none() {
                g.live = None;
            }
            (wake, next)
        };
        chan::unpark(wake);
        if let Some((id, when)) = next {
            self.schedule(id, when);
        }
    }
}

/// Cancels a superseded entry (outside the lock): freed at once on its own thread; from
/// elsewhere at its worker's next timer pass (it may fire as a no-op before that).
fn cancel(old: Option<Live>) {
    if let Some(handle) = old.and_then(|l| l.handle) {
        handle.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Makes the live entry due now and fires it by hand, as its heap would; returns its id.
    fn fire_live_now(t: &Arc<ChanTimer>) -> u64 {
        let id = {
            let mut g = t.lock();
            g.due = g.due.map(|_| Instant::now() - Duration::from_millis(1));
            g.live.as_ref().expect("a live entry").id
        };
        t.fire(id);
        id
    }

    /// An entry firing after a stop or reset: from another thread a superseded entry cannot
    /// be cancelled, so it always comes due, and must send nothing. Driven by hand here, so
    /// each interleaving is exact.
    #[test]
    fn a_superseded_entry_sends_nothing() {
        let (t, rx) = ChanTimer::new();
        assert!(!t.reset(&rx, HOUR, None), "new: nothing was pending");

        // The live entry fires: its value waits in the channel, and counts as pending.
        let first = fire_live_now(&t);
        assert_eq!(rx.len(), 1);
        assert!(t.stop(&rx), "fired, not received: pending");
        assert!(rx.is_empty(), "the stop drained it");

        // The same entry fires again, as a copy nobody could cancel would: nothing is sent.
        t.fire(first);
        assert!(rx.is_empty());
        assert!(!t.stop(&rx));

        // After a reset only the new entry sends.
        assert!(!t.reset(&rx, HOUR, None), "stopped: not pending");
        t.fire(first);
        assert!(rx.is_empty(), "an entry from before the stop");
        let second = fire_live_now(&t);
        assert_ne!(first, second);
        assert!(rx.try_recv().is_ok());
        assert!(!t.stop(&rx), "received: not pending");
    }

    /// A reset to a later time keeps the live entry, which follows the new time when it
    /// comes due (on its own thread); only a reset to an earlier time arms a new one. So
    /// resets from threads that cannot free the entry do not pile entries up.
    #[test]
    fn a_reset_to_a_later_time_keeps_the_one_live_entry() {
        let (t, rx) = ChanTimer::new();
        t.reset(&rx, HOUR, None);
        let live = |t: &Arc<ChanTimer>| t.lock().live.as_ref().map(|l| (l.id, l.when));
        let (id, when) = live(&t).unwrap();
        for _ in 0..1000 {
            t.reset(&rx, HOUR, None);
        }
        assert_eq!(live(&t), Some((id, when)), "1,000 later resets, one entry");

        // It comes due before the new time: no value, it moves itself there.
        t.fire(id);
        assert!(rx.is_empty());
        let (moved, later) = live(&t).unwrap();
        assert!(moved != id && later > when);

        // An earlier time needs an entry of its own.
        t.reset(&rx, Duration::from_secs(60), None);
        assert_ne!(live(&t).unwrap().0, moved);
        t.fire(moved);
        assert!(rx.is_empty(), "the superseded entry sends nothing");
        t.stop(&rx);
        assert_eq!(live(&t), None);
    }

    /// A ticker's superseded entry neither sends nor re-arms; the live one re-arms on the
    /// grid after it sends.
    #[test]
    fn a_superseded_tick_does_not_rearm() {
        let (t, rx) = ChanTimer::new();
        t.reset(&rx, HOUR, Some(HOUR));
        let old = fire_live_now(&t);
        assert_eq!(rx.len(), 1, "the live entry sent");
        let next = t.lock().live.as_ref().map(|l| l.id).unwrap();
        assert_ne!(next, old, "and re-armed");
        t.reset(&rx, Duration::from_secs(60), Some(HOUR));
        assert!(rx.is_empty(), "the reset drained the tick");
        let live = t.lock().live.as_ref().map(|l| l.id);
        t.fire(old);
        t.fire(next);
        assert!(rx.is_empty());
        assert_eq!(t.lock().live.as_ref().map(|l| l.id), live, "not re-armed");
        t.stop(&rx);
    }
}
