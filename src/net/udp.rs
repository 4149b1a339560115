//! `UdpSocket`: std's API, Go's semantics, parked on the netpoller.
//!
//! A datagram socket is the same `Sock` as a TCP stream, with message calls instead of byte
//! streams: `recv`/`send` move one whole datagram each, a short buffer truncates it (as std),
//! and an empty datagram is a real message (`send(&[])` sends one, `recv` returns `Ok(0)`).
//!
//! One thing differs from `tcp.rs`: std's `connect(&self)` can point the socket at a new peer
//! at any time (and the kernel then picks a concrete local address), so it updates the
//! addresses errors print (`Sock::connected`).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::error::{op_error, Addr};
use super::lookup::resolve;
use super::sock::{fd_traits, Sock};
use super::socket::{self, SockAddr, SEND_FLAGS};
use super::tcp::addrs;
use crate::poll::desc::Dir;

/// A UDP socket: `recv` parks the calling coroutine until a datagram arrives (a plain thread
/// blocks), and every call honours Go's deadlines and `close`.
///
/// As in Go, new sockets have `SO_BROADCAST` on (std leaves it off), so sending to a
/// broadcast address needs no extra call.
///
/// ```
/// use coronet::net::UdpSocket;
///
/// coronet::run(|| {
///     let server = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let addr = server.local_addr().unwrap();
///     let echo = coronet::go(move || {
///         let mut buf = [0u8; 1500];
///         let (n, from) = server.recv_from(&mut buf).unwrap();
///         server.send_to(&buf[..n], from).unwrap();
///     });
///     let client = UdpSocket::bind("127.0.0.1:0").unwrap();
///     client.connect(addr).unwrap();
///     client.send(b"ping").unwrap();
///     let mut buf = [0u8; 16];
///     let n = client.recv(&mut buf).unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     echo.join().unwrap();
/// });
/// ```
pub struct UdpSocket {
    sock: Sock,
}

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

