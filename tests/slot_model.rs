//! An exhaustive interleaving check of the waiter-slot protocol (`src/poll/desc.rs`), as one
//! blocking read (`src/poll/fd.rs`) uses it.
//!
//! # What this is
//!
//! A model, not the real code, built like `tests/park_model.rs`: the read slot (Go's `rg`:
//! EMPTY, READY, or a parked task's pointer), the `closing` flag, the read deadline word and
//! the park token are written again below as one small pure state machine, one step per
//! atomic operation, each naming the function (and step) it models so a change there can be
//! checked against this copy. Functions, not line numbers: line numbers went stale with every
//! edit of the files they pointed into. A depth-first search visits every state reachable by
//! interleaving
//!
//! - one reader doing two read calls in a row the way `NetFd::io` does them: `prepare`
//!   (check closed → check deadline → forget a stale READY), the syscall, and on EAGAIN
//!   `PollDesc::wait`, then the syscall again — as a coroutine (`wait_slot`, parking
//!   through the token and arming a deadline timer), as a coroutine whose previous read
//!   drained the socket (so it waits *before* the first syscall, `fd.rs`'s `drained`), and
//!   as a plain thread (`wait_thread`, parked in poll(2) on the fd and its eventfd, with one
//!   spurious return);
//! - with one or two of: data arriving plus the netpoller's `ready` and unpark (for a thread,
//!   whose fd is never registered, the data alone); a stale edge (`ready` with nothing to
//!   read); `unblock` (close); `set_deadline` to the past, the future or none; the clock
//!   passing a future deadline (after which the coroutine's timer fires); a stray unpark;
//!
//! and checks:
//!
//! - **no lost wake-up**: in every final state (nobody can move) the reader has returned
//!   from both calls, or it is asleep while nothing it waits for has happened (no data, not
//!   closed, deadline not passed) *and* can still be found: the slot holds its pointer and
//!   its token says parked, so a later event or close would wake it. A readiness event that
//!   lands before the park (Go's `pdReady`) is covered: the reader would otherwise sleep with
//!   data in the socket;
//! - **the right answers**: the set of outcomes each line-up can end in is asserted exactly
//!   (for example, a close gives "closed, closed": the call it races may return data or the
//!   closed error, and every call that starts after it fails with the closed error; a passed
//!   deadline gives timeouts), and a call that starts after `closing` was stored must return
//!   the closed error;
//! - **the slot's reference**: the slot owns one `Arc<Task>` while it holds a pointer, and
//!   whoever moves the pointer out owns that reference. In every state the reference count
//!   equals the number of holders (the slot, or a `ready`/`take_waiter` caller not yet done
//!   with it): a reference that nobody holds is a leak, two holders of one reference are a
//!   double drop. The slot never names a reader that has left its wait (its next wait would
//!   panic with "two waiters");
//! - **no double schedule**: a coroutine is put in a run queue only while parked, at most
//!   once per park, and no timer outlives the park that armed it;
//! - **no impossible state**: the `panic!` arms of `begin_park` and `wait` are never met;
//! - **no livelock**: the state graph has no cycle, so every interleaving ends.
//!
//! - **READY is the lock holder's to clear**: `prepare`, step 1 and step 5 clear READY with
//!   a load and a plain store, not a CAS; between the two steps nobody may move the slot out
//!   of READY, or the store would overwrite it — checked in every interleaving.
//!
//! Six deliberately broken variants are checked too, and the search must find each one's
//! bug — the model is able to fail.
//!
//! # What this does not prove
//!
//! - Memory ordering: steps are sequentially consistent here (the real slot, `closing` and
//!   deadline words are SeqCst; the token's orderings are `park.rs`'s business).
//! - That `desc.rs`, `fd.rs` and `park.rs` match this model: the named functions are the
//!   link, kept honest by review.
//! - The write direction, two readers on one slot (the direction lock in `fd.rs` rules that
//!   out and is not modelled), `hung_up`, `register`, std's per-call timeouts, more than one
//!   data arrival, or deadlines as times: a deadline is "none", "past" or "future", and the
//!   clock passes the one future instant once. `check`'s deadline load and clock read are
//!   one step (the clock only moves forward, so that loses no outcome).
//! - The park token, run queues, timer heap, poll(2) and eventfd are modelled by their
//!   contracts (`tests/park_model.rs` checks the token itself): a queued coroutine is resumed
//!   only after it has suspended; its deadline timer runs on its own worker, so it fires only
//!   while the coroutine is suspended and is cancelled when the park ends; poll(2) returns
//!   once the fd is readable, the eventfd is non-zero or the deadline passed.

use std::collections::BTreeSet;

#[path = "util/explore.rs"]
mod explore;
use explore::Report;

/// The read slot (desc.rs's `EMPTY`, `READY`; any other value is a task pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Empty,
    Ready,
    /// The reader's pointer; the slot owns one reference to it.
    Waiter,
}

/// The reader's park token (park.rs's token states; a thread in `std::thread::park` never waits on
/// a slot, so `PARKED_THREAD` is left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tok {
    Empty,
    Notified,
    Parked,
    ParkedPoll,
}

