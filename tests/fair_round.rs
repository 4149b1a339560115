//! What a busy coroutine leaves to the rest of its worker. The starvation bound of the run
//! queue (`runtime/runq.rs`): a coroutine at the head of the queue runs within
//! `FAIRNESS_TICK` (61) rounds even while two coroutines hand `runnext` to each other for
//! ever — and also while unstarted coroutines keep arriving, whose turn (every other round)
//! must not take a fair round's place. And the I/O budget: a coroutine whose socket calls
//! never wait yields now and then. Needs one worker, so that every round of it can be
//! counted and nothing else serves the others; hence a test binary of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

mod util;
use util::one_worker;

/// One per round the worker runs: each turn of the ping-pong pair and each unstarted
/// coroutine it spawns counts itself.
static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// The tests here take turns: each measures what its coroutines get of the one worker, and
/// the other's coroutines on it would count against that (the busy sender alone holds
/// rounds the fair-tick test counts).
fn alone() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_queue_head_runs_within_a_fair_tick_while_spawns_keep_arriving() {
    let _alone = alone();
    one_worker();
    let worst = coronet::run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let b_handle: Arc<OnceLock<coronet::Coroutine>> = Arc::new(OnceLock::new());
        // Each turn: count, spawn one coroutine (the unstarted queue is never empty on the
        // rounds it gets), wake the partner (a wake on its own worker: `runnext`), park.
        let turn = |partner: &coronet::Coroutine, stop: &AtomicBool| loop {
            if stop.load(Ordering::SeqCst) {
                partner.unpark();
                return;
            }
            ROUNDS.fetch_add(1, Ordering::SeqCst);
            drop(coronet::go(|| {
                ROUNDS.fetch_add(1, Ordering::SeqCst);
            }));
            partner.unpark();
            coronet::park();
        };
        let a = coronet::go({
            let (stop, b_handle) = (stop.clone(), b_handle.clone());
            move || {
                while b_handle.get().is_none() {
                    coronet::park();
                }
                turn(b_handle.get().unwrap(), &stop)
            }
        });
        let b = coronet::go({
            let (stop, a_handle) = (stop.clone(), a.coroutine());
            move || turn(&a_handle, &stop)
        });
        b_handle.set(b.coroutine()).unwrap();
        a.coroutine().unpark();
        // This coroutine is the one queued: each yield puts it at the back of a queue that
        // holds nothing else (the partner waking next is in `runnext`), so only a fair round
        // can pop it. Phases vary from try to try; without the rule, a try whose first fair
        // round was an even one waited up to two fair ticks.
        let mut worst = 0;
        for _ in 0..40 {
            let before = ROUNDS.load(Ordering::SeqCst);
            coronet::yield_now();
            worst = worst.max(ROUNDS.load(Ordering::SeqCst) - before);
        }
        stop.store(true, Ordering::SeqCst);
        a.join().unwrap();
        b.join().unwrap();
        worst
    });
    // 61 rounds, of which the last is this coroutine's own; a little slack for the rounds
    // the pair's first wakes may add.
    assert!(
        worst <= 63,
        "the queue's head waited {worst} rounds behind runnext"
    );
    assert!(worst >= 30, "the pair never held runnext ({worst} rounds)");
}

/// A socket call that never has to wait: a UDP send to a socket nobody reads (the kernel
/// drops what does not fit, so the sender never finds its buffer full). Without the I/O
/// budget the sending coroutine held its worker for the whole 2 s and a 10 ms sleep beside
/// it woke 2 s late; reads whose peer keeps them supplied are the same case, which a test
/// cannot hold as steadily.
#[test]
fn a_sender_that_never_waits_still_lets_a_sleeper_run() {
    let _alone = alone();
    one_worker();
    let rx = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = coronet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let (worst_late, sends) = coronet::run(move || {
        let sleeper = coronet::go(|| {
            let mut worst = Duration::ZERO;
            for _ in 0..50 {
                let t = Instant::now();
                coronet::time::sleep(Duration::from_millis(10));
                worst = worst.max(t.elapsed().saturating_sub(Duration::from_millis(10)));
            }
            worst
        });
        coronet::yield_now(); // the sleeper parks in its first sleep
        let until = Instant::now() + Duration::from_secs(2);
        let mut sends = 0u64;
        while Instant::now() < until {
            assert_eq!(tx.send(&[7u8; 64]).unwrap(), 64);
            sends += 1;
        }
        (sleeper.join().unwrap(), sends)
    });
    drop(rx);
    assert!(sends > 0);
    assert!(
        worst_late < Duration::from_secs(1),
        "a 10 ms sleep beside the sender woke {worst_late:?} late"
    );
}

