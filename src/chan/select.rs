//! `select!`: wait on several channel operations, complete exactly one — Go's `selectgo`.
//!
//! One select runs in rounds, each the same four beats:
//!
//! 1. poll every arm once, in a fresh random order, so no ready arm starves;
//! 2. nothing ready: return the default, or (with a deadline) the timeout if it passed;
//! 3. register one [`Entry`] per arm, all sharing one [`Signal`] — no helper coroutine per
//!    arm. If a channel turns out ready while registering, abort the signal;
//! 4. park until a peer completes an arm (it wins the signal's CAS and did the transfer) or
//!    the deadline aborts it; then take every other entry back off its list. An aborted
//!    round (a channel became ready) starts over at 1.
//!
//! A send arm's value is evaluated once, on entry, as in Go; if another arm is chosen the
//! value is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::receiver::Receiver;
use super::sender::Sender;
use super::waiter::{self, Entry, Outcome, Signal};
use crate::runtime::task::Wait;

/// The most arms one `select!` may have, not counting `default`; a select with more does
/// not compile ("select!: at most 32 arms").
///
/// ```compile_fail
/// let (_s, r) = coronet::chan::unbounded::<()>();
/// coronet::select! {
///     recv(r) -> _ => {}
///     // ... 32 more `recv(r)` arms: one too many
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// #   recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {} recv(r) -> _ => {}
/// }
/// ```
pub const MAX_ARMS: usize = 32;

/// How long a select may wait when no arm is ready.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Block {
    /// No `default` arm: wait for an arm.
    Forever,
    /// `default =>`: never wait.
    Now,
    /// `default(timeout) =>`: wait until this instant.
    Until(Instant),
}

impl Block {
    /// `default(timeout)`: a timeout too long for the clock means no timeout.
    pub fn after(timeout: Duration) -> Block {
        Instant::now()
            .checked_add(timeout)
            .map_or(Block::Forever, Block::Until)
    }
}

/// One operation of a select, type-erased so arms over different `T` share one slice.
#[doc(hidden)]
pub trait Arm {
    /// Tries the operation without waiting; true if it completed (including with a
    /// disconnect error), and the outcome is stored.
    fn try_now(&mut self) -> bool;
    /// Queues this arm as arm `index` of `sig`; false (nothing queued) if it is ready now.
    fn register(&mut self, sig: &Arc<Signal>, index: usize) -> bool;
    /// After the wait: read the outcome if a peer chose this arm, else take the entry back.
    fn finish(&mut self, chosen: bool);
}

/// A `recv(r) -> msg` arm. Built by `select!`; not for direct use.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    pub chan: &'a Receiver<T>,
    pub entry: Option<Arc<Entry<T>>>,
    pub result: Option<Result<T, RecvError>>,
}

impl<T> RecvArm<'_, T> {
    /// The outcome of the chosen arm.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result
            .expect("select! chose an arm without an outcome")
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn try_now(&mut self) -> bool {
        match self.chan.chan.try_recv() {
            Ok(v) => self.result = Some(Ok(v)),
            Err(TryRecvError::Disconnected) => self.result = Some(Err(RecvError)),
            Err(TryRecvError::Empty) => return false,
        }
        true
    }

    fn register(&mut self, sig: &Arc<Signal>, index: usize) -> bool {
        let e = Entry::new(sig, index, None);
        let queued = self.chan.chan.register_recv(&e);
        if queued {
            self.entry = Some(e);
        }
        queued
    }

    fn finish(&mut self, chosen: bool) {
        let Some(e) = self.entry.take() else { return };
        if chosen {
            // the peer already took the entry off the list; an empty slot is a disconnect
            self.result = Some(e.take().ok_or(RecvError));
        } else {
            self.chan.chan.unregister(&e);
        }
    }
}

/// A `send(s, v) -> res` arm. Built by `select!`; not for direct use.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    pub chan: &'a Sender<T>,
    pub value: Option<T>,
    pub entry: Option<Arc<Entry<T>>>,
    pub result: Option<Result<(), SendError<T>>>,
}

