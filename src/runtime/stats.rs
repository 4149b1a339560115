//! `stats()` and `dump()`: what the runtime is doing, in numbers and as a listing.

use std::fmt::{self, Write as _};
use std::sync::atomic::Ordering;

use super::task::{State, Wait};

/// A snapshot of the runtime's counters. Gauges are sums of per-worker counters read
/// without stopping the workers, so they are approximate while coroutines are moving.
///
/// ```
/// use coronet::net::UnixStream;
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let (mut a, mut b) = UnixStream::pair()?;
/// let reader = coronet::go(move || b.read(&mut [0u8; 8]).unwrap());
/// // Wait (generously) until the reader has parked on its socket.
/// for _ in 0..500 {
///     if coronet::stats().parked_io == 1 {
///         break;
///     }
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// let s = coronet::stats();
/// assert_eq!((s.live, s.parked_io), (1, 1));
/// a.write_all(b"x")?; // the netpoller wakes the reader
/// assert_eq!(reader.join().unwrap(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads.
    pub workers: usize,
    /// Coroutines spawned and not yet finished (queued, running, runnable or parked).
    pub live: u64,
    /// Coroutines not parked: not started yet, woken and queued, or running (at most one
    /// per worker — the one calling `stats()`, if a coroutine does).
    pub runnable: u64,
    /// Coroutines parked on a socket (the netpoller will wake them).
    pub parked_io: u64,
    /// Coroutines parked on anything else: timers, joins, channels, locks, the blocking pool.
    pub parked_other: u64,
    /// Coroutines ever started.
    pub spawned: u64,
    /// Coroutine resumes (each is a switch in and, later, out).
    pub context_switches: u64,
    /// `epoll_wait` calls by all workers.
    pub epoll_waits: u64,
    /// Successful steals of unstarted coroutines between workers.
    pub steals: u64,
    /// Threads in the blocking pool.
    pub blocking_threads: usize,
    /// Memory mappings made for coroutine stacks (and the workers' signal stacks) since the
    /// process started: one per batch of up to 64 stacks on Linux 6.13 and later, one per
    /// stack before. It stops growing once the workers' stack pools are warm, except for
    /// `try_go` from a plain thread (which maps its stack at once, one each), `try_go` of a
    /// coroutine that starts on another worker than the caller's (`Spawn::spread`, or a
    /// steal: its stack leaves the caller's pool and returns to the other worker's, so the
    /// caller's keeps mapping new batches), and sizes beyond what the pools keep (each list
    /// is capped).
    pub stack_mappings: u64,
}

/// Returns the runtime's counters (all zero before it starts).
///
/// ```
/// coronet::go(|| ()).join().unwrap();
/// assert!(coronet::stats().spawned >= 1);
/// ```
pub fn stats() -> Stats {
    let Some(rt) = super::runtime_started() else {
        return Stats::default();
    };
    let mut s = Stats {
        workers: rt.workers.len(),
        blocking_threads: super::blocking::pool_threads().0,
        stack_mappings: super::stack::mappings_made(),
        ..Stats::default()
    };
    let mut started = 0;
    let mut finished = 0;
    let mut queued = 0;
    for w in rt.workers.iter() {
        let c = &w.counters;
        started += c.started.load(Ordering::Relaxed);
        finished += c.finished.load(Ordering::Relaxed);
        s.context_switches += c.switches.load(Ordering::Relaxed);
        s.epoll_waits += c.epoll_waits.load(Ordering::Relaxed);
        s.steals += c.steals.load(Ordering::Relaxed);
        s.parked_io += c.parked_io.load(Ordering::Relaxed);
        s.parked_other += c.parked_other.load(Ordering::Relaxed);
        queued += (w.inbox.fresh().len() + w.pinned.len()) as u64;
    }
    s.spawned = started;
    s.live = started.saturating_sub(finished) + queued;
    let parked = s.parked_io + s.parked_other;
    // started-and-live coroutines are running, parked or runnable; running ones are at most
    // one per worker and are counted as runnable here.
    s.runnable = queued + started.saturating_sub(finished).saturating_sub(parked);
    s
}

/// A text listing of live coroutines — id, name, state and what each waits on — like the
/// goroutine dump Go prints on SIGQUIT.
///
/// ```
/// use std::time::Duration;
///
/// let (tx, rx) = coronet::chan::bounded::<()>(0);
/// let h = coronet::Spawn::new().name("waiter").go(move || rx.recv());
/// // Wait (generously) until it has parked on the channel.
/// let mut listing = coronet::dump();
/// for _ in 0..500 {
///     if listing.contains("'waiter' [chan receive]") {
///         break;
///     }
///     std::thread::sleep(Duration::from_millis(10));
///     listing = coronet::dump();
/// }
/// assert!(listing.contains("'waiter' [chan receive]"), "{listing}");
/// tx.send(()).unwrap();
/// h.join().unwrap().unwrap();
/// ```
pub fn dump() -> String {
    let mut out = String::new();
    let Some(rt) = super::runtime_started() else {
        return "coronet: runtime not started\n".into();
    };
    let s = stats();
    let _ = writeln!(
        out,
        "coronet: {} worker(s), {} live, {} runnable, {} parked on I/O, {} parked otherwise",
        s.workers, s.live, s.runnable, s.parked_io, s.parked_other
    );
    for w in rt.workers.iter() {
        let tasks = w.live_tasks();
        let fresh = w.fresh_tasks();
        let _ = writeln!(
            out,
            "\nworker {}: {} started, {} not started",
            w.index,
            tasks.len(),
            fresh.len()
        );
        for t in tasks.iter().chain(fresh.iter()) {
            let _ = writeln!(out, "{}", Line(t));
        }
    }
    out
}