/// A deadline (the word, or the copy the reader took in step 3 of `wait_slot` /
/// `wait_thread`): none, an instant already past when it was set, or the one future instant
/// the clock may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dl {
    None,
    Past,
    Future,
}

fn passed(d: Dl, clock: bool) -> bool {
    d == Dl::Past || (d == Dl::Future && clock)
}

/// How a read call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Out {
    Data,
    Closed,
    Timeout,
}

/// How the reader waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    /// A coroutine: `PollDesc::wait_slot`, parked through the token.
    Coroutine,
    /// A coroutine whose last read drained the socket: the first wait comes before the
    /// syscall (the drained check in `NetFd::io`).
    Drained,
    /// A plain thread: `PollDesc::wait_thread`, parked in poll(2).
    Thread,
}

/// Which `PollDesc::check` the reader is in: they differ in what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Site {
    /// `prepare`'s (`PollDesc::prepare`, called by `NetFd::io`): an error ends the call.
    Prepare,
    /// After publishing (step 3 of `wait_slot` / `wait_thread`): an error skips the park.
    Published,
    /// After taking the slot back (the end of step 5 of `wait_slot` / of
    /// `wait_thread`): an error ends the call.
    Final,
}

/// The reader's program counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum R {
    CheckClosed(Site),
    CheckDeadline(Site),
    /// `prepare`'s `take_ready`: load the slot; not READY → fd.rs's `drained` decision.
    Reset,
    /// `take_ready` saw READY: plain store EMPTY, then the `drained` decision.
    ResetStore,
    Syscall,
    /// `wait_slot` step 1, `take_ready`: load the slot.
    TakeReady,
    /// Step 1 saw READY: plain store EMPTY.
    TakeReadyStore,
    /// Step 2: `Arc::into_raw(me.clone())` and CAS EMPTY → pointer.
    Publish,
    /// `wait_thread`: the CAS met READY; store EMPTY.
    ForgetReady,
    /// Step 3: read the deadline word (what the timer / poll timeout will use).
    ReadDeadline,
    BeginPark,
    ConsumeNotified,
    /// Coroutine: suspended (or suspending) until resumed from a run queue.
    Suspended,
    /// Thread: in poll(2).
    Poll,
    Drain,
    EndPark,
    CancelTimer,
    /// Step 5: swap the slot to EMPTY and see what was there (a thread, `wait_thread`), or
    /// for a coroutine `take_back`'s first step, `take_ready`'s load.
    TakeBack,
    /// `take_back` saw READY: plain store EMPTY.
    TakeBackStore,
    /// `take_back` did not see READY: load again; EMPTY means a kick, nothing to write.
    TakeBackLoad,
    /// `take_back`: swap the slot to EMPTY and see what was there.
    TakeBackSwap,
    Done,
}

impl R {
    /// Between a successful publish and the take-back swap: the only time the slot may
    /// hold the reader's pointer.
    fn published(self) -> bool {
        matches!(
            self,
            R::ReadDeadline
                | R::CheckClosed(Site::Published)
                | R::CheckDeadline(Site::Published)
                | R::BeginPark
                | R::ConsumeNotified
                | R::Suspended
                | R::Poll
                | R::Drain
                | R::EndPark
                | R::CancelTimer
                | R::TakeBack
                | R::TakeBackLoad
                | R::TakeBackSwap
        )
    }
}

const CALLS: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Reader {
    pc: R,
    /// Which read call is running (0-based).
    call: u8,
    results: [Option<Out>; CALLS],
    /// The error step 3's check found (`err` in `wait_slot`).
    err: Option<Out>,
    /// The deadline step 3 read (`deadline` in `wait_slot`).
    local: Dl,
    /// Thread: what poll(2) said about the eventfd.
    woke: bool,
    /// Thread: spurious poll(2) returns still allowed.
    spurious: u8,
    /// fd.rs's `drained` mark.
    drained: bool,
    /// `closing` was already set when the previous call returned.
    closed_before: bool,
}

/// Another actor's program counter. Absent actors are `Done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum A {
    /// Data lands in the socket; `event`: the fd is registered, so epoll reports it.
    Arrive {
        event: bool,
    },
    /// `PollDesc::ready`'s load.
    ReadyLoad,
    /// `PollDesc::ready`'s CAS from what it loaded.
    ReadyCas(Slot),
    /// `PollDesc::unblock`'s store.
    StoreClosing,
    /// `PollDesc::set_deadline`'s store.
    StoreDeadline(Dl),
    /// `PollDesc::take_waiter`'s load.
    TakeLoad,
    /// `PollDesc::take_waiter`'s CAS from what it loaded.
    TakeCas(Slot),
    /// The clock passes the future deadline.
    Tick,
    /// `Task::unpark`'s swap; `owned`: we hold the reference taken from the slot.
    Swap {
        owned: bool,
    },
    /// Acting on what the swap returned (`Task::unpark`'s match).
    Deliver {
        old: Tok,
        owned: bool,
    },
    /// The reference taken from the slot goes out of scope (`set_deadline`, `unblock`;
    /// `Poller::poll` moves it on into the run queue with `unpark_owned`, whose failed
    /// PARKED → NOTIFIED CAS changes nothing, so it acts as the one swap modelled here).
    Drop,
    Done,
}

