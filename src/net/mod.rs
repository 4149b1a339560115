//! Networking: `std::net`'s types whose blocking calls park the coroutine.
//!
//! Swap `use std::net::…` for `use coronet::net::…` and spawn with [`go`](crate::go): the
//! program works as before, with one cheap coroutine per connection. Value types (`SocketAddr`,
//! `Shutdown`, …) are std's own, re-exported here so the import swap is the whole port.
//!
//! On top of std, every stream, socket and listener has Go's extras: absolute deadlines that
//! also hit calls already blocked (`set_deadline`), and `close(&self)`, which makes every
//! blocked call on the object return at once.
//!
//! # What is here
//!
//! - TCP: [`TcpListener`] and [`TcpStream`]; [`Dialer`] and [`ListenConfig`] carry Go's
//!   options for making them (timeouts, local address, keep-alive, `SO_REUSEPORT`, a
//!   `control` hook on the raw fd).
//! - UDP: [`UdpSocket`].
//! - Unix sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], on paths or Linux
//!   abstract names ([`UnixSocketAddr`]).
//! - Names: [`lookup_host`] and [`lookup_host_context`] resolve off the worker threads.
//! - Errors: [`OpError`] and [`Addr`], inside the `io::Error` every call returns.
//!
//! ```
//! use coronet::net::{TcpListener, TcpStream};
//! use std::io::{BufRead, BufReader, Write};
//!
//! coronet::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     coronet::go(move || {
//!         for conn in listener.incoming() {
//!             let conn = conn.unwrap();
//!             coronet::go(move || {
//!                 // a line-echo handler in plain blocking style
//!                 let mut lines = BufReader::new(&conn);
//!                 let mut line = String::new();
//!                 while lines.read_line(&mut line).unwrap() > 0 {
//!                     (&conn).write_all(line.as_bytes()).unwrap();
//!                     line.clear();
//!                 }
//!             });
//!         }
//!     });
//!     let conn = TcpStream::connect(addr).unwrap();
//!     (&conn).write_all(b"hello\n").unwrap();
//!     let mut reply = String::new();
//!     BufReader::new(&conn).read_line(&mut reply).unwrap();
//!     assert_eq!(reply, "hello\n");
//! });
//! ```
//!
//! # Errors
//!
//! Errors read as Go's do — `read tcp 127.0.0.1:40000->127.0.0.1:8080: connection reset by
//! peer` — but without the syscall's name Go puts before the cause (`…: read: connection
//! reset by peer`), with the errno's `ErrorKind` kept and an [`OpError`] inside. Two places differ
//! from std: a timeout (deadline or `set_read_timeout`) has kind `TimedOut` (std says
//! `WouldBlock` on Unix), and use after `close` has kind `NotConnected` with the text
//! `use of closed network connection`.
//!
//! # Differences from std's signatures
//!
//! Functions that take `ToSocketAddrs` take it as std's do, without more bounds, so generic
//! code written against std's compiles after the swap. Resolving a host name
//! (`getaddrinfo`) blocks, so it runs on the blocking pool while the coroutine parks: a
//! host in one of std's string forms (`&str`, `String`, `(&str, u16)`…, or a reference to
//! one) is copied there; addresses (`SocketAddr`, `(IpAddr, u16)`, slices, IP literals in
//! a string) need no lookup. A `ToSocketAddrs` of your own type resolves on the caller,
//! which in a coroutine blocks its worker for the lookup; `Dialer::dial` and
//! `ListenConfig::listen`, which ask for `Send`, take it to the pool.

mod dial;
pub(crate) mod error;
mod lookup;
mod owned;
pub(crate) mod sock;
pub(crate) mod socket;
mod tcp;
mod udp;
mod unix;

pub use self::dial::{Dialer, ListenConfig, FALLBACK_DELAY};
pub use self::error::{is_closed, is_timeout, raw_os_error, Addr, OpError};
pub use self::lookup::{lookup_host, lookup_host_context, MAX_LOOKUPS};
pub use self::tcp::{Incoming, TcpListener, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};
/// std's Unix socket address, renamed so it does not clash with the IP [`SocketAddr`]. Code
/// ported from `std::os::unix::net` can import from [`coronet::os::unix::net`](crate::os::unix::net)
/// instead, where every name is std's (`SocketAddr`, `Incoming`).
pub use std::os::unix::net::SocketAddr as UnixSocketAddr;

use std::time::Duration;

/// The keep-alive period Go gives new TCP connections.
pub(crate) const KEEPALIVE_PERIOD: Duration = Duration::from_secs(15);
