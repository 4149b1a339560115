//! The runtime: coroutines, the workers that run them, and the one park/unpark protocol.
//!
//! # A coroutine's life
//!
//! | state    | how it gets there                         | where it is                       |
//! |----------|-------------------------------------------|-----------------------------------|
//! | created  | `go(f)`                                   | a worker's `fresh` queue (`Send`) |
//! | queued   | waiting; any worker may steal it          | `fresh` queue (`same_worker`,     |
//! |          |                                           | `spread`, `main`: `pinned`, never |
//! |          |                                           | stolen)                           |
//! | running  | a worker gives it a stack and resumes it  | that worker's thread              |
//! | parked   | `park()`: I/O, join, sleep, channel, lock | its worker's `coros` table        |
//! | runnable | `unpark()` from any thread                | its worker's `runnext` / queue    |
//! |          |                                           | (via `remote` from other threads) |
//! | finished | `f` returned or panicked                  | result in the `JoinHandle`        |
//!
//! # The pinning rule
//!
//! **A started coroutine only ever runs on the worker that started it.** Its stack may hold
//! `!Send` values (`Rc`, `RefCell` borrows, `MutexGuard`s) and references into the
//! thread-locals of that thread; resuming it on another thread would be undefined
//! behaviour, which is why corosensei's `Coroutine` is `!Send`. So load is spread only by
//! coroutines that have not started yet: they sit in a per-worker queue of `Send` closures
//! from which idle workers steal. Once started, the `Coroutine` lives in its worker's
//! thread-local table (`worker::Local`), out of reach of every other thread; an unpark from
//! another thread sends only the `Arc<Task>` record back to the owner's queue.
//!
//! The cost: a worker whose coroutines are all busy cannot hand them to an idle one. A
//! coroutine spawned while the other workers are idle tends to start on the spawner's own
//! worker and stay there, so the handlers of a server that accepts on one coroutine may all
//! end up on one worker; `Spawn::spread` places each on a worker of its own choosing
//! (docs/runtime.md, *The pinning rule*, has the measurements).
//!
//! # Files
//!
//! - `task.rs`: the shared record of a waiter (coroutine or thread).
//! - `park.rs`: the park token and its protocol.
//! - `worker.rs`: the scheduler loop, resume, the per-worker halves (`Shared`, `Local`).
//! - `idle.rs`: the workers' inboxes (`fresh`, `remote`), stealing, the searcher role and
//!   the sleep/wake handshake.
//! - `runq.rs`: a worker's run queue of started coroutines and its `runnext`.
//! - `spawn.rs`: `go`, `Spawn`, `JoinHandle`, `run`.
//! - `stack.rs`: mmap'd stacks with guard pages, their pool, the overflow handler.
//! - `blocking.rs`: `spawn_blocking`'s thread pool.
//! - `spin.rs`: the spin lock of the queues workers share.
//! - `stats.rs`: `stats()` and `dump()`.
//! - `sysmon.rs`: the monitor thread: stall reports, `dump_on_signal`'s listings.
//! - `sanitize.rs`: stack switches announced to ThreadSanitizer (`.ci/tsan`; empty otherwise).

pub(crate) mod blocking;
mod idle;
pub(crate) mod park;
mod runq;
pub(crate) mod sanitize;
mod spawn;
mod spin;
pub(crate) mod stack;
mod stats;
mod sysmon;
pub(crate) mod task;
pub(crate) mod worker;

use std::io;
use std::process::{ExitCode, Termination};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use self::blocking::spawn_blocking;
pub use self::spawn::{
    current, exit, go, park, run, try_go, yield_now, Coroutine, JoinHandle, Spawn,
};
pub(crate) use self::spawn::{go_beside, resume_here};
pub use self::stats::{dump, dump_on_signal, stats, Stats};

