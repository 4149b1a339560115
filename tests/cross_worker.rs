//! What one worker owes another: work it cannot do itself, and memory it holds for it. Two
//! workers for the whole binary, whatever the machine has; the tests run one at a time.
//!
//! - Timers armed by a coroutine on one worker and let go of on another. Only a worker
//!   touches its own timer heap, so such a cancel is queued for the owner. Found by an
//!   audit: before, the entry, and everything its callback held, stayed until its deadline
//!   — a `Timer`'s state and channel, a context's — an hour's worth of memory for an hour's
//!   timeout. The observable is the heap's live bytes, counted by this binary's allocator:
//!   ten thousand hour-long timers dropped elsewhere must give their memory back within
//!   seconds. The same for `time::after` receivers dropped unread, on either worker.
//! - A coroutine spawned on a worker that stays busy: the other worker must not go to sleep
//!   beside it (found by an audit of the runtime).
//! - `Spawn::same_worker`: the child starts on its parent's worker even while that worker
//!   is busy and the other idle, where a plain spawn is stolen; from a plain thread it is a
//!   plain spawn, which the idle worker starts while the other is busy.
//! - `Spawn::spread`: children go to the worker holding fewer coroutines, even a busy one,
//!   and wait for it there, where the idle worker would have started (or stolen) them all.

use coronet::chan::{self, RecvTimeoutError, Sender};
use coronet::context::Context;
use coronet::time::Timer;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// System's allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's promises for `alloc` are passed on as they are.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this `layout` (the caller's promise).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const HOUR: Duration = Duration::from_secs(3600);
const N: usize = 64 * 160; // a multiple of the batch that wakes an idle owner

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

type Job = Box<dyn FnOnce() + Send>;

/// A coroutine serving jobs in order, on whichever worker it started on (it stays there).
struct Pinned {
    thread: ThreadId,
    jobs: Sender<Job>,
}

impl Pinned {
    fn start() -> Pinned {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            coronet::Builder::new()
                .workers(2)
                .build_global()
                .expect("the only runtime of this binary");
        });
        let (jobs, rx) = chan::unbounded::<Job>();
        let (tx, at) = chan::bounded(1);
        coronet::go(move || {
            tx.send(std::thread::current().id()).unwrap();
            while let Ok(job) = rx.recv() {
                job();
            }
        });
        Pinned {
            thread: at.recv().unwrap(),
            jobs,
        }
    }

    /// A job server on the same worker as `self` (`same`) or on the other one.
    fn beside(&self, same: bool) -> Pinned {
        for _ in 0..1000 {
            let p = Pinned::start();
            if (p.thread == self.thread) == same {
                return p;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no coroutine started where it was wanted");
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = chan::bounded(1);
        let job: Job = Box::new(move || tx.send(f()).unwrap());
        self.jobs.send(job).unwrap();
        rx.recv().unwrap()
    }
}

/// Makes what `make` returns on `a`, lets go of it on `b`, and measures how much memory
/// comes back. A first round made and dropped on `a` itself grows `a`'s timer heap to its
/// peak first, so that the vectors' capacity, which stays, is not counted.
fn made_there_dropped_here<T: Send + 'static>(
    a: &Pinned,
    b: &Pinned,
    make: fn() -> T,
) -> (isize, isize) {
    a.run(move || drop((0..N).map(|_| make()).collect::<Vec<T>>()));
    let before = live();
    let things = a.run(move || (0..N).map(|_| make()).collect::<Vec<T>>());
    let held = live() - before;
    b.run(move || drop(things));
    let deadline = Instant::now() + Duration::from_secs(10); // generous: it takes ms
    while live() - before > held / 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    (held, live() - before)
}

fn assert_given_back((held, left): (isize, isize), what: &str) {
    assert!(
        held > (N * 100) as isize,
        "{what}: only {held} bytes for {N}"
    );
    assert!(
        left <= held / 10,
        "{what}: {left} of {held} bytes still held after they were dropped"
    );
}

