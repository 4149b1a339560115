//! Deadlines: Go's absolute, settable-from-anywhere I/O deadlines.
//!
//! The behaviours follow Go's `src/net/timeout_test.go` (BSD-style license, the Go Authors):
//! TestAcceptTimeout, TestAcceptTimeoutMustReturn, TestReadTimeout,
//! TestReadTimeoutMustNotReturn, TestWriteTimeout, TestReadWriteProlongedTimeout,
//! TestReadWriteDeadlineRace and TestConcurrentSetDeadline — rewritten for coronet.
//! Every behaviour runs from a coroutine and from a plain thread (`util::both`).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};
use util::{assert_timeout, both, listener_pair, op, pair, pattern};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn in_ms(n: u64) -> Option<Instant> {
    Some(Instant::now() + ms(n))
}

#[test]
fn timeout_error_shape() {
    both(|| {
        let (c, _s) = pair();
        let (local, peer) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
        c.set_read_deadline(Some(Instant::now())).unwrap();
        let e = (&c).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(op(&e).is_timeout());
        assert!(!op(&e).is_closed());
        assert_eq!(
            e.to_string(),
            format!("read tcp {local}->{peer}: i/o timeout")
        );
        c.set_write_deadline(Some(Instant::now())).unwrap();
        let e = (&c).write(b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("write tcp {local}->{peer}: i/o timeout")
        );
    });
}

/// Go's `FD.Write` checks the deadline before anything else, so an empty write after it
/// has passed is the timeout too; an empty read returns 0 before the check, as in Go
/// (fifth audit: the empty write returned `Ok(0)`).
#[test]
fn an_empty_write_after_the_deadline_times_out_and_an_empty_read_does_not() {
    both(|| {
        let (c, _s) = pair();
        c.set_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&(&c).write(b"").unwrap_err());
        assert_timeout(&(&c).write_vectored(&[]).unwrap_err());
        assert_eq!((&c).read(&mut []).unwrap(), 0);
        c.set_write_deadline(None).unwrap();
        assert_eq!((&c).write(b"").unwrap(), 0);
    });
}

#[test]
fn go_read_timeout_passed_deadline_fails_until_reset() {
    // Go: TestReadTimeout — a deadline in the past fails every read, even with data
    // waiting, until a new deadline is set; clearing it makes reads work again.
    both(|| {
        let (mut c, mut s) = pair();
        s.write_all(b"data waiting").unwrap();
        for d in [Instant::now() - ms(5_000), Instant::now()] {
            c.set_read_deadline(Some(d)).unwrap();
            for _ in 0..3 {
                assert_timeout(&c.read(&mut [0u8; 4]).unwrap_err());
            }
        }
        // writes are unaffected by the read deadline
        c.write_all(b"w").unwrap();
        c.set_read_deadline(None).unwrap();
        let mut b = [0u8; 12];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"data waiting");
        // a future deadline lets reads through as well
        c.set_read_deadline(in_ms(60_000)).unwrap();
        s.write_all(b"more").unwrap();
        c.read_exact(&mut b[..4]).unwrap();
        assert_eq!(&b[..4], b"more");
    });
}

#[test]
fn short_deadline_fires_on_a_blocked_read() {
    both(|| {
        let (mut c, _s) = pair();
        let deadline = in_ms(50);
        c.set_read_deadline(deadline).unwrap();
        assert_timeout(&c.read(&mut [0u8; 4]).unwrap_err());
        let now = Instant::now();
        assert!(now >= deadline.unwrap(), "fired early");
        // still passed: fails at once
        assert_timeout(&c.read(&mut [0u8; 4]).unwrap_err());
    });
}

#[test]
fn deadline_set_from_another_coroutine_wakes_a_blocked_read() {
    // Go: TestReadTimeoutMustNotReturn — a read blocked with no deadline stays blocked;
    // a deadline set from elsewhere then wakes it.
    both(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        let c2 = c.clone();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let reader = coronet::go(move || {
            let r = (&*c2).read(&mut [0u8; 4]);
            d2.store(true, Ordering::SeqCst);
            r
        });
        coronet::time::sleep(ms(100));
        assert!(
            !done.load(Ordering::SeqCst),
            "read returned without data or deadline"
        );
        // a far deadline is not a reason to return
        c.set_read_deadline(in_ms(60_000)).unwrap();
        coronet::time::sleep(ms(50));
        assert!(!done.load(Ordering::SeqCst), "a far deadline woke the read");
        let t = Instant::now();
        c.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&reader.join().unwrap().unwrap_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    });
}

