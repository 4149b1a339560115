//! The runtime's public behaviour: spawn, join, panics, sleep, yield, blocking pool.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn spawn_and_join_from_a_plain_thread() {
    let h = coronet::go(|| 40 + 2);
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn join_from_inside_a_coroutine() {
    let v = coronet::run(|| {
        let inner: Vec<_> = (0..100).map(|i| coronet::go(move || i)).collect();
        inner.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    });
    assert_eq!(v, 4950);
}

#[test]
fn hundred_thousand_coroutines_spawned_and_joined() {
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let sum = coronet::run(move || {
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| {
                let c = c.clone();
                coronet::go(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(counter.load(Ordering::Relaxed), 100_000);
    assert_eq!(sum, 100_000 * 99_999 / 2);
}

#[test]
fn panic_comes_back_through_join_and_others_continue() {
    let bad = coronet::go(|| -> u32 { panic!("boom in a coroutine") });
    let good = coronet::go(|| {
        coronet::time::sleep(Duration::from_millis(20));
        7
    });
    let err = bad.join().unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in a coroutine"));
    assert_eq!(good.join().unwrap(), 7);
    // the runtime is still serving
    assert_eq!(coronet::go(|| 1).join().unwrap(), 1);
}

#[test]
#[should_panic(expected = "resumed on the caller")]
fn run_resumes_a_panic_on_the_caller() {
    coronet::run(|| panic!("resumed on the caller"));
}

#[test]
fn ten_thousand_sleepers_all_wake() {
    let start = Instant::now();
    let woke = coronet::run(|| {
        let hs: Vec<_> = (0..10_000)
            .map(|i| {
                coronet::Spawn::new().stack_size(16 << 10).go(move || {
                    let d = Duration::from_millis(100 + (i % 100));
                    let t = Instant::now();
                    coronet::time::sleep(d);
                    t.elapsed() >= d
                })
            })
            .collect();
        hs.into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(woke, 10_000, "every sleeper slept at least its duration");
    // generous: 10k sleeps of ~0.1-0.2 s must not take anywhere near 30 s
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn two_busy_coroutines_that_yield_both_progress() {
    // One worker would be the hard case; with any number, each must see the other advance
    // while it is itself still running. Neither stops on its own: a coroutine that quit
    // after seeing the other move could leave the other to spin with nothing moving (the
    // flaw of an earlier version of this test, seen under valgrind). They run until both
    // have seen a move and made 1,000 rounds, or until the deadline fails the test.
    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let saw = [
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let spin = |me: usize| {
        let (mine, other) = (counts[me].clone(), counts[1 - me].clone());
        let (saw, stop) = (saw[me].clone(), stop.clone());
        move || {
            let mut last = other.load(Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                mine.fetch_add(1, Ordering::Relaxed);
                let now = other.load(Ordering::Relaxed);
                if now != last {
                    saw.store(true, Ordering::Relaxed);
                }
                last = now;
                coronet::yield_now();
            }
        }
    };
    let handles = [coronet::go(spin(0)), coronet::go(spin(1))];
    let done = || {
        (0..2).all(|i| saw[i].load(Ordering::Relaxed) && counts[i].load(Ordering::Relaxed) >= 1000)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let finished = done();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(
        finished,
        "after 30 s: counts {:?}, saw the other move {:?}",
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect::<Vec<_>>(),
        saw.iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect::<Vec<_>>()
    );
}

#[test]
fn spawn_blocking_does_not_delay_other_coroutines() {
    coronet::run(|| {
        let blocker = coronet::go(|| {
            coronet::spawn_blocking(|| std::thread::sleep(Duration::from_millis(500)))
        });
        // Meanwhile a short sleeper on the runtime finishes long before the blocker.
        let t = Instant::now();
        coronet::time::sleep(Duration::from_millis(10));
        let quick = t.elapsed();
        assert!(!blocker.is_finished(), "blocking call should still run");
        assert!(quick < Duration::from_millis(400), "{quick:?}");
        blocker.join().unwrap();
    });
}

/// Jobs submitted back to back while the pool has idle threads: each must find a thread of
/// its own, even before the idle ones have woken. Here `m + 1` jobs that can only finish
/// together (each waits for all the others) meet `m` idle threads. One idle thread used to
/// be counted as free by every submit in between, so a job queued behind another that was
/// waiting for it (about half the rounds failed).
#[test]
fn blocking_jobs_that_must_run_together_get_a_thread_each() {
    // The other tests here use at most one blocking job at a time.
    coronet::run(|| coronet::spawn_blocking(|| ())); // at least one pool thread, soon idle
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(20)); // let the pool's threads go idle
        let m = coronet::stats().blocking_threads;
        let arrived = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..m + 1)
            .map(|_| {
                let arrived = arrived.clone();
                coronet::go(move || {
                    coronet::spawn_blocking(move || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        let start = Instant::now();
                        while arrived.load(Ordering::SeqCst) < m + 1 {
                            if start.elapsed() > Duration::from_secs(10) {
                                return false; // a job never started: fail, do not hang
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        true
                    })
                })
            })
            .collect();
        for j in jobs {
            assert!(
                j.join().unwrap(),
                "round {round}: {} jobs did not all run at once on {m} idle threads and new ones",
                m + 1
            );
        }
    }
    a_name_lookup_gets_a_thread_when_user_jobs_fill_the_pool();
}

/// The pool's cap (512 threads) is full of user jobs that wait for a coroutine, and that
/// coroutine must first resolve a name: the runtime's own lookup may go past the cap. It
/// used to queue behind the jobs waiting for it, for ever. Called by the test above once it
/// is done, as this leaves 512 idle threads behind that would change what that one tests.
fn a_name_lookup_gets_a_thread_when_user_jobs_fill_the_pool() {
    use std::sync::{Condvar, Mutex};
    const POOL_CAP: usize = 512; // `MAX_THREADS` in src/runtime/blocking.rs
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..POOL_CAP)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            coronet::go(move || {
                coronet::spawn_blocking(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let (open, cond) = &*gate;
                    let open = open.lock().unwrap();
                    // bounded, so a regression fails below instead of hanging
                    let (open, _) = cond
                        .wait_timeout_while(open, Duration::from_secs(30), |o| !*o)
                        .unwrap();
                    *open
                })
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::SeqCst) < POOL_CAP {
        assert!(Instant::now() < until, "the user jobs did not all start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let opener = coronet::go(move || {
        let found = coronet::net::lookup_host("localhost:80").map(|a| a.count());
        let (open, cond) = &*gate;
        *open.lock().unwrap() = true;
        cond.notify_all();
        found
    });
    for j in jobs {
        assert!(
            j.join().unwrap(),
            "a job was never let go: the lookup found no thread"
        );
    }
    assert!(opener.join().unwrap().unwrap() > 0);
}

#[test]
fn park_and_unpark_between_coroutines() {
    let turn = Arc::new(AtomicUsize::new(0));
    coronet::run(move || {
        let me = coronet::current();
        let t2 = turn.clone();
        let h = coronet::go(move || {
            for i in 0..1000 {
                while t2.load(Ordering::Acquire) != 2 * i + 1 {
                    coronet::park();
                }
                t2.store(2 * i + 2, Ordering::Release);
                me.unpark();
            }
        });
        let other = h.coroutine();
        for i in 0..1000 {
            turn.store(2 * i + 1, Ordering::Release);
            other.unpark();
            while turn.load(Ordering::Acquire) != 2 * i + 2 {
                coronet::park();
            }
        }
        h.join().unwrap();
    });
}

#[test]
fn names_and_dump() {
    // Sleeps until told to stop: other tests in this file may keep the workers busy (the
    // 100,000-coroutine one queues ahead of us), so poll the dump rather than guess a delay.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = coronet::Spawn::new().name("dump-me").go(move || {
        while !stop2.load(Ordering::SeqCst) {
            coronet::time::sleep(Duration::from_millis(20));
        }
        coronet::current().name().map(String::from)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut d = coronet::dump();
    while !d.contains("'dump-me' [sleep]") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        d = coronet::dump();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(d.contains("'dump-me' [sleep]"), "{d}");
    assert_eq!(h.join().unwrap().as_deref(), Some("dump-me"));
    let s = coronet::stats();
    assert!(
        s.spawned >= 1 && s.context_switches >= 1 && s.workers >= 1,
        "{s:?}"
    );
}

/// A coroutine parked on a socket is listed with the fd it waits for (it said `fd -1`
/// until the tenth audit).
#[test]
fn dump_names_the_fd_of_an_io_wait() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let (mut a, mut b) = coronet::net::UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let h = coronet::Spawn::new()
        .name("reads-fd")
        .go(move || b.read(&mut [0u8; 8]).unwrap());
    let want = format!("'reads-fd' [IO wait: read fd {fd}]");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut d = coronet::dump();
    while !d.contains(&want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        d = coronet::dump();
    }
    a.write_all(b"x").unwrap();
    assert!(d.contains(&want), "{want} not in:\n{d}");
    assert_eq!(h.join().unwrap(), 1);
}

#[test]
fn builder_after_start_is_an_error() {
    coronet::go(|| ()).join().unwrap();
    let e = coronet::Builder::new()
        .workers(1)
        .build_global()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn try_go_maps_the_stack_up_front() {
    let h = coronet::Spawn::new()
        .stack_size(64 << 10)
        .try_go(|| 5)
        .unwrap();
    assert_eq!(h.join().unwrap(), 5);
}
