//! A goroutine-style echo server: one coroutine per connection, plain blocking code,
//! spread over the workers as the connections arrive.
//!
//! ```text
//! cargo run --release --example echo                  # serve on 127.0.0.1:7000
//! cargo run --release --example echo -- 0.0.0.0:9000 # serve elsewhere
//! cargo run --release --example echo -- --demo        # serve, run 100 clients, print, exit
//! ```
//!
//! Accept errors such as EMFILE (out of fds) are answered the way Go's HTTP server does:
//! back off 5 ms, doubling up to 1 s, and keep serving the connections already open.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

fn serve(listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                // `coronet::go` would do; `spread` starts each connection's coroutine on the
                // worker holding the fewest, since a started coroutine never changes
                // worker (a plain `go` from an idle acceptor keeps them all on its own).
                coronet::Spawn::new().spread().go(move || handle(stream));
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("echo: {e}; retrying in {backoff:?}");
                coronet::time::sleep(backoff);
            }
        }
    }
}

fn handle(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return, // the peer closed: EOF is Ok(0)
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("echo: {e}");
                return;
            }
        }
    }
}

/// 100 client coroutines, 1,000 round trips each, against our own server.
fn demo(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    coronet::go(move || serve(listener));
    let start = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            coronet::go(move || {
                let mut c = TcpStream::connect(addr).expect("connect");
                let mut back = [0u8; 64];
                for j in 0..1000 {
                    let msg = format!("client {i:3} message {j:4}");
                    c.write_all(msg.as_bytes()).unwrap();
                    c.read_exact(&mut back[..msg.len()]).unwrap();
                    assert_eq!(&back[..msg.len()], msg.as_bytes());
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client coroutine");
    }
    let took = start.elapsed();
    let s = coronet::stats();
    println!("echo demo: 100 connections x 1,000 round trips on {addr} in {took:.2?}");
    println!(
        "  {:.0} round trips/s; {} coroutines spawned, {} context switches, {} epoll waits",
        100_000.0 / took.as_secs_f64(),
        s.spawned,
        s.context_switches,
        s.epoll_waits
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo_mode = args.iter().any(|a| a == "--demo");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| {
            if demo_mode {
                "127.0.0.1:0".into()
            } else {
                "127.0.0.1:7000".into()
            }
        });
    coronet::run(move || {
        let listener = TcpListener::bind(addr.as_str()).unwrap_or_else(|e| {
            eprintln!("echo: {e}");
            std::process::exit(1);
        });
        if demo_mode {
            demo(listener);
        } else {
            println!("echo: listening on {}", listener.local_addr().unwrap());
            serve(listener);
        }
    });
}