#[test]
fn deadline_set_from_a_thread_wakes_a_read_blocked_on_a_thread_and_a_coroutine() {
    let (c, _s) = coronet::run(pair);
    let c = Arc::new(c);
    let c1 = c.clone();
    let on_thread = std::thread::spawn(move || (&*c1).read(&mut [0u8; 4]));
    std::thread::sleep(ms(50));
    let c2 = c.clone();
    // a second reader queues behind the first on the read lock
    let on_coroutine = coronet::go(move || (&*c2).read(&mut [0u8; 4]));
    std::thread::sleep(ms(50));
    c.set_deadline(Some(Instant::now())).unwrap();
    assert_timeout(&on_thread.join().unwrap().unwrap_err());
    assert_timeout(&on_coroutine.join().unwrap().unwrap_err());
}

#[test]
fn shortening_and_extending_a_deadline_while_blocked() {
    both(|| {
        let (c, mut s) = pair();
        let c = Arc::new(c);
        c.set_read_deadline(in_ms(60_000)).unwrap();
        let c2 = c.clone();
        let reader = coronet::go(move || ((&*c2).read(&mut [0u8; 4]), Instant::now()));
        coronet::time::sleep(ms(30));
        // shorten: the blocked read now times out at the new time, never before it
        let short = in_ms(100);
        c.set_read_deadline(short).unwrap();
        let (r, returned) = reader.join().unwrap();
        assert_timeout(&r.unwrap_err());
        assert!(returned >= short.unwrap(), "returned before the deadline");
        let late = returned - short.unwrap();
        assert!(
            late < Duration::from_secs(30),
            "{late:?} after the deadline"
        );
        // extend a near deadline while blocked: the read must outlive the first one (1 s
        // out, so that the extension 20 ms later comes first even on a stalled machine)
        let near = Instant::now() + Duration::from_secs(1);
        c.set_read_deadline(Some(near)).unwrap();
        let c3 = c.clone();
        let reader = coronet::go(move || (&*c3).read(&mut [0u8; 4]));
        coronet::time::sleep(ms(20));
        c.set_read_deadline(in_ms(60_000)).unwrap();
        let in_time = Instant::now() < near;
        coronet::time::sleep_until(near + ms(200)); // well past the first deadline
        s.write_all(b"late").unwrap();
        let r = reader.join().unwrap();
        if in_time {
            assert_eq!(r.unwrap(), 4);
        } else {
            eprintln!("stalled past the first deadline before extending it: no verdict");
        }
    });
}

#[test]
fn idle_timeout_pattern_keeps_a_live_connection() {
    // Go: TestReadWriteProlongedTimeout's idea — push the deadline forward before every
    // read. The peer writes every 10 ms for ~0.5 s; each deadline is 1 s out, so a single
    // deadline set at the start would expire at its 100th write, but the connection never
    // idles that long (1 s: a hundred times the gap, for stalled machines).
    both(|| {
        let (mut c, s) = pair();
        let writer = coronet::go(move || {
            let mut s = s;
            for i in 0..150u8 {
                s.write_all(&[i]).unwrap();
                coronet::time::sleep(ms(10));
            }
            // then go idle, keeping the connection open: the idle timeout must fire
            s
        });
        let start = Instant::now();
        let mut next = 0u8;
        let e = loop {
            c.set_read_deadline(in_ms(1000)).unwrap();
            let mut b = [0u8; 256];
            match c.read(&mut b) {
                Ok(0) => panic!("EOF before the idle timeout"),
                Ok(n) => {
                    for &x in &b[..n] {
                        assert_eq!(x, next);
                        next += 1;
                    }
                }
                Err(e) => break e,
            }
        };
        assert_timeout(&e);
        assert_eq!(next, 150, "timed out while the peer was still writing");
        assert!(start.elapsed() >= ms(1000));
        drop(writer.join().unwrap());
    });
}

