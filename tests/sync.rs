//! `coronet::sync`: every type used from coroutines and plain threads at once.
//!
//! Waits have generous bounds (seconds where milliseconds are expected): these assert that
//! nobody waits forever and that the counts add up, never how fast.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use coronet::sync::{Barrier, Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};

/// Two workers, as the contention tests ask for; whichever test starts first sets it.
fn setup() {
    let _ = coronet::Builder::new().workers(2).build_global();
}

/// Aborts the test process with a message if the test has not finished in `secs`: a lost
/// wake-up should fail loudly, not hang CI.
struct Watchdog(Option<mpsc::Sender<()>>);

fn watchdog(name: &'static str, secs: u64) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
            eprintln!(
                "{name}: still waiting after {secs}s (lost wake-up?)\n{}",
                coronet::dump()
            );
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take()); // disconnect: the watchdog thread ends quietly
    }
}

/// Tracks how many are inside a section at once, and the most ever seen.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) -> usize {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        n
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------- Mutex

#[test]
fn mutex_counts_add_up_under_contention_from_coroutines_and_threads() {
    setup();
    let _w = watchdog("mutex contention", 60);
    const COROS: usize = 1000;
    const PER_CORO: usize = 100;
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5000;
    let m = Arc::new(Mutex::new(0usize));
    let inside = Arc::new(InFlight::default());

    let coros: Vec<_> = (0..COROS)
        .map(|i| {
            let (m, inside) = (m.clone(), inside.clone());
            coronet::go(move || {
                for j in 0..PER_CORO {
                    let mut g = m.lock();
                    assert_eq!(inside.enter(), 1, "two holders at once");
                    let v = *g;
                    if (i + j) % 16 == 0 {
                        // hold it while others on this worker run and queue up
                        coronet::yield_now();
                    }
                    *g = v + 1;
                    inside.leave();
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (m, inside) = (m.clone(), inside.clone());
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut g = m.lock();
                    assert_eq!(inside.enter(), 1, "two holders at once");
                    *g += 1;
                    inside.leave();
                }
            })
        })
        .collect();
    for h in coros {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), COROS * PER_CORO + THREADS * PER_THREAD);
}

/// A hog re-locks in a tight loop on one thread; the waiter is on another. Without the
/// hand-off, the hog's unlock→lock is nanoseconds while the waiter takes microseconds to
/// wake, so it would (practically) never get in before the hog gives up.
fn hog_cannot_starve_waiter(hog_in_coroutine: bool) {
    setup();
    let _w = watchdog("mutex starvation", 60);
    let m = Arc::new(Mutex::new(0u64));
    let waiter_in = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    const HOG_CAP: Duration = Duration::from_secs(10);

    let hog = {
        let (m, waiter_in, started) = (m.clone(), waiter_in.clone(), started.clone());
        move || {
            let start = Instant::now();
            let mut rounds = 0u64;
            while !waiter_in.load(Ordering::SeqCst) && start.elapsed() < HOG_CAP {
                let mut g = m.lock();
                started.store(true, Ordering::SeqCst);
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
                *g += 1;
                rounds += 1;
            }
            (waiter_in.load(Ordering::SeqCst), rounds)
        }
    };
    let waiter = {
        let (m, waiter_in, started) = (m.clone(), waiter_in.clone(), started.clone());
        move || {
            while !started.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            let _g = m.lock();
            waiter_in.store(true, Ordering::SeqCst);
        }
    };
    let (got_in, rounds) = if hog_in_coroutine {
        let h = coronet::go(hog);
        let t = thread::spawn(waiter);
        t.join().unwrap();
        h.join().unwrap()
    } else {
        let h = thread::spawn(hog);
        coronet::go(waiter).join().unwrap();
        h.join().unwrap()
    };
    assert!(
        got_in,
        "waiter never got the lock during {HOG_CAP:?} of re-locking"
    );
    assert!(rounds > 0);
}

