//! The shared record of something that can wait: a coroutine, or a plain OS thread.
//!
//! Everything that parks — join, sleep, I/O, channels, locks — holds an `Arc<Task>` of the
//! waiter and later calls [`Task::unpark`] on it, from any thread. A coroutine's record says
//! which worker owns it; a thread's record carries the `std::thread::Thread` to unpark and,
//! once it has waited on an fd, an eventfd that breaks its `poll(2)`.
//!
//! The coroutine itself (its corosensei `Coroutine` and stack) is *not* here: it is `!Send`
//! and lives only in its worker's thread-local table. This record is what may cross threads.

use std::cell::Cell;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::park::Token;

/// What a task is, which decides how an unpark reaches it.
pub(crate) enum Home {
    /// A coroutine. `worker` is set once, by the worker that starts it, and never changes:
    /// a started coroutine only ever runs on that worker (see `runtime/mod.rs`).
    Coroutine {
        worker: AtomicUsize,
        key: AtomicUsize,
    },
    /// A plain OS thread, blocking in `std::thread::park` or in `poll(2)`.
    Thread {
        thread: std::thread::Thread,
        wakefd: OnceLock<OwnedFd>,
    },
}

/// Not yet started: a coroutine with no worker.
pub(crate) const NO_WORKER: usize = usize::MAX;

/// Life-cycle state, for `stats()` and `dump()`; written only by the thread running the task.
///
/// | state    | set by                  | when                               |
/// |----------|-------------------------|------------------------------------|
/// | Queued   | `go`                    | created, waiting for a worker      |
/// | Running  | worker, before resume   | on a worker's thread right now     |
/// | Runnable | worker / unpark         | woken or yielded, in a run queue   |
/// | Parked   | `park`                  | suspended until someone unparks it |
/// | Finished | worker, after return    | body returned or panicked          |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Queued = 0,
    Running = 1,
    Runnable = 2,
    Parked = 3,
    Finished = 4,
}

/// Why a parked task waits, for `dump()` and the stats gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Wait {
    None = 0,
    IoRead = 1,
    IoWrite = 2,
    Sleep = 3,
    Join = 4,
    Blocking = 5,
    Sync = 6,
    Park = 7,
    /// A channel `recv` (Go's dump says "chan receive").
    ChanRecv = 8,
    /// A channel `send` ("chan send").
    ChanSend = 9,
    /// A `select!` over several channel operations ("select").
    Select = 10,
}

impl Wait {
    fn from_u8(v: u8) -> Wait {
        match v {
            1 => Wait::IoRead,
            2 => Wait::IoWrite,
            3 => Wait::Sleep,
            4 => Wait::Join,
            5 => Wait::Blocking,
            6 => Wait::Sync,
            7 => Wait::Park,
            8 => Wait::ChanRecv,
            9 => Wait::ChanSend,
            10 => Wait::Select,
            _ => Wait::None,
        }
    }

    pub(crate) fn is_io(self) -> bool {
        matches!(self, Wait::IoRead | Wait::IoWrite)
    }
}

pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// The park token: the one protocol every wait goes through (see `park.rs`).
    pub(crate) token: Token,
    pub(crate) home: Home,
    state: AtomicU8,
    wait: AtomicU8,
    /// The fd a task waits on, or -1; only for `dump()`.
    wait_fd: AtomicI32,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids a thread hands out before it takes another block from `NEXT_ID`.
const ID_BLOCK: u64 = 1024;

/// A unique id, from a block this thread reserved: a spawn pays for the shared counter once
/// per `ID_BLOCK` ids instead of every time. Ids are unique, not ordered across threads.
fn next_id() -> u64 {
    thread_local! {
        // (next, end) of this thread's block; empty at first.
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

impl Task {
    pub(crate) fn new_coroutine(name: Option<Box<str>>) -> Arc<Task> {
        Arc::new(Task {
            id: next_id(),
            name,
            token: Token::new(),
            home: Home::Coroutine {
                worker: AtomicUsize::new(NO_WORKER),
                key: AtomicUsize::new(0),
            },
            state: AtomicU8::new(State::Queued as u8),
            wait: AtomicU8::new(Wait::None as u8),
            wait_fd: AtomicI32::new(-1),
        })
    }

    pub(crate) fn new_thread() -> Arc<Task> {
        let thread = std::thread::current();
        Arc::new(Task {
            id: next_id(),
            name: thread.name().map(Into::into),
            token: Token::new(),
            home: Home::Thread {
                thread,
                wakefd: OnceLock::new(),
            },
            state: AtomicU8::new(State::Running as u8),
            wait: AtomicU8::new(Wait::None as u8),
            wait_fd: AtomicI32::new(-1),
        })
    }

    /// The worker that owns this coroutine, or `NO_WORKER` before it starts / for a thread.
    pub(crate) fn worker(&self) -> usize {
        match &self.home {
            Home::Coroutine { worker, .. } => worker.load(Ordering::Acquire),
            Home::Thread { .. } => NO_WORKER,
        }
    }

    pub(crate) fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            0 => State::Queued,
            1 => State::Running,
            2 => State::Runnable,
            3 => State::Parked,
            _ => State::Finished,
        }
    }

    pub(crate) fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    pub(crate) fn wait(&self) -> Wait {
        Wait::from_u8(self.wait.load(Ordering::Relaxed))
    }

    pub(crate) fn wait_fd(&self) -> i32 {
        self.wait_fd.load(Ordering::Relaxed)
    }

    pub(crate) fn set_wait(&self, w: Wait, fd: i32) {
        self.wait.store(w as u8, Ordering::Relaxed);
        self.wait_fd.store(fd, Ordering::Relaxed);
    }

    /// The name shown in messages: the given name, or `<unnamed>` as std prints threads.
    pub(crate) fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}
