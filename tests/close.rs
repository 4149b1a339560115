//! `close(&self)`: Go's `Close`, which unblocks every call in flight on the object.
//!
//! The behaviours follow Go's close tests in `src/net/net_test.go` (BSD-style license, the
//! Go Authors) — TestConnClose, TestListenerClose, TestListenCloseListen,
//! TestCloseUnblocksRead and TestCloseError — rewritten for coronet, each from a
//! coroutine and from a plain thread. Tests that count the process's fds run alone
//! (`util::exclusive`); the others share (`util::shared`).

mod util;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};
use util::{assert_closed, both, listener_pair, pair};

/// How long a close may take to unblock a call: generous for a noisy 2-core machine.
const PROMPT: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn go_close_unblocks_a_blocked_read() {
    let _g = util::shared();
    both(|| {
        for thread in util::PLACES {
            let (c, _s) = pair();
            let c = Arc::new(c);
            let c2 = c.clone();
            let reader = util::spawn_on(thread, move || (&*c2).read(&mut [0u8; 8]));
            coronet::time::sleep(ms(50));
            let t = Instant::now();
            c.close().unwrap();
            let e = reader().unwrap_err();
            assert!(t.elapsed() < PROMPT, "{:?}", t.elapsed());
            assert_closed(&e);
            assert!(e.to_string().starts_with("read tcp 127.0.0.1:"), "{e}");
        }
    });
}

#[test]
fn close_unblocks_a_read_blocked_on_a_thread() {
    let _g = util::shared();
    // the reader is a plain thread, the closer a coroutine (and the other way round above)
    let (c, _s) = coronet::run(pair);
    let c = Arc::new(c);
    let c2 = c.clone();
    let reader = std::thread::spawn(move || (&*c2).read(&mut [0u8; 8]));
    std::thread::sleep(ms(50));
    let closer = coronet::go(move || {
        let t = Instant::now();
        c.close().unwrap();
        t
    });
    let t = closer.join().unwrap();
    assert_closed(&reader.join().unwrap().unwrap_err());
    assert!(t.elapsed() < PROMPT);
}

#[test]
fn close_unblocks_a_blocked_write() {
    let _g = util::shared();
    both(|| {
        for thread in util::PLACES {
            let (c, _s) = pair();
            let c = Arc::new(c);
            let c2 = c.clone();
            let writer = util::spawn_on(thread, move || {
                let big = vec![0u8; 32 << 20];
                let mut total = 0;
                loop {
                    match (&*c2).write(&big) {
                        Ok(n) => total += n,
                        Err(e) => return (total, e),
                    }
                }
            });
            // some bytes out, however late the writer started
            util::wait_until(Duration::from_secs(30), "the writer's first bytes", || {
                util::unsent(&*c) > 0
            });
            let t = Instant::now();
            c.close().unwrap();
            let (total, e) = writer();
            assert!(t.elapsed() < PROMPT);
            assert!(
                total > 0,
                "the first write should have sent part before blocking"
            );
            assert_closed(&e);
            assert!(e.to_string().starts_with("write tcp "), "{e}");
        }
    });
}

#[test]
fn close_unblocks_a_blocked_accept() {
    let _g = util::shared();
    both(|| {
        for thread in util::PLACES {
            // below the ephemeral range, so that no other test's `bind(..:0)` can take the
            // port between the close and the second bind
            let port = util::unused_port(false);
            let l = Arc::new(TcpListener::bind(("127.0.0.1", port)).unwrap());
            let addr = l.local_addr().unwrap();
            let l2 = l.clone();
            let acceptor = util::spawn_on(thread, move || l2.accept().map(|_| ()));
            coronet::time::sleep(ms(50));
            let t = Instant::now();
            l.close().unwrap();
            let e = acceptor().unwrap_err();
            assert!(t.elapsed() < PROMPT);
            assert_closed(&e);
            assert_eq!(
                e.to_string(),
                format!("accept tcp {addr}: use of closed network connection")
            );
            // the port is free again: Go's TestListenCloseListen
            let again = TcpListener::bind(addr).unwrap();
            assert_eq!(again.local_addr().unwrap(), addr);
        }
    });
}