/// Prints [`dump`] on stderr each time the process receives `signal`, and goes on — as the
/// JVM answers `SIGQUIT` (Go's runtime dumps its goroutines and exits). The way to see,
/// from outside, what a program that seems hung waits on: `kill -QUIT <pid>` after
/// `coronet::dump_on_signal(libc::SIGQUIT)` early in `main`. The listing comes from a
/// thread of its own, so a worker held by a blocking call (a std `Mutex`, `thread::sleep`)
/// does not hold it up, and shows that worker's coroutine `[running]`.
///
/// The handler only writes a byte to a pipe (async-signal-safe); the runtime's monitor
/// thread (`coronet-sysmon`, which also reports stalls: `Builder::stall_report`) makes the
/// listing and writes it to the program's stderr. Calling again for the same signal changes
/// nothing.
///
/// # Errors
///
/// `InvalidInput` for a signal the runtime or the kernel keeps for itself: the faults
/// raised at a faulting instruction (`SIGSEGV` and `SIGBUS`, which also report stack
/// overflows, `SIGILL`, `SIGFPE`, `SIGTRAP`, `SIGSYS`: a handler that returns would run the
/// instruction again for ever), `SIGKILL`, `SIGSTOP`, and numbers that are no signal; the
/// error of `pipe2`, `sigaction` or the thread's start otherwise.
///
/// The monitor thread stays for the process's life. In a process that has no other thread
/// (a `Builder::main` program with one worker) it keeps a fd table of its own where the
/// kernel allows it, so the kernel still skips its per-call reference on each socket's open
/// file (see `Builder::main`). A program that closes fds it does not own (a `closefrom` of
/// its own) can take the monitor's pipe: the monitor then stops and the signal is ignored
/// from then on (the monitor says so on stderr when it notices, which a number reused at
/// once for a file that never becomes readable can delay for good).
///
/// ```no_run
/// coronet::dump_on_signal(libc::SIGQUIT)?;
/// // … later, from a shell: kill -QUIT <pid>
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_on_signal(signal: i32) -> std::io::Result<()> {
    use std::io;
    use std::sync::Mutex;
    static INSTALLED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

    // The faults the kernel raises at the faulting instruction: a handler that returns
    // runs that instruction again, which faults again, for ever (a review found `ud2`
    // under SIGILL printing 120,000 listings in 2 s instead of dying). SIGSEGV and SIGBUS
    // also report stack overflows.
    const FAULTS: [i32; 6] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];
    if FAULTS.contains(&signal)
        || matches!(signal, libc::SIGKILL | libc::SIGSTOP)
        || !(1..=libc::SIGRTMAX()).contains(&signal)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("coronet::dump_on_signal: signal {signal} cannot be used"),
        ));
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.contains(&signal) {
        return Ok(());
    }
    super::sysmon::ensure_started()?;
    // SAFETY: all-zero is a valid `sigaction` (no flags, empty mask), then filled in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction =
        super::sysmon::on_dump_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // On the worker's alternate stack if it has one: a coroutine's may be small.
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `action` is a valid action whose handler is async-signal-safe (above).
    if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    installed.push(signal);
    Ok(())
}

struct Line<'a>(&'a super::task::Task);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "coroutine {} '{}' [", t.id, t.display_name())?;
        match t.state() {
            State::Queued => write!(f, "not started")?,
            State::Running => write!(f, "running")?,
            State::Runnable => write!(f, "runnable")?,
            State::Finished => write!(f, "finished")?,
            State::Parked => match t.wait() {
                Wait::IoRead => write!(f, "IO wait: read fd {}", t.wait_fd())?,
                Wait::IoWrite => write!(f, "IO wait: write fd {}", t.wait_fd())?,
                Wait::Sleep => write!(f, "sleep")?,
                Wait::Join => write!(f, "join")?,
                Wait::Blocking => write!(f, "blocking pool")?,
                Wait::Sync => write!(f, "sync")?,
                Wait::Park => write!(f, "park")?,
                Wait::ChanRecv => write!(f, "chan receive")?,
                Wait::ChanSend => write!(f, "chan send")?,
                Wait::Select => write!(f, "select")?,
                Wait::None => write!(f, "parked")?,
            },
        }
        write!(f, "]")
    }
}