impl<T> SendArm<'_, T> {
    /// The outcome of the chosen arm.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result
            .expect("select! chose an arm without an outcome")
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn try_now(&mut self) -> bool {
        let v = self
            .value
            .take()
            .expect("a pending send arm holds its value");
        match self.chan.chan.try_send(v) {
            Ok(()) => self.result = Some(Ok(())),
            Err(TrySendError::Disconnected(v)) => self.result = Some(Err(SendError(v))),
            Err(TrySendError::Full(v)) => {
                self.value = Some(v);
                return false;
            }
        }
        true
    }

    fn register(&mut self, sig: &Arc<Signal>, index: usize) -> bool {
        let e = Entry::new(sig, index, self.value.take());
        let queued = self.chan.chan.register_send(&e);
        if queued {
            self.entry = Some(e);
        } else {
            self.value = e.take();
        }
        queued
    }

    fn finish(&mut self, chosen: bool) {
        let Some(e) = self.entry.take() else { return };
        if chosen {
            // taken by a receiver, or still here because every receiver left
            self.result = Some(match e.take() {
                None => Ok(()),
                Some(v) => Err(SendError(v)),
            });
        } else {
            self.chan.chan.unregister(&e);
            self.value = e.take();
        }
    }
}

/// Runs a select over `arms`: the index of the arm that completed, or `None` for the
/// default/timeout. Called by `select!`.
#[doc(hidden)]
pub fn run(arms: &mut [&mut dyn Arm], block: Block) -> Option<usize> {
    assert!(arms.len() <= MAX_ARMS, "select!: at most {MAX_ARMS} arms");
    let mut order = [0usize; MAX_ARMS];
    let order = &mut order[..arms.len()];
    loop {
        // 1. poll in random order
        for (i, o) in order.iter_mut().enumerate() {
            *o = i;
        }
        waiter::shuffle(order);
        for &i in order.iter() {
            if arms[i].try_now() {
                return Some(i);
            }
        }
        // 2. default, or a passed deadline
        let deadline = match block {
            Block::Now => return None,
            Block::Until(d) if Instant::now() >= d => return None,
            Block::Until(d) => Some(d),
            Block::Forever => None,
        };
        // 3. register on every channel under one signal
        let sig = Signal::new();
        let mut queued = 0;
        let mut ready = false;
        for (i, arm) in arms.iter_mut().enumerate() {
            if !arm.register(&sig, i) {
                ready = true;
                break;
            }
            queued += 1;
        }
        // 4. wait, then take back what was not chosen
        let outcome = if ready {
            sig.abort()
        } else {
            sig.wait(deadline, Wait::Select)
        };
        for (i, arm) in arms[..queued].iter_mut().enumerate() {
            arm.finish(outcome == Outcome::Selected(i));
        }
        if let Outcome::Selected(i) = outcome {
            log::trace!("select: arm {i} completed by a peer");
            return Some(i);
        }
    }
}

