//! Channel and lock benchmarks for may. See docs/benchmarks.md, section 3.
//!
//! Usage: sync_may BENCH N [--workers W] [--contenders K]
//!
//! The programs of `sync_coronet` with may's nearest equivalents. may has no bounded and no
//! rendezvous channel, so every channel here is an unbounded `may::sync::mpsc` channel: in
//! `chan1`/`chan4` its producers never wait, which flatters it. `may::select!` runs each arm
//! in a coroutine of its own, spawned per select, and each arm's body runs in that
//! coroutine whenever its receive completes; the benchmark counts values in the bodies.

use coronet_bench::{result, Args};
use may::go;
use may::sync::{mpsc, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    let workers: usize = args.get("workers", 1);
    let contenders: usize = args.get("contenders", 4);
    // No core pinning of its own: run.sh pins the whole process with taskset.
    may::config().set_workers(workers).set_worker_pin(false);
    let bench = args.pos(0, "benchmark").to_string();
    // Every benchmark runs inside a coroutine, as Go's main goroutine.
    go!(move || match bench.as_str() {
        "pingpong" => pingpong(n),
        "chan1" => buffered(n, 1),
        "chan4" => buffered(n, 4),
        "select4" => select4(n),
        "mutex" => mutex(n),
        "mutexK" => mutex_contended(n, contenders),
        other => panic!("unknown benchmark {other:?}"),
    })
    .join()
    .unwrap();
}

fn report(key: &str, start: Instant, n: usize) {
    let ns = start.elapsed().as_nanos() as f64;
    result(&[(key, ns / n as f64), ("_n", n as f64)]);
}

/// Two coroutines pass a token back and forth over two channels.
fn pingpong(n: usize) {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let echo = go!(move || {
        while let Ok(v) = ping_rx.recv() {
            pong_tx.send(v).unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n as u64 {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    report("ns/rt", start, n);
    drop(ping_tx);
    echo.join().unwrap();
}

/// `p` producers send `n` values in total through one (unbounded) channel; this coroutine
/// receives them all.
fn buffered(n: usize, p: usize) {
    let (tx, rx) = mpsc::channel::<u64>();
    let per = n / p;
    let start = Instant::now();
    for _ in 0..p {
        let tx = tx.clone();
        go!(move || {
            for i in 0..per as u64 {
                tx.send(i).unwrap();
            }
        });
    }
    drop(tx);
    let mut sum = 0u64;
    for _ in 0..per * p {
        sum += rx.recv().unwrap();
    }
    report("ns/msg", start, per * p);
    assert_eq!(sum, (p * per * (per - 1) / 2) as u64);
}

/// Four producers, each on its own channel; this coroutine takes every value with
/// `may::select!` over the four.
fn select4(n: usize) {
    let per = n / 4;
    let mut rxs = Vec::new();
    let mut keep = Vec::new(); // senders stay alive, as in the other contenders
    let start = Instant::now();
    for _ in 0..4 {
        let (tx, rx) = mpsc::channel::<u64>();
        rxs.push(rx);
        keep.push(tx.clone());
        go!(move || {
            for i in 0..per as u64 {
                tx.send(i).unwrap();
            }
        });
    }
    let (r0, r1, r2, r3) = (&rxs[0], &rxs[1], &rxs[2], &rxs[3]);
    // An arm's body runs in the arm's coroutine, so more than one may complete per select.
    let (sum, count) = (AtomicU64::new(0), AtomicU64::new(0));
    let add = |v: u64| {
        sum.fetch_add(v, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    };
    while count.load(Ordering::Relaxed) < (4 * per) as u64 {
        may::select!(
            v = r0.recv() => add(v.unwrap()),
            v = r1.recv() => add(v.unwrap()),
            v = r2.recv() => add(v.unwrap()),
            v = r3.recv() => add(v.unwrap())
        );
    }
    report("ns/msg", start, 4 * per);
    drop(keep);
    assert_eq!(sum.into_inner(), (4 * per * (per - 1) / 2) as u64);
}

/// Lock and unlock with nobody else around.
fn mutex(n: usize) {
    let m = Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..n {
        *m.lock().unwrap() += 1;
    }
    report("ns/op", start, n);
    assert_eq!(*m.lock().unwrap(), n as u64);
}

/// `k` coroutines share `n` lock/bump/unlock rounds.
fn mutex_contended(n: usize, k: usize) {
    let m = Arc::new(Mutex::new(0u64));
    let per = n / k;
    let start = Instant::now();
    let handles: Vec<_> = (0..k)
        .map(|_| {
            let m = m.clone();
            go!(move || {
                for _ in 0..per {
                    *m.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    report("ns/op", start, per * k);
    assert_eq!(*m.lock().unwrap(), (per * k) as u64);
}