#[test]
fn mutex_relocking_coroutine_cannot_starve_a_thread() {
    hog_cannot_starve_waiter(true);
}

#[test]
fn mutex_relocking_thread_cannot_starve_a_coroutine() {
    hog_cannot_starve_waiter(false);
}

/// The mechanism behind the two tests above, made deterministic: once a waiter has waited
/// past the starvation threshold (1 ms), unlock hands it the lock, so the unlocker cannot
/// take it straight back. (In normal mode `try_lock` right after the unlock would win: the
/// woken waiter is still microseconds away from running.)
#[test]
fn mutex_hands_off_to_a_long_waiting_waiter() {
    setup();
    let _w = watchdog("mutex hand-off", 30);
    for waiter_in_coroutine in [true, false] {
        let m = Arc::new(Mutex::new(0));
        let g = m.lock();
        let about_to_lock = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (m2, a2, r2) = (m.clone(), about_to_lock.clone(), release.clone());
        let waiter = move || {
            a2.store(true, Ordering::SeqCst);
            let mut g = m2.lock();
            *g += 1;
            // keep it until the test has looked, however fast we were woken
            while !r2.load(Ordering::SeqCst) {
                coronet::time::sleep(Duration::from_millis(1));
            }
        };
        let join: Box<dyn FnOnce()> = if waiter_in_coroutine {
            let h = coronet::go(waiter);
            Box::new(move || h.join().unwrap())
        } else {
            let t = thread::spawn(waiter);
            Box::new(move || t.join().unwrap())
        };
        while !about_to_lock.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // queued by then (it needs µs; 500 ms allows for a stalled machine, as nothing
        // here can tell that a plain thread has queued), and far past 1 ms
        thread::sleep(Duration::from_millis(500));
        drop(g);
        let took_it_back = m.try_lock().is_some();
        release.store(true, Ordering::SeqCst);
        assert!(
            !took_it_back,
            "unlock must hand the lock to the starving waiter, not free it"
        );
        join();
        assert_eq!(*m.lock(), 1);
    }
}

#[test]
fn mutex_panic_while_holding_releases_it() {
    setup();
    let _w = watchdog("mutex panic", 30);
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let err = coronet::go(move || {
        let mut g = m2.lock();
        *g = 2;
        panic!("boom with the lock held");
    })
    .join()
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom with the lock held"));
    // unlocked, data as the panicking holder left it, from a thread and a coroutine
    assert_eq!(*m.try_lock().expect("released by the unwind"), 2);
    let m3 = m.clone();
    thread::spawn(move || {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = m3.lock();
            panic!("and from a thread");
        }));
    })
    .join()
    .unwrap();
    let m4 = m.clone();
    assert_eq!(coronet::go(move || *m4.lock()).join().unwrap(), 2);
}

#[test]
fn mutex_guard_held_across_a_park_blocks_a_thread_until_released() {
    setup();
    let _w = watchdog("mutex across park", 30);
    let m = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let m2 = m.clone();
    let h = coronet::go(move || {
        let mut g = m2.lock();
        tx.send(()).unwrap();
        coronet::time::sleep(Duration::from_millis(50)); // parks with the lock held
        g.push("coroutine");
    });
    rx.recv().unwrap();
    assert!(m.try_lock().is_none());
    m.lock().push("thread"); // blocks until the coroutine's sleep is over
    h.join().unwrap();
    assert_eq!(*m.lock(), ["coroutine", "thread"]);
}

// -------------------------------------------------------------------------------- Condvar