/// A call blocked when `close` came fails, whatever arrives after `close` returned: bytes
/// the peer writes then, or a connection made then. Found by probing the API: a coroutine
/// parked in `read` or `accept` took the event of those bytes (or that connection) before
/// it ran, and returned `Ok` with them, in about half of 200 tries, because `close` does
/// not wait for the calls it wakes (Go's does). 50 rounds of each, the blocked call a
/// coroutine or a thread, `close` from either.
#[test]
fn a_call_woken_by_close_never_returns_what_came_after_it() {
    let _g = util::shared();
    both(|| {
        for thread in util::PLACES {
            for round in 0..50 {
                let (c, mut s) = pair();
                let c = Arc::new(c);
                let c2 = c.clone();
                let reader = util::spawn_on(thread, move || (&*c2).read(&mut [0u8; 8]));
                coronet::time::sleep(ms(2)); // parked, most rounds
                c.close().unwrap();
                let _ = s.write_all(b"late"); // may fail: the socket may be gone already
                match reader() {
                    Err(e) => assert_closed(&e),
                    Ok(n) => panic!("round {round}: a read woken by close returned {n} bytes"),
                }

                let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
                let addr = l.local_addr().unwrap();
                let l2 = l.clone();
                let acceptor = util::spawn_on(thread, move || l2.accept().map(|_| ()));
                coronet::time::sleep(ms(2));
                l.close().unwrap();
                let late = std::net::TcpStream::connect(addr); // refused, or accepted by no one
                match acceptor() {
                    Err(e) => assert_closed(&e),
                    Ok(()) => panic!(
                        "round {round}: an accept woken by close returned a connection \
                         (the late connect: {late:?})"
                    ),
                }
            }
        }
    });
}

/// When `close` returns, the socket is released, even with a call it woke still on its way
/// out: the port can be bound again at once. Found by probing the API: the bind failed with
/// "address already in use" right after a `close` that woke a blocked `accept` (4 of 4
/// tries) or `recv_from` (12–17 of 50), and the closed listener still completed handshakes.
/// `close` releases the socket itself, and waits for a plain thread it woke to leave
/// `poll(2)`, which holds the socket (without that wait, this fails in the thread case).
/// Ports from below the ephemeral range, so no other test's `bind(..:0)` can take them in
/// between.
#[test]
fn close_returns_with_the_socket_released() {
    let _g = util::shared();
    both(|| {
        for thread in util::PLACES {
            for _ in 0..20 {
                let port = util::unused_port(false);
                let l = Arc::new(TcpListener::bind(("127.0.0.1", port)).unwrap());
                let l2 = l.clone();
                let acceptor = util::spawn_on(thread, move || l2.accept().map(|_| ()));
                coronet::time::sleep(ms(2));
                l.close().unwrap();
                let again = TcpListener::bind(("127.0.0.1", port));
                assert!(again.is_ok(), "bind after close: {again:?}");
                assert_closed(&acceptor().unwrap_err());

                let port = util::unused_port(true);
                let u = Arc::new(coronet::net::UdpSocket::bind(("127.0.0.1", port)).unwrap());
                let u2 = u.clone();
                let receiver =
                    util::spawn_on(thread, move || u2.recv_from(&mut [0u8; 8]).map(|_| ()));
                coronet::time::sleep(ms(2));
                u.close().unwrap();
                let again = coronet::net::UdpSocket::bind(("127.0.0.1", port));
                assert!(again.is_ok(), "bind after close: {again:?}");
                assert_closed(&receiver().unwrap_err());
            }
        }
    });
}

#[test]
fn close_wakes_callers_queued_on_the_direction_lock() {
    let _g = util::shared();
    both(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                coronet::go(move || (&*c).read(&mut [0u8; 8]))
            })
            .collect();
        coronet::time::sleep(ms(50));
        c.close().unwrap();
        for r in readers {
            assert_closed(&r.join().unwrap().unwrap_err());
        }
    });
}

