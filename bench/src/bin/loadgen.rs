//! The load client for the net benchmarks: one thread, one epoll set, nonblocking sockets,
//! so a single core drives 9,000 connections. It is the same program for every server.
//!
//! ```text
//! loadgen echo   127.0.0.1:PORT --conns N [--warmup S] [--duration S] [--msg 64] [--server-pid PID]
//! loadgen stream 127.0.0.1:PORT [--bytes B] [--chunk 65536] [--server-pid PID]
//! loadgen churn  127.0.0.1:PORT [--concurrency C] [--warmup S] [--duration S] [--server-pid PID]
//! loadgen idle   127.0.0.1:PORT --conns N --server-pid PID [--settle S]
//! ```
//!
//! * `echo`: each connection sends a message, waits for all of it to come back, and repeats.
//!   Requests that complete inside the measured window (after the warm-up) are counted and
//!   their latency (send → last byte back) goes into a histogram.
//! * `stream`: one connection; sends `--bytes` in `--chunk` writes while reading the echo
//!   back; done when every byte has come back.
//! * `churn`: `--concurrency` slots, each repeatedly: connect, send one message, read the
//!   echo, close. Source addresses rotate over 127.0.0.2–127.0.0.65 so ephemeral ports and
//!   TIME_WAIT never run out.
//! * `idle`: opens `--conns` connections, echoes one message on each (so every handler has
//!   started, read once and parked again), waits `--settle` seconds and reports the growth
//!   of the server's resident memory (`VmRSS`) divided by the connections, and `setup_s`,
//!   the time from the first connect until the last first echo came back.
//!
//! With `--server-pid`, the server's CPU time (utime + stime from /proc/PID/stat) over the
//! measured window is divided by the work done in it.

use coronet_bench::hist::Histogram;
use coronet_bench::sys::{self, Epoll, ERR, ET, HUP, IN, OUT};
use coronet_bench::{cpu_between, result, server_cpu, Args, CpuReading};
use std::io::ErrorKind::WouldBlock;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

fn main() {
    let args = Args::parse();
    let addr: SocketAddrV4 = args
        .pos(1, "server address")
        .parse()
        .expect("IPv4 address:port");
    let pid: Option<u32> = args.get::<i64>("server-pid", -1).try_into().ok();
    match args.pos(0, "mode") {
        "echo" => echo(&args, addr, pid),
        "stream" => stream(&args, addr, pid),
        "churn" => churn(&args, addr, pid),
        "idle" => idle(&args, addr, pid.expect("idle needs --server-pid")),
        other => panic!("unknown mode {other:?}: echo, stream, churn or idle"),
    }
}

/// The source address for the `i`th connection: 64 loopback addresses, each with its own
/// ephemeral port range.
fn source(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 64) as u8)
}

/// Server CPU per unit of work, in microseconds, as a result field (absent without a pid).
fn cpu_field(
    name: &'static str,
    cpu: &Option<(CpuReading, CpuReading)>,
    units: f64,
) -> Vec<(&'static str, f64)> {
    match cpu {
        Some((a, b)) if units > 0.0 => {
            vec![(name, cpu_between(a, b).as_secs_f64() * 1e6 / units)]
        }
        _ => vec![],
    }
}

/// How busy the server was over the window, in cores (`_srv_util`, kept out of the tables):
/// a side-by-side pair compares like with like only when both were saturated.
fn util_field(
    cpu: &Option<(CpuReading, CpuReading)>,
    window: Duration,
) -> Vec<(&'static str, f64)> {
    match cpu {
        Some((a, b)) if !window.is_zero() => {
            vec![(
                "_srv_util",
                cpu_between(a, b).as_secs_f64() / window.as_secs_f64(),
            )]
        }
        _ => vec![],
    }
}

// ---------------------------------------------------------------------------------------
// echo

struct EchoConn {
    fd: RawFd,
    got: usize,
    sent_at: Instant,
}

