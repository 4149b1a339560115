//! `TcpListener` and `TcpStream`: std's API, Go's semantics, parked on the netpoller.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::error::{op_error, Addr};
use super::lookup::{resolve, resolve_send};
use super::sock::{fd_traits, inherits_tcp_defaults, tcp_defaults, Sock};
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

/// A dial's two ends in one family. Go's dial (and `Dialer::suitable`) keeps a pair whose
/// families differ when either end is a wildcard, and connects it through an IPv6 socket
/// with IPv4-mapped addresses; a socket here has the destination's family, so the wildcard
/// takes the other end's: a local `0.0.0.0` becomes `::` to an IPv6 peer, a destination
/// `::` (this host) becomes `0.0.0.0` from an IPv4 local address, and so on, ports kept.
/// Found by an audit: such a dial failed with `invalid argument` or `address family not
/// supported by protocol`, where Go's connected.
fn one_family(to: SocketAddr, local: Option<SocketAddr>) -> (SocketAddr, Option<SocketAddr>) {
    let any_like = |a: &SocketAddr| -> IpAddr {
        match a {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        }
    };
    match local {
        Some(l) if l.is_ipv4() != to.is_ipv4() => {
            if l.ip().is_unspecified() {
                (to, Some(SocketAddr::new(any_like(&to), l.port())))
            } else if to.ip().is_unspecified() {
                (SocketAddr::new(any_like(&l), to.port()), local)
            } else {
                (to, local) // `suitable` filtered such pairs out
            }
        }
        _ => (to, local),
    }
}