#[test]
fn go_write_timeout_partial_then_error_data_intact() {
    // Go: TestWriteTimeout — against a peer that never reads, a write with a deadline sends
    // what fits and returns Ok(n); the next write fails with i/o timeout. What went out is
    // exactly the first n bytes.
    both(|| {
        let (mut c, mut s) = pair();
        c.set_send_buffer_size(32 << 10).unwrap();
        s.set_recv_buffer_size(32 << 10).unwrap();
        let data = pattern(16 << 20, 9);
        let deadline = in_ms(150);
        c.set_write_deadline(deadline).unwrap();
        let n = c.write(&data).unwrap();
        assert!(
            Instant::now() >= deadline.unwrap(),
            "returned before the deadline"
        );
        assert!(n > 0 && n < data.len(), "wrote {n}");
        let e = c.write(&data[n..]).unwrap_err();
        assert_timeout(&e);
        assert!(e.to_string().starts_with("write tcp "), "{e}");
        // clearing the deadline lets the stream carry on
        c.set_write_deadline(None).unwrap();
        let rest = 1000;
        let reader = coronet::go(move || {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        c.write_all(&data[n..n + rest]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), n + rest);
        assert!(got == data[..n + rest], "data corrupted around the timeout");
    });
}

#[test]
fn write_deadline_set_while_blocked_wakes_the_writer() {
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
            c.set_write_deadline(Some(Instant::now())).unwrap();
            let (total, e) = writer();
            assert!(total > 0);
            assert_timeout(&e);
        }
    });
}

#[test]
fn go_accept_timeout_and_must_return() {
    // Go: TestAcceptTimeout, TestAcceptTimeoutMustReturn
    both(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        for d in [Instant::now() - ms(5_000), Instant::now() + ms(50)] {
            l.set_deadline(Some(d)).unwrap();
            for _ in 0..2 {
                let e = l.accept().unwrap_err();
                assert_timeout(&e);
                assert_eq!(e.to_string(), format!("accept tcp {addr}: i/o timeout"));
            }
        }
        // blocked with no deadline; a deadline set from elsewhere wakes it
        l.set_deadline(None).unwrap();
        let l = Arc::new(l);
        let l2 = l.clone();
        let acceptor = coronet::go(move || l2.accept().map(|_| ()));
        coronet::time::sleep(ms(50));
        assert!(!acceptor.is_finished());
        l.set_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&acceptor.join().unwrap().unwrap_err());
        // and an accept blocked on a plain thread
        l.set_deadline(None).unwrap();
        let l3 = l.clone();
        let acceptor = util::spawn_on(true, move || l3.accept().map(|_| ()));
        coronet::time::sleep(ms(50));
        l.set_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&acceptor().unwrap_err());
        // cleared again: accept works
        l.set_deadline(None).unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        l.accept().unwrap();
    });
}

#[test]
fn read_timeout_and_deadline_earliest_wins() {
    both(|| {
        let (mut c, _s) = pair();
        c.set_read_timeout(Some(ms(60_000))).unwrap();
        c.set_read_deadline(in_ms(50)).unwrap();
        let t = Instant::now();
        assert_timeout(&c.read(&mut [0u8; 1]).unwrap_err());
        assert!(t.elapsed() < ms(30_000));
        c.set_read_deadline(in_ms(60_000)).unwrap();
        c.set_read_timeout(Some(ms(50))).unwrap();
        let t = Instant::now();
        assert_timeout(&c.read(&mut [0u8; 1]).unwrap_err());
        assert!(t.elapsed() >= ms(45) && t.elapsed() < ms(30_000));
    });
}

#[test]
fn deadlines_are_per_clone() {
    // a clone has its own deadlines (std's try_clone is a dup with its own state)
    both(|| {
        let (c, mut s) = pair();
        let mut c2 = c.try_clone().unwrap();
        c.set_read_deadline(Some(Instant::now())).unwrap();
        assert_timeout(&(&c).read(&mut [0u8; 1]).unwrap_err());
        s.write_all(b"k").unwrap();
        let mut b = [0u8; 1];
        c2.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"k");
    });
}

