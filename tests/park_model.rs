//! An exhaustive interleaving check of the park token protocol (`src/runtime/park.rs`).
//!
//! # What this is
//!
//! A model, not the real code: the token's state machine is written again below as a small
//! pure state machine, one step per atomic operation of `park.rs`, each quoted with the
//! function it copies (`Token`'s methods hold every move of the word) so a change there can
//! be checked against this copy. (The loom models in `src/runtime/park/loom_tests.rs` run
//! those methods themselves, orderings included.) A depth-first search then
//! visits every state reachable by interleaving one parker with one or two unparkers, for each
//! of the three ways a task sleeps (coroutine `PARKED`, thread `PARKED_THREAD`, thread in
//! poll(2) `PARKED_POLL`), and checks:
//!
//! - **no lost wake-up**: in every final state (nobody can move) the parker has seen the
//!   condition its waker set and returned; it is never left asleep with every unparker done;
//! - **no double schedule**: a coroutine is put in a run queue only while it is parked, and at
//!   most once per park — the coroutine version of "unpark swaps, so exactly one unparker sees
//!   PARKED";
//! - **no impossible state**: `begin_park` never meets a state its `panic!` arm rejects;
//! - **no livelock**: the state graph has no cycle, so every interleaving ends.
//!
//! A *waker* sets the parker's condition, then unparks (a channel send, an fd event, a close).
//! A *timer* only unparks, at any moment — also after the park it was armed for has ended —
//! which is how a deadline's stale timer or any spurious unpark looks to the token. The
//! parker is the caller's loop: check the condition, park, repeat. Thread and poll parkers
//! may also return from `std::thread::park` / poll(2) once spuriously (fd ready, timeout,
//! a stray `Thread::unpark`). An *owned waker* is a waker that unparks with
//! `Task::unpark_owned` (a compare-exchange PARKED → NOTIFIED that falls back to `unpark`),
//! as a channel hand-off does.
//!
//! Four deliberately broken variants of the protocol are checked too, and the search must
//! find each one's bug — the model is able to fail.
//!
//! # What this does not prove
//!
//! - Memory ordering: steps are sequentially consistent here; whether `AcqRel`/`Acquire`/
//!   `Release` in `park.rs` suffice is what the loom models check.
//! - That `park.rs` matches this model: the quoted names are the link, kept honest by
//!   review.
//! - The run queues, `worker::suspend_parked`, `std::thread::park` and eventfd are modelled
//!   by their contracts (a queued coroutine is resumed only after it has suspended; park
//!   returns after an unpark or spuriously; poll returns once the eventfd counter is
//!   non-zero, a read empties it), not by their code.
//! - More than two unparkers, more than one spurious return, or deadlines as times.

#[path = "util/explore.rs"]
mod explore;
use explore::Report;

/// The token word (park.rs, its constants `EMPTY`, `NOTIFIED`, `PARKED`, `PARKED_THREAD`,
/// `PARKED_POLL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tok {
    Empty,
    Notified,
    Parked,
    ParkedThread,
    ParkedPoll,
}

/// How the parker sleeps: which `PARKED_*` it stores and how it is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Flavour {
    /// `park_coroutine`: suspend, resumed when scheduled.
    Coroutine,
    /// `park_thread`: `std::thread::park` in a loop.
    Thread,
    /// `park_thread_fd`: poll(2) on the fd and the thread's eventfd.
    Poll,
}

impl Flavour {
    fn parked(self) -> Tok {
        match self {
            Flavour::Coroutine => Tok::Parked,
            Flavour::Thread => Tok::ParkedThread,
            Flavour::Poll => Tok::ParkedPoll,
        }
    }
}

