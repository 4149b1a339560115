//! Go-form network errors carried inside `std::io::Error`.
//!
//! Go reports a failed socket operation as a `*net.OpError`: the operation, the network, the
//! local and remote addresses, and the cause —
//! `read tcp 127.0.0.1:40000->127.0.0.1:8080: connection reset by peer`. coronet keeps
//! `io::Error` on every I/O path and puts an [`OpError`] inside it, so `kind()` still says *what*
//! happened, the text says *where*, and the cause stays reachable through `source()`.
//!
//! This is where errors are decorated. Raw errno errors travel up unchanged from
//! `net/socket.rs`, and the public types wrap them here once, on the way out to the user; the
//! only other layer is `lookup.rs`'s `lookup HOST:` on a failed name lookup, which a dial or
//! listen then wraps in its turn.
//!
//! # When to wrap
//!
//! Wrap every error a public call returns, and nothing that is not an error:
//! - end of stream is `Ok(0)`, never an error, so it is never wrapped (Go's `io.EOF` is not
//!   wrapped either);
//! - `EINTR` is retried by the I/O loop and never escapes;
//! - `WouldBlock` is the I/O loop's reason to park, so a blocking call never returns it; only a
//!   socket the user switched to nonblocking mode hands it back, and wrapping keeps its kind.
//!
//! Two errors have no errno: a deadline passing ([`timeout_error`], "i/o timeout") and use after
//! close ([`closed_error`], "use of closed network connection"). They come only from those
//! constructors, so the wording is the same everywhere, and they are recognised by a private
//! marker type inside the `io::Error` — never by comparing text.

use std::error::Error;
use std::ffi::CStr;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A socket address as errors and Unix sockets report it.
///
/// ```
/// use coronet::net::Addr;
/// use std::path::PathBuf;
///
/// let inet = Addr::from("[::1]:80".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(inet.to_string(), "[::1]:80");
/// assert_eq!(Addr::Unix(PathBuf::from("/tmp/a.sock")).to_string(), "/tmp/a.sock");
/// assert_eq!(Addr::UnixAbstract(b"name".to_vec()).to_string(), "@name");
/// assert_eq!(Addr::UnixUnnamed.to_string(), "@");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix socket bound to a filesystem path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket name (without the leading NUL byte).
    UnixAbstract(Vec<u8>),
    /// A Unix socket that is bound to nothing, such as a client's own end.
    UnixUnnamed,
}

impl From<SocketAddr> for Addr {
    fn from(addr: SocketAddr) -> Self {
        Addr::Inet(addr)
    }
}

/// Prints the address the way Go does: `127.0.0.1:80`, `[::1]:80`, `/tmp/a.sock`, `@name`
/// for an abstract name and `@` for an unnamed socket. An IPv4 address mapped into IPv6
/// (`[::ffff:127.0.0.1]:80`, what a listener on `[::]` sees of an IPv4 peer) prints as the
/// IPv4 address, as Go's does; the `SocketAddr` inside keeps its IPv6 form.
///
/// ```
/// use coronet::net::Addr;
///
/// let mapped = Addr::from("[::ffff:127.0.0.1]:80".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(mapped.to_string(), "127.0.0.1:80");
/// ```
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(SocketAddr::V6(a)) if a.scope_id() == 0 => match a.ip().to_ipv4_mapped() {
                Some(ip) => write!(f, "{ip}:{}", a.port()),
                None => a.fmt(f),
            },
            Addr::Inet(addr) => addr.fmt(f),
            Addr::Unix(path) => path.display().fmt(f),
            Addr::UnixAbstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Addr::UnixUnnamed => f.write_str("@"),
        }
    }
}

/// The error of one network operation, in the shape of Go's `*net.OpError`.
///
/// It lives inside the `io::Error` a coronet call returns; reach it with
/// `err.get_ref().and_then(|e| e.downcast_ref::<OpError>())`. The `io::Error`'s `kind()` is
/// the cause's kind, and its `source()` is the cause.
///
/// ```
/// use coronet::net::{Addr, OpError, TcpListener, TcpStream};
/// use std::io::ErrorKind;
///
/// let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?; // closed again at once
/// let err = TcpStream::connect(addr).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
///
/// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
/// assert_eq!((op.op(), op.net()), ("dial", "tcp"));
/// assert_eq!(op.addr(), Some(&Addr::Inet(addr)));
/// assert_eq!(op.to_string(), format!("dial tcp {addr}: connection refused"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OpError {
    /// The operation that failed, as Go names it: "read", "write", "dial", "accept", "listen"…
    op: &'static str,
    /// The network: "tcp", "udp", "unix" or "unixgram".
    net: &'static str,
    /// Go's `Source`: the local address, when the socket has one worth printing.
    source: Option<Addr>,
    /// Go's `Addr`: the remote address, or the socket's own address for accept, listen and
    /// the deadline setters (`set`), whose `source` is then `None`, as in Go.
    addr: Option<Addr>,
    /// What went wrong: an errno error, or one of the two marker errors of this module.
    cause: io::Error,
}

