//! Cancellation and deadlines that flow down a tree of work — Go's `context`.
//!
//! A [`Context`] says when the work it was handed to should stop: when someone cancels it,
//! when its deadline passes, or when its parent stops. Pass it down by reference (or clone
//! it: it is a cheap `Arc`), and check it where work can stop — in a
//! [`select!`](crate::select) on [`done()`](Context::done), with
//! [`is_done()`](Context::is_done) in a loop, or by handing it to
//! [`Dialer::dial_context`](crate::net::Dialer::dial_context) and
//! [`lookup_host_context`](crate::net::lookup_host_context), which abort a connect or a
//! lookup already in progress.
//!
//! Start from [`Context::background`] and derive children with
//! [`with_cancel`](Context::with_cancel), [`with_deadline`](Context::with_deadline) or
//! [`with_timeout`](Context::with_timeout); each returns the child and a [`Canceller`] that
//! cancels it — explicitly or when dropped. [`ContextError`] says why a context ended.
//!
//! ```
//! use coronet::context::Context;
//! use std::time::Duration;
//!
//! let (ctx, cancel) = Context::background().with_cancel();
//! let (child, _guard) = ctx.with_timeout(Duration::from_secs(60));
//! let worker = coronet::go(move || {
//!     coronet::select! {
//!         recv(child.done()) -> _ => child.err(),
//!     }
//! });
//! cancel.cancel(); // cancels `ctx` and with it `child`
//! let err = worker.join().unwrap().unwrap();
//! assert_eq!(err.to_string(), "context canceled");
//! ```
//!
//! # The tree
//!
//! ```text
//!  state        meaning                          who moves it out
//!  ----------   ------------------------------   ------------------------------------------
//!  live         err None, done() open,           cancel (Canceller), deadline timer, or the
//!               registered in the parent         parent's cancel → cancelled
//!  cancelled    err Some, done() disconnected,   nobody (final)
//!               children cancelled, callbacks
//!               run, out of the parent's list
//! ```
//!
//! A child registers in its parent's list and leaves it when it is cancelled, as in Go; its
//! [`Canceller`] holds it and cancels it when dropped, so a loop that makes and drops a
//! million children (with their cancellers) under one long-lived parent leaves that list
//! empty. The list holds `Weak` references, so it never keeps a child alive by itself. A
//! child holds its parent strongly, so a parent outlives its children. The background
//! context is never cancelled; its children are not registered at all.
//!
//! # Errors as `io::Error`
//!
//! [`ContextError`] converts into `io::Error`: `DeadlineExceeded` with kind `TimedOut`,
//! `Canceled` with kind `Other`. Not `Interrupted`: std's `read_exact`, `write_all` and
//! `io::copy` retry `Interrupted` forever, so a cancelled context would never stop them.
//! Network calls word them as Go's `net` does: `dial tcp 10.0.0.1:80: operation was
//! canceled`, `dial tcp 10.0.0.1:80: i/o timeout`; [`ContextError::of`] finds the cause.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::chan::{self, Receiver, Sender};
use crate::time::callback::{self, Callback, TimerHandle};

/// Why a context is done: Go's `context.Canceled` and `context.DeadlineExceeded`.
///
/// ```
/// use coronet::context::ContextError;
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// let e: std::io::Error = ContextError::DeadlineExceeded.into();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled through a [`Canceller`] (its own or an ancestor's).
    Canceled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl Error for ContextError {}

