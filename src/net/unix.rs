//! `UnixListener`, `UnixStream` and `UnixDatagram`: `std::os::unix::net`'s API, Go's
//! semantics, parked on the netpoller.
//!
//! The three types are built on [`Sock`] exactly as `tcp.rs` builds TCP: the fd is made
//! `SOCK_NONBLOCK | SOCK_CLOEXEC`, blocking calls park the coroutine (or block a plain
//! thread), and errors read as Go's, with network `unix` for streams and `unixgram` for
//! datagrams: `dial unix /tmp/x.sock: connection refused`, `read unix @->/tmp/x.sock: i/o
//! timeout` (`@` is an unnamed socket, `@name` an abstract one).
//!
//! Addresses are std's own `std::os::unix::net::SocketAddr`, re-exported as
//! [`UnixSocketAddr`](super::UnixSocketAddr) so it does not clash with the IP `SocketAddr`.
//! Linux abstract names are made with std's `SocketAddrExt::from_abstract_name` and passed
//! to `bind_addr` / `connect_addr` / `send_to_addr`.
//!
//! Where std and Go disagree, std wins, so ported code keeps working:
//! - dropping or closing a listener does not remove its socket file (Go's does);
//! - the listen backlog is the system's `somaxconn` (as Go and recent std);
//! - a `connect` to a listener whose backlog is full waits, as std's blocking connect does,
//!   where Go's fails with `resource temporarily unavailable`. The kernel raises no event
//!   when room appears (a nonblocking Unix connect only says `EAGAIN`), so a plain thread
//!   makes that one connect blocking and waits in the kernel, and a coroutine tries again
//!   after a pause of 1 ms, doubling to 16 ms (`connect_waiting`). Found by porting the
//!   `redis` crate: 2,000 clients connecting at once to a server's socket (backlog 511) got
//!   hundreds of `WouldBlock` errors where std's got none.
//!
//! And where the kernel has a corner, it shows: `send_to` on an unconnected datagram socket
//! while the receiver's queue is full. The kernel raises no event for the sender when room
//! appears, and counts its socket writable all along (poll(2) says so, and each refused
//! send frees its buffer, which raises a new `EPOLLOUT` edge). Waiting for readiness would
//! retry in a busy loop, so such a send pauses between tries instead (1 ms, doubling to
//! 8 ms; close, deadlines and timeouts still end it at once), in a coroutine and on a
//! thread: it goes out at most one pause after room appears, where std's blocking send
//! sleeps in the kernel until then. A connected socket (`connect`, then `send`) is woken by
//! the kernel the moment the receiver has room: connect first when one peer gets the
//! datagrams.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{op_error, Addr};
use super::sock::{fd_traits, Sock};
use super::socket::{self, SockAddr};
use crate::poll::desc::Dir;

/// Go's network names, as they appear in errors.
const STREAM: &str = "unix";
const DGRAM: &str = "unixgram";

/// The kernel's address as std's `SocketAddr`.
fn to_std(a: &SockAddr) -> io::Result<UnixSocketAddr> {
    match a.to_addr()? {
        Addr::Unix(path) => UnixSocketAddr::from_pathname(path),
        Addr::UnixAbstract(name) => UnixSocketAddr::from_abstract_name(name),
        Addr::UnixUnnamed => Ok(unnamed()),
        Addr::Inet(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a Unix socket address",
        )),
    }
}

/// std's `SocketAddr` for the unnamed address.
fn unnamed() -> UnixSocketAddr {
    // std has no constructor for "unnamed"; the empty path is how it spells one, and it
    // cannot fail (no NUL, shorter than `sun_path`).
    UnixSocketAddr::from_pathname("").unwrap_or_else(|_| unreachable!())
}

/// `fd`'s own name (`peer` false) or its peer's, read by std itself. Linux lets a socket
/// bind a path of the full 108 bytes with no NUL; std's `SocketAddr` holds one as it comes
/// from the kernel, but `from_pathname`, the only way to build one, refuses it, so `to_std`
/// fails there and this is the way to get such an address. A rare path, so it pays for a
/// `dup` rather than lend the number to std unsafely (`getsockname`/`getpeername` work the
/// same on every AF_UNIX socket type, whatever std type wraps it).
fn std_name(fd: BorrowedFd<'_>, peer: bool) -> io::Result<UnixSocketAddr> {
    let s = std::os::unix::net::UnixStream::from(fd.try_clone_to_owned()?);
    if peer {
        s.peer_addr()
    } else {
        s.local_addr()
    }
}

/// `local_addr` / `peer_addr` of any of the three types, even for a 108-byte path.
fn name(sock: &Sock, peer: bool) -> io::Result<UnixSocketAddr> {
    let a = if peer {
        sock.peer_sockaddr()?
    } else {
        sock.local_sockaddr()?
    };
    match to_std(&a) {
        Ok(a) => Ok(a),
        Err(_) => sock
            .fd
            .with_fd(|fd| std_name(fd, peer))
            .map_err(|e| sock.err("get", e)),
    }
}

/// std's `SocketAddr` in the kernel's form.
fn from_std(a: &UnixSocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = a.as_pathname() {
        SockAddr::from_unix_path(path)
    } else if let Some(name) = a.as_abstract_name() {
        SockAddr::unix_abstract(name)
    } else {
        Ok(SockAddr::unnamed_unix())
    }
}