/// The first address of `addr` (literal addresses resolve on the caller: see `resolve`),
/// as std's `send_to` takes it — except that an IPv4 socket (`ipv4_socket`, asked only
/// then) passes over IPv6 addresses it could never send to when the list has an IPv4 one
/// after them: a name with both, or Go's `":9000"` (`[::]`, then `0.0.0.0`). std takes
/// the IPv6 one and fails with "address family not supported by protocol".
fn first_addr<A: ToSocketAddrs>(
    addr: A,
    ipv4_socket: impl FnOnce() -> bool,
) -> io::Result<SocketAddr> {
    let all = resolve(addr)?;
    let first = match all.first() {
        Some(a) if a.is_ipv6() && all.len() > 1 && ipv4_socket() => {
            all.iter().find(|a| a.is_ipv4()).or(Some(a))
        }
        first => first,
    };
    first
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

/// The error for joining or leaving a group that is not one.
fn not_multicast(ip: impl fmt::Display) -> io::Error {
    let msg = format!("{ip} is not a multicast address");
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl UdpSocket {
    /// Binds a new socket to the first address of `addr` that works.
    ///
    /// # Errors
    ///
    /// Resolution failures, and the socket/bind error in Go's form
    /// (`listen udp 127.0.0.1:53: address already in use`).
    ///
    /// ```
    /// let s = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let list = addrs(addr).map_err(|e| op_error("listen", "udp", None, None, e))?;
        let mut last = None;
        for a in list {
            match UdpSocket::bind_one(a) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(op_error("listen", "udp", None, Some(Addr::Inet(a)), e)),
            }
        }
        Err(last.expect("at least one address"))
    }

    fn bind_one(a: SocketAddr) -> io::Result<UdpSocket> {
        let fd = socket::socket(domain(&a), libc::SOCK_DGRAM)?;
        // Go's default for every UDP socket (`setDefaultSockopts`).
        socket::setsockopt(
            fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_BROADCAST,
            1 as libc::c_int,
        )?;
        socket::bind(fd.as_fd(), &SockAddr::from_inet(&a))?;
        let s = UdpSocket {
            sock: Sock::bound(fd, "udp"),
        };
        rt_log!(Debug, "udp bound to {a} (fd {})", s.sock.raw());
        Ok(s)
    }

    /// The Go-form error for `op`: `read udp 127.0.0.1:5000->127.0.0.1:6000: …`.
    fn err(&self, op: &'static str, e: io::Error) -> io::Error {
        self.sock.err(op, e)
    }

    /// The error of a `send_to`, which names its destination (Go's `WriteTo`).
    fn err_to(&self, to: Option<SocketAddr>, e: io::Error) -> io::Error {
        op_error("write", "udp", self.sock.local(), to.map(Addr::Inet), e)
    }

    /// Sets the default destination of `send` and the only source `recv` accepts, trying
    /// every resolved address in order. Calling it again re-points the socket.
    ///
    /// # Errors
    ///
    /// The last address's failure in Go's form, e.g.
    /// `dial udp 127.0.0.1:5000->[::1]:53: address family not supported by protocol`.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let local = self.sock.local();
        let list = addrs(addr).map_err(|e| op_error("dial", "udp", local.clone(), None, e))?;
        let mut last = None;
        for to in list {
            let raw = SockAddr::from_inet(&to);
            let r = self.sock.fd.with_fd(|fd| loop {
                match socket::connect(fd, &raw) {
                    // retry: a signal interrupted the call (a datagram connect never waits)
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => return r,
                }
            });
            match r {
                Ok(()) => {
                    // The kernel has now chosen a concrete local address for an any-address
                    // bind, and a connect to a wildcard reaches one of this host's own: both
                    // recorded as the kernel has them, as Go does.
                    // (Only a wildcard can name another peer than the kernel's, so only
                    // then is it asked: resolvers connect once per query.)
                    let local = self.sock.local_sockaddr().ok().and_then(|a| a.as_inet());
                    let wildcard = to.ip().to_canonical().is_unspecified();
                    let peer = if wildcard {
                        self.sock.kernel_peer()
                    } else {
                        None
                    };
                    let peer = peer.unwrap_or(Addr::Inet(to));
                    self.sock.connected(local.map(Addr::Inet), peer);
                    rt_log!(Debug, "udp fd {} connected to {to}", self.sock.raw());
                    return Ok(());
                }
                Err(e) => last = Some(op_error("dial", "udp", local.clone(), Some(to.into()), e)),
            }
        }
        Err(last.expect("at least one address"))
    }

    /// The address the socket is bound to.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0); // the port the kernel chose
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.local_sockaddr()?)
    }

    /// The address the socket is connected to.
    ///
    /// # Errors
    ///
    /// Kind `NotConnected` if [`connect`](Self::connect) was never called.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::io::ErrorKind;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.peer_sockaddr()?)
    }

    /// Sends one datagram to the connected peer, parking while the send buffer is full.
    /// An empty `buf` sends an empty datagram.
    ///
    /// # Errors
    ///
    /// `write udp 127.0.0.1:5000: destination address required` if not connected; kind
    /// `ConnectionRefused` when an earlier datagram drew an ICMP port-unreachable.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let server = UdpSocket::bind("127.0.0.1:0")?;
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// client.connect(server.local_addr()?)?;
    /// assert_eq!(client.send(b"hello")?, 5);
    /// let mut buf = [0u8; 16];
    /// let (n, from) = server.recv_from(&mut buf)?;
    /// assert_eq!((&buf[..n], from), (&b"hello"[..], client.local_addr()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock
            .fd
            .write_with(|fd| socket::send(fd, buf, SEND_FLAGS))
            .map_err(|e| self.err("write", e))
    }

    /// Receives one datagram, parking until one arrives. Bytes that do not fit in `buf` are
    /// discarded; an empty datagram returns `Ok(0)`.
    ///
    /// # Errors
    ///
    /// On a connected socket, kind `ConnectionRefused` after the peer's port answered an
    /// earlier datagram with ICMP port-unreachable
    /// (`read udp 127.0.0.1:5000->127.0.0.1:6000: connection refused`).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.send_to(b"a datagram too long", a.local_addr()?)?;
    /// let mut buf = [0u8; 10];
    /// let n = a.recv(&mut buf)?; // the rest of the datagram is dropped
    /// assert_eq!(&buf[..n], b"a datagram");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, 0)
    }

    /// Like [`recv`](Self::recv), but leaves the datagram queued (`MSG_PEEK`).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.send_to(b"v1:data", a.local_addr()?)?;
    /// let mut version = [0u8; 2];
    /// a.peek(&mut version)?; // look at the header, leave the datagram queued
    /// assert_eq!(&version, b"v1");
    /// let mut buf = [0u8; 16];
    /// let n = a.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"v1:data");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, libc::MSG_PEEK)
    }

    fn recv_flags(&self, buf: &mut [u8], flags: i32) -> io::Result<usize> {
        self.sock
            .fd
            .read_with(|fd| socket::recv(fd, buf, flags))
            .map_err(|e| self.err("read", e))
    }

    /// Sends one datagram to the first address `addr` resolves to.
    ///
    /// # Errors
    ///
    /// Resolution failures; `InvalidInput` if `addr` resolves to nothing; the send error in
    /// Go's form, naming the destination: `write udp 127.0.0.1:5000->[::1]:53: address
    /// family not supported by protocol`.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"hi", b.local_addr().unwrap()).unwrap(), 2);
    /// let mut buf = [0u8; 8];
    /// let (n, from) = b.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr().unwrap()));
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let ipv4 = || matches!(self.sock.local(), Some(Addr::Inet(SocketAddr::V4(_))));
        let to = first_addr(addr, ipv4).map_err(|e| self.err_to(None, e))?;
        let raw = SockAddr::from_inet(&to);
        self.sock
            .fd
            .write_with(|fd| socket::send_to(fd, buf, &raw, SEND_FLAGS))
            .map_err(|e| self.err_to(Some(to), e))
    }

    /// Receives one datagram and the address it came from (see [`recv`](Self::recv)).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// coronet::run(|| {
    ///     let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let addr = server.local_addr().unwrap();
    ///     coronet::go(move || {
    ///         let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///         client.send_to(b"hi", addr).unwrap();
    ///     });
    ///     let mut buf = [0u8; 1500];
    ///     let (n, from) = server.recv_from(&mut buf).unwrap(); // parks until the datagram comes
    ///     assert_eq!(&buf[..n], b"hi");
    ///     assert!(from.ip().is_loopback());
    /// });
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_flags(buf, 0)
    }

    /// Like [`recv_from`](Self::recv_from), but leaves the datagram queued (`MSG_PEEK`).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let a = UdpSocket::bind("127.0.0.1:0")?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// a.send_to(b"hi", b.local_addr()?)?;
    /// let mut buf = [0u8; 8];
    /// let (_, from) = b.peek_from(&mut buf)?; // see who sent it before taking it
    /// assert_eq!(from, a.local_addr()?);
    /// assert_eq!(b.recv_from(&mut buf)?, (2, from));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_flags(buf, libc::MSG_PEEK)
    }

    fn recv_from_flags(&self, buf: &mut [u8], flags: i32) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self
            .sock
            .fd
            .read_with(|fd| socket::recv_from(fd, buf, flags))
            .map_err(|e| self.err("read", e))?;
        Ok((n, inet(from).map_err(|e| self.err("read", e))?))
    }

    /// A second handle on the same socket (`dup`), with its own deadlines and `close`; the
    /// timeouts and the nonblocking mode are shared, as with std.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// coronet::run(|| {
    ///     let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let addr = socket.local_addr().unwrap();
    ///     // One coroutine receives on the clone while this one sends.
    ///     let receiver = socket.try_clone().unwrap();
    ///     let got = coronet::go(move || {
    ///         let mut buf = [0u8; 8];
    ///         let (n, _) = receiver.recv_from(&mut buf).unwrap();
    ///         buf[..n].to_vec()
    ///     });
    ///     socket.send_to(b"loop", addr).unwrap();
    ///     assert_eq!(got.join().unwrap(), b"loop");
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.try_clone()?,
        })
    }

    /// std's per-call read timeout: each receive that waits longer fails with kind
    /// `TimedOut` (std on Unix says `WouldBlock`; coronet says what happened, as Go does).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = s.recv(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// std's per-call write timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, dur)
    }

    /// The per-call read timeout.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.read_timeout()?, None); // none by default
    /// socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(socket.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Read)
    }

    /// The per-call write timeout.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(socket.write_timeout()?, None); // none by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Write)
    }

    /// Go's `SetDeadline`: an absolute time after which receives and sends fail with
    /// `i/o timeout` — including calls already blocked — until a new deadline is set.
    /// `None` clears it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// coronet::run(|| {
    ///     let s = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     s.set_deadline(Some(Instant::now() + Duration::from_millis(20))).unwrap();
    ///     let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     assert!(err.to_string().ends_with("i/o timeout"));
    /// });
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(deadline)
    }

    /// Go's `SetReadDeadline`: bounds receives only.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::io::ErrorKind;
    /// use std::time::{Duration, Instant};
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// let err = socket.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// // Sends are not bounded by the read deadline.
    /// socket.send_to(b"x", socket.local_addr()?)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Go's `SetWriteDeadline`: bounds sends only.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::io::ErrorKind;
    /// use std::time::Instant;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// let to = socket.local_addr()?;
    /// socket.set_write_deadline(Some(Instant::now()))?; // already past
    /// assert_eq!(socket.send_to(b"x", to).unwrap_err().kind(), ErrorKind::TimedOut);
    /// socket.set_write_deadline(None)?;
    /// socket.send_to(b"x", to)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_write_deadline(deadline)
    }

    /// Go's `Close`: blocked calls on this socket return at once with
    /// `use of closed network connection`; later calls fail the same way, but for
    /// `local_addr` and `peer_addr`, which answer with the addresses recorded before, as
    /// Go's `LocalAddr` and `RemoteAddr` do. `close` returns with the socket released (the
    /// peer sees the end, the address is free), without waiting for the calls it woke: it
    /// does not park, so it is safe anywhere, a logger or a std `Mutex`'s section included
    /// — unless a plain thread it woke takes over 10 ms to leave `poll(2)`, which only a
    /// signal handler running there does: then it parks until that thread is out.
    ///
    /// # Errors
    ///
    /// The closed error if the socket was already closed.
    ///
    /// ```
    /// let s = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.close().unwrap();
    /// let err = s.recv(&mut [0u8; 8]).unwrap_err();
    /// assert!(err.to_string().ends_with("use of closed network connection"));
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.sock.fd.close().map_err(|e| self.err("close", e))
    }

    /// Reads and clears `SO_ERROR`: an ICMP error the kernel recorded for an earlier
    /// datagram that no receive has reported yet.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: calls return `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::io::ErrorKind;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_nonblocking(true)?;
    /// let err = socket.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock); // nothing queued
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Sets `IP_TTL`, the hop limit of outgoing unicast datagrams.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_ttl(8)?;
    /// assert_eq!(socket.ttl()?, 8);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_u32(libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }

    /// The time-to-live of outgoing packets (`IP_TTL`).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.ttl()? > 0); // the system default, usually 64
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.get_int(libc::IPPROTO_IP, libc::IP_TTL)
    }

    /// Sets `SO_BROADCAST` (on by default, as in Go).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_broadcast(false)?;
    /// assert!(!socket.broadcast()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::SOL_SOCKET, libc::SO_BROADCAST, broadcast)
    }

    /// Whether `SO_BROADCAST` is on.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.broadcast()?); // Go's default; std's is off
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::SOL_SOCKET, libc::SO_BROADCAST)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host's own members get the IPv4 multicast
    /// datagrams it sends.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// socket.set_multicast_loop_v4(false)?; // do not hear our own group traffic
    /// assert!(!socket.multicast_loop_v4()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, on)
    }

    /// Whether this host's own members get the IPv4 multicast datagrams it sends.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// assert!(socket.multicast_loop_v4()?); // on by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock
            .get_bool(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP)
    }

    /// Sets `IP_MULTICAST_TTL` (1 by default: the local network only).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// socket.set_multicast_ttl_v4(4)?; // let group datagrams cross up to 4 routers
    /// assert_eq!(socket.multicast_ttl_v4()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock
            .set_u32(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, ttl)
    }

    /// The hop limit of outgoing IPv4 multicast datagrams (`IP_MULTICAST_TTL`).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// assert_eq!(socket.multicast_ttl_v4()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.get_int(libc::IPPROTO_IP, libc::IP_MULTICAST_TTL)
    }

    /// Sets `IPV6_MULTICAST_LOOP` on an IPv6 socket.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("[::1]:0")?;
    /// socket.set_multicast_loop_v6(false)?;
    /// assert!(!socket.multicast_loop_v6()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, on)
    }

    /// Whether this host's own members get the IPv6 multicast datagrams it sends.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("[::1]:0")?;
    /// assert!(socket.multicast_loop_v6()?); // on by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock
            .get_bool(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP)
    }

    /// Joins the IPv4 group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED` lets the kernel choose by route).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `multiaddr` is not a multicast address; the kernel's refusal
    /// (e.g. `no such device` when no interface can carry multicast).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::io::ErrorKind;
    /// use std::net::Ipv4Addr;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// let group = Ipv4Addr::new(239, 255, 0, 1);
    /// socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// socket.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    ///
    /// let not_a_group = Ipv4Addr::new(10, 0, 0, 1);
    /// let err = socket.join_multicast_v4(&not_a_group, &Ipv4Addr::UNSPECIFIED).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.membership_v4(libc::IP_ADD_MEMBERSHIP, multiaddr, interface)
    }

    /// Leaves an IPv4 group joined with [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::net::Ipv4Addr;
    ///
    /// let socket = UdpSocket::bind("0.0.0.0:0")?;
    /// let group = Ipv4Addr::new(239, 255, 0, 2);
    /// socket.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// // ... receive the group's datagrams ...
    /// socket.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.membership_v4(libc::IP_DROP_MEMBERSHIP, multiaddr, interface)
    }

    /// Joins the IPv6 group `multiaddr` on the interface with index `interface` (0: the
    /// kernel chooses).
    ///
    /// # Errors
    ///
    /// As [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::net::Ipv6Addr;
    ///
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// let group: Ipv6Addr = "ff02::1:3".parse().unwrap();
    /// socket.join_multicast_v6(&group, 1)?; // interface 1 is the loopback on Linux
    /// socket.leave_multicast_v6(&group, 1)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.membership_v6(libc::IPV6_ADD_MEMBERSHIP, multiaddr, interface)
    }

    /// Leaves an IPv6 group joined with [`join_multicast_v6`](Self::join_multicast_v6).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    /// use std::net::Ipv6Addr;
    ///
    /// let socket = UdpSocket::bind("[::]:0")?;
    /// let group: Ipv6Addr = "ff02::1:4".parse().unwrap();
    /// socket.join_multicast_v6(&group, 1)?;
    /// // ... receive the group's datagrams ...
    /// socket.leave_multicast_v6(&group, 1)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.membership_v6(libc::IPV6_DROP_MEMBERSHIP, multiaddr, interface)
    }

    fn membership_v4(&self, name: i32, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        if !group.is_multicast() {
            return Err(self.sock.err("set", not_multicast(group)));
        }
        let in_addr = |ip: &Ipv4Addr| libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        };
        let mreq = libc::ip_mreq {
            imr_multiaddr: in_addr(group),
            imr_interface: in_addr(interface),
        };
        self.sock.setsockopt(libc::IPPROTO_IP, name, mreq)
    }

    fn membership_v6(&self, name: i32, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        if !group.is_multicast() {
            return Err(self.sock.err("set", not_multicast(group)));
        }
        let mreq = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: group.octets(),
            },
            ipv6mr_interface: interface as libc::c_uint,
        };
        self.sock.setsockopt(libc::IPPROTO_IPV6, name, mreq)
    }

    /// Go's `SetReadBuffer` (`SO_RCVBUF`; the kernel doubles the value).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_recv_buffer_size(256 * 1024)?; // room for bursts
    /// assert!(socket.recv_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_RCVBUF, size)
    }

    /// `SO_RCVBUF` as the kernel reports it.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_recv_buffer_size(64 * 1024)?;
    /// assert!(socket.recv_buffer_size()? >= 64 * 1024); // the kernel doubled it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.get_int(libc::SOL_SOCKET, libc::SO_RCVBUF)
            .map(|v| v as usize)
    }

    /// Go's `SetWriteBuffer` (`SO_SNDBUF`; the kernel doubles the value).
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_send_buffer_size(64 * 1024)?;
    /// assert!(socket.send_buffer_size()? >= 64 * 1024); // the kernel doubled it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_SNDBUF, size)
    }

    /// `SO_SNDBUF` as the kernel reports it.
    ///
    /// ```
    /// use coronet::net::UdpSocket;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(socket.send_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.get_int(libc::SOL_SOCKET, libc::SO_SNDBUF)
            .map(|v| v as usize)
    }

    fn get_int(&self, level: i32, name: i32) -> io::Result<u32> {
        self.sock
            .getsockopt::<libc::c_int>(level, name)
            .map(|v| v as u32)
    }
}

