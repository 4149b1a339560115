//! Watch the netpoller work: one echo request served with `log` at trace level.
//!
//! ```text
//! cargo run --example trace
//! ```
//!
//! A tiny logger (below) prints every record with the thread it came from. The server
//! coroutine reads before the client has written, so its `recv` gets EAGAIN and you see it
//! park on the fd's read slot, the worker sleep in `epoll_wait`, the event arrive, the
//! coroutine unparked to the back of its worker's run queue, resumed, and its retried `recv` return the data.
//! `docs/life-of-a-read.md` explains each line.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use coronet::net::{TcpListener, TcpStream};

/// Prints `log` records to stderr with a timestamp and the thread name.
struct Logger {
    start: Instant,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with("coronet")
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let t = std::thread::current();
            eprintln!(
                "{:>9.3?} {:<18} {:<5} {}",
                self.start.elapsed(),
                t.name().unwrap_or("?"),
                r.level(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

fn main() {
    let logger = Box::leak(Box::new(Logger {
        start: Instant::now(),
    }));
    log::set_logger(logger).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    // One worker, so the whole story happens on one thread.
    coronet::Builder::new().workers(1).build_global().unwrap();
    coronet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        println!("--- the server coroutine accepts and reads; nothing has arrived yet");
        let server = coronet::Spawn::new().name("server").go(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).unwrap();
            println!(
                "--- server read {:?}; echoing it",
                String::from_utf8_lossy(&buf[..n])
            );
            conn.write_all(&buf[..n]).unwrap();
        });
        let client = coronet::Spawn::new().name("client").go(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            // Let the server park first, so the trace shows the whole park/wake cycle.
            coronet::time::sleep(Duration::from_millis(50));
            println!("--- the client writes");
            c.write_all(b"hello, netpoller").unwrap();
            let mut back = [0u8; 16];
            c.read_exact(&mut back).unwrap();
            println!("--- client got {:?} back", String::from_utf8_lossy(&back));
        });
        server.join().unwrap();
        client.join().unwrap();
    });
}
