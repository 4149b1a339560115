//! The baseline: a hand-written echo server, one thread, one edge-triggered epoll set,
//! nonblocking sockets, libc only. What a runtime costs is measured against this.
//!
//! Usage: echo_epoll 127.0.0.1:PORT — prints `ready` once listening, runs until killed.
//!
//! Per readiness event a connection is driven until the kernel says `EAGAIN`, with one
//! shortcut a tuned loop takes: a read that returns less than the buffer drained the socket,
//! so we stop there (new data raises a new edge) unless the event also said the peer hung up.
//! Bytes the peer is not ready to take wait in the connection's `pending` buffer, and
//! reading pauses until `EPOLLOUT` lets them go.
//!
//! `ECHO_EPOLL_SPIN_NS=N` (environment) makes the loop burn about N ns of pure CPU per
//! request, to calibrate part `ab`'s method: the N at which coronet and the loop cost the
//! same is what coronet's extra cost is worth in plain instructions. Unset, it is 0.
//!
//! `ECHO_EPOLL_OWN_BUF=1` (environment) gives every connection its own `ECHO_BUF` read
//! buffer, as every other server here has (a goroutine's `make([]byte, 32<<10)`), instead of
//! the one the loop shares: what a buffer per connection costs, apart from the runtime.

use coronet_bench::sys::{self, Epoll, ERR, ET, HUP, IN, OUT, RDHUP};
use coronet_bench::{ready, server_addr, ECHO_BUF};
use std::io::ErrorKind::WouldBlock;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

/// The token of the listening socket; connections use their fd as token.
const LISTENER: u64 = u64::MAX;

#[derive(Default)]
struct Conn {
    /// Echoed bytes the socket did not take yet; `pending[sent..]` is still to go.
    pending: Vec<u8>,
    sent: usize,
    /// This connection's read buffer under `ECHO_EPOLL_OWN_BUF=1`; empty otherwise.
    own: Vec<u8>,
}

enum Next {
    Wait,
    Close,
}

fn main() {
    let listener = TcpListener::bind(server_addr()).expect("bind");
    sys::full_backlog(listener.as_raw_fd());
    listener.set_nonblocking(true).unwrap();
    let listener = listener.into_raw_fd();
    let epoll = Epoll::new().unwrap();
    epoll.add(listener, IN | ET, LISTENER).unwrap();
    let spin = spin_iterations();
    let own_buf = std::env::var_os("ECHO_EPOLL_OWN_BUF").is_some_and(|v| v == "1");
    ready();

    // Indexed by fd: the kernel hands out the lowest free fd, so this stays dense.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; ECHO_BUF];
    let mut events = sys::empty_events(1024);
    loop {
        let n = epoll.wait(&mut events, -1).unwrap();
        for ev in &events[..n] {
            let (token, flags) = (ev.u64, ev.events);
            if token == LISTENER {
                accept_all(listener, &epoll, &mut conns, own_buf);
                continue;
            }
            let fd = token as RawFd;
            let Some(conn) = conns[fd as usize].as_mut() else {
                continue;
            };
            let hung_up = flags & (RDHUP | HUP | ERR) != 0;
            let mut own = std::mem::take(&mut conn.own);
            let buf = if own.is_empty() { &mut buf } else { &mut own };
            let next = drive(fd, conn, buf, hung_up, spin);
            conn.own = own;
            if let Next::Close = next {
                conns[fd as usize] = None;
                sys::close(fd); // also removes it from the epoll set
            }
        }
    }
}

fn accept_all(listener: RawFd, epoll: &Epoll, conns: &mut Vec<Option<Conn>>, own_buf: bool) {
    loop {
        let fd = match sys::accept_nonblocking(listener) {
            Ok(fd) => fd,
            Err(e) if e.kind() == WouldBlock => return,
            Err(e) => {
                eprintln!("echo_epoll: accept: {e}");
                return;
            }
        };
        sys::set_nodelay(fd).unwrap();
        epoll.add(fd, IN | OUT | RDHUP | ET, fd as u64).unwrap();
        if conns.len() <= fd as usize {
            conns.resize_with(fd as usize + 1, || None);
        }
        let own = if own_buf {
            vec![0u8; ECHO_BUF]
        } else {
            Vec::new()
        };
        conns[fd as usize] = Some(Conn {
            own,
            ..Conn::default()
        });
    }
}

/// Echoes until the socket has nothing more to give or cannot take more.
fn drive(fd: RawFd, conn: &mut Conn, buf: &mut [u8], hung_up: bool, spin: u64) -> Next {
    loop {
        // 1. Flush what the peer did not take last time; while it cannot, do not read.
        while conn.sent < conn.pending.len() {
            match sys::write(fd, &conn.pending[conn.sent..]) {
                Ok(n) => conn.sent += n,
                Err(e) if e.kind() == WouldBlock => return Next::Wait,
                Err(_) => return Next::Close,
            }
        }
        conn.pending.clear();
        conn.sent = 0;
        // 2. Read what arrived.
        let n = match sys::read(fd, buf) {
            Ok(0) => return Next::Close,
            Ok(n) => n,
            Err(e) if e.kind() == WouldBlock => return Next::Wait,
            Err(_) => return Next::Close,
        };
        burn(spin);
        // 3. Write it back; keep whatever the socket does not take.
        let mut sent = 0;
        while sent < n {
            match sys::write(fd, &buf[sent..n]) {
                Ok(k) => sent += k,
                Err(e) if e.kind() == WouldBlock => {
                    conn.pending.extend_from_slice(&buf[sent..n]);
                    return Next::Wait; // EPOLLOUT will bring us back
                }
                Err(_) => return Next::Close,
            }
        }
        // 4. A short read drained the socket: the next arrival raises a new edge.
        if n < buf.len() && !hung_up {
            return Next::Wait;
        }
    }
}

/// Iterations of `burn` that take about `ECHO_EPOLL_SPIN_NS` ns, timed here at start-up.
fn spin_iterations() -> u64 {
    let ns: f64 = match std::env::var("ECHO_EPOLL_SPIN_NS") {
        Ok(v) => v
            .parse()
            .expect("ECHO_EPOLL_SPIN_NS: a number of nanoseconds"),
        Err(_) => return 0,
    };
    // The fastest of twenty probes: the first ones run on a cold, slowly clocking core.
    const PROBE: u64 = 5_000_000;
    let per_iteration = (0..20)
        .map(|_| {
            let start = std::time::Instant::now();
            burn(PROBE);
            start.elapsed().as_nanos() as f64 / PROBE as f64
        })
        .fold(f64::INFINITY, f64::min);
    let n = (ns / per_iteration).round() as u64;
    eprintln!("echo_epoll: {ns} ns of spin per request = {n} iterations of {per_iteration:.3} ns");
    n
}

/// Pure CPU: `n` turns of a loop the compiler cannot remove, touching no memory.
fn burn(n: u64) {
    for i in 0..n {
        std::hint::black_box(i);
    }
}