fd_traits!(UdpSocket, std::net::UdpSocket, "udp");

/// Sockets are shared between coroutines and threads (`Arc<UdpSocket>`).
fn _assert_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<UdpSocket>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_addr_takes_the_first() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "[::1]:2".parse().unwrap();
        let v6 = || false;
        assert_eq!(first_addr(a, v6).unwrap(), a);
        assert_eq!(first_addr(&[b, a][..], v6).unwrap(), b);
        assert_eq!(first_addr("[::1]:2", v6).unwrap(), b);
        let none = first_addr(&[][..], v6).unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(none.to_string(), "no addresses to send data to");
    }

    #[test]
    fn an_ipv4_socket_passes_over_ipv6_addresses_it_cannot_reach() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "[::1]:2".parse().unwrap();
        let v4 = || true;
        assert_eq!(first_addr(&[b, a][..], v4).unwrap(), a);
        assert_eq!(first_addr(&[a, b][..], v4).unwrap(), a);
        // nothing better to take: std's answer, and its error when sent to
        assert_eq!(first_addr(b, v4).unwrap(), b);
        assert_eq!(first_addr(&[b, b][..], v4).unwrap(), b);
        // Go's empty host: [::] then 0.0.0.0
        assert_eq!(first_addr(":9", v4).unwrap(), "0.0.0.0:9".parse().unwrap());
        assert_eq!(
            first_addr(":9", || false).unwrap(),
            "[::]:9".parse().unwrap()
        );
        // the socket's family is asked only when there is a choice to make
        let unasked = || panic!("asked for the family with nothing to choose");
        assert_eq!(first_addr(&[a, b][..], unasked).unwrap(), a);
        assert_eq!(first_addr(b, unasked).unwrap(), b);
    }
}