impl OpError {
    /// The operation that failed ("read", "write", "dial", "accept", …).
    ///
    /// ```
    /// use coronet::net::{OpError, TcpListener};
    /// use std::time::Instant;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_deadline(Some(Instant::now()))?;
    /// let err = listener.accept().unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert_eq!(op.op(), "accept");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The network the socket belongs to ("tcp", "udp", "unix", "unixgram").
    ///
    /// ```
    /// use coronet::net::{OpError, UdpSocket};
    /// use std::time::Instant;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_deadline(Some(Instant::now()))?;
    /// let err = socket.recv(&mut [0u8; 8]).unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert_eq!((op.op(), op.net()), ("read", "udp"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn net(&self) -> &'static str {
        self.net
    }

    /// The local address (Go's `Source`), if known.
    ///
    /// ```
    /// use coronet::net::{Addr, OpError, TcpListener, TcpStream};
    /// use std::io::Read;
    /// use std::time::Instant;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_deadline(Some(Instant::now()))?;
    /// let err = stream.read(&mut [0u8; 8]).unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// // On a connection, both ends are known: `read tcp <source>-><addr>: i/o timeout`.
    /// assert_eq!(op.source_addr(), Some(&Addr::Inet(stream.local_addr()?)));
    /// assert_eq!(op.addr(), Some(&Addr::Inet(stream.peer_addr()?)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn source_addr(&self) -> Option<&Addr> {
        self.source.as_ref()
    }

    /// The remote address, or the socket's own address for accept, listen and the deadline
    /// setters (`set`), whose [`source_addr`](Self::source_addr) is then `None` (Go's `Addr`).
    ///
    /// ```
    /// use coronet::net::{Addr, OpError, TcpStream};
    ///
    /// let err = TcpStream::connect("127.0.0.1:1").unwrap_err(); // nothing listens on port 1
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert_eq!(op.addr(), Some(&Addr::Inet("127.0.0.1:1".parse().unwrap())));
    /// assert_eq!(op.source_addr(), None); // the socket never got a local address
    /// ```
    pub fn addr(&self) -> Option<&Addr> {
        self.addr.as_ref()
    }

    /// The underlying error.
    ///
    /// ```
    /// use coronet::net::{OpError, TcpStream};
    /// use std::io::ErrorKind;
    ///
    /// let err = TcpStream::connect("127.0.0.1:1").unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert_eq!(op.cause().kind(), ErrorKind::ConnectionRefused);
    /// assert_eq!(op.cause().raw_os_error(), Some(libc::ECONNREFUSED));
    /// ```
    pub fn cause(&self) -> &io::Error {
        &self.cause
    }

    /// Whether the operation timed out, as Go's `Timeout()` answers it: a deadline passed, or
    /// the kernel gave up with `ETIMEDOUT`.
    ///
    /// ```
    /// use coronet::net::{OpError, UdpSocket};
    /// use std::time::Duration;
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = socket.recv(&mut [0u8; 8]).unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert!(op.is_timeout() && !op.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_timeout(&self) -> bool {
        is_timeout(&self.cause)
    }

    /// Whether the operation was on a socket that had already been closed.
    ///
    /// ```
    /// use coronet::net::{OpError, UdpSocket};
    ///
    /// let socket = UdpSocket::bind("127.0.0.1:0")?;
    /// socket.close()?;
    /// let err = socket.recv(&mut [0u8; 8]).unwrap_err();
    /// let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
    /// assert!(op.is_closed() && !op.is_timeout());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        is_closed(&self.cause)
    }
}

/// Prints `{op} {net} {source}->{addr}: {cause}`, dropping the parts that are absent, with an
/// errno cause in Go's words (`connection reset by peer`, no `(os error 104)`).
impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if !self.net.is_empty() {
            write!(f, " {}", self.net)?;
        }
        if let Some(source) = &self.source {
            write!(f, " {source}")?;
        }
        if let Some(addr) = &self.addr {
            let sep = if self.source.is_some() { "->" } else { " " };
            write!(f, "{sep}{addr}")?;
        }
        match self.cause.raw_os_error() {
            Some(code) => write!(f, ": {}", errno_text(code)),
            None => write!(f, ": {}", self.cause),
        }
    }
}

