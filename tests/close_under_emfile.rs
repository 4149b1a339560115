//! `close` when the process has run out of fds, in a binary of its own: what it checks
//! depends on the process's first socket.
//!
//! A closed socket's number is pointed at a placeholder socket (so the number is never free
//! under a call in flight) and the socket itself is released at once. If the placeholder
//! cannot be made, `close` falls back to `shutdown`, which keeps the socket, and its port,
//! until the value is dropped. That fallback must stay a moment's: found by the fifth
//! audit, one failure to make the placeholder was kept for the life of the process, and
//! every later `close` kept its socket.

use std::fs::File;
use std::os::fd::AsRawFd;

mod util;

use coronet::net::{TcpListener, UdpSocket};

/// `SO_DOMAIN` of a socket's fd number: what the number points at.
fn domain(s: &impl AsRawFd) -> i32 {
    util::sockopt(s, libc::SOL_SOCKET, libc::SO_DOMAIN)
}

#[test]
fn a_close_under_emfile_does_not_keep_later_closes_from_releasing_their_sockets() {
    // A low limit (this binary's own), so that running out is quick wherever this runs.
    util::lower_nofile(256);

    // The process's first socket takes its last free fd, so nothing is left for the
    // placeholder, and it is closed like that.
    let mut hog = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hog.push(f);
    }
    hog.pop();
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    first.close().unwrap();
    assert_eq!(domain(&first), libc::AF_INET, "kept: no placeholder");
    drop(hog); // fds are plentiful again

    // A later socket bound to a fixed port is closed, and the port is wanted again.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let second = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    second.close().unwrap();
    assert_eq!(domain(&second), libc::AF_UNIX, "not released");
    let again = std::net::UdpSocket::bind(("127.0.0.1", port));
    assert!(
        again.is_ok(),
        "port still held by a closed socket: {again:?}"
    );
}
