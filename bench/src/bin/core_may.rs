//! Runtime-core benchmarks for may with one worker. See docs/benchmarks.md.
//!
//! Usage: core_may spawn N | batch N | pingpong N | idle N [--sleep SECS] [--stack-kib KIB]

use coronet_bench::{idle_result, result, rss_kib, Args};
use may::go;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    let sleep = args.secs("sleep", 10.0);
    let stack_kib: usize = args.get("stack-kib", 0);
    // One worker; no core pinning of its own: run.sh pins the whole process with taskset.
    may::config().set_workers(1).set_worker_pin(false);
    if stack_kib > 0 {
        // may counts its stack size in machine words.
        may::config().set_stack_size(stack_kib * 1024 / size_of::<usize>());
    }
    let bench = args.pos(0, "benchmark").to_string();
    // Every benchmark runs inside a coroutine.
    go!(move || match bench.as_str() {
        "spawn" => spawn_join(n),
        "batch" => spawn_batch(n),
        "pingpong" => pingpong(n),
        "idle" => idle(n, sleep),
        other => panic!("unknown benchmark {other:?}"),
    })
    .join()
    .unwrap();
    // Parked coroutines are not worth tearing down one by one.
    std::process::exit(0);
}

/// Spawn one empty coroutine, join it, repeat.
fn spawn_join(n: usize) {
    let start = Instant::now();
    for _ in 0..n {
        go!(|| {}).join().unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64;
    result(&[("ns/op", ns / n as f64), ("_ops", n as f64)]);
}

/// Spawn 1000 empty coroutines, then join each; repeat until `n` ran.
fn spawn_batch(n: usize) {
    let rounds = n.div_ceil(BATCH);
    let mut handles = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..rounds {
        handles.extend((0..BATCH).map(|_| go!(|| {})));
        for h in handles.drain(..) {
            h.join().unwrap();
        }
    }
    let ns = start.elapsed().as_nanos() as f64;
    result(&[
        ("ns/op", ns / (rounds * BATCH) as f64),
        ("_ops", (rounds * BATCH) as f64),
    ]);
}

/// Two coroutines pass a token back and forth over two `may::sync::mpsc` channels.
fn pingpong(n: usize) {
    let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
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
    let ns = start.elapsed().as_nanos() as f64;
    drop(ping_tx);
    echo.join().unwrap();
    result(&[("ns/rt", ns / n as f64), ("_rts", n as f64)]);
}

/// `n` coroutines each sleeping `sleep`; memory is read once all of them are parked.
fn idle(n: usize, sleep: Duration) {
    let before = rss_kib();
    let parked = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let parked = parked.clone();
        go!(move || {
            parked.fetch_add(1, Ordering::Relaxed);
            may::coroutine::sleep(sleep);
        });
    }
    while parked.load(Ordering::Relaxed) < n {
        may::coroutine::sleep(Duration::from_millis(1));
    }
    let spawn_s = start.elapsed().as_secs_f64();
    let after = rss_kib();
    let stack_kib = may::config().get_stack_size() * size_of::<usize>() / 1024;
    idle_result(n, before, after, spawn_s, Some(stack_kib));
}