/// std's `SocketAddr` as errors print it.
fn std_to_addr(a: &UnixSocketAddr) -> Addr {
    if let Some(path) = a.as_pathname() {
        Addr::Unix(path.to_path_buf())
    } else if let Some(name) = a.as_abstract_name() {
        Addr::UnixAbstract(name.to_vec())
    } else {
        Addr::UnixUnnamed
    }
}

/// A path's kernel address, and the name an error about it should print. A path the
/// kernel cannot take (too long, a NUL inside) fails here, before any socket is made.
fn path_addr(path: &Path) -> (io::Result<SockAddr>, Addr) {
    let addr = SockAddr::from_unix_path(path);
    let name = match &addr {
        Ok(a) => a.to_addr().unwrap_or_else(|_| Addr::Unix(path.into())),
        Err(_) => Addr::Unix(path.into()),
    };
    (addr, name)
}

fn std_addr(a: &UnixSocketAddr) -> (io::Result<SockAddr>, Addr) {
    (from_std(a), std_to_addr(a))
}

/// A new `AF_UNIX` socket of type `ty` bound to `addr`.
fn bound(ty: i32, addr: &SockAddr) -> io::Result<std::os::fd::OwnedFd> {
    let fd = socket::socket(libc::AF_UNIX, ty)?;
    socket::bind(fd.as_fd(), addr)?;
    Ok(fd)
}

/// A Unix socket server, listening for connections on a path or an abstract name.
///
/// `accept` parks the calling coroutine until a connection arrives (a plain thread blocks).
/// The socket file is left in place when the listener goes away, as with std: remove it
/// yourself. With more than one worker, spawn the handlers with
/// [`Spawn::new().spread()`](crate::Spawn::spread), as [`TcpListener`](crate::net::TcpListener)
/// says.
///
/// ```
/// use coronet::net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// let path = std::env::temp_dir().join(format!("coronet-doc-{}.sock", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let p = path.clone();
/// coronet::run(move || {
///     let listener = UnixListener::bind(&p).unwrap();
///     let server = coronet::go(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         let mut buf = [0u8; 5];
///         s.read_exact(&mut buf).unwrap();
///         s.write_all(&buf).unwrap();
///     });
///     let mut c = UnixStream::connect(&p).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut back = [0u8; 5];
///     c.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
///     server.join().unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    sock: Sock,
}

/// A Unix stream connection. Reads park until data arrives; a write sends the whole buffer
/// under the write lock, so concurrent writers never interleave their messages.
///
/// ```
/// use coronet::net::UnixStream;
/// use std::io::{Read, Write};
///
/// coronet::run(|| {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     a.write_all(b"ping").unwrap();
///     let mut buf = [0u8; 4];
///     b.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
pub struct UnixStream {
    sock: Sock,
}