#[test]
fn condvar_bounded_producer_consumer() {
    setup();
    let _w = watchdog("condvar producer/consumer", 60);
    const CAP: usize = 4;
    const PER_PRODUCER: usize = 1000;
    const PRODUCERS: usize = 6; // 4 coroutines + 2 threads
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;

    struct Shared {
        q: Mutex<(VecDeque<usize>, usize)>, // (items, items still to be consumed)
        not_empty: Condvar,
        not_full: Condvar,
    }
    let s = Arc::new(Shared {
        q: Mutex::new((VecDeque::new(), TOTAL)),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let produce = |s: Arc<Shared>, p: usize| {
        move || {
            for i in 0..PER_PRODUCER {
                let mut g = s.not_full.wait_while(s.q.lock(), |(q, _)| q.len() >= CAP);
                assert!(g.0.len() < CAP);
                g.0.push_back(p * PER_PRODUCER + i);
                drop(g);
                s.not_empty.notify_one();
            }
        }
    };
    let consume = |s: Arc<Shared>| {
        move || {
            let mut sum = 0usize;
            loop {
                let mut g = s.q.lock();
                while g.0.is_empty() && g.1 > 0 {
                    g = s.not_empty.wait(g);
                }
                if g.1 == 0 {
                    return sum;
                }
                sum += g.0.pop_front().unwrap();
                g.1 -= 1;
                let last = g.1 == 0;
                drop(g);
                s.not_full.notify_one();
                if last {
                    s.not_empty.notify_all(); // let the other consumers see the end
                }
            }
        }
    };
    let mut producers = Vec::new();
    let mut pthreads = Vec::new();
    for p in 0..PRODUCERS {
        if p < 4 {
            producers.push(coronet::go(produce(s.clone(), p)));
        } else {
            pthreads.push(thread::spawn(produce(s.clone(), p)));
        }
    }
    let consumers: Vec<_> = (0..4).map(|_| coronet::go(consume(s.clone()))).collect();
    let cthread = thread::spawn(consume(s.clone()));
    let mut sum: usize = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    sum += cthread.join().unwrap();
    producers.into_iter().for_each(|h| h.join().unwrap());
    pthreads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        sum,
        TOTAL * (TOTAL - 1) / 2,
        "every item consumed exactly once"
    );
}

#[test]
fn condvar_wait_timeout_times_out_in_coroutine_and_thread() {
    setup();
    let _w = watchdog("condvar timeout", 30);
    let check = || {
        let (m, cv) = (Mutex::new(5), Condvar::new());
        let start = Instant::now();
        let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(30));
        assert!(r.timed_out());
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(*g, 5); // re-locked
        drop(g);
        assert!(m.try_lock().is_some());
    };
    coronet::go(check).join().unwrap();
    thread::spawn(check).join().unwrap();
}

#[test]
fn condvar_wait_timeout_notified_in_time_is_not_a_timeout() {
    setup();
    let _w = watchdog("condvar notified", 30);
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    let waiter = coronet::go(move || {
        let (m, cv) = &*p;
        let mut g = m.lock();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !*g {
            let (g2, r) = cv.wait_timeout(g, deadline - Instant::now());
            assert!(!r.timed_out(), "notified long before 20s");
            g = g2;
        }
    });
    thread::sleep(Duration::from_millis(20));
    *pair.0.lock() = true;
    pair.1.notify_all();
    waiter.join().unwrap();
}

// --------------------------------------------------------------------------------- RwLock

