//! `TcpListener` and `TcpStream`: std's API, Go's semantics, parked on the netpoller.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::error::{op_error, Addr};
use super::lookup::resolve;
use super::sock::{fd_traits, tcp_defaults, Sock};
use super::socket::{self, SockAddr};
use crate::poll::desc::Dir;

fn inet(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_inet()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

fn domain(a: &SocketAddr) -> i32 {
    match a {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// A TCP socket server, listening for connections.
///
/// `accept` parks the calling coroutine until a connection arrives (a plain thread blocks).
/// The socket is made with `SOCK_NONBLOCK | SOCK_CLOEXEC`, `SO_REUSEADDR`, and the system's
/// `somaxconn` as its backlog, as Go does.
///
/// ```
/// use coronet::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// coronet::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = coronet::go(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         let mut buf = [0u8; 5];
///         s.read_exact(&mut buf).unwrap();
///         s.write_all(&buf).unwrap();
///     });
///     let mut c = TcpStream::connect(addr).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut back = [0u8; 5];
///     c.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    sock: Sock,
}

/// A TCP connection. Reads park until data arrives; a write sends the whole buffer.
///
/// New streams (accepted or dialed) have `TCP_NODELAY` on and keep-alive at 15 s, like Go's.
pub struct TcpStream {
    sock: Sock,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, and listens.
    ///
    /// # Errors
    ///
    /// Resolution failures, and the bind/listen error in Go's form
    /// (`listen tcp 127.0.0.1:80: permission denied`).
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpListener> {
        super::ListenConfig::new().listen(addr)
    }

    pub(crate) fn from_sock(sock: Sock) -> TcpListener {
        TcpListener { sock }
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// # Errors
    ///
    /// `accept tcp 127.0.0.1:8080: too many open files` when out of fds (back off and
    /// retry; the listener stays usable), the closed or timeout error after `close` or a
    /// passed deadline.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = self.sock.accept()?;
        let peer = inet(peer)?;
        let local = socket::local_addr(fd.as_fd())
            .ok()
            .and_then(|a| a.as_inet())
            .map(Addr::Inet);
        let sock = Sock::with_addrs(fd, "tcp", local, Some(Addr::Inet(peer)));
        tcp_defaults(&sock);
        Ok((TcpStream { sock }, peer))
    }

    /// An endless iterator of accepted connections, as std's.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.local_sockaddr()?)
    }

    /// Go's `SetDeadline` for listeners: bounds `accept`, including one already blocked.
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Go's `Close`: a blocked `accept` returns at once with the closed error.
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }

    /// A second handle on the same listening socket (`dup`).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock
            .setsockopt(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock
            .getsockopt::<libc::c_int>(libc::IPPROTO_IP, libc::IP_TTL)
            .map(|v| v as u32)
    }

    /// Reads and clears `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: `accept` returns `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }
}

