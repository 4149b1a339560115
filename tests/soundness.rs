//! The pinning rule, observed from outside: a started coroutine never changes OS thread, so
//! its thread-locals and the `!Send` values on its stack stay valid across every park —
//! while unstarted coroutines are stolen between workers. Also: park and unpark racing from
//! other threads lose no wake-up, and spawning after warm-up maps no new stack.
//!
//! Every test asks for two workers (`build_global` fails with `AlreadyExists` if another test
//! of this file started the runtime first, with the same settings, which is fine): each
//! `tests/*.rs` file is its own process, so the runtime here is ours alone.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

/// The test that counts mappings, and the one that places coroutines by the workers'
/// counts, need the process to themselves; the others share it.
static MAPS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MAPS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MAPS.write().unwrap_or_else(|e| e.into_inner())
}

/// Two workers, so that there is somewhere to steal to and from.
fn two_workers() {
    match coronet::Builder::new().workers(2).build_global() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot start the runtime: {e}"),
    }
    assert_eq!(
        coronet::stats().workers,
        2,
        "another test configured the runtime"
    );
}

/// Raises the soft open-files limit to at least `want` (within the hard limit).
fn allow_open_files(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid place for the answer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: a valid rlimit, within the hard limit, for our own process.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

thread_local! {
    /// Its address tells threads apart the way a coroutine holding `&MARK` would notice.
    static MARK: u8 = const { 0 };
}

/// Where code runs: the OS thread, and the address of this thread's `MARK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    thread: ThreadId,
    tls: usize,
}

fn here() -> Place {
    Place {
        thread: thread::current().id(),
        tls: MARK.with(|m| m as *const u8 as usize),
    }
}

const COROUTINES: usize = 2_000;
const ROUNDS: usize = 3;