impl From<ContextError> for io::Error {
    /// `DeadlineExceeded` → `TimedOut`, `Canceled` → `Other` (see the module docs for why
    /// not `Interrupted`).
    fn from(e: ContextError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

impl ContextError {
    fn kind(self) -> io::ErrorKind {
        match self {
            ContextError::Canceled => io::ErrorKind::Other,
            ContextError::DeadlineExceeded => io::ErrorKind::TimedOut,
        }
    }

    /// The context error behind `err`, if a context caused it: looks through coronet's
    /// network errors (`dial tcp …: operation was canceled`) and plain conversions.
    ///
    /// ```
    /// use coronet::context::ContextError;
    /// let e = std::io::Error::from(ContextError::Canceled);
    /// assert_eq!(ContextError::of(&e), Some(ContextError::Canceled));
    /// let other = std::io::Error::other("unrelated");
    /// assert_eq!(ContextError::of(&other), None);
    /// ```
    pub fn of(err: &io::Error) -> Option<ContextError> {
        let mut cur: Option<&(dyn Error + 'static)> = err.get_ref().map(|e| e as _);
        while let Some(e) = cur {
            if let Some(c) = e.downcast_ref::<ContextError>() {
                return Some(*c);
            }
            if let Some(op) = e.downcast_ref::<OpCanceled>() {
                return Some(op.0);
            }
            cur = match e.downcast_ref::<io::Error>() {
                Some(io) => io.get_ref().map(|e| e as _),
                None => e.source(),
            };
        }
        None
    }

    /// The cause a network operation reports, in Go's words: a passed deadline is the same
    /// "i/o timeout" a socket deadline gives (kind `TimedOut`); a cancel is "operation was
    /// canceled" (kind `Other`).
    pub(crate) fn to_net(self) -> io::Error {
        match self {
            ContextError::DeadlineExceeded => crate::net::error::timeout_error(),
            ContextError::Canceled => io::Error::new(self.kind(), OpCanceled(self)),
        }
    }
}

/// Go's `net` wording of a cancel ("operation was canceled"), keeping the context error.
#[derive(Debug)]
struct OpCanceled(ContextError);

impl fmt::Display for OpCanceled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation was canceled")
    }
}

impl Error for OpCanceled {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

/// A cancellation signal with an optional deadline, shared by a tree of work.
///
/// Cheap to clone (an `Arc`); `Send + Sync`. Make one with [`background`](Context::background)
/// and derive children with [`with_cancel`](Context::with_cancel),
/// [`with_deadline`](Context::with_deadline) or [`with_timeout`](Context::with_timeout).
///
/// ```
/// use coronet::context::{Context, ContextError};
/// use std::time::Duration;
///
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
/// assert!(!ctx.is_done());
/// let _ = ctx.done().recv(); // disconnects when the deadline passes
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

/// `Inner::err` values.
const LIVE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE: u8 = 2;

struct Inner {
    /// Held so the parent outlives us and so we can leave its list; None for background.
    parent: Option<Context>,
    /// Our key in the parent's `children`, if we registered there.
    key: Option<usize>,
    deadline: Option<Instant>,
    /// Disconnects when the context is cancelled: the last sender is in `State::done_tx`.
    done: Receiver<()>,
    /// LIVE, CANCELED or DEADLINE; written once, under the `state` lock.
    err: AtomicU8,
    /// None for background: it is never cancelled, and registers nothing.
    state: Option<Mutex<State>>,
}

/// What a live context owns; emptied (all at once) by the cancel.
struct State {
    done_tx: Option<Sender<()>>,
    /// Live children, by `Weak` (see "The tree"). After the cancel takes it, nothing is ever
    /// inserted again, so a key found here still belongs to whoever inserted it.
    children: Slab<Weak<Inner>>,
    /// Functions to run on cancel (a dial in progress registers one to wake its connect).
    callbacks: Slab<Callback>,
    /// The deadline timer, stopped if the context is cancelled first.
    timer: Option<TimerHandle>,
}

/// What a cancel takes out of a `State` under its lock, to act on after it.
struct Taken {
    done_tx: Option<Sender<()>>,
    children: Slab<Weak<Inner>>,
    callbacks: Slab<Callback>,
    timer: Option<TimerHandle>,
}

fn decode(err: u8) -> Option<ContextError> {
    match err {
        LIVE => None,
        CANCELED => Some(ContextError::Canceled),
        _ => Some(ContextError::DeadlineExceeded),
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding it; the state stays consistent on poisoning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    /// The root context: never cancelled, no deadline (Go's `context.Background()`).
    ///
    /// ```
    /// let bg = coronet::context::Context::background();
    /// assert!(!bg.is_done());
    /// assert_eq!(bg.deadline(), None);
    /// ```
    pub fn background() -> Context {
        static BACKGROUND: OnceLock<Context> = OnceLock::new();
        BACKGROUND
            .get_or_init(|| Context {
                inner: Arc::new(Inner {
                    parent: None,
                    key: None,
                    deadline: None,
                    done: chan::never(),
                    err: AtomicU8::new(LIVE),
                    state: None,
                }),
            })
            .clone()
    }

    /// A child that is cancelled when `cancel()` is called on (or drop of) the returned
    /// [`Canceller`], or when this context is cancelled.
    ///
    /// Keep the canceller in a named variable for as long as the work runs: `let (ctx, _)
    /// = …` drops it, and so cancels the child, at once.
    ///
    /// ```
    /// use coronet::context::{Context, ContextError};
    /// let (parent, cancel_parent) = Context::background().with_cancel();
    /// let (child, _cancel_child) = parent.with_cancel();
    /// cancel_parent.cancel();
    /// assert_eq!(child.err(), Some(ContextError::Canceled));
    /// ```
    #[must_use = "dropping the Canceller cancels the context at once"]
    pub fn with_cancel(&self) -> (Context, Canceller) {
        self.child(None)
    }

    /// A child that is also cancelled, with [`ContextError::DeadlineExceeded`], at
    /// `deadline` (or at this context's deadline, if that is earlier).
    ///
    /// ```
    /// use coronet::context::Context;
    /// use std::time::{Duration, Instant};
    /// let at = Instant::now() + Duration::from_secs(60);
    /// let (ctx, _cancel) = Context::background().with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// ```
    #[must_use = "dropping the Canceller cancels the context at once"]
    pub fn with_deadline(&self, deadline: Instant) -> (Context, Canceller) {
        self.child(Some(deadline))
    }

    /// [`with_deadline`](Context::with_deadline) at now + `timeout` (a timeout too long for
    /// the clock means no deadline of its own).
    ///
    /// ```
    /// use coronet::context::Context;
    /// use std::time::Duration;
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    /// assert!(ctx.deadline().is_some());
    /// ```
    #[must_use = "dropping the Canceller cancels the context at once"]
    pub fn with_timeout(&self, timeout: Duration) -> (Context, Canceller) {
        self.child(Instant::now().checked_add(timeout))
    }

    /// When the context will be cancelled by a deadline, if it has one (its own or an
    /// ancestor's, whichever is earlier).
    ///
    /// ```
    /// assert_eq!(coronet::context::Context::background().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// A channel that disconnects when the context is cancelled; use it in
    /// [`select!`](crate::select): `recv(ctx.done()) -> _ => …`. Nothing is ever sent on
    /// it. The background context's never disconnects.
    ///
    /// ```
    /// use coronet::context::Context;
    /// use std::time::Duration;
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// coronet::go(move || cancel.cancel());
    /// coronet::select! {
    ///     recv(ctx.done()) -> msg => assert!(msg.is_err()), // disconnected: cancelled
    ///     default(Duration::from_secs(10)) => panic!("not cancelled"),
    /// }
    /// ```
    pub fn done(&self) -> &Receiver<()> {
        &self.inner.done
    }

    /// Why the context is done, or None while it is live.
    ///
    /// ```
    /// use coronet::context::{Context, ContextError};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// drop(cancel);
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        decode(self.inner.err.load(Ordering::Acquire))
    }

    /// True once the context is cancelled (a cheap check for loops).
    ///
    /// ```
    /// let (ctx, cancel) = coronet::context::Context::background().with_cancel();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// Children registered now (for tests of the no-leak rule).
    #[doc(hidden)]
    pub fn __child_count(&self) -> usize {
        self.inner
            .state
            .as_ref()
            .map_or(0, |s| lock(s).children.len())
    }

    fn child(&self, deadline: Option<Instant>) -> (Context, Canceller) {
        // Our own timer only if we stop before the parent does; otherwise its cancel, which
        // reaches us anyway, is the deadline (as Go's `WithDeadline` decides).
        let parent_deadline = self.inner.deadline;
        let own = deadline.filter(|d| parent_deadline.map_or(true, |p| *d < p));
        let deadline = crate::poll::desc::earliest(deadline, parent_deadline);
        let (done_tx, done) = chan::bounded(0);
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            // Err: the parent is done; the check below cancels us.
            let key = self.inner.register(me.clone()).unwrap_or(None);
            Inner {
                parent: Some(self.clone()),
                key,
                deadline,
                done,
                err: AtomicU8::new(LIVE),
                state: Some(Mutex::new(State {
                    done_tx: Some(done_tx),
                    children: Slab::new(),
                    callbacks: Slab::new(),
                    timer: None,
                })),
            }
        });
        let canceller = Canceller(inner.clone());
        // A parent cancel that ran while we were being built could not upgrade our `Weak`
        // (not yet alive). Reading its state under its lock, after we are alive, closes the
        // gap: either we see its cancel here, or its cancel comes later and reaches us.
        if let Some(e) = self.inner.err_locked() {
            inner.cancel(e);
        } else if let Some(d) = own {
            if Instant::now() >= d {
                inner.cancel(ContextError::DeadlineExceeded);
            } else {
                inner.arm_deadline(d);
            }
        }
        (Context { inner }, canceller)
    }