#[test]
fn rwlock_readers_share_and_writers_exclude() {
    setup();
    let _w = watchdog("rwlock share/exclude", 60);
    let lock = Arc::new(RwLock::new(0usize));
    let readers = Arc::new(InFlight::default());
    let writers = Arc::new(InFlight::default());
    let read = {
        let (lock, readers, writers) = (lock.clone(), readers.clone(), writers.clone());
        move || {
            for _ in 0..5 {
                let g = lock.read();
                readers.enter();
                assert_eq!(
                    writers.now.load(Ordering::SeqCst),
                    0,
                    "reader beside a writer"
                );
                let v = *g;
                coronet::time::sleep(Duration::from_millis(5));
                assert_eq!(*g, v, "data changed under a read lock");
                readers.leave();
            }
        }
    };
    let write = {
        let (lock, readers, writers) = (lock.clone(), readers.clone(), writers.clone());
        move || {
            for _ in 0..20 {
                let mut g = lock.write();
                assert_eq!(writers.enter(), 1, "two writers at once");
                assert_eq!(
                    readers.now.load(Ordering::SeqCst),
                    0,
                    "writer beside readers"
                );
                *g += 1;
                coronet::yield_now();
                writers.leave();
            }
        }
    };
    let mut cs: Vec<_> = (0..20).map(|_| coronet::go(read.clone())).collect();
    cs.extend((0..3).map(|_| coronet::go(write.clone())));
    let ts: Vec<_> = vec![
        thread::spawn(read.clone()),
        thread::spawn(read),
        thread::spawn(write),
    ];
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert!(readers.max() > 1, "readers never overlapped");
    assert_eq!(writers.max(), 1);
    assert_eq!(*lock.read(), 4 * 20);
}

#[test]
fn rwlock_writer_not_starved_by_continuous_readers() {
    setup();
    let _w = watchdog("rwlock writer starvation", 60);
    const READERS_CAP: Duration = Duration::from_secs(10);
    let lock = Arc::new(RwLock::new(0u32));
    let written = Arc::new(AtomicBool::new(false));
    let readers_in = Arc::new(AtomicUsize::new(0));
    // Readers overlap: each holds its read lock 2 ms and re-takes it at once, so without
    // writer preference the lock would never be free.
    let reader = {
        let (lock, written, readers_in) = (lock.clone(), written.clone(), readers_in.clone());
        move |sleep: fn(Duration)| {
            let start = Instant::now();
            while !written.load(Ordering::SeqCst) && start.elapsed() < READERS_CAP {
                let _g = lock.read();
                readers_in.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(2));
                readers_in.fetch_sub(1, Ordering::SeqCst);
            }
            // stopped because the writer got in, not because time ran out
            written.load(Ordering::SeqCst)
        }
    };
    let mut cs = Vec::new();
    for _ in 0..8 {
        let r = reader.clone();
        cs.push(coronet::go(move || r(coronet::time::sleep)));
    }
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let r = reader.clone();
            thread::spawn(move || r(thread::sleep))
        })
        .collect();
    // wait until readers are in, then write from a coroutine
    while readers_in.load(Ordering::SeqCst) == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    let (l2, w2) = (lock.clone(), written.clone());
    let writer = coronet::go(move || {
        *l2.write() = 1;
        w2.store(true, Ordering::SeqCst);
    });
    writer.join().unwrap();
    let mut saw_write: Vec<bool> = cs.into_iter().map(|h| h.join().unwrap()).collect();
    saw_write.extend(ts.into_iter().map(|t| t.join().unwrap()));
    assert!(
        saw_write.iter().all(|&w| w),
        "writer starved for {READERS_CAP:?} of continuous reading"
    );
    assert_eq!(*lock.read(), 1);
}

// ------------------------------------------------------------------------------ WaitGroup

#[test]
fn waitgroup_ten_thousand_coroutines() {
    setup();
    let _w = watchdog("waitgroup", 60);
    const N: usize = 10_000;
    let wg = Arc::new(WaitGroup::new());
    let done = Arc::new(AtomicUsize::new(0));
    wg.add(N as isize);
    // one more waiter inside a coroutine, besides this thread
    let (wg2, done2) = (wg.clone(), done.clone());
    let coro_waiter = coronet::go(move || {
        wg2.wait();
        done2.load(Ordering::SeqCst)
    });
    for i in 0..N {
        let (wg, done) = (wg.clone(), done.clone());
        coronet::go(move || {
            if i % 100 == 0 {
                coronet::yield_now();
            }
            done.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(done.load(Ordering::SeqCst), N);
    assert_eq!(coro_waiter.join().unwrap(), N);
    // reusable: a second round from threads
    wg.add(3);
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let wg = wg.clone();
            thread::spawn(move || wg.done())
        })
        .collect();
    wg.wait();
    ts.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
#[should_panic(expected = "sync: negative WaitGroup counter")]
fn waitgroup_negative_counter_panics_with_gos_message() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
}

#[test]
fn waitgroup_overflow_panics_with_a_message_and_keeps_the_counter() {
    let wg = coronet::sync::WaitGroup::new();
    wg.add(isize::MAX);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.add(1)));
    let payload = caught.expect_err("an add past isize::MAX must panic");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap();
    assert_eq!(message, "sync: WaitGroup counter overflow");
    // The counter is where it was: taking isize::MAX back releases a waiter.
    wg.add(-isize::MAX);
    wg.wait();
}