/// A Unix datagram socket: each `send` is one message, each `recv` takes one.
///
/// ```
/// use coronet::net::UnixDatagram;
///
/// coronet::run(|| {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     a.send(b"one").unwrap();
///     a.send(b"two").unwrap();
///     let mut buf = [0u8; 16];
///     assert_eq!(b.recv(&mut buf).unwrap(), 3);
///     assert_eq!(&buf[..3], b"one");
///     assert_eq!(b.recv(&mut buf).unwrap(), 3);
///     assert_eq!(&buf[..3], b"two");
/// });
/// ```
pub struct UnixDatagram {
    sock: Sock,
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it.
    ///
    /// # Errors
    ///
    /// In Go's form: `listen unix /tmp/x.sock: address already in use` when the file exists
    /// (remove a stale one first), kind `InvalidInput` for a path of 108 bytes or more.
    ///
    /// ```
    /// use coronet::net::UnixListener;
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-bind-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// // A second bind on the same file fails until the file is removed.
    /// assert!(UnixListener::bind(&path).is_err());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::listen(path_addr(path.as_ref()))
    }

    /// Listens on an address from std — the way to listen on a Linux abstract name.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr, UnixStream};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// coronet::run(|| {
    ///     let name = format!("coronet-doc-{}", std::process::id());
    ///     let addr = UnixSocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    ///     let listener = UnixListener::bind_addr(&addr).unwrap();
    ///     let _client = UnixStream::connect_addr(&addr).unwrap();
    ///     let (_server, _) = listener.accept().unwrap();
    ///     let local = listener.local_addr().unwrap();
    ///     assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_addr(socket_addr: &UnixSocketAddr) -> io::Result<UnixListener> {
        UnixListener::listen(std_addr(socket_addr))
    }

    fn listen((addr, name): (io::Result<SockAddr>, Addr)) -> io::Result<UnixListener> {
        let err = |e| op_error("listen", STREAM, None, Some(name.clone()), e);
        let addr = addr.map_err(err)?;
        let fd = bound(libc::SOCK_STREAM, &addr).map_err(err)?;
        socket::listen(fd.as_fd(), socket::somaxconn()).map_err(err)?;
        rt_log!(Debug, "listen unix {name}");
        Ok(UnixListener {
            sock: Sock::bound(fd, STREAM),
        })
    }

    /// Accepts a new connection, parking until one arrives. The peer's address is usually
    /// unnamed: clients rarely bind. It is never the reason for an error, since the
    /// connection is already taken: should it be unreadable, it is reported unnamed.
    ///
    /// # Errors
    ///
    /// `accept unix /tmp/x.sock: too many open files` when out of fds (back off and retry;
    /// the listener stays usable), the closed or timeout error after `close` or a passed
    /// deadline.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixStream};
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-acc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let listener = UnixListener::bind(&path)?;
    /// let _client = UnixStream::connect(&path)?;
    /// let (conn, peer) = listener.accept()?;
    /// assert!(peer.is_unnamed()); // the client never bound
    /// assert_eq!(conn.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (fd, peer) = self.sock.accept()?;
        // Never an error: the connection is taken, and failing here would drop it and let
        // any local client stop an `incoming` loop by binding an odd name. A 108-byte path
        // is asked of the kernel again through std (see `std_name`); if even that fails,
        // the address is reported unnamed.
        let peer_std = to_std(&peer)
            .or_else(|_| std_name(fd.as_fd(), true))
            .unwrap_or_else(|e| {
                rt_log!(
                    Debug,
                    "accept unix: peer address {peer:?} reported unnamed: {e}"
                );
                unnamed()
            });
        // An accepted socket's own name is the listener's.
        let sock = Sock::with_addrs(fd, STREAM, self.sock.local(), peer.to_addr().ok());
        rt_log!(Trace, "accept unix fd {}", sock.raw());
        Ok((UnixStream { sock }, peer_std))
    }

    /// An endless iterator of accepted connections, as std's.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixStream};
    /// use std::io::{Read, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-inc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let p = path.clone();
    /// coronet::run(move || {
    ///     let listener = UnixListener::bind(&p).unwrap();
    ///     let client = coronet::go(move || {
    ///         let mut s = UnixStream::connect(&p).unwrap();
    ///         let mut line = String::new();
    ///         s.read_to_string(&mut line).unwrap();
    ///         line
    ///     });
    ///     // A server loops over `incoming`, one coroutine per connection.
    ///     for conn in listener.incoming().take(1) {
    ///         let mut conn = conn.unwrap();
    ///         coronet::go(move || conn.write_all(b"welcome\n").unwrap());
    ///     }
    ///     assert_eq!(client.join().unwrap(), "welcome\n");
    /// });
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-local-{}", std::process::id());
    /// let listener = UnixListener::bind_addr(&UnixSocketAddr::from_abstract_name(&name)?)?;
    /// assert_eq!(listener.local_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        name(&self.sock, false)
    }

    /// Go's `SetDeadline` for listeners: bounds `accept`, including one already blocked.
    /// `None` clears it.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr};
    /// use std::io::ErrorKind;
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::time::{Duration, Instant};
    ///
    /// let name = format!("coronet-doc-dl-{}", std::process::id());
    /// let listener = UnixListener::bind_addr(&UnixSocketAddr::from_abstract_name(&name)?)?;
    /// listener.set_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// let err = listener.accept().unwrap_err(); // nobody connects
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// assert_eq!(err.to_string(), format!("accept unix @{name}: i/o timeout"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Go's `Close`: a blocked `accept` returns at once with the closed error, and `close`
    /// returns with the socket released, without waiting for the `accept` it woke. The
    /// socket file stays (see the type's docs).
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let name = format!("coronet-doc-close-{}", std::process::id());
    ///     let addr = UnixSocketAddr::from_abstract_name(&name).unwrap();
    ///     let listener = Arc::new(UnixListener::bind_addr(&addr).unwrap());
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

    /// A second handle on the same listening socket (`dup`), with its own deadline.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr, UnixStream};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-clone-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let listener = UnixListener::bind_addr(&addr)?;
    /// let clone = listener.try_clone()?;
    /// let _client = UnixStream::connect_addr(&addr)?;
    /// let (_conn, _) = clone.accept()?; // either handle accepts from the same queue
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Reads and clears `SO_ERROR`.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-te-{}", std::process::id());
    /// let listener = UnixListener::bind_addr(&UnixSocketAddr::from_abstract_name(&name)?)?;
    /// assert!(listener.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// std's nonblocking mode: `accept` returns `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr};
    /// use std::io::ErrorKind;
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-nb-{}", std::process::id());
    /// let listener = UnixListener::bind_addr(&UnixSocketAddr::from_abstract_name(&name)?)?;
    /// listener.set_nonblocking(true)?;
    /// assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }
}