impl Error for OpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

/// Wraps `cause` in an [`OpError`] inside an `io::Error` whose `kind()` is the cause's kind.
///
/// A cause that is already an `OpError` comes back unchanged, so an error is decorated once.
pub(crate) fn op_error(
    op: &'static str,
    net: &'static str,
    source: Option<Addr>,
    addr: Option<Addr>,
    cause: io::Error,
) -> io::Error {
    if cause.get_ref().is_some_and(|e| e.is::<OpError>()) {
        return cause;
    }
    let kind = cause.kind();
    io::Error::new(
        kind,
        OpError {
            op,
            net,
            source,
            addr,
            cause,
        },
    )
}

/// The errno behind `err`, as std's `err.raw_os_error()` gives it: coronet's errors carry an
/// [`OpError`] inside the `io::Error`, and `io::Error::raw_os_error` is always `None` for
/// such an error, so std code that matches on errno numbers (`EADDRINUSE`, `ECONNRESET`,
/// `EMFILE`…) must ask this instead. Works on std's errors too.
///
/// `None` for the two errors coronet makes without an errno: a deadline or timeout passing
/// (std's timeout is `EAGAIN`, `Some(11)`; here it is `TimedOut`, found by
/// [`OpError::is_timeout`]) and use after close ([`OpError::is_closed`]). Code that matched
/// `Some(libc::EAGAIN)` to spot a timeout must test for those instead.
///
/// ```
/// use coronet::net::{raw_os_error, TcpListener};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let err = TcpListener::bind(listener.local_addr()?).unwrap_err();
/// assert_eq!(err.raw_os_error(), None); // an OpError is inside
/// assert_eq!(raw_os_error(&err), Some(libc::EADDRINUSE));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    unwrap_op(err).raw_os_error()
}

/// The two errors coronet makes itself; `is_timeout` and `is_closed` look for this marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetError {
    /// A deadline passed before the operation could complete.
    Timeout,
    /// The socket was closed by this process before or during the operation.
    Closed,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetError::Timeout => "i/o timeout",
            NetError::Closed => "use of closed network connection",
        })
    }
}

impl Error for NetError {}

/// The one deadline error: kind `TimedOut`, text "i/o timeout" (Go's `os.ErrDeadlineExceeded`).
pub(crate) fn timeout_error() -> io::Error {
    io::Error::new(ErrorKind::TimedOut, NetError::Timeout)
}

/// The one use-after-close error: text "use of closed network connection" (Go's `net.ErrClosed`).
///
/// Its kind is `NotConnected`. Go's `ErrClosed` has no errno, so some kind must be chosen:
/// `NotConnected` says what is true — this handle no longer refers to a live connection —
/// and it is what std reports for I/O on a socket with no connection. `BrokenPipe` would claim
/// the *peer* went away, which is a different event with a different remedy (reconnect), and
/// `Other` cannot be matched on at all. Use [`OpError::is_closed`] to tell it apart from a
/// kernel `ENOTCONN`.
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(ErrorKind::NotConnected, NetError::Closed)
}

/// Whether `err` is a timeout: a deadline or std's per-call timeout passed (kind
/// `TimedOut`, `… i/o timeout`), or the kernel's `ETIMEDOUT` (Go's `Timeout()` is true for
/// both). The `io::Error` a socket call returns carries an [`OpError`]; this looks inside it
/// for you, as [`OpError::is_timeout`] does on the inner value. Works on std's errors too
/// (`ETIMEDOUT` only: std's timeouts are `WouldBlock`).
///
/// ```
/// use coronet::net::{is_closed, is_timeout, UdpSocket};
/// use std::time::Duration;
///
/// let socket = UdpSocket::bind("127.0.0.1:0")?;
/// socket.set_read_timeout(Some(Duration::from_millis(10)))?;
/// let err = socket.recv(&mut [0u8; 8]).unwrap_err();
/// assert!(is_timeout(&err) && !is_closed(&err));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_timeout(err: &io::Error) -> bool {
    let cause = unwrap_op(err);
    marker(cause) == Some(NetError::Timeout) || cause.raw_os_error() == Some(libc::ETIMEDOUT)
}

