//! Timer storms (issue 6): 100,000 deadlines extended while reads are parked on them, and
//! 100,000 sleepers in the timer heap at once. A timer may fire late on a busy machine,
//! but never early, and a superseded deadline never fires.
//!
//! Bounds on lateness are deliberately loose (a second): they catch a lost timer, not a slow
//! one.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit: the storm holds 2,000 sockets.
fn raise_nofile() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    rl.rlim_cur = rl.rlim_max;
    // SAFETY: `rl` is a valid rlimit; raising soft to hard is always permitted.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
}

/// Nanoseconds since `origin`, for keeping Instants in atomics.
fn nanos(origin: Instant, t: Instant) -> u64 {
    t.duration_since(origin).as_nanos() as u64
}

/// Sleeps 50 ms over and over until `stop`; returns how many sleeps, the shortest and the
/// longest. Run beside a storm, it shows sleep accuracy under load.
fn sleeper(stop: &AtomicBool) -> (usize, Duration, Duration) {
    const NAP: Duration = Duration::from_millis(50);
    let (mut n, mut min, mut max) = (0, Duration::MAX, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        coronet::time::sleep(NAP);
        let took = t.elapsed();
        assert!(took >= NAP, "woke early: {took:?} < {NAP:?}");
        (min, max) = (min.min(took), max.max(took));
        n += 1;
    }
    (n, min, max)
}

const PAIRS: usize = 1_000;
const EXTENSIONS: usize = 100;
const WINDOW: Duration = Duration::from_millis(300);

/// 1,000 readers parked in `read`, each with another coroutine pushing its deadline 300 ms
/// ahead 100 times (100,000 re-arms of a parked read's timer). Every read times out at its
/// last deadline — never at a superseded one, never early — and the stream still works
/// afterwards. A 50 ms sleeper running meanwhile never wakes early.
#[test]
fn hundred_thousand_deadline_extensions_on_parked_reads() {
    let _g = serial();
    raise_nofile();
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let nap = {
        let stop = stop.clone();
        coronet::go(move || sleeper(&stop))
    };
    let (early, max_late) = coronet::run(move || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let pairs: Vec<(Arc<TcpStream>, TcpStream)> = (0..PAIRS)
            .map(|_| {
                let c = TcpStream::connect(addr).unwrap();
                (Arc::new(l.accept().unwrap().0), c)
            })
            .collect();
        let mut handles = Vec::new();
        for (s, c) in pairs {
            // The last deadline set, published before it is set: the read can only time
            // out at or after it. Until the first extension the read has no deadline.
            let last = Arc::new(AtomicU64::new(u64::MAX));
            let reader = {
                let (s, last) = (s.clone(), last.clone());
                coronet::Spawn::new().stack_size(32 << 10).go(move || {
                    let e = (&*s).read(&mut [0u8; 8]).unwrap_err();
                    let fired = nanos(origin, Instant::now());
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    (fired, last.load(Ordering::SeqCst))
                })
            };
            let extender = {
                let s = s.clone();
                coronet::Spawn::new().stack_size(32 << 10).go(move || {
                    for _ in 0..EXTENSIONS {
                        let d = Instant::now() + WINDOW;
                        last.store(nanos(origin, d), Ordering::SeqCst);
                        s.set_read_deadline(Some(d)).unwrap();
                        coronet::yield_now();
                    }
                })
            };
            handles.push((reader, extender, s, c));
        }
        let (mut early, mut max_late) = (0, Duration::ZERO);
        for (reader, extender, s, c) in handles {
            extender.join().unwrap();
            let (fired, last) = reader.join().unwrap();
            if fired < last {
                early += 1;
            } else {
                max_late = max_late.max(Duration::from_nanos(fired - last));
            }
            // The deadline passing did not break the stream.
            s.set_read_deadline(None).unwrap();
            (&c).write_all(b"still here").unwrap();
            let mut back = [0u8; 10];
            (&*s).read_exact(&mut back).unwrap();
            assert_eq!(&back, b"still here");
        }
        (early, max_late)
    });
    stop.store(true, Ordering::Relaxed);
    let (naps, shortest, longest) = nap.join().unwrap();
    println!(
        "deadline storm: {} extensions, {PAIRS} timeouts, worst lateness {max_late:.2?}; \
         50 ms sleeper: {naps} sleeps, {shortest:.2?}..{longest:.2?}",
        PAIRS * EXTENSIONS
    );
    assert_eq!(early, 0, "reads timed out before their last deadline");
    assert!(
        max_late < Duration::from_secs(1),
        "a timeout came {max_late:?} late"
    );
    assert!(naps > 0);
    assert!(
        longest < Duration::from_millis(1050),
        "a 50 ms sleep took {longest:?}"
    );
}

/// 100,000 coroutines asleep at once for 20..220 ms: every one wakes, none early.
#[test]
fn hundred_thousand_sleepers_wake_never_early() {
    const N: u64 = 100_000;
    let _g = serial();
    let start = Instant::now();
    let (woke, max_late) = coronet::run(|| {
        let hs: Vec<_> = (0..N)
            .map(|i| {
                coronet::Spawn::new().stack_size(16 << 10).go(move || {
                    let d = Duration::from_millis(20 + i % 200);
                    let t = Instant::now();
                    coronet::time::sleep(d);
                    let took = t.elapsed();
                    assert!(took >= d, "sleeper {i} woke early: {took:?} < {d:?}");
                    took - d
                })
            })
            .collect();
        let mut max_late = Duration::ZERO;
        let mut woke = 0;
        for h in hs {
            max_late = max_late.max(h.join().unwrap());
            woke += 1;
        }
        (woke, max_late)
    });
    println!(
        "sleepers: {woke} woke in {:.2?}, worst lateness {max_late:.2?}",
        start.elapsed()
    );
    assert_eq!(woke, N);
    assert!(
        max_late < Duration::from_secs(2),
        "a sleeper woke {max_late:?} late"
    );
}

