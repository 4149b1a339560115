//! The only place in the bench crate that calls libc: epoll and nonblocking sockets for
//! the load client (`loadgen`) and the hand-written epoll baseline (`echo_epoll`), and the
//! listen backlog of our servers.
//! Each wrapper turns `-1` into `io::Error::last_os_error()` and retries `EINTR`.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Retries `f` while it fails with `EINTR`: a signal interrupted the call, nothing else.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

pub const IN: u32 = libc::EPOLLIN as u32;
pub const OUT: u32 = libc::EPOLLOUT as u32;
pub const ET: u32 = libc::EPOLLET as u32;
pub const RDHUP: u32 = libc::EPOLLRDHUP as u32;
pub const ERR: u32 = libc::EPOLLERR as u32;
pub const HUP: u32 = libc::EPOLLHUP as u32;

/// An epoll instance.
///
/// # Invariant
/// `fd` is an open epoll descriptor owned by this value and closed only by `Drop`.
pub struct Epoll {
    fd: RawFd,
}

pub type Event = libc::epoll_event;

pub fn empty_events(n: usize) -> Vec<Event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall, no pointers.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd })
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `self.fd` is open (see `Epoll` invariant); `ev` is a valid event for the call.
        cvt(unsafe { libc::epoll_ctl(self.fd, op, fd, &mut ev) }).map(drop)
    }

    /// Waits up to `timeout_ms` (-1: forever) and returns how many of `events` were filled.
    pub fn wait(&self, events: &mut [Event], timeout_ms: i32) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as libc::c_int;
        retry(|| {
            // SAFETY: `events` is valid for `max` writes; `self.fd` is open (invariant).
            cvt(unsafe { libc::epoll_wait(self.fd, events.as_mut_ptr(), max, timeout_ms) })
                .map(|n| n as usize)
        })
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own `self.fd` (invariant); an error on close is ignored: nothing to do.
        unsafe { libc::close(self.fd) };
    }
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` writes; a stale fd only yields EBADF.
    retry(|| cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }))
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` reads; MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE.
    retry(|| {
        cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
    })
}

pub fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and forgets it after this; errors on close are ignored.
    unsafe { libc::close(fd) };
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` lives across the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as _,
        )
    })
    .map(drop)
}

pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// The pending error of a socket (`SO_ERROR`), which is how a nonblocking connect reports.
pub fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes and `len` holds `v`'s size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(if v == 0 {
        None
    } else {
        Some(io::Error::from_raw_os_error(v))
    })
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Starts a nonblocking TCP connect to `to` with `TCP_NODELAY` set; completion is signalled
/// by `EPOLLOUT` and checked with [`take_error`]. With `from`, the socket is bound to that
/// source address first (port chosen at connect time, `IP_BIND_ADDRESS_NO_PORT`), so many
/// loopback source addresses give many times the ephemeral port range.
pub fn connect_nonblocking(to: SocketAddrV4, from: Option<Ipv4Addr>) -> io::Result<RawFd> {
    // SAFETY: plain syscall, no pointers.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    let setup = || -> io::Result<()> {
        set_nodelay(fd)?;
        if let Some(ip) = from {
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)?;
            let sa = sockaddr(SocketAddrV4::new(ip, 0));
            // SAFETY: `sa` is a valid sockaddr_in and its size is passed.
            cvt(unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    size_of_val(&sa) as _,
                )
            })?;
        }
        let sa = sockaddr(to);
        // SAFETY: as above.
        match cvt(unsafe {
            libc::connect(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of_val(&sa) as _,
            )
        }) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
            r => r.map(drop),
        }
    };
    match setup() {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// Accepts one connection as a nonblocking, close-on-exec socket; `WouldBlock` when none is queued.
pub fn accept_nonblocking(listener: RawFd) -> io::Result<RawFd> {
    retry(|| {
        // SAFETY: null address pointers are allowed: we do not want the peer address.
        cvt(unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        })
    })
}

/// Raises a listening socket's accept queue to `net.core.somaxconn` (a second `listen(2)`
/// on a listening socket only changes its backlog), which is what Go and coronet ask for.
/// std, mio (so tokio) and may listen with 128: when 9,000 connections arrive at once, the
/// full queue drops SYNs, and the client's 1-3-7 s retransmission timer, not the server,
/// would set how long the connection burst takes.
pub fn full_backlog(listener: RawFd) {
    // A value above somaxconn is silently capped to it (listen(2)).
    // SAFETY: plain syscall on a descriptor the caller's listener owns; no pointers.
    if let Err(e) = cvt(unsafe { libc::listen(listener, libc::c_int::MAX) }) {
        panic!("listen (raising the backlog): {e}");
    }
}