/// A TCP socket server, listening for connections.
///
/// `accept` parks the calling coroutine until a connection arrives (a plain thread blocks).
/// The socket is made with `SOCK_NONBLOCK | SOCK_CLOEXEC`, `SO_REUSEADDR`, and the system's
/// `somaxconn` as its backlog, as Go does. It also carries Go's stream defaults
/// (`TCP_NODELAY`, keep-alive at 15 s), which Linux copies to every connection it accepts.
///
/// A server with more than one worker should spawn each connection's handler with
/// [`Spawn::new().spread()`](crate::Spawn::spread): a started coroutine never changes
/// worker, and a plain `go` from an idle acceptor starts every handler on the acceptor's.
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
///
/// ```
/// use coronet::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// coronet::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     coronet::go(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         conn.write_all(b"hi").unwrap();
///         // dropping `conn` closes it: the client then reads EOF
///     });
///     let mut stream = TcpStream::connect(addr).unwrap();
///     let mut got = String::new();
///     stream.read_to_string(&mut got).unwrap(); // reads until EOF, Ok(0)
///     assert_eq!(got, "hi");
/// });
/// ```
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
    ///
    /// ```
    /// use coronet::net::TcpListener;
    ///
    /// // Port 0 asks the kernel for a free port; `local_addr` says which one it chose.
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        super::ListenConfig::new().listen_std(addr)
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
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server_side, peer) = listener.accept()?;
    /// assert_eq!(peer, client.local_addr()?);
    /// assert_eq!(server_side.peer_addr()?, client.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = self.sock.accept()?;
        let peer = inet(peer)?;
        // Asked of the kernel, not taken from the listener: a connection need not arrive at
        // the listener's own address (a wildcard, a v4-mapped wildcard, TPROXY, sk_lookup).
        let local = socket::local_addr(fd.as_fd())
            .ok()
            .and_then(|a| a.as_inet())
            .map(Addr::Inet);
        let sock = Sock::with_addrs(fd, "tcp", local, Some(Addr::Inet(peer)));
        if self.sock.fd.may_linger() {
            // Linux copies the listener's SO_LINGER to the connection
            sock.fd.set_may_linger();
        }
        // ...and Go's defaults, which a listener coronet made has had since `listen` as
        // long as nobody else could reach it (`listener_tcp_defaults`).
        if self.sock.fd.exposed() || !inherits_tcp_defaults(&sock) {
            tcp_defaults(&sock);
        }
        Ok((TcpStream { sock }, peer))
    }

    /// An endless iterator of accepted connections, as std's.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::Write;
    ///
    /// coronet::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let client = coronet::go(move || TcpStream::connect(addr).unwrap());
    ///     // A server loops over `incoming` and hands each connection to its own coroutine.
    ///     for stream in listener.incoming().take(1) {
    ///         let mut stream = stream.unwrap();
    ///         coronet::go(move || stream.write_all(b"welcome\n").unwrap()).join().unwrap();
    ///     }
    ///     client.join().unwrap();
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// use coronet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// assert_eq!(addr.ip().to_string(), "127.0.0.1");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.local_sockaddr()?)
    }

    /// Go's `SetDeadline` for listeners: bounds `accept`, including one already blocked.
    ///
    /// ```
    /// use coronet::net::TcpListener;
    /// use std::io::ErrorKind;
    /// use std::time::{Duration, Instant};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// let err = listener.accept().unwrap_err(); // nobody connects
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// assert!(err.to_string().ends_with("i/o timeout"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Go's `Close`: a blocked `accept` returns at once with the closed error, and `close`
    /// returns with the socket released: the address can be bound again. It does not park
    /// (nor wait for the `accept` it woke), so it is safe anywhere — unless a plain thread
    /// it woke takes over 10 ms to leave `poll(2)`, which only a signal handler running
    /// there does: then it parks until that thread is out.
    ///
    /// ```
    /// use coronet::net::TcpListener;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    ///     let l = listener.clone();
    ///     let acceptor = coronet::go(move || l.accept().map(|_| ()));
    ///     coronet::time::sleep(Duration::from_millis(10)); // let it park in accept
    ///     listener.close().unwrap();
    ///     let err = acceptor.join().unwrap().unwrap_err();
    ///     assert!(err.to_string().ends_with("use of closed network connection"));
    /// });
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }

    /// A second handle on the same listening socket (`dup`).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let clone = listener.try_clone()?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// // Either handle accepts from the same queue.
    /// let (_conn, _) = clone.accept()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Sets the time-to-live of outgoing packets (`IP_TTL`).
    ///
    /// ```
    /// use coronet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_u32(libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }

    /// The time-to-live of outgoing packets (`IP_TTL`).
    ///
    /// ```
    /// use coronet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.ttl()? > 0); // the system default, usually 64
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock
            .getsockopt::<libc::c_int>(libc::IPPROTO_IP, libc::IP_TTL)
            .map(|v| v as u32)
    }

    /// Sets `IPV6_V6ONLY`, as std's deprecated method of the same name does: it calls
    /// `setsockopt` and returns its result.
    ///
    /// The option only means something before `bind`, and a listener is already bound, so
    /// on Linux this fails with `InvalidInput` (`EINVAL`), as std's does; on an IPv4
    /// listener the option does not exist (`ENOPROTOOPT`). Choose it before binding with
    /// [`ListenConfig::only_v6`](super::ListenConfig::only_v6) instead.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use coronet::net::{ListenConfig, TcpListener};
    /// use std::io::ErrorKind;
    ///
    /// if TcpListener::bind("[::1]:0").is_ok() {
    ///     // the machine has IPv6 loopback
    ///     let listener = ListenConfig::new().only_v6(true).listen("[::]:0")?;
    ///     assert!(listener.only_v6()?);
    ///     // Too late once bound: the kernel refuses, as it does for std.
    ///     let err = listener.set_only_v6(false).unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[deprecated(note = "this option can only be set before the socket is bound")]
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, only_v6)
    }

    /// Reads `IPV6_V6ONLY` (`getsockopt`), as std's deprecated method of the same name does.
    ///
    /// Deprecated like std's only because its setter is; reading the option is fine. On an
    /// IPv4 listener the option does not exist and this returns the kernel's error.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use coronet::net::{ListenConfig, TcpListener};
    ///
    /// if TcpListener::bind("[::1]:0").is_ok() {
    ///     // the machine has IPv6 loopback
    ///     let dual = ListenConfig::new().only_v6(false).listen("[::]:0")?;
    ///     assert!(!dual.only_v6()?);
    ///     // Linux turns it on itself for a socket bound to one IPv6 address.
    ///     assert!(TcpListener::bind("[::1]:0")?.only_v6()?);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[deprecated(note = "this option can only be set before the socket is bound")]
    pub fn only_v6(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)
    }

    /// Reads and clears `SO_ERROR`.
    ///
    /// ```
    /// use coronet::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: `accept` returns `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::TcpListener;
    /// use std::io::ErrorKind;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// // Nothing is waiting, so accept says so instead of blocking.
    /// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }
}