impl A {
    fn owns_reference(self) -> bool {
        matches!(
            self,
            A::Swap { owned: true } | A::Deliver { owned: true, .. } | A::Drop
        )
    }
}

/// Which variant of the protocol to model: the real one, or one broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `desc.rs` as it is.
    Real,
    /// `ready` stores READY with a plain store and hands back nothing.
    ReadyPlainStore,
    /// `wait` publishes with a plain store instead of CAS from EMPTY (overwriting READY).
    PublishBlindStore,
    /// `wait` skips step 1 (the READY check before publishing).
    NoReadyCheck,
    /// `wait` parks without step 3's re-check of close and deadline.
    NoRecheck,
    /// `take_waiter` loads the pointer, then stores EMPTY (instead of one CAS).
    TakeLoadThenStore,
    /// `take_back` sees its own pointer and stores EMPTY (instead of swapping): the plain
    /// store is only sound for READY, which nobody else moves.
    TakeBackLoadThenStore,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    slot: Slot,
    closing: bool,
    /// The read deadline word.
    dl: Dl,
    /// The clock has passed the future deadline.
    clock: bool,
    /// The socket has data to read.
    data: bool,
    tok: Tok,
    /// Coroutine: it is in a run queue.
    queued: bool,
    /// Thread: the eventfd counter is non-zero.
    eventfd: bool,
    /// Coroutine: a deadline timer armed by the current park, and for which deadline.
    timer: Option<Dl>,
    /// References to the reader created by `wait` (`me.clone()` in `wait_slot` /
    /// `current()` in `wait_thread`) and not yet dropped.
    refs: i8,
    reader: Reader,
    actors: [A; 2],
}

/// One move of one actor, or a broken property.
type Step = explore::Step<State>;

struct Model {
    flavour: Flavour,
    protocol: Protocol,
}

impl Model {
    fn coroutine(&self) -> bool {
        self.flavour != Flavour::Thread
    }

    /// Every move possible from `s`.
    fn steps(&self, s: &State) -> Vec<Step> {
        let mut out = Vec::new();
        out.extend(self.reader_step(s));
        // a spurious poll(2) return (EINTR, a stray eventfd count) is a second possible move
        if s.reader.pc == R::Poll && s.reader.spurious > 0 {
            let mut n = s.clone();
            n.reader.spurious -= 1;
            n.reader.woke = s.eventfd;
            n.reader.pc = R::Drain;
            out.push(Ok(("reader: poll returns spuriously".into(), n)));
        }
        for i in 0..s.actors.len() {
            out.extend(self.actor_step(s, i));
        }
        out.extend(self.timer_step(s));
        out
    }

    /// Where `wait` starts: step 1, or (broken) straight at step 2.
    fn wait_entry(&self) -> R {
        match (self.coroutine(), self.protocol) {
            (false, _) => R::Publish,
            (true, Protocol::NoReadyCheck) => R::Publish,
            (true, _) => R::TakeReady,
        }
    }