fn echo(args: &Args, addr: SocketAddrV4, pid: Option<u32>) {
    let n: usize = args.get("conns", 1);
    let msg_len: usize = args.get("msg", 64);
    let (warmup, duration) = (args.secs("warmup", 1.0), args.secs("duration", 5.0));
    let msg = vec![b'x'; msg_len];
    let mut buf = vec![0u8; msg_len];

    let epoll = Epoll::new().unwrap();
    let fds = connect_all(addr, n);
    let now = Instant::now();
    let mut conns: Vec<EchoConn> = fds
        .into_iter()
        .map(|fd| EchoConn {
            fd,
            got: 0,
            sent_at: now,
        })
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        epoll.add(c.fd, IN | ET, i as u64).unwrap();
        send_all(c.fd, &msg);
        c.sent_at = Instant::now();
    }

    let start = Instant::now();
    let (window_start, window_end) = (start + warmup, start + warmup + duration);
    let mut measuring = false;
    let mut cpu_start = None;
    let mut opened = start;
    let mut hist = Histogram::default();
    let mut events = sys::empty_events(1024);
    // The window opens after the batch that crosses its start (the server answered those
    // before the first CPU reading) and closes after the batch that crosses its end (answered
    // before the last one), so the requests counted and the CPU read cover the same work.
    let closed = loop {
        let ready = epoll.wait(&mut events, 10).unwrap();
        let now = Instant::now();
        let opening = !measuring && now >= window_start;
        let closing = measuring && now >= window_end;
        for ev in &events[..ready] {
            let (i, flags) = (ev.u64 as usize, ev.events);
            let c = &mut conns[i];
            if flags & (ERR | HUP) != 0 {
                panic!("connection {i} failed: the server closed or reset it");
            }
            // The server echoes only what we sent, so reading up to the rest of one
            // message never eats into the next.
            loop {
                match sys::read(c.fd, &mut buf[c.got..]) {
                    Ok(0) => panic!("connection {i}: server closed it"),
                    Ok(k) => c.got += k,
                    Err(e) if e.kind() == WouldBlock => break,
                    Err(e) => panic!("connection {i}: read: {e}"),
                }
                if c.got < msg_len {
                    continue;
                }
                let done = Instant::now();
                if measuring {
                    hist.record((done - c.sent_at).as_nanos() as u64);
                }
                c.got = 0;
                send_all(c.fd, &msg);
                c.sent_at = Instant::now();
                break;
            }
        }
        if closing {
            break Instant::now();
        }
        if opening {
            measuring = true;
            cpu_start = server_cpu(pid);
            opened = Instant::now();
        }
    };
    let cpu = cpu_start.zip(server_cpu(pid));
    let window = closed - opened;
    let reqs = hist.count() as f64;
    let mut fields = vec![
        // the window as measured, not as asked for (they differ by up to 1 %)
        ("req/s", reqs / window.as_secs_f64()),
        ("p50_us", hist.quantile(0.50) as f64 / 1e3),
        ("p99_us", hist.quantile(0.99) as f64 / 1e3),
    ];
    fields.extend(util_field(&cpu, window));
    fields.extend(cpu_field("srv_cpu_us/req", &cpu, reqs));
    fields.push(("_conns", n as f64));
    result(&fields);
    for c in conns {
        sys::close(c.fd);
    }
}

/// Opens `n` connections, at most 256 handshakes in flight, and returns them connected.
fn connect_all(addr: SocketAddrV4, n: usize) -> Vec<RawFd> {
    let mut events = sys::empty_events(256);
    let mut connected = Vec::with_capacity(n);
    while connected.len() < n {
        // A fresh epoll set per wave: it only ever reports this wave's handshakes.
        let epoll = Epoll::new().unwrap();
        let wave = (n - connected.len()).min(256);
        let fds: Vec<RawFd> = (0..wave)
            .map(|i| {
                let fd = sys::connect_nonblocking(addr, Some(source((connected.len() + i) as u64)))
                    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
                epoll.add(fd, OUT | ET, i as u64).unwrap();
                fd
            })
            .collect();
        let mut done = vec![false; wave];
        let mut pending = wave;
        let deadline = Instant::now() + Duration::from_secs(30);
        while pending > 0 {
            assert!(
                Instant::now() < deadline,
                "connect {addr}: {pending} handshakes still pending after 30 s"
            );
            let ready = epoll.wait(&mut events, 100).unwrap();
            for ev in &events[..ready] {
                let i = ev.u64 as usize;
                if let Some(e) = sys::take_error(fds[i]).unwrap() {
                    panic!(
                        "connect {addr}: {e} (after {} connections)",
                        connected.len()
                    );
                }
                if !std::mem::replace(&mut done[i], true) {
                    pending -= 1;
                }
            }
        }
        connected.extend(fds);
    }
    connected
}