#[test]
fn go_later_calls_fail_as_closed() {
    // Go: TestCloseError — every call after Close reports ErrClosed, and so does a
    // second Close
    let _g = util::shared();
    both(|| {
        let (l, mut c, _s) = listener_pair();
        let local = c.local_addr().unwrap();
        let peer = c.peer_addr().unwrap();
        c.close().unwrap();
        // Go's conn.SetDeadline names only the local address
        assert_eq!(
            c.set_read_deadline(None).unwrap_err().to_string(),
            format!("set tcp {local}: use of closed network connection")
        );
        let mut b = [0u8; 4];
        // through `&mut` (no fd lock) and through `&` (the lock) alike
        assert_closed(&c.read(&mut b).unwrap_err());
        assert_closed(&c.write(b"x").unwrap_err());
        assert_closed(&(&c).read(&mut b).unwrap_err());
        assert_closed(&(&c).write(b"x").unwrap_err());
        let mut bufs = [std::io::IoSliceMut::new(&mut b)];
        assert_closed(&c.read_vectored(&mut bufs).unwrap_err());
        assert_closed(
            &c.write_vectored(&[std::io::IoSlice::new(b"x")])
                .unwrap_err(),
        );
        assert_closed(&c.peek(&mut b).unwrap_err());
        assert_closed(&c.close().unwrap_err());
        assert_closed(&c.set_deadline(None).unwrap_err());
        assert_closed(&c.set_read_timeout(None).unwrap_err());
        assert_closed(&c.set_nodelay(true).unwrap_err());
        // ...but the addresses, as Go's LocalAddr and RemoteAddr: the ones recorded
        assert_eq!(c.local_addr().unwrap(), local);
        assert_eq!(c.peer_addr().unwrap(), peer);
        assert_closed(&c.try_clone().unwrap_err());
        // Go's CloseRead and CloseWrite say "close"; its SetReadBuffer names only the
        // local address, its SetNoDelay both
        let e = c.shutdown(std::net::Shutdown::Both).unwrap_err();
        assert_closed(&e);
        assert_eq!(
            e.to_string(),
            format!("close tcp {local}->{peer}: use of closed network connection")
        );
        for e in [
            c.set_recv_buffer_size(1 << 16).unwrap_err(),
            c.set_send_buffer_size(1 << 16).unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                format!("set tcp {local}: use of closed network connection")
            );
        }
        assert_eq!(
            c.set_nodelay(true).unwrap_err().to_string(),
            format!("set tcp {local}->{peer}: use of closed network connection")
        );
        // the kind is NotConnected, and the message keeps the addresses
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
        let listening = l.local_addr().unwrap();
        l.close().unwrap();
        assert_eq!(l.local_addr().unwrap(), listening);
        assert_closed(&l.accept().unwrap_err());
        assert_closed(&l.close().unwrap_err());
        assert_closed(&l.set_deadline(None).unwrap_err());
    });
}

#[test]
fn close_releases_the_connection_peer_sees_eof() {
    let _g = util::shared();
    both(|| {
        let (c, mut s) = pair();
        c.close().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0, "close must send FIN now");
        // not at drop time: `c` is still alive here
        drop(c);
    });
}

#[test]
fn fd_number_stays_reserved_until_drop() {
    // A closed stream keeps its fd number (pointing at a dead placeholder) until it is
    // dropped, so a call that raced with close — or a BorrowedFd — never sees the number
    // reused for another socket.
    let _g = util::exclusive();
    both(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        let raw = c.as_raw_fd();
        let c2 = c.clone();
        let reader = coronet::go(move || (&*c2).read(&mut [0u8; 8]));
        coronet::time::sleep(ms(30));
        c.close().unwrap();
        // open sockets while the read is being unblocked: none may get the number
        let fresh: Vec<_> = (0..8).map(|_| pair()).collect();
        for (a, b) in &fresh {
            assert_ne!(a.as_raw_fd(), raw);
            assert_ne!(b.as_raw_fd(), raw);
        }
        assert_closed(&reader.join().unwrap().unwrap_err());
        assert!(
            util::fd_is_open(raw),
            "the number is held while the value lives"
        );
        assert_eq!(
            util::sockopt(&raw, libc::SOL_SOCKET, libc::SO_DOMAIN),
            libc::AF_UNIX,
            "the number points at a dead placeholder, not the old connection"
        );
        drop(c);
        drop(fresh);
    });
}