    fn reader_step(&self, s: &State) -> Option<Step> {
        let mut n = s.clone();
        let r = &s.reader;
        let what: String = match r.pc {
            R::Done => return None,
            // `PollDesc::check`: closed first
            R::CheckClosed(site) if s.closing => {
                return Some(self.check_failed(n, site, Out::Closed))
            }
            R::CheckClosed(site) => {
                n.reader.pc = R::CheckDeadline(site);
                "reader: check: not closed".to_string()
            }
            // `PollDesc::check`: then the deadlines
            R::CheckDeadline(site) if passed(s.dl, s.clock) => {
                return Some(self.check_failed(n, site, Out::Timeout))
            }
            R::CheckDeadline(site) => {
                n.reader.pc = match site {
                    Site::Prepare => R::Reset,
                    Site::Published => R::BeginPark,
                    // `wait_slot`: loop to step 1; `wait_thread`: Ok, and `NetFd::io` retries
                    Site::Final if self.coroutine() => self.wait_entry(),
                    Site::Final => R::Syscall,
                };
                format!("reader: check ({site:?}): deadline not passed")
            }
            // `PollDesc::prepare` → `take_ready`: load, and only on READY a plain
            // store of EMPTY
            R::Reset if s.slot == Slot::Ready => {
                n.reader.pc = R::ResetStore;
                "reader: prepare loads READY".into()
            }
            R::Reset | R::ResetStore => {
                let was_ready = r.pc == R::ResetStore;
                if was_ready {
                    if s.slot != Slot::Ready {
                        return Some(Err(format!(
                            "the slot left READY under prepare's feet ({:?}): its plain \
                             store of EMPTY would overwrite it",
                            s.slot
                        )));
                    }
                    n.slot = Slot::Empty;
                }
                // `NetFd::io`: skip the syscall if drained and no event came (only
                // coroutines skip: `wait_if_coroutine`)
                let skip = r.drained && !was_ready && self.coroutine();
                n.reader.drained = false;
                n.reader.pc = if skip { self.wait_entry() } else { R::Syscall };
                format!("reader: prepare forgets READY ({was_ready}), skip syscall {skip}")
            }
            // `NetFd::io`: the syscall loop
            R::Syscall if s.data => {
                n.data = false;
                // a short read: `NetFd::io` marks the socket drained
                n.reader.drained = self.flavour == Flavour::Drained;
                return Some(self.finish(n, Out::Data, "reader: syscall reads the data"));
            }
            R::Syscall => {
                n.reader.pc = self.wait_entry();
                "reader: syscall: EAGAIN, wait".into()
            }
            // step 1, `take_ready`: load, and on READY a plain store
            R::TakeReady if s.slot == Slot::Ready => {
                n.reader.pc = R::TakeReadyStore;
                "reader: step 1 loads READY".into()
            }
            R::TakeReady => {
                n.reader.pc = R::Publish;
                "reader: step 1: no READY".into()
            }
            R::TakeReadyStore if s.slot != Slot::Ready => {
                return Some(Err(format!(
                    "the slot left READY under step 1's feet ({:?})",
                    s.slot
                )))
            }
            R::TakeReadyStore => {
                n.slot = Slot::Empty;
                n.reader.pc = R::Syscall;
                "reader: step 1 stores EMPTY, retry the syscall".into()
            }
            R::Publish if self.protocol == Protocol::PublishBlindStore => {
                n.slot = Slot::Waiter;
                n.refs += 1;
                n.reader.pc = R::ReadDeadline;
                "reader: store our pointer (broken)".into()
            }
            // step 2: publish (`wait_slot` / `wait_thread`)
            R::Publish if s.slot == Slot::Empty => {
                n.slot = Slot::Waiter;
                n.refs += 1;
                n.reader.pc = R::ReadDeadline;
                "reader: publish: CAS EMPTY → our pointer".into()
            }
            // step 2 failed: `wait_slot` drops the clone and continues / `wait_thread`
            // drops it and stores EMPTY
            R::Publish if s.slot == Slot::Ready => {
                n.reader.pc = if self.coroutine() {
                    self.wait_entry()
                } else {
                    R::ForgetReady
                };
                "reader: publish: CAS meets READY".into()
            }
            // step 2 met a second waiter: both panic
            R::Publish => {
                return Some(Err(
                    "publish met a pointer: desc.rs panics (two waiters on one direction)".into(),
                ))
            }
            // `wait_thread` found READY: the wait returns Ok, `NetFd::io` retries
            R::ForgetReady => {
                n.slot = Slot::Empty;
                n.reader.pc = R::Syscall;
                "reader: store EMPTY, retry the syscall".into()
            }
            // step 3: read the deadline
            R::ReadDeadline => {
                n.reader.local = s.dl;
                n.reader.pc = if self.protocol == Protocol::NoRecheck {
                    R::BeginPark
                } else {
                    R::CheckClosed(Site::Published)
                };
                format!("reader: read deadline {:?}", s.dl)
            }
            // `park_coroutine` / `park_thread_fd` → `Token::begin_park`; `park_coroutine` then
            // arms the timer
            R::BeginPark if s.tok == Tok::Empty => {
                if self.coroutine() {
                    n.tok = Tok::Parked;
                    n.timer = (r.local != Dl::None).then_some(r.local);
                    n.reader.pc = R::Suspended;
                } else {
                    n.tok = Tok::ParkedPoll;
                    n.reader.pc = R::Poll;
                }
                "reader: begin_park CAS EMPTY → PARKED_*".into()
            }
            // `begin_park`: Err(NOTIFIED)
            R::BeginPark if s.tok == Tok::Notified => {
                n.reader.pc = R::ConsumeNotified;
                "reader: begin_park CAS fails on NOTIFIED".into()
            }
            // `begin_park`: any other state panics
            R::BeginPark => {
                return Some(Err(format!(
                    "begin_park met {:?}: `begin_park` panics",
                    s.tok
                )))
            }
            // `begin_park` stores EMPTY, then the park returns at once
            R::ConsumeNotified => {
                n.tok = Tok::Empty;
                n.reader.pc = R::TakeBack;
                "reader: store EMPTY, park returns at once".into()
            }
            // `suspend_parked`: resumed from the run queue, only after it has suspended
            R::Suspended if s.queued => {
                n.queued = false;
                n.reader.pc = R::EndPark;
                "reader: resumed from the run queue".into()
            }
            // `park_thread_fd`: poll(2) returns once the fd is readable, the eventfd is non-zero
            // or the deadline (the copy step 3 took) passed
            R::Poll if s.data || s.eventfd || passed(r.local, s.clock) => {
                n.reader.woke = s.eventfd;
                n.reader.pc = R::Drain;
                "reader: poll returns".into()
            }
            R::Suspended | R::Poll => return None,
            // `park_thread_fd`: drain the eventfd if it woke us
            R::Drain => {
                if r.woke {
                    n.eventfd = false;
                }
                n.reader.woke = false;
                n.reader.pc = R::EndPark;
                "reader: drain the eventfd if woken".into()
            }
            // `Token::end_park`: swap(EMPTY)
            R::EndPark => {
                n.tok = Tok::Empty;
                n.reader.pc = if self.coroutine() {
                    R::CancelTimer
                } else {
                    R::TakeBack
                };
                "reader: end_park swap → EMPTY".into()
            }
            // `park_coroutine` cancels its timer (a timer that already fired is gone from the heap)
            R::CancelTimer => {
                n.timer = None;
                n.reader.pc = R::TakeBack;
                "reader: cancel the timer".into()
            }
            // step 5, `take_back` (coroutine): `take_ready`'s load, a second load, the swap
            R::TakeBack if self.coroutine() && s.slot == Slot::Ready => {
                n.reader.pc = R::TakeBackStore;
                "reader: take back: load READY".into()
            }
            R::TakeBack if self.coroutine() => {
                n.reader.pc = R::TakeBackLoad;
                format!("reader: take back: load {:?}, not READY", s.slot)
            }
            R::TakeBackStore if s.slot != Slot::Ready => {
                return Some(Err(format!(
                    "the slot left READY under take-back's feet ({:?})",
                    s.slot
                )))
            }
            R::TakeBackStore => {
                n.slot = Slot::Empty;
                return Some(self.taken_back(n, Slot::Ready, "reader: take back: store EMPTY"));
            }
            R::TakeBackLoad if s.slot == Slot::Empty => {
                return Some(self.taken_back(n, Slot::Empty, "reader: take back: load EMPTY"));
            }
            R::TakeBackLoad
                if self.protocol == Protocol::TakeBackLoadThenStore && s.slot == Slot::Waiter =>
            {
                n.reader.pc = R::TakeBackSwap;
                "reader: take back: load our pointer (broken: will store)".into()
            }
            R::TakeBackLoad => {
                n.reader.pc = R::TakeBackSwap;
                format!("reader: take back: load {:?}", s.slot)
            }
            R::TakeBackSwap if self.protocol == Protocol::TakeBackLoadThenStore => {
                n.slot = Slot::Empty;
                let what = "reader: take back: store EMPTY (broken)";
                return Some(self.taken_back(n, Slot::Waiter, what));
            }
            // `take_back`'s swap / `wait_thread`'s swap
            R::TakeBackSwap | R::TakeBack => {
                n.slot = Slot::Empty;
                let what = format!("reader: take back: swap EMPTY, got {:?}", s.slot);
                return Some(self.taken_back(n, s.slot, &what));
            }
        };
        Some(Ok((what, n)))
    }