/// Whether `err` says the socket was closed by this process (`close`) before or during the
/// call: `… use of closed network connection`, kind `NotConnected` (Go's
/// `net.ErrClosed`). The way to tell a loop over `incoming()` or `read` that another
/// coroutine shut it down on purpose from a failure:
///
/// ```
/// use coronet::net::{is_closed, TcpListener};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// coronet::run(|| {
///     let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
///     let server = {
///         let listener = listener.clone();
///         coronet::go(move || {
///             for conn in listener.incoming() {
///                 match conn {
///                     Ok(conn) => drop(coronet::go(move || drop(conn))),
///                     Err(e) if is_closed(&e) => return "shut down",
///                     Err(e) => {
///                         eprintln!("accept: {e}");
///                         coronet::time::sleep(Duration::from_millis(5)); // back off
///                     }
///                 }
///             }
///             unreachable!("incoming() never ends")
///         })
///     };
///     coronet::time::sleep(Duration::from_millis(10));
///     listener.close().unwrap(); // wakes the parked accept
///     assert_eq!(server.join().unwrap(), "shut down");
/// });
/// ```
pub fn is_closed(err: &io::Error) -> bool {
    marker(unwrap_op(err)) == Some(NetError::Closed)
}

/// The cause inside `err` if it is an `OpError`, else `err` itself.
fn unwrap_op(err: &io::Error) -> &io::Error {
    match err.get_ref().and_then(|e| e.downcast_ref::<OpError>()) {
        Some(op) => &op.cause,
        None => err,
    }
}

/// The marker `err` carries directly, if any.
fn marker(err: &io::Error) -> Option<NetError> {
    err.get_ref()?.downcast_ref::<NetError>().copied()
}

