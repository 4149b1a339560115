//! A TCP proxy: every connection is copied both ways to an upstream with `coronet::io::copy`,
//! which moves socket → socket bytes with `splice(2)`, so they never enter user space.
//!
//! ```text
//! cargo run --release --example echo &                # upstream on 127.0.0.1:7000
//! cargo run --release --example proxy                 # 127.0.0.1:7001 → 127.0.0.1:7000
//! cargo run --release --example proxy -- 0.0.0.0:8000 example.internal:80 30
//! nc 127.0.0.1 7001
//! ```
//!
//! Arguments: listen address, upstream address, idle seconds (default 60; fractions allowed).
//!
//! # One connection
//!
//! Three coroutines per accepted connection:
//!
//! - two copies, client → upstream and upstream → client, each a single `io::copy` that runs
//!   until its source says end of file;
//! - the connection's own coroutine, which dialled the upstream and then watches for idleness.
//!
//! **Half-close.** When a copy reaches end of file it shuts down the *write* side of its
//! destination, so the other end sees the same EOF, and the opposite direction goes on: a
//! client may send a request, shut down its write side, and still read the whole answer.
//! When both copies have ended the pair is closed.
//!
//! **Errors.** A copy that fails (a reset, a closed socket) closes both sockets, which
//! unblocks the other copy at once (`close` wakes blocked calls, as in Go).
//!
//! **Idleness.** The pair is closed when no byte has moved in either direction for the idle
//! time. Idleness is of the pair, not of one direction, because one direction is often quiet
//! on purpose: a client that sent its request and now downloads the answer for minutes, or a
//! direction already half-closed.
//!
//! How to see bytes move without giving up `splice`? `io::copy` runs to EOF and reports
//! nothing on the way, and wrapping a stream to count (or copying in chunks with `take`)
//! turns the copy into a buffered loop through user space. So the watchdog reads the kernel's
//! own counters instead: `TCP_INFO`'s `tcpi_bytes_received` (bytes that arrived on a socket)
//! and `tcpi_bytes_acked` (bytes we sent that the peer acknowledged), on both sockets, every
//! quarter of the idle time. If the sum is unchanged for the idle time, nothing moved, and
//! the watchdog closes both sockets, which ends both copies. A pair therefore closes between
//! `idle` and `1.25 × idle` after its last byte, for the price of one timer and four
//! `getsockopt` calls per check.

use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coronet::chan;
use coronet::net::{TcpListener, TcpStream};

/// How long dialling the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Config {
    listen: String,
    upstream: SocketAddr,
    idle: Duration,
}

fn usage(msg: &str) -> ! {
    eprintln!("proxy: {msg}");
    eprintln!("usage: proxy [LISTEN_ADDR [UPSTREAM_ADDR [IDLE_SECONDS]]]");
    std::process::exit(2);
}

fn config() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() > 3 {
        usage("too many arguments");
    }
    let listen = args.first().cloned().unwrap_or("127.0.0.1:7001".into());
    let upstream = args.get(1).map_or("127.0.0.1:7000", |s| s.as_str());
    // Resolved once: every connection dials the same address.
    let upstream = match upstream.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => usage(&format!("upstream {upstream:?} has no address")),
        Err(e) => usage(&format!("upstream {upstream:?}: {e}")),
    };
    let idle = args.get(2).map_or(60.0, |s| {
        s.parse::<f64>()
            .unwrap_or_else(|_| usage(&format!("idle seconds {s:?} is not a number")))
    });
    if !(idle.is_finite() && idle > 0.0 && idle < 1e9) {
        usage(&format!("idle seconds must be positive, not {idle}"));
    }
    Config {
        listen,
        upstream,
        idle: Duration::from_secs_f64(idle),
    }
}

fn main() {
    let cfg = config();
    coronet::run(move || {
        let listener = TcpListener::bind(cfg.listen.as_str()).unwrap_or_else(|e| {
            eprintln!("proxy: {e}");
            std::process::exit(1);
        });
        // The first line is the address (tests start us on port 0 and read it).
        println!("proxy: listening on {}", listener.local_addr().unwrap());
        eprintln!(
            "proxy: forwarding to {}, idle timeout {:?}",
            cfg.upstream, cfg.idle
        );
        let mut backoff = Duration::ZERO;
        loop {
            match listener.accept() {
                Ok((client, _)) => {
                    backoff = Duration::ZERO;
                    let (upstream, idle) = (cfg.upstream, cfg.idle);
                    coronet::go(move || proxy(client, upstream, idle));
                }
                Err(e) => {
                    // Out of fds and the like: back off as Go's HTTP server does.
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    eprintln!("proxy: {e}; retrying in {backoff:?}");
                    coronet::time::sleep(backoff);
                }
            }
        }
    });
}

