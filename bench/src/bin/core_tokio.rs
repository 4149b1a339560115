//! Runtime-core benchmarks for tokio on one thread (`current_thread`). See docs/benchmarks.md.
//!
//! Usage: core_tokio spawn N | batch N | pingpong N | idle N [--sleep SECS]

use coronet_bench::{idle_result, result, rss_kib, Args};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

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

/// Two tasks take turns through two `Notify`s, tokio's park/unpark: `notify_one` leaves a
/// permit when nobody waits yet, so a wake-up that comes first is not lost.
async fn pingpong(n: usize) {
    let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        tokio::spawn(async move {
            for _ in 0..n {
                ping.notified().await;
                pong.notify_one();
            }
        })
    };
    let start = Instant::now();
    for _ in 0..n {
        ping.notify_one();
        pong.notified().await;
    }
    let ns = start.elapsed().as_nanos() as f64;
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
