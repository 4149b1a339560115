//! The monitor thread, `coronet-sysmon` (after Go's `sysmon`): it reports a worker held by
//! one coroutine, and prints `dump()` when a signal asked for one (`dump_on_signal`).
//!
//! # Stalls
//!
//! A coroutine that blocks its thread — a std `Mutex`, `Condvar`, channel or sleep, a std
//! socket, a long computation — stops every other coroutine of its worker until it returns,
//! and a coroutine of that worker is often what it waits for: the program then hangs in
//! silence. Go preempts such a goroutine or hands its P to another thread; coronet can do
//! neither (a started coroutine never moves, `runtime/mod.rs`), so it says so instead. Each
//! worker bumps `Counters::switches` at every resume; this thread reads the counters every
//! quarter of the threshold (`Builder::stall_report`, 2 s by default), and a worker whose
//! count has not moved for the threshold, which is not asleep in `epoll_wait` and has other
//! coroutines, is held by the one coroutine it shows `Running`. One report per stall, and a
//! line when it ends. Nothing is added to the scheduler's path: the counter was there for
//! `stats()`.
//!
//! # A file table of its own
//!
//! Linux takes and drops a reference on a socket's open file in every syscall of a process
//! whose fd table is shared by two threads or more (`fdget`), and skips it while one thread
//! has it: about 50 ns a call on the Zen 4 guest, 2 % of a one-worker echo server's CPU
//! (docs/benchmarks.md). So when this thread would be the second of the process (a
//! `Builder::main` program with one worker), it moves to a copy of the table
//! (`unshare(CLONE_FILES)`) and closes there everything but its pipe's read end and a pidfd
//! of the process: the worker's table has one user again, and this thread holds no reference
//! that could keep a socket the program closes open. (Closing those copies releases none of
//! the program's `fcntl` locks: Linux keys them to the table they were taken through.) To
//! write a report it borrows the program's current stderr for the write (`pidfd_getfd`), so
//! a later `dup2` onto fd 2 is followed; where that call is refused (a kernel before 5.6,
//! seccomp) it keeps its copy of the stderr of the moment instead.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::task::State;
use super::Runtime;

/// The default of `Builder::stall_report`.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(2);

/// The threshold in force, in milliseconds; 0: no stall reports.
static STALL_AFTER_MS: AtomicU64 = AtomicU64::new(0);

/// The write end of the thread's pipe, for the signal handler; -1 until the thread runs.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

/// Whether the thread was started (under the lock, so it starts once).
static STARTED: Mutex<bool> = Mutex::new(false);

/// A byte on the pipe: print the listing.
const DUMP: u8 = 1;
/// A byte on the pipe: the threshold changed, read it again.
const RECONFIGURE: u8 = 2;

/// The longest the thread sleeps between two looks while stall reports are on.
const MAX_TICK: Duration = Duration::from_millis(500);

/// Sets the stall threshold (`None`: off) and starts the thread if reports are on.
pub(crate) fn set_stall_report(after: Option<Duration>) -> io::Result<()> {
    let ms = after.map_or(0, |d| (d.as_millis() as u64).max(1));
    STALL_AFTER_MS.store(ms, Ordering::Relaxed);
    if ms == 0 && !*lock_started() {
        return Ok(());
    }
    ensure_started()?;
    poke(RECONFIGURE);
    Ok(())
}

/// The signal handler of `dump_on_signal`: asks the thread for a listing.
pub(crate) extern "C" fn on_dump_signal(_: libc::c_int) {
    // SAFETY: `__errno_location` gives this thread's errno; the handler restores it, as a
    // handler must not change what the interrupted code sees.
    let errno = unsafe { *libc::__errno_location() };
    poke(DUMP);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Writes `byte` to the pipe if the thread runs. Async-signal-safe: one load, one write(2).
fn poke(byte: u8) {
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a live one-byte array. The
        // end is nonblocking: with the pipe full a look is already due, and this byte is
        // dropped rather than blocking the thread the signal interrupted.
        unsafe { libc::write(fd, [byte].as_ptr().cast(), 1) };
    }
}

fn lock_started() -> std::sync::MutexGuard<'static, bool> {
    STARTED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the thread once; later calls return at once.
