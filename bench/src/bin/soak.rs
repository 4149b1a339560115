//! Soak (issue 6): N connections doing echo for D seconds, with random closes (FIN, RST,
//! half-close) and random read deadlines, server and clients in one coronet process.
//!
//! ```text
//! cargo run --release -p coronet-bench --features coronet --bin soak -- \
//!     [--conns 9000] [--secs 300] [--report 10] [--workers N]
//! ```
//!
//! Prints a line every `--report` seconds and, at the end, requests, errors (expected ones by
//! kind, and unexpected ones, which must be 0), and open fds and RSS at the start of the
//! steady state, at its end, and after every connection is gone. Exits 1 if anything
//! unexpected happened or fds did not come back to where they were before the run.
//!
//! What each side expects:
//! - a client: every request echoed intact within 5 s; a deadline probe (a read with a short
//!   deadline and nothing sent) times out with "i/o timeout";
//! - the server: EOF, or "connection reset by peer" / "broken pipe" from clients that reset.
//!   Its 10 s idle deadline must never fire: clients pause at most 1 s.

#[cfg(not(feature = "coronet"))]
fn main() {
    eprintln!("soak: build with `--features coronet` (it runs on coronet)");
    std::process::exit(2);
}

#[cfg(feature = "coronet")]
fn main() {
    soak::main()
}