/// Serves one client: dial the upstream, start the two copies, watch for idleness.
fn proxy(client: TcpStream, upstream: SocketAddr, idle: Duration) {
    let server = match TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            // The client is closed when `client` drops: the only answer a plain proxy has.
            eprintln!("proxy: {e}");
            return;
        }
    };
    let (client, server) = (Arc::new(client), Arc::new(server));
    // Each copy holds a sender and drops it when it ends; once both have, `recv` fails.
    let (running, finished) = chan::bounded::<()>(0);
    for (from, to) in [(&client, &server), (&server, &client)] {
        let (from, to, running) = (from.clone(), to.clone(), running.clone());
        coronet::go(move || {
            copy_one_way(&from, &to);
            drop(running);
        });
    }
    drop(running);
    watch(&client, &server, &finished, idle);
}

/// Copies `from` → `to` until EOF, then passes the EOF on; on an error, ends the pair.
/// With `PROXY_LOG_COPIES=1` in the environment, says how each copy ended.
fn copy_one_way(from: &TcpStream, to: &TcpStream) {
    let r = coronet::io::copy(&mut &*from, &mut &*to);
    if std::env::var_os("PROXY_LOG_COPIES").is_some_and(|v| v == "1") {
        let addr = |a: std::io::Result<SocketAddr>| a.map_or("?".to_owned(), |a| a.to_string());
        let name = |s: &TcpStream| format!("{}->{}", addr(s.local_addr()), addr(s.peer_addr()));
        eprintln!("proxy: copy {} => {}: {r:?}", name(from), name(to));
    }
    match r {
        // Half-close: the other direction keeps going. Ignored error: the pair may have
        // been closed meanwhile, and then there is nobody to tell.
        Ok(_) => drop(to.shutdown(Shutdown::Write)),
        // A reset or our own close: stop the other direction too. Not printed: peers
        // vanishing is what a proxy sees all day.
        Err(_) => close_pair(from, to),
    }
}

fn close_pair(a: &TcpStream, b: &TcpStream) {
    // Ignored: `close` fails only on a stream that is already closed.
    let _ = a.close();
    let _ = b.close();
}

/// Waits for both copies to end, closing the pair if no byte moves for `idle`.
fn watch(client: &TcpStream, server: &TcpStream, finished: &chan::Receiver<()>, idle: Duration) {
    let check_every = idle / 4;
    let moved = || Some(bytes_moved(client)? + bytes_moved(server)?);
    let mut seen = moved();
    let mut last_move = Instant::now();
    loop {
        coronet::select! {
            // Nothing is ever sent: this fires when both copies have dropped their sender.
            recv(finished) -> _ => return,
            default(check_every) => {}
        }
        let now = moved();
        // Counters we cannot read count as movement: never close a pair on a guess.
        if now.is_none() || now != seen {
            seen = now;
            last_move = Instant::now();
        } else if last_move.elapsed() >= idle {
            close_pair(client, server);
            // The copies fail at once; wait for them so the pair's fds close here.
            let _ = finished.recv();
            return;
        }
    }
}

/// Bytes that arrived on `s` plus bytes sent on it that the peer acknowledged, from the
/// kernel's `TCP_INFO`; `None` if the socket cannot say (closed, or a kernel before 4.2).
fn bytes_moved(s: &TcpStream) -> Option<u64> {
    // SAFETY: `tcp_info` is plain integers, for which all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is open while `s` lives (`as_fd` borrows it); `info` and `len` are
    // valid for writes and `len` says how many bytes `info` holds, so the kernel writes
    // at most that many.
    let r = unsafe {
        libc::getsockopt(
            s.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // Both counters must be in what the kernel filled in: older kernels fill in less.
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received) + 8;
    if r != 0 || (len as usize) < needed {
        return None;
    }
    Some(info.tcpi_bytes_received.wrapping_add(info.tcpi_bytes_acked))
}