/// Iterator over a [`UnixListener`]'s connections; never ends. std calls it `Incoming`;
/// the name here leaves `Incoming` to TCP.
///
/// ```
/// use coronet::net::{UnixListener, UnixSocketAddr, UnixStream};
/// use std::os::linux::net::SocketAddrExt;
///
/// let name = format!("coronet-doc-uinc-{}", std::process::id());
/// let addr = UnixSocketAddr::from_abstract_name(&name)?;
/// let listener = UnixListener::bind_addr(&addr)?;
/// let _client = UnixStream::connect_addr(&addr)?;
/// let conn = listener.incoming().next().unwrap()?; // `next` always returns `Some`
/// assert!(conn.peer_addr()?.is_unnamed());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = UnixIncoming<'a>;
    fn into_iter(self) -> UnixIncoming<'a> {
        self.incoming()
    }
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// In Go's form: `dial unix /tmp/x.sock: connection refused` (nobody listens),
    /// `…: no such file or directory` (kind `NotFound`), kind `InvalidInput` for a path of
    /// 108 bytes or more. A listener whose backlog is full is waited for, as std waits
    /// (Go fails with `resource temporarily unavailable`): see the module docs.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixStream};
    /// use std::io::ErrorKind;
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-conn-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let err = UnixStream::connect(&path).unwrap_err(); // nothing there yet
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    ///
    /// let listener = UnixListener::bind(&path)?;
    /// let stream = UnixStream::connect(&path)?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// # drop(listener);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::dial(path_addr(path.as_ref()))
    }

    /// Connects to an address from std — the way to reach a Linux abstract name (see
    /// [`UnixListener::bind_addr`]).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr, UnixStream};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// // An abstract name leaves no file behind to clean up.
    /// let name = format!("coronet-doc-ca-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let _listener = UnixListener::bind_addr(&addr)?;
    /// let stream = UnixStream::connect_addr(&addr)?;
    /// assert_eq!(stream.peer_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(socket_addr: &UnixSocketAddr) -> io::Result<UnixStream> {
        UnixStream::dial(std_addr(socket_addr))
    }

    fn dial((to, name): (io::Result<SockAddr>, Addr)) -> io::Result<UnixStream> {
        let err = |e| op_error("dial", STREAM, None, Some(name.clone()), e);
        let to = to.map_err(err)?;
        let fd = socket::socket(libc::AF_UNIX, libc::SOCK_STREAM).map_err(err)?;
        // A client is unnamed: it never binds.
        let sock = Sock::with_addrs(fd, STREAM, Some(Addr::UnixUnnamed), Some(name.clone()));
        let peer = connect_waiting(&sock, &to).map_err(err)?;
        // Go records the peer the kernel reports: through a symlink, the listener's own path.
        let peer = peer
            .and_then(|p| p.to_addr().ok())
            .or_else(|| sock.kernel_peer());
        if let Some(peer) = peer {
            sock.connected(None, peer);
        }
        rt_log!(Trace, "dial unix {name}: fd {}", sock.raw());
        Ok(UnixStream { sock })
    }

    /// A connected pair of unnamed sockets (`socketpair`).
    ///
    /// # Errors
    ///
    /// Out of fds: `socketpair unix: too many open files`.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// coronet::run(|| {
    ///     // A pair links two coroutines (or a parent and child process) without a file.
    ///     let (mut parent, mut child) = UnixStream::pair().unwrap();
    ///     let h = coronet::go(move || {
    ///         let mut buf = [0u8; 4];
    ///         child.read_exact(&mut buf).unwrap();
    ///         child.write_all(&buf).unwrap();
    ///     });
    ///     parent.write_all(b"ping").unwrap();
    ///     let mut buf = [0u8; 4];
    ///     parent.read_exact(&mut buf).unwrap();
    ///     assert_eq!(&buf, b"ping");
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = pair(libc::SOCK_STREAM, STREAM)?;
        Ok((UnixStream { sock: a }, UnixStream { sock: b }))
    }

    /// This end's address (unnamed for a client).
    ///
    /// ```
    /// use coronet::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        name(&self.sock, false)
    }

    /// The other end's address.
    ///
    /// ```
    /// use coronet::net::{UnixListener, UnixSocketAddr, UnixStream};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-pa-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let _listener = UnixListener::bind_addr(&addr)?;
    /// let stream = UnixStream::connect_addr(&addr)?;
    /// assert_eq!(stream.peer_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        name(&self.sock, true)
    }

    /// Reads without consuming (`MSG_PEEK`), parking until data arrives.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// a.write_all(b"GET /")?;
    /// let mut first = [0u8; 3];
    /// b.peek(&mut first)?; // the data stays queued
    /// assert_eq!(&first, b"GET");
    /// let mut all = [0u8; 5];
    /// b.read_exact(&mut all)?;
    /// assert_eq!(&all, b"GET /");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Shuts down the read, write, or both halves.
    ///
    /// ```
    /// use coronet::net::{Shutdown, UnixStream};
    /// use std::io::{Read, Write};
    ///
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// a.write_all(b"request")?;
    /// a.shutdown(Shutdown::Write)?; // the peer reads EOF after the request
    /// let mut req = Vec::new();
    /// b.read_to_end(&mut req)?;
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
    /// use coronet::net::UnixStream;
    /// use std::io::{Read, Write};
    ///
    /// coronet::run(|| {
    ///     let (a, mut b) = UnixStream::pair().unwrap();
    ///     // One coroutine writes through the clone while this one reads.
    ///     let mut writer = a.try_clone().unwrap();
    ///     coronet::go(move || writer.write_all(b"hi").unwrap());
    ///     let mut buf = [0u8; 2];
    ///     b.read_exact(&mut buf).unwrap();
    ///     assert_eq!(&buf, b"hi");
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// std's per-call read timeout: each read that waits longer fails with kind `TimedOut`
    /// (std on Unix says `WouldBlock`; coronet says what happened, as Go does).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    ///
    /// let (mut a, _b) = UnixStream::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(20)))?;
    /// assert_eq!(a.read(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, timeout)
    }

    /// std's per-call write timeout (see [`set_read_timeout`](Self::set_read_timeout)).
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// a.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, timeout)
    }

    /// The per-call read timeout.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert_eq!(a.read_timeout()?, None); // none by default
    /// a.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Read)
    }

    /// The per-call write timeout.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert_eq!(a.write_timeout()?, None); // none by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Write)
    }

    /// std's nonblocking mode: calls return `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{ErrorKind, Read};
    ///
    /// let (mut a, _b) = UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!(a.read(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Reads and clears `SO_ERROR`.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(a.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Go's `SetDeadline`: an absolute time after which reads and writes fail with
    /// `i/o timeout` — including calls already blocked — until a new deadline is set.
    /// `None` clears it.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    ///
    /// coronet::run(|| {
    ///     let (a, _b) = coronet::net::UnixStream::pair().unwrap();
    ///     a.set_deadline(Some(Instant::now() + Duration::from_millis(20))).unwrap();
    ///     let err = (&a).read(&mut [0u8; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     assert_eq!(err.to_string(), "read unix @->@: i/o timeout");
    /// });
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(deadline)
    }

    /// Sets the read deadline (Go's `SetReadDeadline`): reads fail with `i/o timeout` after
    /// it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{ErrorKind, Read, Write};
    /// use std::time::{Duration, Instant};
    ///
    /// let (mut a, _b) = UnixStream::pair()?;
    /// a.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// assert_eq!(a.read(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
    /// a.write_all(b"writes are not bounded by it")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Sets the write deadline (Go's `SetWriteDeadline`): writes fail with `i/o timeout`
    /// after it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::UnixStream;
    /// use std::io::{ErrorKind, Write};
    /// use std::time::Instant;
    ///
    /// let (mut a, _b) = UnixStream::pair()?;
    /// a.set_write_deadline(Some(Instant::now()))?; // already past
    /// assert_eq!(a.write(b"x").unwrap_err().kind(), ErrorKind::TimedOut);
    /// a.set_write_deadline(None)?;
    /// a.write_all(b"x")?;
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
    /// use coronet::net::UnixStream;
    /// use std::io::Read;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let a = Arc::new(a);
    ///     let reader = {
    ///         let a = a.clone();
    ///         coronet::go(move || (&*a).read(&mut [0u8; 8]))
    ///     };
    ///     coronet::time::sleep(Duration::from_millis(10)); // let the reader park
    ///     a.close().unwrap(); // wakes the parked read
    ///     let err = reader.join().unwrap().unwrap_err();
    ///     assert!(err.to_string().ends_with("use of closed network connection"));
    /// });
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }
}