// ------------------------------------------------------------------------------ Semaphore

#[test]
fn semaphore_bounds_concurrency() {
    setup();
    let _w = watchdog("semaphore", 60);
    const N: usize = 3;
    let sem = Arc::new(Semaphore::new(N));
    let inflight = Arc::new(InFlight::default());
    let work = {
        let (sem, inflight) = (sem.clone(), inflight.clone());
        move |sleep: fn(Duration)| {
            for _ in 0..5 {
                let _p = sem.acquire();
                assert!(inflight.enter() <= N, "more holders than permits");
                sleep(Duration::from_millis(1));
                inflight.leave();
            }
        }
    };
    let cs: Vec<_> = (0..50)
        .map(|_| {
            let w = work.clone();
            coronet::go(move || w(coronet::time::sleep))
        })
        .collect();
    let ts: Vec<_> = (0..4)
        .map(|_| {
            let w = work.clone();
            thread::spawn(move || w(thread::sleep))
        })
        .collect();
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(inflight.max(), N);
    assert_eq!(sem.available_permits(), N);
}

#[test]
fn semaphore_acquire_timeout_gives_up_then_succeeds() {
    setup();
    let _w = watchdog("semaphore timeout", 30);
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s2 = sem.clone();
    coronet::go(move || {
        let start = Instant::now();
        assert!(s2.acquire_timeout(Duration::from_millis(20)).is_none());
        assert!(start.elapsed() >= Duration::from_millis(20));
    })
    .join()
    .unwrap();
    // a timed-out waiter left nothing behind: the fast path works again after release
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    let p = sem.try_acquire().expect("permit free");
    let s3 = sem.clone();
    let waiter = thread::spawn(move || s3.acquire_timeout(Duration::from_secs(20)).is_some());
    thread::sleep(Duration::from_millis(20));
    drop(p);
    assert!(waiter.join().unwrap(), "released permit reached the waiter");
    assert_eq!(sem.available_permits(), 1);
}

/// Timeouts racing with releases: a waiter granted a permit just as its time ran out must
/// keep it (and return it), never lose or duplicate it.
#[test]
fn semaphore_timeouts_racing_releases_keep_the_count() {
    setup();
    let _w = watchdog("semaphore timeout race", 60);
    const N: usize = 2;
    let sem = Arc::new(Semaphore::new(N));
    let inflight = Arc::new(InFlight::default());
    let got = Arc::new(AtomicUsize::new(0));
    let work = {
        let (sem, inflight, got) = (sem.clone(), inflight.clone(), got.clone());
        move || {
            for i in 0..200u64 {
                // timeouts around the hold time, so many expire right as a permit comes
                if let Some(_p) = sem.acquire_timeout(Duration::from_micros(50 + i % 7 * 30)) {
                    assert!(inflight.enter() <= N, "more holders than permits");
                    got.fetch_add(1, Ordering::Relaxed);
                    coronet::yield_now();
                    inflight.leave();
                }
            }
        }
    };
    let cs: Vec<_> = (0..16).map(|_| coronet::go(work.clone())).collect();
    let ts: Vec<_> = (0..2).map(|_| thread::spawn(work.clone())).collect();
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert!(got.load(Ordering::Relaxed) > 0);
    assert_eq!(
        sem.available_permits(),
        N,
        "a permit was lost or duplicated"
    );
    let all: Vec<_> = (0..N)
        .map(|_| sem.try_acquire().expect("fast path"))
        .collect();
    assert!(sem.try_acquire().is_none());
    drop(all);
}

