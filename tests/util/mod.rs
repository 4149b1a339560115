//! Helpers shared by the TCP integration tests (`tcp.rs`, `deadline.rs`, `close.rs`,
//! `stress.rs`), by the tests that look at the process's threads (`main_thread.rs`,
//! `faults.rs`, `sysmon_alone.rs`), in `files` by the `io::copy` tests, and in `examples` by
//! the tests that run the examples as programs. Each test file uses a different subset.
#![allow(dead_code)]

pub mod examples;
pub mod files;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use coronet::net::{OpError, TcpListener, TcpStream};

/// Starts the process's runtime with one worker, once (for test binaries that need one).
pub fn one_worker() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        coronet::Builder::new()
            .workers(1)
            .build_global()
            .expect("the only runtime of this test binary");
    });
}

/// Runs `f` twice: once inside a coroutine and once on a plain OS thread, because every
/// blocking call must work (park, or block the thread) in both places.
pub fn both<F>(f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let g = f.clone();
    coronet::run(move || g());
    let g = f.clone();
    std::thread::spawn(move || g())
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// A connected pair on loopback: (dialed client, accepted server end).
pub fn pair() -> (TcpStream, TcpStream) {
    let (_, c, s) = listener_pair();
    (c, s)
}

/// A listener on 127.0.0.1 and one connection to it: (listener, client, server end).
pub fn listener_pair() -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (l, c, s)
}

/// Deterministic test data: byte `i` of stream `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

/// The `OpError` inside a coronet error, panicking with the error text if there is none.
pub fn op(e: &io::Error) -> &OpError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<OpError>())
        .unwrap_or_else(|| panic!("not an OpError: {e:?}"))
}

pub fn assert_timeout(e: &io::Error) {
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(op(e).is_timeout(), "{e}");
    assert!(e.to_string().ends_with("i/o timeout"), "{e}");
}

pub fn assert_closed(e: &io::Error) {
    assert!(op(e).is_closed(), "{e}");
    assert!(
        e.to_string().ends_with("use of closed network connection"),
        "{e}"
    );
}

/// Polls `cond` every few milliseconds until it holds, panicking after `limit`.
/// Works from a coroutine (sleeps park it) and from a thread.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        coronet::time::sleep(Duration::from_millis(2));
    }
}

// ---- fd bookkeeping -------------------------------------------------------------------

