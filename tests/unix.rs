//! `UnixListener`, `UnixStream` and `UnixDatagram` on real sockets. Every behaviour runs
//! twice: from a coroutine and from a plain OS thread (see `both`).

use coronet::net::{OpError, Shutdown, UnixDatagram, UnixListener, UnixSocketAddr, UnixStream};
use std::io::{self, ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd};
use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers

/// Where the code under test runs.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Coroutine,
    Thread,
}

/// Runs `body` once inside a coroutine and once on a plain OS thread.
fn both(body: fn(Mode)) {
    coronet::run(move || body(Mode::Coroutine));
    std::thread::spawn(move || body(Mode::Thread))
        .join()
        .unwrap();
}

/// A coroutine or a thread, as `mode` says.
enum Handle<T> {
    Co(coronet::JoinHandle<T>),
    Th(std::thread::JoinHandle<T>),
}

impl<T> Handle<T> {
    fn join(self) -> T {
        match self {
            Handle::Co(h) => h.join().unwrap(),
            Handle::Th(h) => h.join().unwrap(),
        }
    }
}

fn spawn<T: Send + 'static>(mode: Mode, f: impl FnOnce() -> T + Send + 'static) -> Handle<T> {
    match mode {
        Mode::Coroutine => Handle::Co(coronet::go(f)),
        Mode::Thread => Handle::Th(std::thread::spawn(f)),
    }
}

/// Runs `f` in a fresh coroutine and waits for it.
fn in_coroutine(f: impl FnOnce() + Send + 'static) {
    coronet::go(f).join().unwrap();
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("coronet-unix-{}-{tag}-{n}", std::process::id())
}

/// A socket path under the temp dir, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        let path = std::env::temp_dir().join(unique(tag) + ".sock");
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        // Ignored: some tests never create the file.
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

fn abstract_addr(tag: &str) -> UnixSocketAddr {
    UnixSocketAddr::from_abstract_name(unique(tag).as_bytes()).unwrap()
}

fn op(e: &io::Error) -> &OpError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<OpError>())
        .unwrap_or_else(|| panic!("no OpError in {e:?}"))
}

fn assert_timeout(e: &io::Error, prefix: &str) {
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(op(e).is_timeout(), "{e}");
    assert_eq!(e.to_string(), format!("{prefix}: i/o timeout"));
}

fn assert_closed(e: &io::Error, prefix: &str) {
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
    assert!(op(e).is_closed(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{prefix}: use of closed network connection")
    );
}

fn fd_flags(fd: impl AsFd) -> (bool, bool) {
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: `raw` is open while `fd` is borrowed; F_GETFL/F_GETFD take no pointers.
    let (fl, fdfl) = unsafe {
        (
            libc::fcntl(raw, libc::F_GETFL),
            libc::fcntl(raw, libc::F_GETFD),
        )
    };
    assert!(fl >= 0 && fdfl >= 0);
    (fl & libc::O_NONBLOCK != 0, fdfl & libc::FD_CLOEXEC != 0)
}

/// Echoes everything on `s` until EOF.
fn echo(mut s: UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => s.write_all(&buf[..n]).unwrap(),
        }
    }
}

fn ping(c: &mut UnixStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

// ---------------------------------------------------------------------------------------
// Streams

#[test]
fn echo_over_a_path_socket() {
    both(|mode| {
        let path = TempPath::new("echo");
        let l = UnixListener::bind(&path).unwrap();
        assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_ref()));
        let server = spawn(mode, move || {
            for _ in 0..3 {
                let (s, peer) = l.accept().unwrap();
                assert!(peer.is_unnamed());
                assert_eq!(
                    s.local_addr().unwrap().as_pathname(),
                    l.local_addr().unwrap().as_pathname()
                );
                coronet::go(move || echo(s));
            }
        });
        let clients: Vec<_> = (0..3)
            .map(|i| {
                let p = path.0.clone();
                spawn(mode, move || {
                    let mut c = UnixStream::connect(&p).unwrap();
                    assert!(c.local_addr().unwrap().is_unnamed());
                    assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
                    for j in 0..50 {
                        ping(&mut c, format!("hello {i} {j}").as_bytes());
                    }
                })
            })
            .collect();
        for c in clients {
            c.join();
        }
        server.join();
        assert!(path.0.exists(), "the socket file stays, as with std");
    });
}

#[test]
fn echo_over_an_abstract_name() {
    both(|mode| {
        let addr = abstract_addr("abs");
        let l = UnixListener::bind_addr(&addr).unwrap();
        let local = l.local_addr().unwrap();
        assert_eq!(local.as_abstract_name(), addr.as_abstract_name());
        let server = spawn(mode, move || {
            let (s, _) = l.accept().unwrap();
            echo(s);
        });
        let mut c = UnixStream::connect_addr(&addr).unwrap();
        assert_eq!(
            c.peer_addr().unwrap().as_abstract_name(),
            addr.as_abstract_name()
        );
        ping(&mut c, b"abstract");
        drop(c);
        server.join();
    });
}

#[test]
fn incoming_and_into_iter_yield_connections() {
    both(|mode| {
        let path = TempPath::new("incoming");
        let l = UnixListener::bind(&path).unwrap();
        let p = path.0.clone();
        let server = spawn(mode, move || {
            let mut got = 0;
            for s in l.incoming().take(2) {
                let mut s = s.unwrap();
                s.write_all(b"i").unwrap();
                got += 1;
            }
            for s in (&l).into_iter().take(1) {
                s.unwrap().write_all(b"j").unwrap();
                got += 1;
            }
            got
        });
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut c = UnixStream::connect(&p).unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            seen.push(b[0]);
        }
        assert_eq!(server.join(), 3);
        assert_eq!(seen, b"iij");
    });
}