/// Blocking acquires mixed with timed ones. A release that saw `WAITERS` could reach the
/// queue lock after the last waiter had timed out, then rewrite the count over an acquire
/// that took the fast path meanwhile: a permit duplicated for good (4 holders of 3; seen
/// in most runs of this test before the fix).
#[test]
fn semaphore_blocking_and_timed_acquires_never_over_admit() {
    setup();
    let _w = watchdog("semaphore mixed acquires", 120);
    const N: usize = 3;
    for _round in 0..40 {
        let sem = Arc::new(Semaphore::new(N));
        let inflight = Arc::new(InFlight::default());
        let work = |id: u64| {
            let (sem, inflight) = (sem.clone(), inflight.clone());
            move || {
                let mut seed = id * 31 + 7;
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                for _ in 0..3000 {
                    let permit = if next() % 2 == 0 {
                        Some(sem.acquire())
                    } else {
                        sem.acquire_timeout(Duration::from_micros(next() % 200))
                    };
                    if let Some(_p) = permit {
                        assert!(inflight.enter() <= N, "more holders than permits");
                        if next() % 8 == 0 {
                            coronet::yield_now();
                        }
                        inflight.leave();
                    }
                }
            }
        };
        let cs: Vec<_> = (0..9).map(|i| coronet::go(work(i))).collect();
        let ts: Vec<_> = (9..12).map(|i| thread::spawn(work(i))).collect();
        cs.into_iter().for_each(|h| h.join().unwrap());
        ts.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(
            sem.available_permits(),
            N,
            "a permit was lost or duplicated"
        );
    }
}

/// Readers, writers and `try_write` on one lock from coroutines and threads: a writer must
/// never see a reader's guard alive (the pair is written together, read together), and the
/// count must come back to "free". The race this guards against (a last reader out reaching
/// the queue lock after the queue had emptied, then rewriting the word over a fast-path
/// reader) needs preemption at two exact points; it was shown with injected delays.
#[test]
fn rwlock_fast_paths_and_queue_hand_offs_keep_readers_counted() {
    setup();
    let _w = watchdog("rwlock mixed", 120);
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let work = |id: u64| {
        let lock = lock.clone();
        move || {
            for i in 0..5000u64 {
                match (id + i) % 5 {
                    0 => {
                        let mut w = lock.write();
                        w.0 += 1;
                        w.1 += 1;
                    }
                    1 => {
                        if let Some(mut w) = lock.try_write() {
                            w.0 += 1;
                            w.1 += 1;
                        }
                    }
                    _ => {
                        let r = lock.read();
                        let seen = *r;
                        if i % 16 == 0 {
                            coronet::yield_now();
                        }
                        assert_eq!(*r, seen, "a writer ran beside a live read guard");
                        assert_eq!(r.0, r.1, "torn read");
                    }
                }
            }
        }
    };
    let cs: Vec<_> = (0..9).map(|i| coronet::go(work(i))).collect();
    let ts: Vec<_> = (9..12).map(|i| thread::spawn(work(i))).collect();
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert!(
        lock.try_write().is_some(),
        "the lock word did not come back to free"
    );
}

// ----------------------------------------------------------------------------------- Once