    /// Step 5 found `got` in the slot (and left it EMPTY, or found it EMPTY).
    fn taken_back(&self, mut n: State, got: Slot, what: &str) -> Step {
        let r = n.reader.clone();
        if got == Slot::Waiter {
            n.refs -= 1; // our own reference back, dropped
        }
        n.reader.err = None;
        if got == Slot::Ready && self.coroutine() {
            // READY returns Ok even after a failed check; fd.rs retries
            n.reader.pc = R::Syscall;
            return Ok((format!("{what}: READY, retry the syscall"), n));
        }
        match r.err {
            Some(e) => self.finish(n, e, what),
            None => {
                n.reader.pc = R::CheckClosed(Site::Final);
                Ok((what.to_string(), n))
            }
        }
    }

    /// `check` found `e`.
    fn check_failed(&self, mut n: State, site: Site, e: Out) -> Step {
        let what = format!("reader: check ({site:?}): {e:?}");
        match site {
            Site::Prepare | Site::Final => self.finish(n, e, &what),
            // step 3 found an error: skip the park, go to step 5 with the error
            Site::Published => {
                n.reader.err = Some(e);
                n.reader.pc = R::TakeBack;
                Ok((what, n))
            }
        }
    }

    /// A read call returns `out`; the next one starts, or the reader is done.
    fn finish(&self, mut n: State, out: Out, what: &str) -> Step {
        let r = &mut n.reader;
        if r.closed_before && out != Out::Closed {
            return Err(format!(
                "call {} started after close but returned {out:?}, not the closed error",
                r.call
            ));
        }
        r.results[r.call as usize] = Some(out);
        r.closed_before = n.closing;
        r.call += 1;
        r.err = None;
        r.pc = if r.call as usize == CALLS {
            R::Done
        } else {
            R::CheckClosed(Site::Prepare)
        };
        Ok((format!("{what}: call returns {out:?}"), n))
    }

