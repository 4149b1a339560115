//! `coronet::net::UdpSocket` on real loopback sockets.
//!
//! Every behaviour runs twice through [`both`]: once inside a coroutine (calls park on the
//! netpoller) and once on a plain OS thread (calls block the thread). Waits use generous
//! margins and assert order and outcome, not speed.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::net::{Addr, OpError, UdpSocket};

mod util;

/// Where a test body runs, and so how it starts helpers that must run alongside it.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Coroutine,
    Thread,
}

/// A helper started by [`Mode::spawn`].
enum Joiner<T> {
    Coroutine(coronet::JoinHandle<T>),
    Thread(std::thread::JoinHandle<T>),
}

impl<T> Joiner<T> {
    fn join(self) -> T {
        match self {
            Joiner::Coroutine(h) => h.join().unwrap(),
            Joiner::Thread(h) => h.join().unwrap(),
        }
    }
}

impl Mode {
    /// A coroutine in coroutine mode, an OS thread in thread mode.
    fn spawn<T: Send + 'static>(self, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
        match self {
            Mode::Coroutine => Joiner::Coroutine(coronet::go(f)),
            Mode::Thread => Joiner::Thread(std::thread::spawn(f)),
        }
    }
}

/// Runs `test` inside a coroutine, then on a plain thread; a failure names the mode.
fn both(test: fn(Mode)) {
    for mode in [Mode::Coroutine, Mode::Thread] {
        let result = match mode {
            Mode::Coroutine => panic::catch_unwind(AssertUnwindSafe(|| {
                coronet::run(move || test(mode));
            })),
            Mode::Thread => std::thread::spawn(move || test(mode)).join(),
        };
        if let Err(payload) = result {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("in {mode:?} mode: {msg}");
        }
    }
}

fn sleep(d: Duration) {
    coronet::time::sleep(d); // parks a coroutine, sleeps a thread
}

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Two sockets connected to each other.
fn pair() -> (UdpSocket, UdpSocket) {
    let (a, b) = (bind(), bind());
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    // A guard against a lost datagram hanging the test; no test waits anywhere near this.
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    (a, b)
}

/// An address on which nothing listens (`util::unused_port`).
fn dead_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, util::unused_port(true)))
}

fn op_error(err: &io::Error) -> &OpError {
    let op = err.get_ref().and_then(|e| e.downcast_ref::<OpError>());
    op.unwrap_or_else(|| panic!("no OpError inside {err:?}"))
}

fn assert_timeout(err: &io::Error, op: &str) {
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(op_error(err).is_timeout(), "{err}");
    assert!(err.to_string().starts_with(&format!("{op} udp ")), "{err}");
    assert!(err.to_string().ends_with(": i/o timeout"), "{err}");
}

fn assert_closed(err: &io::Error) {
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    assert!(op_error(err).is_closed(), "{err}");
    assert!(
        err.to_string()
            .ends_with(": use of closed network connection"),
        "{err}"
    );
}