/// Tests that count the process's fds hold this exclusively; every other test in their file
/// holds it shared, so no test opens sockets while a count is being compared.
static FD_LOCK: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    FD_LOCK.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FD_LOCK.write().unwrap_or_else(|e| e.into_inner())
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Starts the runtime and creates the process-wide helpers that live for good (workers'
/// epoll and eventfd, close's placeholder socket, the blocking pool), then returns the fd
/// count: the baseline a test must come back to.
pub fn fd_baseline() -> usize {
    coronet::run(|| {
        let (c, s) = pair();
        c.close().unwrap();
        s.close().unwrap();
        coronet::net::lookup_host("localhost:1").unwrap().count()
    });
    fd_count()
}

/// Waits (generously) for the fd count to come back to `base`, then asserts it.
pub fn assert_fd_baseline(base: usize) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let now = fd_count();
        if now <= base {
            return;
        }
        if Instant::now() > end {
            let list: Vec<_> = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| {
                    let e = e.ok()?;
                    Some(format!(
                        "{} -> {:?}",
                        e.file_name().to_string_lossy(),
                        std::fs::read_link(e.path()).ok()?
                    ))
                })
                .collect();
            panic!("fd leak: {now} open, baseline {base}:\n{}", list.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether fd number `fd` is open in this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of a descriptor number; no memory is involved.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

pub fn is_cloexec(fd: &impl AsRawFd) -> bool {
    // SAFETY: as in `fd_is_open`.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0, "F_GETFD: {}", io::Error::last_os_error());
    flags & libc::FD_CLOEXEC != 0
}

pub fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL reads the status flags of a descriptor number; no memory is involved.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// An integer socket option read straight from the kernel, bypassing coronet.
pub fn sockopt(fd: &impl AsRawFd, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes and `len` is `v`'s size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt: {}", io::Error::last_os_error());
    v
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> libc::rlim_t {
    set_soft_nofile(|_, hard| hard)
}

/// Lowers the soft `RLIMIT_NOFILE` to at most `n`, so that running out of fds is quick (in
/// a child process or a test binary of its own: the limit is the process's).
pub fn lower_nofile(n: libc::rlim_t) {
    set_soft_nofile(|soft, _| soft.min(n));
}

/// Sets the soft `RLIMIT_NOFILE` to `f(soft, hard)`; returns it.
fn set_soft_nofile(f: impl FnOnce(libc::rlim_t, libc::rlim_t) -> libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = f(lim.rlim_cur, lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit; a soft limit at or under the hard one needs no
    // privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur
}

/// CPU time of the whole process so far (every thread, user and system).
pub fn cpu_time() -> Duration {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sets an integer socket option straight through the kernel, bypassing coronet.
pub fn set_sockopt(fd: &impl AsRawFd, level: i32, name: i32, v: i32) {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a valid c_int for the duration of the call and `len` is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            len,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// A loopback port with nothing bound to it (TCP or UDP, as `udp` says), for dials that must
/// be refused. Taken below the kernel's ephemeral range (32768 and up here), where the tests'
/// own `bind(..:0)` never lands: a port released from such a bind could be handed to another
/// test's listener before the dial. Probed with a bind, from a place that differs between
/// calls and processes.
pub fn unused_port(udp: bool) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let (low, span) = (20_000u16, 12_000u16);
    let start = (std::process::id() as u16).wrapping_mul(97) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + start.wrapping_add(step) % span;
        let free = if udp {
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        } else {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        };
        if free {
            return port;
        }
    }
    panic!("no free port in {low}..{}", low + span);
}

/// Bytes in `fd`'s send queue (not sent, or not acknowledged yet): `SIOCOUTQ`.
pub fn unsent(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ for sockets) writes one c_int through the pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", io::Error::last_os_error());
    n as usize
}

/// The errno `getpeername` fails with on `fd`, or None if it has a peer.
pub fn peer_errno(fd: RawFd) -> Option<i32> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of that plain C struct.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&ss) as libc::socklen_t;
    // SAFETY: `ss` is writable for `len` bytes and `len` is valid for writes.
    let rc = unsafe {
        libc::getpeername(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    (rc != 0).then(|| io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Turns the open file's nonblocking mode on or off (as a std conversion or a user's
/// `fcntl` may), through any fd that shares it.
pub fn set_file_nonblocking(fd: RawFd, on: bool) {
    let mut v = libc::c_int::from(on);
    // SAFETY: FIONBIO reads one c_int through the pointer, which is live for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONBIO, &mut v) };
    assert_eq!(rc, 0, "ioctl(FIONBIO): {}", io::Error::last_os_error());
}

/// Where a helper runs: a coroutine, or a plain thread.
pub const PLACES: [bool; 2] = [false, true];

/// Spawns `f` on a plain thread if `thread`, else as a coroutine; returns its joiner.
pub fn spawn_on<T: Send + 'static>(
    thread: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Box<dyn FnOnce() -> T> {
    if thread {
        let h = std::thread::spawn(f);
        Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    } else {
        let h = coronet::go(f);
        Box::new(move || h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    }
}

/// Recurses without end, 512 bytes a frame, in a way the optimiser cannot turn into a loop:
/// a stack overflow on demand (`overflow.rs`, `main_thread.rs`).
#[inline(never)]
pub fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[depth as usize % 64]
}

/// An address whose connects hang: a listener with a full accept queue, which the kernel
/// answers by dropping SYNs (10.255.255.1-style blackholes may be routed here).
pub struct Blackhole {
    _listener: TcpListener,
    _queued: Vec<std::net::TcpStream>,
    pub addr: SocketAddr,
}

pub fn blackhole() -> Blackhole {
    blackhole_at("127.0.0.1:0")
}

/// A [`blackhole`] on `addr`, `"[::1]:0"` for one on IPv6 loopback.
pub fn blackhole_at(addr: &str) -> Blackhole {
    let listener = coronet::net::ListenConfig::new()
        .backlog(0)
        .listen(addr)
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                return Blackhole {
                    _listener: listener,
                    _queued: queued,
                    addr,
                };
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled; no local blackhole");
}

/// Installs `handler` for `signum` with `flags` (`SA_RESTART` or none; never `SA_ONSTACK`,
/// which the signal tests leave out on purpose), for the tests of signals.
pub fn install_signal_handler(
    signum: libc::c_int,
    handler: extern "C" fn(libc::c_int),
    flags: libc::c_int,
) {
    // SAFETY: all-zero is a valid `sigaction` (empty mask); `sigaction` gets valid pointers.
    // The handlers the tests pass only add to an atomic or call nanosleep, both
    // async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as libc::sighandler_t;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(signum, &sa, std::ptr::null_mut()), 0);
    }
}

/// Sends `signal` to thread `tid` of this process (tgkill); the syscall's result, 0 if sent.
pub fn signal_thread(tid: libc::pid_t, signal: libc::c_int) -> libc::c_long {
    // SAFETY: tgkill with ids and a signal number; a thread gone meanwhile gives ESRCH.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) }
}

/// Threads of this process, from /proc.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The `/proc/self/task/TID` directory of this process's thread named `name` (its `comm`).
pub fn thread_named(name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| t.unwrap().path())
        .find(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == name))
}
