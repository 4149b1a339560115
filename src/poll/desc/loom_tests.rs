//! loom models of the waiter slots: the real `PollDesc` code on loom's atomics.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom`
//!
//! Real: `prepare` (`check`, `take_ready`), the coroutine wait's slot protocol
//! (`wait_slot`: take READY, publish by CAS, re-check close and deadline, park,
//! `take_back`), a plain thread's wait (`PollDesc::wait`, which finds no coroutine and runs
//! `wait_thread`), `ready`, `set_deadline`, `unblock`, `take_waiter`, `set_hung_up`,
//! `is_hung_up`, `set_urgent`, `saw_urgent`, `Drop`, and `Task::unpark` with the token
//! moves of `park.rs`; both directions, which share all of it through `Dir`; `close`'s
//! `unblock_after` with its wait for the threads in poll(2) (`threads_out`, which here
//! parks at once, `park_until_threads_out`, `thread_left`).
//!
//! Modelled:
//! - the socket: a queue under a lock, see [`Socket`]; the syscall reads or writes it;
//! - a call: [`call`] repeats `NetFd::io`'s beats 2–5 (`prepare`, the drained read's
//!   condition and its wait before the syscall, the syscall, on EAGAIN the wait and the
//!   syscall again), without the direction lock (one reader and one writer at most here,
//!   as the locks allow), with the fd taken as registered (a coroutine parked on it
//!   before), and with the previous call's syscall as a SeqCst fence before the drained
//!   read's loads of `hung_up` and `urgent` (see [`the_syscall_fence`]: without it loom
//!   finds a lost wake-up that the language allows and the machine does not);
//! - a coroutine's park (step 4 of `wait_slot`): `park::park_sleeping`, the real token
//!   parked as a thread record (`PARKED_POLL`) whose unpark is the token's swap and, for
//!   the eventfd's write, a loom `unpark` of the sleeping thread; the deadline handed to
//!   it is ignored (its timer's unpark is `Role::Unpark`'s);
//! - a plain thread's record and its poll(2), for `wait_thread`: [`current`] and
//!   [`park_thread_fd`] below, which `wait_thread` uses in place of the runtime's under
//!   `cfg(loom)`. The poll is `park::park_polling`: the real token moves of
//!   `park_thread_fd`, and a spin until an unpark moves the token (the eventfd), the
//!   socket is ready for the direction (what poll(2) sees itself, whether or not the fd is
//!   registered with an epoll) or the deadline has passed (poll's timeout);
//! - the netpoller: an event does what `Poller::poll` does with it, after the kernel's part
//!   (the data's arrival, under the socket lock): `set_hung_up` / `set_urgent` first,
//!   then `ready` for each direction, then the unpark of what it handed back.
//!   (`Poller::poll` unparks with `unpark_owned_at`, whose CAS cannot win on a thread
//!   record's token and falls back to this `unpark`.)
//!
//! Checked in every execution: every call returns (a lost wake-up leaves a coroutine asleep
//! with everyone else done, which loom reports as a deadlock, or a thread spinning in its
//! poll, which loom gives up on with "exceeded maximum number of branches"), the sequence
//! of results is one the model allows, both slots end EMPTY or READY, and each slot's
//! `Arc<Task>` reference is released exactly once (after the waits and the `PollDesc` are
//! gone, only the test's own references are left).
//!
//! Known gaps: per-call deadlines (`call`); the direction locks (`fdmutex/loom_tests.rs`
//! checks them) and two waiters on one slot (the locks rule it out); more than two data
//! arrivals; the token's own orderings (`park/loom_tests.rs` checks them: here a wake also
//! carries loom's `unpark`, as a run queue or an eventfd carries it). loom treats SeqCst
//! accesses as AcqRel: see `store_load_order` in `desc.rs` for the points that need a
//! SeqCst fence under loom to avoid a false alarm.
//!
//! The models can fail (each checked on its own, then the code restored; a failing loom
//! test aborts the whole binary, so run together only the first failure shows):
//! - without step 3's re-check of close and deadline after publishing, `loom_slot_close`,
//!   `loom_slot_deadline`, `loom_slot_drained_read_close` and
//!   `loom_slot_reader_and_writer_close` deadlock; so do the first two, and the
//!   reader-and-writer close, with `store_load_order` empty (the false alarm above).
//!   Without the same re-check in `wait_thread`, `loom_thread_wait_close` spins for good
//!   (`loom_thread_wait_deadline` does not: the deadline `wait_thread` loads for poll's
//!   timeout is a re-check of its own); without `wait_thread`'s `store_load_order`, both
//!   do.
//! - `unblock` not taking the write waiter, or without its `store_load_order`:
//!   `loom_slot_reader_and_writer_close` (the writer sleeps for good).
//! - `wait_slot` publishing with a swap over whatever the slot holds instead of the CAS
//!   from EMPTY: `loom_slot_event`, `loom_slot_reader_and_writer_event`,
//!   `loom_slot_two_reads_stale_edge` and `loom_slot_drained_read` (an edge that came
//!   before the publish is overwritten: lost wake-up).
//! - `ready` with a plain store instead of its CAS: the same three two-waiter or two-call
//!   models deadlock, and `loom_thread_wait_event_close_and_unpark` finds the thread's
//!   reference leaked.
//! - `prepare` clearing READY but reporting none: `loom_slot_drained_read` (the drained
//!   read waits for an edge that `prepare` already consumed).
//! - `wait_thread` not releasing its own reference after poll: `loom_thread_wait_data` and
//!   `loom_thread_wait_event_close_and_unpark` (leak).
//! - `thread_left` not waking the parked closer, or `park_until_threads_out` looking at the
//!   count before it takes the closers' lock: `loom_thread_wait_close_waits_for_the_poll`
//!   and `loom_thread_wait_event_and_close_waiting_for_the_poll` deadlock; `threads_out`
//!   not waiting: both fail their check that no thread is left in the poll shim; without
//!   the `store_load_order` between `wait_thread`'s uncount and its look at `closing`, the
//!   second deadlocks (the false alarm above).
//! - the drained read's condition without `is_hung_up` / `saw_urgent`, the netpoller
//!   setting the flag after `ready` instead of before, [`the_syscall_fence`] left out, or
//!   no `store_load_order` after the flag's store: `loom_slot_drained_read_hung_up` /
//!   `loom_slot_drained_read_urgent` deadlock (the reader waits for an edge that will not
//!   come).