#[test]
fn timers_and_deadlines_dropped_on_another_worker_give_their_memory_back() {
    let _serial = one_at_a_time();
    let a = Pinned::start();
    let b = a.beside(false);
    // the owner stays busy: a coroutine beside the timers wakes it every 10 ms
    let ticker = a.beside(true);
    let (stop_tx, stop) = chan::bounded::<()>(0);
    ticker
        .jobs
        .send(Box::new(move || {
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(10))
            {
            }
        }))
        .unwrap();
    assert_given_back(
        made_there_dropped_here(&a, &b, || Timer::new(HOUR)),
        "Timer",
    );
    assert_given_back(
        made_there_dropped_here(&a, &b, || {
            let t = Timer::new(HOUR);
            assert!(t.reset(2 * HOUR)); // later: keeps its entry, on `a`
            t
        }),
        "Timer reset later",
    );
    // Go's `defer cancel()` in a coroutine that the other worker runs
    assert_given_back(
        made_there_dropped_here(&a, &b, || Context::background().with_timeout(HOUR)),
        "context with a timeout",
    );
    // an `after` arm dropped unread, as each turn of a `select!` loop does, here and there
    // (fifth audit: every one stayed armed, with its channel, until it fired)
    assert_given_back(
        made_there_dropped_here(&a, &a, || coronet::time::after(HOUR)),
        "after, dropped on its own worker",
    );
    assert_given_back(
        made_there_dropped_here(&a, &b, || coronet::time::after(HOUR)),
        "after, dropped on the other worker",
    );
    // the same for `tick` (an audit: each stayed, with its channel, until its next tick)
    assert_given_back(
        made_there_dropped_here(&a, &a, || coronet::time::tick(HOUR)),
        "tick, dropped on its own worker",
    );
    assert_given_back(
        made_there_dropped_here(&a, &b, || coronet::time::tick(HOUR)),
        "tick, dropped on the other worker",
    );
    drop(stop_tx);
}

#[test]
fn an_idle_owner_is_woken_to_free_entries_dropped_elsewhere() {
    let _serial = one_at_a_time();
    let a = Pinned::start();
    let b = a.beside(false);
    // nothing else runs on `a`: it sleeps until its earliest timer, an hour away, unless
    // enough cancels queue up for it
    assert_given_back(
        made_there_dropped_here(&a, &b, || Timer::new(HOUR)),
        "Timer",
    );
}

/// A parent spawns a child and waits for it without parking (a busy worker), over and over:
/// the other worker must start each child. Its last look before sleeping ignored a single
/// unstarted coroutine, and when the spawn's wake-up went nowhere (no worker counted idle
/// yet, or the searcher role still held by the one going to sleep) the child waited until
/// the parent parked — for ever here, but for the bound below.
#[test]
fn an_idle_worker_starts_a_child_its_busy_parent_spins_on() {
    let _serial = one_at_a_time();
    let a = Pinned::start();
    let _b = a.beside(false); // both workers up
    let worst = a.run(|| {
        let mut worst = Duration::ZERO;
        for _ in 0..20_000 {
            let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = started.clone();
            let t = Instant::now();
            let child = coronet::go(move || s.store(true, Ordering::SeqCst));
            // generous: the child needs microseconds; a lost wake-up shows as the full bound
            // (20 s: the worst of 20,000 tries, under sanitizers, on a shared machine)
            while !started.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(20) {
                std::hint::spin_loop();
            }
            worst = worst.max(t.elapsed());
            if !started.load(Ordering::SeqCst) {
                break;
            }
            child.join().unwrap();
        }
        worst
    });
    assert!(
        worst < Duration::from_secs(20),
        "a child waited {worst:?} while a worker slept"
    );
}

/// Spawns `n` children named `{prefix}-i` from a coroutine that then keeps its worker busy
/// for up to `busy` (less once `until` says so), and returns how many had started by then,
/// what `dump()` and `stats().live` said meanwhile, and each child's thread, after joining
/// them.
fn children_of_a_busy_parent(
    same_worker: bool,
    prefix: &'static str,
    busy: Duration,
    until: fn(usize) -> bool,
) -> (usize, (String, u64), ThreadId, Vec<ThreadId>) {
    let a = Pinned::start();
    let _b = a.beside(false); // both workers up
    a.run(move || {
        let me = std::thread::current().id();
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let children: Vec<_> = (0..16)
            .map(|i| {
                let started = started.clone();
                let spawn = coronet::Spawn::new().name(format!("{prefix}-{i}"));
                let spawn = if same_worker {
                    spawn.same_worker()
                } else {
                    spawn
                };
                spawn.go(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    std::thread::current().id()
                })
            })
            .collect();
        let seen = (coronet::dump(), coronet::stats().live);
        let t = Instant::now();
        while t.elapsed() < busy && !until(started.load(Ordering::SeqCst)) {
            std::hint::spin_loop();
        }
        let early = started.load(Ordering::SeqCst);
        let threads = children.into_iter().map(|c| c.join().unwrap()).collect();
        (early, seen, me, threads)
    })
}

