//! Runtime-core benchmarks for coronet with one worker. See docs/benchmarks.md.
//!
//! Usage: core_coronet spawn N | batch N | pingpong N | idle N [--sleep SECS] [--stack-kib KIB]
//!
//! Until coronet has channels, the ping-pong uses its park API directly: `park()` and
//! `current().unpark()`, with a shared turn counter because a park may return spuriously.

use coronet_bench::{idle_result, result, rss_kib, Args};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

fn main() {
    let args = Args::parse();
    let n: usize = args.pos(1, "N").parse().expect("N");
    let sleep = args.secs("sleep", 10.0);
    let stack_kib: usize = args.get("stack-kib", 0);
    let mut builder = coronet::Builder::new().workers(1);
    if stack_kib > 0 {
        builder = builder.stack_size(stack_kib << 10);
    }
    builder.build_global().expect("coronet runtime");
    let bench = args.pos(0, "benchmark").to_string();
    // Every benchmark runs inside a coroutine.
    coronet::run(move || match bench.as_str() {
        "spawn" => spawn_join(n),
        "batch" => spawn_batch(n),
        "pingpong" => pingpong(n),
        "idle" => idle(n, sleep, stack_kib),
        other => panic!("unknown benchmark {other:?}"),
    });
    // Parked coroutines are not worth tearing down one by one.
    std::process::exit(0);
}

/// Spawn one empty coroutine, join it, repeat.
fn spawn_join(n: usize) {
    let start = Instant::now();
    for _ in 0..n {
        coronet::go(|| {}).join().unwrap();
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
        handles.extend((0..BATCH).map(|_| coronet::go(|| {})));
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

/// Two coroutines take turns: the main one owns even turns, the echo one odd turns. Each
/// bumps the counter, unparks the other and parks until its turn comes back.
fn pingpong(n: usize) {
    let turn = Arc::new(AtomicU64::new(0));
    let echo_handle: Arc<OnceLock<coronet::Coroutine>> = Arc::new(OnceLock::new());
    let main = coronet::current();
    let echo = {
        let (turn, echo_handle) = (turn.clone(), echo_handle.clone());
        coronet::go(move || {
            let _ = echo_handle.set(coronet::current());
            main.unpark();
            for i in 0..n as u64 {
                wait_for_turn(&turn, 2 * i + 1);
                turn.store(2 * i + 2, Ordering::Release);
                main.unpark();
            }
        })
    };
    let peer = loop {
        match echo_handle.get() {
            Some(peer) => break peer,
            None => coronet::park(), // retry: the echo coroutine has not published itself yet
        }
    };
    let start = Instant::now();
    for i in 0..n as u64 {
        turn.store(2 * i + 1, Ordering::Release);
        peer.unpark();
        wait_for_turn(&turn, 2 * i + 2);
    }
    let ns = start.elapsed().as_nanos() as f64;
    echo.join().unwrap();
    result(&[("ns/rt", ns / n as f64), ("_rts", n as f64)]);
}

fn wait_for_turn(turn: &AtomicU64, want: u64) {
    // A park may return spuriously: re-test the condition each time.
    while turn.load(Ordering::Acquire) != want {
        coronet::park();
    }
}

/// `n` coroutines each sleeping `sleep`; memory is read once all of them are parked.
fn idle(n: usize, sleep: Duration, stack_kib: usize) {
    let before = rss_kib();
    let parked = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..n {
        let parked = parked.clone();
        drop(coronet::go(move || {
            parked.fetch_add(1, Ordering::Relaxed);
            coronet::time::sleep(sleep);
        }));
    }
    while parked.load(Ordering::Relaxed) < n {
        coronet::time::sleep(Duration::from_millis(1));
    }
    let spawn_s = start.elapsed().as_secs_f64();
    let after = rss_kib();
    idle_result(
        n,
        before,
        after,
        spawn_s,
        (stack_kib > 0).then_some(stack_kib),
    );
}
