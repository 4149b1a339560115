//! Three workers for the whole binary, whatever the machine has (and a logger, which is
//! process-wide): a worker woken to steal ("the searcher", at most one at a time, as Go's
//! spinning M) must pass the role on when it finds work, whatever work it finds, or unstarted
//! coroutines wait in a busy worker's queue beside a worker asleep in `epoll_wait` (found by
//! an audit of the scheduler).
//!
//! Workers are told apart by their threads' names (`coronet-worker-N`). The interleaving is
//! forced, not waited for: the logger holds a worker inside `epoll_wait`'s return, its
//! `sleeping` flag still set, until the other side has done its part. The only time bound is
//! 2 s for work that takes microseconds.

use coronet::chan::{self, Sender};
use coronet::net::UnixStream;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

const WORKERS: usize = 3;

/// Worker index + 1 whose next "epoll wake" line the logger holds (0: none).
static HOLD_ON: AtomicUsize = AtomicUsize::new(0);
/// Set by the logger once it holds that worker.
static HELD: AtomicBool = AtomicBool::new(false);
/// Set by the test to let the held worker go on.
static RELEASE: AtomicBool = AtomicBool::new(false);

struct Gate;

impl log::Log for Gate {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        HOLD_ON.load(Ordering::SeqCst) != 0 && m.target() == "coronet::poll"
    }
    fn log(&self, r: &log::Record<'_>) {
        let w = HOLD_ON.load(Ordering::SeqCst);
        if w == 0
            || std::thread::current().name() != Some(&format!("coronet-worker-{}", w - 1))
            || !r.args().to_string().starts_with("epoll wake")
            || HOLD_ON
                .compare_exchange(w, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        HELD.store(true, Ordering::SeqCst);
        let t = Instant::now();
        while !RELEASE.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    fn flush(&self) {}
}

fn runtime() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Gate).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        coronet::Builder::new()
            .workers(WORKERS)
            .build_global()
            .expect("the only runtime of this binary");
    });
}

/// The index of the worker running the caller.
fn worker() -> usize {
    let t = std::thread::current();
    let name = t.name().expect("a worker thread has a name");
    name.strip_prefix("coronet-worker-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a worker thread: {name}"))
}

type Job = Box<dyn FnOnce() + Send>;

/// A coroutine that runs jobs, in order, on the worker it started on (it stays there).
struct Pinned {
    jobs: Sender<Job>,
}

impl Pinned {
    /// A job server on worker `w`: spawned from this plain thread (round-robin) until one
    /// starts there.
    fn on(w: usize) -> Pinned {
        for _ in 0..1000 {
            let (jobs, rx) = chan::unbounded::<Job>();
            let (tx, at) = chan::bounded(1);
            coronet::go(move || {
                tx.send(worker()).unwrap();
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
            if at.recv().unwrap() == w {
                return Pinned { jobs };
            }
        }
        panic!("no coroutine started on worker {w}");
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> chan::Receiver<T> {
        let (tx, rx) = chan::bounded(1);
        let job: Job = Box::new(move || tx.send(f()).unwrap());
        self.jobs.send(job).unwrap();
        rx
    }
}

/// Keeps the calling coroutine's worker busy (the coroutine does not park; the thread sleeps
/// in 1 ms steps, leaving the cores to the worker under test) until `done` reaches `n` or
/// `bound` has passed.
fn hold(done: &AtomicUsize, n: usize, bound: Duration) {
    let t = Instant::now();
    while done.load(Ordering::SeqCst) < n && t.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_for(flag: &AtomicBool) {
    let t = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the logger never held the worker"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Worker B spawns children and stays busy. Worker A = B + 1 wakes at once for a coroutine of
/// its own (data on its socket), and is made the searcher on its way out of `epoll_wait` (B's
/// first spawn finds it still flagged asleep, the first of its wake scan). A runs its own
/// coroutine first, which keeps it busy for up to 2 s. Worker C = B + 2 sleeps. The children
/// must not wait for A or B: the searcher that found other work must wake C for them.
///
/// Before, A kept the searcher role while it ran its own coroutine (only starting an
/// unstarted one gave it up), so B's spawns woke no one (a searcher was out), and C slept
/// until A was free again: every child ran after the 2 s bound.
#[test]
fn a_searcher_that_finds_its_own_work_passes_the_role_on() {
    runtime();
    const CHILDREN: usize = 16;
    const BOUND: Duration = Duration::from_secs(2); // the children take microseconds
    let (b, a, c) = (0, 1, 2);
    let on_b = Pinned::on(b);
    let on_a = Pinned::on(a);
    for round in 0..2 {
        let done = Arc::new(AtomicUsize::new(0));
        let ran_on: Arc<[AtomicUsize; WORKERS]> = Arc::new(Default::default());
        // A's coroutine: parked on its socket until B writes, then keeps A busy
        let (mut tx, mut rx) = UnixStream::pair().unwrap();
        let d = done.clone();
        let busy_a = on_a.run(move || {
            rx.read_exact(&mut [0u8; 1]).unwrap();
            let t = Instant::now();
            hold(&d, CHILDREN, BOUND);
            // A is still busy: what ran so far ran on C
            (d.load(Ordering::SeqCst), t.elapsed())
        });
        // every coroutine parked: every worker asleep in epoll_wait
        std::thread::sleep(Duration::from_millis(100));
        HELD.store(false, Ordering::SeqCst);
        RELEASE.store(false, Ordering::SeqCst);
        HOLD_ON.store(a + 1, Ordering::SeqCst);
        let (d, r) = (done.clone(), ran_on.clone());
        let finished = on_b.run(move || {
            tx.write_all(b"x").unwrap(); // A wakes: its coroutine's data
            wait_for(&HELD); // A is out of epoll_wait, still flagged asleep
            for _ in 0..CHILDREN {
                let (d, r) = (d.clone(), r.clone());
                // the first wakes A to search; the rest wake no one, a searcher being out
                coronet::go(move || {
                    r[worker()].fetch_add(1, Ordering::SeqCst);
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
            RELEASE.store(true, Ordering::SeqCst);
            // B stays busy for longer than A
            hold(&d, CHILDREN, BOUND + Duration::from_secs(1));
        });
        let (n, took) = busy_a.recv().unwrap();
        finished.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10); // the late ones, if any
        while done.load(Ordering::SeqCst) < CHILDREN && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let ran_on: Vec<usize> = ran_on.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(
            n, CHILDREN,
            "round {round}: {n} of {CHILDREN} children ran in the {took:?} workers {a} and {b} \
             were busy, and {c} idle (all ran on workers {ran_on:?})"
        );
        assert_eq!(
            ran_on[c], CHILDREN,
            "round {round}: ran on workers {ran_on:?}"
        );
    }
}