/// Iterator over a listener's connections; never ends.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr`, trying every resolved address in order.
    ///
    /// # Errors
    ///
    /// The last address's failure in Go's form: `dial tcp 127.0.0.1:1: connection refused`.
    pub fn connect<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpStream> {
        super::Dialer::new().dial(addr)
    }

    /// Connects to one address, giving up after `timeout` with kind `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero timeout (as std); otherwise as [`connect`](Self::connect).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        super::Dialer::new().timeout(timeout).dial(addr)
    }

    /// Dials one resolved address with the dialer's options. Errors are raw.
    pub(crate) fn dial_one(
        to: SocketAddr,
        local: Option<SocketAddr>,
        deadline: Option<Instant>,
        control: Option<&(dyn Fn(RawFd) -> io::Result<()> + Send + Sync)>,
        keepalive: Option<Duration>,
    ) -> io::Result<TcpStream> {
        Self::dial_one_watched(to, local, deadline, control, keepalive, &mut |_| {})
    }

    /// `dial_one`, showing the socket to `watch` just before it connects: `dial_context`
    /// uses it to let a cancel reach the parked connect.
    pub(crate) fn dial_one_watched(
        to: SocketAddr,
        local: Option<SocketAddr>,
        deadline: Option<Instant>,
        control: Option<&(dyn Fn(RawFd) -> io::Result<()> + Send + Sync)>,
        keepalive: Option<Duration>,
        watch: &mut dyn FnMut(&Sock),
    ) -> io::Result<TcpStream> {
        let fd = socket::socket(domain(&to), libc::SOCK_STREAM)?;
        if let Some(control) = control {
            control(fd.as_raw_fd())?;
        }
        if let Some(local) = local {
            socket::bind(fd.as_fd(), &SockAddr::from_inet(&local))?;
        }
        let sock = Sock::with_addrs(fd, "tcp", None, Some(Addr::Inet(to)));
        watch(&sock);
        sock.connect(&SockAddr::from_inet(&to), deadline)?;
        let mut sock = sock;
        sock.local = sock
            .local_sockaddr()
            .ok()
            .and_then(|a| a.as_inet())
            .map(Addr::Inet);
        tcp_defaults(&sock);
        if let Some(period) = keepalive {
            if period.is_zero() {
                sock.set_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE, false)?;
            } else {
                sock.fd
                    .with_fd(|fd| socket::set_keepalive_period(fd, period))?;
            }
        }
        Ok(TcpStream { sock })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.peer_sockaddr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.local_sockaddr()?)
    }

    /// Shuts down the read, write, or both halves (a FIN for write).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// A second handle on the same connection (`dup`), with its own deadlines.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// std's per-call read timeout: each read that waits longer fails with kind
    /// `TimedOut` (std on Unix says `WouldBlock`; coronet says what happened, as Go does).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// std's per-call write timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, dur)
    }

    /// The per-call read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Read)
    }

    /// The per-call write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Write)
    }

    /// Go's `SetDeadline`: an absolute time after which reads and writes fail with
    /// `i/o timeout` — including calls already blocked — until a new deadline is set.
    /// `None` clears it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// coronet::run(|| {
    ///     let l = coronet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = coronet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     c.set_deadline(Some(Instant::now() + Duration::from_millis(20))).unwrap();
    ///     let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     assert!(err.to_string().ends_with("i/o timeout"));
    ///     # use std::io::Read;
    /// });
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(deadline)
    }

    /// Go's `SetReadDeadline`.
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Go's `SetWriteDeadline`.
    pub fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_write_deadline(deadline)
    }

    /// Go's `Close`: blocked reads and writes on this stream return at once with
    /// `use of closed network connection`; later calls fail the same way; the fd is
    /// released when the last call in flight has left.
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }

    /// Reads without consuming (`MSG_PEEK`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Sets `TCP_NODELAY` (on by default).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::IPPROTO_TCP, libc::TCP_NODELAY, nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock
            .setsockopt(libc::IPPROTO_IP, libc::IP_TTL, ttl as libc::c_int)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock
            .getsockopt::<libc::c_int>(libc::IPPROTO_IP, libc::IP_TTL)
            .map(|v| v as u32)
    }

    /// Reads and clears `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: calls return `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Go's `SetKeepAlive`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock.set_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE, on)
    }

    /// Whether `SO_KEEPALIVE` is on.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE)
    }

    /// Go's `SetKeepAlivePeriod`: idle time before the first probe and between probes
    /// (whole seconds, at least 1).
    pub fn set_keepalive_period(&self, period: Duration) -> io::Result<()> {
        self.sock
            .fd
            .with_fd(|fd| socket::set_keepalive_period(fd, period))
            .map_err(|e| self.sock.err("set", e))
    }

    /// The keep-alive idle period.
    pub fn keepalive_period(&self) -> io::Result<Duration> {
        self.sock
            .fd
            .with_fd(socket::keepalive_period)
            .map_err(|e| self.sock.err("get", e))
    }

    /// Go's `SetLinger`: `Some(ZERO)` makes close send a reset and drop unsent data.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock
            .fd
            .with_fd(|fd| socket::set_linger(fd, linger))
            .map_err(|e| self.sock.err("set", e))
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock
            .fd
            .with_fd(socket::linger)
            .map_err(|e| self.sock.err("get", e))
    }

    /// Go's `SetReadBuffer` (`SO_RCVBUF`; the kernel doubles the value).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            size.min(i32::MAX as usize) as libc::c_int,
        )
    }

    /// `SO_RCVBUF` as the kernel reports it.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.sock
            .getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_RCVBUF)
            .map(|v| v as usize)
    }

    /// Go's `SetWriteBuffer` (`SO_SNDBUF`; the kernel doubles the value).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.setsockopt(
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            size.min(i32::MAX as usize) as libc::c_int,
        )
    }

    /// `SO_SNDBUF` as the kernel reports it.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.sock
            .getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_SNDBUF)
            .map(|v| v as usize)
    }

    /// The socket underneath, for `coronet::io::copy`'s kernel paths.
    pub(crate) fn sock(&self) -> &Sock {
        &self.sock
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fd_traits!(TcpStream, std::net::TcpStream, "tcp");
fd_traits!(TcpListener, std::net::TcpListener, "tcp");

/// Decorates a dial failure: `dial tcp 127.0.0.1:1: connection refused`.
pub(crate) fn dial_error(
    local: Option<SocketAddr>,
    to: Option<SocketAddr>,
    e: io::Error,
) -> io::Error {
    op_error("dial", "tcp", local.map(Addr::Inet), to.map(Addr::Inet), e)
}

/// Resolves for dialing/listening, off the worker threads.
pub(crate) fn addrs<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let v = resolve(addr)?;
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(v)
}