    fn actor_step(&self, s: &State, i: usize) -> Option<Step> {
        let mut n = s.clone();
        let next = match s.actors[i] {
            A::Done => return None,
            A::Arrive { event } => {
                n.data = true;
                if event {
                    A::ReadyLoad
                } else {
                    A::Done
                }
            }
            // `PollDesc::ready`: READY already → nothing to do
            A::ReadyLoad if s.slot == Slot::Ready => A::Done,
            A::ReadyLoad => A::ReadyCas(s.slot),
            A::ReadyCas(_) if self.protocol == Protocol::ReadyPlainStore => {
                n.slot = Slot::Ready;
                A::Done
            }
            // `PollDesc::ready`: the CAS moves the slot's reference to us (or retries)
            A::ReadyCas(cur) if s.slot == cur => {
                n.slot = Slot::Ready;
                if cur == Slot::Waiter {
                    A::Swap { owned: true }
                } else {
                    A::Done
                }
            }
            A::ReadyCas(_) => A::ReadyLoad,
            A::StoreClosing => {
                n.closing = true;
                A::TakeLoad
            }
            A::StoreDeadline(d) => {
                n.dl = d;
                A::TakeLoad
            }
            // `PollDesc::take_waiter`: load
            A::TakeLoad if s.slot == Slot::Waiter => A::TakeCas(Slot::Waiter),
            A::TakeLoad => A::Done,
            A::TakeCas(_) if self.protocol == Protocol::TakeLoadThenStore => {
                n.slot = Slot::Empty;
                A::Swap { owned: true }
            }
            // `PollDesc::take_waiter`: only a successful CAS owns the reference
            A::TakeCas(cur) if s.slot == cur => {
                n.slot = Slot::Empty;
                A::Swap { owned: true }
            }
            A::TakeCas(_) => A::Done,
            A::Tick => {
                n.clock = true;
                A::Done
            }
            // `Task::unpark`: swap(NOTIFIED)
            A::Swap { owned } => {
                n.tok = Tok::Notified;
                A::Deliver { old: s.tok, owned }
            }
            A::Deliver { old, owned } => {
                if let Err(e) = deliver(&mut n, old) {
                    return Some(Err(format!("actor {i}: {e}")));
                }
                if owned {
                    A::Drop
                } else {
                    A::Done
                }
            }
            A::Drop => {
                n.refs -= 1;
                A::Done
            }
        };
        n.actors[i] = next;
        Some(Ok((format!("actor {i}: {:?} → {next:?}", s.actors[i]), n)))
    }

    /// `park_coroutine`'s timer, run by the coroutine's own worker (`time::callback`): it fires
    /// only while the coroutine is suspended, once its deadline has passed.
    fn timer_step(&self, s: &State) -> Option<Step> {
        let d = s.timer?;
        if s.reader.pc != R::Suspended || !passed(d, s.clock) {
            return None;
        }
        let mut n = s.clone();
        n.timer = None;
        n.tok = Tok::Notified;
        Some(
            deliver(&mut n, s.tok)
                .map(|()| (format!("timer fires: unpark, swap got {:?}", s.tok), n))
                .map_err(|e| format!("timer: {e}")),
        )
    }
}

/// `Task::unpark`: act on the token an unpark's swap returned.
fn deliver(n: &mut State, old: Tok) -> Result<(), String> {
    match old {
        // nothing: the next park returns at once / someone else delivers
        Tok::Empty | Tok::Notified => {}
        // PARKED → `worker::schedule`
        Tok::Parked => {
            if n.queued || n.reader.pc != R::Suspended {
                return Err(format!(
                    "double schedule: the coroutine is scheduled while {:?} (queued {})",
                    n.reader.pc, n.queued
                ));
            }
            n.queued = true;
        }
        // PARKED_POLL → `eventfd_signal`
        Tok::ParkedPoll => n.eventfd = true,
    }
    Ok(())
}

/// The properties every reachable state must have.
fn invariants(s: &State) -> Result<(), String> {
    let holders = (s.slot == Slot::Waiter) as i8
        + s.actors.iter().filter(|a| a.owns_reference()).count() as i8;
    if s.refs > holders {
        return Err(format!(
            "leak: {} reference(s) to the reader, {holders} holder(s)",
            s.refs
        ));
    }
    if s.refs < holders {
        return Err(format!(
            "double drop: {holders} holder(s) of {} reference(s)",
            s.refs
        ));
    }
    if s.slot == Slot::Waiter && !s.reader.pc.published() {
        return Err(format!(
            "the slot names the reader while it is at {:?}: its next wait panics (two waiters)",
            s.reader.pc
        ));
    }
    if s.queued && s.reader.pc != R::Suspended {
        return Err(format!("double schedule: queued while {:?}", s.reader.pc));
    }
    if s.timer.is_some() && !matches!(s.reader.pc, R::Suspended | R::EndPark | R::CancelTimer) {
        return Err(format!("a timer outlives its park ({:?})", s.reader.pc));
    }
    Ok(())
}

/// A final state: the reader is done, or asleep for a good reason where it can be found.
/// Returns the outcome ("data, closed", "data, blocked", ...).
fn final_state(s: &State) -> Result<String, String> {
    let r = &s.reader;
    let mut outcome: Vec<String> = r
        .results
        .iter()
        .flatten()
        .map(|o| format!("{o:?}").to_lowercase())
        .collect();
    if r.pc != R::Done {
        let why = if s.data {
            Some("data arrived")
        } else if s.closing {
            Some("the fd is closed")
        } else if passed(s.dl, s.clock) {
            Some("the deadline passed")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(format!(
                "lost wake-up: {why}, every actor is done, the reader sleeps at {:?} \
                 (slot {:?}, token {:?})",
                r.pc, s.slot, s.tok
            ));
        }
        let parked = if r.pc == R::Suspended {
            Tok::Parked
        } else {
            Tok::ParkedPoll
        };
        if s.slot != Slot::Waiter || s.tok != parked {
            return Err(format!(
                "lost wake-up: the reader sleeps at {:?} where no event can find it \
                 (slot {:?}, token {:?})",
                r.pc, s.slot, s.tok
            ));
        }
        outcome.push("blocked".into());
    }
    Ok(outcome.join(", "))
}