#[test]
fn pair_reads_writes_peeks_and_shuts_down() {
    both(|_| {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(a.peer_addr().unwrap().is_unnamed());
        a.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(b.peek(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"ping");
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");

        // vectored both ways, through `&UnixStream`
        let n = (&b)
            .write_vectored(&[IoSlice::new(b"abc"), IoSlice::new(b"defgh")])
            .unwrap();
        assert_eq!(n, 8);
        let (mut x, mut y) = ([0u8; 3], [0u8; 5]);
        let mut got = 0;
        while got < 8 {
            let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
            let mut bufs: &mut [IoSliceMut<'_>] = &mut bufs;
            IoSliceMut::advance_slices(&mut bufs, got);
            got += (&a).read_vectored(bufs).unwrap();
        }
        assert_eq!((&x, &y), (b"abc", b"defgh"));

        assert_eq!(a.read(&mut []).unwrap(), 0, "an empty read returns at once");
        assert_eq!(a.write(&[]).unwrap(), 0);
        a.flush().unwrap();

        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            b.read(&mut buf).unwrap(),
            0,
            "EOF after the peer's shutdown"
        );
        b.write_all(b"still").unwrap();
        let mut five = [0u8; 5];
        a.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"still");
    });
}

#[test]
fn multi_megabyte_transfer_arrives_intact() {
    fn byte(i: usize) -> u8 {
        (i ^ (i >> 7) ^ (i >> 15)).wrapping_mul(31) as u8
    }
    const LEN: usize = 4 << 20;
    both(|mode| {
        let path = TempPath::new("bulk");
        let l = UnixListener::bind(&path).unwrap();
        let writer = spawn(mode, move || {
            let (mut s, _) = l.accept().unwrap();
            let data: Vec<u8> = (0..LEN).map(byte).collect();
            // one big whole-buffer write, then many small ones
            assert_eq!(s.write(&data[..LEN / 2]).unwrap(), LEN / 2);
            for chunk in data[LEN / 2..].chunks(10_007) {
                s.write_all(chunk).unwrap();
            }
        });
        let mut c = UnixStream::connect(&path).unwrap();
        let mut got = Vec::with_capacity(LEN);
        c.read_to_end(&mut got).unwrap();
        writer.join();
        assert_eq!(got.len(), LEN);
        let bad = got.iter().enumerate().position(|(i, &b)| b != byte(i));
        assert_eq!(bad, None, "first corrupt byte");
    });
}

#[test]
fn concurrent_framed_writers_never_interleave() {
    const FRAME: usize = 64 << 10;
    const WRITERS: u8 = 8;
    const FRAMES: usize = 8;
    both(|mode| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                let a = a.clone();
                spawn(mode, move || {
                    let frame = vec![id; FRAME];
                    for _ in 0..FRAMES {
                        // one call, one frame: a write is whole-buffer
                        assert_eq!((&*a).write(&frame).unwrap(), FRAME);
                    }
                })
            })
            .collect();
        let mut counts = [0usize; WRITERS as usize];
        let mut frame = vec![0u8; FRAME];
        for _ in 0..WRITERS as usize * FRAMES {
            b.read_exact(&mut frame).unwrap();
            let id = frame[0];
            assert!(
                frame.iter().all(|&x| x == id),
                "a frame of {id} has foreign bytes"
            );
            counts[id as usize] += 1;
        }
        for w in writers {
            w.join();
        }
        assert_eq!(counts, [FRAMES; WRITERS as usize]);
    });
}

#[test]
fn try_clone_take_error_and_debug() {
    both(|_| {
        let path = TempPath::new("clone");
        let l = UnixListener::bind(&path).unwrap();
        let l2 = l.try_clone().unwrap();
        assert!(l.take_error().unwrap().is_none());
        let mut c = UnixStream::connect(&path).unwrap();
        let (s, _) = l2.accept().unwrap();
        let s2 = s.try_clone().unwrap();
        (&s2).write_all(b"from the clone").unwrap();
        let mut buf = [0u8; 14];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"from the clone");
        assert!(s.take_error().unwrap().is_none());
        let dbg = format!("{c:?}");
        assert!(dbg.starts_with("UnixStream { addr: @, peer: "), "{dbg}");
        assert!(dbg.contains(&format!("fd: {}", c.as_raw_fd())), "{dbg}");
        let dbg = format!("{l:?}");
        assert!(dbg.contains(&path.0.display().to_string()), "{dbg}");

        let (d, e) = UnixDatagram::pair().unwrap();
        let d2 = d.try_clone().unwrap();
        d2.send(b"dg").unwrap();
        assert_eq!(e.recv(&mut buf).unwrap(), 2);
        assert!(d.take_error().unwrap().is_none());
        assert!(format!("{d:?}").starts_with("UnixDatagram {"));
    });
}

/// A receive that starts in nonblocking mode on a datagram socket whose read side is shut
/// down, while another thread switches the socket back to blocking: the call must end (with
/// the end of data, or `WouldBlock`), not retry `EAGAIN` forever with the mode it read first
/// (review of the ninth audit: it spun on a thread, and parked for good in a coroutine).
#[test]
fn datagram_receive_sees_a_mode_switch_made_during_the_call() {
    for round in 0..200 {
        let (d, _peer) = UnixDatagram::pair().unwrap();
        d.shutdown(Shutdown::Read).unwrap();
        d.set_nonblocking(true).unwrap();
        let d = Arc::new(d);
        let (started, started_rx) = std::sync::mpsc::channel();
        let (done, done_rx) = std::sync::mpsc::channel();
        let reader = {
            let d = d.clone();
            std::thread::spawn(move || {
                let mut tries = 0u32;
                loop {
                    match d.recv(&mut [0u8; 4]) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            tries += 1;
                            if tries == 100 {
                                started.send(()).unwrap();
                            }
                        }
                        Ok(0) => break,
                        r => panic!("{r:?}"),
                    }
                }
                done.send(()).unwrap();
            })
        };
        started_rx.recv().unwrap();
        d.set_nonblocking(false).unwrap();
        assert!(
            done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "round {round}: the receive never ended after the switch to blocking mode"
        );
        reader.join().unwrap();
    }
}

