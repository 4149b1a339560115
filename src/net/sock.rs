//! `Sock`: what every coronet socket type is made of — a `NetFd`, its network name and
//! addresses — and the operations they share, each wrapped once in Go's error form.
//!
//! `tcp.rs`, `udp.rs` and `unix.rs` are thin: they pick the operations that make sense for
//! their type and give them std's names.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::error::{is_closed, op_error, Addr};
use super::socket::{self, SockAddr, SEND_FLAGS};
use crate::poll::desc::Dir;
use crate::poll::fd::NetFd;

pub(crate) struct Sock {
    pub(crate) fd: NetFd,
    /// "tcp", "udp", "unix", "unixgram": the word Go puts in its errors.
    pub(crate) net: &'static str,
    /// The addresses errors and `Debug` print. Recorded when the socket is made, so an error
    /// message stays complete after a reset; a datagram socket's `connect` changes them
    /// through `&self`, and a `try_clone` shares them, as it shares the kernel's connection.
    /// Only error paths, `Debug` and set-up read them.
    names: Arc<Mutex<Names>>,
}

/// Go's `laddr` and `raddr` of a socket, as last learned.
#[derive(Clone, Default)]
pub(crate) struct Names {
    pub(crate) local: Option<Addr>,
    pub(crate) peer: Option<Addr>,
}