#[test]
fn addresses_follow_bind_and_connect() {
    both(|_| {
        let a = bind();
        let local = a.local_addr().unwrap();
        assert_eq!(local.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(local.port(), 0);
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        let fd = a.as_raw_fd();
        assert_eq!(
            format!("{a:?}"),
            format!("UdpSocket {{ addr: {local}, fd: {fd} }}")
        );

        let (b, c) = (bind(), bind());
        a.connect(b.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        let peer = b.local_addr().unwrap();
        assert_eq!(
            format!("{a:?}"),
            format!("UdpSocket {{ addr: {local}, peer: {peer}, fd: {fd} }}")
        );
        // connect again re-points the socket
        a.connect(c.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), c.local_addr().unwrap());

        // An any-address socket learns its concrete address when it connects.
        let any = UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = any.local_addr().unwrap().port();
        assert_eq!(any.local_addr().unwrap().ip(), Ipv4Addr::UNSPECIFIED);
        any.connect(("127.0.0.1", b.local_addr().unwrap().port()))
            .unwrap();
        assert_eq!(
            any.local_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
        assert!(
            format!("{any:?}").contains(&format!("addr: 127.0.0.1:{port}")),
            "{any:?}"
        );

        // A connect to the wildcard reaches one of this host's own addresses, and that is
        // the peer recorded (as Go records the kernel's answer).
        let w = bind();
        w.connect(("0.0.0.0", b.local_addr().unwrap().port()))
            .unwrap();
        assert_eq!(w.peer_addr().unwrap(), b.local_addr().unwrap());
        w.close().unwrap();
        assert_eq!(w.peer_addr().unwrap(), b.local_addr().unwrap(), "recorded");

        // After close both are the last ones recorded, as Go's LocalAddr and RemoteAddr.
        any.close().unwrap();
        a.close().unwrap();
        assert_eq!(
            any.local_addr().unwrap(),
            SocketAddr::from(([127, 0, 0, 1], port))
        );
        assert_eq!(any.peer_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.local_addr().unwrap(), local);
        assert_eq!(a.peer_addr().unwrap(), c.local_addr().unwrap());
    });
}

#[test]
fn connected_datagrams_keep_their_boundaries() {
    both(|_| {
        let (a, b) = pair();
        let mut buf = [0u8; 64];
        assert_eq!(a.send(b"hello").unwrap(), 5);
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5, "peek left it queued");
        assert_eq!(&buf[..5], b"hello");

        // A short buffer truncates the datagram; the rest is gone, not left for the next recv.
        let long: Vec<u8> = (0..100u8).collect();
        a.send(&long).unwrap();
        a.send(b"next").unwrap();
        let mut small = [0u8; 10];
        assert_eq!(b.recv(&mut small).unwrap(), 10);
        assert_eq!(&small[..], &long[..10]);
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"next");

        // Empty datagrams are messages: sent, received as Ok(0), and consumed.
        assert_eq!(a.send(&[]).unwrap(), 0);
        a.send(b"after").unwrap();
        assert_eq!(b.recv(&mut buf).unwrap(), 0);
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        // An empty buffer still takes a whole datagram.
        a.send(b"dropped").unwrap();
        a.send(b"kept").unwrap();
        assert_eq!(b.recv(&mut []).unwrap(), 0);
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"kept");

        // A connected socket hears only its peer.
        let stranger = bind();
        stranger.send_to(b"stray", a.local_addr().unwrap()).unwrap();
        b.send(b"from b").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"from b");
    });
}

#[test]
fn unconnected_datagrams_carry_their_sender() {
    both(|_| {
        let (a, b) = (bind(), bind());
        b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut buf = [0u8; 64];
        assert_eq!(a.send_to(b"one", b_addr).unwrap(), 3);
        assert_eq!(b.peek_from(&mut buf).unwrap(), (3, a_addr));
        assert_eq!(b.recv_from(&mut buf).unwrap(), (3, a_addr));
        assert_eq!(&buf[..3], b"one");

        // Every std address form resolves; a string names the destination too.
        a.send_to(b"two", b_addr.to_string()).unwrap();
        a.send_to(b"three", (Ipv4Addr::LOCALHOST, b_addr.port()))
            .unwrap();
        a.send_to(b"four", &[b_addr][..]).unwrap();
        a.send_to(&[], b_addr).unwrap();
        for want in [&b"two"[..], b"three", b"four", b""] {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (want, a_addr));
        }

        // recv on an unconnected socket takes from anyone; send_to works when connected.
        a.send_to(b"five", b_addr).unwrap();
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        b.connect(a_addr).unwrap();
        let c = bind();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        b.send_to(b"six", c.local_addr().unwrap()).unwrap();
        assert_eq!(c.recv_from(&mut buf).unwrap(), (3, b_addr));
    });
}

#[test]
fn clones_share_the_socket_but_not_deadlines() {
    both(|_| {
        let (a, b) = pair();
        let a2 = a.try_clone().unwrap();
        assert_ne!(a2.as_raw_fd(), a.as_raw_fd());
        assert_eq!(a2.local_addr().unwrap(), a.local_addr().unwrap());
        let mut buf = [0u8; 16];
        a2.send(b"via clone").unwrap();
        assert_eq!(b.recv(&mut buf).unwrap(), 9);
        b.send(b"back").unwrap();
        assert_eq!(a2.recv(&mut buf).unwrap(), 4);

        a2.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&a2.recv(&mut buf).unwrap_err(), "read");
        b.send(b"still").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 5, "the original has no deadline");

        // Connecting one re-points both (the kernel socket is shared), and both say so.
        let c = bind();
        a.connect(c.local_addr().unwrap()).unwrap();
        assert_eq!(a2.peer_addr().unwrap(), c.local_addr().unwrap());
        let peer = c.local_addr().unwrap().to_string();
        assert!(format!("{a2:?}").contains(&peer), "{a2:?}");
        a2.set_read_deadline(None).unwrap();
        drop(a);
        c.send_to(b"to clone", a2.local_addr().unwrap()).unwrap();
        assert_eq!(
            a2.recv(&mut buf).unwrap(),
            8,
            "the dup outlives the original"
        );
    });
}