#[test]
fn nonblocking_mode_returns_would_block() {
    both(|_| {
        let path = TempPath::new("nonblock");
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        assert_eq!(
            (&a).read(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        (&b).write_all(b"x").unwrap();
        a.set_nonblocking(false).unwrap();
        assert_eq!((&a).read(&mut [0u8; 4]).unwrap(), 1);
        let (d, _e) = UnixDatagram::pair().unwrap();
        d.set_nonblocking(true).unwrap();
        assert_eq!(
            d.recv(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // With its read side shut down, too, the kernel says EAGAIN and std passes it on;
        // only a receive that would wait takes that for the end (differential test
        // against std: it returned Ok(0) here).
        d.shutdown(Shutdown::Read).unwrap();
        assert_eq!(
            d.recv(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert_eq!(
            d.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        d.set_nonblocking(false).unwrap();
        assert_eq!(d.recv(&mut [0u8; 4]).unwrap(), 0);
        // and an empty write after shutdown(Write) is a broken pipe, as std's
        a.shutdown(Shutdown::Write).unwrap();
        let e = (&a).write(&[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    });
}

// ---------------------------------------------------------------------------------------
// Datagrams

#[test]
fn datagrams_carry_their_senders_address() {
    both(|_| {
        let (sp, cp) = (TempPath::new("dg-server"), TempPath::new("dg-client"));
        let server = UnixDatagram::bind(&sp).unwrap();
        let client = UnixDatagram::bind(&cp).unwrap();
        assert_eq!(
            server.local_addr().unwrap().as_pathname(),
            Some(sp.as_ref())
        );
        assert_eq!(client.send_to(b"first", &sp).unwrap(), 5);
        assert_eq!(client.send_to(b"second!", &sp).unwrap(), 7);

        let mut buf = [0u8; 32];
        let (n, from) = server.peek_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from.as_pathname()),
            (&b"first"[..], Some(cp.as_ref()))
        );
        assert_eq!(server.peek(&mut buf).unwrap(), 5, "peek leaves it queued");
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from.as_pathname()),
            (&b"first"[..], Some(cp.as_ref()))
        );
        // a short buffer cuts the datagram; the rest is gone
        let mut three = [0u8; 3];
        assert_eq!(server.recv(&mut three).unwrap(), 3);
        assert_eq!(&three, b"sec");

        // replies: to a path and to std's address
        server.send_to(b"re1", from.as_pathname().unwrap()).unwrap();
        server.send_to_addr(b"re2", &from).unwrap();
        for want in [&b"re1"[..], b"re2"] {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], want);
            assert_eq!(from.as_pathname(), Some(sp.as_ref()));
        }

        // an unbound sender is unnamed
        let anon = UnixDatagram::unbound().unwrap();
        assert!(anon.local_addr().unwrap().is_unnamed());
        anon.send_to(b"anon", &sp).unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());

        // connected: send/recv and peer_addr
        client.connect(&sp).unwrap();
        assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(sp.as_ref()));
        client.send(b"connected").unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from.as_pathname()),
            (&b"connected"[..], Some(cp.as_ref()))
        );
    });
}

#[test]
fn datagrams_over_abstract_names() {
    both(|_| {
        let (sa, ca) = (abstract_addr("dg-s"), abstract_addr("dg-c"));
        let server = UnixDatagram::bind_addr(&sa).unwrap();
        let client = UnixDatagram::bind_addr(&ca).unwrap();
        client.send_to_addr(b"hi", &sa).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(from.as_abstract_name(), ca.as_abstract_name());
        server.connect_addr(&from).unwrap();
        server.send(b"back").unwrap();
        assert_eq!(client.recv(&mut buf).unwrap(), 4);
        assert_eq!(
            server.peer_addr().unwrap().as_abstract_name(),
            ca.as_abstract_name()
        );
    });
}

#[test]
fn many_datagrams_park_the_sender_until_the_reader_drains() {
    // Far more datagrams than the receive queue holds (net.unix.max_dgram_qlen, 10 by
    // default): the sender must park until the reader drains, never fail with EAGAIN.
    const COUNT: u32 = 2000;
    both(|mode| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let reader = spawn(mode, move || {
            let mut buf = [0u8; 2048];
            for i in 0..COUNT {
                let n = b.recv(&mut buf).unwrap();
                assert_eq!(n, 1024);
                assert_eq!(&buf[..4], &i.to_le_bytes(), "datagrams stay in order");
            }
        });
        let mut msg = [7u8; 1024];
        for i in 0..COUNT {
            msg[..4].copy_from_slice(&i.to_le_bytes());
            assert_eq!(a.send(&msg).unwrap(), 1024);
        }
        reader.join();
    });
}

#[test]
fn datagram_shutdown_read_ends_a_blocked_recv() {
    both(|mode| {
        let (a, _b) = UnixDatagram::pair().unwrap();
        let a = Arc::new(a);
        let a2 = a.clone();
        let r = spawn(mode, move || a2.recv(&mut [0u8; 8]));
        coronet::time::sleep(Duration::from_millis(50));
        a.shutdown(Shutdown::Read).unwrap();
        assert_eq!(r.join().unwrap(), 0);
    });
}

// ---------------------------------------------------------------------------------------
// Deadlines, timeouts, close

#[test]
fn deadline_set_by_another_coroutine_wakes_a_blocked_read() {
    both(|mode| {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let a2 = a.clone();
        let reader = spawn(mode, move || (&*a2).read(&mut [0u8; 8]).unwrap_err());
        let a3 = a.clone();
        in_coroutine(move || {
            coronet::time::sleep(Duration::from_millis(50));
            let at = Instant::now() + Duration::from_millis(20);
            a3.set_read_deadline(Some(at)).unwrap();
        });
        assert_timeout(&reader.join(), "read unix @->@");
        // the deadline stays until changed...
        assert_timeout(&(&*a).read(&mut [0u8; 8]).unwrap_err(), "read unix @->@");
        // ...and clearing it makes reads work again
        a.set_read_deadline(None).unwrap();
        (&b).write_all(b"ok").unwrap();
        assert_eq!((&*a).read(&mut [0u8; 8]).unwrap(), 2);

        // A write blocked on a full buffer (nobody reads `b`) is hit by a deadline set once
        // bytes have gone out: it reports what it sent, and the next write the timeout.
        let a2 = a.clone();
        let writer = spawn(mode, move || {
            let big = vec![1u8; 16 << 20];
            ((&*a2).write(&big), (&*a2).write(&big))
        });
        let (a3, peeker) = (a.clone(), b.try_clone().unwrap());
        in_coroutine(move || {
            peeker.set_nonblocking(true).unwrap();
            while peeker.peek(&mut [0u8; 1]).is_err() {
                coronet::time::sleep(Duration::from_millis(5));
            }
            // set_deadline covers both directions
            a3.set_deadline(Some(Instant::now() + Duration::from_millis(20)))
                .unwrap();
        });
        let (first, second) = writer.join();
        let n = first.unwrap();
        assert!(n > 0 && n < 16 << 20, "partial write reports {n} bytes");
        assert_timeout(&second.unwrap_err(), "write unix @->@");
        assert_timeout(&(&*a).read(&mut [0u8; 8]).unwrap_err(), "read unix @->@");
        a.set_write_deadline(None).unwrap();
        a.set_read_deadline(None).unwrap();
        drop(b);
    });
}