/// A coroutine that computes for a few milliseconds between yields keeps the run queue from
/// emptying: the timer of a sleeper beside it, and the readiness of a TCP ping-pong beside
/// it, are looked at after each of its yields, not only on fair rounds, 61 of its slices
/// apart. Found by an audit of the scheduler: a 2 ms sleep beside 10 ms slices woke 600 ms
/// late, and `io::copy`'s pacing held timers back by half a second. Counted, not timed:
/// every yield lets each of them have a turn, where before one yield in 61 did.
#[test]
fn a_coroutine_that_yields_leaves_timers_and_io_their_turn() {
    use std::io::{Read, Write};
    let _alone = alone();
    one_worker();
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = echo.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut c, _) = echo.accept().unwrap();
        let mut b = [0u8; 1];
        while c.read(&mut b).unwrap() == 1 {
            c.write_all(&b).unwrap();
        }
    });
    let (yields, sleeps, trips) = coronet::run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = {
            let stop = stop.clone();
            coronet::go(move || {
                let mut yields = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let slice = Instant::now();
                    while slice.elapsed() < Duration::from_millis(3) {
                        std::hint::spin_loop();
                    }
                    yields += 1;
                    coronet::yield_now();
                }
                yields
            })
        };
        let sleeper = {
            let stop = stop.clone();
            coronet::go(move || {
                let mut sleeps = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    coronet::time::sleep(Duration::from_millis(1));
                    sleeps += 1;
                }
                sleeps
            })
        };
        let pinger = {
            let stop = stop.clone();
            coronet::go(move || {
                let mut s = coronet::net::TcpStream::connect(addr).unwrap();
                let (mut trips, mut b) = (0u64, [0u8; 1]);
                while !stop.load(Ordering::SeqCst) {
                    s.write_all(b"p").unwrap();
                    s.read_exact(&mut b).unwrap();
                    trips += 1;
                }
                trips
            })
        };
        coronet::time::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::SeqCst);
        (
            busy.join().unwrap(),
            sleeper.join().unwrap(),
            pinger.join().unwrap(),
        )
    });
    peer.join().unwrap();
    assert!(yields > 0);
    assert!(
        sleeps * 4 >= yields,
        "{sleeps} sleeps ended in {yields} yields"
    );
    assert!(
        trips * 4 >= yields,
        "{trips} round trips in {yields} yields"
    );
}

/// Runs `call` in a loop beside a coroutine that sleeps 10 ms twenty times, until that
/// coroutine is done or 10 s have passed; whether it got done, and how many calls the loop
/// made. Counted, not timed: a loop that never yields leaves the sleeper no turn at all,
/// however fast the machine, and one that does lets it finish however loaded.
fn retry_loop_beside_a_sleeper(mut call: impl FnMut() + Send + 'static) -> (bool, u64) {
    coronet::run(move || {
        let sleeping = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let sleeper = coronet::go({
            let (sleeping, done) = (sleeping.clone(), done.clone());
            move || {
                for _ in 0..20 {
                    sleeping.store(true, Ordering::SeqCst);
                    coronet::time::sleep(Duration::from_millis(10));
                }
                done.store(true, Ordering::SeqCst);
            }
        });
        // Not before the sleeper's first sleep: a sleeper that had not started would sleep
        // only after the loop, and the test could not fail.
        while !sleeping.load(Ordering::SeqCst) {
            coronet::yield_now();
        }
        let until = Instant::now() + Duration::from_secs(10);
        let mut calls = 0u64;
        while !done.load(Ordering::SeqCst) && Instant::now() < until {
            call();
            calls += 1;
        }
        let finished = done.load(Ordering::SeqCst);
        sleeper.join().unwrap();
        (finished, calls)
    })
}

/// A loop that retries a socket call failing at once — `accept` on a closed listener, a
/// read on a closed stream through `&mut`, a nonblocking `accept` with nobody there, a
/// Unix dial of a path where nothing is — yields now and then like one whose calls
/// succeed: such calls count against the I/O budget too. Found by a newcomer's audit:
/// `Builder::main`'s own example, `let Ok(conn) = conn else { continue };` over
/// `incoming()`, froze its worker for good once the process ran out of fds (21 million
/// failed accepts in 10 s, nothing else ran).
#[test]
fn a_loop_retrying_a_call_that_fails_at_once_still_lets_a_sleeper_run() {
    use coronet::net::{TcpListener, TcpStream};
    use std::io::Read;
    let _alone = alone();
    one_worker();
    let closed_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    closed_listener.close().unwrap();
    let (mut closed_stream, _peer) = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (c, l.accept().unwrap())
    };
    closed_stream.close().unwrap();
    let idle_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    idle_listener.set_nonblocking(true).unwrap();
    let nowhere = std::env::temp_dir().join(format!("coronet-nowhere-{}.sock", std::process::id()));
    type Call = Box<dyn FnMut() + Send>;
    let cases: Vec<(&str, Call)> = vec![
        (
            "accept on a closed listener",
            Box::new(move || assert!(closed_listener.accept().is_err())),
        ),
        (
            "read on a closed stream",
            Box::new(move || assert!(closed_stream.read(&mut [0u8; 8]).is_err())),
        ),
        (
            "nonblocking accept with nobody there",
            Box::new(move || assert!(idle_listener.accept().is_err())),
        ),
        (
            "dial of a Unix path where nothing is",
            Box::new(move || assert!(coronet::net::UnixStream::connect(&nowhere).is_err())),
        ),
    ];
    for (what, call) in cases {
        let (finished, calls) = retry_loop_beside_a_sleeper(call);
        assert!(calls > 0, "{what}");
        assert!(
            finished,
            "{what}: twenty 10 ms sleeps beside the loop did not end in 10 s ({calls} calls)"
        );
    }
}