// Through `&mut`: no other call can be on this handle, so no fd lock (`poll/fd.rs`).
impl Read for UnixStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read_mut(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored_mut(bufs)
    }
}

impl Read for &UnixStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.sock.read_vectored(bufs)
    }
}

impl Write for UnixStream {
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

impl Write for &UnixStream {
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

impl UnixDatagram {
    /// A datagram socket bound to a new socket file at `path`.
    ///
    /// # Errors
    ///
    /// In Go's form: `listen unixgram /tmp/x.sock: address already in use`, kind
    /// `InvalidInput` for a path of 108 bytes or more.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-dgb-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let socket = UnixDatagram::bind(&path)?;
    /// assert_eq!(socket.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_to(path_addr(path.as_ref()))
    }

    /// A datagram socket bound to an address from std (a path or an abstract name).
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    ///
    /// ```
    /// use coronet::net::{UnixDatagram, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-dgba-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let server = UnixDatagram::bind_addr(&addr)?;
    /// UnixDatagram::unbound()?.send_to_addr(b"hi", &addr)?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(server.recv(&mut buf)?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_addr(socket_addr: &UnixSocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_to(std_addr(socket_addr))
    }

    fn bind_to((addr, name): (io::Result<SockAddr>, Addr)) -> io::Result<UnixDatagram> {
        let err = |e| op_error("listen", DGRAM, None, Some(name.clone()), e);
        let fd = bound(libc::SOCK_DGRAM, &addr.map_err(err)?).map_err(err)?;
        // `Sock::bound` asks the kernel: autobind (the unnamed address) picks a name.
        Ok(UnixDatagram {
            sock: Sock::bound(fd, DGRAM),
        })
    }