    /// Runs `f` once when the context is cancelled (Go's `context.AfterFunc`), on the thread
    /// that cancels it: `f` must be quick and must not park. Err if the context is done
    /// already (then `f` is dropped unrun); Ok(None) if it can never be cancelled.
    pub(crate) fn on_cancel(
        &self,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<Option<OnCancel>, ContextError> {
        let Some(state) = &self.inner.state else {
            return Ok(None);
        };
        let mut st = lock(state);
        if let Some(e) = self.err() {
            return Err(e);
        }
        let key = st.callbacks.insert(Box::new(f));
        Ok(Some(OnCancel {
            ctx: self.inner.clone(),
            key,
        }))
    }
}

impl Inner {
    /// Adds `child` to our list; Ok(None) for background (nothing to register), Err if we
    /// are cancelled already (the child must be born cancelled).
    fn register(&self, child: Weak<Inner>) -> Result<Option<usize>, ContextError> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let mut st = lock(state);
        match decode(self.err.load(Ordering::Acquire)) {
            None => Ok(Some(st.children.insert(child))),
            Some(e) => Err(e),
        }
    }

    /// `err`, read under the state lock (see `Context::child`).
    fn err_locked(&self) -> Option<ContextError> {
        let _st = self.state.as_ref().map(lock);
        decode(self.err.load(Ordering::Acquire))
    }