/// What races the reader.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// Data arrives; a registered fd (a coroutine's) also gets `ready` and the unpark.
    Data,
    /// A stale edge: `ready` and its unpark, with nothing to read.
    Edge,
    /// `unblock`.
    Close,
    /// `set_deadline` and the kick of a parked waiter.
    SetDeadline(Dl),
    /// The clock passes the future deadline.
    Tick,
    /// An unpark from elsewhere (a stale timer, a channel): a spurious wake.
    Stray,
}

struct Lineup {
    /// The read deadline word before the first call.
    deadline: Dl,
    who: &'static [Who],
    /// Every way the two calls can end, for every flavour.
    outcomes: &'static [&'static str],
}

static LINEUPS: [Lineup; 17] = [
    Lineup {
        deadline: Dl::None,
        who: &[Who::Data],
        outcomes: &["data, blocked"],
    },
    // an edge that arrives before the park, stale or fresh, is never lost nor misread
    Lineup {
        deadline: Dl::None,
        who: &[Who::Data, Who::Edge],
        outcomes: &["data, blocked"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Edge],
        outcomes: &["blocked"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Data, Who::Stray],
        outcomes: &["data, blocked"],
    },
    // close wakes the waiter, and every later call fails with the closed error
    Lineup {
        deadline: Dl::None,
        who: &[Who::Close],
        outcomes: &["closed, closed"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Data, Who::Close],
        outcomes: &["closed, closed", "data, closed"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Edge, Who::Close],
        outcomes: &["closed, closed"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Close, Who::Stray],
        outcomes: &["closed, closed"],
    },
    // a deadline set in the past hits the call already blocked
    Lineup {
        deadline: Dl::None,
        who: &[Who::SetDeadline(Dl::Past)],
        outcomes: &["timeout, timeout"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Data, Who::SetDeadline(Dl::Past)],
        outcomes: &["data, timeout", "timeout, timeout"],
    },
    Lineup {
        deadline: Dl::None,
        who: &[Who::Close, Who::SetDeadline(Dl::Past)],
        outcomes: &["closed, closed", "timeout, closed", "timeout, timeout"],
    },
    // a future deadline expires: the coroutine's timer or the thread's poll timeout
    Lineup {
        deadline: Dl::Future,
        who: &[Who::Tick],
        outcomes: &["timeout, timeout"],
    },
    Lineup {
        deadline: Dl::Future,
        who: &[Who::Tick, Who::Data],
        outcomes: &["data, timeout", "timeout, timeout"],
    },
    Lineup {
        deadline: Dl::Future,
        who: &[Who::Tick, Who::Close],
        outcomes: &["closed, closed", "timeout, closed", "timeout, timeout"],
    },
    Lineup {
        deadline: Dl::Future,
        who: &[Who::Tick, Who::Stray],
        outcomes: &["timeout, timeout"],
    },
    // a future deadline set on a call already blocked applies to it
    Lineup {
        deadline: Dl::None,
        who: &[Who::SetDeadline(Dl::Future), Who::Tick],
        outcomes: &["timeout, timeout"],
    },
    // lifting a deadline as it expires: a timeout, or a wait with no deadline
    Lineup {
        deadline: Dl::Future,
        who: &[Who::SetDeadline(Dl::None), Who::Tick],
        outcomes: &["blocked", "timeout, blocked", "timeout, timeout"],
    },
];

const FLAVOURS: [Flavour; 3] = [Flavour::Coroutine, Flavour::Drained, Flavour::Thread];

fn start(flavour: Flavour, deadline: Dl, who: &[Who]) -> State {
    let mut actors = [A::Done; 2];
    for (a, w) in actors.iter_mut().zip(who) {
        *a = match w {
            Who::Data => A::Arrive {
                event: flavour != Flavour::Thread,
            },
            Who::Edge => A::ReadyLoad,
            Who::Close => A::StoreClosing,
            Who::SetDeadline(d) => A::StoreDeadline(*d),
            Who::Tick => A::Tick,
            Who::Stray => A::Swap { owned: false },
        };
    }
    State {
        slot: Slot::Empty,
        closing: false,
        dl: deadline,
        clock: false,
        data: false,
        tok: Tok::Empty,
        queued: false,
        eventfd: false,
        timer: None,
        refs: 0,
        reader: Reader {
            pc: R::CheckClosed(Site::Prepare),
            call: 0,
            results: [None; CALLS],
            err: None,
            local: Dl::None,
            woke: false,
            spurious: if flavour == Flavour::Thread { 1 } else { 0 },
            drained: flavour == Flavour::Drained,
            closed_before: false,
        },
        actors,
    }
}

