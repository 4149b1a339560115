//! loom models of the park token: the real [`Token`] methods, on loom's atomics, explored
//! under its C11 model (the interleavings, and the values a load may see), within
//! `loom_builder`'s preemption bound and loom's own limits (it treats SeqCst as AcqRel and
//! skips load buffering; neither bears on the token, which has no SeqCst access).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//!
//! What is real and what is modelled:
//! - Real: every move of the token word — `begin_park`, `end_park`, `still_parked`,
//!   `notify` (`Task::unpark`'s swap) and `notify_parked` (`Task::unpark_owned_at`'s CAS) —
//!   are the runtime's own methods, orderings included.
//! - Modelled: what the unparker that got a `PARKED_*` back does with it. `Task::unpark`'s
//!   match arms are repeated in [`unpark`] and [`unpark_owned`]; scheduling a coroutine is a
//!   counted delivery (Release add) that the parker waits for (Acquire load), as a run
//!   queue push and the owner worker's pop synchronise; `Thread::unpark` is a loom `Notify`,
//!   which synchronises like std's park/unpark and, like it, may wake spuriously.
//! - The parker is what every caller of `park` is: a loop that checks its own conditions,
//!   parks, and checks again. Wakers set a condition with `Relaxed` and then unpark: weaker
//!   than any real caller (channels and `sync` publish with Release and read with Acquire),
//!   so it is the token's orderings alone that must carry the condition to the parker.
//!
//! Checked in every execution: the parker ends having seen every condition (a lost wake-up
//! leaves it parked with everyone else done, which loom reports as a deadlock), and each
//! park is delivered exactly once (no double schedule; the delivered count equals the
//! number of parks that slept).
//!
//! The models can fail (checked, each test run on its own; a failing loom test aborts the
//! whole test binary, so run together only the first failure shows):
//! - `begin_park` consuming NOTIFIED with `store(EMPTY, Relaxed)` instead of the Acquire swap
//!   (the lost wake-up in docs/reliability.md's audit table): all six tests fail. The four
//!   coroutine ones end in loom's "deadlock" (the parker asleep, both other threads done: a
//!   lost wake-up): the parker's CAS reads the first waker's NOTIFIED, the second waker's
//!   swap reads that same NOTIFIED and delivers nothing, the store reads nothing, so the
//!   parker may not see the second condition and parks for good. The two thread ones fail
//!   the delivery count (a park ended with no unparker having seen PARKED_THREAD).
//! - `end_park` with a Relaxed swap: `loom_one_parker_two_wakers` ends in "deadlock".

use super::{Token, EMPTY, NOTIFIED, PARKED, PARKED_THREAD};
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::{Arc, Notify};
use loom::thread;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// How the parker sleeps.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavour {
    /// `park_coroutine`: resumed only when an unparker that saw PARKED schedules it.
    Coroutine,
    /// `park_thread`: `std::thread::park` until `still_parked` says an unpark came. The park
    /// may return spuriously, at any moment: the model tests `still_parked` once before it
    /// first sleeps, which loom places anywhere among the other threads' steps.
    Thread,
}

/// One thread racing the parker.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// Sets condition `i`, then `Task::unpark` (a `sync` grant, an fd event, a close).
    Waker(usize),
    /// Sets condition `i`, then `Task::unpark_owned` (a channel hand-off, a join).
    OwnedWaker(usize),
    /// `Task::unpark` with no condition: a deadline's timer, also one firing late.
    Timer,
}

struct Shared {
    token: Token,
    conds: [AtomicBool; 2],
    /// Wakes delivered to the parker by an unparker that saw `PARKED_*`.
    delivered: AtomicUsize,
    /// The parker's bed: a run queue slot (coroutine) or `std::thread::park` (thread). Like
    /// both, a notification synchronises with the wait it ends; it may also end spuriously.
    bed: Notify,
}

/// The run queue push or `Thread::unpark` of the one unparker that saw `PARKED_*`.
fn deliver(s: &Shared) {
    s.delivered.fetch_add(1, Release);
    s.bed.notify();
}

/// `Task::unpark`: the real swap, then its match arms.
fn unpark(s: &Shared) {
    match s.token.notify() {
        EMPTY | NOTIFIED => {}
        PARKED | PARKED_THREAD => deliver(s),
        st => panic!("park token in unknown state {st}"),
    }
}