/// A 50 ms sleep on an idle runtime, from a coroutine and from a plain thread: never early,
/// and not grossly late.
#[test]
fn sleep_accuracy_on_an_idle_runtime() {
    let _g = serial();
    const NAP: Duration = Duration::from_millis(50);
    let in_coroutine = coronet::go(|| {
        (0..10)
            .map(|_| {
                let t = Instant::now();
                coronet::time::sleep(NAP);
                t.elapsed()
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let on_thread: Vec<_> = (0..10)
        .map(|_| {
            let t = Instant::now();
            coronet::time::sleep(NAP);
            t.elapsed()
        })
        .collect();
    for took in in_coroutine.iter().chain(&on_thread) {
        assert!(*took >= NAP, "woke early: {took:?}");
        assert!(
            *took < NAP + Duration::from_millis(500),
            "woke late: {took:?}"
        );
    }
    println!(
        "idle 50 ms sleeps: coroutine {:.2?}..{:.2?}, thread {:.2?}..{:.2?}",
        in_coroutine.iter().min().unwrap(),
        in_coroutine.iter().max().unwrap(),
        on_thread.iter().min().unwrap(),
        on_thread.iter().max().unwrap()
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A connected pair of coronet streams on 127.0.0.1: (client, server end).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Parks `c` in a read with a deadline `first` away and wakes it with a byte 20 ms later:
/// the coroutine's park timer stays armed for `first` after the park is over.
fn park_and_beat_the_timer(c: &mut TcpStream, s: TcpStream, first: Duration) -> TcpStream {
    c.set_read_deadline(Some(Instant::now() + first)).unwrap();
    let writer = coronet::go(move || {
        coronet::time::sleep(ms(20));
        (&s).write_all(b"x").unwrap();
        s
    });
    let mut b = [0u8; 8];
    assert_eq!(c.read(&mut b).unwrap(), 1);
    writer.join().unwrap()
}

/// Times a read that nothing answers under a deadline `d` from now. A read whose timer
/// was lost is answered by the peer `s` after 10 s, so it fails instead of hanging.
fn read_times_out_after(c: &mut TcpStream, s: TcpStream, d: Duration) -> Duration {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let rescue = std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = (&s).write_all(b"late");
        }
    });
    let start = Instant::now();
    c.set_read_deadline(Some(start + d)).unwrap();
    let got = c.read(&mut [0u8; 8]);
    let took = start.elapsed();
    done.send(()).unwrap();
    rescue.join().unwrap();
    let e = got.expect_err("the read's deadline never fired");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    took
}

/// Parks a read under a deadline `first` away that data beats, then one `second` away
/// that nothing answers, which must time out on time.
fn second_deadline_fires_on_time(first: Duration, second: Duration) {
    let _g = serial();
    coronet::go(move || {
        let (mut c, s) = tcp_pair();
        let s = park_and_beat_the_timer(&mut c, s, first);
        let took = read_times_out_after(&mut c, s, second);
        assert!(took >= second, "early: {took:?}");
        assert!(took < Duration::from_secs(10), "late: {took:?}");
    })
    .join()
    .unwrap();
}

/// A coroutine's park timer outlives the park that data beat (see `worker::ParkTimer`). A
/// later park with an earlier deadline must still time out on time, not when the entry's
/// old deadline comes, half a minute on.
#[test]
fn a_shorter_deadline_after_a_longer_one_fires_on_time() {
    second_deadline_fires_on_time(Duration::from_secs(30), ms(200));
}

/// The other way round: the entry comes due at the first, shorter deadline while the
/// coroutine waits for a later one, and must move itself there rather than wake it early
/// or drop out and leave the read without a timer.
#[test]
fn a_longer_deadline_after_a_shorter_one_fires_on_time() {
    second_deadline_fires_on_time(ms(100), ms(600));
}

/// And an entry that comes due while its coroutine waits without a deadline wakes nobody:
/// `park` may return spuriously by contract, but a timer nobody waits for is not a reason.
#[test]
fn a_timer_that_data_beat_wakes_no_later_park() {
    let _g = serial();
    let woke = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let parked = Arc::new(AtomicBool::new(false));
    let h = {
        let (woke, stop, parked) = (woke.clone(), stop.clone(), parked.clone());
        coronet::go(move || {
            let (mut c, s) = tcp_pair();
            let _s = park_and_beat_the_timer(&mut c, s, ms(150));
            parked.store(true, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                coronet::park();
                woke.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // The entry comes due 150 ms after the read parked; give it plenty of time to.
    let give_up = Instant::now() + Duration::from_secs(10);
    while !parked.load(Ordering::SeqCst) && Instant::now() < give_up {
        std::thread::sleep(ms(5));
    }
    std::thread::sleep(ms(600));
    assert_eq!(
        woke.load(Ordering::SeqCst),
        0,
        "a stale timer woke a plain park"
    );
    stop.store(true, Ordering::SeqCst);
    h.coroutine().unpark();
    h.join().unwrap();
}