#[test]
fn deadlines_bound_accept_and_recv() {
    both(|mode| {
        let path = TempPath::new("deadline");
        let l = Arc::new(UnixListener::bind(&path).unwrap());
        let l2 = l.clone();
        let acceptor = spawn(mode, move || l2.accept().unwrap_err());
        let (d, _e) = UnixDatagram::pair().unwrap();
        let d = Arc::new(d);
        let d2 = d.clone();
        let receiver = spawn(mode, move || d2.recv(&mut [0u8; 8]).unwrap_err());
        let (l3, d3) = (l.clone(), d.clone());
        in_coroutine(move || {
            coronet::time::sleep(Duration::from_millis(50));
            let at = Some(Instant::now() + Duration::from_millis(20));
            l3.set_deadline(at).unwrap();
            d3.set_read_deadline(at).unwrap();
        });
        let where_ = format!("accept unix {}", path.0.display());
        assert_timeout(&acceptor.join(), &where_);
        assert_timeout(&receiver.join(), "read unixgram @->@");

        d.set_read_deadline(None).unwrap();
        d.set_write_deadline(Some(Instant::now() - Duration::from_millis(1)))
            .unwrap();
        assert_timeout(&d.send(b"x").unwrap_err(), "write unixgram @->@");
        d.set_deadline(None).unwrap();
        d.send(b"x").unwrap();
    });
}

#[test]
fn std_timeouts_bound_each_call() {
    both(|_| {
        let (a, _b) = UnixStream::pair().unwrap();
        let zero = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
        assert!(a.set_write_timeout(Some(Duration::ZERO)).is_err());
        let t = Duration::from_millis(30);
        a.set_read_timeout(Some(t)).unwrap();
        a.set_write_timeout(Some(t)).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(t));
        assert_eq!(a.write_timeout().unwrap(), Some(t));
        let started = Instant::now();
        assert_timeout(&(&a).read(&mut [0u8; 4]).unwrap_err(), "read unix @->@");
        assert!(started.elapsed() >= t);
        a.set_read_timeout(None).unwrap();
        assert_eq!(a.read_timeout().unwrap(), None);

        // the write timeout: a write that fills the buffer reports what went out, the
        // next one (nothing can go out) the timeout
        let big = vec![3u8; 16 << 20];
        let n = (&a).write(&big).unwrap();
        assert!(n > 0 && n < big.len(), "partial write reports {n} bytes");
        assert_timeout(&(&a).write(&big).unwrap_err(), "write unix @->@");
        a.set_write_timeout(None).unwrap();
        assert_eq!(a.write_timeout().unwrap(), None);

        // a write deadline already passed fails at once; clearing it lets writes through
        let (c, mut e) = UnixStream::pair().unwrap();
        c.set_write_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&(&c).write(b"late").unwrap_err(), "write unix @->@");
        c.set_write_deadline(None).unwrap();
        (&c).write_all(b"on time").unwrap();
        let mut got = [0u8; 7];
        e.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"on time");

        let (d, _e) = UnixDatagram::pair().unwrap();
        assert!(d.set_read_timeout(Some(Duration::ZERO)).is_err());
        d.set_read_timeout(Some(t)).unwrap();
        d.set_write_timeout(Some(t)).unwrap();
        assert_eq!(
            (d.read_timeout().unwrap(), d.write_timeout().unwrap()),
            (Some(t), Some(t))
        );
        assert_timeout(&d.recv(&mut [0u8; 4]).unwrap_err(), "read unixgram @->@");
        d.set_write_timeout(None).unwrap();
        assert_eq!(d.write_timeout().unwrap(), None);
    });
}

#[test]
fn close_unblocks_read_accept_and_recv_within_a_second() {
    both(|mode| {
        let path = TempPath::new("close");
        let l = Arc::new(UnixListener::bind(&path).unwrap());
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let (d, _e) = UnixDatagram::pair().unwrap();
        let d = Arc::new(d);

        let l2 = l.clone();
        let acceptor = spawn(mode, move || l2.accept().unwrap_err());
        let a2 = a.clone();
        let reader = spawn(mode, move || (&*a2).read(&mut [0u8; 8]).unwrap_err());
        let d2 = d.clone();
        let receiver = spawn(mode, move || d2.recv(&mut [0u8; 8]).unwrap_err());

        let (l3, a3, d3) = (l.clone(), a.clone(), d.clone());
        let closed_at = coronet::go(move || {
            coronet::time::sleep(Duration::from_millis(50));
            let t = Instant::now();
            l3.close().unwrap();
            a3.close().unwrap();
            d3.close().unwrap();
            t
        })
        .join()
        .unwrap();

        assert_closed(
            &acceptor.join(),
            &format!("accept unix {}", path.0.display()),
        );
        assert_closed(&reader.join(), "read unix @->@");
        assert_closed(&receiver.join(), "read unixgram @->@");
        assert!(closed_at.elapsed() < Duration::from_secs(1));

        // later calls fail the same way, and a second close is an error too
        assert_closed(&(&*a).write(b"x").unwrap_err(), "write unix @->@");
        assert_closed(&a.close().unwrap_err(), "close unix @->@");
        assert_closed(
            &l.accept().unwrap_err(),
            &format!("accept unix {}", path.0.display()),
        );
        assert_closed(&d.send(b"x").unwrap_err(), "write unixgram @->@");
        // close released the connection: the peer sees EOF while `a` still lives
        assert_eq!(b.read(&mut [0u8; 8]).unwrap(), 0);
        // the addresses stay the recorded ones, as Go's LocalAddr and RemoteAddr
        assert_eq!(
            l.local_addr().unwrap().as_pathname(),
            Some(path.0.as_path())
        );
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(a.peer_addr().unwrap().is_unnamed());
    });
}

