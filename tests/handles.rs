//! What a socket handle carries across `try_clone` and the conversions from and to std, and
//! what releasing it costs the worker: std keeps the read/write timeouts and the nonblocking
//! mode in the socket, so a clone or a converted socket has them too (and a clone sees a
//! later change made on the other handle); and a socket with
//! `SO_LINGER` on must not stall a worker when it is closed (found by an audit).
//!
//! One worker for the whole binary, so a stalled worker shows in a coroutine beside it.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use coronet::net::{Dialer, TcpListener, TcpStream};

mod util;
use util::{one_worker, pair};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A clone made after `set_read_timeout` and `set_nonblocking` has both, as with std.
fn clone_keeps_settings() {
    let (s, _peer) = pair();
    s.set_read_timeout(Some(MS(200))).unwrap();
    s.set_write_timeout(Some(MS(300))).unwrap();
    let c = s.try_clone().unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(MS(200)));
    assert_eq!(c.write_timeout().unwrap(), Some(MS(300)));
    let start = Instant::now();
    let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "{err}");
    assert!(
        start.elapsed() >= MS(200),
        "timed out early: {:?}",
        start.elapsed()
    );

    s.set_nonblocking(true).unwrap();
    let c = s.try_clone().unwrap();
    let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
}

#[test]
fn a_clone_keeps_the_timeouts_and_the_nonblocking_mode() {
    one_worker();
    clone_keeps_settings(); // a plain thread
    coronet::go(clone_keeps_settings).join().unwrap();
}

/// A change made on one handle after the clone reaches the other, either way round and
/// across a clone of a clone, as std's do (they share the socket and its open file).
fn clones_share_later_changes() {
    let (s, _peer) = pair();
    let c = s.try_clone().unwrap();
    let cc = c.try_clone().unwrap();
    c.set_read_timeout(Some(MS(200))).unwrap();
    s.set_write_timeout(Some(MS(300))).unwrap();
    for h in [&s, &c, &cc] {
        assert_eq!(h.read_timeout().unwrap(), Some(MS(200)));
        assert_eq!(h.write_timeout().unwrap(), Some(MS(300)));
    }
    // the original's read times out with the timeout set on the clone
    let start = Instant::now();
    let err = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= MS(200), "early: {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(5), "{err}");

    cc.set_nonblocking(true).unwrap();
    let err = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(None).unwrap();
    assert_eq!(cc.read_timeout().unwrap(), None);
    // blocking again on every handle: a read parks until the peer writes
    let mut peer = _peer;
    let writer = std::thread::spawn(move || {
        std::thread::sleep(MS(50));
        peer.write_all(b"x").unwrap();
        peer
    });
    assert_eq!((&cc).read(&mut [0u8; 8]).unwrap(), 1);
    drop(writer.join().unwrap());
}

#[test]
fn a_later_change_on_one_clone_reaches_the_others() {
    one_worker();
    clones_share_later_changes(); // a plain thread
    coronet::go(clones_share_later_changes).join().unwrap();
}

#[test]
fn conversions_from_and_to_std_keep_the_timeouts() {
    one_worker();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let _peer = l.accept().unwrap();
    s.set_read_timeout(Some(MS(200))).unwrap();
    s.set_write_timeout(Some(MS(250))).unwrap();
    // The kernel keeps them in ticks: std reads back what it rounded to, and so do we.
    let (read, write) = (s.read_timeout().unwrap(), s.write_timeout().unwrap());
    let c = TcpStream::from(s);
    assert_eq!(
        (c.read_timeout().unwrap(), c.write_timeout().unwrap()),
        (read, write)
    );
    assert!(read.unwrap().abs_diff(MS(200)) < MS(20), "{read:?}");
    let c = coronet::go(move || {
        let start = Instant::now();
        assert!((&c).read(&mut [0u8; 8]).is_err());
        assert!(start.elapsed() >= MS(200) && start.elapsed() < Duration::from_secs(5));
        c
    })
    .join()
    .unwrap();
    c.set_read_timeout(Some(MS(300))).unwrap();
    c.set_write_timeout(None).unwrap();
    let back = std::net::TcpStream::from(c);
    let read = back.read_timeout().unwrap();
    assert!(read.unwrap().abs_diff(MS(300)) < MS(20), "{read:?}");
    assert_eq!(back.write_timeout().unwrap(), None);
}