    /// Takes `child` (found at `key`) out of our list; a no-op if the cancel already did.
    fn remove_child(&self, key: usize, child: *const Inner) {
        let Some(state) = &self.state else { return };
        let mut st = lock(state);
        if st.children.get(key).is_some_and(|w| w.as_ptr() == child) {
            st.children.remove(key);
        }
    }

    fn arm_deadline(self: &Arc<Self>, d: Instant) {
        let me = Arc::downgrade(self);
        // The timer holds a Weak: a context dropped early is not kept alive by it.
        let timer = callback::schedule(d, move || {
            if let Some(ctx) = me.upgrade() {
                ctx.cancel(ContextError::DeadlineExceeded);
            }
        });
        let state = self.state.as_ref().expect("a child has state");
        let mut st = lock(state);
        if self.err.load(Ordering::Acquire) == LIVE {
            st.timer = Some(timer);
        } else {
            drop(st);
            timer.cancel();
        }
    }

    /// Cancels this context and everything below it, once; later calls do nothing.
    fn cancel(self: &Arc<Self>, err: ContextError) {
        let Some(taken) = self.take(err) else {
            return;
        };
        // Only the context cancelled first leaves its parent's list; every one below it was
        // in the list of a context that took its whole list. It leaves before it wakes its
        // `done()` waiters, so one who saw it done finds it gone from its parent's list.
        self.leave_parent();
        let mut below = Vec::new();
        self.finish(err, taken, &mut below);
        // A worklist, not a recursion: a chain of contexts can be deeper than a coroutine's
        // stack (or the scheduler's, where a deadline fires) has room for frames.
        while let Some(child) = below.pop() {
            if let Some(child) = child.upgrade() {
                if let Some(taken) = child.take(err) {
                    child.finish(err, taken, &mut below);
                }
            }
        }
    }

    /// Step 1 of cancelling one context, under its lock: marks it cancelled and takes
    /// everything the cancel must act on; None if it was done already.
    fn take(&self, err: ContextError) -> Option<Taken> {
        let state = self.state.as_ref()?;
        let (done_tx, children, callbacks, timer) = {
            let mut st = lock(state);
            if self.err.load(Ordering::Acquire) != LIVE {
                return None;
            }
            let code = match err {
                ContextError::Canceled => CANCELED,
                ContextError::DeadlineExceeded => DEADLINE,
            };
            self.err.store(code, Ordering::Release);
            (
                st.done_tx.take(),
                std::mem::take(&mut st.children),
                std::mem::take(&mut st.callbacks),
                st.timer.take(),
            )
        };
        Some(Taken {
            done_tx,
            children,
            callbacks,
            timer,
        })
    }