#[test]
fn read_timeout_fails_each_call_that_waits_too_long() {
    both(|_| {
        let s = bind();
        assert_eq!(s.read_timeout().unwrap(), None);
        assert_eq!(s.write_timeout().unwrap(), None);
        let t = Duration::from_millis(50);
        s.set_read_timeout(Some(t)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(t));
        let start = Instant::now();
        let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
        assert!(
            start.elapsed() >= t,
            "returned early: {:?}",
            start.elapsed()
        );
        assert_timeout(&err, "read");
        let local = s.local_addr().unwrap();
        assert_eq!(err.to_string(), format!("read udp {local}: i/o timeout"));
        // Each call gets the full timeout again.
        assert_timeout(&s.recv(&mut [0u8; 8]).unwrap_err(), "read");
        assert_timeout(&s.peek(&mut [0u8; 8]).unwrap_err(), "read");

        let zero = s.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            s.set_write_timeout(Some(Duration::ZERO))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(3)));
        s.set_read_timeout(None).unwrap();
        s.set_write_timeout(None).unwrap();
        assert_eq!(s.read_timeout().unwrap(), None);
        assert_eq!(s.write_timeout().unwrap(), None);
    });
}

#[test]
fn nonblocking_mode_returns_would_block() {
    both(|_| {
        let (a, b) = pair();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        for err in [
            a.recv(&mut buf).unwrap_err(),
            a.recv_from(&mut buf).unwrap_err(),
            a.peek(&mut buf).unwrap_err(),
            a.peek_from(&mut buf).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
            assert!(err.to_string().starts_with("read udp 127.0.0.1:"), "{err}");
        }
        b.send(b"ready").unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        let n = loop {
            match a.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < give_up => {
                    sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"ready");
        a.set_nonblocking(false).unwrap();
        b.send(b"parked").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 6);
    });
}

#[test]
fn passed_deadline_fails_until_cleared() {
    both(|_| {
        let (a, b) = pair();
        let b_addr = b.local_addr().unwrap();
        let mut buf = [0u8; 16];
        a.set_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&a.recv(&mut buf).unwrap_err(), "read");
        assert_timeout(&a.recv_from(&mut buf).unwrap_err(), "read");
        assert_timeout(&a.peek_from(&mut buf).unwrap_err(), "read");
        let err = a.send(b"x").unwrap_err();
        assert_timeout(&err, "write");
        let conn = format!("{}->{b_addr}", a.local_addr().unwrap());
        assert_eq!(err.to_string(), format!("write udp {conn}: i/o timeout"));
        assert_timeout(&a.send_to(b"x", b_addr).unwrap_err(), "write");
        // Still failing: a passed deadline is a state, not a one-shot event.
        assert_timeout(&a.recv(&mut buf).unwrap_err(), "read");

        a.set_read_deadline(None).unwrap();
        b.send(b"in").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 2);
        assert_timeout(&a.send(b"x").unwrap_err(), "write");
        a.set_write_deadline(None).unwrap();
        assert_eq!(a.send(b"out").unwrap(), 3);
        assert_eq!(b.recv(&mut buf).unwrap(), 3);

        // A deadline in the future lets calls through until it passes.
        a.set_deadline(Some(Instant::now() + Duration::from_secs(60)))
            .unwrap();
        b.send(b"early").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 5);
    });
}