/// Waits on several channel operations and runs the arm of the one that completes.
///
/// The syntax is crossbeam-channel's:
///
/// - `recv(r) -> msg => body` — `msg` is `Result<T, RecvError>`; an arm whose channel is
///   empty and disconnected is ready with `Err`.
/// - `send(s, v) -> res => body` — `res` is `Result<(), SendError<T>>`. Every `v` is
///   evaluated once, when the select starts (as in Go); the values of arms not chosen are
///   dropped.
/// - `default => body` — runs if no arm is ready right away.
/// - `default(timeout) => body` — runs if no arm becomes ready within `timeout`.
///
/// When several arms are ready, one is chosen at random, as in Go, so none starves. With no
/// arm and no default the select waits forever, like Go's `select {}`. A select parks only
/// its coroutine (a plain thread blocks) and registers once on each channel. At most
/// 32 arms.
///
/// ```
/// use coronet::chan;
/// use std::time::Duration;
///
/// let (s1, r1) = chan::unbounded::<i32>();
/// let (s2, r2) = chan::bounded::<&str>(0);
/// coronet::go(move || s2.send("hello").unwrap());
///
/// let got = coronet::select! {
///     recv(r1) -> msg => format!("r1: {:?}", msg),
///     recv(r2) -> msg => format!("r2: {}", msg.unwrap()),
///     default(Duration::from_secs(10)) => "timed out".to_string(),
/// };
/// assert_eq!(got, "r2: hello");
/// # drop(s1);
/// ```
///
/// A send arm and a `default`:
///
/// ```
/// let (s, r) = coronet::chan::bounded(1);
/// for i in 0..3 {
///     coronet::select! {
///         send(s, i) -> res => res.unwrap(),
///         default => println!("full, dropping {i}"),
///     }
/// }
/// assert_eq!(r.try_iter().collect::<Vec<_>>(), [0]);
/// ```
#[macro_export]
macro_rules! select {
    // ---- parsing: normalise each arm to `(kind (args) (pat) (body))` ----
    (@parse [$($arms:tt)*] $def:tt []) => {
        $crate::select!(@build [$($arms)*] $def []
            [__a0 __a1 __a2 __a3 __a4 __a5 __a6 __a7 __a8 __a9 __a10 __a11 __a12 __a13 __a14
             __a15 __a16 __a17 __a18 __a19 __a20 __a21 __a22 __a23 __a24 __a25 __a26 __a27
             __a28 __a29 __a30 __a31]
            [0])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [recv($r:expr $(,)?) -> $res:pat => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt [recv($r:expr $(,)?) -> $res:pat => $body:expr]) => {
        $crate::select!(@parse [$($arms)* (recv ($r) ($res) ($body))] $def [])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [$($rest)*])
    };
    (@parse [$($arms:tt)*] $def:tt
        [send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr]) => {
        $crate::select!(@parse [$($arms)* (send ($s, $v) ($res) ($body))] $def [])
    };
    (@parse $arms:tt [] [default => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(now () ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default => $body:expr]) => {
        $crate::select!(@parse $arms [(now () ($body))] [])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:block, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:block $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:expr, $($rest:tt)*]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [$($rest)*])
    };
    (@parse $arms:tt [] [default($d:expr $(,)?) => $body:expr]) => {
        $crate::select!(@parse $arms [(after ($d) ($body))] [])
    };
    (@parse $arms:tt $def:tt [default $($rest:tt)*]) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    (@parse $arms:tt $def:tt [$($rest:tt)*]) => {
        ::core::compile_error!(
            "select!: expected `recv(r) -> msg => ...`, `send(s, v) -> res => ...`, \
             `default => ...` or `default(timeout) => ...`"
        )
    };

    // ---- naming: give each arm a variable and an index ----
    (@build [($kind:ident $args:tt $res:tt $body:tt) $($arms:tt)*] $def:tt [$($done:tt)*]
        [$id:ident $($ids:ident)*] [$($idx:tt)*]) => {
        $crate::select!(@build [$($arms)*] $def
            [$($done)* ($id ($($idx)*) $kind $args $res $body)] [$($ids)*] [$($idx)* + 1])
    };
    (@build [$($arms:tt)+] $def:tt $done:tt [] $idx:tt) => {
        ::core::compile_error!("select!: at most 32 arms")
    };

    // ---- output ----
    (@build [] [$(($dkind:ident $dargs:tt $dbody:tt))?]
        [$(($id:ident $idx:tt $kind:ident $args:tt ($res:pat) $body:tt))*] $ids:tt $nidx:tt) => {{
        $( let mut $id = $crate::select!(@arm $kind $args); )*
        let __chosen = $crate::chan::__private::run(
            &mut [$(&mut $id as &mut dyn $crate::chan::__private::Arm),*],
            $crate::select!(@block $(($dkind $dargs))?),
        );
        match __chosen {
            $( ::core::option::Option::Some(__i) if __i == $idx => {
                let $res = $id.into_result();
                $body
            } )*
            _ => $crate::select!(@default $($dbody)?),
        }
    }};
    (@arm recv ($r:expr)) => {
        $crate::chan::__private::RecvArm {
            chan: &$r,
            entry: ::core::option::Option::None,
            result: ::core::option::Option::None,
        }
    };
    (@arm send ($s:expr, $v:expr)) => {
        $crate::chan::__private::SendArm {
            chan: &$s,
            value: ::core::option::Option::Some($v),
            entry: ::core::option::Option::None,
            result: ::core::option::Option::None,
        }
    };
    (@block) => { $crate::chan::__private::Block::Forever };
    (@block (now ())) => { $crate::chan::__private::Block::Now };
    (@block (after ($d:expr))) => { $crate::chan::__private::Block::after($d) };
    (@default) => { ::core::unreachable!("select! without default returned no arm") };
    (@default $body:tt) => { $body };

    // ---- entry ----
    ($($tokens:tt)*) => {
        $crate::select!(@parse [] [] [$($tokens)*])
    };
}