#[test]
fn go_read_write_deadline_race() {
    // Go: TestReadWriteDeadlineRace, TestConcurrentSetDeadline — a reader and a writer run
    // while another caller keeps moving both deadlines; nothing hangs or crashes, and each
    // call ends either with data or with the timeout error.
    both(|| {
        let (l, c, s) = listener_pair();
        drop(l);
        let c = Arc::new(c);
        let stop = Arc::new(AtomicBool::new(false));
        let setter = {
            let (c, stop) = (c.clone(), stop.clone());
            coronet::go(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    c.set_deadline(in_ms(i % 5)).unwrap();
                    i += 1;
                    coronet::time::sleep(Duration::from_micros(200));
                }
                c.set_deadline(None).unwrap();
            })
        };
        let sink = coronet::go(move || {
            let mut buf = vec![0u8; 64 << 10];
            while (&s).read(&mut buf).unwrap() > 0 {}
            s
        });
        let reader = {
            let c = c.clone();
            coronet::go(move || {
                for _ in 0..200 {
                    match (&*c).read(&mut [0u8; 16]) {
                        Err(e) => assert_timeout(&e),
                        Ok(n) => panic!("read {n} bytes nobody sent"),
                    }
                }
            })
        };
        let buf = vec![1u8; 256 << 10];
        for _ in 0..200 {
            match (&*c).write(&buf) {
                Ok(n) => assert!(n > 0),
                Err(e) => assert_timeout(&e),
            }
        }
        reader.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        setter.join().unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        drop(sink.join().unwrap());
    });
}

/// std's per-call timeout bounds the whole call, the wait behind another reader included:
/// std's readers of one socket each wait in the kernel and time out together. Found by an
/// audit: a call waited for the direction lock first, with no bound, so the k-th of several
/// readers timed out after k timeouts, and one behind a reader with no timeout never did.
#[test]
fn a_read_timeout_counts_the_wait_behind_another_reader() {
    both(|| {
        let (c, _s) = pair();
        let c = Arc::new(c);
        // a reader with no timeout holds the read lock, blocked for good
        let first = {
            let c = c.clone();
            std::thread::spawn(move || (&*c).read(&mut [0u8; 8]))
        };
        // (coronet's sleep, and the thread's result through a channel: in the coroutine
        // run, blocking a worker here would stall the timing tests beside this one)
        coronet::time::sleep(ms(100));
        c.set_read_timeout(Some(ms(200))).unwrap();
        // three more readers, behind it and each other: coroutines and threads
        let start = Instant::now();
        let read = move |c: Arc<TcpStream>| ((&*c).read(&mut [0u8; 8]), start.elapsed());
        let (c1, c2, c3) = (c.clone(), c.clone(), c.clone());
        let (tx, rx) = coronet::chan::bounded(1);
        std::thread::spawn(move || tx.send(read(c2)).unwrap());
        let readers = [
            coronet::go(move || read(c1)),
            coronet::go(move || rx.recv().unwrap()),
            coronet::go(move || read(c3)),
        ];
        for r in readers {
            let (res, took) = r.join().unwrap();
            assert_timeout(&res.unwrap_err());
            assert!(took >= ms(190), "early: {took:?}");
            // generous: each waits 200 ms; in turn they took 200, 400 and 600 ms at least,
            // and the one behind the reader without a timeout never returned
            assert!(took < ms(2000), "{took:?}");
        }
        c.close().unwrap(); // frees the first reader
        assert!(first.join().unwrap().is_err());
    });
}

/// std's per-call timeout is the kernel's: bytes that came within it win, however long the
/// caller then took to run. A coroutine's timer could beat the netpoller to it when its
/// worker computed past the timeout: the wait saw no readiness and the read timed out with
/// its answer queued (found by an audit porting the `memcache` crate, whose next call then
/// read the stale answer). The read now tries the socket once more before it times out.
#[test]
fn a_read_timeout_returns_bytes_that_came_in_time_while_the_worker_was_busy() {
    let (c, s) = pair();
    let (got, late) = coronet::run(move || {
        let mut c = c;
        c.set_read_timeout(Some(ms(100))).unwrap();
        let reader = coronet::Spawn::new().same_worker().go(move || {
            let mut b = [0u8; 4];
            let r = c.read(&mut b).map(|n| b[..n].to_vec());
            (r.map_err(|e| e.kind()), c)
        });
        coronet::time::sleep(ms(20)); // the reader is parked, its 100 ms running
        (&s).write_all(b"ping").unwrap();
        // Compute on the reader's worker past its timeout, without parking.
        let start = Instant::now();
        while start.elapsed() < ms(300) {
            std::hint::spin_loop();
        }
        let (got, mut c) = reader.join().unwrap();
        // Nothing is left behind for the next read either way.
        c.set_nonblocking(true).unwrap();
        let late = c.read(&mut [0u8; 4]).map_err(|e| e.kind());
        drop(s);
        (got, late)
    });
    assert_eq!(got, Ok(b"ping".to_vec()));
    assert_eq!(late, Err(ErrorKind::WouldBlock));
}