#[test]
fn deadline_set_elsewhere_wakes_a_blocked_recv() {
    both(|mode| {
        let s = Arc::new(bind());
        // A guard: if the deadline failed to wake the reader, this timeout would, too late.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let deadline_set = Arc::new(AtomicBool::new(false));
        let (s2, set2) = (s.clone(), deadline_set.clone());
        let reader = mode.spawn(move || {
            let r = s2.recv_from(&mut [0u8; 8]);
            (r, set2.load(Ordering::SeqCst))
        });
        sleep(Duration::from_millis(50)); // let the reader block
        deadline_set.store(true, Ordering::SeqCst);
        let set_at = Instant::now();
        s.set_read_deadline(Some(set_at)).unwrap();
        let (r, was_set) = reader.join();
        let waited = set_at.elapsed();
        assert!(was_set, "recv returned before the deadline was set: {r:?}");
        assert!(
            waited < Duration::from_secs(10),
            "woken by the guard: {waited:?}"
        );
        assert_timeout(&r.unwrap_err(), "read");
        // The socket still works once the deadline is lifted.
        s.set_read_deadline(None).unwrap();
        bind().send_to(b"ok", s.local_addr().unwrap()).unwrap();
        assert_eq!(s.recv(&mut [0u8; 8]).unwrap(), 2);
    });
}

#[test]
fn close_unblocks_a_blocked_recv_from() {
    both(|mode| {
        let s = Arc::new(bind());
        // A guard: a reader that close failed to wake fails with a timeout, not a hang.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let local = s.local_addr().unwrap();
        let s2 = s.clone();
        let reader = mode.spawn(move || s2.recv_from(&mut [0u8; 8]));
        sleep(Duration::from_millis(50)); // let the reader block
        let closed_at = Instant::now();
        s.close().unwrap();
        let err = reader.join().unwrap_err();
        let waited = closed_at.elapsed();
        assert!(waited < Duration::from_secs(1), "took {waited:?}");
        assert_closed(&err);
        assert_eq!(
            err.to_string(),
            format!("read udp {local}: use of closed network connection")
        );
        // Everything after close fails the same way.
        assert_closed(&s.recv(&mut [0u8; 8]).unwrap_err());
        assert_closed(&s.send_to(b"x", local).unwrap_err());
        assert_closed(&s.set_read_timeout(None).unwrap_err());
        assert_closed(&s.set_deadline(None).unwrap_err());
        // ...but its address, as Go's LocalAddr: the one recorded at bind; an unconnected
        // socket has no peer to recall
        assert_eq!(s.local_addr().unwrap(), local);
        assert_closed(&s.peer_addr().unwrap_err());
        assert_closed(&s.ttl().unwrap_err());
        let again = s.close().unwrap_err();
        assert_closed(&again);
        assert!(again.to_string().starts_with("close udp "), "{again}");
    });
}

#[test]
fn icmp_refusal_is_connection_refused() {
    both(|_| {
        let s = bind();
        let dead = dead_addr();
        s.connect(dead).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.send(b"anyone?").unwrap();
        // The port-unreachable reply wakes the parked (or blocked) receiver with the error.
        let err = s.recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let local = s.local_addr().unwrap();
        assert_eq!(
            err.to_string(),
            format!("read udp {local}->{dead}: connection refused")
        );
        let op = op_error(&err);
        assert_eq!((op.op(), op.net()), ("read", "udp"));
        assert_eq!(op.addr(), Some(&Addr::Inet(dead)));

        // Unreported, the same refusal waits in SO_ERROR for take_error, which clears it.
        assert!(s.take_error().unwrap().is_none());
        s.send(b"again?").unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        let pending = loop {
            if let Some(e) = s.take_error().unwrap() {
                break e;
            }
            assert!(Instant::now() < give_up, "no ICMP error arrived");
            sleep(Duration::from_millis(2));
        };
        assert_eq!(pending.kind(), ErrorKind::ConnectionRefused);
        assert!(s.take_error().unwrap().is_none());
    });
}