/// Writes a whole small message; the socket buffer always has room for 64 bytes here.
fn send_all(fd: RawFd, msg: &[u8]) {
    match sys::write(fd, msg) {
        Ok(n) if n == msg.len() => {}
        Ok(n) => panic!("short write of {n} bytes: the socket buffer is full"),
        Err(e) => panic!("write: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// stream

fn stream(args: &Args, addr: SocketAddrV4, pid: Option<u32>) {
    let total: u64 = args.get("bytes", 1u64 << 30);
    let chunk_len: usize = args.get("chunk", 64 << 10);
    let chunk = vec![b'x'; chunk_len];
    let mut buf = vec![0u8; chunk_len];
    let fd = connect_all(addr, 1)[0];
    let epoll = Epoll::new().unwrap();
    epoll.add(fd, IN | OUT | ET, 0).unwrap();
    let mut events = sys::empty_events(4);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut off = 0; // bytes of the current chunk already written
    let cpu_start = server_cpu(pid);
    let start = Instant::now();
    while received < total {
        // Write 64 KiB chunks until the socket is full or everything is sent.
        while sent < total {
            let len = (total - sent).min(chunk_len as u64) as usize;
            match sys::write(fd, &chunk[off..len]) {
                Ok(k) => {
                    off += k;
                    if off == len {
                        sent += len as u64;
                        off = 0;
                    }
                }
                Err(e) if e.kind() == WouldBlock => break,
                Err(e) => panic!("stream: write: {e}"),
            }
        }
        // Read the echo until the socket is empty.
        loop {
            match sys::read(fd, &mut buf) {
                Ok(0) => panic!("stream: server closed after {received} of {total} bytes"),
                Ok(k) => received += k as u64,
                Err(e) if e.kind() == WouldBlock => break,
                Err(e) => panic!("stream: read: {e}"),
            }
        }
        if received < total {
            epoll.wait(&mut events, 1000).unwrap();
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "stream: no progress for too long"
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_start.zip(server_cpu(pid));
    let mib = total as f64 / (1 << 20) as f64;
    let mut fields = vec![("MiB/s", mib / secs)];
    // Server CPU per GiB echoed, in milliseconds (µs per KiB reads the same number).
    fields.extend(cpu_field("srv_cpu_ms/GiB", &cpu, mib / 1024.0 * 1000.0));
    fields.push(("_MiB", mib));
    result(&fields);
    sys::close(fd);
}

// ---------------------------------------------------------------------------------------
// churn

enum Slot {
    Connecting,
    AwaitingEcho { got: usize },
}

struct ChurnConn {
    fd: RawFd,
    state: Slot,
    started: Instant,
    /// Bumped for each new connection in this slot; an event carrying an older
    /// generation belongs to a closed socket whose fd number was reused.
    gen: u32,
}

fn churn(args: &Args, addr: SocketAddrV4, pid: Option<u32>) {
    let slots: usize = args.get("concurrency", 64);
    let msg_len: usize = args.get("msg", 64);
    let (warmup, duration) = (args.secs("warmup", 1.0), args.secs("duration", 5.0));
    let msg = vec![b'x'; msg_len];
    let mut buf = vec![0u8; msg_len];
    let epoll = Epoll::new().unwrap();
    let mut next_source = 0u64;
    let mut failed = 0u64;

    let open = |slot: usize, gen: u32, next_source: &mut u64| -> ChurnConn {
        *next_source += 1;
        let fd = sys::connect_nonblocking(addr, Some(source(*next_source)))
            .unwrap_or_else(|e| panic!("churn: connect {addr}: {e}"));
        epoll
            .add(fd, IN | OUT | ET, (gen as u64) << 32 | slot as u64)
            .unwrap();
        ChurnConn {
            fd,
            state: Slot::Connecting,
            started: Instant::now(),
            gen,
        }
    };
    let mut conns: Vec<ChurnConn> = (0..slots).map(|s| open(s, 0, &mut next_source)).collect();

    let start = Instant::now();
    let (window_start, window_end) = (start + warmup, start + warmup + duration);
    let mut measuring = false;
    let mut cpu_start = None;
    let mut hist = Histogram::default();
    let mut events = sys::empty_events(1024);
    let mut opened = start;
    let closed = loop {
        let ready = epoll.wait(&mut events, 10).unwrap();
        let now = Instant::now();
        if !measuring && now >= window_start {
            measuring = true;
            cpu_start = server_cpu(pid);
            opened = Instant::now();
        }
        if now >= window_end {
            break Instant::now();
        }
        for ev in &events[..ready] {
            let (token, flags) = (ev.u64, ev.events);
            let (slot, gen) = ((token & 0xffff_ffff) as usize, (token >> 32) as u32);
            let c = &mut conns[slot];
            if c.gen != gen {
                continue; // stale: that socket is closed
            }
            let finished = match c.state {
                Slot::Connecting => match sys::take_error(c.fd).unwrap() {
                    Some(_) => Some(false),
                    None if flags & OUT != 0 => {
                        send_all(c.fd, &msg);
                        c.state = Slot::AwaitingEcho { got: 0 };
                        None
                    }
                    None => None,
                },
                Slot::AwaitingEcho { ref mut got } => loop {
                    match sys::read(c.fd, &mut buf[*got..]) {
                        Ok(0) => break Some(false),
                        Ok(k) => {
                            *got += k;
                            if *got == msg_len {
                                break Some(true);
                            }
                        }
                        Err(e) if e.kind() == WouldBlock => break None,
                        Err(_) => break Some(false),
                    }
                },
            };
            let Some(ok) = finished else { continue };
            if ok && measuring {
                hist.record((Instant::now() - c.started).as_nanos() as u64);
            }
            if !ok {
                failed += 1;
            }
            sys::close(c.fd);
            let gen = c.gen.wrapping_add(1);
            *c = open(slot, gen, &mut next_source);
        }
    };
    let cpu = cpu_start.zip(server_cpu(pid));
    let window = closed - opened;
    let done = hist.count() as f64;
    let mut fields = vec![
        ("conn/s", done / window.as_secs_f64()),
        ("p50_us", hist.quantile(0.50) as f64 / 1e3),
        ("p99_us", hist.quantile(0.99) as f64 / 1e3),
    ];
    fields.extend(cpu_field("srv_cpu_us/conn", &cpu, done));
    fields.extend(util_field(&cpu, window));
    // shown in the tables: a server that drops connections must not look like one that does not
    fields.push(("failed", failed as f64));
    fields.push(("_concurrency", slots as f64));
    result(&fields);
    for c in conns {
        sys::close(c.fd);
    }
}

// ---------------------------------------------------------------------------------------
// idle

/// Resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line in /proc/PID/status")
}

fn idle(args: &Args, addr: SocketAddrV4, pid: u32) {
    let n: usize = args.get("conns", 9000);
    let settle = args.secs("settle", 1.0);
    let msg = [b'x'; 64];
    let mut buf = [0u8; 64];
    let before = rss_kib_of(pid);
    let start = Instant::now();
    let fds = connect_all(addr, n);
    let epoll = Epoll::new().unwrap();
    let mut got = vec![0usize; n];
    for (i, &fd) in fds.iter().enumerate() {
        epoll.add(fd, IN | ET, i as u64).unwrap();
        send_all(fd, &msg);
    }
    let mut pending = n;
    let mut events = sys::empty_events(1024);
    while pending > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "idle: {pending} of {n} first echoes missing after 120 s"
        );
        let ready = epoll.wait(&mut events, 100).unwrap();
        for ev in &events[..ready] {
            let i = ev.u64 as usize;
            loop {
                match sys::read(fds[i], &mut buf[got[i]..]) {
                    Ok(0) => panic!("idle: connection {i}: server closed it"),
                    Ok(k) => {
                        got[i] += k;
                        if got[i] == msg.len() {
                            pending -= 1;
                            break;
                        }
                    }
                    Err(e) if e.kind() == WouldBlock => break,
                    Err(e) => panic!("idle: connection {i}: read: {e}"),
                }
            }
        }
    }
    let setup = start.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let after = rss_kib_of(pid);
    result(&[
        (
            "bytes/conn",
            after.saturating_sub(before) as f64 * 1024.0 / n as f64,
        ),
        ("setup_s", setup),
        ("_rss_before_MiB", before as f64 / 1024.0),
        ("_rss_after_MiB", after as f64 / 1024.0),
        ("_conns", n as f64),
    ]);
    for fd in fds {
        sys::close(fd);
    }
}