/// One of `fd`'s names as the kernel has it (`ask`: `socket::local_addr` or `peer_addr`),
/// in the form errors print; None if it will not say.
fn kernel_name(
    fd: BorrowedFd<'_>,
    ask: fn(BorrowedFd<'_>) -> io::Result<SockAddr>,
) -> Option<Addr> {
    ask(fd).ok().and_then(|a| a.to_addr().ok())
}

/// std rejects a zero timeout with this error; so do we.
fn zero_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

impl Sock {
    /// Wraps a socket of unknown state (adopted from std or a raw fd), reading both its
    /// addresses from the kernel.
    pub(crate) fn new(fd: OwnedFd, net: &'static str) -> Sock {
        let local = kernel_name(borrow(&fd), socket::local_addr);
        let peer = kernel_name(borrow(&fd), socket::peer_addr);
        Sock::with_addrs(fd, net, local, peer)
    }

    /// Wraps a socket this process has just bound (a listener, a bound datagram socket),
    /// reading only its own address from the kernel: it has no peer yet, so a
    /// `getpeername` could only answer ENOTCONN (it did, on every bind, until an audit of
    /// the system calls per operation).
    pub(crate) fn bound(fd: OwnedFd, net: &'static str) -> Sock {
        let local = kernel_name(borrow(&fd), socket::local_addr);
        Sock::with_addrs(fd, net, local, None)
    }

    pub(crate) fn with_addrs(
        fd: OwnedFd,
        net: &'static str,
        local: Option<Addr>,
        peer: Option<Addr>,
    ) -> Sock {
        Sock {
            fd: NetFd::new(fd),
            net,
            names: Arc::new(Mutex::new(Names { local, peer })),
        }
    }

    /// The addresses errors print.
    pub(crate) fn names(&self) -> Names {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// This socket's own address, as errors print it.
    pub(crate) fn local(&self) -> Option<Addr> {
        self.names().local
    }

    /// Records a connection in the addresses errors print: the peer, and the local address
    /// if the kernel has only now chosen it (`None` keeps the old one).
    pub(crate) fn connected(&self, local: Option<Addr>, peer: Addr) {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        names.local = local.or(names.local.take());
        names.peer = Some(peer);
    }

    /// Adopts an fd from std or from a raw fd: makes it nonblocking (std's are blocking),
    /// and takes over what std keeps in the socket: the read and write timeouts. Its
    /// `SO_LINGER` is unknown, so releasing it checks (`NetFd::keep_if_lingering`).
    pub(crate) fn adopt(fd: OwnedFd, net: &'static str) -> Sock {
        // Ignored: a failure leaves a blocking fd, which still works (a call then blocks the
        // worker thread instead of parking), and the next call reports any real fd problem.
        let _ = socket::set_nonblocking(borrow(&fd), true);
        let timeouts = [Dir::Read, Dir::Write].map(|dir| kernel_timeout(borrow(&fd), dir));
        let sock = Sock::new(fd, net);
        for (dir, t) in [Dir::Read, Dir::Write].into_iter().zip(timeouts) {
            sock.fd.set_timeout(dir, t);
        }
        sock.fd.set_may_linger();
        // Whoever handed it over may hold other handles on the same open file, and may
        // have read the socket in ways coronet never saw (`Settings::raw`).
        sock.fd.expose_raw();
        sock
    }

    /// [`adopt`](Sock::adopt) for a std socket, whose mode is also the user's: one set
    /// nonblocking stays so here (its calls return `WouldBlock` rather than park), as std
    /// keeps that mode in the open file. (A raw fd's `O_NONBLOCK` says nothing of the kind:
    /// `into_raw_fd` gives coronet's sockets away nonblocking for their own sake.)
    pub(crate) fn adopt_std(fd: OwnedFd, net: &'static str) -> Sock {
        let user_nonblocking = !socket::file_blocks(borrow(&fd));
        let sock = Sock::adopt(fd, net);
        if user_nonblocking {
            // Cannot fail: the socket is new, so not closed.
            let _ = sock.fd.set_user_nonblocking(true);
        }
        sock
    }

    /// The Go-form error for `op` on this socket.
    pub(crate) fn err(&self, op: &'static str, e: io::Error) -> io::Error {
        let Names { local, peer } = self.names();
        op_error(op, self.net, local, peer, e)
    }

    /// Errors of listeners, unconnected sockets and the deadline setters name only their
    /// own address.
    pub(crate) fn err_local(&self, op: &'static str, e: io::Error) -> io::Error {
        op_error(op, self.net, None, self.local(), e)
    }

    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags::<false>(buf, 0, "read")
    }

    /// `read` through `&mut`: std's `Read` for the owned stream, which no other call can
    /// share, so it takes no lock (`poll/fd.rs`, *Calls through `&mut`*).
    #[inline]
    pub(crate) fn read_mut(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags::<true>(buf, 0, "read")
    }

    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags::<false>(buf, libc::MSG_PEEK, "read")
    }

    /// `SOLE` only from a `*_mut` method: the handle is held by `&mut`.
    #[inline]
    fn recv_flags<const SOLE: bool>(
        &self,
        buf: &mut [u8],
        flags: i32,
        op: &'static str,
    ) -> io::Result<usize> {
        if buf.is_empty()
            && self.net != "udp"
            && self.net != "unixgram"
            && !self.fd.user_nonblocking()
        {
            // Go returns at once for an empty read on a stream: no syscall, no park. Not in
            // std's nonblocking mode, whose callers expect the kernel's answer (`WouldBlock`
            // with nothing queued) rather than an `Ok(0)` that reads as end of file.
            return self.fd.with_fd(|_| Ok(0)).map_err(|e| self.err(op, e));
        }
        let r = if flags == 0 && self.short_read_drains() {
            let len = buf.len();
            self.fd
                .read_stream::<SOLE>(len, buf.as_ptr(), |fd| socket::recv(fd, buf, flags))
        } else {
            self.fd
                .read_as::<_, SOLE>(|fd| socket::recv(fd, buf, flags))
        };
        r.map_err(|e| self.err(op, e))
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.readv::<false>(bufs)
    }

    /// `read_vectored` through `&mut` (see `read_mut`).
    pub(crate) fn read_vectored_mut(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.readv::<true>(bufs)
    }

    fn readv<const SOLE: bool>(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let r = if self.short_read_drains() {
            // Only what `readv` passes on: a full read of those with more buffers behind
            // them is no short read.
            let len = bufs.iter().take(socket::MAX_IOV).map(|b| b.len()).sum();
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(ptr::null(), |b| b.as_ptr());
            self.fd
                .read_stream::<SOLE>(len, first, |fd| socket::readv(fd, bufs))
        } else {
            self.fd.read_as::<_, SOLE>(|fd| socket::readv(fd, bufs))
        };
        r.map_err(|e| self.err("read", e))
    }

    /// Whether a short read means the receive queue is empty (`NetFd::read_stream`): TCP,
    /// whose exceptions `PollDesc` tracks. Not a Unix stream: the kernel ends a read after
    /// a message carrying fds (SCM_RIGHTS) and between messages whose credentials differ,
    /// with the next message still queued and no new edge to announce it.
    fn short_read_drains(&self) -> bool {
        self.net.starts_with("tcp")
    }

    /// Go's `Write`: the whole buffer goes out under the write lock, looping over partial
    /// sends and parking on EAGAIN, so concurrent writers never interleave their messages.
    /// If the deadline passes or the peer fails after some bytes went out, returns `Ok(n)`
    /// with what was written; the next call reports the error.
    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_all::<false>(buf)
    }

    /// `write` through `&mut`: std's `Write` for the owned stream, which no other writer can
    /// share, so it takes no lock (`poll/fd.rs`, *Calls through `&mut`*).
    #[inline]
    pub(crate) fn write_mut(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_all::<true>(buf)
    }

    /// `SOLE` only from a `*_mut` method: the handle is held by `&mut`.
    #[inline]
    fn send_all<const SOLE: bool>(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.write_nothing();
        }
        let mut done = 0;
        let r = self.fd.write_as::<_, SOLE>(|fd| {
            while done < buf.len() {
                match socket::send(fd, &buf[done..], SEND_FLAGS) {
                    Ok(n) => done += n,
                    Err(e) => return Err(e),
                }
            }
            Ok(done)
        });
        match r {
            Ok(n) => Ok(n),
            Err(_) if done > 0 => Ok(done),
            Err(e) => Err(self.err("write", e)),
        }
    }

    /// An empty write: a send of nothing, as both Go's `Write` and std's make, so a closed
    /// fd, a passed write deadline, a shut-down write side and a reset peer are errors still.
    fn write_nothing(&self) -> io::Result<usize> {
        self.fd
            .write_with(|fd| socket::send(fd, &[], SEND_FLAGS))
            .map_err(|e| self.err("write", e))
    }

    /// `writev` with Go's whole-buffer rule (see `write`).
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writev_all::<false>(bufs)
    }

    /// `write_vectored` through `&mut` (see `write_mut`).
    pub(crate) fn write_vectored_mut(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writev_all::<true>(bufs)
    }

    fn writev_all<const SOLE: bool>(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            // Not a send: std's `writev` of nothing returns 0 before the socket is asked
            // (the kernel's `vfs_writev`), and Go's `Writev` skips empty chunks and makes no
            // syscall, after its write lock and deadline check, which this keeps.
            return self
                .fd
                .write_with(|_| Ok(0))
                .map_err(|e| self.err("write", e));
        }
        let mut owned: Vec<IoSlice<'_>> = bufs.to_vec();
        let mut rest: &mut [IoSlice<'_>] = &mut owned;
        let mut done = 0;
        let r = self.fd.write_as::<_, SOLE>(|fd| {
            while done < total {
                let n = socket::writev(fd, rest)?;
                done += n;
                IoSlice::advance_slices(&mut rest, n);
            }
            Ok(done)
        });
        match r {
            Ok(n) => Ok(n),
            Err(_) if done > 0 => Ok(done),
            Err(e) => Err(self.err("write", e)),
        }
    }

    /// One Unix datagram to `to`; `addr_for_err` names it in an error. Paced
    /// (`NetFd::write_paced`): a Unix receiver's full queue raises no event for a sender it
    /// is not connected back to. (UDP's `send_to` has its own path, in `udp.rs`.)
    pub(crate) fn send_to(
        &self,
        buf: &[u8],
        to: &SockAddr,
        addr_for_err: Option<Addr>,
    ) -> io::Result<usize> {
        self.fd
            .write_paced(|fd| socket::send_to(fd, buf, to, SEND_FLAGS))
            .map_err(|e| op_error("write", self.net, self.local(), addr_for_err, e))
    }

    /// One datagram on a connected datagram socket.
    pub(crate) fn send_datagram(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .write_with(|fd| socket::send(fd, buf, SEND_FLAGS))
            .map_err(|e| self.err("write", e))
    }

    /// Accepts one connection, retrying ECONNABORTED (the peer gave up while queued) as Go
    /// does. EMFILE/ENFILE come back as errors: never a busy loop.
    pub(crate) fn accept(&self) -> io::Result<(OwnedFd, SockAddr)> {
        // An open file nobody else can reach is still the O_NONBLOCK one coronet made: no
        // `fcntl` per accept to ask (`socket::accept`). Asked on every try, not once: the
        // listener may be exposed (a clone turned std, and blocking) while this one parks.
        self.fd
            .read_with(|fd| match socket::accept(fd, self.fd.exposed()) {
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
                    Err(io::Error::from(io::ErrorKind::Interrupted))
                }
                r => r,
            })
            .map_err(|e| self.err_local("accept", e))
    }

    /// Connects a fresh socket, parking until the handshake finishes or `deadline` passes;
    /// gives back the peer's address if it was asked on the way (a connect that finished at
    /// once did not). Errors are raw; the caller decorates them ("dial").
    pub(crate) fn connect(
        &self,
        to: &SockAddr,
        deadline: Option<Instant>,
    ) -> io::Result<Option<SockAddr>> {
        let r = self.connect_unbudgeted(to, deadline);
        // A dial counts against the coroutine's I/O budget as any socket call does, so a
        // loop that dials a refusing address again and again yields now and then.
        crate::runtime::worker::spend_io_budget();
        r
    }

    fn connect_unbudgeted(
        &self,
        to: &SockAddr,
        deadline: Option<Instant>,
    ) -> io::Result<Option<SockAddr>> {
        let r = self.fd.with_fd(|fd| socket::connect(fd, to));
        match r {
            Ok(()) => return Ok(None),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINPROGRESS) | Some(libc::EALREADY) | Some(libc::EINTR)
                ) => {}
            Err(e) => return Err(e),
        }
        // In progress: writability says the handshake ended. A peer address says it
        // succeeded, in one call; only without one does SO_ERROR say why (Go asks SO_ERROR
        // first, then the peer, which costs a dial two calls where one does: a socket that
        // has a peer finished its handshake, and an error that came after it is the next
        // read's or write's to report, as on any connection).
        loop {
            self.fd.wait_ready(Dir::Write, deadline)?;
            match self.fd.with_fd(socket::peer_addr) {
                Ok(peer) => return Ok(Some(peer)),
                // failed, or a spurious wake-up before the handshake finished
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {}
                Err(e) => return Err(e),
            }
            match self.fd.with_fd(socket::take_error)? {
                Some(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINPROGRESS) | Some(libc::EALREADY) | Some(libc::EINTR)
                    ) => {}
                Some(e) => return Err(e),
                None => {} // still under way: wait again
            }
        }
    }

    /// Shuts a direction down, and wakes a call blocked in it so that it retries and meets
    /// the shutdown (EPIPE, or end of file), as a blocked std call returns at once: a Unix
    /// socket's poll reports nothing for its own write side shut down, so a send parked on
    /// a full buffer would otherwise wait for ever (found by an audit), on this handle or a
    /// clone of it (`NetFd::kick_all`). Its errors say `close`, as those of Go's
    /// `CloseRead` and `CloseWrite` do.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd
            .with_fd(|fd| socket::shutdown(fd, how))
            .map_err(|e| self.err("close", e))?;
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.fd.kick_all(Dir::Write);
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.fd.kick_all(Dir::Read);
        }
        Ok(())
    }

    pub(crate) fn close(&self) -> io::Result<()> {
        self.fd.close().map_err(|e| self.err("close", e))
    }

    pub(crate) fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.set_read_deadline(d)?;
        self.set_write_deadline(d)
    }

    /// Go's `SetReadDeadline`; its error names only the local address, as Go's does.
    pub(crate) fn set_read_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd
            .set_deadline(Dir::Read, d)
            .map_err(|e| self.err_local("set", e))
    }

    pub(crate) fn set_write_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.fd
            .set_deadline(Dir::Write, d)
            .map_err(|e| self.err_local("set", e))
    }

    pub(crate) fn set_timeout(&self, dir: Dir, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(zero_timeout());
        }
        // Also in the kernel, where std keeps it: a std socket converted from this one, or a
        // std clone of it, times out the same (coronet's own calls never block in the
        // kernel, so the kernel's copy does not affect them).
        self.fd
            .with_fd(|fd| set_kernel_timeout(fd, dir, t))
            .map_err(|e| self.err("set", e))?;
        self.fd.set_timeout(dir, t);
        Ok(())
    }

    /// `SO_LINGER`, noted so that releasing a lingering socket never blocks a worker.
    pub(crate) fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        // Marked first: a `close` racing this on a worker must not miss a linger the
        // option below turns on, or its `dup2` would wait out the linger on the worker.
        if linger.is_some_and(|d| !d.is_zero()) {
            self.fd.set_may_linger();
        }
        self.fd
            .with_fd(|fd| socket::set_linger(fd, linger))
            .map_err(|e| self.err("set", e))
    }

    pub(crate) fn timeout(&self, dir: Dir) -> io::Result<Option<Duration>> {
        self.fd.incref().map_err(|e| self.err("get", e))?;
        Ok(self.fd.timeout(dir))
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd
            .set_user_nonblocking(on)
            .map_err(|e| self.err("set", e))
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd
            .with_fd(socket::take_error)
            .map_err(|e| self.err("get", e))
    }

    pub(crate) fn setsockopt<T: socket::Pod>(&self, level: i32, name: i32, v: T) -> io::Result<()> {
        self.fd
            .with_fd(|fd| socket::setsockopt(fd, level, name, v))
            .map_err(|e| self.err("set", e))
    }

    /// Sets `SO_RCVBUF` or `SO_SNDBUF` from std's `usize`, at most `c_int::MAX`. Its errors
    /// name only the local address, as those of Go's `SetReadBuffer` and `SetWriteBuffer`
    /// do.
    pub(crate) fn set_buffer_size(&self, name: i32, size: usize) -> io::Result<()> {
        let size = size.min(libc::c_int::MAX as usize) as libc::c_int;
        self.fd
            .with_fd(|fd| socket::setsockopt(fd, libc::SOL_SOCKET, name, size))
            .map_err(|e| self.err_local("set", e))
    }

    pub(crate) fn getsockopt<T: socket::Pod>(&self, level: i32, name: i32) -> io::Result<T> {
        self.fd
            .with_fd(|fd| socket::getsockopt(fd, level, name))
            .map_err(|e| self.err("get", e))
    }

    /// An integer option given as std's `u32`. Values past `c_int::MAX` go to the kernel
    /// as `c_int::MAX`, which it refuses with `EINVAL`: std's `as c_int` would wrap them to
    /// negative numbers, and -1 means "the default" to `IP_TTL`, so `set_ttl(u32::MAX)`
    /// would succeed and leave the TTL at 64.
    pub(crate) fn set_u32(&self, level: i32, name: i32, v: u32) -> io::Result<()> {
        let v = libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        self.setsockopt(level, name, v)
    }

    pub(crate) fn set_bool(&self, level: i32, name: i32, on: bool) -> io::Result<()> {
        self.setsockopt(level, name, on as libc::c_int)
    }

    pub(crate) fn get_bool(&self, level: i32, name: i32) -> io::Result<bool> {
        self.getsockopt::<libc::c_int>(level, name).map(|v| v != 0)
    }

    /// A `dup` of the socket sharing the same open file, with its own `NetFd`: its own
    /// locks, deadlines and `close`, and the timeouts and nonblocking mode shared with this
    /// handle, later changes included, as std shares them through the socket.
    pub(crate) fn try_clone(&self) -> io::Result<Sock> {
        // Exposed before the dup exists, not after: a `close` racing this clone must see
        // that its release of the socket is not the last and delete the epoll entry itself.
        self.fd.expose();
        let fd = self
            .fd
            .with_fd(|fd| fd.try_clone_to_owned())
            .map_err(|e| self.err("dup", e))?;
        let clone = Sock {
            fd: NetFd::new(fd),
            net: self.net,
            names: self.names.clone(),
        };
        clone.fd.inherit(&self.fd);
        Ok(clone)
    }

    /// The peer as the kernel has it now (None if it will not say), for recording after a
    /// connect, as Go records it: a connect to a wildcard reaches one of this host's own
    /// addresses, and a Unix path through a symlink reaches the listener's own path.
    pub(crate) fn kernel_peer(&self) -> Option<Addr> {
        self.fd
            .with_fd(|fd| Ok(kernel_name(fd, socket::peer_addr)))
            .ok()
            .flatten()
    }

    /// The socket's own address, from the kernel; after `close`, the one recorded as the
    /// kernel reported it when the socket was made, bound, accepted or connected, as Go's
    /// `LocalAddr` keeps answering after `Close`.
    pub(crate) fn local_sockaddr(&self) -> io::Result<SockAddr> {
        self.sockaddr(socket::local_addr, |names| names.local)
    }

    /// The peer's address, as `local_sockaddr` (after `close`, the one recorded at connect or
    /// accept; an unconnected socket has none and fails as closed).
    pub(crate) fn peer_sockaddr(&self) -> io::Result<SockAddr> {
        self.sockaddr(socket::peer_addr, |names| names.peer)
    }

    fn sockaddr(
        &self,
        ask: fn(BorrowedFd<'_>) -> io::Result<SockAddr>,
        recorded: fn(Names) -> Option<Addr>,
    ) -> io::Result<SockAddr> {
        self.fd
            .with_fd(ask)
            .or_else(|e| {
                let kept = if is_closed(&e) {
                    recorded(self.names())
                } else {
                    None
                };
                kept.and_then(|a| SockAddr::from_addr(&a).ok()).ok_or(e)
            })
            .map_err(|e| self.err("get", e))
    }

    /// Gives the fd away without closing it; it stays O_NONBLOCK.
    pub(crate) fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw()
    }

    /// Gives the fd away for conversion into a std type: blocking, unless the user set this
    /// socket nonblocking (std keeps that mode in the open file, and so does the std socket).
    pub(crate) fn into_blocking_owned(self) -> OwnedFd {
        let nonblocking = self.fd.user_nonblocking();
        // A closed socket's number holds the placeholder that every closed number shares
        // (`poll/fd.rs`): its open file's mode is not this socket's to change (found by a
        // probe; the placeholder answers at once in either mode, but stays as made).
        let closed = self.fd.is_closed();
        let raw = self.fd.into_raw();
        // SAFETY: `into_raw` handed us sole ownership of the open fd `raw`.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Ignored: a std socket left nonblocking would only return WouldBlock early, and
        // there is no error channel in a `From` conversion.
        if !closed {
            let _ = socket::set_nonblocking(borrow(&fd), nonblocking);
        }
        fd
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The fd number, handed to the user (`AsRawFd`, `AsFd`): from now on they may change
    /// the socket behind our back (`NetFd::expose_raw`).
    pub(crate) fn raw_exposed(&self) -> RawFd {
        self.fd.expose_raw();
        self.fd.as_raw_fd()
    }

    /// `Debug` of a socket type: its addresses and fd, as std prints them.
    pub(crate) fn debug(&self, f: &mut std::fmt::Formatter<'_>, ty: &str) -> std::fmt::Result {
        let Names { local, peer } = self.names();
        let mut d = f.debug_struct(ty);
        if let Some(a) = &local {
            d.field("addr", &format_args!("{a}"));
        }
        if let Some(a) = &peer {
            d.field("peer", &format_args!("{a}"));
        }
        d.field("fd", &self.raw()).finish()
    }
}