    /// Step 2, after the lock: wakes `done()` waiters, stops the timer, hands the children
    /// over to `below` for the caller to cancel, and runs the callbacks.
    fn finish(&self, err: ContextError, taken: Taken, below: &mut Vec<Weak<Inner>>) {
        let Taken {
            done_tx,
            children,
            callbacks,
            timer,
        } = taken;
        rt_log!(
            Trace,
            "context cancelled ({err}): {} child(ren), {} callback(s)",
            children.len(),
            callbacks.len()
        );
        drop(done_tx);
        if let Some(t) = timer {
            t.cancel();
        }
        below.extend(children.into_iter().map(|(_, child)| child));
        for (_, f) in callbacks {
            f();
        }
    }

    /// Leaves the parent's list (a cancel of our own; a parent's cancel took its whole list).
    fn leave_parent(&self) {
        if let (Some(parent), Some(key)) = (&self.parent, self.key) {
            parent.inner.remove_child(key, self);
        }
    }

    /// Hands back the parent of a context being dropped, for the caller to drop. Nothing
    /// else is left to undo: its `Canceller` holds it, so it was cancelled (out of its
    /// parent's list, timer stopped, `done()` disconnected) before its last handle went —
    /// the canceller cancels on drop, and one leaked with `mem::forget` leaks the context.
    fn retire(&mut self) -> Option<Context> {
        debug_assert!(
            self.state.is_none() || self.err.load(Ordering::Relaxed) != LIVE,
            "a live context dropped: its canceller holds it"
        );
        self.parent.take()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut parent = self.retire();
        // Dropping our parent handle as a field would drop the parent if we held its last
        // reference, and so the grandparent, one frame per level: a long chain overflows the
        // stack. Instead, each ancestor we were the last to hold is taken out of its `Arc`
        // and retired here, and drops with no parent of its own to drop.
        while let Some(ctx) = parent {
            parent = Arc::into_inner(ctx.inner).and_then(|mut inner| inner.retire());
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("deadline", &self.inner.deadline)
            .field("err", &self.err())
            .finish()
    }
}

impl Default for Context {
    /// The background context.
    fn default() -> Context {
        Context::background()
    }
}

/// Cancels its context on [`cancel`](Canceller::cancel) or on drop — Go's `CancelFunc`
/// with `defer cancel()` built in.
///
/// It holds its context, as Go's `CancelFunc` does: a `done()` receiver cloned and kept
/// after every [`Context`] handle is gone still disconnects on the cancel, the deadline or
/// the parent's cancel, and the context leaves its parent's list when it is cancelled.
/// Drop it (or call `cancel`) when the work is over, as Go's `defer cancel()` does; one
/// kept for ever keeps its context, as in Go.
///
/// ```
/// use coronet::context::Context;
/// let (ctx, cancel) = Context::background().with_cancel();
/// {
///     let _cancel = cancel; // cancelled when this scope ends
/// }
/// assert!(ctx.is_done());
/// ```
pub struct Canceller(Arc<Inner>);

impl Canceller {
    /// Cancels the context (and its children) with [`ContextError::Canceled`]; a no-op if
    /// it is done already. Callable from any thread.
    ///
    /// ```
    /// use coronet::context::{Context, ContextError};
    /// use std::time::Duration;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let worker = {
    ///     let ctx = ctx.clone();
    ///     coronet::go(move || {
    ///         let mut rounds = 0;
    ///         while !ctx.is_done() {
    ///             rounds += 1; // one unit of work, then check again
    ///             coronet::time::sleep(Duration::from_millis(1));
    ///         }
    ///         (rounds, ctx.err())
    ///     })
    /// };
    /// coronet::time::sleep(Duration::from_millis(10));
    /// cancel.cancel(); // from another thread: the worker stops at its next check
    /// let (_rounds, err) = worker.join().unwrap();
    /// assert_eq!(err, Some(ContextError::Canceled));
    /// cancel.cancel(); // a second cancel does nothing
    /// ```
    pub fn cancel(&self) {
        self.0.cancel(ContextError::Canceled);
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Canceller { .. }")
    }
}

/// A registered [`Context::on_cancel`] function; dropping it (or `stop`) unregisters it.
pub(crate) struct OnCancel {
    ctx: Arc<Inner>,
    key: usize,
}

impl OnCancel {
    /// Unregisters the function; true if it had not been taken to run (so it never will).
    /// False means the cancel took it: it has run, or is running right now.
    pub(crate) fn stop(self) -> bool {
        self.remove()
    }