#[test]
fn same_worker_children_wait_for_their_busy_parent_and_run_beside_it() {
    let _serial = one_at_a_time();
    // The control: plain spawns from a busy worker are stolen by the idle one (generous:
    // it takes microseconds), so this test would see a `same_worker` child that was not.
    let (early, _, _, _) =
        children_of_a_busy_parent(false, "plain", Duration::from_secs(10), |n| n > 0);
    assert!(
        early > 0,
        "no plain child started while its parent was busy"
    );

    let (early, (dump, live), parent, threads) =
        children_of_a_busy_parent(true, "beside", Duration::from_millis(300), |_| false);
    assert_eq!(early, 0, "a same_worker child started on another worker");
    assert!(
        threads.iter().all(|&t| t == parent),
        "a same_worker child ran on another thread"
    );
    // queued where `dump()` (from the parent's worker) and `stats()` can see them
    assert!(dump.contains("'beside-0' [not started]"), "{dump}");
    assert!(dump.contains("'beside-15' [not started]"), "{dump}");
    assert!(live >= 16, "stats().live = {live} with 16 children queued");
}

/// From a plain thread there is no worker to stay on: the children are plain spawns, which
/// either worker may start. Each worker in turn is kept busy (a job that spins, never
/// parking) while the children are spawned: children queued on that worker's `same_worker`
/// queue would wait for the spin's 10 s fuse; stealable ones are started by the other.
#[test]
fn same_worker_from_a_plain_thread_is_a_plain_spawn() {
    let _serial = one_at_a_time();
    let a = Pinned::start(); // the runtime, two workers
    let b = a.beside(false);
    for (round, busy) in [&a, &b, &a, &b].into_iter().enumerate() {
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (spinning_tx, spinning) = chan::bounded::<()>(1);
        let (verdict_tx, verdict) = chan::bounded::<usize>(1);
        let seen = started.clone();
        busy.jobs
            .send(Box::new(move || {
                spinning_tx.send(()).unwrap();
                let t = Instant::now();
                // generous: the other worker starts the children in microseconds
                while seen.load(Ordering::SeqCst) < 8 && t.elapsed() < Duration::from_secs(10) {
                    std::hint::spin_loop();
                }
                verdict_tx.send(seen.load(Ordering::SeqCst)).unwrap();
            }))
            .unwrap();
        spinning.recv().unwrap(); // the worker is busy from here until the verdict
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let started = started.clone();
                coronet::Spawn::new().same_worker().go(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    i * 2
                })
            })
            .collect();
        let during = verdict.recv().unwrap();
        assert_eq!(
            during, 8,
            "round {round}: only {during} of 8 children started while a worker was busy"
        );
        let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 56);
    }
}

/// `Spawn::spread` places each child on the worker holding the fewest coroutines, and only
/// that worker starts it. The other worker is kept busy (a job that spins, never parking)
/// while a coroutine on the first, or a plain thread, spawns 32 children: plain spawns
/// would all start on the idle worker (the busy one cannot steal), so the children queued
/// for the busy worker show the placement, and their waiting until it is free shows that
/// the idle worker does not take them.
#[test]
fn spread_children_go_to_the_worker_with_fewer_coroutines_and_stay_there() {
    let _serial = one_at_a_time();
    let a = Pinned::start();
    let b = a.beside(false);
    for from_a_coroutine in [true, false] {
        let (early, idle, stats, threads) = spread_beside_a_busy_worker(&a, &b, from_a_coroutine);
        let on_idle = threads.iter().filter(|&&t| t == idle).count();
        let on_busy = threads.iter().filter(|&&t| t == b.thread).count();
        let case = if from_a_coroutine {
            "from a coroutine"
        } else {
            "from a plain thread"
        };
        assert_eq!(
            on_idle + on_busy,
            32,
            "{case}: children ran on a third thread"
        );
        // Each worker held a job server and whatever earlier tests left running, so the
        // split is even give or take those: a generous band.
        assert!(
            (8..=24).contains(&on_busy),
            "{case}: {on_busy} of 32 spread children ran on the busy worker; {stats}"
        );
        assert_eq!(
            early, on_idle,
            "{case}: {early} children started while the other worker was busy, {on_idle} ran on the idle one"
        );
    }
}