/// The kernel's `SO_RCVTIMEO` / `SO_SNDTIMEO`, where std keeps its timeouts (None if unset
/// or unreadable).
fn kernel_timeout(fd: BorrowedFd<'_>, dir: Dir) -> Option<Duration> {
    let tv: libc::timeval = socket::getsockopt(fd, libc::SOL_SOCKET, timeout_option(dir)).ok()?;
    let t = Duration::new(u64::try_from(tv.tv_sec).ok()?, 0)
        + Duration::from_micros(u64::try_from(tv.tv_usec).ok()?);
    (!t.is_zero()).then_some(t)
}

/// Sets the kernel's copy of a timeout as std does (rounded up to a microsecond, saturated).
fn set_kernel_timeout(fd: BorrowedFd<'_>, dir: Dir, t: Option<Duration>) -> io::Result<()> {
    let tv = match t {
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        Some(t) => {
            let tv_sec = libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX);
            let mut tv_usec = libc::suseconds_t::from(t.subsec_micros());
            if tv_sec == 0 && tv_usec == 0 {
                tv_usec = 1;
            }
            libc::timeval { tv_sec, tv_usec }
        }
    };
    socket::setsockopt(fd, libc::SOL_SOCKET, timeout_option(dir), tv)
}

fn timeout_option(dir: Dir) -> libc::c_int {
    match dir {
        Dir::Read => libc::SO_RCVTIMEO,
        Dir::Write => libc::SO_SNDTIMEO,
    }
}

fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// The new stream defaults of Go's TCP: Nagle off, keep-alive on with a 15 s period.
pub(crate) fn tcp_defaults(s: &Sock) {
    // Ignored: these are performance/liveness defaults; a socket without them still works,
    // and `set_nodelay` / `set_keepalive` report errors to a user who asks.
    let _ = s.set_bool(libc::IPPROTO_TCP, libc::TCP_NODELAY, true);
    let _ = s.set_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE, true);
    let _ =
        s.fd.with_fd(|fd| socket::set_keepalive_period(fd, super::KEEPALIVE_PERIOD));
}

/// [`tcp_defaults`] on a new listener, once for all the connections it will accept: Linux
/// makes each accepted socket a copy of its listener, options included (the keep-alive
/// timer starts on the copy), so they need not be set again per connection — four
/// `setsockopt`s fewer per accept. On a listener the options do nothing else: keep-alive
/// and Nagle act on connections only. `accept` still sets them per connection when the
/// listener's options may have been changed behind our back (`NetFd::exposed`), or when
/// [`inherits_tcp_defaults`] finds a kernel that does not copy them.
pub(crate) fn listener_tcp_defaults(fd: BorrowedFd<'_>) -> io::Result<()> {
    socket::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1 as libc::c_int)?;
    socket::setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1 as libc::c_int)?;
    socket::set_keepalive_period(fd, super::KEEPALIVE_PERIOD)
}

