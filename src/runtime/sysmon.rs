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
//! coroutines waiting on it, is held by the one coroutine it shows `Running` (or, with none,
//! by the scheduler's own code: a logger that blocks). One report per stall, and a line when
//! it ends. Nothing is added to the scheduler's path: the counter was there for `stats()`.
//! The blocking pool is watched the same way, by the count of jobs taken from its queue.
//!
//! The durations are lower bounds: a count is known to have stood still only from the first
//! look that saw it. A look that comes later than its tick (the process was stopped —
//! SIGSTOP, a debugger, a frozen cgroup — or this thread starved) moves every clock forward
//! by the delay, so that time the whole process stood still is not taken for a worker's.
//!
//! # A file table of its own
//!
//! Linux takes and drops a reference on a socket's open file in every syscall of a process
//! whose fd table is shared by two threads or more (`fdget`), and skips it while one thread
//! has it: about 50 ns a call on the Zen 4 guest, 2 % of a one-worker echo server's CPU
//! (docs/benchmarks.md). So when this thread would be the second of the process (a
//! `Builder::main` program with one worker), it moves to a copy of the table
//! (`unshare(CLONE_FILES)`) and closes there everything but its pipe's read end, then opens a
//! pidfd of the process: the worker's table has one user again, and this thread holds no
//! reference that could keep a file the program closes open. To write a report it borrows
//! the program's current stderr for the write (`pidfd_getfd`), so a later `dup2` onto fd 2
//! is followed. Where `pidfd_open`, `pidfd_getfd` or `unshare` is refused (a kernel before
//! 5.6, seccomp: Docker's default profile allows the last two only with added capabilities)
//! it stays on the shared table, and the process pays the reference.
//!
//! Closing the copies releases none of the program's `fcntl` locks (Linux keys them to the
//! table they were taken through), but it does call each file's `flush` as any close does: one
//! FLUSH request to a FUSE server per file open when the runtime starts, a wait for an NFS
//! server. This thread does that after the hand-over with its spawner, so a hung server
//! delays the monitor, never the runtime's start; but while such a flush hangs, the copies of
//! the fds above it stay open (a listener the program closes meanwhile stays bound).
//! Anything this thread opens or closes later is in its own table; and a panic of its own (a
//! bug) could not print its message, since its fd 2 is not the program's.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::task::State;
use super::Runtime;

/// The default of `Builder::stall_report`.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(2);

/// The threshold in force, in milliseconds; 0: no stall reports.
static STALL_AFTER_MS: AtomicU64 = AtomicU64::new(0);

/// The write end of the thread's pipe, for the signal handler; -1 until the thread runs,
/// and again if the thread found its pipe gone (`run`).
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// The pipe's device and inode numbers, set before the thread starts: a poke checks that the
/// fd still names the pipe, so that a program which closed it (a `closefrom` of its own) and
/// got the number back for a file of its own never receives the byte.
static PIPE_DEV: AtomicU64 = AtomicU64::new(0);
static PIPE_INO: AtomicU64 = AtomicU64::new(0);

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
    let ms = threshold_ms(after);
    STALL_AFTER_MS.store(ms, Ordering::Relaxed);
    if ms == 0 && !*lock_started() {
        return Ok(());
    }
    ensure_started()?;
    poke(RECONFIGURE);
    Ok(())
}

