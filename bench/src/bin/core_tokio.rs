//! Runtime-core benchmarks for tokio on one thread (`current_thread`). See README.md.
//!
//! Usage: core_tokio spawn N | batch N | pingpong N | idle N [--sleep SECS]

use coronet_bench::{idle_result, result, rss_kib, Args};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    let sleep = args.secs("sleep", 10.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every benchmark runs inside a spawned task, as the other contenders run inside a coroutine.
    let task = match args.pos(0, "benchmark") {
        "spawn" => rt.spawn(spawn_join(n)),
        "batch" => rt.spawn(spawn_batch(n)),
        "pingpong" => rt.spawn(pingpong(n)),
        "idle" => rt.spawn(idle(n, sleep)),
        other => panic!("unknown benchmark {other:?}"),
    };
    rt.block_on(task).unwrap();
    // Parked tasks are not worth tearing down one by one.
    std::process::exit(0);
}

/// Spawn one empty task, wait for it, repeat.
async fn spawn_join(n: usize) {
    let start = Instant::now();
    for _ in 0..n {
        tokio::spawn(async {}).await.unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64;
    result(&[("ns/op", ns / n as f64), ("_ops", n as f64)]);
}

/// Spawn 1000 empty tasks, then wait for each; repeat until `n` tasks ran.
async fn spawn_batch(n: usize) {
    let rounds = n.div_ceil(BATCH);
    let mut handles = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..rounds {
        handles.extend((0..BATCH).map(|_| tokio::spawn(async {})));
        for h in handles.drain(..) {
            h.await.unwrap();
        }
    }
    let ns = start.elapsed().as_nanos() as f64;
    result(&[
        ("ns/op", ns / (rounds * BATCH) as f64),
        ("_ops", (rounds * BATCH) as f64),
    ]);
}

/// Two tasks pass a token back and forth over two `mpsc::channel(1)`s.
async fn pingpong(n: usize) {
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v).await.unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..n as u64 {
        ping_tx.send(i).await.unwrap();
        assert_eq!(pong_rx.recv().await, Some(i));
    }
    let ns = start.elapsed().as_nanos() as f64;
    drop(ping_tx);
    echo.await.unwrap();
    result(&[("ns/rt", ns / n as f64), ("_rts", n as f64)]);
}

/// `n` tasks each sleeping `sleep`; memory is read once all of them are parked.
async fn idle(n: usize, sleep: Duration) {
    let before = rss_kib();
    let parked = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let parked = parked.clone();
        tokio::spawn(async move {
            parked.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(sleep).await;
        });
    }
    while parked.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let spawn_s = start.elapsed().as_secs_f64();
    let after = rss_kib();
    idle_result(n, before, after, spawn_s, None);
}