/// Default usable stack size of a coroutine: 256 KiB.
///
/// Stacks cannot grow (there is no stack copying as in Go), so the default must fit real
/// code — TLS handshakes, serde, formatting — with room to spare. It costs address space,
/// not memory: only pages a coroutine touches become resident (a parked echo handler
/// touches one or two), and 256 KiB × 100,000 coroutines is 25 GiB of virtual space, which
/// 64-bit Linux gives freely. Shrink it per coroutine with `Spawn::stack_size` when you run
/// hundreds of thousands of small ones.
///
/// ```
/// // A deeply recursive parser gets four times the default; everything else keeps it.
/// let h = coronet::Spawn::new()
///     .stack_size(4 * coronet::DEFAULT_STACK_SIZE)
///     .try_go(|| "parsed")?;
/// assert_eq!(h.join().unwrap(), "parsed");
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// Configures the global runtime before its first use.
///
/// ```
/// // In main(), before anything else touches coronet:
/// coronet::Builder::new().workers(2).stack_size(128 << 10).build_global()?;
/// assert_eq!(coronet::stats().workers, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    stack_size: usize,
    max_blocking_threads: usize,
    stall_report: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            stack_size: DEFAULT_STACK_SIZE,
            max_blocking_threads: blocking::MAX_THREADS,
            stall_report: Some(sysmon::STALL_AFTER),
        }
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available CPU, [`DEFAULT_STACK_SIZE`].
    ///
    /// ```
    /// // In main(), before anything else touches coronet:
    /// coronet::Builder::new().build_global()?;
    /// assert!(coronet::stats().workers >= 1); // one per CPU
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The number of worker threads (at least 1).
    ///
    /// ```
    /// coronet::Builder::new().workers(2).build_global()?;
    /// assert_eq!(coronet::stats().workers, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = n.max(1);
        self
    }

    /// The default usable stack size of a coroutine, in bytes (rounded up to whole pages,
    /// and to at least 16 KiB as std does for threads).
    ///
    /// ```
    /// // Many small coroutines: 64 KiB each instead of the default 256 KiB.
    /// coronet::Builder::new().stack_size(64 << 10).build_global()?;
    /// let handles: Vec<_> = (0..1000).map(|i| coronet::go(move || i)).collect();
    /// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    /// assert_eq!(sum, 499_500);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// The most threads the blocking pool ([`spawn_blocking`](crate::spawn_blocking), and the
    /// runtime's own blocking work) runs at once: 512 by default, at least 1. Jobs beyond it
    /// wait in a queue for a thread to finish, so a program whose blocking jobs wait for
    /// each other needs a cap above the number that can wait at once (512 jobs that each
    /// wait for a 513th would never finish under the default). The runtime's name lookups
    /// may go past the cap, up to 500 at once, as they must not queue behind jobs waiting
    /// for them. Pool threads exit after 10 s without work, so a high cap costs nothing
    /// while idle. Takes effect when this builder starts the runtime.
    ///
    /// ```
    /// coronet::Builder::new().max_blocking_threads(4).build_global()?;
    /// let jobs: Vec<_> = (0..16)
    ///     .map(|i| coronet::go(move || coronet::spawn_blocking(move || i * 2)))
    ///     .collect();
    /// let sum: u32 = jobs.into_iter().map(|j| j.join().unwrap()).sum();
    /// assert_eq!(sum, 240);
    /// assert!(coronet::stats().blocking_threads <= 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = n.max(1);
        self
    }

    /// After how long a coroutine that holds its worker — neither parks nor yields — while
    /// other coroutines of that worker wait is reported on stderr: 2 s by default, `None`
    /// for never (and at least 1 ms). Such a coroutine is blocking its thread (a std
    /// `Mutex`, `Condvar`, channel, sleep or socket, or a long computation), and every other
    /// coroutine of its worker stops with it; a program can hang that way in silence, where
    /// Go would have moved the goroutines to another thread. The report names the
    /// coroutine and the worker, and a second line says when it lets go:
    ///
    /// ```text
    /// coronet: coroutine 7 'handler' has held worker 0 for 2.0 s or more without parking …
    /// coronet: a call that blocks the thread (…) stops every coroutine of its worker: …
    /// coronet: coroutine 7 'handler' let worker 0 go after 5.0 s or more
    /// ```
    ///
    /// The runtime's monitor thread (`coronet-sysmon`, after Go's `sysmon`) looks at each
    /// worker's count of resumes every quarter of the threshold (every 500 ms at most); the
    /// scheduler does nothing more for it, and the durations it prints are lower bounds (up
    /// to one look short, and less any time the whole process stood still, stopped by a
    /// signal or a debugger). Not reported: a worker asleep; a coroutine alone on its worker,
    /// or whose worker's other coroutines could all be started by another worker. A worker held
    /// with no coroutine running — by a logger that waits, on one of the runtime's own
    /// lines, for a lock a coroutine holds — is reported in its own words; so is a blocking
    /// pool ([`spawn_blocking`](crate::spawn_blocking)) that has taken no job from its queue
    /// for the threshold while jobs wait there (all its threads busy: jobs that wait for
    /// each other beyond [`max_blocking_threads`](Builder::max_blocking_threads) never end).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// coronet::Builder::new()
    ///     .stall_report(Some(Duration::from_secs(10)))
    ///     .build_global()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stall_report(mut self, after: Option<Duration>) -> Builder {
        self.stall_report = after;
        self
    }

    /// Starts the global runtime with this configuration.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if the runtime already started (anything that spawns, sleeps in a
    /// coroutine or waits through coronet starts it); `InvalidInput` if the
    /// [`stack_size`](Builder::stack_size) cannot fit in the address space (rounded up to
    /// whole pages, with a guard page); or, if a worker's epoll or thread
    /// cannot be created, an error of the OS error's kind that says so: `cannot start the
    /// runtime: worker 0's epoll and eventfd: Too many open files (os error 24)`.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// coronet::Builder::new().workers(1).build_global()?;
    /// coronet::go(|| ()).join().unwrap();
    /// // Once the runtime runs, its configuration is fixed.
    /// let err = coronet::Builder::new().workers(4).build_global().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    /// assert_eq!(coronet::stats().workers, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_global(self) -> io::Result<()> {
        self.start_first("build_global", false).map(drop)
    }

    /// Starts the global runtime with the calling thread as worker 0, runs `f` there as the
    /// coroutine `main`, and ends the process when `f` returns — as a Go program ends when
    /// its `main` returns, without waiting for other coroutines. The exit status is the one
    /// `f`'s result reports (0 for `()`, below), or 101 if `f` panics (after the panic's
    /// message, as for a Rust `main`); `f` can also end the process at any point through
    /// [`coronet::exit`](crate::exit).
    ///
    /// `f` may return whatever a Rust `main` may (any [`Termination`]: `()`,
    /// `Result<(), E: Debug>`, [`ExitCode`](std::process::ExitCode)), and the process ends
    /// as after that `main`: an `Err` prints `Error: ` and its `Debug` on stderr and exits
    /// with status 1. A body that never returns (`|| loop { … }`) compiles as well, in
    /// every edition. So an old `fn main() -> io::Result<()>` moves in with its `?`s:
    ///
    /// ```no_run
    /// use coronet::net::TcpListener;
    /// use std::io::Write;
    ///
    /// fn main() -> std::io::Result<()> {
    ///     coronet::Builder::new().main(|| -> std::io::Result<()> {
    ///         let listener = TcpListener::bind("127.0.0.1:7001")?;
    ///         let (mut conn, _) = listener.accept()?;
    ///         conn.write_all(b"hello\n")
    ///     })?;
    ///     unreachable!("main() returns only an error")
    /// }
    /// ```
    ///
    /// The difference from [`build_global`](Builder::build_global) and [`run`](crate::run):
    /// no thread sits blocked in `run` beside the workers, so with `workers(1)` the process
    /// has one thread that uses its fds (until `spawn_blocking` or `lookup_host` starts a
    /// blocking-pool thread): the runtime's monitor thread
    /// ([`stall_report`](Builder::stall_report)) moves to a fd table of its own where the
    /// kernel allows it (`unshare`, `pidfd_open` and `pidfd_getfd`, Linux 5.6; Docker's
    /// default seccomp profile grants the first and the last only with added capabilities;
    /// `src/runtime/sysmon.rs`). That is cheaper to run: Linux takes and drops a reference
    /// on the socket's open file in every syscall of a process whose fd table two threads
    /// share (`fdget`); a small-message echo server on one worker spends 1–2 % less CPU per
    /// request this way (docs/benchmarks.md).
    /// The calling thread never leaves the scheduler after this: the coroutines that start
    /// on it can run on no other thread (the pinning rule in `runtime/mod.rs`), so it serves
    /// them until the process ends.
    ///
    /// # Errors
    ///
    /// Returns only if the runtime or `main` cannot start: `AlreadyExists` if the runtime
    /// already runs, the errors of [`build_global`](Builder::build_global), or the error of
    /// mapping `main`'s stack (out of memory, `vm.max_map_count`; the message says which),
    /// which is mapped before the runtime starts.
    ///
    /// ```no_run
    /// use coronet::net::TcpListener;
    /// use std::io::{Read, Write};
    ///
    /// fn main() -> std::io::Result<()> {
    ///     // One thread in all: the listener, the handlers and the netpoller share it.
    ///     coronet::Builder::new().workers(1).main(|| {
    ///         let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
    ///         for conn in listener.incoming() {
    ///             let mut conn = match conn {
    ///                 Ok(conn) => conn,
    ///                 Err(e) => {
    ///                     // Out of fds, say: back off, as Go's HTTP server does
    ///                     // (examples/echo.rs doubles the pause up to 1 s).
    ///                     eprintln!("accept: {e}");
    ///                     coronet::time::sleep(std::time::Duration::from_millis(5));
    ///                     continue;
    ///                 }
    ///             };
    ///             coronet::go(move || {
    ///                 let mut buf = [0; 4096];
    ///                 while let Ok(n @ 1..) = conn.read(&mut buf) {
    ///                     if conn.write_all(&buf[..n]).is_err() {
    ///                         break;
    ///                     }
    ///                 }
    ///             });
    ///         }
    ///     })?;
    ///     unreachable!("main() returns only an error")
    /// }
    /// ```
    pub fn main<F, R>(self, f: F) -> io::Result<std::convert::Infallible>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Termination,
    {
        // The stack first: once this thread is worker 0 nothing can come back to the caller,
        // and a `main` that could not start would leave the process idle for ever.
        let stack = stack::Stack::new(self.stack_size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("coronet: Builder::main: no stack for the coroutine main: {e}"),
            )
        })?;
        let rt = self.start_first("main", true)?;
        // Queued on worker 0's `same_worker` queue, which no other worker steals from: `main`
        // starts on this thread, whatever the number of workers, so a thread-local the caller
        // set before, or anything else tied to the process's first thread, is still `main`'s.
        let main = spawn::Spawn::new().name("main");
        drop(main.go_on_worker_0(rt, stack, move || {
            // `report` prints an `Err` as a Rust `main`'s would; it is user code too
            let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f().report()));
            let status = match ended {
                Ok(code) => exit_status(code),
                // the panic hook has printed the message, as for a Rust `main`
                Err(_) => 101,
            };
            rt_log!(
                Debug,
                "coroutine main returned; the process exits with status {status}"
            );
            // Flushes std's stdout and runs the atexit handlers, as the end of a Rust `main`
            // does, from the scheduler's stack (`exit`). Nothing else is dropped: the
            // workers' halves are leaked (`worker::run`) and the coroutines' stacks stay
            // mapped until the process is gone.
            crate::exit(status)
        }));
        worker::run(rt, 0)
    }

    /// `start`, unless the runtime already runs; `method` names the caller in the error.
    fn start_first(self, method: &str, caller_runs_0: bool) -> io::Result<&'static Runtime> {
        // An impossible default stack would start a runtime on which every `go` fails.
        stack::mapped_size(self.stack_size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("coronet: Builder::{method}: Builder::stack_size: {e}"),
            )
        })?;
        let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
        if RUNTIME.get().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "coronet: the global runtime already started; call Builder::{method} \
                     before the first go/run/sleep"
                ),
            ));
        }
        start(self, caller_runs_0)
    }
}