/// The parker's program counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum P {
    /// The caller's loop: condition true → return, else park.
    Check,
    /// `begin_park`'s compare-exchange.
    BeginPark,
    /// `begin_park` found NOTIFIED and consumes it.
    ConsumeNotified,
    /// Coroutine: suspended (or suspending) until the worker resumes it from a run queue.
    Suspended,
    /// Thread: in `std::thread::park`.
    ThreadPark,
    /// Thread: re-reading the token after `std::thread::park` returned.
    ThreadRecheck,
    /// Poll: in poll(2).
    Poll,
    /// Poll: draining the eventfd if poll said it was readable.
    Drain,
    /// `end_park`'s swap.
    EndPark,
    /// Returned to the caller with the condition true.
    Done,
}

/// An unparker's program counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum U {
    /// A waker sets the parker's condition first.
    SetCond,
    /// The same, for a waker that then unparks with `unpark_owned` (channels do).
    SetCondOwned,
    /// `unpark_owned`'s compare-exchange PARKED → NOTIFIED; on failure it calls `unpark`.
    Cas,
    /// Broken variant of `unpark_owned`: the store after a separate load saw this.
    CasStore(Tok),
    /// `unpark`'s swap (or, broken variant, its load).
    Swap,
    /// Broken variant: the store after a separate load.
    StoreNotified(Tok),
    /// Acting on the state the swap returned.
    Deliver(Tok),
    Done,
}

/// Which variant of the protocol to model: the real one, or one broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `park.rs` as it is.
    Real,
    /// unpark loads the token, then stores NOTIFIED (instead of one swap).
    UnparkLoadThenStore,
    /// begin_park stores PARKED blindly (instead of compare-exchange from EMPTY).
    BlindBeginPark,
    /// the parker skips `end_park` after waking.
    NoEndPark,
    /// unpark_owned loads the token and, if it saw PARKED, stores NOTIFIED (instead of one
    /// compare-exchange).
    OwnedLoadThenStore,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    tok: Tok,
    /// The condition the parker waits for; wakers set it before unparking.
    cond: bool,
    parker: P,
    /// Coroutine: it is in a run queue.
    queued: bool,
    /// Thread: `std::thread::park`'s own permit (a bool: unparks do not add up).
    permit: bool,
    /// Poll: the eventfd counter (only zero / non-zero matters).
    eventfd: bool,
    /// Poll: what poll(2) said about the eventfd.
    woke: bool,
    /// Spurious returns from `std::thread::park` / poll(2) still allowed.
    spurious: u8,
    unparkers: Vec<U>,
}

/// One move of one actor, or a broken invariant.
type Step = explore::Step<State>;

struct Model {
    flavour: Flavour,
    protocol: Protocol,
}

impl Model {
    /// Every move possible from `s`.
    fn steps(&self, s: &State) -> Vec<Step> {
        let mut out = Vec::new();
        if let Some(step) = self.parker_step(s) {
            out.push(step);
        }
        for i in 0..s.unparkers.len() {
            if let Some(step) = self.unparker_step(s, i) {
                out.push(step);
            }
        }
        // a spurious return is a second possible move of a sleeping thread
        if s.spurious > 0 && matches!(s.parker, P::ThreadPark | P::Poll) {
            let mut n = s.clone();
            n.spurious -= 1;
            if s.parker == P::ThreadPark {
                n.parker = P::ThreadRecheck;
            } else {
                n.woke = s.eventfd;
                n.parker = P::Drain;
            }
            out.push(Ok(("parker: spurious return".into(), n)));
        }
        out
    }