#[test]
fn stale_events_never_wake_the_wrong_reader() {
    // Close streams with parked readers, drop them so their fd numbers are free, then
    // open new connections (which reuse those numbers) with parked readers of their own.
    // Each reader must get exactly its own connection's bytes: a stale readiness event
    // for an old registration must neither wake nor feed a new one.
    let _g = util::exclusive();
    both(|| {
        const N: usize = 32;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut old = Vec::new();
        let mut old_readers = Vec::new();
        for _ in 0..N {
            let c = Arc::new(TcpStream::connect(addr).unwrap());
            let (s, _) = l.accept().unwrap();
            let c2 = c.clone();
            old_readers.push(coronet::go(move || (&*c2).read(&mut [0u8; 8])));
            old.push((c, s));
        }
        coronet::time::sleep(ms(30));
        let old_fds: Vec<_> = old.iter().map(|(c, _)| c.as_raw_fd()).collect();
        // make the old sockets readable *and* close them, so events are likely queued
        for (c, s) in &old {
            (&*s).write_all(b"stale").unwrap();
            c.close().unwrap();
        }
        for r in old_readers {
            match r.join().unwrap() {
                Err(e) => assert_closed(&e),
                Ok(n) => assert_eq!(n, 5, "a reader racing its close may take its own data"),
            }
        }
        drop(old);
        let mut reused = 0;
        let mut conns = Vec::new();
        let mut readers = Vec::new();
        for i in 0..N {
            let c = TcpStream::connect(addr).unwrap();
            reused += old_fds.contains(&c.as_raw_fd()) as usize;
            let (s, _) = l.accept().unwrap();
            let mut c = c;
            readers.push(coronet::go(move || {
                let mut b = [0u8; 8];
                c.read_exact(&mut b).unwrap();
                assert_eq!(u64::from_le_bytes(b), i as u64, "woke with another's data");
                c
            }));
            conns.push(s);
        }
        assert!(
            reused > 0,
            "no fd number was reused; the test proves nothing"
        );
        coronet::time::sleep(ms(30));
        // answer in reverse order so a wrong wake-up would find no data or the wrong data
        for (i, s) in conns.iter().enumerate().rev() {
            (&*s).write_all(&(i as u64).to_le_bytes()).unwrap();
        }
        for r in readers {
            r.join().unwrap();
        }
    });
}

#[test]
fn dropping_a_stream_leaves_its_clones_parked_reader_working() {
    let _g = util::shared();
    both(|| {
        let (c, mut s) = pair();
        let mut clone = c.try_clone().unwrap();
        let reader = coronet::go(move || {
            let mut b = [0u8; 5];
            clone.read_exact(&mut b).unwrap();
            (b, clone)
        });
        coronet::time::sleep(ms(30));
        drop(c); // the clone keeps the connection open
        coronet::time::sleep(ms(30));
        s.write_all(b"still").unwrap();
        let (b, clone) = reader.join().unwrap();
        assert_eq!(&b, b"still");
        // and the reverse: the original parked, the clone dropped
        let mut orig = clone;
        let dup = orig.try_clone().unwrap();
        let reader = coronet::go(move || {
            let mut b = [0u8; 4];
            orig.read_exact(&mut b).unwrap();
            b
        });
        coronet::time::sleep(ms(30));
        drop(dup);
        s.write_all(b"here").unwrap();
        assert_eq!(&reader.join().unwrap(), b"here");
    });
}

#[test]
fn closing_a_clone_does_not_close_the_original() {
    // close() is per handle, as Go's Close is per *net.TCPConn; the connection lives on
    // through the other handle.
    let _g = util::shared();
    both(|| {
        let (mut c, mut s) = pair();
        let clone = c.try_clone().unwrap();
        clone.close().unwrap();
        s.write_all(b"ok").unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ok");
        c.write_all(b"back").unwrap();
        s.read_exact(&mut [0u8; 4]).unwrap();
    });
}