/// `Task::unpark_owned_at`: the real CAS, falling back to `unpark`.
fn unpark_owned(s: &Shared) {
    if s.token.notify_parked() {
        deliver(s);
    } else {
        unpark(s);
    }
}

/// One parker (the model's main thread) against `roles`, one thread each; every condition
/// a waker sets must be seen.
fn run(flavour: Flavour, roles: &'static [Role]) {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    super::loom_builder().check(move || {
        counter.fetch_add(1, Relaxed);
        let s = Arc::new(Shared {
            token: Token::new(),
            conds: [AtomicBool::new(false), AtomicBool::new(false)],
            delivered: AtomicUsize::new(0),
            bed: Notify::new(),
        });
        let mut wanted = [false; 2];
        let others: Vec<_> = roles
            .iter()
            .map(|&role| {
                if let Role::Waker(i) | Role::OwnedWaker(i) = role {
                    wanted[i] = true;
                }
                let s = s.clone();
                thread::spawn(move || match role {
                    Role::Waker(i) => {
                        s.conds[i].store(true, Relaxed);
                        unpark(&s);
                    }
                    Role::OwnedWaker(i) => {
                        s.conds[i].store(true, Relaxed);
                        unpark_owned(&s);
                    }
                    Role::Timer => unpark(&s),
                })
            })
            .collect();
        let sleeps = park_loop(&s, flavour, wanted);
        for t in others {
            t.join().unwrap();
        }
        // exactly one unparker saw each park's PARKED_*
        assert_eq!(
            s.delivered.load(Relaxed),
            sleeps,
            "wakes delivered vs parks that slept"
        );
    });
    println!(
        "{flavour:?} parker against {roles:?}: {} executions",
        executions.load(Relaxed)
    );
}

/// The caller's loop, as `waitq::Waiter::wait` or a channel's `Signal::wait`: returns how
/// many parks slept.
fn park_loop(s: &Shared, flavour: Flavour, wanted: [bool; 2]) -> usize {
    let parked = match flavour {
        Flavour::Coroutine => PARKED,
        Flavour::Thread => PARKED_THREAD,
    };
    let mut sleeps = 0;
    loop {
        if (0..2).all(|i| !wanted[i] || s.conds[i].load(Relaxed)) {
            return sleeps;
        }
        if !s.token.begin_park(parked) {
            continue; // a notification was pending: re-check at once
        }
        sleeps += 1;
        match flavour {
            // suspended until scheduled: it cannot resume before its wake is delivered
            Flavour::Coroutine => {
                while s.delivered.load(Acquire) < sleeps {
                    s.bed.wait();
                }
            }
            // park_thread's loop, entered by a spurious return
            Flavour::Thread => {
                while s.token.still_parked(PARKED_THREAD) {
                    s.bed.wait();
                }
            }
        }
        s.token.end_park();
    }
}

/// The case that lost wake-up needed: two unparks racing a park that consumes the
/// first one's NOTIFIED.
#[test]
fn loom_one_parker_two_wakers() {
    run(Flavour::Coroutine, &[Role::Waker(0), Role::Waker(1)]);
}

/// A channel hand-off's CAS and a plain swap on the same park.
#[test]
fn loom_owned_and_plain_waker() {
    run(Flavour::Coroutine, &[Role::OwnedWaker(0), Role::Waker(1)]);
}

/// A waker and a timer that unparks at any moment, also after the park it was armed for.
#[test]
fn loom_parker_waker_and_timer() {
    run(Flavour::Coroutine, &[Role::Waker(0), Role::Timer]);
}

/// Two owned wakers: both CASes race for one PARKED.
#[test]
fn loom_two_owned_wakers() {
    run(
        Flavour::Coroutine,
        &[Role::OwnedWaker(0), Role::OwnedWaker(1)],
    );
}

/// `park_thread`: two wakers, the token alone carrying their conditions.
#[test]
fn loom_thread_parker_two_wakers() {
    run(Flavour::Thread, &[Role::Waker(0), Role::Waker(1)]);
}

/// `park_thread` with a waker and a timer.
#[test]
fn loom_thread_parker_waker_and_timer() {
    run(Flavour::Thread, &[Role::Waker(0), Role::Timer]);
}