#[cfg(feature = "coronet")]
mod soak {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, SocketAddr};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use coronet::net::{TcpListener, TcpStream};
    use coronet_bench::{rss_kib, Args};

    /// A client never pauses longer than this between requests.
    const MAX_PAUSE_MS: u64 = 1000;
    /// The server drops a connection idle this long: longer than any pause, so it never should.
    const SERVER_IDLE: Duration = Duration::from_secs(10);
    /// A request must be answered within this.
    const ANSWER: Duration = Duration::from_secs(5);
    const MAX_MSG: usize = 2048;

    #[derive(Default)]
    struct Counters {
        requests: AtomicU64,
        bytes: AtomicU64,
        connects: AtomicU64,
        close_fin: AtomicU64,
        close_rst: AtomicU64,
        close_half: AtomicU64,
        probe_timeouts: AtomicU64,
        server_resets: AtomicU64,
        unexpected: AtomicU64,
        /// Clients currently connected.
        open: AtomicU64,
    }

    impl Counters {
        fn unexpected(&self, what: &str) {
            // The first few are printed; a flood would only hide the first cause.
            if self.unexpected.fetch_add(1, Ordering::Relaxed) < 20 {
                eprintln!("soak: UNEXPECTED {what}");
            }
        }
    }

    /// xorshift64*: enough randomness for choosing sizes and pauses, and reproducible.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
    }

    /// Soft RLIMIT_NOFILE raised to the hard limit; returns the new soft limit.
    fn raise_nofile() -> u64 {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid, writable rlimit for the duration of each call.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur
    }

    pub fn main() {
        let args = Args::parse();
        let conns: usize = args.get("conns", 9000);
        let secs = args.secs("secs", 300.0);
        let report = args.secs("report", 10.0);
        let workers: usize = args.get("workers", 0);
        let limit = raise_nofile();
        // Both ends of every connection live here, plus the runtime's own handful.
        if (2 * conns + 64) as u64 > limit {
            eprintln!(
                "soak: {conns} connections need {} fds; the limit is {limit}",
                2 * conns + 64
            );
            std::process::exit(2);
        }
        if workers > 0 {
            coronet::Builder::new()
                .workers(workers)
                .build_global()
                .expect("coronet runtime");
        }
        let ok = coronet::run(move || run(conns, secs, report));
        std::process::exit(if ok { 0 } else { 1 });
    }

    fn run(conns: usize, secs: Duration, report: Duration) -> bool {
        // Start the runtime's own fds (and the placeholder a first close makes) before the
        // baseline, as the tests do.
        TcpListener::bind("127.0.0.1:0").unwrap().close().unwrap();
        let (fds0, rss0) = (open_fds(), rss_kib());
        let c = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));

        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
        let addr = listener.local_addr().unwrap();
        let acceptor = {
            let (l, c) = (listener.clone(), c.clone());
            coronet::go(move || serve(&l, &c))
        };
        println!(
            "soak: {conns} connections for {secs:?} on {addr}, {} worker(s); before: {fds0} fds, \
             RSS {rss0} KiB",
            coronet::stats().workers
        );

        let t0 = Instant::now();
        let end = t0 + secs;
        let clients: Vec<_> = (0..conns)
            .map(|i| {
                let (c, stop) = (c.clone(), stop.clone());
                coronet::Spawn::new()
                    .stack_size(64 << 10)
                    .go(move || client(i, addr, end, &stop, &c))
            })
            .collect();

        // The steady state starts once every client is connected.
        while (c.open.load(Ordering::Relaxed) as usize) < conns && Instant::now() < end {
            coronet::time::sleep(Duration::from_millis(50));
        }
        let (fds1, rss1) = (open_fds(), rss_kib());
        println!(
            "soak: start of steady state at {:.1}s: {} open, {fds1} fds, RSS {rss1} KiB",
            t0.elapsed().as_secs_f64(),
            c.open.load(Ordering::Relaxed)
        );

        let mut last = (Instant::now(), 0);
        let (mut fds2, mut rss2) = (fds1, rss1);
        while Instant::now() < end {
            coronet::time::sleep(report.min(end.saturating_duration_since(Instant::now())));
            let now = Instant::now();
            let req = c.requests.load(Ordering::Relaxed);
            (fds2, rss2) = (open_fds(), rss_kib());
            println!(
                "soak: {:6.1}s {req} requests ({:.0}/s), {} open, {fds2} fds, RSS {rss2} KiB, \
                 {} unexpected",
                t0.elapsed().as_secs_f64(),
                (req - last.1) as f64 / now.duration_since(last.0).as_secs_f64(),
                c.open.load(Ordering::Relaxed),
                c.unexpected.load(Ordering::Relaxed)
            );
            last = (now, req);
        }

        stop.store(true, Ordering::Relaxed);
        for h in clients {
            if h.join().is_err() {
                c.unexpected("a client coroutine panicked");
            }
        }
        listener.close().unwrap();
        if acceptor.join().is_err() {
            c.unexpected("the acceptor panicked");
        }
        drop(listener);
        // Server handlers end on the clients' EOFs; give them a moment to drop their fds.
        let settle = Instant::now() + Duration::from_secs(10);
        while (open_fds() > fds0 || coronet::stats().live > 1) && Instant::now() < settle {
            coronet::time::sleep(Duration::from_millis(50));
        }
        let (fds3, rss3) = (open_fds(), rss_kib());

        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let took = t0.elapsed().as_secs_f64();
        println!(
            "soak: done in {took:.1}s: {} requests ({:.0}/s), {} MiB echoed, {} connects",
            g(&c.requests),
            g(&c.requests) as f64 / took,
            g(&c.bytes) >> 20,
            g(&c.connects)
        );
        println!(
            "soak: closes: {} FIN, {} RST, {} half-close; expected errors: {} deadline probes \
             timed out, {} resets seen by the server; UNEXPECTED: {}",
            g(&c.close_fin),
            g(&c.close_rst),
            g(&c.close_half),
            g(&c.probe_timeouts),
            g(&c.server_resets),
            g(&c.unexpected)
        );
        println!(
            "soak: fds {fds0} before, {fds1} at start, {fds2} at end, {fds3} after; RSS {rss0} \
             KiB before, {rss1} at start, {rss2} at end, {rss3} after; {} coroutines live after",
            coronet::stats().live
        );
        g(&c.unexpected) == 0 && fds3 <= fds0
    }

    /// Accepts until the listener is closed; echo.rs's back-off on errors (none expected).
    fn serve(l: &TcpListener, c: &Arc<Counters>) {
        let mut backoff = Duration::ZERO;
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    backoff = Duration::ZERO;
                    let c = c.clone();
                    coronet::Spawn::new()
                        .stack_size(64 << 10)
                        .go(move || echo(s, &c));
                }
                Err(e) if is_closed(&e) => return,
                Err(e) => {
                    c.unexpected(&format!("accept: {e}"));
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    coronet::time::sleep(backoff);
                }
            }
        }
    }

    /// Echoes until EOF; a reset from a client that closed with RST is expected.
    fn echo(mut s: TcpStream, c: &Counters) {
        let mut buf = vec![0u8; 4096];
        loop {
            if s.set_read_deadline(Some(Instant::now() + SERVER_IDLE))
                .is_err()
            {
                return c.unexpected("server: set_read_deadline failed");
            }
            let n = match s.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if is_reset(&e) => {
                    c.server_resets.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => return c.unexpected(&format!("server read: {e}")),
            };
            match s.write_all(&buf[..n]) {
                Ok(()) => {}
                Err(e) if is_reset(&e) => {
                    c.server_resets.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => return c.unexpected(&format!("server write: {e}")),
            }
        }
    }

    /// The listener was closed: the run is over.
    fn is_closed(e: &std::io::Error) -> bool {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<coronet::net::OpError>())
            .is_some_and(|op| op.is_closed())
    }

    fn is_reset(e: &std::io::Error) -> bool {
        matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
    }

    /// Sessions until `end` or `stop`: connect, 1..200 requests with random pauses and the
    /// occasional deadline probe, then a random kind of close.
    fn client(i: usize, addr: SocketAddr, end: Instant, stop: &AtomicBool, c: &Counters) {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x1000_0000_01b3));
        // Spread the first connects over a second rather than 9,000 SYNs at once.
        coronet::time::sleep(Duration::from_millis(rng.below(1000)));
        let mut msg = vec![0u8; MAX_MSG];
        let mut back = vec![0u8; MAX_MSG];
        let mut seq = 0u64;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            let s = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    c.unexpected(&format!("client {i} connect: {e}"));
                    coronet::time::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            c.connects.fetch_add(1, Ordering::Relaxed);
            c.open.fetch_add(1, Ordering::Relaxed);
            let session = 1 + rng.below(200);
            for _ in 0..session {
                if Instant::now() >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                if rng.below(50) == 0 && !probe(&s, &mut rng, c, i) {
                    break;
                }
                seq += 1;
                let len = 1 + rng.below(MAX_MSG as u64) as usize;
                for (k, b) in msg[..len].iter_mut().enumerate() {
                    *b = (seq as usize + k * 31 + i) as u8;
                }
                if !round_trip(&s, &msg[..len], &mut back[..len], c, i) {
                    break;
                }
                coronet::time::sleep(Duration::from_millis(rng.below(MAX_PAUSE_MS)));
            }
            close(s, &mut rng, c, i);
            c.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One request: the message out, the same bytes back within ANSWER.
    fn round_trip(s: &TcpStream, msg: &[u8], back: &mut [u8], c: &Counters, i: usize) -> bool {
        let r = (|| {
            (&*s).write_all(msg)?;
            s.set_read_deadline(Some(Instant::now() + ANSWER))?;
            (&*s).read_exact(back)
        })();
        match r {
            Ok(()) if back == msg => {
                c.requests.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(msg.len() as u64, Ordering::Relaxed);
                true
            }
            Ok(()) => {
                c.unexpected(&format!("client {i}: echo differs from what was sent"));
                false
            }
            Err(e) => {
                c.unexpected(&format!("client {i} request: {e}"));
                false
            }
        }
    }

    /// A read with a 5..50 ms deadline and nothing sent: it must time out, in Go's words.
    fn probe(s: &TcpStream, rng: &mut Rng, c: &Counters, i: usize) -> bool {
        let d = Duration::from_millis(5 + rng.below(45));
        let t = Instant::now();
        let _ = s.set_read_deadline(Some(t + d));
        match (&*s).read(&mut [0u8; 16]) {
            Err(e) if e.kind() == ErrorKind::TimedOut && e.to_string().ends_with("i/o timeout") => {
                if t.elapsed() < d {
                    c.unexpected(&format!(
                        "client {i}: deadline of {d:?} fired after {:?}",
                        t.elapsed()
                    ));
                    return false;
                }
                c.probe_timeouts.fetch_add(1, Ordering::Relaxed);
                true
            }
            r => {
                c.unexpected(&format!("client {i} probe: {r:?}"));
                false
            }
        }
    }

    /// Ends a session one of three ways: close (FIN), SO_LINGER 0 (RST), or shutdown(Write)
    /// and wait for the server's EOF.
    fn close(s: TcpStream, rng: &mut Rng, c: &Counters, i: usize) {
        match rng.below(3) {
            0 => {
                c.close_fin.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                if let Err(e) = s.set_linger(Some(Duration::ZERO)) {
                    c.unexpected(&format!("client {i} set_linger: {e}"));
                }
                c.close_rst.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                let r = s.shutdown(Shutdown::Write).and_then(|()| {
                    s.set_read_deadline(Some(Instant::now() + ANSWER))?;
                    (&s).read(&mut [0u8; 16])
                });
                match r {
                    Ok(0) => {}
                    r => c.unexpected(&format!("client {i} half-close: {r:?}")),
                }
                c.close_half.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(s);
    }
}
