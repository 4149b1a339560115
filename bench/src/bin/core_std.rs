//! Runtime-core benchmarks for plain OS threads (the process is pinned to one core by
//! run.sh). See docs/benchmarks.md. There is no idle benchmark for threads.
//!
//! Usage: core_std spawn N | batch N | pingpong N

use coronet_bench::{result, Args};
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Instant;

const BATCH: usize = 1000;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    match args.pos(0, "benchmark") {
        "spawn" => spawn_join(n),
        "batch" => spawn_batch(n),
        "pingpong" => pingpong(n),
        other => panic!("unknown benchmark {other:?} (threads have spawn, batch, pingpong)"),
    }
}

/// Spawn one empty thread, join it, repeat.
fn spawn_join(n: usize) {
    let start = Instant::now();
    for _ in 0..n {
        thread::spawn(|| {}).join().unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64;
    result(&[("ns/op", ns / n as f64), ("_ops", n as f64)]);
}

/// Spawn 1000 empty threads, then join each; repeat until `n` ran.
fn spawn_batch(n: usize) {
    let rounds = n.div_ceil(BATCH);
    let mut handles = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..rounds {
        handles.extend((0..BATCH).map(|_| thread::spawn(|| {})));
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

/// Two threads pass a token back and forth over two rendezvous channels (`sync_channel(0)`).
fn pingpong(n: usize) {
    let (ping_tx, ping_rx) = sync_channel::<u64>(0);
    let (pong_tx, pong_rx) = sync_channel::<u64>(0);
    let echo = thread::spawn(move || {
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
