//! Where a two-worker server's connection handlers land, and what it costs: a plain
//! `coronet::go` from the acceptor against `Spawn::new().spread()` (docs/runtime.md, *The
//! pinning rule*; docs/benchmarks.md, section 2, *Two workers*).
//!
//! Usage: placement [RUNS [BURN_US [CONNS]]] (defaults 6, 50, 32). Each run starts a
//! server process (this binary, `placement serve MODE BURN_US`: two workers, one coroutine
//! per connection echoing 64-byte messages after `BURN_US` µs of pure CPU each), connects
//! `CONNS` clients (plain threads) one after another, waits 300 ms, then has them all
//! ping-pong for 3 s. Prints, per run, the requests per second and each worker thread's
//! CPU time over the load, in ms: a worker with none served no connection. Modes alternate,
//! plain then spread, `RUNS` times each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADDR: &str = "127.0.0.1:7791";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let spread = args[2] == "spread";
        let burn = Duration::from_micros(args[3].parse().expect("BURN_US"));
        serve(spread, burn);
    }
    let num = |i: usize, d: u64| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    let (runs, burn_us, conns) = (num(1, 6), num(2, 50), num(3, 32) as usize);
    println!("# {runs} runs per mode, {burn_us} us of CPU per request, {conns} connections");
    let mut lopsided = [0; 2];
    for _ in 0..runs {
        for (i, mode) in ["plain", "spread"].into_iter().enumerate() {
            let (lo, hi) = run(&args[0], mode, burn_us, conns);
            // one worker did under a tenth of the other's work: it served (nearly) nothing
            lopsided[i] += usize::from(lo * 10 < hi);
        }
    }
    println!(
        "# one worker (nearly) idle: plain in {} of {runs} runs, spread in {} of {runs}",
        lopsided[0], lopsided[1]
    );
}

/// One run; the two workers' CPU time, the smaller first.
fn run(me: &str, mode: &str, burn_us: u64, conns: usize) -> (u64, u64) {
    let mut server = Command::new(me)
        .args(["serve", mode, &burn_us.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .expect("the server's ready line");
    let mut clients: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let c = TcpStream::connect(ADDR).expect("connect");
            c.set_nodelay(true).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300)); // connected while the server idles
                                                    // Each thread's time on CPU (`schedstat`'s first field, ns), in thread-id order: the
                                                    // main thread (worker 0) first, then worker 1.
    let on_cpu = |pid: u32| -> Vec<u64> {
        let mut tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .filter_map(|t| t.file_name().to_str()?.parse::<u32>().ok())
            .collect();
        tasks.sort_unstable();
        tasks
            .iter()
            .map(|tid| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    };
    let before = on_cpu(server.id());
    let window = Duration::from_secs(3);
    let stop = Instant::now() + window;
    let threads: Vec<_> = clients
        .drain(..)
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut buf = [7u8; 64];
                while Instant::now() < stop {
                    c.write_all(&buf).unwrap();
                    c.read_exact(&mut buf).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let after = on_cpu(server.id());
    let ms: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| (a - b) / 1_000_000)
        .collect();
    println!(
        "{mode:6} req/s={:7.0} worker_cpu_ms={ms:?}",
        total as f64 / window.as_secs_f64()
    );
    let _ = server.kill();
    let _ = server.wait();
    let (a, b) = (
        ms.first().copied().unwrap_or(0),
        ms.get(1).copied().unwrap_or(0),
    );
    (a.min(b), a.max(b))
}

fn serve(spread: bool, burn: Duration) -> ! {
    let err = coronet::Builder::new()
        .workers(2)
        .main(move || {
            let listener = coronet::net::TcpListener::bind(ADDR).expect("bind");
            println!("ready");
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let handler = move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        let t = Instant::now();
                        while t.elapsed() < burn {
                            std::hint::spin_loop();
                        }
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                };
                if spread {
                    drop(coronet::Spawn::new().spread().go(handler));
                } else {
                    drop(coronet::go(handler));
                }
            }
        })
        .unwrap_err();
    panic!("coronet runtime: {err}");
}