/// A dial through a symlinked directory reaches the listener's own path, and that is the
/// peer the stream records (as Go records the kernel's answer): `peer_addr` says the same
/// before and after `close`, for streams and datagram sockets.
#[test]
fn the_peer_recorded_is_the_path_the_kernel_reached() {
    both(|_| {
        let dir = std::env::temp_dir().join(unique("symlinked"));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("link")).unwrap();
        // `peer_addr` of the connected socket, then again after `close`
        let same_before_and_after_close = |peer: &dyn Fn() -> io::Result<UnixSocketAddr>,
                                           close: &dyn Fn() -> io::Result<()>,
                                           name: &str| {
            let reached = real.join(name);
            assert_eq!(peer().unwrap().as_pathname(), Some(reached.as_path()));
            close().unwrap();
            assert_eq!(peer().unwrap().as_pathname(), Some(reached.as_path()));
        };
        let l = UnixListener::bind(real.join("s.sock")).unwrap();
        let c = UnixStream::connect(dir.join("link").join("s.sock")).unwrap();
        same_before_and_after_close(&|| c.peer_addr(), &|| c.close(), "s.sock");
        drop(l);

        let d = UnixDatagram::bind(real.join("d.sock")).unwrap();
        let u = UnixDatagram::unbound().unwrap();
        u.connect(dir.join("link").join("d.sock")).unwrap();
        same_before_and_after_close(&|| u.peer_addr(), &|| u.close(), "d.sock");
        drop(d);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn a_closed_stream_keeps_its_listeners_path_as_its_address() {
    both(|_| {
        let path = TempPath::new("closed-names");
        let l = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        let (s, _) = l.accept().unwrap();
        c.close().unwrap();
        s.close().unwrap();
        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.0.as_path()));
        assert!(c.local_addr().unwrap().is_unnamed());
        assert_eq!(
            s.local_addr().unwrap().as_pathname(),
            Some(path.0.as_path())
        );
    });
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn dial_errors_read_like_go() {
    both(|_| {
        let missing = TempPath::new("missing");
        let e = UnixStream::connect(&missing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let shown = missing.0.display();
        assert_eq!(
            e.to_string(),
            format!("dial unix {shown}: no such file or directory")
        );
        assert_eq!((op(&e).op(), op(&e).net()), ("dial", "unix"));

        // the file of a listener that is gone: nobody accepts
        let stale = TempPath::new("stale");
        drop(UnixListener::bind(&stale).unwrap());
        let e = UnixStream::connect(&stale).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        let shown = stale.0.display();
        assert_eq!(
            e.to_string(),
            format!("dial unix {shown}: connection refused")
        );

        // and binding over it again is "in use", as with std
        let e = UnixListener::bind(&stale).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        assert_eq!(
            e.to_string(),
            format!("listen unix {shown}: address already in use")
        );
        let e = UnixDatagram::bind(&stale).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("listen unixgram {shown}: address already in use")
        );

        let abs = abstract_addr("nobody");
        let e = UnixStream::connect_addr(&abs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        let name = String::from_utf8(abs.as_abstract_name().unwrap().to_vec()).unwrap();
        assert_eq!(
            e.to_string(),
            format!("dial unix @{name}: connection refused")
        );
    });
}

#[test]
fn too_long_and_nul_paths_are_invalid_input() {
    both(|_| {
        let long = std::env::temp_dir().join("x".repeat(200));
        let shown = long.display();
        let why = "unix socket path must be shorter than 108 bytes";
        let e = UnixStream::connect(&long).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), format!("dial unix {shown}: {why}"));
        let e = UnixListener::bind(&long).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), format!("listen unix {shown}: {why}"));
        let e = UnixDatagram::bind(&long).unwrap_err();
        assert_eq!(e.to_string(), format!("listen unixgram {shown}: {why}"));
        let d = UnixDatagram::unbound().unwrap();
        let e = d.send_to(b"x", &long).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), format!("write unixgram @->{shown}: {why}"));
        let e = d.connect(&long).unwrap_err();
        assert_eq!(e.to_string(), format!("dial unixgram @->{shown}: {why}"));

        let e = UnixStream::connect("a\0b").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string().ends_with("must not contain a NUL byte"),
            "{e}"
        );
        assert!(!long.exists());
    });
}