fn check(protocol: Protocol, flavour: Flavour, lineup: &Lineup) -> Result<Report, String> {
    let model = Model { flavour, protocol };
    explore::explore(
        start(flavour, lineup.deadline, lineup.who),
        |s| model.steps(s),
        invariants,
        final_state,
    )
}

#[test]
fn the_real_protocol_loses_no_wake_up_and_no_reference() {
    let (mut states, mut interleavings) = (Vec::new(), Vec::new());
    for flavour in FLAVOURS {
        for lineup in &LINEUPS {
            let name = format!(
                "{flavour:?}, deadline {:?}, {:?}",
                lineup.deadline, lineup.who
            );
            let r =
                check(Protocol::Real, flavour, lineup).unwrap_or_else(|e| panic!("{name}: {e}"));
            eprintln!(
                "{name}: {} states, {} final, {} interleavings, outcomes {:?}",
                r.states, r.finals, r.interleavings, r.outcomes
            );
            let want: BTreeSet<String> = lineup.outcomes.iter().map(|s| s.to_string()).collect();
            assert_eq!(r.outcomes, want, "{name}");
            // the search really ran: the actors interleave in more than one way
            assert!(r.interleavings > 1 && r.finals >= 1, "{name}: {r:?}");
            states.push(r.states);
            interleavings.push(r.interleavings);
        }
    }
    eprintln!(
        "{} configurations: {}–{} states ({} in all), {}–{} interleavings ({} in all)",
        states.len(),
        states.iter().min().unwrap(),
        states.iter().max().unwrap(),
        states.iter().sum::<usize>(),
        interleavings.iter().min().unwrap(),
        interleavings.iter().max().unwrap(),
        interleavings.iter().sum::<u128>()
    );
}

#[test]
fn an_edge_before_the_park_is_taken_by_step_1() {
    // One scripted interleaving, to show the steps read as Go's pdReady: the syscall gets
    // EAGAIN, then the data and its event land before the reader publishes itself; step 1
    // finds READY and the reader retries the syscall instead of sleeping.
    let model = Model {
        flavour: Flavour::Coroutine,
        protocol: Protocol::Real,
    };
    let mut s = start(Flavour::Coroutine, Dl::None, &[Who::Data]);
    let mut pcs = Vec::new();
    for _ in 0..4 {
        s = model.reader_step(&s).unwrap().unwrap().1;
        pcs.push(s.reader.pc);
    }
    // (checks, prepare, EAGAIN)
    assert_eq!(pcs.last(), Some(&R::TakeReady));
    for _ in 0..3 {
        s = model.actor_step(&s, 0).unwrap().unwrap().1; // arrive, ready's load, its CAS
    }
    assert_eq!((s.slot, s.actors[0]), (Slot::Ready, A::Done));
    s = model.reader_step(&s).unwrap().unwrap().1; // step 1 loads READY ...
    assert_eq!((s.reader.pc, s.slot), (R::TakeReadyStore, Slot::Ready));
    s = model.reader_step(&s).unwrap().unwrap().1; // ... and stores EMPTY
    assert_eq!((s.reader.pc, s.slot), (R::Syscall, Slot::Empty));
    s = model.reader_step(&s).unwrap().unwrap().1;
    assert_eq!(s.reader.results[0], Some(Out::Data));
}

/// The model can fail: each broken variant is caught, with the failure it should have.
#[test]
fn broken_variants_of_the_protocol_are_caught() {
    let lineup = |i: usize| &LINEUPS[i];
    let cases: [(Protocol, Flavour, &Lineup, &str); 6] = [
        // ready overwrites the parked reader's pointer: its reference and its wake are lost
        (
            Protocol::ReadyPlainStore,
            Flavour::Coroutine,
            lineup(0),
            "leak",
        ),
        // the edge that lands between step 1 and the publish is overwritten
        (
            Protocol::PublishBlindStore,
            Flavour::Coroutine,
            lineup(0),
            "lost wake-up: data arrived",
        ),
        // a stale READY makes the publish CAS fail forever
        (
            Protocol::NoReadyCheck,
            Flavour::Coroutine,
            lineup(2),
            "livelock",
        ),
        // close lands between prepare's check and the publish, and finds nobody to wake
        (
            Protocol::NoRecheck,
            Flavour::Coroutine,
            lineup(4),
            "lost wake-up: the fd is closed",
        ),
        // close and ready both take the one reference
        (
            Protocol::TakeLoadThenStore,
            Flavour::Coroutine,
            lineup(5),
            "double drop",
        ),
        // a timed-out waiter stores EMPTY over its pointer just as ready takes it
        (
            Protocol::TakeBackLoadThenStore,
            Flavour::Coroutine,
            lineup(12),
            "double drop",
        ),
    ];
    for (protocol, flavour, lineup, want) in cases {
        match check(protocol, flavour, lineup) {
            Ok(r) => panic!("{protocol:?} on {flavour:?} passed the model: {r:?}"),
            Err(e) => {
                // the trace shows what each bug looks like (`--nocapture`)
                eprintln!("{protocol:?}: {e}");
                assert!(e.contains(want), "{protocol:?}: wanted {want:?}, got {e}")
            }
        }
    }
}