    fn parker_step(&self, s: &State) -> Option<Step> {
        let mut n = s.clone();
        let parked = self.flavour.parked();
        let what = match s.parker {
            P::Check if s.cond => {
                n.parker = P::Done;
                "parker: condition true, return"
            }
            P::Check => {
                n.parker = P::BeginPark;
                "parker: condition false, park"
            }
            P::BeginPark if self.protocol == Protocol::BlindBeginPark => {
                n.tok = parked;
                n.parker = self.asleep();
                "parker: store PARKED (broken)"
            }
            // `Token::begin_park`: compare_exchange(EMPTY, parked) → Ok → sleep
            P::BeginPark if s.tok == Tok::Empty => {
                n.tok = parked;
                n.parker = self.asleep();
                "parker: begin_park CAS EMPTY → PARKED_*"
            }
            // `Token::begin_park`: Err(NOTIFIED) → consume it, return false
            P::BeginPark if s.tok == Tok::Notified => {
                n.parker = P::ConsumeNotified;
                "parker: begin_park CAS fails on NOTIFIED"
            }
            // `Token::begin_park`: Err(s) => panic!("park token in unexpected state {s} at park")
            P::BeginPark => {
                return Some(Err(format!(
                    "begin_park met {:?}: `begin_park` panics",
                    s.tok
                )))
            }
            // `Token::begin_park`: swap(EMPTY) (a store, in this SC model); `begin_park` returns false and the park returns (the
            // caller loops)
            P::ConsumeNotified => {
                n.tok = Tok::Empty;
                n.parker = P::Check;
                "parker: store EMPTY, park returns at once"
            }
            // `park_coroutine` → `suspend_parked`; worker.rs `resume` takes it from a run queue,
            // only after it has suspended (its owner worker is the thread running it)
            P::Suspended if s.queued => {
                n.queued = false;
                n.parker = P::EndPark;
                "parker: resumed from the run queue"
            }
            // `park_thread`: std::thread::park returns once its permit is set
            P::ThreadPark if s.permit => {
                n.permit = false;
                n.parker = P::ThreadRecheck;
                "parker: thread::park returns (permit)"
            }
            // `park_thread`: `if token != PARKED_THREAD { break }`
            P::ThreadRecheck if s.tok != Tok::ParkedThread => {
                n.parker = P::EndPark;
                "parker: token no longer PARKED_THREAD, stop"
            }
            P::ThreadRecheck => {
                n.parker = P::ThreadPark;
                "parker: token still PARKED_THREAD, park again"
            }
            // `park_thread_fd`: poll(2) returns once the eventfd is readable
            P::Poll if s.eventfd => {
                n.woke = true;
                n.parker = P::Drain;
                "parker: poll returns (eventfd readable)"
            }
            // `park_thread_fd`: `if woke { eventfd_drain }`
            P::Drain => {
                if s.woke {
                    n.eventfd = false;
                }
                n.woke = false;
                n.parker = P::EndPark;
                "parker: drain the eventfd if woken"
            }
            P::EndPark if self.protocol == Protocol::NoEndPark => {
                n.parker = P::Check;
                "parker: return without end_park (broken)"
            }
            // `Token::end_park`: swap(EMPTY) whatever happened meanwhile
            P::EndPark => {
                n.tok = Tok::Empty;
                n.parker = P::Check;
                "parker: end_park swap → EMPTY"
            }
            P::Suspended | P::ThreadPark | P::Poll | P::Done => return None,
        };
        Some(Ok((what.into(), n)))
    }

    fn asleep(&self) -> P {
        match self.flavour {
            Flavour::Coroutine => P::Suspended,
            Flavour::Thread => P::ThreadPark,
            Flavour::Poll => P::Poll,
        }
    }