    fn remove(&self) -> bool {
        let state = self
            .ctx
            .state
            .as_ref()
            .expect("on_cancel registers only with state");
        // The key is ours until we remove it or the cancel takes the whole slab (after
        // which nothing is inserted again): no other callback can sit at it.
        let f = lock(state).callbacks.try_remove(self.key);
        f.is_some() // dropped after the lock
    }
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        self.remove();
    }
}

#[allow(dead_code)]
fn _assert_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Context>();
    send_sync::<Canceller>();
    send_sync::<ContextError>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn children_leave_the_parent_list_when_cancelled() {
        let (parent, _cancel) = Context::background().with_cancel();
        for _ in 0..1000 {
            let (child, cancel) = parent.with_cancel();
            let (_grandchild, _c2) = child.with_timeout(Duration::from_secs(3600));
            drop(child);
            drop(cancel);
        }
        assert_eq!(parent.__child_count(), 0);
        // Go's rule: a child is listed until it is cancelled, whatever became of its
        // handles; its canceller holds it
        let (child, cancel) = parent.with_cancel();
        assert_eq!(parent.__child_count(), 1);
        drop(child);
        assert_eq!(parent.__child_count(), 1);
        drop(cancel);
        assert_eq!(parent.__child_count(), 0);
    }

    #[test]
    fn callbacks_run_once_on_cancel_and_stop_unregisters() {
        let ran = Arc::new(AtomicUsize::new(0));
        let (ctx, cancel) = Context::background().with_cancel();
        let r = ran.clone();
        let kept = ctx.on_cancel(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let r = ran.clone();
        let stopped = ctx.on_cancel(move || {
            r.fetch_add(100, Ordering::SeqCst);
        });
        assert!(stopped.unwrap().unwrap().stop());
        cancel.cancel();
        cancel.cancel();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(!kept.unwrap().unwrap().stop(), "the cancel took it");
        assert_eq!(
            ctx.on_cancel(|| ()).err(),
            Some(ContextError::Canceled),
            "too late to register"
        );
        assert!(Context::background().on_cancel(|| ()).unwrap().is_none());
    }

    /// Whoever sees a context done finds it gone from its parent's list: the dialer's
    /// lookup test counts the children the moment its dial returns, on the cancel of a
    /// deadline that may still be running on another thread (it failed now and then under
    /// load when the context left its parent last). A slow callback holds the cancel
    /// between waking `done()` and finishing, so the order shows every time.
    #[test]
    fn a_context_seen_done_has_left_its_parent() {
        let parent = Context::background().with_cancel();
        let (child, cancel) = parent.0.with_cancel();
        let slow = child.on_cancel(|| std::thread::sleep(Duration::from_millis(300)));
        let canceller = std::thread::spawn(move || cancel.cancel());
        let done = child.done();
        assert!(
            done.recv_timeout(Duration::from_secs(10)).is_err(),
            "disconnected"
        );
        assert_eq!(parent.0.__child_count(), 0);
        canceller.join().unwrap();
        drop(slow);
    }

    /// Go's `done := ctx.Done()`, kept after the context: a cancel, the deadline or the
    /// parent's cancel still disconnects it. (Found by an audit: once the last `Context`
    /// handle was gone, nothing could reach it, and a `select!` on it waited for ever.)
    #[test]
    fn a_done_clone_sees_the_cancel_after_the_context_is_dropped() {
        let disconnected = |done: &Receiver<()>| {
            let r = done.recv_timeout(Duration::from_secs(10));
            matches!(r, Err(chan::RecvTimeoutError::Disconnected))
        };
        let (ctx, cancel) = Context::background().with_cancel();
        let done = ctx.done().clone();
        drop(ctx);
        assert!(done.try_recv().unwrap_err().is_empty(), "not cancelled yet");
        cancel.cancel();
        assert!(disconnected(&done), "the cancel");

        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(50));
        let done = ctx.done().clone();
        drop(ctx);
        assert!(disconnected(&done), "the deadline");

        let (parent, cancel_parent) = Context::background().with_cancel();
        let (child, _cancel_child) = parent.with_cancel();
        let done = child.done().clone();
        drop((child, parent));
        cancel_parent.cancel();
        assert!(disconnected(&done), "the parent's cancel");
    }
}