#[test]
fn fd_count_returns_to_baseline() {
    let _g = util::exclusive();
    let base = util::fd_baseline();
    both(|| {
        for _ in 0..20 {
            let (l, c, s) = listener_pair();
            let c = Arc::new(c);
            let c2 = c.clone();
            let r = coronet::go(move || (&*c2).read(&mut [0u8; 4]));
            coronet::time::sleep(ms(2));
            c.close().unwrap();
            r.join().unwrap().unwrap_err();
            let _ = c.try_clone();
            let s2 = s.try_clone().unwrap();
            drop((s, s2, c));
            l.close().unwrap();
        }
    });
    util::assert_fd_baseline(base);
}

/// Calls racing `close` on another thread or worker either go before it or fail with the
/// closed error; none reports what the dead socket left under the number says. Found by a
/// probe of the API (2026-12-07), each within a few thousand rounds:
/// - a `UnixDatagram` receive returned `Ok(0)`, an empty datagram nobody sent (its
///   end-of-file check asked the placeholder);
/// - a `UnixDatagram::connect` to a stream listener's path connected the placeholder that
///   every closed socket shares, after which closed sockets' racing writes reached that
///   listener (and the connect could block a worker for good).
#[test]
fn calls_racing_close_never_answer_from_the_dead_socket() {
    let _g = util::shared();
    let dir = std::env::temp_dir().join(format!("coronet-race-close-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let stream_listener = std::os::unix::net::UnixListener::bind(&dir).unwrap();
    stream_listener.set_nonblocking(true).unwrap();
    for thread in util::PLACES {
        for round in 0..1500u64 {
            let (a, b) = coronet::net::UnixDatagram::pair().unwrap();
            let a = Arc::new(a);
            let (a2, path) = (a.clone(), dir.clone());
            let racer = util::spawn_on(thread, move || loop {
                // by the error's marker, as the crate recognises it, never by its text
                let closed = |e: &std::io::Error| util::op(e).is_closed();
                if round % 2 == 0 {
                    match a2.recv(&mut [0u8; 8]) {
                        Ok(0) => return Err("an empty datagram nobody sent".to_string()),
                        Ok(_) => {}
                        Err(e) if closed(&e) => return Ok(()),
                        Err(e) => return Err(e.to_string()),
                    }
                } else {
                    match a2.connect(&path) {
                        Err(e) if closed(&e) => return Ok(()),
                        // a datagram socket cannot connect to a stream listener
                        Err(e) if coronet::net::raw_os_error(&e) == Some(libc::EPROTOTYPE) => {}
                        r => return Err(format!("{r:?}")),
                    }
                }
            });
            // something to receive, all the time
            let feeder = std::thread::spawn(move || {
                while b.send(b"x").is_ok() {
                    std::thread::yield_now();
                }
            });
            std::thread::sleep(Duration::from_micros(round % 40 * 5));
            a.close().unwrap();
            let r = racer();
            drop(a);
            feeder.join().unwrap();
            assert_eq!(r, Ok(()), "round {round}, thread {thread}");
            assert!(
                stream_listener.accept().is_err(),
                "round {round}: a closed socket connected to the listener"
            );
        }
    }
    let _ = std::fs::remove_file(&dir);
}

/// Converting a closed socket into a std one hands over its number, which holds the
/// placeholder every closed number shares; the conversion leaves that as it was. A probe saw
/// it put the placeholder in blocking mode for every socket closed after it.
#[test]
fn converting_a_closed_socket_to_std_leaves_the_placeholder_alone() {
    let _g = util::shared();
    let (c, _s) = pair();
    c.close().unwrap();
    let converted: std::net::TcpStream = c.into();
    let mut b = [0u8; 4];
    // a connection that is over: its end, at once
    assert_eq!((&converted).read(&mut b).unwrap(), 0);
    drop(converted);
    let (d, _t) = pair();
    d.close().unwrap();
    assert!(
        util::is_nonblocking(&d),
        "the placeholder was made blocking"
    );
}