pub(crate) fn ensure_started() -> io::Result<()> {
    let mut started = lock_started();
    if *started {
        return Ok(());
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just made both fds, and nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let r_num = r.as_raw_fd();
    let (moved_tx, moved_rx) = std::sync::mpsc::sync_channel(1);
    crate::net::socket::set_nonblocking(std::os::fd::AsFd::as_fd(&w), true)?;
    // The thread starts with every signal blocked (it inherits the mask in force at its
    // spawn), so no handler runs on it, its calls are never interrupted, and a signal sent
    // to the process goes to a thread of the program; the caller's own mask is put back at
    // once, and a signal meanwhile waits, it is not lost.
    // SAFETY: all-zero is a valid sigset_t to fill; both are this frame's own.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: `all` and `old` are valid sigset_t's; pthread_sigmask changes only this
    // thread's mask, and the next one restores it.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let spawned = std::thread::Builder::new()
        .name("coronet-sysmon".into())
        .spawn(move || run(r, moved_tx));
    // SAFETY: as above; `old` holds the mask saved there.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    spawned?;
    // A thread that moved to a table of its own took the read end's copy with it; the copy
    // left in the process's table is nobody's, and goes.
    if moved_rx.recv() == Ok(true) {
        // SAFETY: `r_num` names, in this (the process's) table, the read end the thread no
        // longer uses: its own table has a copy of its own under the same number.
        unsafe { libc::close(r_num) };
    }
    // Kept open for the process's life: the handler may write at any time.
    PIPE_W.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::Relaxed);
    *started = true;
    Ok(())
}

/// Where the thread's reports go.
enum Stderr {
    /// The process's fd 2 (the thread shares the fd table).
    Shared,
    /// The program's fd 2 of the moment, borrowed through this pidfd for each report.
    Borrowed(OwnedFd),
    /// A copy of fd 2 kept in the thread's own table (no `pidfd_getfd`).
    Kept,
}

impl Stderr {
    /// Writes `text` whole, as one report; errors are dropped (a report must never take the
    /// process down, and stderr may be gone).
    fn write(&self, text: &str) {
        let borrowed;
        let fd = match self {
            Stderr::Shared | Stderr::Kept => 2,
            Stderr::Borrowed(pidfd) => {
                // SAFETY: pidfd_getfd reads no memory of ours; the new fd is ours to own.
                let fd = unsafe {
                    libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), 2, 0) as RawFd
                };
                if fd < 0 {
                    return;
                }
                // SAFETY: the fd was just made in this thread's table and nothing else owns it.
                borrowed = unsafe { OwnedFd::from_raw_fd(fd) };
                borrowed.as_raw_fd()
            }
        };
        // Raw writes, not `std::io::stderr()`: its lock may be held by a coroutine of the
        // very worker this report is about.
        let mut bytes = text.as_bytes();
        while !bytes.is_empty() {
            // SAFETY: `bytes` is a live slice; write(2) reads at most its length.
            let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                return;
            }
            bytes = &bytes[n as usize..];
        }
    }
}

/// Threads of this process, from /proc (0 if it cannot be read).
fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Moves this thread to a fd table of its own holding only `keep`, if it is the process's
/// second thread (see the module doc); how it will reach stderr, and whether it moved.
fn own_table_if_second(keep: RawFd) -> (Stderr, bool) {
    if process_threads() != 2 {
        return (Stderr::Shared, false);
    }
    // SAFETY: unshare(CLONE_FILES) gives only this thread a copy of the fd table; no memory.
    if unsafe { libc::unshare(libc::CLONE_FILES) } != 0 {
        return (Stderr::Shared, false);
    }
    // Opened after the move, so only this table has it.
    // SAFETY: pidfd_open reads no memory of ours; the fd it makes is ours to own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as RawFd;
    let stderr = if pidfd >= 0 && borrow_works(pidfd) {
        // SAFETY: the pidfd is open in this thread's table and owned by nothing else.
        Stderr::Borrowed(unsafe { OwnedFd::from_raw_fd(pidfd) })
    } else {
        if pidfd >= 0 {
            // SAFETY: made above, owned by nothing else.
            unsafe { libc::close(pidfd) };
        }
        Stderr::Kept
    };
    let mut keep = vec![keep];
    match &stderr {
        Stderr::Borrowed(p) => keep.push(p.as_raw_fd()),
        _ => keep.push(2),
    }
    close_all_but(&mut keep);
    (stderr, true)
}

/// Whether `pidfd_getfd` works here (seccomp or an old kernel may refuse it).
fn borrow_works(pidfd: RawFd) -> bool {
    // SAFETY: as in `Stderr::write`.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, 2, 0) } as RawFd;
    if fd >= 0 {
        // SAFETY: just made in this thread's table, owned by nothing else.
        unsafe { libc::close(fd) };
    }
    // fd 2 closed in the program is no reason to keep a copy of nothing.
    fd >= 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
}