#[test]
fn socket_options_round_trip() {
    both(|_| {
        let s = bind();
        s.set_ttl(42).unwrap();
        assert_eq!(s.ttl().unwrap(), 42);
        let err = s.set_ttl(256).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let local = s.local_addr().unwrap();
        assert_eq!(
            err.to_string(),
            format!("set udp {local}: invalid argument")
        );
        assert!(s.set_ttl(u32::MAX).is_err());
        assert_eq!(s.ttl().unwrap(), 42);

        assert!(s.broadcast().unwrap(), "on by default, as in Go");
        s.set_broadcast(false).unwrap();
        assert!(!s.broadcast().unwrap());

        assert!(s.multicast_loop_v4().unwrap());
        s.set_multicast_loop_v4(false).unwrap();
        assert!(!s.multicast_loop_v4().unwrap());
        assert_eq!(s.multicast_ttl_v4().unwrap(), 1);
        s.set_multicast_ttl_v4(8).unwrap();
        assert_eq!(s.multicast_ttl_v4().unwrap(), 8);

        s.set_recv_buffer_size(64 << 10).unwrap();
        assert!(s.recv_buffer_size().unwrap() >= 64 << 10);
        s.set_send_buffer_size(64 << 10).unwrap();
        assert!(s.send_buffer_size().unwrap() >= 64 << 10);

        match UdpSocket::bind("[::1]:0") {
            Ok(v6) => {
                assert!(v6.multicast_loop_v6().unwrap());
                v6.set_multicast_loop_v6(false).unwrap();
                assert!(!v6.multicast_loop_v6().unwrap());
                v6.set_ttl(7).unwrap();
                assert_eq!(v6.ttl().unwrap(), 7);
            }
            Err(e) => eprintln!("skipping IPv6 options: cannot bind [::1]: {e}"),
        }
    });
}

#[test]
fn multicast_v4_on_loopback() {
    both(|_| {
        let group = Ipv4Addr::new(239, 255, 70, 1);
        let any = Ipv4Addr::UNSPECIFIED;
        let rx = UdpSocket::bind("0.0.0.0:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let port = rx.local_addr().unwrap().port();

        let bad = rx
            .join_multicast_v4(&Ipv4Addr::LOCALHOST, &any)
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            bad.to_string(),
            format!("set udp 0.0.0.0:{port}: 127.0.0.1 is not a multicast address")
        );

        if let Err(e) = rx.join_multicast_v4(&group, &any) {
            eprintln!("skipping IPv4 multicast: the kernel refused to join {group}: {e}");
            return;
        }
        let tx = UdpSocket::bind("0.0.0.0:0").unwrap();
        assert!(
            tx.multicast_loop_v4().unwrap(),
            "loop is what delivers it here"
        );
        if let Err(e) = tx.send_to(b"to the group", (group, port)) {
            eprintln!("skipping IPv4 multicast: no route for {group}: {e}");
            return;
        }
        let mut buf = [0u8; 32];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to the group");
        assert_eq!(from.port(), tx.local_addr().unwrap().port());

        rx.leave_multicast_v4(&group, &any).unwrap();
        assert!(rx.leave_multicast_v4(&group, &any).is_err(), "left twice");
    });
}

#[test]
fn multicast_v6_on_loopback() {
    both(|_| {
        let group: Ipv6Addr = "ff02::7e57:1".parse().unwrap();
        let rx = match UdpSocket::bind("[::]:0") {
            Ok(s) => s,
            Err(e) => return eprintln!("skipping IPv6 multicast: cannot bind [::]: {e}"),
        };
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let bad = rx.join_multicast_v6(&Ipv6Addr::LOCALHOST, 0).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
        assert!(bad.to_string().ends_with("::1 is not a multicast address"));

        if let Err(e) = rx.join_multicast_v6(&group, 0) {
            return eprintln!("skipping IPv6 multicast: the kernel refused to join {group}: {e}");
        }
        let tx = UdpSocket::bind("[::]:0").unwrap();
        if let Err(e) = tx.send_to(b"six", (group, port)) {
            return eprintln!("skipping IPv6 multicast: no route for {group}: {e}");
        }
        let mut buf = [0u8; 8];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"six");
        assert_eq!(from.port(), tx.local_addr().unwrap().port());
        rx.leave_multicast_v6(&group, 0).unwrap();
        assert!(rx.leave_multicast_v6(&group, 0).is_err(), "left twice");
    });
}