    fn unparker_step(&self, s: &State, i: usize) -> Option<Step> {
        let mut n = s.clone();
        let what = match s.unparkers[i] {
            U::SetCond => {
                n.cond = true;
                n.unparkers[i] = U::Swap;
                format!("unparker {i}: set the condition")
            }
            U::SetCondOwned => {
                n.cond = true;
                n.unparkers[i] = U::Cas;
                format!("unparker {i}: set the condition (then unpark_owned)")
            }
            // `Token::notify_parked`, from `unpark_owned_at`: compare_exchange(PARKED, NOTIFIED); success
            // schedules exactly as unpark's PARKED arm does, failure falls back to unpark()
            U::Cas if self.protocol == Protocol::OwnedLoadThenStore => {
                n.unparkers[i] = U::CasStore(s.tok);
                format!("unparker {i}: load {:?} (broken unpark_owned)", s.tok)
            }
            U::CasStore(seen) => {
                if seen == Tok::Parked {
                    n.tok = Tok::Notified;
                    n.unparkers[i] = U::Deliver(Tok::Parked);
                } else {
                    n.unparkers[i] = U::Swap;
                }
                format!("unparker {i}: act on the loaded {seen:?} (broken)")
            }
            U::Cas => {
                if s.tok == Tok::Parked {
                    n.tok = Tok::Notified;
                    n.unparkers[i] = U::Deliver(Tok::Parked);
                    format!("unparker {i}: cas PARKED → NOTIFIED")
                } else {
                    n.unparkers[i] = U::Swap;
                    format!(
                        "unparker {i}: cas fails on {:?}, falls back to unpark",
                        s.tok
                    )
                }
            }
            U::Swap if self.protocol == Protocol::UnparkLoadThenStore => {
                n.unparkers[i] = U::StoreNotified(s.tok);
                format!("unparker {i}: load {:?} (broken)", s.tok)
            }
            U::StoreNotified(old) => {
                n.tok = Tok::Notified;
                n.unparkers[i] = U::Deliver(old);
                format!("unparker {i}: store NOTIFIED (broken)")
            }
            // `Token::notify`, from `Task::unpark`: swap(NOTIFIED)
            U::Swap => {
                n.tok = Tok::Notified;
                n.unparkers[i] = U::Deliver(s.tok);
                format!("unparker {i}: swap NOTIFIED, got {:?}", s.tok)
            }
            U::Deliver(old) => {
                n.unparkers[i] = U::Done;
                match old {
                    // `Task::unpark`: EMPTY → nothing (the next park returns at once);
                    // NOTIFIED → nothing
                    Tok::Empty | Tok::Notified => {}
                    // `Task::unpark`: PARKED → worker::schedule
                    Tok::Parked => {
                        if s.queued || s.parker != P::Suspended {
                            return Some(Err(format!(
                                "double schedule: unparker {i} schedules the coroutine while \
                                 it is {:?}{}",
                                s.parker,
                                if s.queued { " and already queued" } else { "" }
                            )));
                        }
                        n.queued = true;
                    }
                    // `Task::unpark`: PARKED_THREAD → Thread::unpark
                    Tok::ParkedThread => n.permit = true,
                    // `Task::unpark`: PARKED_POLL → eventfd_signal (the eventfd always exists
                    // here: park_thread_fd creates it before storing PARKED_POLL, :176-186)
                    Tok::ParkedPoll => n.eventfd = true,
                }
                format!("unparker {i}: deliver for {old:?}")
            }
            U::Done => return None,
        };
        Some(Ok((what, n)))
    }
}

/// A final state (no step left) must have the parker awake and nothing queued for it.
fn final_state(s: &State) -> Result<String, String> {
    if s.parker != P::Done || s.queued {
        return Err(format!(
            "lost wake-up: every unparker is done, the parker is {:?} \
             (token {:?}, queued {}, condition {})",
            s.parker, s.tok, s.queued, s.cond
        ));
    }
    Ok(String::new())
}

#[derive(Clone, Copy, Debug)]
enum Who {
    /// Sets the parker's condition, then unparks.
    Waker,
    /// Sets the parker's condition, then unparks with `unpark_owned` (a channel hand-off).
    OwnedWaker,
    /// Only unparks, at any moment (a deadline's timer, a stale or spurious unpark).
    Timer,
}

/// The unparker line-ups checked: the parker always has one waker to wait for.
const LINEUPS: [&[Who]; 8] = [
    &[Who::Waker],
    &[Who::Waker, Who::Waker],
    &[Who::Waker, Who::Timer],
    &[Who::Timer, Who::Waker],
    &[Who::OwnedWaker],
    &[Who::OwnedWaker, Who::Waker],
    &[Who::OwnedWaker, Who::Timer],
    &[Who::Timer, Who::OwnedWaker],
];

const FLAVOURS: [Flavour; 3] = [Flavour::Coroutine, Flavour::Thread, Flavour::Poll];