    /// A datagram socket bound to nothing. It can send (`send_to`, or `send` after
    /// `connect`); nobody can address a reply to it, so a socket that expects replies
    /// should [`bind`](Self::bind) instead.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// coronet::run(|| {
    ///     let c = UnixDatagram::unbound().unwrap();
    ///     assert!(c.local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// Out of fds: `socket unixgram: too many open files`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let fd = socket::socket(libc::AF_UNIX, libc::SOCK_DGRAM)
            .map_err(|e| op_error("socket", DGRAM, None, None, e))?;
        Ok(UnixDatagram {
            sock: Sock::with_addrs(fd, DGRAM, Some(Addr::UnixUnnamed), None),
        })
    }

    /// A connected pair of unnamed datagram sockets (`socketpair`).
    ///
    /// # Errors
    ///
    /// Out of fds: `socketpair unixgram: too many open files`.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"one message")?;
    /// let mut buf = [0u8; 32];
    /// let n = b.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"one message");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = pair(libc::SOCK_DGRAM, DGRAM)?;
        Ok((UnixDatagram { sock: a }, UnixDatagram { sock: b }))
    }

    /// Sets the default destination of `send` and the only source `recv` accepts. Errors of
    /// later calls name it (`write unixgram @->/tmp/x.sock: connection refused`); calling
    /// `connect` again re-points the socket.
    ///
    /// # Errors
    ///
    /// `dial unixgram /tmp/x.sock: no such file or directory` and the like.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-dgc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = UnixDatagram::bind(&path)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// client.send(b"hello")?; // no address needed after connect
    /// let mut buf = [0u8; 8];
    /// assert_eq!(server.recv(&mut buf)?, 5);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.connect_to(path_addr(path.as_ref()))
    }

    /// [`connect`](Self::connect) to an address from std.
    ///
    /// ```
    /// use coronet::net::{UnixDatagram, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-dgca-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let server = UnixDatagram::bind_addr(&addr)?;
    /// let client = UnixDatagram::unbound()?;
    /// client.connect_addr(&addr)?;
    /// client.send(b"hello")?;
    /// assert_eq!(server.recv(&mut [0u8; 8])?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_addr(&self, socket_addr: &UnixSocketAddr) -> io::Result<()> {
        self.connect_to(std_addr(socket_addr))
    }

    fn connect_to(&self, (to, name): (io::Result<SockAddr>, Addr)) -> io::Result<()> {
        let err = |e| op_error("dial", DGRAM, self.sock.local(), Some(name.clone()), e);
        let to = to.map_err(err)?;
        // A datagram connect only records the peer: it never waits.
        self.sock
            .fd
            .with_fd(|fd| socket::connect(fd, &to))
            .map_err(err)?;
        // The peer the kernel reports, as Go records it (see `UnixStream::connect`).
        let peer = self.sock.kernel_peer().unwrap_or(name);
        self.sock.connected(None, peer);
        Ok(())
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `write unixgram @: transport endpoint is not connected` when not connected,
    /// `…: connection refused` when the peer is gone, `message too long` for a datagram
    /// over the socket's send buffer.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// assert_eq!(a.send(b"")?, 0); // an empty datagram is still a datagram
    /// assert_eq!(a.send(b"two")?, 3);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv(&mut buf)?, 0);
    /// assert_eq!(b.recv(&mut buf)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send_datagram(buf)
    }

    /// Receives one datagram, parking until one arrives. A datagram longer than `buf` is
    /// cut to fit and the rest is lost.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// coronet::run(|| {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     coronet::go(move || a.send(b"too long for the buffer").unwrap());
    ///     let mut buf = [0u8; 8];
    ///     let n = b.recv(&mut buf).unwrap(); // parks until the datagram arrives
    ///     assert_eq!(&buf[..n], b"too long"); // the rest is lost
    /// });
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, 0)
    }

    /// Sends one datagram to the socket at `path`.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let path = std::env::temp_dir().join(format!("coronet-doc-dg-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let p = path.clone();
    /// coronet::run(move || {
    ///     let server = UnixDatagram::bind(&p).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     client.send_to(b"hi", &p).unwrap();
    ///     let mut buf = [0u8; 8];
    ///     let (n, from) = server.recv_from(&mut buf).unwrap();
    ///     assert_eq!((&buf[..n], from.is_unnamed()), (&b"hi"[..], true));
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// In Go's form: `write unixgram @->/tmp/x.sock: no such file or directory`, kind
    /// `InvalidInput` for a path of 108 bytes or more.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.send_to_sockaddr(buf, path_addr(path.as_ref()))
    }

    /// [`send_to`](Self::send_to) an address from std (a path or an abstract name).
    ///
    /// ```
    /// use coronet::net::{UnixDatagram, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-dgsta-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let server = UnixDatagram::bind_addr(&addr)?;
    /// let client = UnixDatagram::unbound()?;
    /// assert_eq!(client.send_to_addr(b"hi", &addr)?, 2);
    /// assert_eq!(server.recv(&mut [0u8; 8])?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to_addr(&self, buf: &[u8], socket_addr: &UnixSocketAddr) -> io::Result<usize> {
        self.send_to_sockaddr(buf, std_addr(socket_addr))
    }

    fn send_to_sockaddr(
        &self,
        buf: &[u8],
        (to, name): (io::Result<SockAddr>, Addr),
    ) -> io::Result<usize> {
        let to =
            to.map_err(|e| op_error("write", DGRAM, self.sock.local(), Some(name.clone()), e))?;
        self.sock.send_to(buf, &to, Some(name))
    }

    /// Receives one datagram and the address of its sender (unnamed if the sender never
    /// bound).
    ///
    /// One address is lost: a sender bound to a path of the full 108 bytes with no NUL
    /// (Linux allows it) is reported unnamed, because std's `SocketAddr` cannot be built
    /// for it. Failing instead would drop the datagram, which is already taken.
    ///
    /// ```
    /// use coronet::net::{UnixDatagram, UnixSocketAddr};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// // A client that wants replies binds a name of its own.
    /// let pid = std::process::id();
    /// let server_addr = UnixSocketAddr::from_abstract_name(format!("coronet-doc-srv-{pid}"))?;
    /// let client_addr = UnixSocketAddr::from_abstract_name(format!("coronet-doc-cli-{pid}"))?;
    /// let server = UnixDatagram::bind_addr(&server_addr)?;
    /// let client = UnixDatagram::bind_addr(&client_addr)?;
    /// client.send_to_addr(b"ping", &server_addr)?;
    ///
    /// let mut buf = [0u8; 8];
    /// let (n, from) = server.recv_from(&mut buf)?;
    /// server.send_to_addr(&buf[..n], &from)?; // reply to the sender
    /// assert_eq!(client.recv(&mut buf)?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        self.recv_from_flags(buf, 0)
    }

    /// Receives the next datagram without taking it off the queue.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"v1:data")?;
    /// let mut version = [0u8; 2];
    /// b.peek(&mut version)?; // the datagram stays queued
    /// assert_eq!(&version, b"v1");
    /// let mut buf = [0u8; 16];
    /// let n = b.recv(&mut buf)?;
    /// assert_eq!(&buf[..n], b"v1:data");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, libc::MSG_PEEK)
    }

    /// [`peek`](Self::peek), with the sender's address (the one address it cannot report is
    /// as for [`recv_from`](Self::recv_from)).
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// a.send(b"hi")?;
    /// let mut buf = [0u8; 8];
    /// let (n, from) = b.peek_from(&mut buf)?;
    /// assert_eq!((n, from.is_unnamed()), (2, true));
    /// assert_eq!(b.recv(&mut buf)?, 2); // still there
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        self.recv_from_flags(buf, libc::MSG_PEEK)
    }

    fn recv_flags(&self, buf: &mut [u8], flags: i32) -> io::Result<usize> {
        let nb = || self.sock.fd.user_nonblocking();
        self.sock
            .fd
            .read_with(|fd| recv_or_eof(fd, nb(), |fd| socket::recv(fd, buf, flags), || 0))
            .map_err(|e| self.sock.err("read", e))
    }

    fn recv_from_flags(&self, buf: &mut [u8], flags: i32) -> io::Result<(usize, UnixSocketAddr)> {
        let eof = || (0, SockAddr::unnamed_unix());
        let nb = || self.sock.fd.user_nonblocking();
        let (n, from) = self
            .sock
            .fd
            .read_with(|fd| recv_or_eof(fd, nb(), |fd| socket::recv_from(fd, buf, flags), eof))
            .map_err(|e| self.sock.err("read", e))?;
        // Never an error: the datagram is consumed by now. The one address std cannot
        // build, a 108-byte path with no NUL, is reported unnamed (documented on `recv_from`).
        let from = to_std(&from).unwrap_or_else(|e| {
            rt_log!(
                Debug,
                "recv unixgram: sender address {from:?} reported unnamed: {e}"
            );
            unnamed()
        });
        Ok((n, from))
    }

    /// This socket's address (unnamed if it never bound).
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let socket = UnixDatagram::unbound()?;
    /// assert!(socket.local_addr()?.is_unnamed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        name(&self.sock, false)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` (kind `NotConnected`) when not connected.
    ///
    /// ```
    /// use coronet::net::{UnixDatagram, UnixSocketAddr};
    /// use std::io::ErrorKind;
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let name = format!("coronet-doc-dgpa-{}", std::process::id());
    /// let addr = UnixSocketAddr::from_abstract_name(&name)?;
    /// let _server = UnixDatagram::bind_addr(&addr)?;
    /// let client = UnixDatagram::unbound()?;
    /// assert_eq!(client.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    /// client.connect_addr(&addr)?;
    /// assert_eq!(client.peer_addr()?.as_abstract_name(), Some(name.as_bytes()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        name(&self.sock, true)
    }

    /// Shuts down the read, write, or both halves: a blocked `recv` returns `Ok(0)` after
    /// `Shutdown::Read`.
    ///
    /// ```
    /// use coronet::net::{Shutdown, UnixDatagram};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// coronet::run(|| {
    ///     let (_a, b) = UnixDatagram::pair().unwrap();
    ///     let b = Arc::new(b);
    ///     let receiver = {
    ///         let b = b.clone();
    ///         coronet::go(move || b.recv(&mut [0u8; 8]))
    ///     };
    ///     coronet::time::sleep(Duration::from_millis(10)); // let it park
    ///     b.shutdown(Shutdown::Read).unwrap();
    ///     assert_eq!(receiver.join().unwrap().unwrap(), 0); // end of data
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// A second handle on the same socket (`dup`), with its own deadlines and `close`; the
    /// timeouts and the nonblocking mode are shared with this handle, later changes
    /// included, as with std.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// coronet::run(|| {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     // One coroutine sends through the clone while this one receives.
    ///     let sender = a.try_clone().unwrap();
    ///     coronet::go(move || sender.send(b"hi").unwrap());
    ///     assert_eq!(b.recv(&mut [0u8; 8]).unwrap(), 2);
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: self.sock.try_clone()?,
        })
    }

    /// std's per-call receive timeout; a receive that waits longer fails with kind
    /// `TimedOut`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_read_timeout(Some(Duration::from_millis(20)))?;
    /// assert_eq!(a.recv(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Read, timeout)
    }

    /// std's per-call send timeout.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_write_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.write_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Dir::Write, timeout)
    }

    /// The per-call receive timeout.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.read_timeout()?, None); // none by default
    /// a.set_read_timeout(Some(Duration::from_secs(1)))?;
    /// assert_eq!(a.read_timeout()?, Some(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Read)
    }

    /// The per-call send timeout.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert_eq!(a.write_timeout()?, None); // none by default
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(Dir::Write)
    }

    /// std's nonblocking mode: calls return `WouldBlock` instead of parking.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::io::ErrorKind;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_nonblocking(true)?;
    /// assert_eq!(a.recv(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Reads and clears `SO_ERROR`.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// assert!(a.take_error()?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Go's `SetDeadline`: receives and sends fail with `i/o timeout` after `deadline`,
    /// including calls already blocked. `None` clears it.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::{Duration, Instant};
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// let err = a.recv(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// assert!(err.to_string().ends_with("i/o timeout"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_deadline(deadline)
    }

    /// Sets the read deadline (Go's `SetReadDeadline`): reads fail with `i/o timeout` after
    /// it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::{Duration, Instant};
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)))?;
    /// assert_eq!(a.recv(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
    /// a.send(b"sends are not bounded by it")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    /// Sets the write deadline (Go's `SetWriteDeadline`): writes fail with `i/o timeout`
    /// after it, including one already blocked; `None` clears it.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    /// use std::io::ErrorKind;
    /// use std::time::Instant;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.set_write_deadline(Some(Instant::now()))?; // already past
    /// assert_eq!(a.send(b"x").unwrap_err().kind(), ErrorKind::TimedOut);
    /// a.set_write_deadline(None)?;
    /// a.send(b"x")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_write_deadline(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_write_deadline(deadline)
    }

    /// Go's `Close`: blocked calls return at once with `use of closed network connection`,
    /// and `close` returns with the socket released, without waiting for them.
    ///
    /// ```
    /// use coronet::net::UnixDatagram;
    ///
    /// let (a, _b) = UnixDatagram::pair()?;
    /// a.close()?;
    /// let err = a.send(b"x").unwrap_err();
    /// assert!(err.to_string().ends_with("use of closed network connection"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.sock.close()
    }
}