/// Whether this kernel gives accepted sockets their listener's [`listener_tcp_defaults`]:
/// read back from the first connection accepted from such a listener, once per process
/// (Linux always has; a kernel that does not — a sandbox's own network stack, say — makes
/// `accept` set them per connection, as before).
pub(crate) fn inherits_tcp_defaults(accepted: &Sock) -> bool {
    static INHERITS: OnceLock<bool> = OnceLock::new();
    *INHERITS.get_or_init(|| {
        let int = |level, name| accepted.getsockopt::<libc::c_int>(level, name).ok();
        let period = libc::c_int::try_from(super::KEEPALIVE_PERIOD.as_secs()).ok();
        let inherits = int(libc::IPPROTO_TCP, libc::TCP_NODELAY).is_some_and(|v| v != 0)
            && int(libc::SOL_SOCKET, libc::SO_KEEPALIVE).is_some_and(|v| v != 0)
            && int(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) == period
            && int(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) == period;
        if !inherits {
            rt_log!(
                Debug,
                "accepted sockets do not inherit their listener's options here"
            );
        }
        inherits
    })
}

/// The fd and conversion traits every socket type has: `AsRawFd`, `AsFd`, `IntoRawFd`,
/// `FromRawFd`, `From` the std type and back, and `Debug`. The type must be a struct with
/// one field `sock: Sock`.
macro_rules! fd_traits {
    ($ty:ident, $std:ty, $net:expr) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.sock.raw_exposed()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the fd number is open for as long as `self` lives (`NetFd`
                // invariant): `close(&self)` only swaps the socket behind it for a dead
                // placeholder, and the number itself is closed in drop.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.raw_exposed()) }
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Gives the fd away without closing it; it stays nonblocking.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.sock.into_raw_fd()
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            /// Adopts `fd`, switching it to nonblocking mode.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller promises `fd` is an open socket it owns.
                let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                $ty {
                    sock: $crate::net::sock::Sock::adopt(owned, $net),
                }
            }
        }

        impl From<$std> for $ty {
            /// Adopts a std socket, switching its fd to nonblocking mode; a std socket set
            /// nonblocking keeps that mode here (calls return `WouldBlock`).
            fn from(s: $std) -> $ty {
                $ty {
                    sock: $crate::net::sock::Sock::adopt_std(std::os::fd::OwnedFd::from(s), $net),
                }
            }
        }

        impl From<$ty> for $std {
            /// Hands the socket to std, back in blocking mode unless it was set nonblocking.
            fn from(s: $ty) -> $std {
                <$std>::from(s.sock.into_blocking_owned())
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.sock.debug(f, stringify!($ty))
            }
        }
    };
}
pub(crate) use fd_traits;