fn start(flavour: Flavour, who: &[Who]) -> State {
    State {
        tok: Tok::Empty,
        cond: false,
        parker: P::Check,
        queued: false,
        permit: false,
        eventfd: false,
        woke: false,
        // coroutines are only ever resumed by a schedule; timers model their spurious wakes
        spurious: if flavour == Flavour::Coroutine { 0 } else { 1 },
        unparkers: who
            .iter()
            .map(|w| match w {
                Who::Waker => U::SetCond,
                Who::OwnedWaker => U::SetCondOwned,
                Who::Timer => U::Swap,
            })
            .collect(),
    }
}

fn check(protocol: Protocol, flavour: Flavour, who: &[Who]) -> Result<Report, String> {
    let model = Model { flavour, protocol };
    explore::explore(
        start(flavour, who),
        |s| model.steps(s),
        |_| Ok(()),
        final_state,
    )
}

#[test]
fn the_real_protocol_loses_no_wake_up_and_never_schedules_twice() {
    for flavour in FLAVOURS {
        for who in LINEUPS {
            let r = check(Protocol::Real, flavour, who)
                .unwrap_or_else(|e| panic!("{flavour:?} with {who:?}: {e}"));
            eprintln!(
                "{flavour:?} with {who:?}: {} states, {} final, {} interleavings",
                r.states, r.finals, r.interleavings
            );
            // the search really ran: two actors interleave in more than one way
            assert!(r.interleavings > 1 && r.finals >= 1, "{r:?}");
        }
    }
}

#[test]
fn a_pending_unpark_makes_the_next_park_return_at_once() {
    // One scripted interleaving, to show the steps read as park.rs's rule 2: an unpark that
    // lands before the park leaves NOTIFIED behind, and the park returns without sleeping.
    let model = Model {
        flavour: Flavour::Coroutine,
        protocol: Protocol::Real,
    };
    let mut s = start(Flavour::Coroutine, &[Who::Timer]);
    for _ in 0..2 {
        s = model.unparker_step(&s, 0).unwrap().unwrap().1; // swap, then deliver
    }
    assert_eq!((s.tok, s.unparkers[0]), (Tok::Notified, U::Done));
    let mut path = Vec::new();
    for _ in 0..3 {
        s = model.parker_step(&s).unwrap().unwrap().1;
        path.push(s.parker);
    }
    assert_eq!(path, [P::BeginPark, P::ConsumeNotified, P::Check]);
    assert_eq!(s.tok, Tok::Empty);
}

/// The model can fail: each broken variant is caught, with the failure it should have.
#[test]
fn broken_variants_of_the_protocol_are_caught() {
    let cases: [(Protocol, Flavour, &[Who], &str); 4] = [
        // unpark_owned and unpark both see PARKED: both schedule the coroutine
        (
            Protocol::OwnedLoadThenStore,
            Flavour::Coroutine,
            &[Who::OwnedWaker, Who::Waker],
            "double schedule",
        ),
        // two unparkers both see PARKED: both schedule the coroutine
        (
            Protocol::UnparkLoadThenStore,
            Flavour::Coroutine,
            &[Who::Waker, Who::Timer],
            "double schedule",
        ),
        // the park overwrites a pending NOTIFIED and sleeps through its only wake-up
        (
            Protocol::BlindBeginPark,
            Flavour::Coroutine,
            &[Who::Waker],
            "lost wake-up",
        ),
        // a spurious poll return leaves PARKED_POLL behind; the next park meets it
        (
            Protocol::NoEndPark,
            Flavour::Poll,
            &[Who::Waker],
            "`begin_park` panics",
        ),
    ];
    for (protocol, flavour, who, want) in cases {
        match check(protocol, flavour, who) {
            Ok(r) => panic!("{protocol:?} on {flavour:?} passed the model: {r:?}"),
            Err(e) => {
                // the trace shows what each bug looks like (`--nocapture`)
                eprintln!("{protocol:?}: {e}");
                assert!(e.contains(want), "{protocol:?}: wanted {want:?}, got {e}")
            }
        }
    }
}