/// One datagram receive, with end-of-data after `shutdown(Read)` as std reports it.
///
/// Linux answers a *nonblocking* receive on a Unix datagram socket whose read side is shut
/// down with `EAGAIN`, forever, while poll calls it readable (a blocking receive returns 0,
/// which is what std shows). Parking on that would never end — or spin on a thread — so
/// after `EAGAIN` ask poll once for `POLLRDHUP` alone (not `POLLIN`: a datagram arriving
/// just now must not read as the end). Poll also always reports `POLLERR`, so a pending
/// error is taken from `SO_ERROR` and returned, as the receive would have.
/// A socket the user set nonblocking (`user_nonblocking`) gets the kernel's `EAGAIN`, as
/// std's nonblocking receive does.
fn recv_or_eof<R>(
    fd: BorrowedFd<'_>,
    user_nonblocking: bool,
    recv: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>,
    eof: impl FnOnce() -> R,
) -> io::Result<R> {
    match recv(fd) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && !user_nonblocking => {
            match socket::poll_fd(fd, libc::POLLRDHUP, None, 0) {
                Ok((true, _)) => match socket::take_error(fd)? {
                    Some(err) => Err(err),
                    None => Ok(eof()),
                },
                _ => Err(e),
            }
        }
        r => r,
    }
}