/// The text Go prints for errno `code`: Linux's `strerror` with Go's casing
/// ("connection reset by peer"), or "errno N" for a number the C library does not know.
fn errno_text(code: i32) -> String {
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is writable for `buf.len()` bytes, and the XSI `strerror_r` (the one libc
    // links on Linux) writes at most that many bytes, NUL included, and nothing elsewhere.
    let rc = unsafe { libc::strerror_r(code, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("errno {code}");
    }
    match CStr::from_bytes_until_nul(&buf) {
        Ok(text) => go_case(&text.to_string_lossy()),
        Err(_) => format!("errno {code}"),
    }
}

/// Go's casing of a C error message: lower-case a capital first letter followed by a
/// lower-case one ("Broken pipe" → "broken pipe"), leaving acronyms alone ("STREAMS …").
fn go_case(msg: &str) -> String {
    let bytes = msg.as_bytes();
    match bytes {
        [first, second, ..] if first.is_ascii_uppercase() && second.is_ascii_lowercase() => {
            let mut out = msg.to_owned();
            out[..1].make_ascii_lowercase();
            out
        }
        _ => msg.to_owned(),
    }
}

/// The public error types cross threads inside `io::Error`, which requires both.
fn _assert_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<OpError>();
    is_send_sync::<Addr>();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(s: &str) -> Option<Addr> {
        Some(Addr::Inet(s.parse().unwrap()))
    }

    fn unix(s: &str) -> Option<Addr> {
        Some(if s == "@" {
            Addr::UnixUnnamed
        } else {
            Addr::Unix(s.into())
        })
    }

    fn errno(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    /// A "read" error on a TCP connection from 127.0.0.1:40000 to 127.0.0.1:8080.
    fn tcp_read(cause: io::Error) -> io::Error {
        op_error(
            "read",
            "tcp",
            inet("127.0.0.1:40000"),
            inet("127.0.0.1:8080"),
            cause,
        )
    }

    /// The `OpError` inside `err`, which must be there.
    fn op_of(err: &io::Error) -> &OpError {
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<OpError>());
        inner.expect("an OpError")
    }

    #[test]
    fn prints_go_examples() {
        let conn = "127.0.0.1:40000->127.0.0.1:8080";
        let refused = op_error(
            "dial",
            "tcp",
            None,
            inet("127.0.0.1:1"),
            errno(libc::ECONNREFUSED),
        );
        let emfile = op_error(
            "accept",
            "tcp",
            None,
            inet("127.0.0.1:8080"),
            errno(libc::EMFILE),
        );
        let cases = [
            (
                tcp_read(errno(libc::ECONNRESET)),
                format!("read tcp {conn}: connection reset by peer"),
            ),
            (refused, "dial tcp 127.0.0.1:1: connection refused".into()),
            (
                emfile,
                "accept tcp 127.0.0.1:8080: too many open files".into(),
            ),
            (
                tcp_read(timeout_error()),
                format!("read tcp {conn}: i/o timeout"),
            ),
            (
                tcp_read(closed_error()),
                format!("read tcp {conn}: use of closed network connection"),
            ),
            (
                tcp_read(errno(libc::EPIPE)),
                format!("read tcp {conn}: broken pipe"),
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn prints_unix_and_missing_parts() {
        let cases = [
            (
                unix("/tmp/a.sock"),
                unix("@"),
                "read unix /tmp/a.sock->@: broken pipe",
            ),
            (
                unix("@"),
                unix("/tmp/a.sock"),
                "read unix @->/tmp/a.sock: broken pipe",
            ),
            (
                unix("/tmp/a.sock"),
                None,
                "read unix /tmp/a.sock: broken pipe",
            ),
            (None, None, "read unix: broken pipe"),
        ];
        for (source, addr, want) in cases {
            assert_eq!(
                op_error("read", "unix", source, addr, errno(libc::EPIPE)).to_string(),
                want
            );
        }
        let custom = io::Error::new(ErrorKind::InvalidInput, "missing port in address");
        let custom = op_error("dial", "tcp", None, None, custom);
        assert_eq!(custom.to_string(), "dial tcp: missing port in address");
    }

    #[test]
    fn keeps_kind_and_cause() {
        let err = tcp_read(errno(libc::ECONNRESET));
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        let op = op_of(&err);
        assert_eq!((op.op(), op.net()), ("read", "tcp"));
        assert_eq!(op.source_addr(), inet("127.0.0.1:40000").as_ref());
        assert_eq!(op.addr(), inet("127.0.0.1:8080").as_ref());
        assert_eq!(op.cause().raw_os_error(), Some(libc::ECONNRESET));
        // `source()` on the io::Error reaches the cause through the OpError.
        let cause = err
            .source()
            .and_then(|e| e.downcast_ref::<io::Error>())
            .unwrap();
        assert_eq!(cause.raw_os_error(), Some(libc::ECONNRESET));
        assert_eq!(tcp_read(timeout_error()).kind(), ErrorKind::TimedOut);
        assert_eq!(tcp_read(closed_error()).kind(), ErrorKind::NotConnected);
        assert_eq!(
            tcp_read(errno(libc::ECONNREFUSED)).kind(),
            ErrorKind::ConnectionRefused
        );
    }

    #[test]
    fn wraps_only_once() {
        let twice = op_error("write", "udp", None, None, tcp_read(errno(libc::EPIPE)));
        assert_eq!(
            twice.to_string(),
            "read tcp 127.0.0.1:40000->127.0.0.1:8080: broken pipe"
        );
    }

    #[test]
    fn recognises_timeout_and_closed() {
        assert!(is_timeout(&timeout_error()));
        assert!(is_timeout(&tcp_read(timeout_error())));
        assert!(is_timeout(&errno(libc::ETIMEDOUT)));
        assert!(!is_timeout(&closed_error()));
        assert!(!is_timeout(&io::Error::new(
            ErrorKind::TimedOut,
            "i/o timeout"
        )));
        assert!(is_closed(&closed_error()));
        assert!(is_closed(&tcp_read(closed_error())));
        assert!(!is_closed(&tcp_read(timeout_error())));
        assert!(!is_closed(&errno(libc::ENOTCONN)));
        let lookalike = "use of closed network connection";
        assert!(!is_closed(&io::Error::new(
            ErrorKind::NotConnected,
            lookalike
        )));
        assert!(op_of(&tcp_read(timeout_error())).is_timeout());
        assert!(op_of(&tcp_read(closed_error())).is_closed());
        assert!(!op_of(&tcp_read(errno(libc::ECONNRESET))).is_timeout());
        assert_eq!(timeout_error().to_string(), "i/o timeout");
        assert_eq!(closed_error().to_string(), lookalike);
    }

    #[test]
    fn prints_every_addr() {
        assert_eq!(inet("127.0.0.1:80").unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(inet("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(unix("/tmp/a.sock").unwrap().to_string(), "/tmp/a.sock");
        assert_eq!(
            Addr::UnixAbstract(b"coronet".to_vec()).to_string(),
            "@coronet"
        );
        assert_eq!(Addr::UnixUnnamed.to_string(), "@");
        let v4: SocketAddr = "10.0.0.1:9".parse().unwrap();
        assert_eq!(Addr::from(v4), Addr::Inet(v4));
    }

    #[test]
    fn errno_text_in_go_words() {
        assert_eq!(errno_text(libc::ECONNRESET), "connection reset by peer");
        assert_eq!(
            errno_text(libc::ENOTCONN),
            "transport endpoint is not connected"
        );
        assert_eq!(errno_text(libc::EAGAIN), "resource temporarily unavailable");
        assert_eq!(errno_text(99_999), "errno 99999");
        assert_eq!(go_case("Broken pipe"), "broken pipe");
        assert_eq!(go_case("STREAMS ioctl"), "STREAMS ioctl");
        assert_eq!(go_case(""), "");
    }
}