#[test]
fn once_runs_exactly_once_across_racing_coroutines_and_threads() {
    setup();
    let _w = watchdog("once", 60);
    const COROS: usize = 80;
    const THREADS: usize = 20;
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let value = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(COROS + THREADS));
    let racer = {
        let (once, runs, value, start) = (once.clone(), runs.clone(), value.clone(), start);
        move || {
            start.wait();
            once.call_once(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                coronet::time::sleep(Duration::from_millis(10)); // others arrive meanwhile
                value.store(42, Ordering::Relaxed);
            });
            // whoever ran it, its effects are visible once call_once returns
            assert_eq!(value.load(Ordering::Relaxed), 42);
            assert!(once.is_completed());
        }
    };
    let cs: Vec<_> = (0..COROS).map(|_| coronet::go(racer.clone())).collect();
    let ts: Vec<_> = (0..THREADS).map(|_| thread::spawn(racer.clone())).collect();
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// std's rule, not Go's (found by the eighth audit): `call_once` returning must mean the
/// initialisation finished, which unsafe one-time init relies on; a panicked one poisons.
#[test]
fn once_that_panicked_is_poisoned_as_std_says() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let once = Once::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        once.call_once(|| panic!("init failed"))
    }));
    assert!(r.is_err());
    assert!(!once.is_completed());
    let later = catch_unwind(AssertUnwindSafe(|| once.call_once(|| unreachable!())));
    assert!(
        later.is_err(),
        "a later call_once must not return: nothing was initialised"
    );
    once.call_once_force(|state| assert!(state.is_poisoned()));
    assert!(once.is_completed());
    once.call_once(|| unreachable!("complete now"));
    once.call_once_force(|_| unreachable!("complete now"));
}

/// Callers that wait while the initialiser panics panic too, coroutines and threads alike
/// (they returned normally before, with nothing initialised).
#[test]
fn once_waiters_panic_when_the_initialiser_panics() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    setup();
    let _w = watchdog("once poisoned", 60);
    let once = Arc::new(Once::new());
    let o = once.clone();
    let runner = coronet::go(move || {
        o.call_once(|| {
            coronet::time::sleep(Duration::from_millis(200)); // the waiters queue meanwhile
            panic!("init failed");
        })
    });
    thread::sleep(Duration::from_millis(50));
    let waiter = |once: Arc<Once>| {
        move || catch_unwind(AssertUnwindSafe(|| once.call_once(|| unreachable!()))).is_err()
    };
    let c = coronet::go(waiter(once.clone()));
    let t = thread::spawn(waiter(once.clone()));
    assert!(runner.join().is_err());
    assert!(c.join().unwrap(), "a waiting coroutine returned normally");
    assert!(t.join().unwrap(), "a waiting thread returned normally");
    assert!(!once.is_completed());
}

// -------------------------------------------------------------------------------- Barrier

#[test]
fn barrier_one_leader_per_generation_across_coroutines_and_threads() {
    setup();
    let _w = watchdog("barrier", 60);
    const PARTIES: usize = 6; // 4 coroutines + 2 threads
    const ROUNDS: usize = 50;
    let barrier = Arc::new(Barrier::new(PARTIES));
    let arrived: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
    let leaders: Arc<Vec<AtomicUsize>> =
        Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
    let party = {
        let (b, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
        move || {
            for r in 0..ROUNDS {
                arrived[r].fetch_add(1, Ordering::SeqCst);
                let res = b.wait();
                assert_eq!(
                    arrived[r].load(Ordering::SeqCst),
                    PARTIES,
                    "released before everyone arrived in round {r}"
                );
                if res.is_leader() {
                    leaders[r].fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    };
    let cs: Vec<_> = (0..4).map(|_| coronet::go(party.clone())).collect();
    let ts: Vec<_> = (0..2).map(|_| thread::spawn(party.clone())).collect();
    cs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
    for (r, l) in leaders.iter().enumerate() {
        assert_eq!(l.load(Ordering::SeqCst), 1, "round {r}: leaders");
    }
}

#[test]
fn barrier_of_zero_or_one_never_waits() {
    assert!(Barrier::new(0).wait().is_leader());
    let b = Barrier::new(1);
    assert!(b.wait().is_leader());
    assert!(b.wait().is_leader());
}