#[test]
fn datagram_errors_read_like_go() {
    both(|_| {
        let d = UnixDatagram::unbound().unwrap();
        let e = d.send(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        assert_eq!(
            e.to_string(),
            "write unixgram @: transport endpoint is not connected"
        );
        assert_eq!(d.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);

        let missing = TempPath::new("dg-missing");
        let shown = missing.0.display();
        let e = d.send_to(b"x", &missing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!("write unixgram @->{shown}: no such file or directory")
        );
        let e = d.connect(&missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("dial unixgram @->{shown}: no such file or directory")
        );

        // A connected socket's errors name its peer (found by an audit: the peer was not
        // recorded), and so do its clones'.
        let gone = TempPath::new("dg-gone");
        let server = UnixDatagram::bind(&gone).unwrap();
        d.connect(&gone).unwrap();
        let clone = d.try_clone().unwrap();
        drop(server);
        let shown = gone.0.display();
        let e = clone.send(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(
            e.to_string(),
            format!("write unixgram @->{shown}: connection refused")
        );
        assert!(
            format!("{d:?}").contains(&format!("peer: {shown}")),
            "{d:?}"
        );
        // a second connect, on either handle, re-points both
        let other = TempPath::new("dg-other");
        let server = UnixDatagram::bind(&other).unwrap();
        clone.connect(&other).unwrap();
        assert_eq!(d.send(b"y").unwrap(), 1);
        assert_eq!(server.recv(&mut [0u8; 4]).unwrap(), 1);
        let shown = other.0.display();
        assert!(
            format!("{d:?}").contains(&format!("peer: {shown}")),
            "{d:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Conversions

#[test]
fn new_sockets_are_nonblocking_and_cloexec() {
    both(|_| {
        let path = TempPath::new("flags");
        let l = UnixListener::bind(&path).unwrap();
        let c = UnixStream::connect(&path).unwrap();
        let (s, _) = l.accept().unwrap();
        let (p, q) = UnixStream::pair().unwrap();
        let (dp, _) = UnixDatagram::pair().unwrap();
        let u = UnixDatagram::unbound().unwrap();
        let fds = [
            l.as_fd(),
            c.as_fd(),
            s.as_fd(),
            p.as_fd(),
            q.as_fd(),
            dp.as_fd(),
            u.as_fd(),
        ];
        for fd in fds {
            assert_eq!(fd_flags(fd), (true, true));
        }
    });
}

#[test]
fn converts_to_and_from_std() {
    both(|mode| {
        // std → coronet: adopted and made nonblocking, then parks like any other
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from(sa);
        assert_eq!(fd_flags(&a), (true, true));
        let mut b = UnixStream::from(sb);
        let a = Arc::new(a);
        let a2 = a.clone();
        let reader = spawn(mode, move || {
            let mut buf = [0u8; 3];
            (&*a2).read_exact(&mut buf).unwrap();
            buf
        });
        coronet::time::sleep(Duration::from_millis(20));
        b.write_all(b"std").unwrap();
        assert_eq!(&reader.join(), b"std");

        // coronet → std: blocking again
        let mut back = std::os::unix::net::UnixStream::from(b);
        assert!(!fd_flags(&back).0, "blocking again");
        (&*a).write_all(b"blk").unwrap();
        let mut buf = [0u8; 3];
        back.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"blk");

        // raw fds round trip
        let raw = Arc::into_inner(a).unwrap().into_raw_fd();
        // SAFETY: `raw` came from `into_raw_fd` just above and is owned by nobody else.
        let a = unsafe { UnixStream::from_raw_fd(raw) };
        back.write_all(b"raw").unwrap();
        let mut got = [0u8; 3];
        (&a).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"raw");

        // listeners
        let path = TempPath::new("std-listener");
        let l = UnixListener::from(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let _c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (s, _) = l.accept().unwrap();
        assert_eq!(fd_flags(&s), (true, true));
        let std_l = std::os::unix::net::UnixListener::from(l);
        assert!(!fd_flags(&std_l).0, "blocking again");
        assert_eq!(
            std_l.local_addr().unwrap().as_pathname(),
            Some(path.as_ref())
        );

        // datagrams
        let (sd, se) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let d = UnixDatagram::from(sd);
        se.send(b"dgram").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(d.recv(&mut buf).unwrap(), 5);
        let std_d = std::os::unix::net::UnixDatagram::from(d);
        assert!(!fd_flags(&std_d).0, "blocking again");
        let raw = UnixDatagram::from(std_d).into_raw_fd();
        // SAFETY: as above.
        let d = unsafe { UnixDatagram::from_raw_fd(raw) };
        se.send(b"again").unwrap();
        assert_eq!(d.recv(&mut buf).unwrap(), 5);
    });
}

#[test]
fn many_datagrams_send_to_a_busy_path() {
    // Unconnected senders get no wake-up from the receiver's queue, only from their own
    // datagrams being consumed; that must still be enough to finish.
    const COUNT: u32 = 2000;
    both(|mode| {
        let path = TempPath::new("dg-busy");
        let server = UnixDatagram::bind(&path).unwrap();
        let reader = spawn(mode, move || {
            let mut buf = [0u8; 2048];
            for i in 0..COUNT {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!((n, from.is_unnamed()), (512, true));
                assert_eq!(&buf[..4], &i.to_le_bytes(), "datagrams stay in order");
            }
        });
        let client = UnixDatagram::unbound().unwrap();
        let mut msg = [7u8; 512];
        for i in 0..COUNT {
            msg[..4].copy_from_slice(&i.to_le_bytes());
            assert_eq!(client.send_to(&msg, &path).unwrap(), 512);
        }
        reader.join();
    });
}

// ---------------------------------------------------------------------------------------
// A short read on a Unix stream does not mean the queue is empty

/// Sends `data` on `sock` with `fd` attached (SCM_RIGHTS).
fn send_with_fd(sock: &std::os::unix::net::UnixStream, data: &[u8], fd: BorrowedFd<'_>) {
    let fd_len = std::mem::size_of::<libc::c_int>() as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    // u64s: the control buffer must be aligned for `cmsghdr`
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: `msghdr` is plain C data; all zeroes is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `control`, which has room for one header with one fd
    // (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and its data is writable for a c_int.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    // SAFETY: `sock` is open; `msg` points at live buffers (`iov`, `data`, `control`).
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    assert_eq!(n, data.len() as isize, "{}", io::Error::last_os_error());
}

#[test]
fn a_read_ended_by_passed_fds_does_not_strand_the_next_message() {
    // The kernel ends a read after a message carrying fds, with the next one still
    // queued; the events for it came before the first read, so a reader that trusted the
    // short read would park until the peer sent more.
    in_coroutine(|| {
        let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut s = UnixStream::from(ours);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // a first read parks (the netpoller now watches the fd) and is short
        let mut late = peer.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            late.write_all(b"x").unwrap();
        });
        let mut buf = [0u8; 4096];
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        writer.join().unwrap();

        let passed = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(&peer, b"ab", passed.as_fd());
        (&peer).write_all(b"cd").unwrap();
        coronet::time::sleep(Duration::from_millis(100)); // all arrived, events harvested
        assert_eq!(s.read(&mut buf).unwrap(), 2);
        assert_eq!(
            &buf[..2],
            b"ab",
            "the read ends with the message carrying the fd"
        );
        let start = Instant::now();
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("queued data not read: {e}"));
        assert_eq!(&buf[..n], b"cd");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "read parked first"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Peers bound to a path of the full 108 bytes (no NUL)

/// A path of exactly 108 bytes, `sun_path`'s whole size: Linux binds it with no room for
/// a NUL, and std's `SocketAddr::from_pathname` refuses it.
fn full_length_path(tag: &str) -> TempPath {
    let mut path = std::env::temp_dir().join(unique(tag)).into_os_string();
    assert!(
        path.len() < 100,
        "temp dir too long for this test: {path:?}"
    );
    while path.len() < 108 {
        path.push("x");
    }
    let path = TempPath(path.into());
    let _ = std::fs::remove_file(&path);
    path
}

/// `path` as a `sockaddr_un` and its length, built by hand: a NUL only if there is room.
fn raw_sockaddr_un(path: &Path) -> (libc::sockaddr_un, libc::socklen_t) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: `sockaddr_un` is plain C data; all zeroes is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() <= sun.sun_path.len());
    for (dst, &src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let offset = std::mem::size_of::<libc::sa_family_t>();
    let nul = usize::from(bytes.len() < sun.sun_path.len());
    (sun, (offset + bytes.len() + nul) as libc::socklen_t)
}

/// A std socket of type `ty` bound to `local` and connected to `to`, made with libc
/// because std will not bind a 108-byte path.
fn raw_client(ty: libc::c_int, local: &Path, to: &Path) -> std::os::fd::OwnedFd {
    // SAFETY: no pointers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    for (path, bind) in [(local, true), (to, false)] {
        let (sun, len) = raw_sockaddr_un(path);
        let addr = (&sun as *const libc::sockaddr_un).cast::<libc::sockaddr>();
        // SAFETY: `fd` is open; `addr` points at `len` (<= its size) initialised bytes.
        let r = unsafe {
            if bind {
                libc::bind(fd.as_raw_fd(), addr, len)
            } else {
                libc::connect(fd.as_raw_fd(), addr, len)
            }
        };
        assert_eq!(r, 0, "{}: {}", path.display(), io::Error::last_os_error());
    }
    fd
}

#[test]
fn accept_from_a_peer_bound_to_a_full_length_path() {
    // Such a name used to fail `accept` after the connection was taken (and dropped):
    // any local user could stop an `incoming` loop.
    both(|_| {
        let server_path = TempPath::new("full-srv");
        let client_path = full_length_path("full-cli");
        let listener = UnixListener::bind(&server_path).unwrap();
        let client = raw_client(
            libc::SOCK_STREAM,
            client_path.as_ref(),
            server_path.as_ref(),
        );
        let mut client = std::os::unix::net::UnixStream::from(client);
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(peer.as_pathname(), Some(client_path.as_ref()));
        assert_eq!(conn.peer_addr().unwrap().as_pathname(), peer.as_pathname());
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        conn.write_all(b"back").unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"back");
        // the listener goes on
        let _c = std::os::unix::net::UnixStream::connect(&server_path).unwrap();
        assert!(listener.accept().unwrap().1.is_unnamed());
    });
}

#[test]
fn recv_from_a_sender_bound_to_a_full_length_path() {
    // std cannot build that address: the datagram comes back with the sender unnamed
    // instead of being dropped for an error.
    both(|_| {
        let server_path = TempPath::new("full-dsrv");
        let client_path = full_length_path("full-dcli");
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = raw_client(libc::SOCK_DGRAM, client_path.as_ref(), server_path.as_ref());
        let client = std::os::unix::net::UnixDatagram::from(client);
        client.send(b"ping").unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(from.is_unnamed(), "{from:?}");
        // a coronet socket bound to such a name reports it in full
        let ours = UnixDatagram::from(client);
        assert_eq!(
            ours.local_addr().unwrap().as_pathname(),
            Some(client_path.as_ref())
        );
    });
}

// ---------------------------------------------------------------------------------------
// std API parity: OwnedFd conversions, Debug of the incoming iterator

#[test]
fn owned_fd_round_trips_keep_every_unix_type_working() {
    use std::os::fd::OwnedFd;
    both(|mode| {
        // A listener through OwnedFd still accepts; a stream through it still echoes.
        let path = TempPath::new("owned");
        let l = UnixListener::from(OwnedFd::from(UnixListener::bind(&path).unwrap()));
        assert_eq!(
            l.local_addr().unwrap().as_pathname(),
            Some(path.0.as_path())
        );
        let server = spawn(mode, move || {
            let (s, _) = l.accept().unwrap();
            echo(s);
        });
        let mut c = UnixStream::connect(&path).unwrap();
        ping(&mut c, b"before"); // registered with the netpoller by now (in a coroutine)
        let fd: OwnedFd = c.into();
        // Given away as `into_raw_fd` gives it: still nonblocking (and close-on-exec).
        assert_eq!(fd_flags(&fd), (true, true));
        let mut c = UnixStream::from(fd);
        ping(&mut c, b"after the round trip");
        // ... from a coroutine and from a plain thread too.
        let mut c = coronet::go(move || {
            ping(&mut c, b"in a coroutine");
            c
        })
        .join()
        .unwrap();
        let t = std::thread::spawn(move || {
            ping(&mut c, b"on a thread");
            c
        });
        while !t.is_finished() {
            coronet::time::sleep(Duration::from_millis(1)); // a join would block a worker
        }
        drop(t.join().unwrap()); // EOF ends the echo
        server.join();

        // std types go through OwnedFd into coronet's, adopted as `from_raw_fd` adopts them.
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from(OwnedFd::from(sa));
        assert!(fd_flags(&a).0);
        let mut sb = std::os::unix::net::UnixStream::from(OwnedFd::from(UnixStream::from(
            OwnedFd::from(sb),
        )));
        sb.set_nonblocking(false).unwrap();
        let reader = spawn(mode, move || {
            let mut buf = [0u8; 3];
            (&a).read_exact(&mut buf).unwrap(); // waits for the write below
            buf
        });
        coronet::time::sleep(Duration::from_millis(20));
        sb.write_all(b"std").unwrap();
        assert_eq!(&reader.join(), b"std");

        // Datagrams, connected and bound.
        let (d, e) = UnixDatagram::pair().unwrap();
        let d = UnixDatagram::from(OwnedFd::from(d));
        let e: UnixDatagram = OwnedFd::from(e).into();
        let receiver = spawn(mode, move || {
            let mut buf = [0u8; 8];
            let n = d.recv(&mut buf).unwrap(); // waits for the send below
            (buf[..n].to_vec(), d)
        });
        coronet::time::sleep(Duration::from_millis(20));
        e.send(b"dgram").unwrap();
        let (got, d) = receiver.join();
        assert_eq!(got, b"dgram");
        d.send(b"back").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(e.recv(&mut buf).unwrap(), 4);

        let dpath = TempPath::new("owned-dg");
        let bound = UnixDatagram::from(OwnedFd::from(UnixDatagram::bind(&dpath).unwrap()));
        assert_eq!(
            bound.local_addr().unwrap().as_pathname(),
            Some(dpath.0.as_path())
        );
        e.send_to(b"to path", &dpath.0).unwrap();
        let (n, _) = bound.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to path");
    });
}

#[test]
fn incoming_is_debug_as_std() {
    let path = TempPath::new("inc-dbg");
    let l = UnixListener::bind(&path).unwrap();
    let dbg = format!("{:?}", l.incoming());
    assert!(
        dbg.starts_with("UnixIncoming { listener: UnixListener {"),
        "{dbg}"
    );
    assert!(dbg.contains(&path.0.display().to_string()), "{dbg}");
    assert!(format!("{:?}", (&l).into_iter()).starts_with("UnixIncoming"));
}

/// A stream write of 8 MiB through `sender` fills the buffer (nobody reads the peer) and
/// parks; then `shutter` shuts the write side: the write must return within 5 s with
/// std's answer, the bytes written so far (or the error, had none gone).
fn stream_write_ends_at_shutdown(mode: Mode, sender: Arc<UnixStream>, shutter: &UnixStream) {
    let writer = spawn(mode, move || {
        let start = Instant::now();
        ((&*sender).write(&vec![7u8; 8 << 20]), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200)); // the write fills the buffer, parks
    shutter.shutdown(Shutdown::Write).unwrap();
    let (r, took) = writer.join();
    assert!(took < Duration::from_secs(5), "{r:?} after {took:?}");
    match r {
        Ok(n) => assert!(n > 0 && n < 8 << 20, "{n}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}"),
    }
}

/// A datagram send through `sender` to a peer whose queue is full parks; then `shutter`
/// shuts the write side: the send must fail within 5 s with `BrokenPipe`, as std's does.
fn datagram_send_ends_at_shutdown(mode: Mode, sender: Arc<UnixDatagram>, shutter: &UnixDatagram) {
    let send = spawn(mode, move || {
        let start = Instant::now();
        (sender.send(b"one more"), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    shutter.shutdown(Shutdown::Write).unwrap();
    let (r, took) = send.join();
    assert!(took < Duration::from_secs(5), "{r:?} after {took:?}");
    assert_eq!(r.unwrap_err().kind(), ErrorKind::BrokenPipe);
}

/// Fills the queue of `d`'s peer (nobody reads it), leaving `d` in blocking mode.
fn fill_peer_queue(d: &UnixDatagram) {
    d.set_nonblocking(true).unwrap();
    while d.send(b"fill").is_ok() {}
    d.set_nonblocking(false).unwrap();
}

/// A Unix socket's poll reports nothing when its own write side is shut down, so a send
/// parked on a full buffer must be woken by `shutdown` itself; std's returns at once (found
/// by an audit: it stayed blocked for ever, in a coroutine and on a thread).
#[test]
fn shutdown_write_wakes_a_send_blocked_on_a_full_buffer() {
    both(|mode| {
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        stream_write_ends_at_shutdown(mode, a.clone(), &a);

        let (d, _e) = UnixDatagram::pair().unwrap();
        fill_peer_queue(&d);
        let d = Arc::new(d);
        datagram_send_ends_at_shutdown(mode, d.clone(), &d);
    });
}

/// The same with the send blocked on a clone (`try_clone`) and the shutdown made through
/// the original: each handle waits on a record of its own, and std's blocked send returns
/// at once here too (found by an audit: the clone's send stayed parked, 12 of 12 tries).
#[test]
fn shutdown_write_wakes_a_send_blocked_on_a_clone() {
    both(|mode| {
        let (a, _b) = UnixStream::pair().unwrap();
        let w = a.try_clone().unwrap();
        // a bound, so that a send left parked fails the test instead of hanging it
        w.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        stream_write_ends_at_shutdown(mode, Arc::new(w), &a);

        let (d, _e) = UnixDatagram::pair().unwrap();
        fill_peer_queue(&d);
        let clone = d.try_clone().unwrap();
        clone
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        datagram_send_ends_at_shutdown(mode, Arc::new(clone), &d);
    });
}

/// Connects raw nonblocking sockets to `path` until the listener's backlog refuses one
/// (`EAGAIN`); the connections it holds, to keep while the test runs.
fn fill_backlog(path: &Path) -> Vec<std::os::fd::OwnedFd> {
    let (sun, len) = raw_sockaddr_un(path);
    let addr = (&sun as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    let mut held = Vec::new();
    loop {
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::socket(libc::AF_UNIX, ty, 0) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: `fd` is open; `addr` points at `len` (<= its size) initialised bytes.
        if unsafe { libc::connect(fd.as_raw_fd(), addr, len) } == 0 {
            held.push(fd);
            assert!(held.len() < 1000, "the backlog never filled");
            continue;
        }
        let e = io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "connect: {e}");
        return held;
    }
}

/// A `connect` to a listener whose backlog is full waits until the listener makes room, as
/// std's blocking connect does; Go's, and coronet's until 2026-12-07, failed at once with
/// `WouldBlock` (found by porting the `redis` crate: 2,000 clients connecting at once got
/// hundreds of such errors where std's got none).
#[test]
fn connect_to_a_full_backlog_waits_for_the_listener() {
    both(|mode| {
        let path = TempPath::new("backlog");
        let listener = UnixListener::bind(&path).unwrap();
        // SAFETY: listen(2) again on the listening socket only lowers its backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 1) }, 0);
        let held = fill_backlog(path.as_ref());
        let start = Instant::now();
        let acceptor = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // The queue is first in, first out: the connection under test comes last.
            let queued = held.len() + 1;
            let accepted: Vec<_> = (0..queued).map(|_| listener.accept().unwrap().0).collect();
            drop(held);
            accepted
        });
        let mut client = UnixStream::connect(&path)
            .unwrap_or_else(|e| panic!("{mode:?}: connect to a full backlog: {e}"));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300),
            "{mode:?}: connected after {waited:?}, before the listener accepted anyone"
        );
        let mut ours = acceptor.join().unwrap().pop().unwrap();
        client.write_all(b"hi").unwrap();
        let mut buf = [0; 2];
        ours.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi", "{mode:?}");
    });
}

/// Many coroutines and threads connecting at once to a listener with a small backlog all
/// get in, none refused (the `redis` port's load, scaled down: 300 clients, backlog 4).
#[test]
fn a_crowd_connecting_to_a_small_backlog_all_get_in() {
    let path = TempPath::new("crowd");
    let listener = UnixListener::bind(&path).unwrap();
    // SAFETY: listen(2) again on the listening socket only lowers its backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 4) }, 0);
    const CLIENTS: usize = 300;
    let server = coronet::go(move || {
        for _ in 0..CLIENTS {
            let (s, _) = listener.accept().unwrap();
            coronet::go(move || echo(s));
        }
    });
    let path = Arc::new(path.0.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let path = path.clone();
            let mode = if i % 10 == 0 {
                Mode::Thread
            } else {
                Mode::Coroutine
            };
            spawn(mode, move || {
                let mut c = UnixStream::connect(&*path)
                    .unwrap_or_else(|e| panic!("client {i} ({mode:?}): {e}"));
                ping(&mut c, format!("client {i}").as_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join();
    }
    server.join().unwrap();
}