/// Closes every fd of this thread's (private) table except `keep`.
fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from: u32 = 0;
    for &k in keep.iter() {
        let k = k as u32;
        if k > from {
            close_range(from, k - 1);
        }
        from = k + 1;
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range(2) closes descriptors of this thread's table only; no memory.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return;
    }
    // Before Linux 5.9: one by one, up to the soft limit (no fd can be above it... save
    // those opened before a lower limit was set, which stay: a leak of a copy, not a fault).
    // SAFETY: getrlimit writes one `rlimit`.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let top = (lim.rlim_cur.min(1 << 20) as u32).min(last.saturating_add(1));
    for fd in first..top {
        // SAFETY: closes a descriptor of this thread's private table, if open.
        unsafe { libc::close(fd as RawFd) };
    }
}

/// What the thread remembers of a worker between two looks.
#[derive(Default)]
struct Watch {
    switches: u64,
    /// When `switches` was first seen at its value (or the worker last seen asleep).
    since: Option<Instant>,
    /// The coroutine reported as holding it: (id, name).
    reported: Option<(u64, String)>,
}

fn run(r: OwnedFd, moved: std::sync::mpsc::SyncSender<bool>) {
    let (stderr, own_table) = own_table_if_second(r.as_raw_fd());
    let _ = moved.send(own_table);
    drop(moved);
    let mut watches: Vec<Watch> = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let after_ms = STALL_AFTER_MS.load(Ordering::Relaxed);
        let tick = if after_ms == 0 {
            -1
        } else {
            (after_ms / 4).clamp(1, MAX_TICK.as_millis() as u64) as i32
        };
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, tick) };
        if n > 0 {
            // SAFETY: `buf` is a live array; read(2) writes at most its length.
            let got = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if got == 0 {
                return; // the write end is never closed; nothing left to do if it were
            }
            // Each read takes what signals came meanwhile: one listing for them all.
            if got > 0 && buf[..got as usize].contains(&DUMP) {
                stderr.write(&super::dump());
            }
        }
        if after_ms != 0 {
            if let Some(rt) = super::runtime_started() {
                look(rt, Duration::from_millis(after_ms), &mut watches, &stderr);
            }
        }
    }
}

/// One look at every worker's switch count (see the module doc).
fn look(rt: &Runtime, after: Duration, watches: &mut Vec<Watch>, stderr: &Stderr) {
    watches.resize_with(rt.workers.len(), Watch::default);
    let now = Instant::now();
    for (w, watch) in rt.workers.iter().zip(watches.iter_mut()) {
        let c = &w.counters;
        let switches = c.switches.load(Ordering::Relaxed);
        if switches != watch.switches || w.inbox.is_sleeping() || watch.since.is_none() {
            if let Some((id, name)) = watch.reported.take() {
                let held = now - watch.since.unwrap_or(now);
                stderr.write(&format!(
                    "coronet: coroutine {id} '{name}' let worker {} go after {:.1} s\n",
                    w.index,
                    held.as_secs_f64()
                ));
            }
            watch.switches = switches;
            watch.since = Some(now);
            continue;
        }
        let since = watch.since.unwrap_or(now);
        if watch.reported.is_some() || now - since < after {
            continue;
        }
        let live = c
            .started
            .load(Ordering::Relaxed)
            .saturating_sub(c.finished.load(Ordering::Relaxed));
        let queued = (w.inbox.fresh().len() + w.pinned.len()) as u64;
        let others = (live + queued).saturating_sub(1);
        if others == 0 {
            continue; // holding a worker nobody else needs holds nobody up
        }
        let Some(t) = w
            .live_tasks()
            .into_iter()
            .find(|t| t.state() == State::Running)
        else {
            continue; // the scheduler's own code (a logger's lock, say): not a coroutine
        };
        let name = t.display_name().to_string();
        let mut text = String::new();
        let _ = write!(
            text,
            "coronet: coroutine {} '{name}' has held worker {} for {:.1} s without parking \
             or yielding; the {others} other coroutine{} of that worker cannot run until \
             it does.\ncoronet: a call that blocks the thread (a std Mutex, Condvar, \
             channel, sleep or socket) or a long computation stops every coroutine of its \
             worker: use coronet's own, coronet::spawn_blocking, or coronet::yield_now in \
             long loops (docs/porting.md, \"Blocking calls inside a coroutine\")\n",
            t.id,
            w.index,
            (now - since).as_secs_f64(),
            if others == 1 { "" } else { "s" },
        );
        stderr.write(&text);
        watch.reported = Some((t.id, name));
    }
}