use super::{Dir, PollDesc, EMPTY, READY};
use crate::net::error::{is_closed, is_timeout};
use crate::runtime::park::{park_polling, park_sleeping};
use crate::runtime::task::Task;
use loom::sync::Mutex;
use loom::thread;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one call returned.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Got {
    /// Bytes read or written.
    Data,
    /// End of file: a read returned 0.
    Eof,
    Closed,
    TimedOut,
}

/// What races the reader, one thread each.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// A byte arrives; the netpoller's `ready` and the unpark of the task it hands back.
    Event,
    /// A readiness edge with nothing new to read: the late edge of a byte already queued
    /// (`Model::queued`), or a spurious edge.
    StaleEdge,
    /// A byte arrives on an fd no epoll holds (only a plain thread has waited on it): no
    /// event, only poll(2) sees it.
    DataUnregistered,
    /// A byte arrives and room opens in the send buffer, reported by one event with both
    /// directions (`EPOLLIN | EPOLLOUT`): `ready(Read)`, `ready(Write)`, then both unparks.
    EventBoth,
    /// A byte and its event, then the peer's FIN and its event (`EPOLLIN | EPOLLRDHUP`:
    /// `set_hung_up`, then `ready`).
    EventThenFin,
    /// A byte and its event, then urgent data (a mark, then a byte behind it) and its
    /// event (`EPOLLIN | EPOLLPRI`: `set_urgent`, then `ready`).
    EventThenUrgent,
    /// `close`: `unblock`.
    Close,
    /// `close` as `NetFd::close` makes it: `unblock_after`, which wakes the threads in
    /// poll(2) and returns only once none is left there (`threads_out`), parking until the
    /// last one out wakes it (`thread_left`). Checked on its return: no thread is inside
    /// the poll shim.
    CloseWaitingForThreads,
    /// `set_deadline` to a time already past.
    DeadlinePast,
    /// A stray `Task::unpark` (a late timer), or for a plain thread a spurious poll return.
    Unpark,
    /// A coroutine writing on the same fd: one write call, blocked until there is room.
    Writer,
}

