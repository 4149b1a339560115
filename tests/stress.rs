//! Load and races: thousands of live connections at once, and close/deadline racing I/O.
//!
//! These check outcomes (every byte echoed intact, every raced call ending in an allowed
//! result, no fd left behind), never speed. Every test counts fds, so each runs alone.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coronet::net::{ListenConfig, TcpListener, TcpStream};
use coronet::Spawn;
use util::{assert_closed, assert_timeout};

/// Echo handlers and clients need little stack; small stacks keep 10,000 of them cheap.
const SMALL_STACK: usize = 64 << 10;

fn go_small<F, T>(f: F) -> coronet::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Spawn::new().stack_size(SMALL_STACK).go(f)
}

fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => s.write_all(&buf[..n]).unwrap(),
            Err(e) => panic!("echo read: {e}"),
        }
    }
}

/// A one-shot gate coroutines park at until it opens.
struct Gate {
    open: AtomicBool,
    arrived: AtomicUsize,
    waiters: Mutex<Vec<coronet::Coroutine>>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: AtomicBool::new(false),
            arrived: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Registers, counts itself, then parks until `open` (wake-ups may be spurious).
    fn wait(&self) {
        self.waiters.lock().unwrap().push(coronet::current());
        self.arrived.fetch_add(1, Ordering::SeqCst);
        while !self.open.load(Ordering::SeqCst) {
            coronet::park();
        }
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        for c in self.waiters.lock().unwrap().drain(..) {
            c.unpark();
        }
    }
}

#[test]
fn five_thousand_concurrent_echo_connections() {
    const N: usize = 5_000;
    const ROUNDS: usize = 3;
    let _g = util::exclusive();
    let limit = util::raise_nofile();
    assert!(
        limit >= 2 * N as u64 + 500,
        "RLIMIT_NOFILE hard limit {limit} is too low"
    );
    let base = util::fd_baseline();
    let t = Instant::now();
    coronet::run(move || {
        let l = ListenConfig::new()
            .backlog(8192)
            .listen("127.0.0.1:0")
            .unwrap();
        let addr = l.local_addr().unwrap();
        let server = coronet::go(move || {
            for _ in 0..N {
                let (s, _) = l.accept().unwrap();
                go_small(move || echo(s));
            }
        });
        let gate = Arc::new(Gate::new());
        let clients: Vec<_> = (0..N)
            .map(|i| {
                let gate = gate.clone();
                go_small(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let mut back = [0u8; 64];
                    for round in 0..ROUNDS {
                        let msg = format!("client {i} round {round} {}", "x".repeat(i % 29));
                        c.write_all(msg.as_bytes()).unwrap();
                        c.read_exact(&mut back[..msg.len()]).unwrap();
                        assert_eq!(&back[..msg.len()], msg.as_bytes(), "echo mixed up");
                        if round == 0 {
                            // hold the connection until all N are open at once
                            gate.wait();
                        }
                    }
                })
            })
            .collect();
        util::wait_until(Duration::from_secs(120), "all clients connected", || {
            gate.arrived.load(Ordering::SeqCst) == N
        });
        println!("{N} connected at once after {:?}", t.elapsed());
        gate.open();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
    // measured, not asserted (no timed assertions): printed with --nocapture
    println!(
        "{N} connections x {ROUNDS} round trips in {:?}",
        t.elapsed()
    );
    util::assert_fd_baseline(base);
}

/// Runs `iterations` of `race(i, listener)` on a fresh loopback listener, then checks no
/// fd was left behind. The closure decides which side runs on a coroutine or a thread.
fn races(iterations: usize, race: impl Fn(usize, &TcpListener) + Send + Sync + 'static) {
    // taken before anything is opened, so no other test's count sees our sockets
    let _g = util::exclusive();
    let base = util::fd_baseline();
    coronet::run(move || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        for i in 0..iterations {
            race(i, &l);
        }
    });
    util::assert_fd_baseline(base);
}