/// A threshold in whole milliseconds, at least 1 (0 stands for off); a huge one saturates
/// rather than wrapping round to a small one.
fn threshold_ms(after: Option<Duration>) -> u64 {
    after.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
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

/// Writes `byte` to the pipe if the thread runs. Async-signal-safe: loads, fstat(2) and
/// write(2).
fn poke(byte: u8) {
    let fd = PIPE_W.load(Ordering::Acquire);
    let pipe = (
        PIPE_DEV.load(Ordering::Relaxed),
        PIPE_INO.load(Ordering::Relaxed),
    );
    if fd >= 0 && inode(fd) == Some(pipe) {
        // SAFETY: write(2) is async-signal-safe; the buffer is a live one-byte array. The
        // end is nonblocking: with the pipe full a look is already due, and this byte is
        // dropped rather than blocking the thread the signal interrupted.
        unsafe { libc::write(fd, [byte].as_ptr().cast(), 1) };
    }
}

/// The device and inode numbers of the file `fd` names, if it is open. Async-signal-safe.
fn inode(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: all-zero is a valid `stat` for fstat(2) to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) writes one `stat` through the pointer; it is async-signal-safe.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev as u64, st.st_ino as u64))
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
    // Both ends nonblocking: the handler's write must never block the thread it interrupts
    // (with the pipe full a look is already due), and the thread reads only after `poll`.
    let (r, w) = crate::net::socket::pipe2_nonblocking()?;
    let r_num = r.as_raw_fd();
    // Both ends of a pipe are one inode; the thread and `poke` check fds against it.
    let ino = inode(r_num).unwrap_or((0, 0));
    PIPE_DEV.store(ino.0, Ordering::Relaxed);
    PIPE_INO.store(ino.1, Ordering::Relaxed);
    let (moved_tx, moved_rx) = std::sync::mpsc::sync_channel(1);
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
        .spawn(move || run(r, ino, moved_tx));
    // SAFETY: as above; `old` holds the mask saved there.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    spawned?;
    // A thread that moved to a table of its own took the read end's copy with it; the copy
    // left in the process's table is nobody's, and goes.
    // Bounded: a thread killed before it could answer (a seccomp filter that kills on one
    // of its calls) must not hold up the start, which holds `INIT`, for ever. Without an
    // answer the copy stays: a leaked fd, where closing it could close the thread's own.
    if moved_rx.recv_timeout(Duration::from_secs(10)) == Ok(true) {
        // SAFETY: `r_num` names, in this (the process's) table, the read end the thread no
        // longer uses: its own table has a copy of its own under the same number.
        unsafe { libc::close(r_num) };
    }
    // Kept open for the process's life: the handler may write at any time.
    PIPE_W.store(w.into_raw_fd(), Ordering::Release);
    *started = true;
    Ok(())
}

/// Where the thread's reports go.
enum Stderr {
    /// The process's fd 2 (the thread shares the fd table).
    Shared,
    /// The program's fd 2 of the moment, borrowed through this pidfd for each report.
    Borrowed(OwnedFd),
    /// Nowhere: the thread moved to a table of its own, then could not open a pidfd (a
    /// kernel that allowed one a moment before).
    Lost,
}