/// The socket, as the kernel keeps it: read and changed under the socket's lock, and the
/// lock matters. With the syscall as a bare SeqCst load instead, loom finds a lost
/// wake-up: a stale edge leaves READY, the event's `ready` sees READY and hands back
/// nobody, step 1 clears READY with its Release store (not SeqCst) and the syscall may then
/// still miss the data. In the kernel the syscall and the data's arrival are ordered by
/// that lock, and so is the event that `ready` reports.
struct Socket {
    q: Mutex<Queue>,
    /// Threads inside the poll shim, which holds the socket's open file as poll(2) does.
    /// Bookkeeping for `Role::CloseWaitingForThreads`'s check, not part of what is
    /// modelled: loom runs one thread at a time, so a plain atomic reads the true count.
    in_poll: std::sync::atomic::AtomicU32,
}

#[derive(Default)]
struct Queue {
    /// Bytes in the receive queue, up to the urgent mark if there is one.
    data: u32,
    /// Bytes behind the urgent mark: a read stops at the mark, the next one goes on.
    behind_mark: u32,
    /// The peer's FIN, behind all the data.
    eof: bool,
    /// Room in the send buffer (none at first: a write waits).
    room: bool,
}

impl Socket {
    fn new(queued: u32) -> Arc<Socket> {
        Arc::new(Socket {
            q: Mutex::new(Queue {
                data: queued,
                ..Queue::default()
            }),
            in_poll: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// A byte arrives (behind the urgent mark, if there is one).
    fn push(&self) {
        let mut q = self.q.lock().unwrap();
        if q.behind_mark > 0 {
            q.behind_mark += 1;
        } else {
            q.data += 1;
        }
    }

    /// The syscall: `Some(bytes)` (0 at EOF) or None for EAGAIN. A read takes everything up
    /// to the urgent mark; a write, one byte if there is room.
    fn syscall(&self, dir: Dir) -> Option<u32> {
        let mut q = self.q.lock().unwrap();
        match dir {
            Dir::Read => {
                if q.data == 0 {
                    q.data = std::mem::take(&mut q.behind_mark);
                }
                match std::mem::take(&mut q.data) {
                    0 if q.eof => Some(0),
                    0 => None,
                    n => {
                        q.data = std::mem::take(&mut q.behind_mark);
                        Some(n)
                    }
                }
            }
            Dir::Write => q.room.then_some(1),
        }
    }

    /// What poll(2) sees.
    fn ready(&self, dir: Dir) -> bool {
        let q = self.q.lock().unwrap();
        match dir {
            Dir::Read => q.data > 0 || q.behind_mark > 0 || q.eof,
            Dir::Write => q.room,
        }
    }
}

/// How the reader waits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A coroutine: `wait_slot` with the spinning park.
    Coroutine,
    /// A plain thread: `PollDesc::wait`, which runs `wait_thread` on the shims below.
    Thread,
}

/// One model: a reader on the model's main thread, making calls until it has read `want`
/// bytes, read EOF or got an error, against `roles`.
#[derive(Clone, Copy, Debug)]
struct Model {
    kind: Kind,
    /// `NetFd`'s drained read: after a short read (every read here is short), the next call
    /// waits before its syscall unless `prepare` found READY or a hang-up or urgent data
    /// was seen. Coroutines only, as in `NetFd::io`.
    drained: bool,
    /// Bytes already queued when the model starts, their edge not yet harvested.
    queued: u32,
    want: u32,
    roles: &'static [Role],
    /// The sequences of call results the reader may end with.
    allowed: &'static [&'static [Got]],
    /// What a `Role::Writer`'s call may return.
    writer_allowed: &'static [Got],
}

const READER: Model = Model {
    kind: Kind::Coroutine,
    drained: false,
    queued: 0,
    want: 1,
    roles: &[],
    allowed: &[],
    writer_allowed: &[],
};

// ---- the plain thread's shims for `wait_thread` ---------------------------------------------

loom::thread_local! {
    /// The thread's own record (`park::current` outside a coroutine, `THREAD_TASK` there).
    static THREAD_TASK: Arc<Task> = Task::new_thread();
    /// The socket this thread's poll(2) looks at (set by the model before it reads).
    static POLLED: RefCell<Option<Arc<Socket>>> = RefCell::new(None);
}

/// `park::current` for a plain thread under loom: a record per loom thread and execution.
pub(super) fn current() -> Arc<Task> {
    THREAD_TASK.with(Arc::clone)
}

/// `park::park_thread_fd` under loom: the real token moves, with poll(2) as a spin until an
/// unpark moves the token (the eventfd), the socket is ready for `events` (whatever the
/// fd, here always the polled socket's), or `deadline` has passed (poll's timeout).
pub(super) fn park_thread_fd(_fd: BorrowedFd<'_>, events: i16, deadline: Option<Instant>) -> bool {
    let dir = if events & libc::POLLOUT != 0 {
        Dir::Write
    } else {
        Dir::Read
    };
    let sock = POLLED
        .with(|p| p.borrow().clone())
        .expect("no socket to poll");
    sock.in_poll.fetch_add(1, SeqCst);
    let ready = park_polling(&current(), || {
        deadline.is_some_and(|d| Instant::now() >= d) || sock.ready(dir)
    });
    sock.in_poll.fetch_sub(1, SeqCst);
    ready
}

// ---- the calls ------------------------------------------------------------------------------

/// The wait of beat 4 (and of the drained read).
fn wait(desc: &Arc<PollDesc>, dir: Dir, kind: Kind, me: &Arc<Task>) -> io::Result<()> {
    match kind {
        Kind::Coroutine => desc.wait_slot(me, dir, None, |_deadline| park_sleeping(me)),
        Kind::Thread => desc.wait(std::io::stdin().as_fd(), dir, None),
    }
}

/// One call as `NetFd::io` makes it (beats 2–5). `drained` is `NetFd::drained`: None where
/// it is never set (a thread, a write, or a model without it).
fn call(
    desc: &Arc<PollDesc>,
    sock: &Socket,
    dir: Dir,
    kind: Kind,
    me: &Arc<Task>,
    mut drained: Option<&mut bool>,
) -> io::Result<u32> {
    // 2. closed? deadline passed? forget stale readiness
    let was_ready = desc.prepare(dir, None)?;
    // the drained read: skip to 5 unless READY came or the short read proves nothing
    if let Some(d) = drained.as_deref_mut() {
        if std::mem::take(d) && !was_ready {
            the_syscall_fence();
            if !desc.is_hung_up() && !desc.saw_urgent() {
                wait(desc, dir, kind, me)?;
            }
        }
    }
    loop {
        // 3. the syscall
        match sock.syscall(dir) {
            // 4. EAGAIN: park until the netpoller says ready, then 5. retry
            None => wait(desc, dir, kind, me)?,
            Some(n) => {
                if let Some(d) = drained {
                    // every read here is short: a byte-stream read that got data drained
                    *d = n > 0;
                }
                return Ok(n);
            }
        }
    }
}

/// What the previous call's syscall gives the drained read's loads of `hung_up` and
/// `urgent`: nothing in the code keeps them from passing the Release store with which
/// `take_ready` emptied the slot before that syscall. Without this fence loom finds a lost
/// wake-up (`loom_slot_drained_read_hung_up`, `loom_slot_drained_read_urgent`): the
/// netpoller's first `ready` hands the parked reader back and leaves READY; the reader's
/// `take_back` empties it (Release store) and its syscall reads the byte, with the FIN (or
/// urgent data) queued behind it; its next call's `prepare` finds the slot EMPTY and
/// `is_hung_up` false; the netpoller then stores `hung_up` and its `ready` still reads the
/// READY the reader emptied, so it hands back nobody and sets nothing, and the reader
/// parks with no event left to come. A store-buffering pattern: each side's load misses
/// the other's store. The language does not clearly rule it out (the slot store is Release,
/// not SeqCst; loom and the RC11 formal model both allow the outcome); the machine does:
/// on x86 the recv between the two executes locked instructions (the socket lock), which
/// drain the store buffer, and on AArch64 a later SeqCst load (LDAR) never passes a
/// Release store (STLR). So the model takes the syscall as a SeqCst fence here. A
/// `fence(SeqCst)` before these loads in `NetFd::io` (taken only on a drained read about to
/// skip its syscall) would make it a language guarantee.
fn the_syscall_fence() {
    loom::sync::atomic::fence(SeqCst);
}

fn got(r: io::Result<u32>) -> Got {
    match r {
        Ok(0) => Got::Eof,
        Ok(_) => Got::Data,
        Err(e) if is_closed(&e) => Got::Closed,
        Err(e) if is_timeout(&e) => Got::TimedOut,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The netpoller's handling of one event for the read direction (`Poller::poll`).
fn read_event(desc: &PollDesc) {
    if let Some(t) = desc.ready(Dir::Read) {
        t.unpark();
    }
}

/// One thread racing the reader; a writer hands back its record and result.
fn play(
    role: Role,
    m: Model,
    desc: &Arc<PollDesc>,
    sock: &Socket,
    me: &Arc<Task>,
) -> Option<(Arc<Task>, Got)> {
    match role {
        Role::Event => {
            sock.push();
            read_event(desc);
        }
        Role::StaleEdge => read_event(desc),
        Role::DataUnregistered => sock.push(),
        Role::EventBoth => {
            {
                let mut q = sock.q.lock().unwrap();
                q.data += 1;
                q.room = true;
            }
            let r = desc.ready(Dir::Read);
            let w = desc.ready(Dir::Write);
            for t in [r, w].into_iter().flatten() {
                t.unpark();
            }
        }
        Role::EventThenFin => {
            sock.push();
            read_event(desc);
            sock.q.lock().unwrap().eof = true;
            desc.set_hung_up();
            read_event(desc);
        }
        Role::EventThenUrgent => {
            sock.push();
            read_event(desc);
            sock.q.lock().unwrap().behind_mark += 1;
            desc.set_urgent();
            read_event(desc);
        }
        Role::Close => desc.unblock(),
        Role::CloseWaitingForThreads => {
            desc.unblock_after(|| {});
            assert_eq!(
                sock.in_poll.load(SeqCst),
                0,
                "close returned with a thread still in poll(2)"
            );
        }
        Role::DeadlinePast => {
            desc.set_deadline(Dir::Read, Some(Instant::now() - Duration::from_secs(1)))
        }
        Role::Unpark => me.unpark(),
        Role::Writer => {
            let me = Task::new_thread();
            let r = got(call(desc, sock, Dir::Write, Kind::Coroutine, &me, None));
            assert!(m.writer_allowed.contains(&r), "{m:?}: write gave {r:?}");
            return Some((me, r));
        }
    }
    None
}

fn run(m: Model) {
    let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    let start = Instant::now();
    crate::runtime::park::loom_builder().check(move || {
        counter.fetch_add(1, Relaxed);
        let desc = PollDesc::new();
        let sock = Socket::new(m.queued);
        // the reader's record; a plain thread's is also held by its thread-local
        let (me, own) = match m.kind {
            Kind::Coroutine => (Task::new_thread(), 1),
            Kind::Thread => {
                POLLED.with(|p| *p.borrow_mut() = Some(sock.clone()));
                (current(), 2)
            }
        };
        let others: Vec<_> = m
            .roles
            .iter()
            .map(|&role| {
                let (desc, sock, me) = (desc.clone(), sock.clone(), me.clone());
                thread::spawn(move || play(role, m, &desc, &sock, &me))
            })
            .collect();
        let mut results = Vec::new();
        let mut drained = false;
        let mut total = 0;
        loop {
            let d = (m.drained && m.kind == Kind::Coroutine).then_some(&mut drained);
            let r = call(&desc, &sock, Dir::Read, m.kind, &me, d);
            total += *r.as_ref().unwrap_or(&0);
            let g = got(r);
            results.push(g);
            if g != Got::Data || total >= m.want {
                break;
            }
        }
        let writers: Vec<_> = others
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert!(
            m.allowed.contains(&&results[..]),
            "{m:?}: reader's calls gave {results:?}"
        );
        for dir in [Dir::Read, Dir::Write] {
            let left = desc.slot(dir).load(SeqCst);
            assert!(
                left == EMPTY || left == READY,
                "{dir:?} slot still holds {left:#x}"
            );
        }
        drop(desc);
        assert_eq!(
            Arc::strong_count(&me),
            own,
            "the read slot's reference, leaked or double-dropped"
        );
        for (w, _) in writers {
            assert_eq!(
                Arc::strong_count(&w),
                1,
                "the write slot's reference, leaked or double-dropped"
            );
        }
    });
    println!(
        "{:?} reader{} against {:?}: {} executions, {:.1} s",
        m.kind,
        if m.drained { " (drained reads)" } else { "" },
        m.roles,
        executions.load(Relaxed),
        start.elapsed().as_secs_f64()
    );
}

// ---- one coroutine read ---------------------------------------------------------------------

/// An edge that lands before, during or after the publish is never lost.
#[test]
fn loom_slot_event() {
    run(Model {
        roles: &[Role::Event],
        allowed: &[&[Got::Data]],
        ..READER
    });
}

/// Close against a parking reader: it fails with the closed error, whenever close lands.
#[test]
fn loom_slot_close() {
    run(Model {
        roles: &[Role::Close],
        allowed: &[&[Got::Closed]],
        ..READER
    });
}

/// A deadline set in the past reaches a reader that is parking.
#[test]
fn loom_slot_deadline() {
    run(Model {
        roles: &[Role::DeadlinePast],
        allowed: &[&[Got::TimedOut]],
        ..READER
    });
}

/// Data and close race: either answer, and the reference is released once.
#[test]
fn loom_slot_event_and_close() {
    run(Model {
        roles: &[Role::Event, Role::Close],
        allowed: &[&[Got::Data], &[Got::Closed]],
        ..READER
    });
}

/// Data and a deadline in the past race: either answer.
#[test]
fn loom_slot_event_and_deadline() {
    run(Model {
        roles: &[Role::Event, Role::DeadlinePast],
        allowed: &[&[Got::Data], &[Got::TimedOut]],
        ..READER
    });
}

/// Data with a stale edge or a stray unpark racing it.
#[test]
fn loom_slot_event_stale_edge_and_unpark() {
    for roles in [
        &[Role::Event, Role::StaleEdge],
        &[Role::Event, Role::Unpark],
    ] {
        run(Model {
            roles,
            allowed: &[&[Got::Data]],
            ..READER
        });
    }
}

// ---- both directions ------------------------------------------------------------------------

/// A reader and a writer parked on one fd, one event with both directions: both return.
#[test]
fn loom_slot_reader_and_writer_event() {
    run(Model {
        roles: &[Role::Writer, Role::EventBoth],
        allowed: &[&[Got::Data]],
        writer_allowed: &[Got::Data],
        ..READER
    });
}

/// Close hits a reader and a writer parked on one fd: both fail with the closed error.
#[test]
fn loom_slot_reader_and_writer_close() {
    run(Model {
        roles: &[Role::Writer, Role::Close],
        allowed: &[&[Got::Closed]],
        writer_allowed: &[Got::Closed],
        ..READER
    });
}

// ---- two calls on one slot ------------------------------------------------------------------

/// Two reads in a row: a byte is queued with its edge not yet harvested (it lands at any
/// moment, also during the second read), and a second byte comes with its own edge. The
/// stale edge never makes the second read miss the second byte's.
#[test]
fn loom_slot_two_reads_stale_edge() {
    run(Model {
        queued: 1,
        want: 2,
        roles: &[Role::StaleEdge, Role::Event],
        allowed: &[&[Got::Data], &[Got::Data, Got::Data]],
        ..READER
    });
}

/// As `loom_slot_two_reads_stale_edge`, with `NetFd`'s drained read: the second read
/// waits before its syscall unless `prepare` took a READY.
#[test]
fn loom_slot_drained_read() {
    run(Model {
        drained: true,
        queued: 1,
        want: 2,
        roles: &[Role::StaleEdge, Role::Event],
        allowed: &[&[Got::Data], &[Got::Data, Got::Data]],
        ..READER
    });
}

/// Close reaches a drained read waiting before its syscall.
#[test]
fn loom_slot_drained_read_close() {
    run(Model {
        drained: true,
        queued: 1,
        want: 2,
        roles: &[Role::Close],
        allowed: &[&[Got::Closed], &[Got::Data, Got::Closed]],
        ..READER
    });
}

/// A byte, then the FIN, each with its own event: the drained read never waits for an
/// edge the FIN behind a short read will not send (`hung_up`).
#[test]
fn loom_slot_drained_read_hung_up() {
    run(Model {
        drained: true,
        want: u32::MAX,
        roles: &[Role::EventThenFin],
        allowed: &[&[Got::Data, Got::Eof]],
        ..READER
    });
}

/// A byte, then urgent data, each with its own event: a read stops at the mark, and the
/// drained read does not wait for an edge for the byte behind it (`urgent`).
#[test]
fn loom_slot_drained_read_urgent() {
    run(Model {
        drained: true,
        want: 2,
        roles: &[Role::EventThenUrgent],
        allowed: &[&[Got::Data, Got::Data]],
        ..READER
    });
}

// ---- a plain thread's wait (`wait_thread`) --------------------------------------------------

const THREAD: Model = Model {
    kind: Kind::Thread,
    ..READER
};

/// Data on an fd no epoll holds: poll(2) alone sees it.
#[test]
fn loom_thread_wait_data() {
    run(Model {
        roles: &[Role::DataUnregistered],
        allowed: &[&[Got::Data]],
        ..THREAD
    });
}

/// Close reaches a thread in poll(2) through the slot.
#[test]
fn loom_thread_wait_close() {
    run(Model {
        roles: &[Role::Close],
        allowed: &[&[Got::Closed]],
        ..THREAD
    });
}

/// A deadline set in the past reaches a thread in poll(2) through the slot.
#[test]
fn loom_thread_wait_deadline() {
    run(Model {
        roles: &[Role::DeadlinePast],
        allowed: &[&[Got::TimedOut]],
        ..THREAD
    });
}

/// On a registered fd: data with its event, against close or a spurious poll return.
#[test]
fn loom_thread_wait_event_close_and_unpark() {
    run(Model {
        roles: &[Role::Event, Role::Close],
        allowed: &[&[Got::Data], &[Got::Closed]],
        ..THREAD
    });
    run(Model {
        roles: &[Role::Event, Role::Unpark],
        allowed: &[&[Got::Data]],
        ..THREAD
    });
}

/// `close` waits for the thread it woke to leave poll(2), parked until that thread's
/// `thread_left` wakes it: neither a lost wake-up (the closer asleep for good, which loom
/// reports as a deadlock) nor a return with the thread still polling.
#[test]
fn loom_thread_wait_close_waits_for_the_poll() {
    run(Model {
        roles: &[Role::CloseWaitingForThreads],
        allowed: &[&[Got::Closed]],
        ..THREAD
    });
}

/// The same against data and its event, which may let the thread leave poll(2) before the
/// close, during it, or not at all before the close wakes it.
#[test]
fn loom_thread_wait_event_and_close_waiting_for_the_poll() {
    run(Model {
        roles: &[Role::Event, Role::CloseWaitingForThreads],
        allowed: &[&[Got::Data], &[Got::Closed]],
        ..THREAD
    });
}

/// A coroutine's read against the same close: no thread to wait for, and the coroutine is
/// woken after the (empty) wait.
#[test]
fn loom_slot_close_waiting_for_threads() {
    run(Model {
        roles: &[Role::CloseWaitingForThreads],
        allowed: &[&[Got::Closed]],
        ..READER
    });
}
