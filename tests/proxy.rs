//! `examples/proxy.rs` as a program: bytes through it intact, EOF passed on in each
//! direction, idle pairs closed, many pairs at once without leaking fds.
//!
//! The clients and the upstream are plain `std::net` on threads, so what is tested is the
//! proxy alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod util;
use util::examples::example;

/// The proxy on an ephemeral port in front of `upstream`; killed on drop. Its stderr is
/// collected (and also shown, for a failing test's output).
struct Proxy {
    child: Child,
    addr: SocketAddr,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Proxy {
    /// Starts the proxy and reads its address from the first line
    /// (`proxy: listening on ADDR`).
    fn start(upstream: SocketAddr, idle_secs: &str) -> Proxy {
        let mut child = Command::new(example("proxy"))
            .args(["127.0.0.1:0", &upstream.to_string(), idle_secs])
            // each copy's end in the log, for a failure to say which copy ended how
            .env("PROXY_LOG_COPIES", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let stderr = thread::spawn(move || {
            let mut log = String::new();
            for line in err.lines().map_while(Result::ok) {
                eprintln!("{line}");
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("listening on"), "proxy printed {first:?}");
        let addr = first.trim().rsplit(' ').next().unwrap().parse().unwrap();
        Proxy {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Open fds of the proxy process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn assert_alive(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(status.is_none(), "proxy exited: {status:?}");
    }

    /// Checks the proxy is still running, stops it, and returns what it printed on stderr.
    fn stop(mut self) -> String {
        self.assert_alive();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().unwrap().join().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An upstream that runs `serve` on a thread per connection.
fn upstream(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // std listens with a backlog of 128, and the proxy dials once per client at once: 300
    // dials overflowed the accept queue whenever this thread fell behind, and the kernel,
    // answering with SYN cookies, reset some of those connections once they carried data
    // (`nstat`: TcpExtSyncookiesFailed, TcpOutRsts). The proxy then rightly closed the
    // client with nothing echoed — the test's rare "0 bytes back". A second `listen` sets
    // a deeper queue (capped at `net.core.somaxconn`, 4096 since Linux 5.4).
    // SAFETY: the fd is the open listener's for the duration of the call.
    let r = unsafe { libc::listen(l.as_raw_fd(), 4096) };
    assert_eq!(r, 0, "listen: {}", std::io::Error::last_os_error());
    let addr = l.local_addr().unwrap();
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for s in l.incoming() {
            let (s, serve) = (s.unwrap(), serve.clone());
            thread::spawn(move || serve(s));
        }
    });
    addr
}

/// Echoes until EOF, then passes the EOF back. A failure or an empty echo is printed, as
/// the proxy prints each copy's end: a pair that comes back short says where it broke.
fn echo(s: TcpStream) {
    match std::io::copy(&mut &s, &mut &s) {
        Err(e) => eprintln!("upstream echo for {:?}: {e}", s.peer_addr()),
        Ok(0) => eprintln!("upstream echo for {:?}: EOF before any byte", s.peer_addr()),
        Ok(_) => {}
    }
    let _ = s.shutdown(Shutdown::Write);
}

/// Closes `s` with a reset (`SO_LINGER` 0) rather than a FIN.
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open while `s` lives; `linger` is a valid `struct linger` and the
    // length says so.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 11) ^ seed) as u8)
        .collect()
}

/// Writes `data` on a thread, then half-closes; reads everything that comes back.
fn round_trip(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

#[test]
fn a_multi_megabyte_transfer_arrives_intact() {
    let mut proxy = Proxy::start(upstream(echo), "30");
    let data = pattern(16 << 20, 7);
    let back = round_trip(proxy.connect(), data.clone());
    assert_eq!(back.len(), data.len());
    assert!(back == data, "bytes changed on the way");
    proxy.assert_alive();
}

#[test]
fn eof_is_passed_on_and_the_other_direction_keeps_going() {
    // The upstream reads the whole request (so it must see our EOF), then answers with
    // more than any socket buffer holds, then closes.
    fn answer_after_eof(mut s: TcpStream) {
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        let answer = pattern(4 << 20, req.len());
        s.write_all(format!("{}\n", req.len()).as_bytes()).unwrap();
        s.write_all(&answer).unwrap();
    }
    let proxy = Proxy::start(upstream(answer_after_eof), "30");
    let mut c = proxy.connect();
    c.write_all(&[b'q'; 1000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    let header = b"1000\n";
    assert_eq!(&back[..header.len()], header, "the upstream saw our EOF");
    assert!(
        back[header.len()..] == pattern(4 << 20, 1000),
        "answer after half-close"
    );

    // The other way round: the upstream finishes first, we keep sending; the upstream
    // reports what it received.
    let (got_tx, got) = mpsc::channel();
    let got_tx = Mutex::new(got_tx);
    let proxy = Proxy::start(
        upstream(move |mut s| {
            s.write_all(b"hello\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            let r = s.read_to_end(&mut rest).map(|_| rest);
            let _ = got_tx.lock().unwrap().send(r);
        }),
        "30",
    );
    let mut c = proxy.connect();
    let mut hello = Vec::new();
    (&c).read_to_end(&mut hello).unwrap(); // EOF arrives while our side is open
    assert_eq!(hello, b"hello\n");
    c.write_all(&pattern(3 << 20, 1)).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let rest = got
        .recv_timeout(Duration::from_secs(20))
        .expect("the upstream saw our EOF")
        .expect("the upstream read without error");
    assert!(
        rest == pattern(3 << 20, 1),
        "bytes sent after the upstream's EOF"
    );
}

#[test]
fn an_idle_pair_is_closed_and_an_active_one_is_not() {
    let idle = Duration::from_secs(1);
    let proxy = Proxy::start(upstream(echo), "1");
    let mut c = proxy.connect();
    // Active for two idle periods, a byte every 100 ms: the pair stays open. (A stall of
    // 900 ms in this thread would look like idleness; far beyond what a busy machine does.)
    let start = Instant::now();
    let last_byte = loop {
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b)
            .expect("the proxy closed a pair that was active");
        assert_eq!(&b, b"x");
        if start.elapsed() >= idle * 2 {
            break Instant::now();
        }
        thread::sleep(Duration::from_millis(100));
    };
    // Now silent: the proxy closes `idle`..`1.25 idle` after the last byte moved (which was
    // before we read it, give or take the ACK), plus scheduling slack. The close is a FIN:
    // nothing unread is left behind on either socket.
    let mut b = [0u8; 1];
    let r = c.read(&mut b);
    let waited = last_byte.elapsed();
    assert!(
        matches!(r, Ok(0)),
        "expected EOF from the idle close, got {r:?}"
    );
    assert!(
        waited >= idle - Duration::from_millis(50),
        "closed early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "closed late: {waited:?}");
}

#[test]
fn a_refused_upstream_closes_the_client_cleanly() {
    // A port nobody listens on: bind, learn the port, close.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Proxy::start(dead, "30");
    for _ in 0..3 {
        let mut c = proxy.connect();
        let mut b = [0u8; 8];
        // We sent nothing, so the close is a plain FIN: EOF, not a reset.
        let r = c.read(&mut b);
        assert!(matches!(r, Ok(0)), "expected EOF, got {r:?}");
    }
    let log = proxy.stop();
    assert_eq!(
        log.matches(&format!("proxy: dial tcp {dead}: connection refused"))
            .count(),
        3,
        "the proxy said why, once per client:\n{log}"
    );
}

#[test]
fn many_concurrent_pairs_and_no_fd_left_behind() {
    const CONNS: usize = 300;
    const EACH: usize = 64 << 10;
    let mut proxy = Proxy::start(upstream(echo), "30");
    // First a client that resets its connection mid-pair: the proxy's copy fails and closes
    // both sockets. (coronet's one placeholder socket, which a closed stream's fd number
    // points at until the stream drops, was opened with the listener; see `src/poll/fd.rs`.)
    let before = proxy.fds();
    let mut c = proxy.connect();
    c.write_all(b"hi").unwrap();
    c.read_exact(&mut [0u8; 2]).unwrap();
    reset(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.fds() != before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(proxy.fds(), before, "a reset pair is closed");
    let baseline = proxy.fds();
    // All connected before any finishes, so the proxy holds every pair at once.
    let conns: Vec<TcpStream> = (0..CONNS).map(|_| proxy.connect()).collect();
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            thread::spawn(move || {
                // the proxy's log names the client by this address
                let me = c.local_addr().unwrap();
                let back = round_trip(c, pattern(EACH, i));
                let want = pattern(EACH, i);
                if back != want {
                    let same = back.iter().zip(&want).take_while(|(a, b)| a == b).count();
                    eprintln!(
                        "pair {i} (client {me}): got {} bytes of {}, first {} equal",
                        back.len(),
                        want.len(),
                        same
                    );
                }
                back == want
            })
        })
        .collect();
    let intact = workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .filter(|&ok| ok)
        .count();
    assert_eq!(intact, CONNS);
    // Every pair closes once both sides said EOF: the proxy's fds return to where they were.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.fds() > baseline && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        proxy.fds(),
        baseline,
        "fds left open after every pair closed"
    );
    proxy.assert_alive();
}

#[test]
fn bad_arguments_get_a_usage_message() {
    for args in [
        &["127.0.0.1:0", "127.0.0.1:1", "soon"][..],
        &["127.0.0.1:0", "127.0.0.1:1", "-1"],
        &["127.0.0.1:0", "no-port-here"],
    ] {
        let out = Command::new(example("proxy")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: proxy"), "{args:?}: {err}");
    }
}
