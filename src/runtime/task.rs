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
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use super::park::Token;

/// What a task is, which decides how an unpark reaches it.
///
/// Kept small, with `Task` as a whole: a `Task` of at most 40 bytes makes its `Arc` 56 bytes,
/// one cache line and a 64-byte allocation, where 56 bytes of `Task` took two lines and 80.
/// Every parked coroutine has one, and every wake-up reads it.
pub(crate) enum Home {
    /// A coroutine. `worker` is set once, by the worker that starts it, and never changes:
    /// a started coroutine only ever runs on that worker (see `runtime/mod.rs`). `key` is its
    /// index in that worker's tables. `u32::MAX` in `worker`: not started yet.
    Coroutine { worker: AtomicU32, key: AtomicU32 },
    /// A plain OS thread, blocking in `std::thread::park` or in `poll(2)`: rarer, so boxed.
    Thread(Box<ThreadHome>),
}

pub(crate) struct ThreadHome {
    pub(crate) thread: std::thread::Thread,
    /// Made the first time the thread waits on an fd: written to break its `poll(2)`.
    pub(crate) wakefd: OnceLock<OwnedFd>,
}

/// Not yet started: a coroutine with no worker.
pub(crate) const NO_WORKER: usize = usize::MAX;
const NO_WORKER_U32: u32 = u32::MAX;

/// Life-cycle state, for `stats()` and `dump()`; written by the worker running the task,
/// except `Runnable`, which an unpark writes from whichever thread it runs on (relaxed: the
/// state is only read for reports).
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
    /// Boxed twice so the field is one pointer (see `Home`); only named tasks allocate.
    name: Option<Box<Box<str>>>,
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
    /// Asks for the lines of this record and its reference counts before a wake-up or a
    /// resume touches them. The allocation (about 56 bytes, 16-aligned) straddles two
    /// cache lines three times in four, so both ends are asked for. A hint: the counts'
    /// place before the record is `Arc`'s layout, and a wrong guess costs a line.
    #[inline(always)]
    pub(crate) fn prefetch(self: &Arc<Self>) {
        let p = Arc::as_ptr(self) as usize;
        super::worker::prefetch_line(p.wrapping_sub(2 * std::mem::size_of::<usize>()));
        super::worker::prefetch_line(p + std::mem::size_of::<Task>() - 1);
    }

    pub(crate) fn new_coroutine(name: Option<Box<str>>) -> Arc<Task> {
        Arc::new(Task {
            id: next_id(),
            name: name.map(Box::new),
            token: Token::new(),
            home: Home::Coroutine {
                worker: AtomicU32::new(NO_WORKER_U32),
                key: AtomicU32::new(0),
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
            name: thread.name().map(|n| Box::new(n.into())),
            token: Token::new(),
            home: Home::Thread(Box::new(ThreadHome {
                thread,
                wakefd: OnceLock::new(),
            })),
            state: AtomicU8::new(State::Running as u8),
            wait: AtomicU8::new(Wait::None as u8),
            wait_fd: AtomicI32::new(-1),
        })
    }

    /// The worker that owns this coroutine, or `NO_WORKER` before it starts / for a thread.
    pub(crate) fn worker(&self) -> usize {
        match &self.home {
            Home::Coroutine { worker, .. } => match worker.load(Ordering::Acquire) {
                NO_WORKER_U32 => NO_WORKER,
                w => w as usize,
            },
            Home::Thread(_) => NO_WORKER,
        }
    }

    /// A coroutine's index in its worker's tables (set by `started`).
    pub(crate) fn key(&self) -> usize {
        match &self.home {
            Home::Coroutine { key, .. } => key.load(Ordering::Relaxed) as usize,
            Home::Thread(_) => unreachable!("a thread has no worker slot"),
        }
    }

    /// Records that worker `worker` started this coroutine in slot `key`; once, by that worker.
    pub(crate) fn started(&self, worker: usize, key: usize) {
        let Home::Coroutine { worker: w, key: k } = &self.home else {
            unreachable!("a thread started as a coroutine")
        };
        let key = u32::try_from(key).expect("over 4 billion coroutines on one worker");
        let worker = u32::try_from(worker)
            .ok()
            .filter(|&w| w != NO_WORKER_U32)
            .expect("worker index fits u32");
        k.store(key, Ordering::Relaxed);
        w.store(worker, Ordering::Release);
    }

    /// The name given at spawn (a thread's own name for a thread's record).
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(|n| &**n)
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
        self.name().unwrap_or("<unnamed>")
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

#[cfg(test)]
mod layout {
    /// The claim of `Home`'s doc: a `Task` fits in 40 bytes, so its `Arc` in one cache line.
    #[test]
    fn a_task_and_its_counts_fit_in_one_cache_line() {
        assert!(std::mem::size_of::<super::Task>() <= 40);
        assert!(std::mem::size_of::<super::Task>() + 2 * std::mem::size_of::<usize>() <= 64);
    }
}