/// std keeps the nonblocking mode in the open file, so a std socket set nonblocking is still
/// nonblocking as a coronet socket (its reads return `WouldBlock`, never park), and back
/// (found by an audit: both conversions dropped it, and such a read blocked for ever).
#[test]
fn conversions_from_and_to_std_keep_the_nonblocking_mode() {
    one_worker();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let _peer = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let c = TcpStream::from(s);
    let read_now = |c: &TcpStream| {
        let start = Instant::now();
        let err = (&*c).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    };
    read_now(&c); // a plain thread
    let c = coronet::go(move || {
        read_now(&c);
        c
    })
    .join()
    .unwrap();
    let mut back = std::net::TcpStream::from(c);
    let err = back.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    // and a blocking one stays blocking both ways
    back.set_nonblocking(false).unwrap();
    back.set_read_timeout(Some(MS(100))).unwrap();
    let c = TcpStream::from(back);
    let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

/// Fills `s`'s send buffer and its peer's receive buffer: unsent data a lingering close of
/// `s` must wait for.
fn stuff(s: &TcpStream, peer: &TcpStream) {
    s.set_send_buffer_size(16 << 10).unwrap();
    peer.set_recv_buffer_size(16 << 10).unwrap();
    s.set_write_deadline(Some(Instant::now() + MS(300)))
        .unwrap();
    let _ = (&*s).write(&vec![0u8; 8 << 20]); // fills both buffers, then times out
}

/// A stream with unsent data stuck behind a peer that never reads, and `SO_LINGER` on.
fn lingering(linger: Duration) -> (TcpStream, TcpStream) {
    let (s, peer) = pair();
    stuff(&s, &peer);
    s.set_linger(Some(linger)).unwrap();
    (s, peer)
}

/// `SO_LINGER` at 3 s set on a raw fd, as a `control` hook or another crate would.
fn linger_3s(fd: RawFd) -> io::Result<()> {
    let on = libc::linger {
        l_onoff: 1,
        l_linger: 3,
    };
    let len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `on` is a valid `linger` of `len` bytes for the call's duration.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const on).cast(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The ways a stream comes to linger for 3 s.
#[derive(Clone, Copy)]
enum Linger {
    /// `set_linger`
    Set,
    /// accepted from a std listener with `SO_LINGER` on: Linux copies it to the connection
    Accepted,
    /// dialed by a `Dialer` whose `control` hook turns it on
    Dialed,
    /// `set_linger` on a clone, which is dropped first: the original's release lingers
    Cloned,
}

fn lingering_by(how: Linger) -> (TcpStream, TcpStream) {
    let (s, peer) = match how {
        Linger::Set => return lingering(Duration::from_secs(3)),
        Linger::Accepted => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            linger_3s(l.as_raw_fd()).unwrap();
            let l = TcpListener::from(l);
            let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            (l.accept().unwrap().0, peer)
        }
        Linger::Dialed => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let s = Dialer::new()
                .control(linger_3s)
                .dial(l.local_addr().unwrap())
                .unwrap();
            (s, l.accept().unwrap().0)
        }
        Linger::Cloned => {
            let (s, peer) = pair();
            let c = s.try_clone().unwrap();
            c.set_linger(Some(Duration::from_secs(3))).unwrap();
            drop(c);
            (s, peer)
        }
    };
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
    stuff(&s, &peer);
    (s, peer)
}

/// Releases a lingering stream with `release` on the worker while a coroutine beside it
/// sleeps 10 ms at a time; neither may stall for anything like the 3 s linger.
fn lingering_release_does_not_stall_the_worker(how: Linger, release: fn(TcpStream)) {
    one_worker();
    coronet::go(move || {
        let (s, peer) = lingering_by(how);
        let ticker = coronet::go(|| {
            let mut worst = Duration::ZERO;
            for _ in 0..100 {
                let t = Instant::now();
                coronet::time::sleep(MS(10));
                worst = worst.max(t.elapsed());
            }
            worst
        });
        coronet::time::sleep(MS(50));
        let start = Instant::now();
        release(s);
        let took = start.elapsed();
        let worst = ticker.join().unwrap();
        drop(peer);
        // Generous: the stall this catches is the whole 3 s linger.
        assert!(took < Duration::from_secs(2), "the release took {took:?}");
        assert!(
            worst < Duration::from_secs(2),
            "a coroutine beside it waited {worst:?}"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn dropping_a_lingering_stream_does_not_stall_the_worker() {
    lingering_release_does_not_stall_the_worker(Linger::Set, drop);
}

#[test]
fn closing_a_lingering_stream_does_not_stall_the_worker() {
    lingering_release_does_not_stall_the_worker(Linger::Set, |s| s.close().unwrap());
}

/// The linger of a stream accepted from a listener coronet did not make, or dialed through
/// a `control` hook, is unknown to coronet too (found by the fifth audit: both stalled the
/// worker for the 3 s).
#[test]
fn dropping_a_stream_that_inherited_or_was_given_linger_does_not_stall_the_worker() {
    lingering_release_does_not_stall_the_worker(Linger::Accepted, drop);
    lingering_release_does_not_stall_the_worker(Linger::Dialed, drop);
    lingering_release_does_not_stall_the_worker(Linger::Cloned, drop);
}

/// On a plain thread the close blocks the thread, as std's does, and the data still goes:
/// the lingering close waits for the peer to read it.
#[test]
fn a_lingering_close_on_a_plain_thread_waits_as_std_does() {
    one_worker();
    let (s, mut peer) = lingering(Duration::from_secs(30));
    let reader = std::thread::spawn(move || {
        std::thread::sleep(MS(300));
        let mut all = Vec::new();
        peer.read_to_end(&mut all).unwrap();
        all.len()
    });
    let start = Instant::now();
    drop(s);
    assert!(
        start.elapsed() >= MS(200),
        "close returned before the data went"
    );
    assert!(reader.join().unwrap() > 0);
}
