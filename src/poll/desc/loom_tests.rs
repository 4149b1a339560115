//! loom model of the read waiter slot: the real `PollDesc` code on loom's atomics.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//!
//! Real: `prepare` (`check`, `take_ready`), the coroutine wait's slot protocol
//! (`wait_slot`: take READY, publish by CAS, re-check close and deadline, park,
//! `take_back`), `ready`, `set_deadline`, `unblock`, `take_waiter`, `Drop`, and
//! `Task::unpark` with the token moves of `park.rs`. Modelled: the socket (a flag under a
//! lock, see [`Socket`]), the syscall (reading the flag), and the park of step 4
//! (`park::park_spinning`: the real token, parked as a thread record whose unpark is the
//! token's swap alone, spinning until the token moves; its sleep may end early, as a
//! coroutine's does when its deadline timer fires). The event side does what the netpoller
//! does: the data arrives (the kernel's part, under the socket lock), then `ready`, then
//! the unpark of what it hands back.
//!
//! Checked in every execution: the read returns (a lost wake-up leaves the reader spinning
//! with everyone else done, and loom gives up with "exceeded maximum number of branches"),
//! with the right result, and the slot's `Arc<Task>` reference is released exactly once
//! (after the wait and the `PollDesc` are gone, the test's is the only one left).
//!
//! Known gaps: one read call, the read direction, a coroutine's wait only (`wait_thread`
//! and the drained-read wait before the syscall are not run); `hung_up`/`urgent`; per-call
//! deadlines. loom treats SeqCst accesses as AcqRel: see `store_load_order` in `desc.rs`
//! for the three points that need a SeqCst fence under loom to avoid a false alarm.
//!
//! The model can fail: without step 3's re-check of close and deadline after publishing,
//! `loom_slot_close` and `loom_slot_deadline` never return ("exceeded maximum number of
//! branches"); so do they without `store_load_order`'s fences (the false alarm above).

use super::{Dir, PollDesc, EMPTY, READY};
use crate::net::error::{is_closed, is_timeout};
use crate::runtime::park::park_spinning;
use crate::runtime::task::Task;
use loom::sync::Mutex;
use loom::thread;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Got {
    Data,
    Closed,
    TimedOut,
}

/// What races the reader, one thread each.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// Data arrives; the netpoller's `ready` and the unpark of the task it hands back.
    Event,
    /// A readiness edge with nothing to read (data already consumed, or a spurious edge).
    StaleEdge,
    /// `close`: `unblock`.
    Close,
    /// `set_deadline` to a time already past.
    DeadlinePast,
    /// A stray `Task::unpark` (a late timer).
    Unpark,
}

/// The socket's receive queue: the kernel reads and fills it under the socket's lock, and
/// the lock matters. With the syscall as a bare SeqCst load instead, loom finds a lost
/// wake-up: a stale edge leaves READY, the event's `ready` sees READY and hands back
/// nobody, step 1 clears READY with its Release store (not SeqCst) and the syscall may then
/// still miss the data. In the kernel the syscall and the data's arrival are ordered by
/// that lock, and so is the event that `ready` reports.
struct Socket {
    data: Mutex<bool>,
}

/// One blocking read as `NetFd::io` does it: `prepare`, the syscall, and on EAGAIN
/// the wait and the syscall again.
fn read(desc: &PollDesc, sock: &Socket, me: &Arc<Task>) -> io::Result<()> {
    desc.prepare(Dir::Read, None)?;
    loop {
        // the syscall
        if *sock.data.lock().unwrap() {
            return Ok(());
        }
        desc.wait_slot(me, Dir::Read, None, |_deadline| park_spinning(me))?;
    }
}

fn run(roles: &'static [Role], allowed: &'static [Got]) {
    let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    crate::runtime::park::loom_builder().check(move || {
        counter.fetch_add(1, Relaxed);
        let desc = PollDesc::new();
        let sock = Arc::new(Socket {
            data: Mutex::new(false),
        });
        let me = Task::new_thread();
        let others: Vec<_> = roles
            .iter()
            .map(|&role| {
                let (desc, sock, me) = (desc.clone(), sock.clone(), me.clone());
                thread::spawn(move || match role {
                    Role::Event => {
                        *sock.data.lock().unwrap() = true;
                        if let Some(t) = desc.ready(Dir::Read) {
                            t.unpark();
                        }
                    }
                    Role::StaleEdge => {
                        if let Some(t) = desc.ready(Dir::Read) {
                            t.unpark();
                        }
                    }
                    Role::Close => desc.unblock(),
                    Role::DeadlinePast => {
                        desc.set_deadline(Dir::Read, Some(Instant::now() - Duration::from_secs(1)))
                    }
                    Role::Unpark => me.unpark(),
                })
            })
            .collect();
        let got = match read(&desc, &sock, &me) {
            Ok(()) => Got::Data,
            Err(e) if is_closed(&e) => Got::Closed,
            Err(e) if is_timeout(&e) => Got::TimedOut,
            Err(e) => panic!("unexpected error {e}"),
        };
        for t in others {
            t.join().unwrap();
        }
        assert!(allowed.contains(&got), "{roles:?}: read gave {got:?}");
        let left = desc.rg.load(SeqCst);
        assert!(left == EMPTY || left == READY, "slot still holds {left:#x}");
        drop(desc);
        assert_eq!(
            Arc::strong_count(&me),
            1,
            "the slot's reference, leaked or double-dropped"
        );
    });
    println!(
        "reader against {roles:?}: {} executions",
        executions.load(Relaxed)
    );
}

/// An edge that lands before, during or after the publish is never lost.
#[test]
fn loom_slot_event() {
    run(&[Role::Event], &[Got::Data]);
}

/// Close against a parking reader: it fails with the closed error, whenever close lands.
#[test]
fn loom_slot_close() {
    run(&[Role::Close], &[Got::Closed]);
}

/// A deadline set in the past reaches a reader that is parking.
#[test]
fn loom_slot_deadline() {
    run(&[Role::DeadlinePast], &[Got::TimedOut]);
}

/// Data and close race: either answer, and the reference is released once.
#[test]
fn loom_slot_event_and_close() {
    run(&[Role::Event, Role::Close], &[Got::Data, Got::Closed]);
}

/// Data and a deadline in the past race: either answer.
#[test]
fn loom_slot_event_and_deadline() {
    run(
        &[Role::Event, Role::DeadlinePast],
        &[Got::Data, Got::TimedOut],
    );
}

/// Data with a stale edge or a stray unpark racing it.
#[test]
fn loom_slot_event_stale_edge_and_unpark() {
    run(&[Role::Event, Role::StaleEdge], &[Got::Data]);
    run(&[Role::Event, Role::Unpark], &[Got::Data]);
}