/// Iterator over a listener's connections; never ends.
///
/// ```
/// use coronet::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let _client = TcpStream::connect(listener.local_addr()?)?;
/// let mut incoming = listener.incoming();
/// let conn = incoming.next().unwrap()?; // `next` always returns `Some`
/// assert_eq!(conn.local_addr()?, listener.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
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
    /// Connects to `addr`, trying every resolved address in order — except that with
    /// addresses of both families (a name with IPv6 and IPv4 ones), the other family joins
    /// after 300 ms, as Go's `net.Dial` does (see
    /// [`Dialer::fallback_delay`](super::Dialer::fallback_delay)).
    ///
    /// # Errors
    ///
    /// The first failure in Go's form (std reports the last address's): `dial tcp
    /// 127.0.0.1:1: connection refused`; for a name that does not resolve, `dial tcp:
    /// lookup HOST: no such host`.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    ///
    /// // A refused connection reports itself the way Go does.
    /// let port = listener.local_addr()?.port();
    /// drop(listener);
    /// let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    /// assert_eq!(err.to_string(), format!("dial tcp 127.0.0.1:{port}: connection refused"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        super::Dialer::new().dial_std(addr)
    }

    /// Connects to one address, giving up after `timeout` with kind `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero timeout (as std); otherwise as [`connect`](Self::connect).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect_timeout(&listener.local_addr()?, Duration::from_secs(5))?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        super::Dialer::new().timeout(timeout).dial(addr)
    }

    /// Dials one resolved address with the dialer's options, showing the socket to `watch`
    /// just before it connects: `Dialer::dial_one_context` uses it to let a cancel reach the
    /// parked connect. Errors are raw.
    ///
    /// As Go's dialer, it redials (twice at most) a connection that came back connected to
    /// itself: dialing a free port of the ephemeral range on the same host, the kernel may
    /// pick that very port as the local one, and the SYN then meets itself (a TCP
    /// simultaneous open). Found by the fifth audit: 1 in about 10,000 dials of a free
    /// loopback port "succeeded" that way.
    pub(crate) fn dial_one_watched(
        to: SocketAddr,
        local: Option<SocketAddr>,
        deadline: Option<Instant>,
        control: Option<&(dyn Fn(RawFd) -> io::Result<()> + Send + Sync)>,
        keepalive: Option<Duration>,
        watch: &mut dyn FnMut(&Sock),
    ) -> io::Result<TcpStream> {
        let mut tries = 0;
        loop {
            let s = Self::dial_attempt(to, local, deadline, control, keepalive, watch)?;
            let chose_port = local.map_or(true, |l| l.port() == 0);
            // (the attempt recorded both ends as the kernel has them)
            let to_itself = || {
                let names = s.sock.names();
                names.local.is_some() && names.local == names.peer
            };
            if tries == 2 || !chose_port || !to_itself() {
                return Ok(s);
            }
            rt_log!(Debug, "dial tcp {to}: connected to itself; dialing again");
            tries += 1;
        }
    }

    fn dial_attempt(
        to: SocketAddr,
        local: Option<SocketAddr>,
        deadline: Option<Instant>,
        control: Option<&(dyn Fn(RawFd) -> io::Result<()> + Send + Sync)>,
        keepalive: Option<Duration>,
        watch: &mut dyn FnMut(&Sock),
    ) -> io::Result<TcpStream> {
        let (to, local) = one_family(to, local);
        let fd = socket::socket(domain(&to), libc::SOCK_STREAM)?;
        if let Some(control) = control {
            control(fd.as_raw_fd())?;
            // The hook may have turned blocking mode on, and connect(2) has no per-call flag.
            socket::set_nonblocking(fd.as_fd(), true)?;
        }
        if let Some(local) = local {
            socket::bind(fd.as_fd(), &SockAddr::from_inet(&local))?;
        }
        let sock = Sock::with_addrs(fd, "tcp", None, Some(Addr::Inet(to)));
        if control.is_some() {
            sock.fd.set_may_linger(); // the hook may have turned SO_LINGER on
            sock.fd.expose_raw(); // and may have kept a dup of the fd
        }
        watch(&sock);
        let peer = sock.connect(&SockAddr::from_inet(&to), deadline)?;
        // The kernel has now chosen the local address, and the peer is the one it reached,
        // as Go records them: a dial of 0.0.0.0 or :: reaches one of this host's addresses.
        // (A TCP connect nearly always waits, which asks the peer already; one that
        // finished at once asks now.)
        let peer = match peer {
            Some(peer) => peer.as_inet().map(Addr::Inet),
            None => sock.kernel_peer(),
        }
        .unwrap_or(Addr::Inet(to));
        let local = sock.local_sockaddr().ok().and_then(|a| a.as_inet());
        sock.connected(local.map(Addr::Inet), peer);
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
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.peer_sockaddr()?)
    }

    /// The local address.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// let (_, peer) = listener.accept()?;
    /// assert_eq!(stream.local_addr()?, peer);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.sock.local_sockaddr()?)
    }

    /// Shuts down the read, write, or both halves (a FIN for write).
    ///
    /// ```
    /// use coronet::net::{Shutdown, TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// client.write_all(b"request")?;
    /// client.shutdown(Shutdown::Write)?; // "no more requests": the server reads EOF
    /// let mut req = Vec::new();
    /// server.read_to_end(&mut req)?;
    /// assert_eq!(req, b"request");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// A second handle on the same connection (`dup`), with its own deadlines and `close`;
    /// the timeouts and the nonblocking mode are shared with this handle, later changes
    /// included, as with std.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// coronet::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let (mut server, _) = listener.accept().unwrap();
    ///     // One coroutine writes through the clone while this one reads.
    ///     let mut writer = client.try_clone().unwrap();
    ///     coronet::go(move || writer.write_all(b"ping").unwrap());
    ///     let mut buf = [0u8; 4];
    ///     server.read_exact(&mut buf).unwrap();
    ///     server.write_all(&buf).unwrap();
    ///     client.read_exact(&mut buf).unwrap();
    ///     assert_eq!(&buf, b"ping");
    /// });
    /// ```
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
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    /// let err = stream.read(&mut [0u8; 8]).unwrap_err(); // the peer sends nothing
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, dur)
    }

    /// std's per-call write timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(stream.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, dur)
    }

    /// The per-call read timeout.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.read_timeout()?, None); // none by default
    /// stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(stream.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Read)
    }

    /// The per-call write timeout.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.write_timeout()?, None); // none by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

    /// Sets the read deadline (Go's `SetReadDeadline`): reads fail with `i/o timeout` after
    /// it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read, Write};
    /// use std::time::{Duration, Instant};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// let err = stream.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// // Writes are not bounded by the read deadline.
    /// stream.write_all(b"still fine")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Sets the write deadline (Go's `SetWriteDeadline`): writes fail with `i/o timeout`
    /// after it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Write};
    /// use std::time::Instant;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = TcpStream::connect(listener.local_addr()?)?;
    /// // A deadline already past fails writes at once; `None` lifts it again.
    /// stream.set_write_deadline(Some(Instant::now()))?;
    /// assert_eq!(stream.write(b"x").unwrap_err().kind(), ErrorKind::TimedOut);
    /// stream.set_write_deadline(None)?;
    /// stream.write_all(b"x")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_write_deadline(deadline)
    }

    /// Go's `Close`: blocked reads and writes on this stream return at once with
    /// `use of closed network connection`; later calls fail the same way, but for
    /// `local_addr` and `peer_addr`, which answer with the addresses recorded before, as
    /// Go's `LocalAddr` and `RemoteAddr` do. `close` returns with the socket released (the
    /// peer sees the end, the address is free), without waiting for the calls it woke: it
    /// does not park, so it is safe anywhere, a logger or a std `Mutex`'s section included
    /// — unless a plain thread it woke takes over 10 ms to leave `poll(2)`, which only a
    /// signal handler running there does: then it parks until that thread is out.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::Read;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let stream = Arc::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
    ///     let s = stream.clone();
    ///     let reader = coronet::go(move || (&*s).read(&mut [0u8; 8]));
    ///     coronet::time::sleep(Duration::from_millis(10)); // let the reader park
    ///     stream.close().unwrap(); // wakes the parked read
    ///     let err = reader.join().unwrap().unwrap_err();
    ///     assert!(err.to_string().ends_with("use of closed network connection"));
    /// });
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }

    /// Reads without consuming (`MSG_PEEK`).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// client.write_all(b"GET /")?;
    /// let mut first = [0u8; 3];
    /// server.peek(&mut first)?; // waits for data, leaves it queued
    /// assert_eq!(&first, b"GET");
    /// let mut all = [0u8; 5];
    /// server.read_exact(&mut all)?;
    /// assert_eq!(&all, b"GET /");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Sets `TCP_NODELAY` (on by default).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nodelay(false)?; // let Nagle batch small writes
    /// assert!(!stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock
            .set_bool(libc::IPPROTO_TCP, libc::TCP_NODELAY, nodelay)
    }

    /// Whether `TCP_NODELAY` is on, i.e. Nagle's algorithm is off.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// let (accepted, _) = listener.accept()?;
    /// assert!(stream.nodelay()? && accepted.nodelay()?); // on for both ends, as in Go
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// Sets the time-to-live of outgoing packets (`IP_TTL`).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_ttl(32)?;
    /// assert_eq!(stream.ttl()?, 32);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_u32(libc::IPPROTO_IP, libc::IP_TTL, ttl)
    }

    /// The time-to-live of outgoing packets (`IP_TTL`).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.ttl()? > 0); // the system default, usually 64
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock
            .getsockopt::<libc::c_int>(libc::IPPROTO_IP, libc::IP_TTL)
            .map(|v| v as u32)
    }

    /// Reads and clears `SO_ERROR`.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.take_error()?.is_none()); // a healthy connection has none pending
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: calls return `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_nonblocking(true)?;
    /// assert_eq!(stream.read(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Turns keep-alive probes on or off (`SO_KEEPALIVE`; Go's `SetKeepAlive`).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_keepalive(false)?;
    /// assert!(!stream.keepalive()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock.set_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE, on)
    }

    /// Whether `SO_KEEPALIVE` is on.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.keepalive()?); // on by default, as in Go
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keepalive(&self) -> io::Result<bool> {
        self.sock.get_bool(libc::SOL_SOCKET, libc::SO_KEEPALIVE)
    }

    /// Go's `SetKeepAlivePeriod`: idle time before the first probe and between probes
    /// (whole seconds, at least 1).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_keepalive_period(Duration::from_millis(1500))?; // rounds up to whole seconds
    /// assert_eq!(stream.keepalive_period()?, Duration::from_secs(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive_period(&self, period: Duration) -> io::Result<()> {
        self.sock
            .fd
            .with_fd(|fd| socket::set_keepalive_period(fd, period))
            .map_err(|e| self.sock.err("set", e))
    }

    /// The keep-alive idle period.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.keepalive_period()?, Duration::from_secs(15)); // Go's default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keepalive_period(&self) -> io::Result<Duration> {
        self.sock
            .fd
            .with_fd(socket::keepalive_period)
            .map_err(|e| self.sock.err("get", e))
    }

    /// Go's `SetLinger`: `Some(ZERO)` makes close send a reset and drop unsent data.
    ///
    /// With a longer linger and data unsent, the kernel's close waits for it. A coroutine's
    /// close or drop hands that wait to the blocking pool, so the worker never stalls; a
    /// plain thread's blocks the thread, as std's does. coronet knows a socket may linger
    /// when it was set here, the socket came from std or a raw fd, a `control` hook of
    /// [`Dialer`](super::Dialer) or [`ListenConfig`](super::ListenConfig) touched it, or it
    /// was accepted from such a listener. Set through the fd by other means (say
    /// `socket2`), it is not seen, and the close of a coroutine waits on the worker.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// client.set_linger(Some(Duration::ZERO))?;
    /// drop(client); // an abortive close: the peer sees a reset, not EOF
    /// let err = server.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.set_linger(linger)
    }

    /// The `SO_LINGER` setting: `None` when off, as it is by default.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.linger()?, None); // off by default
    /// stream.set_linger(Some(Duration::from_secs(5)))?;
    /// assert_eq!(stream.linger()?, Some(Duration::from_secs(5)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock
            .fd
            .with_fd(socket::linger)
            .map_err(|e| self.sock.err("get", e))
    }

    /// Go's `SetReadBuffer` (`SO_RCVBUF`; the kernel doubles the value).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_recv_buffer_size(64 * 1024)?;
    /// assert!(stream.recv_buffer_size()? >= 64 * 1024); // the kernel doubled it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_RCVBUF, size)
    }

    /// `SO_RCVBUF` as the kernel reports it.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.recv_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.sock
            .getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_RCVBUF)
            .map(|v| v as usize)
    }

    /// Go's `SetWriteBuffer` (`SO_SNDBUF`; the kernel doubles the value).
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_send_buffer_size(64 * 1024)?;
    /// assert!(stream.send_buffer_size()? >= 64 * 1024); // the kernel doubled it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_SNDBUF, size)
    }

    /// `SO_SNDBUF` as the kernel reports it.
    ///
    /// ```
    /// use coronet::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// assert!(stream.send_buffer_size()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

// Through `&mut`: no other call can be on this handle, so no fd lock (`poll/fd.rs`).
// `#[inline]` on `read` and `write` here and down the path to the syscall (`Sock`, `NetFd::io`,
// `socket::recv`/`send`): the caller's crate can then fold the whole call into its handler, as
// it would with LTO. Measured side by side on the echo server (docs/benchmarks.md): 0.99× the
// CPU per request at 100, 1,000 and 9,000 connections.
impl Read for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_mut(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored_mut(bufs)
    }
}

impl Read for &TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Write for TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write_mut(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored_mut(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    #[inline]
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

/// Resolves for dialing/listening, as std's signatures take the address (`resolve`).
pub(crate) fn addrs<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    some_addrs(resolve(addr)?)
}

/// Resolves for dialing/listening, any lookup off the worker threads (`resolve_send`).
pub(crate) fn addrs_send<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    some_addrs(resolve_send(addr)?)
}

fn some_addrs(v: Vec<SocketAddr>) -> io::Result<Vec<SocketAddr>> {
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(v)
}