impl Stderr {
    /// Writes `text` whole, as one report; errors are dropped (a report must never take the
    /// process down, and stderr may be gone).
    fn write(&self, text: &str) {
        let borrowed;
        let fd = match self {
            Stderr::Shared => 2,
            Stderr::Lost => return,
            // No fd 2 in the program (EBADF), or a refusal: nowhere to write.
            Stderr::Borrowed(pidfd) => match getfd(pidfd.as_raw_fd(), 2) {
                Ok(fd) => {
                    borrowed = fd;
                    borrowed.as_raw_fd()
                }
                Err(_) => return,
            },
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

/// A pidfd of this process, in the calling thread's table.
fn open_pidfd() -> Option<OwnedFd> {
    // SAFETY: pidfd_open reads no memory of ours; the fd it makes is ours to own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as RawFd;
    // SAFETY: just made in this thread's table, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A copy, in the calling thread's table, of fd `target` of the table the process leader
/// `pidfd` names uses (the program's).
fn getfd(pidfd: RawFd, target: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd reads no memory of ours; the new fd is ours to own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, target, 0) } as RawFd;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just made in this thread's table, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Threads of this process, from /proc (0 if it cannot be read).
fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Moves this thread to a fd table of its own holding only `keep`, if it is the process's
/// second thread and the kernel allows all it takes (see the module doc). `moved` learns
/// whether it did, as soon as it has: the spawner then closes its copy of `keep`.
fn own_table_if_second(keep: RawFd, moved: std::sync::mpsc::SyncSender<bool>) -> Stderr {
    // Asked of the shared table first: a move without a way to reach stderr afterwards
    // would lose the reports, or keep a copy of the stderr of the moment. The probe borrows
    // the pidfd itself, not fd 2: closing a copy of the program's stderr here, in the
    // program's own table, would release the `fcntl` locks it holds on that file.
    let allowed = || open_pidfd().is_some_and(|p| getfd(p.as_raw_fd(), p.as_raw_fd()).is_ok());
    // SAFETY: unshare(CLONE_FILES) gives only this thread a copy of the fd table; no memory.
    if process_threads() != 2 || !allowed() || unsafe { libc::unshare(libc::CLONE_FILES) } != 0 {
        let _ = moved.send(false);
        return Stderr::Shared;
    }
    let _ = moved.send(true);
    // SAFETY: this thread's table is its own since the unshare above, and `keep` is the one
    // fd of it this thread uses; the others are copies nothing here owns.
    unsafe { close_all_but(keep) };
    match open_pidfd() {
        Some(p) => Stderr::Borrowed(p),
        None => Stderr::Lost,
    }
}

/// Closes every fd of this thread's table except `keep`.
///
/// # Safety
///
/// The table must be this thread's own (after `unshare(CLONE_FILES)`), and `keep` the only
/// fd of it that anything owns: the others are closed under whatever holds their numbers.
unsafe fn close_all_but(keep: RawFd) {
    let keep = keep as u32;
    if keep > 0 {
        // SAFETY: our own contract.
        unsafe { close_range(0, keep - 1) };
    }
    // SAFETY: our own contract.
    unsafe { close_range(keep.saturating_add(1), u32::MAX) };
}

/// close_range(2), or a loop of close(2) up to the soft fd limit before Linux 5.9.
///
/// # Safety
///
/// As `close_all_but`'s: every fd in the range is an unowned copy in this thread's own table.
unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: the caller's contract; no memory is involved.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return;
    }
    // SAFETY: all-zero is a valid `rlimit` for getrlimit to fill.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes one `rlimit` through the pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    // No fd is at or above the soft limit, save those opened before a lower limit was set,
    // which stay: a copy kept, not a fault.
    let top = (lim.rlim_cur.min(1 << 20) as u32).min(last.saturating_add(1));
    for fd in first..top {
        // SAFETY: as above.
        unsafe { libc::close(fd as RawFd) };
    }
}

/// What the thread remembers of a worker between two looks.
#[derive(Default)]
struct Watch {
    /// The watched count: a worker's resumes, or the jobs the blocking pool has taken.
    count: u64,
    /// The first look that saw `count` at its value (or the worker asleep), moved forward
    /// by the lateness of later looks; `None` before the first look.
    since: Option<Instant>,
    /// The last look that saw it stand still.
    still_at: Option<Instant>,
    /// What was reported as holding it.
    reported: Option<Holder>,
    /// The id of the coroutine at the head of its stealable queue at the last look past
    /// the threshold.
    fresh_head: Option<u64>,
}

/// What one look made of a watched count.
enum Seen {
    /// Nothing to say: it moved (or nothing waits on it), or it stands still but not yet
    /// for the threshold, or a report about it stands.
    Nothing,
    /// A reported stall ended, after holding for this long (a lower bound).
    Ended(Holder, Duration),
    /// It has stood still for this long, past the threshold, and is not reported yet.
    Due(Duration),
}

impl Watch {
    /// Records one look at `now`, `late` past its tick, at the watched `count`; `idle`:
    /// nothing waits on it (a worker asleep, an empty queue), which counts as a move.
    fn observe(
        &mut self,
        now: Instant,
        count: u64,
        idle: bool,
        late: Duration,
        after: Duration,
    ) -> Seen {
        if count != self.count || idle {
            let held = self.still_at.unwrap_or(now) - self.since.unwrap_or(now);
            self.count = count;
            self.since = Some(now);
            self.still_at = None;
            return match self.reported.take() {
                Some(holder) => Seen::Ended(holder, held),
                None => Seen::Nothing,
            };
        }
        if let Some(since) = &mut self.since {
            *since = (*since + late).min(now);
        }
        let since = *self.since.get_or_insert(now);
        self.still_at = Some(now);
        if self.reported.is_some() || now - since < after {
            return Seen::Nothing;
        }
        Seen::Due(now - since)
    }
}

/// What holds a worker: one of its coroutines, or (none running) the scheduler's own code;
/// or, for the blocking pool's watch, its busy threads.
enum Holder {
    Coroutine { id: u64, name: String },
    Scheduler,
    Pool,
}

/// The thread's body.
///
/// Once `own_table_if_second` has moved it, no fd number the runtime or the program holds
/// means the same here (a worker's epoll, a logger's file, std's stderr): nothing on this
/// thread may use one — no `rt_log!`, no `Poller::wake`, no `std::io::stderr()`, no drop of
/// anything that owns an fd. Today it touches counters, queues' lengths, `Task` records
/// (which own no fd) and its own `Stderr`.
fn run(r: OwnedFd, pipe: (u64, u64), moved: std::sync::mpsc::SyncSender<bool>) {
    let stderr = own_table_if_second(r.as_raw_fd(), moved);
    let mut watches: Vec<Watch> = Vec::new();
    let mut pool = Watch::default();
    let mut buf = [0u8; 64];
    let mut last_look = Instant::now();
    loop {
        let after_ms = STALL_AFTER_MS.load(Ordering::Relaxed);
        let tick = Duration::from_millis((after_ms / 4).clamp(1, MAX_TICK.as_millis() as u64));
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = if after_ms == 0 {
            -1
        } else {
            tick.as_millis() as i32
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if n > 0 {
            // The pipe is ours as long as its number names it and its write end is open; a
            // program that closes fds it does not own (a `closefrom`) can take either. Then
            // the thread stops, and closes nothing: the number may be someone else's now.
            let ours = pfd.revents & (libc::POLLNVAL | libc::POLLERR | libc::POLLHUP) == 0
                && inode(r.as_raw_fd()) == Some(pipe);
            let got = if ours {
                // SAFETY: `buf` is a live array; read(2) writes at most its length.
                unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
            } else {
                0
            };
            let again = matches!(
                io::Error::last_os_error().kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            );
            if got < 0 && again {
                continue;
            }
            if got <= 0 {
                PIPE_W.store(-1, Ordering::Release);
                stderr.write(
                    "coronet: the monitor thread's pipe was closed by someone else: no more \
                     stall reports or dump_on_signal listings\n",
                );
                let _ = r.into_raw_fd();
                return;
            }
            // Each read takes what signals came meanwhile: one listing for them all.
            if buf[..got as usize].contains(&DUMP) {
                stderr.write(&super::dump());
            }
        }
        if after_ms != 0 {
            let now = Instant::now();
            // Time past the tick (and a margin for wake-up latency) without a look: the
            // process (or this thread) stood still, and so did every count; see the module doc.
            let late = (now - last_look).saturating_sub(tick + Duration::from_millis(20));
            last_look = now;
            // Not while the process exits: `main` stays `Running` through the exit's
            // destructors and flushes, which no advice of ours would help.
            if super::EXITING.load(Ordering::Relaxed) {
                continue;
            }
            let after = Duration::from_millis(after_ms);
            if let Some(rt) = super::runtime_started() {
                look(rt, now, after, late, &mut watches, &stderr);
            }
            look_pool(now, after, late, &mut pool, &stderr);
        }
    }
}

/// One look at every worker's switch count (see the module doc), at `now`, `late` past
/// its tick.
fn look(
    rt: &Runtime,
    now: Instant,
    after: Duration,
    late: Duration,
    watches: &mut Vec<Watch>,
    out: &Stderr,
) {
    watches.resize_with(rt.workers.len(), Watch::default);
    for (w, watch) in rt.workers.iter().zip(watches.iter_mut()) {
        let c = &w.counters;
        let switches = c.switches.load(Ordering::Relaxed);
        let held = match watch.observe(now, switches, w.inbox.is_sleeping(), late, after) {
            Seen::Nothing => continue,
            Seen::Ended(holder, held) => {
                let secs = held.as_secs_f64();
                out.write(&match holder {
                    Holder::Coroutine { id, name } => format!(
                        "coronet: coroutine {id} '{name}' let worker {} go after {secs:.1} s \
                         or more\n",
                        w.index
                    ),
                    Holder::Scheduler | Holder::Pool => format!(
                        "coronet: worker {} runs coroutines again after {secs:.1} s or more\n",
                        w.index
                    ),
                });
                continue;
            }
            Seen::Due(held) => held,
        };
        let running = w
            .live_tasks()
            .into_iter()
            .find(|t| t.state() == State::Running);
        let live = c
            .started
            .load(Ordering::Relaxed)
            .saturating_sub(c.finished.load(Ordering::Relaxed));
        // Who waits for this worker: its other started coroutines, and the unstarted ones
        // only it may start. Its stealable queue counts only once the same coroutine has
        // stood at its head for a tick: other workers steal from it within microseconds,
        // and a look that caught one passing through (a thread spawning thousands a
        // second) reported a coroutine that held up nobody.
        let head = w.inbox.fresh().with(|q| q.front().map(|t| t.task.id));
        let fresh = if head.is_some() && head == watch.fresh_head {
            w.inbox.fresh().len() as u64
        } else {
            0
        };
        watch.fresh_head = head;
        let others =
            live.saturating_sub(u64::from(running.is_some())) + w.pinned.len() as u64 + fresh;
        if others == 0 {
            continue; // holding a worker nobody else needs holds nobody up
        }
        let s = if others == 1 { "" } else { "s" };
        let held = held.as_secs_f64();
        let mut text = String::new();
        let holder = match running {
            Some(t) => {
                let name = t.display_name().to_string();
                let _ = writeln!(
                    text,
                    "coronet: coroutine {} '{name}' has held worker {} for {held:.1} s or \
                     more without parking or yielding; the {others} other coroutine{s} of \
                     that worker cannot run until it does.\ncoronet: a call that blocks the \
                     thread (a std Mutex, Condvar, channel, sleep or socket) or a long \
                     computation stops every coroutine of its worker: use coronet's own, \
                     coronet::spawn_blocking, or coronet::yield_now in long loops \
                     (docs/porting.md, \"Blocking calls inside a coroutine\")",
                    t.id, w.index,
                );
                Holder::Coroutine { id: t.id, name }
            }
            None => {
                let _ = writeln!(
                    text,
                    "coronet: worker {} has run no coroutine for {held:.1} s or more and is \
                     not asleep: it is held outside any coroutine, in the runtime's own code \
                     or a logger it called, and its {others} coroutine{s} cannot run until it \
                     moves (a logger must not wait on a lock a coroutine may hold: \
                     docs/runtime.md)",
                    w.index,
                );
                Holder::Scheduler
            }
        };
        out.write(&text);
        watch.reported = Some(holder);
    }
}

/// One look at the blocking pool (`spawn_blocking`, name lookups): jobs wait in its queue
/// and none has been taken for the threshold, so every thread it may run is busy. Those
/// jobs may only be slow; but jobs that wait for each other beyond the pool's cap never
/// finish (stop 35's audit: 512 jobs each waiting for a 513th), and that hang said nothing.
fn look_pool(now: Instant, after: Duration, late: Duration, watch: &mut Watch, out: &Stderr) {
    let (threads, queued, taken) = super::blocking::pool_progress();
    let held = match watch.observe(now, taken, queued == 0, late, after) {
        Seen::Nothing => return,
        Seen::Ended(_, held) => {
            out.write(&format!(
                "coronet: the blocking pool takes jobs again after {:.1} s or more\n",
                held.as_secs_f64()
            ));
            return;
        }
        Seen::Due(held) => held,
    };
    out.write(&format!(
        "coronet: the blocking pool's {threads} thread{} been busy for {:.1} s or more \
         while {queued} {} for one (spawn_blocking, name lookups); jobs that wait for each \
         other need Builder::max_blocking_threads above how many can wait at once\n",
        if threads == 1 { " has" } else { "s have" },
        held.as_secs_f64(),
        if queued == 1 {
            "job waits"
        } else {
            "jobs wait"
        },
    ));
    watch.reported = Some(Holder::Pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_round_to_milliseconds_and_saturate() {
        assert_eq!(threshold_ms(None), 0);
        assert_eq!(threshold_ms(Some(Duration::ZERO)), 1);
        assert_eq!(threshold_ms(Some(Duration::from_micros(2500))), 2);
        assert_eq!(threshold_ms(Some(Duration::from_secs(2))), 2000);
        // 2^64 ms and more: `as u64` made this 384 ms.
        let huge = Duration::from_secs(18_446_744_073_709_552);
        assert_eq!(threshold_ms(Some(huge)), u64::MAX);
        assert_eq!(threshold_ms(Some(Duration::MAX)), u64::MAX);
    }
}