#[test]
fn many_coroutines_and_threads_ping_pong() {
    const COROUTINES: usize = 50;
    const THREADS: usize = 4;
    const ROUNDS: usize = 20;
    let server = Arc::new(bind());
    let addr = server.local_addr().unwrap();
    // Two echo loops share one socket: receivers queue on its read lock.
    let echoes: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            coronet::go(move || {
                let mut buf = [0u8; 64];
                let mut echoed = 0;
                loop {
                    match server.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            server.send_to(&buf[..n], from).unwrap();
                            echoed += 1;
                        }
                        Err(e) => {
                            assert_closed(&e);
                            return echoed;
                        }
                    }
                }
            })
        })
        .collect();
    let client = move |name: String| {
        let c = bind();
        c.connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        for round in 0..ROUNDS {
            let msg = format!("{name} {round}");
            c.send(msg.as_bytes()).unwrap();
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], msg.as_bytes());
        }
    };
    let coroutines: Vec<_> = (0..COROUTINES)
        .map(|i| coronet::go(move || client(format!("coroutine {i}"))))
        .collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| std::thread::spawn(move || client(format!("thread {i}"))))
        .collect();
    for c in coroutines {
        c.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    server.close().unwrap();
    let echoed: usize = echoes.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(echoed, (COROUTINES + THREADS) * ROUNDS);
}

/// Whether `fd` has `O_NONBLOCK` set.
fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of `fd`, which the caller keeps open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn converts_to_and_from_std() {
    both(|_| {
        // std → coronet: the fd turns nonblocking and calls park instead.
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        assert!(!is_nonblocking(plain.as_raw_fd()));
        let s = UdpSocket::from(plain);
        assert!(is_nonblocking(s.as_raw_fd()));
        assert_eq!(s.local_addr().unwrap(), addr);
        assert_eq!(s.as_fd().as_raw_fd(), s.as_raw_fd());
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_timeout(&s.recv(&mut [0u8; 4]).unwrap_err(), "read");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bind().send_to(b"std", addr).unwrap();
        assert_eq!(s.recv(&mut [0u8; 4]).unwrap(), 3);

        // A connected std socket keeps its peer.
        let peer = bind();
        let connected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect(peer.local_addr().unwrap()).unwrap();
        let connected = UdpSocket::from(connected);
        assert_eq!(connected.peer_addr().unwrap(), peer.local_addr().unwrap());
        let shown = format!("peer: {}", peer.local_addr().unwrap());
        assert!(format!("{connected:?}").contains(&shown), "{connected:?}");

        // coronet → std: blocking again, and std's own calls work on it.
        let back = std::net::UdpSocket::from(s);
        assert!(!is_nonblocking(back.as_raw_fd()));
        assert_eq!(back.local_addr().unwrap(), addr);
        back.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        bind().send_to(b"back", addr).unwrap();
        assert_eq!(back.recv(&mut [0u8; 8]).unwrap(), 4);

        // Raw fd round trip: the number survives, and the socket still works.
        let s = UdpSocket::from(back);
        let raw = s.into_raw_fd();
        // SAFETY: `raw` came from `into_raw_fd`, which gave us sole ownership of the open fd.
        let s = unsafe { UdpSocket::from_raw_fd(raw) };
        assert_eq!(s.as_raw_fd(), raw);
        assert_eq!(s.local_addr().unwrap(), addr);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bind().send_to(b"raw", addr).unwrap();
        assert_eq!(s.recv(&mut [0u8; 8]).unwrap(), 3);
    });
}

#[test]
fn an_empty_host_binds_everywhere_and_sends_to_this_host_as_go_s_does() {
    both(|_| {
        let rx = UdpSocket::bind(":0").unwrap();
        let port = rx.local_addr().unwrap().port();
        assert_eq!(
            rx.local_addr().unwrap(),
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
        );
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // from an IPv4 socket, which passes over [::] for 0.0.0.0 (std would take the
        // first and fail), and from an IPv6 one
        let tx4 = bind();
        assert_eq!(tx4.send_to(b"v4", format!(":{port}")).unwrap(), 2);
        let tx6 = UdpSocket::bind("[::1]:0").unwrap();
        assert_eq!(tx6.send_to(b"v6", ("", port)).unwrap(), 2);
        let mut got = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 8];
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            got.push((buf[..n].to_vec(), from.port()));
        }
        got.sort();
        let (p4, p6) = (
            tx4.local_addr().unwrap().port(),
            tx6.local_addr().unwrap().port(),
        );
        assert_eq!(got, [(b"v4".to_vec(), p4), (b"v6".to_vec(), p6)]);
    });
}