/// A connected `socketpair` of type `ty`, both ends unnamed.
fn pair(ty: i32, net: &'static str) -> io::Result<(Sock, Sock)> {
    let (a, b) = socket::socketpair(libc::AF_UNIX, ty)
        .map_err(|e| op_error("socketpair", net, None, None, e))?;
    let unnamed = || Some(Addr::UnixUnnamed);
    Ok((
        Sock::with_addrs(a, net, unnamed(), unnamed()),
        Sock::with_addrs(b, net, unnamed(), unnamed()),
    ))
}

fd_traits!(UnixListener, std::os::unix::net::UnixListener, STREAM);
fd_traits!(UnixStream, std::os::unix::net::UnixStream, STREAM);
fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram, DGRAM);

/// Shared between coroutines and threads, like std's.
fn _assert_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<UnixListener>();
    send_sync::<UnixStream>();
    send_sync::<UnixDatagram>();
    send_sync::<UnixIncoming<'_>>();
}

/// The first pause of a coroutine's Unix connect that found the listener's backlog full.
const CONNECT_PAUSE_FIRST: Duration = Duration::from_millis(1);
/// The longest: a connect gets in at most this long after room appears, and each waiting
/// coroutine tries about 60 times a second while a stopped server's backlog stays full.
const CONNECT_PAUSE_MAX: Duration = Duration::from_millis(16);

/// `Sock::connect` for a Unix stream, waiting while the listener's backlog is full, as std's
/// blocking connect does (module docs). The socket is the dial's own, not yet handed to
/// anyone, so no `close` or deadline can concern it meanwhile.
fn connect_waiting(sock: &Sock, to: &SockAddr) -> io::Result<Option<SockAddr>> {
    let mut pause = CONNECT_PAUSE_FIRST;
    loop {
        match sock.connect(to, None) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {}
            r => return r,
        }
        if !crate::runtime::worker::in_coroutine() {
            return sock
                .fd
                .with_fd(|fd| connect_blocking(fd, to))
                .map(|()| None);
        }
        rt_log!(
            Trace,
            "unix connect on fd {}: backlog full, trying again in {pause:?}",
            sock.raw()
        );
        crate::time::sleep(pause);
        pause = (pause * 2).min(CONNECT_PAUSE_MAX);
    }
}

/// A plain thread's connect to a full backlog: blocking for this one call, so the thread
/// sleeps in the kernel until the listener has room, as std's does; a signal's `EINTR`
/// (the socket is still unconnected then) tries again.
fn connect_blocking(fd: BorrowedFd<'_>, to: &SockAddr) -> io::Result<()> {
    socket::set_nonblocking(fd, false)?;
    let r = loop {
        match socket::connect(fd, to) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => break r,
        }
    };
    socket::set_nonblocking(fd, true)?;
    r
}