/// Keeps `b`'s worker busy while 32 children are spawned with `spread` (on `a`'s worker,
/// or from this plain thread), then frees it. Returns how many had started while it was
/// busy, the idle worker's thread, what `stats()` said, and each child's thread.
fn spread_beside_a_busy_worker(
    a: &Pinned,
    b: &Pinned,
    from_a_coroutine: bool,
) -> (usize, ThreadId, String, Vec<ThreadId>) {
    let (spinning_tx, spinning) = chan::bounded::<()>(1);
    let free = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let let_go = free.clone();
    b.jobs
        .send(Box::new(move || {
            spinning_tx.send(()).unwrap();
            let t = Instant::now();
            // the fuse is generous: the test frees it within a second
            while !let_go.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(20) {
                std::hint::spin_loop();
            }
        }))
        .unwrap();
    spinning.recv().unwrap(); // b's worker is busy from here until `free`
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = started.clone();
    // Long-lived, as connections are: each child waits for the end of the test, so the
    // ones started count for their worker until then.
    let (end, ended) = chan::bounded::<()>(0);
    let spawn_all = move || {
        (0..32)
            .map(|_| {
                let (started, ended) = (counted.clone(), ended.clone());
                coronet::Spawn::new().spread().go(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = ended.recv(); // the sender's drop ends every wait
                    std::thread::current().id()
                })
            })
            .collect::<Vec<_>>()
    };
    let children = if from_a_coroutine {
        a.run(spawn_all)
    } else {
        spawn_all()
    };
    // a's worker is idle and starts what is its own within microseconds; it must leave
    // the rest to b's
    std::thread::sleep(Duration::from_millis(300));
    let early = started.load(Ordering::SeqCst);
    let stats = format!("{:?}", coronet::stats());
    free.store(true, Ordering::SeqCst);
    drop(end);
    let threads = children.into_iter().map(|c| c.join().unwrap()).collect();
    (early, a.thread, stats, threads)
}

/// A read whose last read on the handle was short (the socket looked drained) by a
/// coroutine of another worker than the one whose epoll holds the fd: only that worker's
/// poll harvests the fd's events, and it is busy, so the read must try `recv` rather than
/// wait for an event. Found by an audit of the read path: with 20 bytes queued the read
/// timed out (8 of 8 runs), where a read that tries `recv` first takes microseconds.
#[test]
fn a_drained_read_on_another_worker_than_the_fds_finds_the_queued_bytes() {
    use coronet::net::TcpStream;
    use std::io::{Read, Write};
    use std::sync::Arc;
    let _serial = one_at_a_time();
    let a = Pinned::start();
    let b = a.beside(false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // On `a`: a read that waits (registering the fd with a's epoll) and comes back short.
    let (stream, mut peer) = a.run(move || {
        let s = TcpStream::connect(addr).unwrap();
        let (mut peer, _) = listener.accept().unwrap(); // (queued already: no wait)
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.write_all(b"x").unwrap();
            peer
        });
        let mut buf = [0u8; 64];
        assert_eq!((&s).read(&mut buf).unwrap(), 1);
        (Arc::new(s), late.join().unwrap())
    });
    // `a` computes for 2 s without a pause; meanwhile 20 bytes arrive and `b` reads them.
    let busy: Job = Box::new(|| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            std::hint::spin_loop();
        }
    });
    a.jobs.send(busy).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    peer.write_all(&[7; 20]).unwrap();
    let s = stream.clone();
    let (got, took) = b.run(move || {
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 64];
        let got = (&*s).read(&mut buf).map_err(|e| e.to_string());
        (got, start.elapsed())
    });
    a.run(|| ()); // `a` is done computing
    assert_eq!(got, Ok(20), "after {took:?}");
}