/// Runs `f` as a coroutine on even iterations and on a thread on odd ones.
fn spawn_either<T: Send + 'static>(
    i: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Box<dyn FnOnce() -> T> {
    if i % 2 == 0 {
        let h = go_small(f);
        Box::new(move || h.join().unwrap())
    } else {
        let h = std::thread::spawn(f);
        Box::new(move || h.join().unwrap())
    }
}

/// Lets the other side get to a varying point: not at all, into the syscall, or parked.
fn stagger(i: usize) {
    match i % 4 {
        0 => {}
        1 => coronet::yield_now(),
        2 => {
            for _ in 0..3 {
                coronet::yield_now();
            }
        }
        _ => coronet::time::sleep(Duration::from_micros(200)),
    }
}

#[test]
fn race_close_vs_read() {
    races(1_000, |i, l| {
        let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let (s, _) = l.accept().unwrap();
        let c2 = c.clone();
        let read = spawn_either(i, move || (&*c2).read(&mut [0u8; 8]));
        stagger(i);
        c.close().unwrap();
        match read() {
            Err(e) => assert_closed(&e),
            Ok(n) => panic!("read {n} bytes nobody sent"),
        }
        drop(s);
    });
}

#[test]
fn race_close_vs_write() {
    races(1_000, |i, l| {
        let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let (s, _) = l.accept().unwrap();
        // small buffers so they fill fast
        c.set_send_buffer_size(8 << 10).unwrap();
        s.set_recv_buffer_size(8 << 10).unwrap();
        let c2 = c.clone();
        // the peer never reads: writes fill the buffers and park
        let write = spawn_either(i, move || {
            let buf = vec![5u8; 64 << 10];
            loop {
                match (&*c2).write(&buf) {
                    Ok(n) => assert!(n > 0),
                    Err(e) => return e,
                }
            }
        });
        stagger(i);
        c.close().unwrap();
        assert_closed(&write());
        drop(s);
    });
}

#[test]
fn race_close_vs_accept() {
    races(1_000, |i, _| {
        let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = l.local_addr().unwrap();
        let l2 = l.clone();
        let accept = spawn_either(i, move || l2.accept().map(|(s, _)| s));
        // on some iterations a client arrives too: accept may then win the race
        let client = (i % 3 == 0).then(|| TcpStream::connect(addr));
        stagger(i);
        l.close().unwrap();
        match accept() {
            Ok(s) => assert!(client.is_some(), "accepted a connection nobody made {s:?}"),
            Err(e) => assert_closed(&e),
        }
        drop(client);
    });
}

#[test]
fn race_deadline_vs_read() {
    races(1_000, |i, l| {
        let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let (mut s, _) = l.accept().unwrap();
        let c2 = c.clone();
        let read = spawn_either(i, move || (&*c2).read(&mut [0u8; 8]));
        let sends = i % 3 == 0;
        if sends {
            s.write_all(&[42]).unwrap();
        }
        stagger(i);
        c.set_read_deadline(Some(Instant::now())).unwrap();
        match read() {
            Ok(n) => assert!(sends && n == 1, "read {n} bytes (sent: {sends})"),
            Err(e) => assert_timeout(&e),
        }
        // the deadline sticks until reset; clearing it makes reads work again
        assert_timeout(&(&*c).read(&mut [0u8; 8]).unwrap_err());
        c.set_read_deadline(None).unwrap();
        s.write_all(&[7]).unwrap();
        // read up to the 7 (the 42 may still be pending if the read above timed out)
        let mut got = Vec::new();
        while got.last() != Some(&7) {
            let mut b = [0u8; 2];
            let n = (&*c).read(&mut b).unwrap();
            assert!(n > 0, "EOF");
            got.extend_from_slice(&b[..n]);
        }
        assert!(got == [7] || (sends && got == [42, 7]), "{got:?}");
    });
}