/// The status `code` stands for. `ExitCode` keeps its number to itself on stable Rust, but
/// compares: on Unix it is one of 256 bytes.
fn exit_status(code: ExitCode) -> i32 {
    if code == ExitCode::SUCCESS {
        return 0;
    }
    (1..=u8::MAX)
        .find(|&b| code == ExitCode::from(b))
        .map_or(1, i32::from)
}

/// The global runtime: shared halves of the workers and the scheduler's idle bookkeeping.
pub(crate) struct Runtime {
    pub(crate) workers: Box<[Arc<worker::Shared>]>,
    pub(crate) stack_size: usize,
    /// Which workers sleep, and whether one is out searching (`idle.rs`).
    pub(crate) sleepers: idle::Sleepers,
    rr: AtomicUsize,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Set as a scheduler ends the process for `exit`: a wait the exit's destructors make on a
/// worker thread is reported in those words (`park.rs`).
pub(crate) static EXITING: AtomicBool = AtomicBool::new(false);

/// The global runtime, started on first use with the default [`Builder`].
pub(crate) fn runtime() -> io::Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let _init = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if RUNTIME.get().is_none() {
        start(Builder::default(), false)?;
    }
    Ok(RUNTIME.get().expect("runtime set by start"))
}

/// The runtime if it has started, without starting it.
pub(crate) fn runtime_started() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Builds the workers and starts their threads — all but worker 0's if `caller_runs_0`, whose
/// thread is the caller's, to enter `worker::run` once `INIT` is released. Called with `INIT`
/// held.
fn start(b: Builder, caller_runs_0: bool) -> io::Result<&'static Runtime> {
    stack::install_overflow_handler();
    spawn::install_panic_note();
    // Errors say it was the runtime's own set-up that failed, not the caller's call.
    let cannot = |what: String, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot start the runtime: {what}: {e}"))
    };
    let workers = (0..b.workers)
        .map(|i| {
            worker::Shared::new(i)
                .map(Arc::new)
                .map_err(|e| cannot(format!("worker {i}'s epoll and eventfd"), e))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let rt = Runtime {
        workers: workers.into_boxed_slice(),
        stack_size: b.stack_size,
        sleepers: idle::Sleepers::new(),
        rr: AtomicUsize::new(0),
    };
    // Every worker thread first, each waiting for the go: if one cannot be made (out of
    // threads), the others see their sender dropped and exit, and no half-started runtime is
    // left set, with coroutines queued on a worker that has no thread.
    let mut go = Vec::with_capacity(b.workers);
    for i in usize::from(caller_runs_0)..b.workers {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&'static Runtime>(1);
        std::thread::Builder::new()
            .name(format!("coronet-worker-{i}"))
            .spawn(move || {
                if let Ok(rt) = rx.recv() {
                    worker::run(rt, i)
                }
            })
            .map_err(|e| cannot(format!("worker {i}'s thread"), e))?;
        go.push(tx);
    }
    blocking::set_max_threads(b.max_blocking_threads);
    if RUNTIME.set(rt).is_err() {
        unreachable!("runtime started twice under INIT");
    }
    let rt = RUNTIME.get().expect("just set");
    for tx in go {
        tx.send(rt).expect("a worker thread waits for its start");
    }
    // A diagnostic: a runtime without it runs all the same.
    if let Err(e) = sysmon::set_stall_report(b.stall_report) {
        rt_log!(
            Debug,
            "no stall reports: the monitor thread cannot start: {e}"
        );
    }
    rt_log!(
        Debug,
        "runtime started: {} worker(s){}, default stack {} KiB, blocking pool up to {} threads",
        b.workers,
        if caller_runs_0 {
            " (worker 0 on the caller's thread)"
        } else {
            ""
        },
        b.stack_size >> 10,
        b.max_blocking_threads
    );
    Ok(rt)
}

impl Runtime {
    /// Round-robin choice of a worker for coroutines spawned from plain threads.
    pub(crate) fn next_worker(&self) -> usize {
        self.rr.fetch_add(1, Ordering::Relaxed) % self.workers.len()
    }
}
