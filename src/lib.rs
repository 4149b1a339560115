//! # coronet — Go's networking model for Rust
//!
//! Handler code is plain blocking code, one cheap coroutine per connection; underneath, a
//! read that would block parks the coroutine on an epoll netpoller and the worker runs
//! others until the socket is ready — the way Go's `net` package works.
//!
//! ```no_run
//! use coronet::net::TcpListener;
//! use std::io::{Read, Write};
//!
//! coronet::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         coronet::go(move || {
//!             let mut buf = [0u8; 4096];
//!             loop {
//!                 match stream.read(&mut buf) {
//!                     Ok(0) | Err(_) => break, // EOF or reset: the coroutine ends
//!                     Ok(n) => stream.write_all(&buf[..n]).unwrap(),
//!                 }
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! # What is where
//!
//! - [`net`] — `std::net`'s TCP, UDP and Unix sockets with Go's deadlines, `close` and
//!   error messages, plus [`Dialer`](net::Dialer), [`ListenConfig`](net::ListenConfig) and
//!   name lookup; [`os::unix::net`] has the Unix sockets under `std::os::unix::net`'s names.
//! - [`io`] — [`copy`](io::copy): `std::io::copy` that moves file → socket and socket →
//!   socket bytes in the kernel (`sendfile`, `splice`).
//! - [`chan`] — Go's channels for coroutines and threads alike, and [`select!`].
//! - [`sync`] — `Mutex`, `RwLock`, `Condvar`, `WaitGroup`, `Semaphore`, `Once` and
//!   `Barrier` that park a waiting coroutine instead of blocking its worker.
//! - [`time`] — [`sleep`](time::sleep), timer and ticker channels, and
//!   [`timeout`](time::timeout) for a function.
//! - [`context`] — Go's `context`: cancellation and deadlines handed down a tree of work.
//!
//! At the root: [`go`] and [`Spawn`] start coroutines and return a [`JoinHandle`]; [`run`]
//! runs a closure as a coroutine and waits for it (typically the body of `main`);
//! [`spawn_blocking`] moves a blocking foreign call off the workers; [`yield_now`],
//! [`park`] and [`current`] are the low-level scheduling calls; [`Builder`] configures the
//! runtime before first use; [`stats`] and [`dump`] show what it is doing.
//!
//! # The path of one `read`
//!
//! The folders are the layers:
//!
//! - `net/` — `TcpStream::read` calls `recv` through the fd layer;
//! - `poll/` — `fd.rs` runs the syscall; on `EAGAIN`, `desc.rs` puts the coroutine in the
//!   fd's read slot; `mod.rs`/`epoll.rs` are the netpoller, whose event later swaps the
//!   coroutine there for READY and hands it back to be woken (the coroutine, resumed,
//!   empties the slot);
//! - `runtime/` — `park.rs` suspends the coroutine, `worker.rs` runs others and finally
//!   sleeps in `epoll_wait`; the event unparks the coroutine to the back of its worker's run
//!   queue, and in its turn it resumes and retries `recv`, which returns the data.
//!
//! Beside the path, `io/` holds `copy`: std's `io::copy`, taking `sendfile`/`splice` between
//! files and sockets and waiting through the same `poll/fd.rs` calls.
//! `docs/life-of-a-read.md` names every hop of the path, and `cargo run --example trace`
//! prints them as they happen.
//!
//! # Rules worth knowing
//!
//! - A started coroutine never changes threads (`docs/runtime.md` says why and what it
//!   costs): `!Send` values and thread-local references on its stack are safe. A
//!   `thread_local!` is the worker's, shared by all its coroutines (`docs/porting.md`).
//! - Coroutines are not preempted: call [`yield_now`] in long CPU loops and
//!   [`spawn_blocking`] for calls that block the thread.
//! - Every blocking call also works on a plain OS thread, where it blocks the thread.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(target_os = "linux"))]
compile_error!("coronet runs on Linux only (epoll, eventfd)");

/// `log::trace!` for the per-request paths (park, unpark, a wait on an fd, an epoll wake).
///
/// The message is formatted in a separate, never-inlined function, so the caller's stack frame
/// does not reserve room for `fmt::Arguments` it almost never builds: those frames are what a
/// woken coroutine walks back through, and with a thousand connections every line of them is a
/// cache miss (`docs/benchmarks.md`, section 2). Same output as `log::trace!`.
macro_rules! hot_trace {
    ($($arg:tt)+) => {
        rt_log!(Trace, $($arg)+)
    };
}

/// How the runtime logs: `rt_log!(Debug, "…", …)` is `log::debug!("…", …)`, out of line, and
/// with the logger's panics caught.
///
/// A logger is user code, and the runtime logs in the middle of its protocols: a park's
/// line comes with the coroutine queued as a lock's waiter, an unpark's in the middle of a
/// lock's loop over the waiters it grants, other lines on the scheduler itself. A panic
/// unwinding from there left the waiter queued with nobody behind it (a mutex granted to
/// it stayed locked for good, a condvar's `notify_one` was spent on it), or granted waiters
/// never woken (an audit of the sync types, 2026-12-07), or, on the scheduler, aborted the
/// process. So a record whose logger panics is dropped: the panic hook has reported the
/// panic, and the runtime says once on stderr that it went on. The logger's `enabled` is
/// user code too, so only the level is checked before the guard.
macro_rules! rt_log {
    ($lvl:ident, $($arg:tt)+) => {
        if $crate::level_on(log::Level::$lvl) {
            $crate::cold_log(|| log::log!(log::Level::$lvl, $($arg)+));
        }
    };
}

/// Whether records of `lvl` may be logged: the level alone, as `rt_log!` checks it (the
/// logger's own `enabled` is user code and is asked inside the guard).
#[inline(always)]
pub(crate) fn level_on(lvl: log::Level) -> bool {
    lvl <= log::STATIC_MAX_LEVEL && lvl <= log::max_level()
}

/// `level_on(Trace)`, for code that prepares a trace record's values before `rt_log!`.
#[inline(always)]
pub(crate) fn trace_on() -> bool {
    level_on(log::Level::Trace)
}

/// Runs a logging closure out of line, catching a panic of the logger's; see `rt_log!`.
#[cold]
#[inline(never)]
pub(crate) fn cold_log(emit: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(emit)).is_err() {
        static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // Not `eprintln!`, which panics if stderr is gone (a logger's panic may be
            // just that: `prog 2>&1 | head`).
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "coronet: the logger panicked on one of the runtime's records; such records \
                 are dropped and the runtime goes on (said once)"
            );
        }
    }
}

mod any;
pub mod chan;
pub mod context;
pub mod io;
pub mod net;
pub mod os;
mod poll;
mod runtime;
pub mod sync;
pub mod time;

pub use runtime::{
    current, dump, dump_on_signal, exit, go, park, run, spawn_blocking, stats, try_go, yield_now,
    Builder, Coroutine, JoinHandle, Spawn, Stats, DEFAULT_STACK_SIZE,
};

#[allow(dead_code)]
fn _assert_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Coroutine>();
    send_sync::<JoinHandle<()>>();
    send_sync::<Builder>();
    send_sync::<Spawn>();
}