#[test]
fn errors_read_like_go() {
    both(|_| {
        let bad = UdpSocket::bind("not an address").unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput, "{bad}");
        assert_eq!(
            bad.to_string(),
            "listen udp: address not an address: missing port in address"
        );

        let s = bind();
        let local = s.local_addr().unwrap();
        let in_use = UdpSocket::bind(local).unwrap_err();
        assert_eq!(in_use.kind(), ErrorKind::AddrInUse);
        assert_eq!(
            in_use.to_string(),
            format!("listen udp {local}: address already in use")
        );
        let op = op_error(&in_use);
        assert_eq!(
            (op.op(), op.net(), op.addr()),
            ("listen", "udp", Some(&Addr::Inet(local)))
        );

        let unconnected = s.send(b"x").unwrap_err();
        assert_eq!(
            unconnected.to_string(),
            format!("write udp {local}: destination address required")
        );

        // send_to names the destination it could not reach.
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let family = s.send_to(b"x", v6).unwrap_err();
        assert_eq!(
            family.to_string(),
            format!("write udp {local}->[::1]:9: address family not supported by protocol")
        );
        assert_eq!(op_error(&family).addr(), Some(&Addr::Inet(v6)));
        let port0 = s.send_to(b"x", "127.0.0.1:0").unwrap_err();
        assert_eq!(
            port0.to_string(),
            format!("write udp {local}->127.0.0.1:0: invalid argument")
        );
        let nowhere = s.send_to(b"x", &[][..]).unwrap_err();
        assert_eq!(nowhere.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            nowhere.to_string(),
            format!("write udp {local}: no addresses to send data to")
        );
        let garbage = s.send_to(b"x", "not an address").unwrap_err();
        assert_eq!(garbage.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            garbage.to_string(),
            format!("write udp {local}: address not an address: missing port in address")
        );

        let too_big = s.send_to(&vec![0u8; 70_000], dead_addr()).unwrap_err();
        assert!(
            too_big.to_string().ends_with(": message too long"),
            "{too_big}"
        );

        let dial = s.connect(v6).unwrap_err();
        assert_eq!(
            dial.to_string(),
            format!("dial udp {local}->[::1]:9: address family not supported by protocol")
        );
        assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    });
}

#[test]
fn owned_fd_round_trip() {
    use std::os::fd::OwnedFd;
    both(|mode| {
        let (a, b) = pair();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // A receive that waits first, so the socket is registered with the netpoller (in a
        // coroutine) before it is given away.
        let recv_after_a_pause = move |s: &UdpSocket, b: UdpSocket, msg: &'static [u8]| {
            let sender = mode.spawn(move || {
                sleep(Duration::from_millis(20));
                b.send(msg).unwrap();
                b
            });
            let mut buf = [0u8; 32];
            let n = s.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], msg);
            sender.join()
        };
        let b = recv_after_a_pause(&a, b, b"before");

        let fd: OwnedFd = a.into();
        // Given away as `into_raw_fd` gives it: open and still nonblocking.
        assert!(is_nonblocking(fd.as_raw_fd()));
        let a = UdpSocket::from(fd);
        assert_eq!(a.local_addr().unwrap(), a_addr);
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        // Adopted as `from_raw_fd` adopts: the timeout `pair` set is read back from the socket.
        assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_secs(10)));
        let b = recv_after_a_pause(&a, b, b"after");
        a.send(b"back").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"back");

        // A std socket through OwnedFd is adopted the same way.
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        let s = UdpSocket::from(OwnedFd::from(plain));
        assert!(is_nonblocking(s.as_raw_fd()));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bind().send_to(b"std", addr).unwrap();
        let (n, from) = s.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.ip()), (&b"std"[..], addr.ip()));

        // And an OwnedFd made from a coronet socket works as a std socket.
        let back = std::net::UdpSocket::from(OwnedFd::from(s));
        assert_eq!(back.local_addr().unwrap(), addr);
        bind().send_to(b"owned", addr).unwrap();
        back.set_nonblocking(false).unwrap();
        assert_eq!(back.recv(&mut buf).unwrap(), 5);
    });
}