/// One echo server coroutine per accepted connection, for `n` connections.
fn echo_server(n: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    coronet::go(move || {
        for _ in 0..n {
            let (mut conn, _) = listener.accept().unwrap();
            coronet::go(move || {
                let mut buf = [0u8; 64];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    addr
}

/// The body of each coroutine: park in every way there is, and after each park check that
/// we are on the thread we started on, with the same thread-locals, and that the `!Send`
/// state on our stack is intact. Returns the thread it ran on and its thread's name.
fn park_every_way(i: usize, echo: std::net::SocketAddr) -> (ThreadId, String) {
    let start = here();
    let check = |after: &str| {
        assert_eq!(here(), start, "coroutine {i} changed threads after {after}");
    };
    // `!Send` values that live on this coroutine's stack across all the parks below.
    let rc = Rc::new(RefCell::new(vec![i]));
    let rc2 = Rc::clone(&rc);
    let mut conn = TcpStream::connect(echo).unwrap();
    check("connect");
    for round in 0..ROUNDS {
        coronet::time::sleep(Duration::from_millis(1 + (i % 5) as u64));
        check("sleep");
        coronet::yield_now();
        check("yield_now");
        let child = coronet::go(move || {
            coronet::yield_now();
            i
        });
        assert_eq!(child.join().unwrap(), i);
        check("join");
        assert_eq!(coronet::spawn_blocking(move || i + 1), i + 1);
        check("spawn_blocking");
        // the echo goes through another coroutine, so this read parks on the netpoller
        let byte = (i + round) as u8;
        conn.write_all(&[byte]).unwrap();
        let mut back = [0u8; 1];
        conn.read_exact(&mut back).unwrap();
        assert_eq!(back[0], byte);
        check("a socket read");
        {
            // a live RefCell borrow across a park
            let held = rc.borrow();
            coronet::yield_now();
            assert_eq!(held[0], i);
        }
        rc2.borrow_mut().push(round);
        check("a park holding a borrow");
    }
    assert_eq!(Rc::strong_count(&rc), 2);
    let expected: Vec<usize> = std::iter::once(i).chain(0..ROUNDS).collect();
    assert_eq!(*rc.borrow(), expected, "coroutine {i}: Rc contents changed");
    let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
    (start.thread, name)
}

#[test]
fn coroutines_stay_on_their_thread_across_every_park_while_work_is_stolen() {
    let _shared = shared();
    two_workers();
    allow_open_files(2 * COROUTINES as u64 + 1_000);
    let echo = echo_server(COROUTINES);
    let steals_before = coronet::stats().steals;
    // All spawned from one coroutine, so they all start out in that worker's queue of
    // unstarted coroutines: the other worker only gets work by stealing.
    let ran_on = coronet::run(move || {
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| coronet::go(move || park_every_way(i, echo)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (_, name) in &ran_on {
        assert!(name.starts_with("coronet-worker-"), "ran on {name}");
    }
    let threads: HashSet<ThreadId> = ran_on.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        threads.len(),
        2,
        "both workers ran coroutines (steals: {})",
        coronet::stats().steals - steals_before
    );
    assert!(coronet::stats().steals > steals_before);
}

/// The same checks for coroutines placed by `Spawn::spread`, which reach the other worker
/// through its `pinned` queue, pushed from the spawner's thread, rather than by a steal.
#[test]
fn spread_coroutines_stay_on_the_thread_they_were_placed_on() {
    // alone: another test's thousands of queued coroutines would draw every placement
    let _exclusive = exclusive();
    two_workers();
    const SPREAD: usize = COROUTINES / 4;
    allow_open_files(2 * SPREAD as u64 + 1_000);
    let echo = echo_server(SPREAD);
    let ran_on = coronet::run(move || {
        let handles: Vec<_> = (0..SPREAD)
            .map(|i| {
                coronet::Spawn::new()
                    .spread()
                    .go(move || park_every_way(i, echo))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut per_thread: HashMap<ThreadId, usize> = HashMap::new();
    for (t, name) in &ran_on {
        assert!(name.starts_with("coronet-worker-"), "ran on {name}");
        *per_thread.entry(*t).or_default() += 1;
    }
    // Placed by each worker's count of coroutines, which the echo handlers and what earlier
    // tests leave finishing also weigh on, so not evenly: both must have had some.
    assert_eq!(
        per_thread.len(),
        2,
        "spread over one worker: {per_thread:?}"
    );
}

/// How long a ping-pong may take before we call it a lost wake-up. Far above the real time
/// (well under a second): the machine is shared and noisy.
const HANG: Duration = Duration::from_secs(60);

const ITERATIONS: usize = 5_000;

/// Strict alternation through `turn`: side A makes it odd and unparks B, B makes it even and
/// unparks A. Each side parks until it sees its turn, so a single lost wake-up stops both for
/// good. Each counts its completed iterations in `done`.
struct PingPong {
    turn: AtomicUsize,
    done: [AtomicUsize; 2],
}

impl PingPong {
    fn new() -> Arc<PingPong> {
        Arc::new(PingPong {
            turn: AtomicUsize::new(0),
            done: [AtomicUsize::new(0), AtomicUsize::new(0)],
        })
    }

    /// Plays `side` (0 = A, 1 = B) against `other` for `ITERATIONS` rounds. Works on a
    /// coroutine and on a plain thread alike.
    fn play(&self, side: usize, other: &coronet::Coroutine) {
        for i in 0..ITERATIONS {
            // A moves when `turn` is 2i, B when it is 2i + 1
            let mine = 2 * i + side;
            while self.turn.load(Ordering::Acquire) != mine {
                coronet::park();
            }
            self.turn.store(mine + 1, Ordering::Release);
            self.done[side].store(i + 1, Ordering::Relaxed);
            other.unpark();
        }
    }

    /// Waits until both sides finished or `HANG` passed; panics with both counts on a hang.
    fn wait(&self, finished: impl Fn() -> bool) {
        let deadline = Instant::now() + HANG;
        while !finished() {
            if Instant::now() > deadline {
                panic!(
                    "lost wake-up: A did {}, B did {} of {ITERATIONS} (turn {})",
                    self.done[0].load(Ordering::Relaxed),
                    self.done[1].load(Ordering::Relaxed),
                    self.turn.load(Ordering::Relaxed)
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        for side in 0..2 {
            assert_eq!(self.done[side].load(Ordering::Relaxed), ITERATIONS);
        }
    }
}

#[test]
fn unpark_racing_park_between_a_thread_and_a_coroutine_is_never_lost() {
    let _shared = shared();
    two_workers();
    let game = PingPong::new();
    // A is a plain thread, B a coroutine; they swap handles through channels first (only the
    // plain thread blocks on one).
    let (a_tx, a_rx) = std::sync::mpsc::channel();
    let (b_tx, b_rx) = std::sync::mpsc::channel::<coronet::Coroutine>();
    let g = game.clone();
    let a = thread::spawn(move || {
        a_tx.send(coronet::current()).unwrap();
        g.play(0, &b_rx.recv().unwrap());
    });
    let a_handle = a_rx.recv().unwrap();
    let g = game.clone();
    let b = coronet::go(move || g.play(1, &a_handle));
    b_tx.send(b.coroutine()).unwrap();
    game.wait(|| a.is_finished() && b.is_finished());
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn unpark_racing_park_between_coroutines_is_never_lost() {
    let _shared = shared();
    two_workers();
    // Several pairs at once, spawned from a plain thread (round-robin over the workers), so
    // some pairs wake each other across workers (through the owner's remote queue and
    // eventfd) and some on one worker (through runnext).
    let games: Vec<_> = (0..4).map(|_| PingPong::new()).collect();
    let mut handles = Vec::new();
    for game in &games {
        let slot: Arc<Mutex<Option<coronet::Coroutine>>> = Arc::default();
        let (g, s) = (game.clone(), slot.clone());
        let b = coronet::go(move || {
            let a = loop {
                if let Some(a) = s.lock().unwrap().clone() {
                    break a;
                }
                coronet::park();
            };
            g.play(1, &a);
        });
        let b_handle = b.coroutine();
        let g = game.clone();
        let a = coronet::go(move || g.play(0, &b_handle));
        *slot.lock().unwrap() = Some(a.coroutine());
        b.coroutine().unpark();
        handles.push((a, b));
    }
    for (game, (a, b)) in games.iter().zip(&handles) {
        game.wait(|| a.is_finished() && b.is_finished());
    }
    for (a, b) in handles {
        a.join().unwrap();
        b.join().unwrap();
    }
}

#[test]
fn many_parked_coroutines_woken_from_a_thread_all_wake() {
    let _shared = shared();
    two_workers();
    // 1,000 coroutines park on a flag; a plain thread sets each flag and unparks, racing
    // their park. Each side counts.
    const N: usize = 1_000;
    let flags: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let woke = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (flags, woke) = (flags.clone(), woke.clone());
            coronet::go(move || {
                while !flags[i].load(Ordering::Acquire) {
                    coronet::park();
                }
                woke.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let targets: Vec<_> = handles.iter().map(|h| h.coroutine()).collect();
    let f = flags.clone();
    let unparker = thread::spawn(move || {
        for (i, t) in targets.iter().enumerate() {
            f[i].store(true, Ordering::Release);
            t.unpark();
        }
        targets.len()
    });
    let sent = unparker.join().unwrap();
    let deadline = Instant::now() + HANG;
    while woke.load(Ordering::Relaxed) < N && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        woke.load(Ordering::Relaxed),
        sent,
        "lost wake-ups: {sent} sent"
    );
    for h in handles {
        h.join().unwrap();
    }
}

/// Mappings the runtime has made for coroutine stacks (a batch of stacks each, on kernels with
/// guard markers; a stack each before).
fn stack_mappings() -> u64 {
    coronet::stats().stack_mappings
}

/// Spawns `n` coroutines from this plain thread (round-robin over the workers) that all stay
/// alive until every one has started. Returns the stack mappings counted while they were all
/// alive, and how many of them each worker thread ran.
fn burst(n: usize) -> (u64, HashMap<ThreadId, usize>) {
    let ran_on = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (ran_on, release) = (ran_on.clone(), release.clone());
            coronet::go(move || {
                ran_on.lock().unwrap().push(thread::current().id());
                while !release.load(Ordering::SeqCst) {
                    coronet::time::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + HANG;
    while ran_on.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "burst did not start");
        thread::sleep(Duration::from_millis(2));
    }
    let mappings = stack_mappings();
    release.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let mut shares = HashMap::new();
    for t in ran_on.lock().unwrap().iter() {
        *shares.entry(*t).or_insert(0) += 1;
    }
    (mappings, shares)
}

#[test]
fn spawning_after_warm_up_maps_no_new_stack() {
    let _alone = exclusive();
    two_workers();
    const N: usize = 256;
    // Warm-up. A finished coroutine's stack goes back to its worker's pool, so afterwards
    // each worker holds at least as many idle stacks as it ever ran at once.
    let mut most: HashMap<ThreadId, usize> = HashMap::new();
    for _ in 0..3 {
        let (_, shares) = burst(N);
        for (t, n) in shares {
            let m = most.entry(t).or_insert(0);
            *m = (*m).max(n);
        }
    }
    let before = stack_mappings();
    let (during, shares) = burst(N);
    let new = during - before;
    // A worker has to map only what it runs beyond its warm-up peak (the workers may split
    // this burst differently). Without the pool, every burst would map all `N` stacks again
    // (at least N / 64 mappings, N with a mapping per stack).
    let beyond_peak: usize = shares
        .iter()
        .map(|(t, &n)| n.saturating_sub(most.get(t).copied().unwrap_or(0)))
        .sum();
    // The counter is exact (only stack mappings count), so no slack.
    assert!(
        new <= beyond_peak as u64,
        "{new} new stack mappings for {N} warm spawns; only {beyond_peak} ran beyond their \
         worker's warm-up peak (shares {shares:?}, peaks {most:?}, {before} mappings before)"
    );
}
