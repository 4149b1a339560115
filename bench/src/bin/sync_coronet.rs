//! Channel and lock benchmarks for coronet. See docs/benchmarks.md, section 3.
//!
//! Usage: sync_coronet BENCH N [--workers W] [--contenders K]
//!
//! - `pingpong`: round trip between two coroutines over two `bounded(0)` channels (ns/rt)
//! - `pingpong2`: the same with the two coroutines on two different workers (needs
//!   `--workers 2` or more), so every hop is a wake-up from another thread (ns/rt)
//! - `pingpong1`: the same with the echo spawned `Spawn::same_worker`, so the two share a
//!   worker whatever the worker count (ns/rt)
//! - `chan1`, `chan4`: 1 or 4 producers send N values in total through one `bounded(128)`
//!   channel to one consumer (ns/msg)
//! - `select4`: 4 producers each send N/4 on their own `bounded(0)` channel; one consumer
//!   takes all N with a `select!` over the four (ns/msg)
//! - `mutex`: one coroutine locks and unlocks a `coronet::sync::Mutex` N times (ns/op)
//! - `mutexK`: K coroutines lock, bump a counter, unlock; N rounds in total (ns/op)
//!
//! The same programs as `bench/go/sync/main.go`.

use coronet::chan::{bounded, Receiver};
use coronet::sync::Mutex;
use coronet_bench::{result, Args};
use std::sync::Arc;
use std::time::Instant;

/// Capacity of the buffered channel in `chan1`/`chan4`, the same in every contender.
const CAPACITY: usize = 128;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    let workers: usize = args.get("workers", 1);
    let contenders: usize = args.get("contenders", 4);
    coronet::Builder::new()
        .workers(workers)
        .build_global()
        .expect("coronet runtime");
    let bench = args.pos(0, "benchmark").to_string();
    // Every benchmark runs inside a coroutine, as Go's main goroutine.
    coronet::run(move || match bench.as_str() {
        "pingpong" => pingpong(n, Placement::Any),
        "pingpong2" => pingpong(n, Placement::Apart),
        "pingpong1" => pingpong(n, Placement::Together),
        "chan1" => buffered(n, 1),
        "chan4" => buffered(n, 4),
        "select4" => select4(n),
        "mutex" => mutex(n),
        "mutexK" => mutex_contended(n, contenders),
        other => panic!("unknown benchmark {other:?}"),
    });
}

fn report(key: &str, start: Instant, n: usize) {
    let ns = start.elapsed().as_nanos() as f64;
    result(&[(key, ns / n as f64), ("_n", n as f64)]);
}

/// Where `pingpong` puts its echo coroutine.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    /// Wherever a plain `go` puts it.
    Any,
    /// On another worker than this coroutine's (`pingpong2`): a started coroutine never
    /// changes threads, so every hop wakes a coroutine on another thread (a Go program's
    /// goroutines would move onto one P instead). The echo is spawned while this coroutine
    /// keeps its worker busy, so another worker takes it.
    Apart,
    /// On this coroutine's worker, by `Spawn::same_worker` (`pingpong1`).
    Together,
}

/// Two coroutines pass a token back and forth over two rendezvous channels.
fn pingpong(n: usize, placement: Placement) {
    let apart = placement == Placement::Apart;
    // With one worker the echo could never start while this coroutine waits for it.
    assert!(
        !apart || coronet::stats().workers >= 2,
        "pingpong2 needs --workers 2 or more"
    );
    let (ping_tx, ping_rx) = bounded::<u64>(0);
    let (pong_tx, pong_rx) = bounded::<u64>(0);
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let spawn = match placement {
        Placement::Together => coronet::Spawn::new().same_worker(),
        _ => coronet::Spawn::new(),
    };
    let echo = spawn.go(move || {
        if apart {
            tid_tx.send(std::thread::current().id()).unwrap();
        }
        for v in ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
    if apart {
        // Busy, not parked: a worker with nothing else to run would take the echo itself.
        let echo_thread = loop {
            match tid_rx.try_recv() {
                Ok(id) => break id,
                Err(_) => std::hint::spin_loop(),
            }
        };
        assert_ne!(
            echo_thread,
            std::thread::current().id(),
            "the pair shares a worker"
        );
    }
    let start = Instant::now();
    for i in 0..n as u64 {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    report("ns/rt", start, n);
    drop(ping_tx);
    echo.join().unwrap();
}

/// `p` producers send `n` values in total through one buffered channel; this coroutine
/// receives them all.
fn buffered(n: usize, p: usize) {
    let (tx, rx) = bounded::<u64>(CAPACITY);
    let per = n / p;
    let start = Instant::now();
    for _ in 0..p {
        let tx = tx.clone();
        drop(coronet::go(move || {
            for i in 0..per as u64 {
                tx.send(i).unwrap();
            }
        }));
    }
    drop(tx);
    let mut sum = 0u64;
    for _ in 0..per * p {
        sum += rx.recv().unwrap();
    }
    report("ns/msg", start, per * p);
    assert_eq!(sum, (p * per * (per - 1) / 2) as u64);
}

/// Four producers, each on its own rendezvous channel; this coroutine takes every value
/// with a select over the four.
fn select4(n: usize) {
    let per = n / 4;
    let mut rxs: Vec<Receiver<u64>> = Vec::new();
    // Dropping the last sender closes a channel, and a closed channel is always ready in a
    // select: keep one sender each until the end, as Go's producers never close theirs.
    let mut keep = Vec::new();
    let start = Instant::now();
    for _ in 0..4 {
        let (tx, rx) = bounded::<u64>(0);
        rxs.push(rx);
        keep.push(tx.clone());
        drop(coronet::go(move || {
            for i in 0..per as u64 {
                tx.send(i).unwrap();
            }
        }));
    }
    let (r0, r1, r2, r3) = (&rxs[0], &rxs[1], &rxs[2], &rxs[3]);
    let mut sum = 0u64;
    for _ in 0..4 * per {
        sum += coronet::select! {
            recv(r0) -> v => v.unwrap(),
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap(),
            recv(r3) -> v => v.unwrap(),
        };
    }
    report("ns/msg", start, 4 * per);
    drop(keep);
    assert_eq!(sum, (4 * per * (per - 1) / 2) as u64);
}

/// Lock and unlock with nobody else around.
fn mutex(n: usize) {
    let m = Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..n {
        *m.lock() += 1;
    }
    report("ns/op", start, n);
    assert_eq!(*m.lock(), n as u64);
}

/// `k` coroutines share `n` lock/bump/unlock rounds.
fn mutex_contended(n: usize, k: usize) {
    let m = Arc::new(Mutex::new(0u64));
    let per = n / k;
    let start = Instant::now();
    let handles: Vec<_> = (0..k)
        .map(|_| {
            let m = m.clone();
            coronet::go(move || {
                for _ in 0..per {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    report("ns/op", start, per * k);
    assert_eq!(*m.lock(), (per * k) as u64);
}
